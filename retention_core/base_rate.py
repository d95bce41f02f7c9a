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


@dataclass(frozen=True)
class ValidationChurn:
    """The churn rate of a run's validation customers: the share of them who churned, how many, and as of when."""

    rate: float
    users: int
    as_of: str | None = None  # the validation snapshot's date (YYYY-MM-DD); None for a user table


@dataclass(frozen=True)
class BaseRateCheck:
    """The mean predicted churn of the customers scored beside the churn rate of the validation customers."""

    predicted_rate: float  # mean churn probability of every customer scored (0..1)
    scored_users: int
    validation_rate: float | None  # share of the validation customers who churned (0..1); None when unknown
    validation_users: int
    validation_as_of: str | None
    difference_points: float | None  # (predicted - validation) in percentage points, rounded to 0.1
    summary: str  # the figures in one sentence, always
    warning: str | None  # a plain sentence when they differ by more than LIMIT_POINTS; else None

    @property
    def beyond(self) -> bool:
        return self.warning is not None

    def as_dict(self) -> dict:
        return asdict(self)


def validation_churn(run) -> ValidationChurn | None:
    """The churn rate of ``run``'s validation customers, from the validation rows saved with it (column
    ``churned``); None for a run without them (an uplift run, or rows that cannot be read)."""
    if getattr(run, "task", "churn") != "churn":
        return None
    try:
        val = run.validation()
    except (RetentionError, OSError, ValueError):
        return None
    if "churned" not in val.columns:
        return None
    y = pd.to_numeric(val["churned"], errors="coerce").dropna()
    if not len(y):
        return None
    as_of = None
    if "snapshot_date" in val.columns and val["snapshot_date"].notna().any():
        as_of = str(pd.Timestamp(val["snapshot_date"].dropna().max()).date())
    return ValidationChurn(float(y.mean()), int(len(y)), as_of)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _when(as_of: str | None) -> str:
    if not as_of:
        return ""
    d = pd.Timestamp(as_of)
    return f" (as of {d.day} {d:%B %Y})"


def base_rate_check(run, scores: pd.DataFrame | np.ndarray, *, validation: ValidationChurn | None = None,
                    limit_points: float = LIMIT_POINTS) -> BaseRateCheck:
    """The mean predicted churn of every customer in ``scores`` (a scores table with ``churn_probability``, or the
    probabilities themselves) beside ``run``'s validation churn rate (``validation``: given when already read, else
    :func:`validation_churn`), with a sentence of both figures and a warning when they differ by more than
    ``limit_points`` percentage points. Nothing is re-weighted."""
    p = scores["churn_probability"] if isinstance(scores, pd.DataFrame) else scores
    p = pd.to_numeric(pd.Series(np.asarray(p, dtype=float).ravel()), errors="coerce").dropna()
    predicted = float(p.mean()) if len(p) else float("nan")
    val = validation if validation is not None else validation_churn(run)
    n = int(len(p))
    if val is None or not len(p):
        text = (f"Predicted churn among the {n:,} customers scored: {_pct(predicted)}." if len(p)
                else "No customers scored.")
        return BaseRateCheck(predicted, n, None if val is None else val.rate, 0 if val is None else val.users,
                             None if val is None else val.as_of, None, text, None)
    diff = round(100 * (predicted - val.rate), 1)
    apart = "the same" if diff == 0 else f"{abs(diff):.1f} points {'higher' if diff > 0 else 'lower'}"
    summary = (f"Predicted churn among the {n:,} customers scored: {_pct(predicted)}, against {_pct(val.rate)} who "
               f"churned among the {val.users:,} customers the model was checked on{_when(val.as_of)}: {apart}.")
    warning = None
    if abs(diff) > limit_points:
        warning = (f"The customers scored are predicted to churn at {_pct(predicted)}, against {_pct(val.rate)} "
                   f"among the customers the model was checked on{_when(val.as_of)}: {apart}. The customers, or "
                   "the share who churn, may have changed "
                   "since. The probabilities are not adjusted for it: rank customers by them, but read the number "
                   "of expected churners with care, and check them against what actually happens once the horizon "
                   "has passed.")
    return BaseRateCheck(predicted, n, val.rate, val.users, val.as_of, diff, summary, warning)
