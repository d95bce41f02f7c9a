"""Scoring a saved run on new data, and the at-risk list: who to contact (by threshold, top K, budget or value at
risk, within segments), with reasons. What is handed out is written by :mod:`retention_core.export`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .campaign import (
    ID_COLUMNS,
    Assumptions,
    budget_contacts,
    choose_by_expected_value,
    user_value,
    with_assumptions,
)
from .dataset import SnapshotConfig, scoring_snapshot
from .errors import ConfigError, DataError
from .events import canonical_events
from .explain import top_reasons
from .export import pseudonymise_list
from .features import apply_user_spec
from .models import REGISTRY, for_population
from .recommend.offers import offers_for_run
from .roles import Schema, infer_schema
from .segments import risk_deciles


# ----------------------------------------------------------------------------------------------- scoring a run
def features_for_run(run, df: pd.DataFrame, *, as_of=None, cancel_ids: bool | None = None):
    """The saved run's feature rows for new data, computed with the same code path as training.

    Event logs: features as of ``as_of`` (default: the end of the data) for users who bought in the lookback window.
    User tables: the saved feature specification. The saved column roles are applied by column name
    (:meth:`~retention_core.roles.Schema.for_new_data`). ``cancel_ids``: see :func:`retention_core.events.canonical_events`.
    """

    saved = Schema.from_dict(run.info["schema"])
    schema = infer_schema(df, saved.for_new_data(df.columns, label=saved.kind != "users"))
    if saved.kind == "events":
        ev = canonical_events(df, schema, cancel_ids=cancel_ids)
        snap = {k: v for k, v in run.info["snapshot"].items() if k in SnapshotConfig.__dataclass_fields__}
        snap["cutoff"] = None
        needs_seq = bool(run.info.get("sequence_weeks"))
        ds = scoring_snapshot(ev, SnapshotConfig(**snap), as_of, sequences=needs_seq)
        frame, seq = ds.frame, ds.sequences
    else:
        frame, seq = apply_user_spec(df, schema, run.info["user_spec"]), None
    cols = run.info["numeric"] + run.info["categorical"]
    missing = [c for c in cols if c not in frame.columns]
    # a count of events the data could hold but does not (no return at all): 0; a feature the new data cannot have
    # (e.g. no ratings column): unknown, not zero. The Spark engine fills with the same rule.
    frame = fill_absent(frame, cols, schema.held() if saved.kind == "events" else frozenset())
    if len(missing) == len(cols):
        raise DataError("None of the model's features can be computed from this file. Score data of the same kind "
                        "and columns as the training data.")
    return frame, seq


#: Counts whose column a snapshot's table lacks when no event of the log had what they count, by the role of the
#: column that holds it (``events_<type>_...``: ``event_type``).
_COUNTS_OF = {"ratings_count": "rating", "n_products": "product", "n_categories": "category", "units_total": "quantity"}


def zero_when_absent(feature: str, roles: set[str] | frozenset[str]) -> bool:
    """Whether ``feature``, absent from a snapshot's table, counts events the log could have held but did not: a type
    no event had (``events_<type>_30d`` ...) in a log with event types, ratings, products, categories or units in a
    log with that column (``roles``: the roles the log's columns hold). A bigger log has the column, with 0 for every
    user without such events, so the value is 0, not unknown; e.g. one customer's events that hold no return."""
    if feature.startswith("events_") and feature != "events_total":
        return "event_type" in roles
    return _COUNTS_OF.get(feature) in roles


def absent_value(feature: str, roles: set[str] | frozenset[str]) -> float:
    """The value of a model feature that a snapshot's table lacks, in every scoring path (DuckDB, NumPy, Spark):
    0 for a count the log could hold but does not (:func:`zero_when_absent`), missing otherwise (a feature the new
    data cannot have, such as ratings in a log without a rating column: unknown, not zero). ``roles``: the roles the
    scored log's columns hold (:meth:`~retention_core.roles.Schema.held`)."""
    return 0.0 if zero_when_absent(feature, roles) else np.nan


def fill_absent(frame: pd.DataFrame, columns: list[str], roles: set[str] | frozenset[str]) -> pd.DataFrame:
    """``frame`` with each of ``columns`` it lacks, valued by :func:`absent_value` (added together: one new table,
    not one per column)."""
    missing = [c for c in columns if c not in frame.columns]
    return frame.assign(**{c: absent_value(c, roles) for c in missing}) if missing else frame


def score(run, df: pd.DataFrame, *, as_of=None, model: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame, object]:
    """Churn probability, risk decile and rank for every user; returns (scores, feature rows, sequences). The same on
    Spark: :func:`retention_core.spark.scoring.score`."""
    key = model or run.best
    m = run.model(key)  # an unknown key: a message listing the run's models
    frame, seq = features_for_run(run, df, as_of=as_of)
    X = frame[run.info["numeric"] + run.info["categorical"]]
    m = for_population(m, X)  # BG/NBD learns from all purchases up to the scoring date
    p = m.predict_proba(X, sequences=seq) if REGISTRY[key].needs_sequences else m.predict_proba(X)
    return scores_table(frame["user_id"], p), frame, seq


def scores_table(user_ids, p) -> pd.DataFrame:
    """``user_id, churn_probability, risk_decile, rank`` from ids and churn probabilities (rank 1 = most at risk)."""
    p = np.clip(np.asarray(p, dtype=float), 0, 1)
    out = pd.DataFrame({"user_id": pd.Series(user_ids).astype(str).to_numpy(), "churn_probability": p})
    out["risk_decile"] = risk_deciles(p).to_numpy(dtype=int)
    order = np.argsort(-p, kind="stable")
    rank = np.empty(len(p), dtype=np.int64)
    rank[order] = np.arange(1, len(p) + 1)
    out["rank"] = rank
    return out


def validation_scores(validation: pd.DataFrame, model: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Scores and feature rows of a run's validation users, from the predictions saved with the run."""
    col = f"p:{model}"
    if col not in validation.columns:
        raise ConfigError(f"The run holds no validation predictions of model {model!r}.")
    drop = [c for c in validation.columns if str(c).startswith("p:") or c == "churned"]
    frame = validation.drop(columns=drop).reset_index(drop=True)
    return scores_table(frame["user_id"], validation[col].to_numpy(dtype=float)), frame


def select(scores: pd.DataFrame, *, top: int | None = None, threshold: float | None = None) -> pd.Series:
    """Mask of users chosen by top-K or by a probability threshold (all when neither)."""
    if top is not None:
        if top < 1:
            raise ConfigError(f"Keep at least 1 user, got {top}.", field="top", value=top)
        return scores["rank"] <= top
    if threshold is not None:
        if not 0 <= threshold <= 1:
            raise ConfigError(f"The threshold must be a probability between 0 and 1, got {threshold}.",
                              field="threshold", value=threshold)
        return scores["churn_probability"] >= threshold
    return pd.Series(True, index=scores.index)


@dataclass
class ScoredFile:
    """What scoring a file gives: every user's score, the chosen users with their columns, and how."""

    scores: pd.DataFrame  # user_id, churn_probability, risk_decile, rank for every user scored
    chosen: pd.DataFrame  # the chosen users: the score columns, reason_1..N, attributes, model, threshold, date
    model: str
    frame: pd.DataFrame  # the feature rows of every user scored
    sequences: np.ndarray | None = None


def score_file(run, df: pd.DataFrame, *, as_of=None, model: str | None = None, top: int | None = None,
               threshold: float | None = None, reasons: int = 0, offers: int = 0,
               pseudonymise_key: str | None = None) -> ScoredFile:
    """Score a table with a saved run (its best model unless ``model`` is named) and choose users by top-K or a
    probability threshold (all when neither), most at risk first (:func:`scored_list`)."""
    if reasons < 0:
        raise ConfigError(f"The number of reasons must be 0 or more, got {reasons}.", field="reasons", value=reasons)
    key = model or run.best
    scores, frame, seq = score(run, df, as_of=as_of, model=key)
    return scored_list(run, key, scores, frame, seq, df=df, as_of=as_of, top=top, threshold=threshold,
                       reasons=reasons, offers=offers, pseudonymise_key=pseudonymise_key)


def scored_list(run, key: str, scores: pd.DataFrame, frame: pd.DataFrame, seq, *, df: pd.DataFrame | None = None,
                as_of=None, top: int | None = None, threshold: float | None = None, reasons: int = 0,
                offers: int = 0, pseudonymise_key: str | None = None) -> ScoredFile:
    """The users chosen from scores (by top-K or a probability threshold, all when neither), most at risk first, with
    the top ``reasons`` per user, ``offer_1..offer_N`` made from the raw log ``df``, the user's attributes, the model,
    its threshold and the scoring date; ids replaced by keyed pseudonyms when a key is given. Whichever engine scored
    (DuckDB or Spark), the list is made here."""
    if reasons < 0:
        raise ConfigError(f"The number of reasons must be 0 or more, got {reasons}.", field="reasons", value=reasons)
    full = scores.copy()
    for a in run.info["categorical"]:
        if a in frame.columns:
            full[a] = frame[a].to_numpy()
    chosen = full.loc[select(scores, top=top, threshold=threshold)].sort_values("rank")
    out = chosen.reset_index(drop=True)
    if reasons:
        idx = chosen.index.to_numpy()
        texts = top_reasons(run, frame.iloc[idx].reset_index(drop=True), n=reasons,
                            sequences=seq[idx] if seq is not None else None, model=key)
        for i in range(reasons):
            out.insert(4 + i, f"reason_{i + 1}", texts[i] if i < len(texts) else "")
    if offers:  # offer_1..offer_N, made before the ids are pseudonymised
        if not isinstance(df, pd.DataFrame):
            raise ConfigError("Offers are made from a table read on this machine, not from a Parquet source read by "
                              "Spark: score without offers, or read the log as a file.", field="offers", value=offers)
        out = offers_for_run(run, df, out, n=offers, as_of=as_of)
    if pseudonymise_key is not None:
        out = pseudonymise_list(out, pseudonymise_key)
    out["model"] = key
    out["threshold"] = float(run.info.get("thresholds", {}).get(key, run.threshold))
    out["scoring_date"] = scoring_date(frame) if len(frame) else str(pd.Timestamp.now().date())
    return ScoredFile(scores, out, key, frame, seq)


# ----------------------------------------------------------------------------------------------- at-risk lists
METHODS = ("threshold", "top_k", "budget", "value", "expected_value")
SCORE_COLUMNS = ["user_id", "churn_probability", "risk_decile", "rank"]


def scoring_date(frame: pd.DataFrame | None) -> str:
    """The date the scores describe: the snapshot date of the feature rows, else today (YYYY-MM-DD)."""
    if frame is not None and "snapshot_date" in frame.columns and len(frame):
        d = pd.Timestamp(frame["snapshot_date"].iloc[0])
        if not pd.isna(d):
            return str(d.date())
    return str(pd.Timestamp.now().date())


def segment_columns(frame: pd.DataFrame | None) -> list[str]:
    """Attribute columns of the scored users that make segments (text or categories: country, channel, plan...)."""
    if frame is None:
        return []
    out = []
    for c in frame.columns:
        if c in ID_COLUMNS or str(c).startswith("p:") or str(c).startswith("reason_"):
            continue
        dt = frame[c].dtype
        if dt == object or pd.api.types.is_string_dtype(dt) or isinstance(dt, pd.CategoricalDtype) or \
                pd.api.types.is_bool_dtype(dt):
            out.append(c)
    return out


def segment_values(frame: pd.DataFrame, column: str, limit: int = 200) -> list[str]:
    """The values of a segment column as the filter compares them (text; missing values as ``(missing)``)."""
    s = frame[column]
    txt = s.astype(object).where(s.notna(), "(missing)").astype(str)
    return sorted(txt.unique().tolist())[:limit]


def _segment_mask(table: pd.DataFrame, segment_filter: dict | None) -> np.ndarray:
    mask = np.ones(len(table), dtype=bool)
    for col, allowed in (segment_filter or {}).items():
        if allowed is None:
            continue
        if col not in table.columns:
            raise ConfigError(f"Cannot filter by {col!r}: the scored users have no such column "
                              f"(they have {', '.join(map(str, table.columns[:12]))}).")
        values = list(allowed) if isinstance(allowed, (list, tuple, set, frozenset, np.ndarray, pd.Series)) \
            else [allowed]
        if not values:
            continue
        s = table[col]
        wanted = {str(v) for v in values}
        txt = s.astype(object).where(s.notna(), "(missing)").astype(str)
        mask &= txt.isin(wanted).to_numpy()
    return mask


def _reason_frame(reasons, n: int) -> pd.DataFrame | None:
    if reasons is None:
        return None
    if isinstance(reasons, pd.DataFrame):
        if len(reasons) != n:
            raise ConfigError(f"Reasons are given for {len(reasons):,} users but {n:,} were scored.")
        return reasons.reset_index(drop=True)
    lists = list(reasons)
    for r in lists:
        if len(r) != n:
            raise ConfigError(f"Reasons are given for {len(r):,} users but {n:,} were scored.")
    return pd.DataFrame({f"reason_{i + 1}": list(r) for i, r in enumerate(lists)})


def at_risk_list(scores: pd.DataFrame, frame: pd.DataFrame | None = None, *, method: str = "threshold",
                 threshold: float | None = None, k: int | None = None, budget: float | None = None,
                 cost_per_contact: float | None = None, value_col: str | None = None,
                 segment_filter: dict | None = None, segment_cols: list[str] | None = None, reasons=None,
                 model: str | None = None, date: str | None = None, save_rate: float | None = None) -> pd.DataFrame:
    """The users to contact, most at risk first.

    ``scores`` comes from :func:`score` and ``frame`` is its feature rows (same rows, same order). Users are first
    narrowed by ``segment_filter`` (column -> allowed value or values; attributes of ``frame`` and ``risk_decile``),
    then chosen by ``method``:

    - ``"threshold"``: everyone whose churn probability is at least ``threshold``;
    - ``"top_k"``: the ``k`` users most at risk;
    - ``"budget"``: as many of the users most at risk as ``budget / cost_per_contact`` pays for;
    - ``"value"``: ranked by value at risk (churn probability x the user's value), keeping the top ``k``, or what
      the budget pays for, or everyone above ``threshold`` (whichever is given, in that order), else everyone;
    - ``"expected_value"``: ranked by expected net value of a contact (churn probability x value x ``save_rate`` -
      ``cost_per_contact``; defaults and wording in :mod:`retention_core.campaign`), keeping the top ``k``, or what the
      budget pays for among users worth contacting, else every user worth contacting (the curve's best point); adds
      ``expected_net_value`` and the assumptions (``save_rate, cost_per_contact, value_basis``) to every row.

    A user's value is ``value_col`` when given, else past revenue (``revenue_365d``, ``revenue_total``), else past
    orders (the purchases a churner takes away), else 1. ``reasons`` (optional) are per-user reason texts aligned
    with ``scores``: ``n`` lists or a DataFrame of ``reason_1..N``. ``model`` and ``date`` fill the ``model`` and
    ``scoring_date`` columns (``date`` defaults to the snapshot date of ``frame``). ``threshold`` filters only for the
    ``"threshold"`` method (and ``"value"`` without a K or a budget); otherwise it is reported as the model's decision
    threshold.

    Columns: ``user_id, churn_probability, risk_decile, rank``, the segment columns, ``reason_1..N`` when given,
    ``value, value_at_risk, threshold, model, scoring_date``. ``rank`` is always the rank by churn probability among
    all scored users. ``attrs["value_basis"]`` names the value column (None: one per user).
    """
    if method not in METHODS:
        raise ConfigError(f"Unknown selection method {method!r}: use one of {', '.join(METHODS)}.")
    missing = [c for c in SCORE_COLUMNS if c not in scores.columns]
    if missing:
        raise ConfigError(f"The scores lack the columns {', '.join(missing)}; score the users first.")
    n = len(scores)
    if frame is not None and len(frame) != n:
        raise ConfigError(f"The scores ({n:,} users) and the feature rows ({len(frame):,}) do not match.")
    if threshold is not None and not 0 <= float(threshold) <= 1:
        raise ConfigError(f"The threshold must be a probability between 0 and 1, got {threshold}.", field="threshold",
                          value=threshold)
    if k is not None and int(k) < 1:
        raise ConfigError(f"The number of users to contact must be at least 1, got {k}.", field="top", value=k)

    base = scores[SCORE_COLUMNS].reset_index(drop=True)
    fr = frame.reset_index(drop=True) if frame is not None else None
    lookup, segs = _segment_lookup(base, fr, segment_filter, segment_cols)

    p = base["churn_probability"].to_numpy(dtype=float)
    value, basis = user_value(fr, n, value_col)
    var = p * value
    keep = np.flatnonzero(_segment_mask(lookup, segment_filter))
    by_rank = keep[np.argsort(base["rank"].to_numpy()[keep], kind="stable")]
    if method == "expected_value":
        chosen, env, assumed = choose_by_expected_value(p, value, by_rank, k=k, budget=budget, save_rate=save_rate,
                                                        cost_per_contact=cost_per_contact)
    else:
        chosen = _choose(method, by_rank, p, var, threshold=threshold, k=k, budget=budget,
                         cost_per_contact=cost_per_contact)
    out = lookup.iloc[chosen].reset_index(drop=True)
    out = out[SCORE_COLUMNS + [c for c in segs if c not in SCORE_COLUMNS]]
    rf = _reason_frame(reasons, n)
    if rf is not None:
        part = rf.iloc[chosen].reset_index(drop=True)
        for c in part.columns:
            out[c] = part[c].fillna("").to_numpy()
    out["value"] = value[chosen]
    out["value_at_risk"] = var[chosen]
    out["threshold"] = float(threshold) if threshold is not None else np.nan
    out["model"] = model if model is not None else ""
    out["scoring_date"] = date or scoring_date(fr)
    if method == "expected_value":  # retention_core.campaign
        out.insert(out.columns.get_loc("value_at_risk") + 1, "expected_net_value", env[chosen])
        out = with_assumptions(out, Assumptions(assumed.save_rate, assumed.cost_per_contact, basis))
    out.attrs["value_basis"] = basis
    out.attrs["method"] = method
    out.attrs["eligible"] = int(len(keep))
    return out


def _choose(method: str, by_rank: np.ndarray, p: np.ndarray, var: np.ndarray, *, threshold, k, budget,
            cost_per_contact) -> np.ndarray:
    """Positions of the users ``method`` picks from the eligible ones (``by_rank``: most at risk first)."""
    if method == "threshold":
        if threshold is None:
            raise ConfigError("Choose a churn-probability threshold to select users by threshold.", field="threshold")
        return by_rank[p[by_rank] >= float(threshold)]
    if method == "top_k":
        if k is None:
            raise ConfigError("Choose how many users to contact (K).", field="top")
        return by_rank[:int(k)]
    if method == "budget":
        if budget is None or cost_per_contact is None:
            raise ConfigError("Give both the campaign budget and the cost per contact.", field="budget")
        return by_rank[:budget_contacts(budget, cost_per_contact)]
    by_value = by_rank[np.argsort(-var[by_rank], kind="stable")]
    if k is not None:
        return by_value[:int(k)]
    if budget is not None or cost_per_contact is not None:
        if budget is None or cost_per_contact is None:
            raise ConfigError("Give both the campaign budget and the cost per contact.", field="budget")
        return by_value[:budget_contacts(budget, cost_per_contact)]
    if threshold is not None:
        return by_value[p[by_value] >= float(threshold)]
    return by_value


def _segment_lookup(base: pd.DataFrame, fr: pd.DataFrame | None, segment_filter, segment_cols) -> tuple:
    """The score columns with the segment columns beside them, and the segment columns' names."""
    segs = list(segment_cols) if segment_cols is not None else segment_columns(fr)
    if fr is None:
        if segs:
            raise ConfigError("Segment columns need the scored users' feature rows.")
        return base, segs
    for c in segs:
        if c not in fr.columns:
            raise ConfigError(f"Segment column {c!r} is not among the scored users' columns.")
    for c in (segment_filter or {}):
        if c not in segs and c in fr.columns and c not in base.columns:
            segs.append(c)
    lookup = pd.concat([base, fr[[c for c in segs if c not in base.columns]]], axis=1) if segs else base
    return lookup, segs


def attach_reasons(list_df: pd.DataFrame, reasons) -> pd.DataFrame:
    """``list_df`` with ``reason_1..N`` (``n`` lists aligned with its rows) placed before ``value`` (a copy)."""
    rf = _reason_frame(reasons, len(list_df))
    out = list_df.drop(columns=[c for c in list_df.columns if str(c).startswith("reason_")])
    at = out.columns.get_loc("value") if "value" in out.columns else len(out.columns)
    for i, c in enumerate(rf.columns if rf is not None else []):
        out.insert(at + i, c, rf[c].fillna("").to_numpy())
    out.attrs.update(list_df.attrs)
    return out


def list_positions(scores: pd.DataFrame, list_df: pd.DataFrame) -> np.ndarray:
    """The rows of ``scores`` (and of its feature rows) that the users of ``list_df`` came from, in list order."""
    ids = pd.Index(scores["user_id"].astype(str))
    if not ids.is_unique:
        raise ConfigError("Some users appear more than once in the scored data; give one row per user.")
    pos = ids.get_indexer(list_df["user_id"].astype(str))
    if (pos < 0).any():
        raise ConfigError("The list holds users that were not scored; score the data again.")
    return pos


def list_summary(list_df: pd.DataFrame) -> dict:
    """Users selected, expected churners among them (sum of churn probabilities) and value at risk."""
    p = list_df["churn_probability"].to_numpy(dtype=float) if len(list_df) else np.zeros(0)
    var = list_df["value_at_risk"].to_numpy(dtype=float) if "value_at_risk" in list_df and len(list_df) \
        else np.zeros(0)
    return {"users": int(len(list_df)), "expected_churners": float(p.sum()), "value_at_risk": float(var.sum()),
            "mean_probability": float(p.mean()) if len(p) else float("nan")}


# ----------------------------------------------------------------------------------------------- export
