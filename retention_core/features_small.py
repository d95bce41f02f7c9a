"""The features of a few customers, in NumPy: the columns and values of :func:`retention_core.features.compute`
without DuckDB, for small logs (one customer's history sent to the scoring service, a handful of users scored).

Why: the DuckDB engine is built for millions of events; its fixed cost (temporary tables, packed counts, one large
query, the conversion of the result) is 25-35 ms whatever the size, most of the time the service spends on one
customer. Here the same steps run over a few arrays in about a millisecond. :func:`fits` says which engine a log
gets (``build_dataset`` asks it): logs of up to ``SMALL_EVENTS`` events come here, larger ones go to DuckDB.

Each column is compiled from its one definition in the registry (:mod:`retention_core.feature_registry`), as the
DuckDB engine compiles it; this module computes the registry's leaves (counts, money, instants, gaps, distinct
products per period) the way ``features.py`` does (its module notes), step for step, so that every value is the same
(``tests/core/test_features_small.py`` compares every column with the DuckDB engine):

- an event's day bucket is the first midnight at or after it, and the cutoff ``T`` is a day number: an event counts
  when its bucket is ``<= T``; a window "the last w days" is ``bucket > T - w``; the 90 days before the last 90 are
  ``T - 180 < bucket <= T - 90``;
- events are first reduced to one row per user and day bucket (:class:`_Days`): orders of a day (distinct order ids
  among its purchase lines, plus purchase lines without an order id), lines, returns, cancellations, browsing events,
  ratings, events per type, revenue and units of product lines, first and last purchase instants, the last instant,
  and per attribute the latest value of the day (the earliest row among rows at the same instant, as DuckDB's
  ``arg_max`` in scan order);
- a snapshot holds the users with a purchase day in ``(T - lookback, T]`` and a product purchase (not postage or
  fees) at or before ``T``; its features aggregate their days ``<= T``;
- durations count whole seconds (each instant's seconds floored, as ``date_diff('second')``) over 86400; ratios are
  missing where the divisor is 0; the spread of gaps is the sample standard deviation (missing for one gap); money
  sums are rounded to a millionth before anything divides them (``features.round_money``);
- the event types counted are the log's most frequent (``features._event_types``), named as DuckDB names repeated
  columns; the columns of what the log lacks everywhere are dropped by the DuckDB engine's own rule.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import features as duck
from .events import CANONICAL
from .feature_expr import Leaf, Period, compile_expr
from .feature_registry import FEATURES, Column, Registry

#: Logs of up to this many events get this engine; larger ones the DuckDB engine. Measured on one core of the
#: 2-core development machine (shared database, one cutoff): 100 events 1.7 ms here against 32 ms in DuckDB, 5,800
#: events 4 ms against 39 ms, 11,600 events 6.5 ms against 41 ms, 39,000 events 20 ms against 49 ms. The bound
#: keeps the engine built for volume in charge of volume, well before the two meet.
SMALL_EVENTS = 20_000
SECOND_NS = 10**9
_EPOCH = pd.Timestamp("1970-01-01")
_BIG, _SMALL = np.iinfo(np.int64).max, np.iinfo(np.int64).min
#: Column names the SQL itself uses: an attribute with one of these names is left to the DuckDB engine.
_TAKEN = {"T", "b", "user_id", "snapshot_date", "churned", "gap", "fb"}


def fits(ev: pd.DataFrame, cfg, features: Registry = FEATURES) -> bool:
    """Whether this engine computes the features of ``ev`` (the canonical event table): a small log with no
    attribute named like a feature (or like the SQL's own columns, which the DuckDB engine keeps apart)."""
    if len(ev) > SMALL_EVENTS:
        return False
    attributes = [c for c in ev.columns if c not in CANONICAL]
    return not any(a in _TAKEN or a.startswith("_") or features.claims(a) for a in attributes)


# ----------------------------------------------------------------------------------------------- the per-day table
@dataclass
class _Days:
    """One row per user and day bucket with any event, sorted by user and bucket (``daily`` of the SQL)."""

    user: np.ndarray  # user code (codes follow the ids' text order)
    b: np.ndarray  # day bucket, days since 1970-01-01
    n: dict[str, np.ndarray]  # counts: orders, lines, returns, cancels, events, browsing, ratings, days
    purchase: np.ndarray  # any purchase line
    sold: np.ndarray  # any product purchase line (not postage or fees)
    revenue: np.ndarray
    units: np.ndarray
    rating_sum: np.ndarray
    rating_min: np.ndarray  # NaN without ratings
    first_p: np.ndarray  # instants in nanoseconds
    last_p: np.ndarray
    last_ts: np.ndarray
    types: np.ndarray  # (days, types) events of each counted type
    attrs: list[np.ndarray] = field(default_factory=list)  # per attribute, the day's latest value code (-1: none)


@dataclass
class _Log:
    """What the snapshots read: the per-day table, the users' ids, products and categories bought, what the log
    holds and the values behind codes."""

    days: _Days
    users: np.ndarray  # user id text by code
    n_users: int
    types: list[str]
    attr_values: list[np.ndarray]
    bought: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]  # product/category: (user, bucket, code) per line
    lacks: set[str]  # what no event has: rating, amount, quantity, category, product


def _coded(s: pd.Series, *, values: bool = True, sort: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """Integer codes (-1: missing) and the text behind them, as ``features._codes`` gives them (a categorical's own
    codes, read without the Series it would build; with ``sort``, codes in the text's order)."""
    if not isinstance(s.dtype, pd.CategoricalDtype):
        codes, text = duck._codes(s, values=values, sort=sort)
        return codes.astype(np.int64), text
    cat = s.array
    codes = np.asarray(cat.codes, dtype=np.int64)
    if not (values or sort):
        return codes, None
    text = np.asarray(cat.categories.astype(str), dtype=object)
    if sort and len(text):
        order = np.argsort(text, kind="stable")  # code point order: the UTF-8 byte order DuckDB's codes follow
        rank = np.empty(len(text) + 1, dtype=np.int64)
        rank[order] = np.arange(len(text))
        rank[-1] = -1  # a missing value (-1) reads the last entry
        codes, text = rank[codes], text[order]
    return codes, text


def _per_day(ev: pd.DataFrame, attributes: list[str]) -> _Log:
    ev = ev.copy(deep=False)
    ev.attrs = {}  # each column taken would copy the table's notes (the cleaning counts) again
    user, users = _coded(ev["user_id"], sort=True)
    bucket = duck._bucket_days(ev["ts"]).astype(np.int64)
    ts = ev["ts"].to_numpy(dtype="datetime64[ns]").view(np.int64)
    lo = int(bucket.min()) if len(bucket) else 0
    span = (int(bucket.max()) - lo + 1) if len(bucket) else 1
    keys, day = np.unique(user.astype(np.int64) * span + (bucket - lo), return_inverse=True)
    nd = len(keys)

    def count(mask: np.ndarray) -> np.ndarray:
        return np.bincount(day[mask], minlength=nd)

    def total(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return np.bincount(day[mask], weights=values[mask], minlength=nd)

    purchase = ev["is_purchase"].to_numpy(dtype=bool)
    ret, cancel = ev["is_return"].to_numpy(dtype=bool), ev["is_cancel"].to_numpy(dtype=bool)
    sold = purchase & ~ev["is_nonproduct"].to_numpy(dtype=bool)
    amount, units, rating = (duck._floats(ev[c]) for c in ("amount", "quantity", "rating"))
    rated = ~np.isnan(rating)
    order, _ = _coded(ev["order_id"], values=False)
    width = int(order.max(initial=-1)) + 1
    with_id = purchase & (order >= 0)
    pairs = np.unique(day[with_id].astype(np.int64) * max(width, 1) + order[with_id])  # distinct (day, order)
    n = {"orders": np.bincount(pairs // max(width, 1), minlength=nd) + count(purchase & (order < 0)),
         "lines": count(purchase), "returns": count(ret), "cancels": count(cancel), "events": count(np.ones_like(purchase)),
         "browsing": count(~purchase & ~ret & ~cancel), "ratings": count(rated), "days": np.ones(nd, dtype=np.int64)}
    rating_min = np.full(nd, np.inf)
    np.minimum.at(rating_min, day[rated], rating[rated])
    first_p, last_p, last_ts = np.full(nd, _BIG), np.full(nd, _SMALL), np.full(nd, _SMALL)
    np.minimum.at(first_p, day[purchase], ts[purchase])
    np.maximum.at(last_p, day[purchase], ts[purchase])
    np.maximum.at(last_ts, day, ts)
    et_codes, et_values = _coded(ev["event_type"])
    top = duck._event_types(et_codes, et_values)
    types = np.zeros((nd, len(top)), dtype=np.int64)
    for i, (code, _) in enumerate(top):
        types[:, i] = count(et_codes == code)
    days = _Days(user=(keys // span).astype(np.int64), b=keys % span + lo, n=n, purchase=n["lines"] > 0,
                 sold=count(sold) > 0,
                 revenue=total(amount, sold & ~np.isnan(amount)), units=total(units, sold & ~np.isnan(units)),
                 rating_sum=total(rating, rated), rating_min=np.where(n["ratings"] > 0, rating_min, np.nan),
                 first_p=first_p, last_p=last_p, last_ts=last_ts, types=types)
    attr_values = []
    for a in attributes:
        codes, values = _coded(ev[a])
        days.attrs.append(_latest_of_day(codes, ts, day, nd))
        attr_values.append(values)
    bought, lacks = {}, {c for c, v in (("rating", rating), ("amount", amount), ("quantity", units))
                         if np.isnan(v).all()}
    for c in ("product", "category"):
        codes, _ = _coded(ev[c], values=False)
        keep = sold & (codes >= 0)
        bought[c] = (user[keep].astype(np.int64), bucket[keep], codes[keep].astype(np.int64))
        if (codes < 0).all():
            lacks.add(c)
    return _Log(days, users, len(users), [t for _, t in top], attr_values, bought, lacks)


def _latest_of_day(codes: np.ndarray, ts: np.ndarray, day: np.ndarray, nd: int) -> np.ndarray:
    """Each day's latest known value code (-1: none that day); at one instant, the earliest row's."""
    rows = np.flatnonzero(codes >= 0)
    out = np.full(nd, -1, dtype=np.int64)
    if len(rows):
        order = rows[np.lexsort((rows, -ts[rows], day[rows]))]  # by day, latest instant first, then row order
        d = day[order]
        first = np.ones(len(order), dtype=bool)
        first[1:] = d[1:] != d[:-1]
        out[d[first]] = codes[order[first]]
    return out


# ----------------------------------------------------------------------------------------------- one snapshot
class _Snapshot:
    """The users of one cutoff ``T`` and sums over their days ``<= T`` (``agg`` of the SQL)."""

    def __init__(self, log: _Log, T: int, lookback: int):
        D = log.days
        self.log, self.D, self.T = log, D, T
        past = D.b <= T
        users = np.unique(D.user[past & (D.b > T - lookback) & D.purchase])
        self.users = users[np.isin(users, D.user[past & D.sold])]  # a product bought: not a fees-only user
        self.row_of = np.full(log.n_users, -1, dtype=np.int64)
        self.row_of[self.users] = np.arange(len(self.users))
        self.row = self.row_of[D.user]
        self.mine = past & (self.row >= 0)
        self.k = len(self.users)

    def sum(self, values: np.ndarray, within: np.ndarray | None = None) -> np.ndarray:
        m = self.mine if within is None else self.mine & within
        return np.bincount(self.row[m], weights=values[m], minlength=self.k).astype(np.float64)

    def extreme(self, values: np.ndarray, within: np.ndarray, start, ufunc) -> np.ndarray:
        out = np.full(self.k, start, dtype=values.dtype)
        m = self.mine & within
        ufunc.at(out, self.row[m], values[m])
        return out


def _ratio(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``x / nullif(y, 0)``: missing where ``y`` is 0."""
    out = np.full(len(x), np.nan)
    np.divide(x, y, out=out, where=y != 0)
    return out


class _Leaves:
    """The registry's leaves (:mod:`retention_core.feature_expr`) for one snapshot, each computed once: sums over
    the users' days up to the cutoff, per period, and the instants, gaps and distinct counts."""

    def __init__(self, s: _Snapshot):
        self.s, self.memo = s, {}

    def __call__(self, leaf: Leaf) -> np.ndarray:
        if leaf not in self.memo:
            self.memo[leaf] = self._compute(leaf)
        return self.memo[leaf]

    def _within(self, period: Period) -> np.ndarray | None:
        b, T = self.s.D.b, self.s.T
        if period.start is None and period.end == 0:
            return None
        within = np.ones(len(b), dtype=bool) if period.start is None else b > T - period.start
        return within & (b <= T - period.end) if period.end else within

    def _counted(self, field: str) -> np.ndarray:
        D = self.s.D
        if field == "purchase_days":
            return D.purchase.astype(np.float64)
        return D.types[:, int(field[3:])] if field.startswith("et_") else D.n[field]

    def _seconds(self, instant: str):
        """Whole seconds of an instant (each instant's seconds floored): the cutoff's, or per user."""
        s, D = self.s, self.s.D
        if instant == "cutoff":
            return np.int64(s.T) * 86_400
        if instant == "last_event":
            return s.extreme(D.last_ts, s.mine, _SMALL, np.maximum) // SECOND_NS
        if instant == "last_purchase":
            return s.extreme(D.last_p, D.purchase, _SMALL, np.maximum) // SECOND_NS
        return s.extreme(D.first_p, D.purchase, _BIG, np.minimum) // SECOND_NS

    def _compute(self, leaf: Leaf) -> np.ndarray:
        s, D = self.s, self.s.D
        if leaf.kind == "count":
            return s.sum(self._counted(leaf.field), self._within(leaf.period))
        if leaf.kind == "money":  # money sums rounded as every engine rounds them
            return duck.round_money(s.sum(D.revenue, self._within(leaf.period)))
        if leaf.kind == "sum":
            return s.sum(D.units if leaf.field == "units" else D.rating_sum)
        if leaf.kind == "min":
            return s.extreme(D.rating_min, D.n["ratings"] > 0, np.nan, np.fmin)
        if leaf.kind == "span":
            return self._seconds(leaf.to) - self._seconds(leaf.field)
        if leaf.kind == "gaps":
            if "gaps" not in self.memo:
                self.memo["gaps"] = _gaps(s)
            return self.memo["gaps"][leaf.field]
        if leaf.kind == "distinct":
            return _breadth(s, leaf.field)
        raise ValueError(f"no NumPy computation for {leaf!r}")


_NUMPY_OPS = {"const": lambda v: v, "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
              "ratio": lambda x, y: _ratio(*np.broadcast_arrays(np.asarray(x, dtype=np.float64), y)),
              "ln": np.log, "greatest": np.maximum}


def _values(columns: list[Column], leaf: _Leaves) -> dict[str, np.ndarray]:
    """Each column's values, compiled from its definition."""
    out = {}
    for c in columns:
        v = np.asarray(compile_expr(c.expr, leaf, _NUMPY_OPS), dtype=np.float64)
        out[c.name] = np.full(leaf.s.k, v) if v.ndim == 0 else v
    return out


def _attributes(s: _Snapshot, attributes: list[str]) -> dict[str, np.ndarray]:
    """Each attribute's latest known value at or before the cutoff (text; None when never known)."""
    out = {}
    index = np.arange(len(s.D.b))
    for a, codes, values in zip(attributes, s.D.attrs, s.log.attr_values):
        last = s.extreme(index, codes >= 0, -1, np.maximum)  # days are sorted by user and bucket: the latest day
        known = last >= 0
        text = np.full(s.k, None, dtype=object)
        text[known] = values[codes[last[known]]]
        out[a] = text
    return out


def _gaps(s: _Snapshot) -> dict[str, np.ndarray]:
    """Days between consecutive purchase days up to the cutoff: mean, sample spread and maximum."""
    D = s.D
    days = np.flatnonzero(D.purchase)
    u, b = D.user[days], D.b[days]
    same = u[1:] == u[:-1]
    gu, gb, gap = u[1:][same], b[1:][same], (b[1:] - b[:-1])[same]  # each gap belongs to its later purchase day
    row = s.row_of[gu]
    m = (gb <= s.T) & (row >= 0)
    row, whole = row[m], gap[m].astype(np.int64)
    gap = whole.astype(np.float64)
    count = np.bincount(row, minlength=s.k)
    mean = _ratio(np.bincount(row, weights=gap, minlength=s.k), count.astype(np.float64))
    # the sample spread from exact integer sums, then one division and one square root, as the other engines
    # compute it: the same bits whatever order the gaps are summed in
    s1, s2 = np.zeros(s.k, dtype=np.int64), np.zeros(s.k, dtype=np.int64)
    np.add.at(s1, row, whole)
    np.add.at(s2, row, whole * whole)
    spread = np.full(s.k, np.nan)
    many = count > 1
    n = count[many].astype(np.int64)
    spread[many] = np.sqrt((n * s2[many] - s1[many] * s1[many]).astype(np.float64) / (n * (n - 1)).astype(np.float64))
    top = np.full(s.k, -np.inf)
    np.maximum.at(top, row, gap)
    return {"mean": mean, "std": spread, "max": np.where(count > 0, top, np.nan)}


def _breadth(s: _Snapshot, column: str) -> np.ndarray:
    """Distinct products (or categories) bought up to the cutoff."""
    user, bucket, codes = s.log.bought[column]
    row = s.row_of[user]
    m = (bucket <= s.T) & (row >= 0)
    pairs = np.unique(row[m] * (int(codes.max(initial=0)) + 1) + codes[m])
    return np.bincount(pairs // (int(codes.max(initial=0)) + 1), minlength=s.k).astype(np.float64)


def _churned(s: _Snapshot, horizon: int, end_day: int) -> np.ndarray:
    """1 without a purchase day in ``(T, T + horizon]``, 0 with one, missing when the horizon passes the data's end."""
    if s.T + horizon > end_day:
        return np.full(s.k, np.nan)
    D = s.D
    row = s.row_of[D.user]
    back = (D.b > s.T) & (D.b <= s.T + horizon) & D.purchase & (row >= 0)
    came = np.zeros(s.k, dtype=bool)
    came[row[back]] = True
    return (~came).astype(np.float64)


def _snapshot(log: _Log, T: int, cfg, end_day: int, attributes: list[str],
              columns: tuple[list[Column], list[Column]]) -> dict[str, np.ndarray]:
    """Every column of one snapshot, in the DuckDB engine's order (before what the log lacks is dropped)."""
    s = _Snapshot(log, T, int(cfg.lookback_days))
    leaf = _Leaves(s)
    cols = {"user_id": log.users[s.users] if s.k else np.empty(0, dtype=object),
            "snapshot_date": np.full(s.k, np.datetime64(_EPOCH + pd.Timedelta(days=T), "us")),
            "churned": _churned(s, int(cfg.horizon_days), end_day)}
    cols |= _values(columns[0], leaf)
    cols |= _attributes(s, attributes)
    cols |= _values(columns[1], leaf)
    cols["_row_users"] = s.users
    return cols


# ----------------------------------------------------------------------------------------------- the table
def compute(ev: pd.DataFrame, dates: list[pd.Timestamp], cfg, *, end: pd.Timestamp, threads: int | None = None,
            sequences: bool = False, features: Registry = FEATURES) -> tuple[pd.DataFrame, np.ndarray | None]:
    """:func:`retention_core.features.compute` for a small log (see :func:`fits`): one row per (snapshot, user with a
    purchase in the lookback window), latest snapshot first and users in id order, the same columns and values;
    with ``sequences``, the weekly activity array aligned with the rows; ``features``: the registry the columns are
    compiled from. ``threads`` is accepted and unused."""
    attributes = [c for c in ev.columns if c not in CANONICAL]
    log = _per_day(ev, attributes)
    columns = features.columns(cfg.windows, log.types)
    cutoffs = sorted({(pd.Timestamp(d.date()) - _EPOCH).days for d in dates}, reverse=True)
    end_day = (pd.Timestamp(pd.Timestamp(end).date()) - _EPOCH).days
    parts = [_snapshot(log, T, cfg, end_day, attributes, columns) for T in cutoffs]
    rows = [(T, p.pop("_row_users")) for T, p in zip(cutoffs, parts)]
    table = {c: (np.concatenate([p[c] for p in parts]) if len(parts) > 1 else parts[0][c]) for c in parts[0]}
    for c in duck.dropped_columns(list(table), log.lacks, features):
        del table[c]
    frame = pd.DataFrame(table)
    seq = _sequences(log, rows, int(cfg.sequence_weeks)) if sequences else None
    return frame, seq


def _sequences(log: _Log, rows: list[tuple[int, np.ndarray]], weeks: int) -> np.ndarray:
    """Weekly activity before each row's cutoff, as :func:`retention_core.features._sequences`: (rows, weeks,
    channels), oldest week first; channels orders, log(1 + revenue), log(1 + browsing events), returns."""
    D = log.days
    total = sum(len(users) for _, users in rows)
    acc = np.zeros((total, weeks, len(duck.SEQUENCE_CHANNELS)), dtype=np.float64)
    start = 0
    for T, users in rows:
        row_of = np.full(log.n_users, -1, dtype=np.int64)
        row_of[users] = start + np.arange(len(users))
        row = row_of[D.user]
        m = (D.b <= T) & (D.b > T - weeks * 7) & (row >= 0)
        slot = weeks - 1 - (T - D.b[m]) // 7
        for k, values in enumerate((D.n["orders"], D.revenue, D.n["browsing"], D.n["returns"])):
            np.add.at(acc[:, :, k], (row[m], slot), values[m])
        start += len(users)
    acc[:, :, 1] = np.log(1 + np.maximum(duck.round_money(acc[:, :, 1]), 0))
    acc[:, :, 2] = np.log(1 + acc[:, :, 2])
    return acc.astype(np.float32)
