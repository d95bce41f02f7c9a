"""A shop log with a planted campaign effect: the known answer that campaign results are checked against.

1. :func:`history_log`: the generator's log (:func:`assets.generator.generate_events`) up to an as-of date, nothing
   after it. Train a run on it (or use one), score it as of that date with a control group held out.
2. :func:`plant_outcomes`: given the scored list's ``user_id`` and ``group`` columns, writes the horizon after the
   as-of date: each listed customer comes back (one purchase line, on a random day of the horizon) with a known
   probability, higher for the contacted (``contact_rate``) than for the control group (``control_rate``), optionally
   different in one segment; returning customers spend a random amount around ``spend``. An event at the very end of
   the horizon makes the log reach it, so the scoring's outcome is observed. Returns the whole log and the truth
   (who came back and what they spent), from which the expected campaign figures are computed by hand.

The same arguments always give the same log.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .generator import generate_events


def history_log(n_users: int = 800, *, seed: int = 11, start: str = "2023-01-01", days: int = 500,
                as_of: str = "2023-12-01") -> pd.DataFrame:
    """The generated log of ``n_users`` customers up to ``as_of`` (a midnight: events at or before it)."""
    raw = generate_events(n_users, seed=seed, start=start, days=days)
    return raw[raw["event_time"] <= pd.Timestamp(as_of)].reset_index(drop=True)


def _rates(attrs: pd.DataFrame, group: np.ndarray, contact_rate: float, control_rate: float,
           segment_rates: dict | None) -> np.ndarray:
    p = np.where(group == "contact", contact_rate, control_rate).astype(float)
    for col, by_value in (segment_rates or {}).items():
        values = attrs[col].astype(str).to_numpy()
        for value, (pc, p0) in by_value.items():
            hit = values == str(value)
            p[hit] = np.where(group[hit] == "contact", pc, p0)
    return p


def plant_outcomes(history: pd.DataFrame, listed: pd.DataFrame, *, as_of: str = "2023-12-01",
                   horizon_days: int = 60, contact_rate: float = 0.45, control_rate: float = 0.25,
                   segment_rates: dict | None = None, spend: float = 40.0,
                   seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the log with the planted horizon appended, the truth ``user_id, group, <attributes>, rate, returned,
    revenue``). ``listed`` holds ``user_id`` and ``group`` (``contact``/``control``); ``segment_rates`` maps an
    attribute column to ``{value: (contact rate, control rate)}`` for the customers with that value."""
    rng = np.random.default_rng(seed)
    last = history.sort_values("event_time").drop_duplicates("customer_id", keep="last")
    last = last.assign(customer_id=last["customer_id"].astype(str)).set_index("customer_id")
    ids = listed["user_id"].astype(str).to_numpy()
    attrs = last.reindex(ids)
    group = listed["group"].astype(str).to_numpy()
    p = _rates(attrs, group, contact_rate, control_rate, segment_rates)
    returned = rng.random(len(ids)) < p
    amount = np.round(spend * rng.lognormal(0.0, 0.3, len(ids)), 2)
    T = pd.Timestamp(as_of)
    n = int(returned.sum())
    when = T + pd.to_timedelta(rng.integers(0, horizon_days, n), unit="D") + pd.Timedelta(hours=12)
    rows = attrs[returned].reset_index().rename(columns={"index": "customer_id"})
    rows = rows.assign(event_time=when.astype("datetime64[s]"), event_type="purchase",
                       order_id=[f"PL{i:07d}" for i in range(n)], quantity=np.int16(1),
                       unit_price=amount[returned].astype(np.float32), rating=pd.NA)
    end = attrs.iloc[[0]].reset_index().rename(columns={"index": "customer_id"})
    end = end.assign(event_time=(T + pd.Timedelta(days=horizon_days)).to_datetime64().astype("datetime64[s]"),
                     event_type="view", order_id=pd.NA, quantity=np.int16(1), rating=pd.NA)
    cols = list(history.columns)
    full = pd.concat([history.astype({c: object for c in cols if isinstance(history[c].dtype, pd.CategoricalDtype)}),
                      rows[cols], end[cols]], ignore_index=True)
    full = full.sort_values("event_time", kind="stable").reset_index(drop=True)
    truth = pd.DataFrame({"user_id": ids, "group": group, "rate": p, "returned": returned,
                          "revenue": np.where(returned, amount, 0.0)})
    for c in ("country", "channel", "device"):
        if c in attrs.columns:
            truth[c] = attrs[c].astype(str).to_numpy()
    return full, truth
