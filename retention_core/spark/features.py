"""Every feature column of :mod:`retention_core.features`, on Spark, equal to the DuckDB engine's.

Each column is compiled from its one definition in the registry (:mod:`retention_core.feature_registry`) to a Spark
Column over per-user aggregates (the registry's leaves, computed here from the per-day table). The steps are the
same relational steps (see the notes of ``retention_core/features.py``): events are reduced
to one row per user and day bucket (``daily``), and a snapshot at cutoff ``T`` aggregates the days ``b <= T`` of the
users with a purchase day in ``(T - lookback, T]`` and a product bought (not postage or fees) on a day ``b <= T``. Written in the DataFrame API, with these rules kept exactly:

- days are integers (days since 1970-01-01) and instants nanoseconds: a window "the last w days" is ``b > T - w``, the
  cutoff ``T`` is the instant ``T * 86400`` s, and durations count whole seconds as DuckDB's ``date_diff('second')``
  does (the seconds of each instant truncated), over 86400. No Spark date function is used, so ``datediff`` (whole
  days) versus ``date_diff('day')`` (boundaries crossed) cannot shift anything;
- orders of a day: distinct order ids among its purchase lines, plus purchase lines without an order id;
- ratios divide by nothing when the divisor is 0 (null, as ``nullif``), whatever ``spark.sql.ansi.enabled`` says;
  money sums are rounded to a millionth first (``features.round_money``), so the order Spark adds them in cannot
  move a bit;
- the spread of gaps is the sample standard deviation (null for a single gap), the latest attribute is the latest
  non-missing value (ties at one instant: the earlier row, as DuckDB's ``arg_max`` in scan order);
- the event types counted are the log's most frequent ones (ties: the type seen first), named as DuckDB names them.

Shuffles (the physical plan, Spark 4.0): the events are partitioned by user and cached (:func:`prepared_events`);
the per-day aggregation shuffles them again by user, day and order id (the distinct orders of a day, planned with an
``Expand``) and then by user and day; the product and category lines go by user and product, then by user and day;
the per-day table goes by user for the gap window; the cutoffs are broadcast and the snapshot aggregation runs where
the per-day rows are. Keeping one partitioning throughout is the obvious next speed-up (see ``docs/scale.md``).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..dataset import SnapshotConfig
from ..feature_expr import Leaf, compile_expr, leaves
from ..feature_registry import FEATURES, INPUTS, Column, Registry
from ..features import MAX_EVENT_TYPES, MONEY_SCALE, SEQUENCE_CHANNELS, fill_sequences
from ..features import dropped_columns as duck_dropped
from .events import SparkEvents

SECOND_NS = 10**9


def top_event_types(events: SparkEvents) -> list[str]:
    """The ``MAX_EVENT_TYPES`` most frequent event types of the whole log, most frequent first (ties: seen first)."""
    counts = events.type_counts()
    counts = counts[counts["event_type"].notna()].sort_values(["n", "first"], ascending=[False, True], kind="stable")
    return [str(t) for t in counts["event_type"].head(MAX_EVENT_TYPES)]


def _div(x, y):
    """``x / nullif(y, 0)`` (null instead of an error or infinity)."""
    from pyspark.sql import functions as F

    return F.when(y != 0, x / y)


def _seconds(ns_col):
    """Whole seconds of an instant, truncated as DuckDB's epoch seconds are."""
    from pyspark.sql import functions as F

    return F.expr(f"{ns_col} div {SECOND_NS}") if isinstance(ns_col, str) else ns_col


def prepared_events(events: SparkEvents, windows: list[tuple[int, int]] | None = None):
    """The events partitioned by user (the one shuffle of the log); with ``windows`` (``(start, end]`` day ranges),
    only users with a purchase in one of them: the others reach no snapshot and are not aggregated."""
    from pyspark.sql import functions as F

    E = events.df
    if windows:
        bought = F.lit(False)
        for start, end in windows:
            bought = bought | ((F.col("b") > start) & (F.col("b") <= end))
        kept = E.where(F.col("is_purchase") & bought).select("user_id").distinct()
        E = E.join(F.broadcast(kept) if _small(events) else kept, "user_id", "left_semi")
    return E.repartition("user_id")


def _small(events: SparkEvents) -> bool:
    return int(events.stats()["rows"]) <= 2_000_000


def daily_table(E, types: list[str], n_attributes: int):
    """One row per user and day bucket of the prepared events (:func:`prepared_events`): purchase instants, revenue,
    units, ratings, counts, event types, the latest attributes of the day, the gap to the previous purchase day, and
    the products and categories first bought that day."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    p = F.col("is_purchase")
    sold = p & ~F.col("is_nonproduct")
    one = lambda cond: F.sum(F.when(cond, 1).otherwise(0))  # noqa: E731
    aggs = [
        F.min(F.when(p, F.col("ns"))).alias("first_p_ns"),
        F.max(F.when(p, F.col("ns"))).alias("last_p_ns"),
        F.max("ns").alias("last_ns"),
        F.coalesce(F.sum(F.when(sold, F.col("amount"))), F.lit(0.0)).alias("revenue"),
        F.coalesce(F.sum(F.when(sold, F.col("quantity"))), F.lit(0.0)).alias("units"),
        F.sum("rating").alias("rating_sum"), F.min("rating").alias("rating_min"), F.count("rating").alias("ratings"),
        (F.count_distinct(F.when(p, F.col("order_id"))) + one(p & F.col("order_id").isNull())).alias("orders"),
        one(p).alias("lines"), one(sold).alias("sold_lines"), one(F.col("is_return")).alias("returns"),
        one(F.col("is_cancel")).alias("cancels"),
        F.count(F.lit(1)).alias("events"),
        one(~p & ~F.col("is_return") & ~F.col("is_cancel")).alias("browsing"),
    ]
    aggs += [one(F.col("event_type") == F.lit(t)).alias(f"et{k}") for k, t in enumerate(types)]
    aggs += [F.max_by(F.col(f"a{i}"), F.when(F.col(f"a{i}").isNotNull(), F.struct(F.col("ns"), -F.col("pos"))))
             .alias(f"a{i}") for i in range(n_attributes)]
    daily = E.groupBy("user_id", "b").agg(*aggs)
    for col, name in (("product", "new_products"), ("category", "new_categories")):
        first = (E.where(sold & F.col(col).isNotNull()).groupBy("user_id", col).agg(F.min("b").alias("b"))
                 .groupBy("user_id", "b").agg(F.count(F.lit(1)).alias(name)))
        daily = daily.join(first, ["user_id", "b"], "left").fillna(0, subset=[name])
    before = Window.partitionBy("user_id").orderBy("b").rowsBetween(Window.unboundedPreceding, -1)
    prev = F.last(F.when(F.col("orders") > 0, F.col("b")), ignorenulls=True).over(before)
    return daily.withColumn("gap", F.when(F.col("orders") > 0, F.col("b") - prev))


def snapshot_frame(events: SparkEvents, days: list[int], cfg: SnapshotConfig, end_day: int, types: list[str],
                   daily=None, features: Registry = FEATURES):
    """The feature rows of every snapshot as a Spark DataFrame (``T`` as a day number, user, label, features, in
    the DuckDB engine's column order; attributes as ``a0, a1, ...``), compiled from the registry ``features``."""
    from pyspark.sql import functions as F

    H, L = int(cfg.horizon_days), int(cfg.lookback_days)
    if daily is None:
        daily = daily_table(prepared_events(events, [(T - L, T) for T in days]), types, len(events.attributes))
    cut = events.spark.createDataFrame([(int(T),) for T in days], "T int")
    X = daily.join(F.broadcast(cut), F.col("b") <= F.col("T") + H)
    b, T = F.col("b"), F.col("T")
    past = b <= T
    bought = F.col("orders") > 0
    columns = features.columns(cfg.windows, types)
    aggs = {
        "_pop": F.max(F.when(past & bought & (b > T - L), 1)),
        "_product": F.max(F.when(past & (F.col("sold_lines") > 0), 1)),  # not a fees-only user
        "_fut": F.max(F.when(~past & bought, 1)),
    }
    for leaf in (leaf for c in columns[0] + columns[1] for leaf in leaves(c.expr)):
        aggs |= _leaf_aggregates(leaf, past, bought)
    aggs |= {f"a{i}": F.max_by(F.col(f"a{i}"), F.when(past & F.col(f"a{i}").isNotNull(), b))
             for i in range(len(events.attributes))}
    A = X.groupBy("T", "user_id").agg(*(v.alias(k) for k, v in aggs.items()))
    A = A.where((F.col("_pop") == 1) & (F.col("_product") == 1))
    return A.select(*_feature_columns(columns, len(events.attributes), H, end_day))


_INSTANTS = {"first_purchase": ("_first_p", "first_p_ns"), "last_purchase": ("_last_p", "last_p_ns"),
             "last_event": ("_last_event", "last_ns")}


def _leaf_name(leaf: Leaf) -> str:
    """The aggregate column a leaf is read from (spans read two instants, see :func:`_leaf_value`)."""
    return f"{leaf.kind}_{leaf.field}_{leaf.period.key}"


def _leaf_aggregates(leaf: Leaf, past, bought) -> dict:
    """The per-user aggregates over the snapshot's days ``b <= T`` that a leaf reads."""
    from pyspark.sql import functions as F

    b, T = F.col("b"), F.col("T")
    p = leaf.period
    cond = past if p.start is None else past & (b > T - int(p.start))
    cond = cond & (b <= T - int(p.end)) if p.end else cond

    def total(col):
        return F.coalesce(F.sum(F.when(cond, F.col(col))), F.lit(0))

    name = _leaf_name(leaf)
    if leaf.kind == "count":
        if leaf.field == "days":
            return {name: F.count(F.when(cond, 1))}
        if leaf.field == "purchase_days":
            return {name: F.count(F.when(cond & bought, 1))}
        return {name: total(f"et{leaf.field[3:]}" if leaf.field.startswith("et_") else leaf.field)}
    if leaf.kind == "money":
        return {name: _money(total("revenue"))}
    if leaf.kind == "sum":
        return {name: F.sum(F.when(past, F.col("units" if leaf.field == "units" else "rating_sum")))}
    if leaf.kind == "min":
        return {name: F.min(F.when(past, F.col("rating_min")))}
    if leaf.kind == "span":
        return {_INSTANTS[i][0]: (F.min if i == "first_purchase" else F.max)(F.when(past, F.col(_INSTANTS[i][1])))
                for i in (leaf.field, leaf.to) if i in _INSTANTS}
    if leaf.kind == "gaps":
        gap = F.when(past, F.col("gap"))
        return {name: {"mean": F.avg(gap), "std": _gap_spread(F, gap.cast("long")), "max": F.max(gap)}[leaf.field]}
    if leaf.kind == "distinct":
        return {name: total("new_products" if leaf.field == "product" else "new_categories")}
    raise ValueError(f"no Spark aggregate for {leaf!r}")


def _leaf_value(leaf: Leaf):
    """A leaf's value from the per-user aggregates: a column, or for a span whole seconds between two instants."""
    from pyspark.sql import functions as F

    if leaf.kind != "span":
        return F.col(_leaf_name(leaf))
    second = lambda i: F.col("T") * 86400 if i == "cutoff" else _seconds(_INSTANTS[i][0])  # noqa: E731
    return second(leaf.to) - second(leaf.field)


def _ops() -> dict:
    """The operators on Spark Columns (a ratio is null where the divisor is 0, whatever ANSI mode says)."""
    from pyspark.sql import functions as F

    return {"const": F.lit, "add": lambda x, y: x + y, "sub": lambda x, y: x - y, "mul": lambda x, y: x * y,
            "div": lambda x, y: x / y, "ratio": _div, "ln": F.log, "greatest": F.greatest}


def _feature_columns(columns: tuple[list[Column], list[Column]], n_attributes: int, H: int, end_day: int) -> list:
    """The snapshot's columns from the per-user aggregates, in the DuckDB engine's order and types."""
    from pyspark.sql import functions as F

    T, ops = F.col("T"), _ops()
    value = lambda c: compile_expr(c.expr, _leaf_value, ops).cast("double").alias(c.name)  # noqa: E731
    return ([F.col("user_id"), T,
             F.when(T + H > F.lit(int(end_day)), F.lit(None).cast("double"))
             .when(F.col("_fut").isNull(), F.lit(1.0)).otherwise(F.lit(0.0)).alias("churned")]
            + [value(c) for c in columns[0]] + [F.col(f"a{i}") for i in range(n_attributes)]
            + [value(c) for c in columns[1]])


def compute(events: SparkEvents, dates: list[pd.Timestamp], cfg: SnapshotConfig, *, end: pd.Timestamp,
            sequences: bool = False, features: Registry = FEATURES) -> tuple[pd.DataFrame, np.ndarray | None]:
    """The Spark twin of :func:`retention_core.features.compute`: the same frame (rows, columns, order, types) and
    the same weekly sequences, computed on Spark and collected to the driver."""
    with Snapshots(events, dates, cfg, end=end, keep_daily=sequences, features=features) as snap:
        frame = finish(snap.frame.toPandas(), events, cfg, features)
        seq = _sequences(events, snap.daily, frame, cfg.sequence_weeks) if sequences else None
    return frame, seq


class Snapshots:
    """The feature rows of some cutoffs as a Spark DataFrame (``frame``: attributes as ``a0, a1, ...``, the cutoff
    as day number ``T``; :func:`finish` turns it into the product's frame), with the per-day table behind it. A
    context manager: the prepared events (and ``daily`` with ``keep_daily``) stay cached until it closes."""

    def __init__(self, events: SparkEvents, dates: list[pd.Timestamp], cfg: SnapshotConfig, *, end: pd.Timestamp,
                 keep_daily: bool = False, features: Registry = FEATURES):
        self.days = [(pd.Timestamp(d.date()) - pd.Timestamp("1970-01-01")).days for d in dates]
        end_day = (pd.Timestamp(end.date()) - pd.Timestamp("1970-01-01")).days
        self.types = top_event_types(events)
        L = int(cfg.lookback_days)
        self._E = prepared_events(events, [(T - L, T) for T in self.days]).persist()  # days, products, categories
        self.daily = daily_table(self._E, self.types, len(events.attributes))
        if keep_daily:
            self.daily = self.daily.persist()
        self._keep = keep_daily
        self.frame = snapshot_frame(events, self.days, cfg, end_day, self.types, self.daily, features)

    def __enter__(self) -> "Snapshots":
        return self

    def __exit__(self, *exc) -> None:
        if self._keep:
            self.daily.unpersist()
        self._E.unpersist()


def dropped_columns(events: SparkEvents, columns: list[str], features: Registry = FEATURES) -> list[str]:
    """The feature columns the product drops because the log lacks their input everywhere (no rating, amount,
    quantity, category or product), by the DuckDB engine's rule (:func:`retention_core.features.dropped_columns`)."""
    return duck_dropped(columns, {c for c in INPUTS if not events.has(c)}, features)


def finish(raw: pd.DataFrame, events: SparkEvents, cfg: SnapshotConfig, features: Registry = FEATURES) -> pd.DataFrame:
    """The collected rows as the DuckDB engine returns them: latest snapshot first and users in text order, numbers
    as float64, attributes as text (None when missing), columns of what the log lacks dropped."""
    frame = raw.rename(columns={f"a{i}": a for i, a in enumerate(events.attributes)})
    frame = frame.rename(columns={"T": "snapshot_date"})
    frame["user_id"] = frame["user_id"].astype(str)
    frame = frame.sort_values(["snapshot_date", "user_id"], ascending=[False, True], kind="stable")
    frame["snapshot_date"] = (pd.Timestamp("1970-01-01")
                              + pd.to_timedelta(frame["snapshot_date"].to_numpy(np.int64), unit="D")).astype("datetime64[us]")
    for c in frame.columns:
        if c in events.attributes:  # as the DuckDB engine decodes them: text, None when missing
            v = frame[c].to_numpy(dtype=object)
            out = np.full(len(frame), None, dtype=object)
            known = pd.notna(v)
            out[known] = v[known]
            frame[c] = out
        elif c not in ("user_id", "snapshot_date"):
            frame[c] = frame[c].astype("float64")
    frame["user_id"] = frame["user_id"].to_numpy(dtype=object)
    return frame.drop(columns=dropped_columns(events, list(frame.columns), features)).reset_index(drop=True)


def _sequences(events: SparkEvents, daily, frame: pd.DataFrame, weeks: int) -> np.ndarray:
    """Weekly activity before each row's cutoff, as :func:`retention_core.features._sequences` (oldest week first)."""
    from pyspark.sql import functions as F

    out = np.zeros((len(frame), weeks, len(SEQUENCE_CHANNELS)), dtype=np.float32)
    if len(frame) == 0:
        return out
    days = ((pd.to_datetime(frame["snapshot_date"]) - pd.Timestamp("1970-01-01")).dt.days).to_numpy(np.int64)
    rows = pd.DataFrame({"i": np.arange(len(frame), dtype=np.int64), "user_id": frame["user_id"].astype(str),
                         "T": days.astype(np.int32)})
    r = events.spark.createDataFrame(rows)
    span = int(weeks) * 7
    j = r.join(daily, "user_id").where((F.col("b") <= F.col("T")) & (F.col("b") > F.col("T") - span))
    agg = (j.groupBy("i", ((F.col("T") - F.col("b")) / 7).cast("long").alias("w"))
           .agg(F.sum("orders").cast("double").alias("orders"),
                F.log(1 + F.greatest(_money(F.sum("revenue")), F.lit(0.0))).alias("revenue_log"),
                F.log(1 + F.sum("browsing").cast("double")).alias("browsing_log"),
                F.sum("returns").cast("double").alias("returns"))).toPandas()
    return fill_sequences(out, agg, weeks)


def _money(total):
    """A money sum rounded to a millionth, as every engine rounds it (:func:`retention_core.features.round_money`)."""
    from pyspark.sql import functions as F

    y = total * MONEY_SCALE
    return F.when(F.abs(y) < 2.0**52, F.floor(y + 0.5).cast("double") / MONEY_SCALE).otherwise(total)


def _gap_spread(F, gap):
    """The sample standard deviation of whole-day gaps from exact integer sums, then one division and one square root
    (as the DuckDB and NumPy engines compute it: the same bits whatever order the rows come in)."""
    n, s1, s2 = F.count(gap), F.sum(gap), F.sum(gap * gap)
    return F.when(n > 1, F.sqrt((n * s2 - s1 * s1).cast("double") / (n * (n - 1)).cast("double")))
