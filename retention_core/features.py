"""The DuckDB engine: the registry's features (:mod:`retention_core.feature_registry`) as relational operations.

The input is the canonical event table of :func:`retention_core.events.canonical_events` (``user_id, ts, order_id,
amount, quantity, event_type, product, category, rating, is_purchase, is_return, is_cancel, is_nonproduct`` plus user
attributes). Events are first reduced to one row per user and day bucket (the bucket of an event is the first midnight
at or after it, so ``bucket <= T`` exactly when the event is at or before the cutoff ``T``); every feature of a
snapshot at ``T`` is then an aggregate over buckets ``<= T``. That single join condition is what keeps the future out
of the features, and the leakage tests check it.

Speed (10M events on 2 cores: about 3 s for one cutoff, see ``bench/``): text enters DuckDB as integer codes; the many
counts (orders, lines, returns, active days, events per type, over each window) are packed into a few float columns
and summed together (:class:`Packing`), since DuckDB pays per aggregate; only users some snapshot can hold are
aggregated; and NumPy prepares event and user columns on two threads.

A snapshot's users made a purchase in its lookback window and, in a log with non-product lines (postage, fees), bought
a product at or before its cutoff: a user whose only purchases are fees is not a customer, in any engine.

Each feature is defined once, in the registry, as an expression over a few per-user aggregates (leaves); this module
computes the leaves from the per-day table (counts from the packed columns, money, instants, gaps, distinct products)
and compiles each expression to SQL. The features (all per user and snapshot):
- recency / tenure: days since the last purchase, since the first purchase, from first to last, days since any event;
- frequency: repeat purchase days (the BG/NBD frequency), orders, active days, lines per order;
- monetary: revenue, mean order value, units;
- trailing windows (7/30/90/180/365 days by default): orders, revenue, active days and events per type;
- trends: last 90 days against the 90 before (orders and revenue), last 30 against the 30-day average of the last 180;
- cadence: mean, spread and maximum gap between purchase days, and recency relative to the usual gap;
- breadth: distinct products and categories bought;
- returns and cancellations: rates against purchase lines; ratings: mean, minimum and count;
- user attributes: the latest value at or before the cutoff.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import duckdb
import numpy as np
import pandas as pd

from .cells import datetime_share, parse_datetime
from .errors import DataError
from .events import CANONICAL
from .feature_expr import SQL_OPS, Leaf, Period, compile_expr, leaves
from .feature_registry import FEATURES, Column, Registry, type_names  # noqa: F401 (type_names: the engines' names)
from .identifiers import MAX_CATEGORY_LEVELS

SEQUENCE_CHANNELS = ["orders", "revenue_log", "browsing_log", "returns"]
MAX_EVENT_TYPES = 8


def _q(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


# --- one shared database for a long-lived process (the scoring service) -------------------------------------------
_SHARED: dict = {}


def share_database(threads: int = 1) -> None:
    """From now on, every feature computation of this process opens a cursor on one in-memory database with
    ``threads`` threads (about 1 ms) instead of a new database (5-20 ms): for the scoring service, which computes the
    features of a few users per request. Each computation's tables stay its own (temporary tables of its cursor)."""
    import threading

    db = duckdb.connect()
    db.execute("SET enable_progress_bar = false")
    db.execute(f"SET threads = {int(threads)}")
    _SHARED.update(db=db, lock=threading.Lock())


def connect(threads: int | None = None) -> duckdb.DuckDBPyConnection:
    if _SHARED:
        with _SHARED["lock"]:
            return _SHARED["db"].cursor()
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")  # no progress bar on the analyst's terminal
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con


DAY_NS = 86_400 * 10**9

#: Money sums (revenue over a snapshot's days, per window, per week of a sequence) are rounded to a millionth in every
#: engine before anything divides them: engines (and DuckDB's own threads) add the same amounts in other orders, which
#: moves the last bits, and a last bit can move a user across a tree's split. The rule, in exact steps that give the
#: same bits everywhere: ``floor(x * 1e6 + 0.5) / 1e6`` where ``|x * 1e6| < 2**52``, else ``x`` (already whole).
MONEY_SCALE = 1e6
_WHOLE = 2.0**52


def round_money(x: np.ndarray) -> np.ndarray:
    """Money sums rounded to a millionth (``MONEY_SCALE``), as every engine rounds them (NaN stays NaN)."""
    x = np.asarray(x, dtype=np.float64)
    y = x * MONEY_SCALE
    with np.errstate(invalid="ignore"):
        return np.where(np.abs(y) < _WHOLE, np.floor(y + 0.5) / MONEY_SCALE, x)


def money_sql(expr: str) -> str:
    """:func:`round_money` in DuckDB's SQL."""
    y, scale = f"(({expr}) * {MONEY_SCALE!r}::DOUBLE)", f"{MONEY_SCALE!r}::DOUBLE"
    return f"(CASE WHEN abs({y}) < {_WHOLE!r}::DOUBLE THEN floor({y} + 0.5::DOUBLE) / {scale} ELSE ({expr}) END)"


def _codes(s: pd.Series, *, sort: bool = False, values: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Integer codes (-1 = missing) and the values they stand for (None unless ``values``); with ``sort``, codes
    follow the values' order.

    DuckDB groups, joins and counts distinct values several times faster on integers than on text, so text columns
    (users, orders, products, categories, event types, attributes) enter it as codes and leave it as text.
    """
    if isinstance(s.dtype, pd.CategoricalDtype):
        codes = s.cat.codes.to_numpy().astype(np.int32, copy=False)
        uniques = s.cat.categories
    else:
        codes, uniques = pd.factorize(s.astype("string"), use_na_sentinel=True)
        codes = codes.astype(np.int32, copy=False)
    if not (values or sort):
        return codes, None
    text = np.asarray(pd.Index(uniques).astype(str), dtype=object)
    if sort and len(text):
        import pyarrow as pa
        import pyarrow.compute as pc

        order = pc.sort_indices(pa.array(text, type=pa.string())).to_numpy()
        rank = np.empty(len(text), dtype=np.int32)
        rank[order] = np.arange(len(text), dtype=np.int32)
        codes = np.append(rank, -1).astype(np.int32)[codes]  # a missing value (-1) reads the last entry: -1
        text = text[order]
    return codes, text


def _bucket_days(ts: pd.Series) -> np.ndarray:
    """The day bucket of each event as days since 1970-01-01: the first midnight at or after the event."""
    ns = ts.to_numpy(dtype="datetime64[ns]").view(np.int64)
    return (-((-ns) // DAY_NS)).astype(np.int32)


def _order_starts(order: np.ndarray, user: np.ndarray, bucket: np.ndarray, purchase: np.ndarray) -> np.ndarray:
    """True on the first purchase line of each distinct (order, user, day bucket) and on every purchase line without
    an order id (an order of its own): counting these per user and day gives the orders of that day without DuckDB's
    much slower ``count(DISTINCT ...)``.

    Lines of an order are usually adjacent, so a line starts a new order when the order, user or bucket differs from
    the previous purchase line's; orders whose lines are not adjacent are de-duplicated exactly, on those lines only.
    """
    out = purchase & (order < 0)
    idx = np.flatnonzero(purchase & (order >= 0))
    if len(idx) == 0:
        return out
    o, u, b = order[idx], user[idx], bucket[idx]
    new = np.ones(len(idx), dtype=bool)
    new[1:] = (o[1:] != o[:-1]) | (u[1:] != u[:-1]) | (b[1:] != b[:-1])
    runs = np.bincount(o[new], minlength=int(o.max()) + 1)
    if runs.max() > 1:
        again = np.flatnonzero(new & (runs[o] > 1))
        triples = pd.DataFrame({"o": o[again], "u": u[again], "b": b[again]})
        new[again[triples.duplicated().to_numpy()]] = False
    out[idx[new]] = True
    return out


def _per_user_constant(codes: np.ndarray, user: np.ndarray, n_users: int) -> np.ndarray | None:
    """The value code of each user when an attribute never changes within a user and is never missing, else None.

    Such an attribute (a sign-up country, an acquisition channel) has the same latest value at every cutoff, so it is
    looked up per user instead of being aggregated per day.
    """
    if len(codes) == 0 or (codes < 0).any():
        return None
    per_user = np.zeros(n_users, dtype=codes.dtype)
    per_user[user] = codes  # any row's value: the check below tells whether all rows agree
    return per_user if bool((np.take(per_user, user) == codes).all()) else None


def _in_population(user: np.ndarray, bucket: np.ndarray, purchase: np.ndarray, n_users: int,
                   windows: list[tuple[int, int]]) -> np.ndarray:
    """True for each user with a purchase in some ``(start, end]`` bucket window: the users a snapshot can hold.

    The events of other users cannot reach any feature or label row, so they are not aggregated at all.
    """
    keep = np.zeros(n_users, dtype=bool)
    pu, pb = user[purchase], bucket[purchase]
    for start, end in windows:
        keep[pu[(pb > start) & (pb <= end)]] = True
    return keep


class Packing:
    """Where each count lives in the packed count columns ``n0, n1, ...`` of the events and of ``daily``.

    Most features are counts (orders, lines, returns, active days, events per type, each over several windows), and
    DuckDB computes every filtered count as an aggregate of its own: they were most of the cost of building features.
    So each event carries its counts packed into a few float columns, ``bits`` bits per count, and one sum of a
    column adds up every count it holds. ``bits`` fits the largest number of events of any user, so no sum over a
    user's events or days can carry into the next count; a float holds integers exactly up to 2**53, so a column
    holds ``52 // bits`` counts (one per column for users with more than 2**26 events).
    """

    def __init__(self, fields: list[str], largest: int):
        self.bits = max(1, int(largest).bit_length())
        per = max(1, 52 // self.bits)
        self.slot = {f: (i // per, i % per * self.bits) for i, f in enumerate(fields)}
        self.columns = [f"n{j}" for j in range(-(-len(fields) // per))]

    def pack(self, counts: dict[str, np.ndarray | int]) -> list:
        """The packed columns of the given counts (arrays or numbers; fields not given count 0)."""
        out = [0.0] * len(self.columns)
        for field, n in counts.items():
            j, shift = self.slot[field]
            out[j] = out[j] + np.asarray(n, dtype=np.float64) * float(2 ** shift)
        return out

    def holding(self, fields: list[str]) -> list[str]:
        """The packed columns that hold these fields."""
        return sorted({self.columns[self.slot[f][0]] for f in fields if f in self.slot})

    def read(self, field: str, column: str = "{}") -> str:
        """SQL for one count, read from a packed column or a sum of one: ``column`` formats the column's name."""
        if field not in self.slot:
            return "0"
        j, shift = self.slot[field]
        return f"((CAST({column.format(self.columns[j])} AS BIGINT) >> {shift}) & {(1 << self.bits) - 1})"


def _floats(s: pd.Series) -> np.ndarray:
    """A numeric column as float64 with NaN for missing values (no copy when it already is one)."""
    return s.to_numpy() if s.dtype == np.float64 else s.to_numpy(dtype="float64", na_value=np.nan)


def _coded(codes: np.ndarray):
    """Integer codes as an Arrow column, -1 as missing."""
    import pyarrow as pa

    missing = codes < 0
    return pa.array(codes, type=pa.int32(), mask=missing if missing.any() else None)


def _arrow(ev: pd.DataFrame, attributes: list[str], windows: list[tuple[int, int]] | None = None) -> tuple:
    """The events as an Arrow table of numbers (text columns as codes, counts packed), plus the values behind the
    codes and what the log holds (``values["has"]``: cancellations, non-product lines, ratings).

    ``windows`` (population windows as day numbers, see :func:`_in_population`) adds a ``keep`` column that is false
    on the events of users no snapshot can hold.
    """
    import pyarrow as pa

    user, users = _codes(ev["user_id"], sort=True)
    known = bool(len(user)) and bool((user >= 0).all())  # every event has a user (the canonical table ensures it)
    row_user = user.astype(np.intp)  # one conversion for all the lookups by user below
    bucket = _bucket_days(ev["ts"])
    purchase = ev["is_purchase"].to_numpy(dtype=bool)
    cols = {"user_id": _coded(user), "b": pa.array(bucket, type=pa.date32()),
            "ts": pa.array(ev["ts"].to_numpy(dtype="datetime64[ns]"), type=pa.timestamp("ns"))}
    values = {"user_id": users}

    with ThreadPoolExecutor(1) as pool:  # NumPy lets go of the GIL on big arrays: two cores share the work
        side = pool.submit(_user_columns, ev, attributes, user, row_user, len(users), bucket, purchase, windows,
                           known)
        for part_cols, part_values in (_event_columns(ev, user, row_user, bucket, purchase), side.result()):
            cols.update(part_cols)
            values.update(part_values)
    return pa.table(cols), values


def _event_columns(ev: pd.DataFrame, user, row_user, bucket, purchase) -> tuple[dict, dict]:
    """The events' amounts, flags and count classes (:func:`_event_classes`), and the values behind them: the event
    types, what the log holds and the packing of the counts."""
    import pyarrow as pa

    cols, values = {}, {}
    order, _ = _codes(ev["order_id"], values=False)
    start = _order_starts(order, user, bucket, purchase)
    et_codes, values["event_type"] = _codes(ev["event_type"])
    values["top_event_types"] = _event_types(et_codes, values["event_type"])
    rating = _floats(ev["rating"])
    rated = ~np.isnan(rating)
    has = {"rating": bool(rated.any())}
    for c in ("amount", "quantity", "rating"):
        cols[c] = pa.array(rating if c == "rating" else _floats(ev[c]), from_pandas=True)
    flags = {"purchase": purchase}
    for c in ("return", "cancel", "nonproduct"):
        flags[c] = ev["is_" + c].to_numpy(dtype=bool)
        has[c] = bool(flags[c].any())
    cols["is_purchase"] = pa.array(purchase)
    if has["nonproduct"]:
        cols["is_nonproduct"] = pa.array(flags["nonproduct"])
    values["has"] = has
    cls, values["packing"], values["class_counts"] = _event_classes(
        row_user, et_codes, values["top_event_types"], start, purchase, flags["return"],
        flags["cancel"] if has["cancel"] else None, rated if has["rating"] else None)
    cols["cls"] = pa.array(cls)
    return cols, values


def _user_columns(ev: pd.DataFrame, attributes: list[str], user, row_user, n_users: int, bucket, purchase,
                  windows: list[tuple[int, int]] | None, known: bool) -> tuple[dict, dict]:
    """Columns about users, and the values behind their codes: ``keep`` (see :func:`_in_population`; with
    ``windows``), attributes (looked up per user when constant, see :func:`_per_user_constant`), products and
    categories. ``known``: every event has a user."""
    import pyarrow as pa

    cols, values = {}, {}
    if windows is not None and known:
        cols["keep"] = pa.array(_in_population(user, bucket, purchase, n_users, windows)[row_user])
    for i, a in enumerate(attributes):
        codes, values["a:" + a] = _codes(ev[a])
        per_user = _per_user_constant(codes, row_user, n_users) if known else None
        if per_user is not None:  # one value per user, never missing: no need to carry it through the days
            values["user:" + a] = per_user
        else:
            cols[f"a{i}"] = _coded(codes)
    for c in ("product", "category"):
        cols[c] = _coded(_codes(ev[c], values=False)[0])
    return cols, values


def _event_classes(row_user, et_codes, top_types, start, purchase, ret, cancel, rated) -> tuple:
    """Each event's class (five flags and the event type: a few hundred classes) and the :class:`Packing` of the
    counts, with each class's packed counts (one list per packed column, looked up by class in DuckDB).

    Counts per event: orders it starts, purchase lines, returns, cancellations, browsing events, ratings, events and
    events per type; ``days`` and ``purchase_days`` are counted per day, in ``daily``.
    """
    k = len(top_types)
    fields = (["orders", "days"] + [f"et_{i}" for i in range(k)] + ["purchase_days", "lines", "returns", "events",
              "browsing"] + ["cancels"] * (cancel is not None) + ["ratings"] * (rated is not None))
    largest = int(np.bincount(row_user + 1).max()) if len(row_user) else 1  # events of the busiest user
    packing = Packing(fields, largest)
    type_index = np.full(max(int(et_codes.max(initial=-1)) + 2, 1), k, dtype=np.uint16)  # k: not a top type
    for i, (code, _) in enumerate(top_types):
        type_index[code] = i
    cls = np.take(type_index, et_codes)  # a missing type (-1) reads the last entry: k
    cls <<= 5
    for bit, flag in enumerate((start, purchase, ret, cancel, rated)):
        if flag is not None:
            cls |= flag.view(np.uint8) << np.uint8(bit)
    c = np.arange((k + 1) << 5)
    o, p, r, x, rt = ((c >> bit) & 1 for bit in range(5))
    table = packing.pack({"orders": o, "lines": p, "returns": r, "events": 1, "browsing": (1 - p) * (1 - r) * (1 - x),
                          **({"cancels": x} if cancel is not None else {}),
                          **({"ratings": rt} if rated is not None else {}),
                          **{f"et_{i}": (c >> 5) == i for i in range(k)}})
    return cls, packing, [np.broadcast_to(t, c.shape).tolist() for t in table]


def _event_types(codes: np.ndarray, values: np.ndarray) -> list[tuple[int, str]]:
    """The most frequent event types as (code, name), most frequent first."""
    counts = np.bincount(codes + 1, minlength=len(values) + 1)[1:]  # code -1 (missing) counts in the first bin
    top = [int(i) for i in np.argsort(-counts, kind="stable")[:MAX_EVENT_TYPES] if counts[i] > 0]
    return [(i, str(values[i])) for i in top]


def _prepare(con: duckdb.DuckDBPyConnection, ev: pd.DataFrame, attributes: list[str],
             windows: list[tuple[int, int]] | None = None) -> tuple[list[str], dict]:
    """Load events and build the per user-day table ``daily`` (plus ``gaps`` between purchase days and the first
    purchase day of each product ``up`` and category ``uc``); ``daily`` keeps its counts packed (:class:`Packing`),
    with orders, returns and browsing events also read out. Returns the event types used as features and the values
    behind the integer codes. With ``windows`` (see :func:`_arrow`), only users a snapshot can hold are aggregated."""
    tab, values = _arrow(ev, attributes, windows)
    con.register("ev_raw", tab)
    has, P = values["has"], values["packing"]
    coded_types = values["top_event_types"]
    where = "WHERE keep" if "keep" in tab.column_names else ""
    sold = "is_purchase AND NOT is_nonproduct" if has["nonproduct"] else "is_purchase"  # product lines
    ratings = "sum(rating) AS rating_sum, min(rating) AS rating_min" if has["rating"] else \
        "CAST(NULL AS DOUBLE) AS rating_sum, CAST(NULL AS DOUBLE) AS rating_min"  # what the log lacks costs nothing
    attr_cols = "".join(f", arg_max(a{i}, ts) AS {_q('a:' + a)}" for i, a in enumerate(attributes)
                        if "user:" + a not in values)
    # the per-day counts join the events' packed counts: each day counts 1 active day, and 1 purchase day if any
    day, purchase_day = P.pack({"days": 1}), P.pack({"purchase_days": 1})
    packed = ", ".join(f"{c} + {float(day[j])!r} + CASE WHEN first_p_ts IS NULL THEN 0 ELSE {float(purchase_day[j])!r} "
                       f"END AS {c}" for j, c in enumerate(P.columns))
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE daily AS
        SELECT * EXCLUDE ({", ".join(P.columns)}), {packed},
               {P.read("orders")} AS orders, {P.read("returns")} AS returns, {P.read("browsing")} AS browsing
        FROM (
            SELECT user_id, b,
                   min(ts) FILTER (WHERE is_purchase) AS first_p_ts,
                   max(ts) FILTER (WHERE is_purchase) AS last_p_ts,
                   max(ts) AS last_ts,
                   coalesce(sum(amount) FILTER (WHERE {sold}), 0) AS revenue,
                   coalesce(sum(quantity) FILTER (WHERE {sold}), 0) AS units,
                   {ratings},
                   {", ".join(f"sum(list_extract({counts!r}::DOUBLE[], cls + 1)) AS {c}"
                              for c, counts in zip(P.columns, values["class_counts"]))}
                   {attr_cols}
            FROM ev_raw {where} GROUP BY 1, 2
        )
    """)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE gaps AS
        SELECT user_id, b, date_diff('day', lag(b) OVER (PARTITION BY user_id ORDER BY b), b) AS gap
        FROM daily WHERE orders > 0
    """)
    if has["nonproduct"]:  # the first product purchase of each user: a user who bought only fees is no customer
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE fp AS
            SELECT user_id, min(b) AS fb FROM ev_raw WHERE {sold} {where.replace("WHERE", "AND")} GROUP BY user_id
        """)
    for col, name in (("product", "up"), ("category", "uc")):
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE {name} AS
            SELECT user_id, min(b) AS fb
            FROM ev_raw WHERE {sold} AND {col} IS NOT NULL {where.replace("WHERE", "AND")} GROUP BY user_id, {col}
        """)
    return [t for _, t in coded_types], values


def compute(ev: pd.DataFrame, dates: list[pd.Timestamp], cfg, *, end: pd.Timestamp,
            threads: int | None = None, sequences: bool = False,
            features: Registry = FEATURES) -> tuple[pd.DataFrame, np.ndarray | None]:
    """One row per (snapshot, user active in the lookback window): features from buckets <= T and the label; with
    ``sequences``, also the weekly activity array aligned with the rows (from the same per-day table). ``features``:
    the registry the columns are compiled from."""
    attributes = [c for c in ev.columns if c not in CANONICAL]
    con = connect(threads)
    try:
        L = int(cfg.lookback_days)
        days = [(pd.Timestamp(d.date()) - pd.Timestamp("1970-01-01")).days for d in dates]  # as the SQL reads them
        types, values = _prepare(con, ev, attributes, [(T - L, T) for T in days])
        per_user = [a for a in attributes if "user:" + a in values]
        frame = _snapshot_features(con, ev, dates, cfg, end, features.columns(cfg.windows, types), attributes,
                                   values["packing"], per_user, products_only=values["has"]["nonproduct"],
                                   features=features)
        seq = _sequences(con, frame, cfg.sequence_weeks) if sequences else None
        return _decode(frame, values, attributes), seq
    finally:
        con.close()


def _population(con, dates: list[pd.Timestamp], lookback: int, products_only: bool = False) -> None:
    """Temp tables ``cut`` (the cutoffs) and ``pop`` (each cutoff's users: a purchase in the lookback window and,
    with ``products_only`` (a log with non-product lines), a product bought at or before the cutoff: a user whose
    only purchases are postage or fees is not a customer)."""
    values = ", ".join(f"(DATE '{d.date()}')" for d in dates)
    con.execute(f"CREATE OR REPLACE TEMP TABLE cut AS SELECT * FROM (VALUES {values}) t(T)")
    product = "JOIN fp ON fp.user_id = d.user_id AND fp.fb <= c.T" if products_only else ""
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE pop AS
        SELECT c.T, d.user_id FROM cut c JOIN daily d ON d.b <= c.T AND d.b > c.T - {lookback} AND d.orders > 0
        {product}
        GROUP BY 1, 2
    """)


_INSTANT_SQL = {"first_purchase": "_first_p", "last_purchase": "_last_p", "last_event": "_last_event",
                "cutoff": "CAST(agg.T AS TIMESTAMP)"}
_INSTANT_AGG = {"first_purchase": "min(d.first_p_ts) AS _first_p", "last_purchase": "max(d.last_p_ts) AS _last_p",
                "last_event": "max(d.last_ts) AS _last_event"}
_GAP_SQL = {"mean": "_gap_mean", "std": "_gap_std", "max": "_gap_max"}


def _period_sql(period: Period) -> str:
    """The condition on a day ``d.b`` of snapshot ``p.T`` for a period ('' for every day up to the cutoff)."""
    cond = [] if period.start is None else [f"d.b > p.T - {int(period.start)}"]
    cond += [f"d.b <= p.T - {int(period.end)}"] if period.end else []
    return " AND ".join(cond)


def _leaf_sql(P: Packing, leaf: Leaf) -> str:
    """A leaf's value in the final query (over ``agg``, ``gap``, ``prod`` and ``cat``)."""
    key = leaf.period.key
    if leaf.kind == "count":
        return f"coalesce({P.read(leaf.field, key + '_{}')}, 0)"
    if leaf.kind == "money":
        return f"{key}_revenue"
    if leaf.kind in ("sum", "min"):
        return f"_{leaf.kind}_{leaf.field}"
    if leaf.kind == "span":
        return f"date_diff('second', {_INSTANT_SQL[leaf.field]}, {_INSTANT_SQL[leaf.to]})"
    if leaf.kind == "gaps":
        return _GAP_SQL[leaf.field]
    if leaf.kind == "distinct":
        return f"coalesce(_n_{leaf.field}, 0)"
    raise ValueError(f"no SQL for {leaf!r}")


def _agg_sql(P: Packing, used: list[Leaf]) -> list[str]:
    """The aggregates over a snapshot's days that the leaves read: sums of packed counts per period (one sum adds up
    every count a packed column holds), money per period, plain sums, minima and instants."""
    counted: dict[Period, set[str]] = {}
    out: dict[str, str] = {}
    for leaf in used:
        key, cond = leaf.period.key, _period_sql(leaf.period)
        where = f" FILTER (WHERE {cond})" if cond else ""
        if leaf.kind == "count":
            counted.setdefault(leaf.period, set()).add(leaf.field)
        elif leaf.kind == "money":
            total = f"coalesce(sum(d.revenue){where}, 0)" if cond else "sum(d.revenue)"
            out[f"{key}_revenue"] = f"{money_sql(total)} AS {key}_revenue"
        elif leaf.kind in ("sum", "min"):
            column = {"units": "units", "rating": "rating_sum" if leaf.kind == "sum" else "rating_min"}[leaf.field]
            out[f"_{leaf.kind}_{leaf.field}"] = f"{leaf.kind}(d.{column}) AS _{leaf.kind}_{leaf.field}"
        elif leaf.kind == "span":
            out |= {i: _INSTANT_AGG[i] for i in (leaf.field, leaf.to) if i in _INSTANT_AGG}
    for period, fields in counted.items():
        cond = _period_sql(period)
        where = f" FILTER (WHERE {cond})" if cond else ""
        out |= {f"{period.key}_{c}": f"sum(d.{c}){where} AS {period.key}_{c}" for c in P.holding(sorted(fields))}
    return list(out.values())


def _snapshot_features(con, ev, dates, cfg, end, columns: tuple[list[Column], list[Column]], attributes,
                       P: Packing, per_user=(), products_only: bool = False,
                       features: Registry = FEATURES) -> pd.DataFrame:
    """Every snapshot's rows: the registry's columns compiled to SQL over one aggregation of each user's days."""
    H, L = int(cfg.horizon_days), int(cfg.lookback_days)
    _population(con, dates, L, products_only)
    before, after = columns
    used = [leaf for c in before + after for leaf in leaves(c.expr)]
    kinds = {(leaf.kind, leaf.field) for leaf in used}
    sep = ",\n               "
    # an attribute looked up per user carries the user's code here; _decode turns it into the user's value
    attr_sel = "".join(f", p.user_id AS {_q(a)}" if a in per_user else f", arg_max(d.{_q('a:' + a)}, d.b) AS {_q(a)}"
                       for a in attributes)
    value = lambda c: f"{compile_expr(c.expr, lambda leaf: _leaf_sql(P, leaf), SQL_OPS)} AS {_q(c.name)}"  # noqa: E731
    ctes = {"gap": f"""gap AS (
        SELECT p.T, p.user_id, avg(g.gap) AS _gap_mean,
               -- the sample standard deviation from exact integer sums, then one division and one square root:
               -- the same bits in every engine, whatever order the rows come in (gaps are whole days)
               CASE WHEN count(g.gap) > 1 THEN sqrt(
                   CAST(count(g.gap) * sum(g.gap * g.gap) - sum(g.gap) * sum(g.gap) AS DOUBLE)
                   / CAST(count(g.gap) * (count(g.gap) - 1) AS DOUBLE)) END AS _gap_std,
               max(g.gap) AS _gap_max
        FROM pop p JOIN gaps g ON g.user_id = p.user_id AND g.b <= p.T AND g.gap IS NOT NULL
        GROUP BY 1, 2
    )""" if any(k == "gaps" for k, _ in kinds) else ""}
    for field, table in (("product", "up"), ("category", "uc")):
        if ("distinct", field) in kinds:
            ctes[field] = (f"{field} AS (SELECT p.T, p.user_id, count(*) AS _n_{field} FROM pop p JOIN {table} u "
                           f"ON u.user_id = p.user_id AND u.fb <= p.T GROUP BY 1, 2)")
    ctes = {k: v for k, v in ctes.items() if v}
    sql = f"""
    WITH agg AS (
        SELECT p.T, p.user_id
               {"".join(", " + a for a in _agg_sql(P, used))}
               {attr_sel}
        FROM pop p JOIN daily d ON d.user_id = p.user_id AND d.b <= p.T
        GROUP BY p.T, p.user_id
    ),
    {"".join(v + "," for v in ctes.values())}
    fut AS (
        SELECT c.T, d.user_id FROM cut c JOIN daily d ON d.b > c.T AND d.b <= c.T + {H} AND d.orders > 0 GROUP BY 1, 2
    )
    SELECT agg.user_id, CAST(agg.T AS TIMESTAMP) AS snapshot_date,
           CASE WHEN agg.T + {H} > DATE '{end.date()}' THEN NULL WHEN fut.user_id IS NULL THEN 1 ELSE 0 END AS churned
           {"".join(", " + value(c) for c in before)}
           {"".join(f", agg.{_q(a)}" for a in attributes)}
           {"".join(", " + value(c) for c in after)}
    FROM agg
    {"".join(f" LEFT JOIN {k} USING (T, user_id)" for k in ctes)}
    LEFT JOIN fut USING (T, user_id)
    ORDER BY snapshot_date DESC, agg.user_id
    """
    return _tidy(con.execute(sql).df(), ev, attributes, features)


def _tidy(frame: pd.DataFrame, ev: pd.DataFrame, attributes: list[str],
          features: Registry = FEATURES) -> pd.DataFrame:
    """Numbers as float64, the snapshot date as a timestamp, and no column for what the log does not record."""
    frame["churned"] = frame["churned"].astype("Float64").astype("float64")
    convert = {c for c, t in frame.dtypes.items() if c not in ("user_id", "snapshot_date") and c not in attributes
               and pd.api.types.is_numeric_dtype(t) and t != np.float64}
    if len(frame) <= 10_000:  # a few users (the scoring service): one new table, not one column at a time
        frame = pd.DataFrame({c: frame[c].to_numpy(dtype="float64", na_value=np.nan) if c in convert else frame[c]
                              for c in frame.columns}, index=frame.index)
    else:
        for c in frame.columns:
            if c in convert:
                frame[c] = frame[c].astype("float64")
    frame["snapshot_date"] = pd.to_datetime(frame["snapshot_date"])
    lacks = {c for c in ("rating", "amount", "quantity", "category", "product") if ev[c].isna().all()}
    return frame.drop(columns=dropped_columns(list(frame.columns), lacks, features)).reset_index(drop=True)


def dropped_columns(columns: list[str], lacks: set[str], features: Registry = FEATURES) -> list[str]:
    """The feature columns a snapshot's table leaves out because the log lacks their input everywhere (``lacks``:
    which of rating, amount, quantity, category and product no event has): one rule for every engine, each feature's
    ``needs`` in the registry."""
    return features.dropped(columns, lacks)


def _decode(frame: pd.DataFrame, values: dict, attributes: list[str]) -> pd.DataFrame:
    """Integer codes back to the text they stand for (user ids and attributes; a missing attribute stays None)."""
    frame["user_id"] = values["user_id"][frame["user_id"].to_numpy(np.int64)]
    for a in attributes:
        codes = frame[a].to_numpy(dtype="float64", na_value=np.nan)
        if "user:" + a in values:
            codes = values["user:" + a][codes.astype(np.int64)].astype("float64")
        known = ~np.isnan(codes)
        out = np.full(len(frame), None, dtype=object)
        out[known] = values["a:" + a][codes[known].astype(np.int64)]
        frame[a] = out
    return frame


def feature_columns(frame: pd.DataFrame, attributes: list[str]) -> tuple[list[str], list[str]]:
    """(numeric, categorical) model inputs: identifiers, the snapshot date and the label are never features."""
    skip = {"user_id", "snapshot_date", "churned"}
    categorical = [a for a in attributes if a in frame.columns]
    numeric = [c for c, t in frame.dtypes.items() if c not in skip and c not in categorical
               and pd.api.types.is_numeric_dtype(t)]
    return numeric, categorical


def _sequences(con, frame: pd.DataFrame, weeks: int) -> np.ndarray:
    """Weekly activity before each row's cutoff: array (rows, weeks, channels), oldest week first.

    Channels (``SEQUENCE_CHANNELS``): orders, log(1 + revenue), log(1 + browsing events), returns. Week ``weeks - 1``
    is the 7 days up to the cutoff; nothing after the cutoff is used. Reads the per-day table of :func:`_prepare`.
    """
    out = np.zeros((len(frame), weeks, len(SEQUENCE_CHANNELS)), dtype=np.float32)
    if len(frame) == 0:
        return out
    rows = pd.DataFrame({"i": np.arange(len(frame)), "user_id": frame["user_id"].to_numpy(np.int32),
                         "T": pd.to_datetime(frame["snapshot_date"]).dt.date.to_numpy()})
    con.register("rows_", rows)
    agg = con.execute(f"""
        SELECT r.i, date_diff('day', d.b, CAST(r.T AS DATE)) // 7 AS w,
               sum(d.orders) AS orders, ln(1 + greatest({money_sql("sum(d.revenue)")}, 0)) AS revenue_log,
               ln(1 + sum(d.browsing)) AS browsing_log, sum(d.returns) AS returns
        FROM rows_ r JOIN daily d ON d.user_id = r.user_id AND d.b <= CAST(r.T AS DATE)
             AND d.b > CAST(r.T AS DATE) - {int(weeks) * 7}
        GROUP BY 1, 2
    """).df()
    return fill_sequences(out, agg, weeks)


def fill_sequences(out: np.ndarray, agg: pd.DataFrame, weeks: int) -> np.ndarray:
    """``out`` (rows x weeks x channels) filled from the weekly aggregates ``agg`` (row ``i``, weeks back ``w``, one
    column per channel): the oldest week first. The Spark engine fills its sequences with it too."""
    if len(agg):
        i = agg["i"].to_numpy(np.int64)
        w = weeks - 1 - agg["w"].to_numpy(np.int64)
        for k, ch in enumerate(SEQUENCE_CHANNELS):
            out[i, w, k] = agg[ch].to_numpy(np.float32)
    return out


# ------------------------------------------------------------------------------------------------ user tables
def user_feature_spec(df: pd.DataFrame, schema, excluded: list[str] | None = None) -> dict:
    """Decide, once, how each column of a user table becomes a feature (saved with a run and reused to score).

    The user id, the label, the schema's identifiers and the columns the validation report excluded (constants,
    leaks, empty columns) are never features. Dates become ages in days before the latest date in the column; text
    with a few distinct values is categorical; text with many is left out unless the analyst put it back.
    """
    ids = {str(c) for c in getattr(schema, "id_columns", None) or {}}
    kept = {str(c) for c in getattr(schema, "kept_columns", None) or []}
    skip = {schema.roles.get("user_id"), schema.roles.get("label")} | set(excluded or [])
    skip |= {c for c in df.columns if str(c) in ids}
    numeric, categorical, dates, dropped = [], [], {}, []
    for col in df.columns:
        if col in skip or col is None:
            continue
        s = df[col]
        if s.dropna().empty:
            dropped.append(col)
        elif pd.api.types.is_bool_dtype(s.dtype) or (pd.api.types.is_numeric_dtype(s.dtype)):
            numeric.append(col)
        elif pd.api.types.is_datetime64_any_dtype(s.dtype) or datetime_share(s) > 0.9:
            ref = parse_datetime(s).max()
            if pd.isna(ref):
                dropped.append(col)
            else:
                dates[col] = str(ref)
        elif str(col) in kept or s.nunique(dropna=True) <= MAX_CATEGORY_LEVELS:
            categorical.append(col)
        else:
            dropped.append(col)
    return {"numeric": numeric, "categorical": categorical, "dates": dates, "dropped": dropped}


def apply_user_spec(df: pd.DataFrame, schema, spec: dict) -> pd.DataFrame:
    """The model inputs of a user table as the spec says (the same for training and scoring)."""
    needed = spec["numeric"] + spec["categorical"] + list(spec["dates"])
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise DataError(f"The data lacks column(s) the model was trained with: {', '.join(missing[:8])}. "
                        "Score a table with the same columns as the training data.")
    out = {}  # columns gathered first and joined once: wide tables (thousands of columns) stay fast
    uid = schema.roles.get("user_id")
    out["user_id"] = (df[uid].astype("string").fillna("") if uid else pd.Series(np.arange(len(df)) + 1, index=df.index)
                      ).astype(str)
    for c in spec["numeric"]:
        out[c] = pd.to_numeric(df[c], errors="coerce").astype("float64").replace([np.inf, -np.inf], np.nan)
    for c, ref in spec["dates"].items():
        out[f"{c} (age in days)"] = (pd.Timestamp(ref) - parse_datetime(df[c])).dt.total_seconds() / 86400.0
    for c in spec["categorical"]:
        out[c] = df[c].astype("string").str.strip().astype(object).where(df[c].notna(), None)
    return pd.DataFrame(out, index=df.index)
