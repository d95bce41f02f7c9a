"""The share who churn, then and now: the churn rate of a run's validation customers (the latest labelled snapshot of
an event log, or the held-out rows of a user table) beside the mean predicted churn probability of the customers a
scoring covers, and a plain warning when the two differ by more than :data:`LIMIT_POINTS` percentage points.

The probabilities are never re-weighted to a new base rate: a model learned the churn level of the period it was
checked on, and nothing at scoring time tells what the share who churn will be. The check only shows both figures,
so the analyst can read the expected number of churners with care; the ranking is unaffected either way.

"The customers scored" are all those a scoring covers (every customer active in the lookback window as of the
scoring date, or every row of a user table), before any audience, segment or number of contacts is chosen: the
same population whichever door scores it (the At-risk page, the ``score`` command, the service's batch answer).
One function, :func:`base_rate_check`, gives the figures and the wording to every door.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from .errors import RetentionError

#: Percentage points between the validation churn rate and the mean predicted churn beyond which the analyst is
#: warned (strictly more than this, on the figures rounded to 0.1 point as they are shown).
LIMIT_POINTS = 5.0
#: Fewer customers scored than this (a request to the service about a handful): the figures are given, but their
#: mean says too little about a change in the customers to warn about.
MIN_USERS = 30


@dataclass(frozen=True)
class ValidationChurn:
    """The churn rate of a run's validation customers: the share of them who churned, how many, as of when, and the
    mean churn probability the model gave them (its predictions saved with the run; None when not saved)."""

    rate: float
    users: int
    as_of: str | None = None  # the validation snapshot's date (YYYY-MM-DD); None for a user table
    predicted: float | None = None


@dataclass(frozen=True)
class BaseRateCheck:
    """The mean predicted churn of the customers scored beside the churn rate of the validation customers."""

    predicted_rate: float  # mean churn probability of every customer scored (0..1)
    scored_users: int
    validation_rate: float | None  # share of the validation customers who churned (0..1); None when unknown
    validation_users: int
    validation_as_of: str | None
    validation_predicted: float | None  # the model's mean churn probability on those customers (0..1)
    difference_points: float | None  # (predicted - validation) in percentage points, rounded to 0.1
    summary: str  # the figures in one sentence, always
    warning: str | None  # a plain sentence when they differ by more than LIMIT_POINTS; else None

    @property
    def beyond(self) -> bool:
        return self.warning is not None

    def as_dict(self) -> dict:
        return asdict(self)


def validation_churn(run, model: str | None = None) -> ValidationChurn | None:
    """The churn rate of ``run``'s validation customers, from the validation rows saved with it (see
    :func:`churn_of_rows`; ``model``: whose predictions, the run's best by default); None for a run without them (an
    uplift run, or rows that cannot be read)."""
    if run is None or getattr(run, "task", "churn") != "churn":
        return None
    try:
        val = run.validation()
    except (RetentionError, OSError, ValueError):
        return None
    return churn_of_rows(val, model or (run.info or {}).get("best_model"))


def churn_of_rows(validation: pd.DataFrame, model: str | None = None) -> ValidationChurn | None:
    """The churn rate of a run's validation rows (their ``churned`` column), the date of their snapshot (none for a
    user table) and the mean prediction of ``model`` on them (``p:<model>``); None when the rows hold no outcome."""
    if "churned" not in validation.columns:
        return None
    y = pd.to_numeric(validation["churned"], errors="coerce").dropna()
    if not len(y):
        return None
    as_of = None
    if "snapshot_date" in validation.columns and validation["snapshot_date"].notna().any():
        as_of = str(pd.Timestamp(validation["snapshot_date"].dropna().max()).date())
    col = f"p:{model}"
    predicted = None
    if model and col in validation.columns:
        p = pd.to_numeric(validation[col], errors="coerce").dropna()
        predicted = float(p.mean()) if len(p) else None
    return ValidationChurn(float(y.mean()), int(len(y)), as_of, predicted)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _when(as_of: str | None) -> str:
    if not as_of:
        return ""
    d = pd.Timestamp(as_of)
    return f"as of {d.day} {d:%B %Y}"


def _aside(*parts: str) -> str:
    parts = tuple(x for x in parts if x)
    return f" ({'; '.join(parts)})" if parts else ""


def _apart(diff: float) -> str:
    return "the same as" if diff == 0 else f"{abs(diff):.1f} points {'higher' if diff > 0 else 'lower'} than"


def base_rate_check(run, scores: pd.DataFrame | np.ndarray, *, model: str | None = None,
                    validation: ValidationChurn | None = None, limit_points: float = LIMIT_POINTS) -> BaseRateCheck:
    """The mean predicted churn of every customer in ``scores`` (a scores table with ``churn_probability``, or the
    probabilities themselves) beside ``run``'s validation churn rate (``validation``: given when already read, else
    :func:`validation_churn` of ``model``), with a sentence of both figures and a warning when they differ by more
    than ``limit_points`` percentage points. Nothing is re-weighted."""
    p = scores["churn_probability"] if isinstance(scores, pd.DataFrame) else scores
    p = pd.to_numeric(pd.Series(np.asarray(p, dtype=float).ravel()), errors="coerce").dropna()
    predicted = float(p.mean()) if len(p) else float("nan")
    val = validation if validation is not None else validation_churn(run, model)
    n = int(len(p))
    if val is None or not len(p):
        text = (f"Predicted churn among the {n:,} customers scored: {_pct(predicted)}." if len(p)
                else "No customers scored.")
        return BaseRateCheck(predicted, n, None if val is None else val.rate, 0 if val is None else val.users,
                             None if val is None else val.as_of, None if val is None else val.predicted, None, text,
                             None)
    diff = round(100 * (predicted - val.rate), 1)
    own = "" if val.predicted is None else f"the model predicted {_pct(val.predicted)} for them"
    summary = (f"Predicted churn among the {n:,} customers scored: {_pct(predicted)}, {_apart(diff)} the "
               f"{_pct(val.rate)} who churned among the {val.users:,} customers the model was checked on"
               f"{_aside(_when(val.as_of), own)}.")
    warning = None
    if n < MIN_USERS:
        summary += f" Too few customers scored ({n:,}) to compare the two."
    elif abs(diff) > limit_points:
        warning = (f"The customers scored are predicted to churn at {_pct(predicted)}, {_apart(diff)} the "
                   f"{_pct(val.rate)} who churned among the customers the model was checked on"
                   f"{_aside(_when(val.as_of))}. "
                   + _why(val, limit_points) + "The probabilities are not adjusted for it: rank customers by them, "
                   "but read the number of expected churners with care, and check it against what actually happens "
                   "once the horizon has passed.")
    return BaseRateCheck(predicted, n, val.rate, val.users, val.as_of, val.predicted, diff, summary, warning)


def _why(val: ValidationChurn, limit_points: float) -> str:
    """Where a gap may come from: the model's own probabilities, when they already missed the share who churned
    among the customers it was checked on, else a change in the customers or in the share who churn."""
    if val.predicted is not None and abs(round(100 * (val.predicted - val.rate), 1)) > limit_points:
        side = "lower" if val.predicted < val.rate else "higher"
        return (f"Part of the gap is the model's own: for the customers it was checked on it predicted "
                f"{_pct(val.predicted)}, so its probabilities run {side} than the share who actually churn (training "
                "with calibration brings them closer). The customers, or the share who churn, may also have "
                "changed since. ")
    return "The customers, or the share who churn, may have changed since. "
