"""Feature definitions, in one place, as relational operations in DuckDB.

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

Features (all per user and snapshot):
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
from .events import CANONICAL, slug
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


def type_names(types: list[str], suffix: str) -> list[str]:
    """``events_<slug>_<suffix>`` per type; a repeated name gets ``_1``, ``_2``, ... as DuckDB names repeated result
    columns (two types with one slug, such as ``Add to cart`` and ``add_to_cart``). The NumPy and Spark engines name
    their columns with it."""
    names: list[str] = []
    for t in types:
        name, k = f"events_{slug(t)}_{suffix}", 0
        while (name if k == 0 else f"{name}_{k}") in names:
            k += 1
        names.append(name if k == 0 else f"{name}_{k}")
    return names


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


def _count_sql(P: Packing, windows: tuple[int, ...], types: list[str]) -> tuple[list[str], list[str]]:
    """The aggregates over a snapshot's days (``agg``: sums of packed counts, over all days and per window) and the
    features read from them (``base``), in the order of the feature table."""
    windowed = P.holding(["orders", "days"] + [f"et_{i}" for i in range(len(types))])
    periods = {f"w{w}": f"d.b > p.T - {int(w)}" for w in sorted({*windows, 30, 180})}
    periods["prev90"] = "d.b > p.T - 180 AND d.b <= p.T - 90"
    agg = [f"sum(d.{c}) AS t_{c}" for c in P.columns]
    for name, cond in periods.items():
        agg += [f"sum(d.{c}) FILTER (WHERE {cond}) AS {name}_{c}" for c in windowed]
        agg += [f"{money_sql(f'coalesce(sum(d.revenue) FILTER (WHERE {cond}), 0)')} AS {name}_revenue"]

    def count(field: str, period: str = "t") -> str:
        return f"coalesce({P.read(field, period + '_{}')}, 0)"

    base = [f"{count('purchase_days')} - 1 AS repeat_purchases", f"{count('orders')} AS orders_total",
            f"{count('days')} AS active_days_total", "revenue_total", "units_total"]
    base += [f"{count(f)} AS {f}_total" for f in ("lines", "returns", "cancels", "events", "browsing")]
    base += [f"{count('ratings')} AS ratings_count",
             f"_rating_sum / nullif({count('ratings')}, 0) AS rating_mean", "_rating_min AS rating_min"]
    for w in windows:
        base += [f"{count('orders', f'w{w}')} AS orders_{w}d", f"w{w}_revenue AS revenue_{w}d",
                 f"{count('days', f'w{w}')} AS active_days_{w}d"]
        if w in (30, 90):
            base += [f"{count(f'et_{i}', f'w{w}')} AS {_q('events_' + slug(t) + f'_{w}d')}"
                     for i, t in enumerate(types)]
    base += [f"{count('orders', 'prev90')} AS orders_prev_90d", "prev90_revenue AS revenue_prev_90d",
             f"{count('orders', 'w30')} AS _o30", f"{count('orders', 'w180')} AS _o180"]
    base += [f"{count(f'et_{i}')} AS {_q('events_' + slug(t) + '_total')}" for i, t in enumerate(types)]
    return agg, base


def compute(ev: pd.DataFrame, dates: list[pd.Timestamp], cfg, *, end: pd.Timestamp,
            threads: int | None = None, sequences: bool = False) -> tuple[pd.DataFrame, np.ndarray | None]:
    """One row per (snapshot, user active in the lookback window): features from buckets <= T and the label; with
    ``sequences``, also the weekly activity array aligned with the rows (from the same per-day table)."""
    attributes = [c for c in ev.columns if c not in CANONICAL]
    con = connect(threads)
    try:
        L = int(cfg.lookback_days)
        days = [(pd.Timestamp(d.date()) - pd.Timestamp("1970-01-01")).days for d in dates]  # as the SQL reads them
        types, values = _prepare(con, ev, attributes, [(T - L, T) for T in days])
        per_user = [a for a in attributes if "user:" + a in values]
        frame = _snapshot_features(con, ev, dates, cfg, end, types, attributes, values["packing"], per_user,
                                   products_only=values["has"]["nonproduct"])
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


def _snapshot_features(con, ev, dates, cfg, end, types, attributes, P: Packing, per_user=(),
                       products_only: bool = False) -> pd.DataFrame:
    H, L = int(cfg.horizon_days), int(cfg.lookback_days)
    _population(con, dates, L, products_only)
    agg, base = _count_sql(P, cfg.windows, types)
    sep = ",\n               "
    # an attribute looked up per user carries the user's code here; _decode turns it into the user's value
    attr_sel = "".join(f", p.user_id AS {_q(a)}" if a in per_user else f", arg_max(d.{_q('a:' + a)}, d.b) AS {_q(a)}"
                       for a in attributes)
    sql = f"""
    WITH agg AS (
        SELECT p.T, p.user_id,
               max(d.last_p_ts) AS _last_p, min(d.first_p_ts) AS _first_p, max(d.last_ts) AS _last_event,
               {money_sql("sum(d.revenue)")} AS revenue_total, sum(d.units) AS units_total,
               sum(d.rating_sum) AS _rating_sum, min(d.rating_min) AS _rating_min,
               {sep.join(agg)}
               {attr_sel}
        FROM pop p JOIN daily d ON d.user_id = p.user_id AND d.b <= p.T
        GROUP BY p.T, p.user_id
    ),
    base AS (
        SELECT T, user_id,
               date_diff('second', _last_p, CAST(T AS TIMESTAMP)) / 86400.0 AS recency_days,
               date_diff('second', _first_p, CAST(T AS TIMESTAMP)) / 86400.0 AS tenure_days,
               date_diff('second', _first_p, _last_p) / 86400.0 AS first_to_last_days,
               date_diff('second', _last_event, CAST(T AS TIMESTAMP)) / 86400.0 AS days_since_last_event,
               {sep.join(base)}
               {"".join(f", {_q(a)}" for a in attributes)}
        FROM agg
    ),
    gap AS (
        SELECT p.T, p.user_id, avg(g.gap) AS gap_mean_days,
               -- the sample standard deviation from exact integer sums, then one division and one square root:
               -- the same bits in every engine, whatever order the rows come in (gaps are whole days)
               CASE WHEN count(g.gap) > 1 THEN sqrt(
                   CAST(count(g.gap) * sum(g.gap * g.gap) - sum(g.gap) * sum(g.gap) AS DOUBLE)
                   / CAST(count(g.gap) * (count(g.gap) - 1) AS DOUBLE)) END AS gap_std_days,
               max(g.gap) AS gap_max_days
        FROM pop p JOIN gaps g ON g.user_id = p.user_id AND g.b <= p.T AND g.gap IS NOT NULL
        GROUP BY 1, 2
    ),
    prod AS (SELECT p.T, p.user_id, count(*) AS n_products FROM pop p JOIN up u ON u.user_id = p.user_id AND u.fb <= p.T GROUP BY 1, 2),
    cat AS (SELECT p.T, p.user_id, count(*) AS n_categories FROM pop p JOIN uc u ON u.user_id = p.user_id AND u.fb <= p.T GROUP BY 1, 2),
    fut AS (
        SELECT c.T, d.user_id FROM cut c JOIN daily d ON d.b > c.T AND d.b <= c.T + {H} AND d.orders > 0 GROUP BY 1, 2
    )
    SELECT base.user_id, CAST(base.T AS TIMESTAMP) AS snapshot_date,
           CASE WHEN base.T + {H} > DATE '{end.date()}' THEN NULL WHEN fut.user_id IS NULL THEN 1 ELSE 0 END AS churned,
           base.* EXCLUDE (T, user_id, _o30, _o180),
           revenue_total / nullif(orders_total, 0) AS avg_order_value,
           lines_total / nullif(orders_total, 0) AS lines_per_order,
           returns_total / nullif(lines_total, 0) AS return_rate,
           cancels_total / nullif(lines_total + cancels_total, 0) AS cancel_rate,
           orders_90d - orders_prev_90d AS orders_trend_90d,
           ln((revenue_90d + 1) / (greatest(revenue_prev_90d, 0) + 1)) AS revenue_trend_90d,
           _o30 - _o180 / 6.0 AS orders_30d_vs_avg,
           gap.gap_mean_days, gap.gap_std_days, gap.gap_max_days,
           recency_days / nullif(gap.gap_mean_days, 0) AS recency_vs_usual_gap,
           coalesce(prod.n_products, 0) AS n_products,
           coalesce(cat.n_categories, 0) AS n_categories
    FROM base
    LEFT JOIN gap USING (T, user_id)
    LEFT JOIN prod USING (T, user_id)
    LEFT JOIN cat USING (T, user_id)
    LEFT JOIN fut USING (T, user_id)
    ORDER BY snapshot_date DESC, base.user_id
    """
    return _tidy(con.execute(sql).df(), ev, attributes)


def _tidy(frame: pd.DataFrame, ev: pd.DataFrame, attributes: list[str]) -> pd.DataFrame:
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
    return frame.drop(columns=dropped_columns(list(frame.columns), lacks)).reset_index(drop=True)


def dropped_columns(columns: list[str], lacks: set[str]) -> list[str]:
    """The feature columns a snapshot's table leaves out because the log lacks their input everywhere (``lacks``:
    which of rating, amount, quantity, category and product no event has): one rule for every engine."""
    drop = []
    if "rating" in lacks:
        drop += ["ratings_count", "rating_mean", "rating_min"]
    if "amount" in lacks:
        drop += [c for c in columns if "revenue" in c or c == "avg_order_value"]
    if "quantity" in lacks:
        drop += ["units_total"]
    if "category" in lacks:
        drop += ["n_categories"]
    if "product" in lacks:
        drop += ["n_products"]
    return [c for c in drop if c in columns]


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
