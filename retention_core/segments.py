"""Segments of users: for now, cohort retention.

:func:`cohort_retention` groups buyers by the period of their first qualifying purchase (the cohort) and reports, for
each later period, the share of the cohort that made a qualifying purchase in it: the retention matrix analysts know
from Amplitude or Mixpanel. It works on the canonical event table of
:func:`retention_core.events.canonical_events` and runs in DuckDB, so it stays fast on millions of events.
"""
from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from .errors import ConfigError

#: Supported cohort periods: pandas-style alias -> DuckDB date part.
PERIODS = {"W": "week", "M": "month", "Q": "quarter"}
PERIOD_LABELS = {"W": "Week", "M": "Month", "Q": "Quarter"}


def cohort_retention(ev: pd.DataFrame, *, period: str = "M", max_periods: int = 12,
                     max_cohorts: int | None = None) -> pd.DataFrame:
    """Cohort retention matrix of a canonical event table.

    Parameters
    ----------
    ev:
        Canonical events; only ``user_id``, ``ts`` and ``is_purchase`` are used.
    period:
        ``"M"`` (calendar month, the default), ``"W"`` (ISO week starting Monday) or ``"Q"`` (calendar quarter).
    max_periods:
        The last period shown: columns run from ``0`` (the period of the first purchase) to ``max_periods``.
    max_cohorts:
        Keep only the most recent cohorts (all when None).

    Returns
    -------
    pandas.DataFrame
        One row per cohort, indexed by the cohort's first day (``cohort``, a timestamp), oldest first. Column
        ``cohort_size`` is the number of users whose first qualifying purchase fell in that period; integer columns
        ``0 .. max_periods`` hold the share (0..1) of the cohort with at least one qualifying purchase in that many
        periods after the first one. Period 0 is 1.0 by definition. Cells after the end of the data are NaN (not yet
        observed), not 0. ``attrs["period"]`` holds ``period``.
    """
    if period not in PERIODS:
        raise ConfigError(f"Cohort period must be one of {', '.join(PERIODS)}, got {period!r}.")
    if not isinstance(max_periods, (int, np.integer)) or isinstance(max_periods, bool) or max_periods < 0:
        raise ConfigError(f"The number of periods must be a whole number of at least 0, got {max_periods!r}.")
    missing = [c for c in ("user_id", "ts", "is_purchase") if c not in ev.columns]
    if missing:
        raise ConfigError(f"Cohort retention needs the canonical event columns; missing: {', '.join(missing)}.")
    part = PERIODS[period]
    columns = ["cohort_size"] + list(range(int(max_periods) + 1))
    out = pd.DataFrame(columns=columns, index=pd.DatetimeIndex([], name="cohort"), dtype="float64")
    out.attrs["period"] = period
    if ev.empty:
        return out

    con = duckdb.connect()
    try:
        con.register("ev", ev[["user_id", "ts", "is_purchase"]])
        counts = con.execute(f"""
            WITH p AS (
                SELECT user_id, date_trunc('{part}', ts) AS p FROM ev WHERE is_purchase AND ts IS NOT NULL GROUP BY 1, 2
            ),
            f AS (SELECT user_id, min(p) AS cohort FROM p GROUP BY 1)
            SELECT f.cohort, date_diff('{part}', f.cohort, p.p) AS k, count(*) AS users
            FROM p JOIN f USING (user_id)
            WHERE date_diff('{part}', f.cohort, p.p) <= {int(max_periods)}
            GROUP BY 1, 2
        """).df()
        last = con.execute(f"SELECT date_trunc('{part}', max(ts)) FROM ev").fetchone()[0]
    finally:
        con.close()
    if counts.empty:
        return out

    counts["cohort"] = pd.to_datetime(counts["cohort"]).astype("datetime64[ns]")
    users = counts.pivot(index="cohort", columns="k", values="users").sort_index()
    users = users.reindex(columns=range(int(max_periods) + 1))
    sizes = users[0].astype("float64")
    share = users.div(sizes, axis=0).fillna(0.0)

    # Periods after the end of the data are unknown, not zero.
    last = pd.Timestamp(last)
    cohorts = share.index
    if period == "W":
        observed = ((last - cohorts).days // 7).to_numpy()
    else:
        months = 3 if period == "Q" else 1
        observed = (((last.year - cohorts.year) * 12 + (last.month - cohorts.month)) // months).to_numpy()
    k = np.arange(int(max_periods) + 1)
    share = share.mask(k[None, :] > observed[:, None])

    share.insert(0, "cohort_size", sizes.astype("int64"))
    share.index.name = "cohort"
    share.columns.name = None
    if max_cohorts is not None:
        share = share.iloc[-int(max_cohorts):]
    share.attrs["period"] = period
    return share


def cohort_label(cohort: pd.Timestamp, period: str = "M") -> str:
    """How a cohort is named on screen: ``2024-03`` (month), ``2024-W10`` (week) or ``2024-Q1`` (quarter)."""
    ts = pd.Timestamp(cohort)
    if period == "W":
        iso = ts.isocalendar()
        return f"{iso.year}-W{iso.week:02d}"
    if period == "Q":
        return f"{ts.year}-Q{(ts.month - 1) // 3 + 1}"
    return f"{ts:%Y-%m}"
