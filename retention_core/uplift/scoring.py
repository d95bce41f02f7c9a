"""Scoring customers with an uplift run: how much a contact changes the chance of the outcome, for each of them.

The columns written (:data:`UPLIFT_COLUMNS`), first the ones that rank:

- ``user_id``: the run's id column, else the row number in the table scored (1 = the first data row);
- ``uplift``: P(outcome | treated) - P(outcome | control): above 0 a contact is expected to help ("persuadables"),
  below 0 to hurt ("do not disturb");
- ``p_treated``, ``p_control``: the probability of the outcome if contacted, and if not;
- ``uplift_decile`` (1 = the 10% with the highest uplift) and ``rank`` (1 = the highest uplift);

then the customer's segment columns, ``outcome`` (what the probabilities are about, e.g. ``visit = 1``), ``model`` and
``scoring_date``. In a list handed out (:func:`uplift_list`) the probabilities have 4 decimals: the column the
list is ranked by and ``p_control`` are rounded, the third is worked out from them (within 0.0001 of its own
rounding), so the list stays in order and ``uplift`` stays ``p_treated - p_control``. An uplift run writes no
``churn_probability``: its outcome is the one the experiment measured (a visit, a purchase), not churn, and calling
either probability a churn probability would be false.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..roles import Schema
from ..segments import ranks, risk_deciles
from .data import scoring_frame

UPLIFT_COLUMNS = ["user_id", "uplift", "p_treated", "p_control", "uplift_decile", "rank"]
#: What a list can be ranked by, on the screen.
RANKINGS = {"uplift": "Uplift (persuadables first)", "p_treated": "Response if contacted (P(outcome | treated))"}


def is_uplift_run(run) -> bool:
    """True for a run of uplift learners (``run.json`` says ``"task": "uplift"``); works on a Run or its info."""
    info = getattr(run, "info", run)
    return isinstance(info, dict) and info.get("task") == "uplift"


def outcome_text(info: dict) -> str:
    exp = info.get("experiment") or {}
    return f"{exp.get('outcome')} = {exp.get('positive')}"


def uplift_scores(user_ids, p_treated, p_control) -> pd.DataFrame:
    """The score columns from ids and the two probabilities (rank 1 = the highest uplift)."""
    p_t = np.clip(np.asarray(p_treated, dtype=float), 0, 1)
    p_c = np.clip(np.asarray(p_control, dtype=float), 0, 1)
    u = p_t - p_c
    out = pd.DataFrame({"user_id": pd.Series(user_ids).astype(str).to_numpy(), "uplift": u, "p_treated": p_t,
                        "p_control": p_c})
    out["uplift_decile"] = risk_deciles(u).to_numpy(dtype=int)
    out["rank"] = ranks(u)
    return out


def score_uplift(run, df: pd.DataFrame, *, model: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every customer of ``df`` scored by one learner of an uplift run (its best unless named): (scores, feature
    rows). The treatment and outcome columns, when the table still has them, are not read."""
    if not is_uplift_run(run):
        raise ConfigError("This run holds churn models, not uplift learners: score it as a churn run.")
    key = model or run.best
    learner = run.model(key)  # an unknown key: a message listing the run's learners
    frame = scoring_frame(df, Schema.from_dict(run.info["schema"]), run.info["user_spec"])
    X = frame[run.info["numeric"] + run.info["categorical"]]
    p_t, p_c = learner.predict_arms(X)
    return uplift_scores(frame["user_id"], p_t, p_c), frame


def validation_uplift(validation: pd.DataFrame, model: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Scores and feature rows of an uplift run's held-out customers, from the predictions saved with the run."""
    cols = [f"p_treated:{model}", f"p_control:{model}"]
    if any(c not in validation.columns for c in cols):
        raise ConfigError(f"The run holds no held-out predictions of learner {model!r}.")
    keep = [c for c in validation.columns if ":" not in str(c) and c not in ("response", "treated", "outcome")]
    frame = validation[keep].reset_index(drop=True)
    return uplift_scores(frame["user_id"], validation[cols[0]], validation[cols[1]]), frame


def choose(scores: pd.DataFrame, *, top: int | None = None, threshold: float | None = None,
           by: str = "uplift") -> np.ndarray:
    """Positions of the customers kept, best first by ``by`` (``uplift`` or ``p_treated``): the first ``top``, or
    those whose uplift is at least ``threshold`` (a difference of probabilities, -1 to 1), else everyone."""
    if by not in RANKINGS:
        raise ConfigError(f"Rank customers by one of {', '.join(RANKINGS)}, got {by!r}.", field="rank_by", value=by)
    order = np.argsort(-scores[by].to_numpy(dtype=float), kind="stable")
    if top is not None:
        if int(top) < 1:
            raise ConfigError(f"Keep at least 1 customer, got {top}.", field="top", value=top)
        return order[:int(top)]
    if threshold is not None:
        if not -1 <= float(threshold) <= 1:
            raise ConfigError(f"An uplift threshold is a difference of probabilities between -1 and 1, got "
                              f"{threshold}.", field="threshold", value=threshold)
        return order[scores["uplift"].to_numpy(dtype=float)[order] >= float(threshold)]
    return order


@dataclass
class ScoredUplift:
    scores: pd.DataFrame  # every customer scored
    chosen: pd.DataFrame  # the customers kept, with the columns of the module
    model: str
    frame: pd.DataFrame


def uplift_list(run_info: dict, key: str, scores: pd.DataFrame, frame: pd.DataFrame, *, top: int | None = None,
                threshold: float | None = None, by: str = "uplift", date: str | None = None) -> pd.DataFrame:
    """The customers kept (see :func:`choose`) with their segment columns, the outcome, the learner and the date."""
    pos = choose(scores, top=top, threshold=threshold, by=by)
    out = scores.iloc[pos].reset_index(drop=True)
    out["p_control"], out[by] = out["p_control"].round(4), out[by].round(4)  # the ranking column keeps its order
    if by == "uplift":
        out["p_treated"] = (out["p_control"] + out["uplift"]).round(4)
    else:
        out["uplift"] = (out["p_treated"] - out["p_control"]).round(4)
    for c in run_info.get("categorical") or []:
        if c in frame.columns:
            out[c] = frame[c].iloc[pos].to_numpy()
    out["outcome"] = outcome_text(run_info)
    out["model"] = key
    out["scoring_date"] = date or str(pd.Timestamp.now().date())
    return out


def score_uplift_file(run, df: pd.DataFrame, *, model: str | None = None, top: int | None = None,
                      threshold: float | None = None) -> ScoredUplift:
    """Score a table with an uplift run and keep the customers asked for, highest uplift first."""
    key = model or run.best
    scores, frame = score_uplift(run, df, model=key)
    return ScoredUplift(scores, uplift_list(run.info, key, scores, frame, top=top, threshold=threshold), key, frame)


def persuadable_summary(scores: pd.DataFrame) -> dict:
    """How many customers a contact is expected to help (uplift > 0) or hurt (< 0), and the expected extra outcomes
    if all of them, or only those it helps, were contacted (sums of uplift)."""
    u = scores["uplift"].to_numpy(dtype=float)
    return {"customers": int(len(u)), "persuadable": int((u > 0).sum()), "do_not_disturb": int((u < 0).sum()),
            "extra_if_all": float(u.sum()), "extra_if_persuadable": float(u[u > 0].sum())}
