"""Cohort retention: buyers grouped by the period of their first qualifying purchase (the cohort) and, for each later
period, the share of the cohort that bought again in it; the retention matrix analysts know from Amplitude or
Mixpanel. It works on the canonical event table of :func:`retention_core.events.canonical_events` and runs in DuckDB,
so it stays fast on millions of events. The matrix also says where the log begins and ends, so the heatmap can mark
the partial last period and the cohort that holds customers who bought before the log began.
"""
from __future__ import annotations

from typing import Any

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
        observed), not 0. ``attrs["period"]`` holds ``period``; ``attrs`` also say where the log begins and ends
        (``log_start``, ``log_end``), whether its last period is partial (``partial_last``: the log ends before the
        period does, so each cohort's last observed cell counts only part of a period) and which cohort
        (``earlier_customers_cohort``, the log's first period) also holds customers who bought before the log began.
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

    counts, last, (start, end) = _cohort_counts(ev, part, int(max_periods))
    if counts.empty:
        return out

    counts["cohort"] = pd.to_datetime(counts["cohort"]).astype("datetime64[ns]")
    users = counts.pivot(index="cohort", columns="k", values="users").sort_index()
    users = users.reindex(columns=range(int(max_periods) + 1))
    sizes = users[0].astype("float64")
    share = users.div(sizes, axis=0).fillna(0.0)

    # Periods after the end of the data are unknown, not zero.
    observed = observed_periods(pd.Timestamp(last), share.index, period)
    k = np.arange(int(max_periods) + 1)
    share = share.mask(k[None, :] > observed[:, None])

    share.insert(0, "cohort_size", sizes.astype("int64"))
    share.index.name = "cohort"
    share.columns.name = None
    first_cohort = share.index[0]
    if max_cohorts is not None:
        share = share.iloc[-int(max_cohorts):]
    share.attrs.update(period=period, **_log_edges(start, end, pd.Timestamp(last), first_cohort, period))
    return share


def _log_edges(start, end, last: pd.Timestamp, first_cohort: pd.Timestamp, period: str) -> dict:
    """What the heatmap must mark: the log's first and last day, the start of its last period and whether that period
    is partial (the log ends before it does), and the cohort of the log's first period, which also holds the customers
    who bought before the log began (their first purchase in the log is not their first purchase)."""
    start, end = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    step = {"W": pd.DateOffset(weeks=1), "M": pd.DateOffset(months=1), "Q": pd.DateOffset(months=3)}[period]
    period_end = (last + step - pd.Timedelta(days=1)).normalize()
    return dict(log_start=start, log_end=end, last_period=last, partial_last=bool(end < period_end),
                earlier_customers_cohort=first_cohort if first_cohort <= start else None)


def _cohort_counts(ev: pd.DataFrame, part: str, max_periods: int) -> tuple[pd.DataFrame, Any]:
    """Users with a purchase ``k`` periods after their first one, per cohort; the last period of the data, and its
    first and last event times."""
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
            WHERE date_diff('{part}', f.cohort, p.p) <= {max_periods}
            GROUP BY 1, 2
        """).df()
        last, start, end = con.execute(f"SELECT date_trunc('{part}', max(ts)), min(ts), max(ts) FROM ev").fetchone()
    finally:
        con.close()
    return counts, last, (start, end)


def observed_periods(last: pd.Timestamp, cohorts: pd.DatetimeIndex, period: str) -> np.ndarray:
    """For each cohort, the last period after its first one that the data covers."""
    if period == "W":
        return ((last - cohorts).days // 7).to_numpy()
    months = 3 if period == "Q" else 1
    return (((last.year - cohorts.year) * 12 + (last.month - cohorts.month)) // months).to_numpy()


def cohort_label(cohort: pd.Timestamp, period: str = "M") -> str:
    """How a cohort is named on screen: ``2024-03`` (month), ``2024-W10`` (week) or ``2024-Q1`` (quarter)."""
    ts = pd.Timestamp(cohort)
    if period == "W":
        iso = ts.isocalendar()
        return f"{iso.year}-W{iso.week:02d}"
    if period == "Q":
        return f"{ts.year}-Q{(ts.month - 1) // 3 + 1}"
    return f"{ts:%Y-%m}"
