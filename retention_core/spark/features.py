"""Every feature column of :mod:`retention_core.features`, on Spark, equal to the DuckDB engine's.

The definitions are the same relational steps (see the notes of ``retention_core/features.py``): events are reduced
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
from ..features import MAX_EVENT_TYPES, MONEY_SCALE, SEQUENCE_CHANNELS, fill_sequences, type_names
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
                   daily=None):
    """The feature rows of every snapshot as a Spark DataFrame (``T`` as a day number, user, label, features, in
    the DuckDB engine's column order; attributes as ``a0, a1, ...``)."""
    from pyspark.sql import functions as F

    H, L = int(cfg.horizon_days), int(cfg.lookback_days)
    if daily is None:
        daily = daily_table(prepared_events(events, [(T - L, T) for T in days]), types, len(events.attributes))
    cut = events.spark.createDataFrame([(int(T),) for T in days], "T int")
    X = daily.join(F.broadcast(cut), F.col("b") <= F.col("T") + H)
    b, T = F.col("b"), F.col("T")
    past = b <= T
    bought = F.col("orders") > 0

    def total(col, cond=None):
        cond = past if cond is None else past & cond
        out = F.coalesce(F.sum(F.when(cond, F.col(col))), F.lit(0))
        return _money(out) if col == "revenue" else out

    periods = {f"w{w}": b > T - int(w) for w in sorted({*cfg.windows, 30, 180})}
    periods["prev90"] = (b > T - 180) & (b <= T - 90)
    aggs = [
        F.max(F.when(past & bought & (b > T - L), 1)).alias("_pop"),
        F.max(F.when(past & (F.col("sold_lines") > 0), 1)).alias("_product"),  # not a fees-only user
        F.max(F.when(~past & bought, 1)).alias("_fut"),
        F.max(F.when(past, F.col("last_p_ns"))).alias("_last_p"),
        F.min(F.when(past, F.col("first_p_ns"))).alias("_first_p"),
        F.max(F.when(past, F.col("last_ns"))).alias("_last_event"),
        _money(F.sum(F.when(past, F.col("revenue")))).alias("revenue_total"),
        F.sum(F.when(past, F.col("units"))).alias("units_total"),
        F.sum(F.when(past, F.col("rating_sum"))).alias("_rating_sum"),
        F.min(F.when(past, F.col("rating_min"))).alias("rating_min"),
        total("ratings").alias("ratings_count"),
        F.count(F.when(past & bought, 1)).alias("_purchase_days"),
        F.count(F.when(past, 1)).alias("active_days_total"),
        F.avg(F.when(past, F.col("gap"))).alias("gap_mean_days"),
        _gap_spread(F, F.when(past, F.col("gap").cast("long"))).alias("gap_std_days"),
        F.max(F.when(past, F.col("gap"))).alias("gap_max_days"),
        total("new_products").alias("n_products"), total("new_categories").alias("n_categories"),
    ]
    for f in ("orders", "lines", "returns", "cancels", "events", "browsing"):
        aggs.append(total(f).alias(f"{f}_total"))
    for name, cond in periods.items():
        aggs += [total("orders", cond).alias(f"{name}_orders"), total("revenue", cond).alias(f"{name}_revenue"),
                 F.count(F.when(past & cond, 1)).alias(f"{name}_days")]
        if name in ("w30", "w90"):
            aggs += [total(f"et{k}", cond).alias(f"{name}_et{k}") for k in range(len(types))]
    aggs += [total(f"et{k}").alias(f"t_et{k}") for k in range(len(types))]
    aggs += [F.max_by(F.col(f"a{i}"), F.when(past & F.col(f"a{i}").isNotNull(), b)).alias(f"a{i}")
             for i in range(len(events.attributes))]
    A = X.groupBy("T", "user_id").agg(*aggs).where((F.col("_pop") == 1) & (F.col("_product") == 1))
    return A.select(*_feature_columns(cfg, types, len(events.attributes), H, end_day))


def _feature_columns(cfg: SnapshotConfig, types: list[str], n_attributes: int, H: int, end_day: int) -> list:
    """The snapshot's feature columns from the per-user aggregates, in the DuckDB engine's order and types."""
    from pyspark.sql import functions as F

    T = F.col("T")
    Ts = T * 86400
    dbl = lambda c: F.col(c).cast("double")  # noqa: E731
    cols = [F.col("user_id"), T,
            F.when(T + H > F.lit(int(end_day)), F.lit(None).cast("double"))
             .when(F.col("_fut").isNull(), F.lit(1.0)).otherwise(F.lit(0.0)).alias("churned"),
            ((Ts - _seconds("_last_p")) / 86400.0).alias("recency_days"),
            ((Ts - _seconds("_first_p")) / 86400.0).alias("tenure_days"),
            ((_seconds("_last_p") - _seconds("_first_p")) / 86400.0).alias("first_to_last_days"),
            ((Ts - _seconds("_last_event")) / 86400.0).alias("days_since_last_event"),
            (F.col("_purchase_days") - 1).alias("repeat_purchases"),
            dbl("orders_total"), dbl("active_days_total"), F.col("revenue_total"), F.col("units_total")]
    cols += [dbl(f"{f}_total") for f in ("lines", "returns", "cancels", "events", "browsing")]
    cols += [dbl("ratings_count"), _div(F.col("_rating_sum"), F.col("ratings_count")).alias("rating_mean"),
             F.col("rating_min")]
    for w in cfg.windows:
        cols += [dbl(f"w{w}_orders").alias(f"orders_{w}d"), F.col(f"w{w}_revenue").cast("double").alias(f"revenue_{w}d"),
                 dbl(f"w{w}_days").alias(f"active_days_{w}d")]
        if w in (30, 90):
            cols += [dbl(f"w{w}_et{k}").alias(n) for k, n in enumerate(type_names(types, f"{w}d"))]
    cols += [dbl("prev90_orders").alias("orders_prev_90d"), F.col("prev90_revenue").cast("double").alias("revenue_prev_90d")]
    cols += [dbl(f"t_et{k}").alias(n) for k, n in enumerate(type_names(types, "total"))]
    cols += [F.col(f"a{i}") for i in range(n_attributes)]
    o = lambda c: F.col(c).cast("double")  # noqa: E731
    cols += [
        _div(F.col("revenue_total"), o("orders_total")).alias("avg_order_value"),
        _div(o("lines_total"), o("orders_total")).alias("lines_per_order"),
        _div(o("returns_total"), o("lines_total")).alias("return_rate"),
        _div(o("cancels_total"), o("lines_total") + o("cancels_total")).alias("cancel_rate"),
        (o("w90_orders") - o("prev90_orders")).alias("orders_trend_90d"),
        F.log((F.col("w90_revenue") + 1) / (F.greatest(F.col("prev90_revenue"), F.lit(0.0)) + 1)).alias("revenue_trend_90d"),
        (o("w30_orders") - o("w180_orders") / 6.0).alias("orders_30d_vs_avg"),
        F.col("gap_mean_days"), F.col("gap_std_days"), dbl("gap_max_days"),
        _div((Ts - _seconds("_last_p")) / 86400.0, F.col("gap_mean_days")).alias("recency_vs_usual_gap"),
        dbl("n_products"), dbl("n_categories"),
    ]
    return cols


def compute(events: SparkEvents, dates: list[pd.Timestamp], cfg: SnapshotConfig, *, end: pd.Timestamp,
            sequences: bool = False) -> tuple[pd.DataFrame, np.ndarray | None]:
    """The Spark twin of :func:`retention_core.features.compute`: the same frame (rows, columns, order, types) and
    the same weekly sequences, computed on Spark and collected to the driver."""
    with Snapshots(events, dates, cfg, end=end, keep_daily=sequences) as snap:
        frame = finish(snap.frame.toPandas(), events, cfg)
        seq = _sequences(events, snap.daily, frame, cfg.sequence_weeks) if sequences else None
    return frame, seq


class Snapshots:
    """The feature rows of some cutoffs as a Spark DataFrame (``frame``: attributes as ``a0, a1, ...``, the cutoff
    as day number ``T``; :func:`finish` turns it into the product's frame), with the per-day table behind it. A
    context manager: the prepared events (and ``daily`` with ``keep_daily``) stay cached until it closes."""

    def __init__(self, events: SparkEvents, dates: list[pd.Timestamp], cfg: SnapshotConfig, *, end: pd.Timestamp,
                 keep_daily: bool = False):
        self.days = [(pd.Timestamp(d.date()) - pd.Timestamp("1970-01-01")).days for d in dates]
        end_day = (pd.Timestamp(end.date()) - pd.Timestamp("1970-01-01")).days
        self.types = top_event_types(events)
        L = int(cfg.lookback_days)
        self._E = prepared_events(events, [(T - L, T) for T in self.days]).persist()  # days, products, categories
        self.daily = daily_table(self._E, self.types, len(events.attributes))
        if keep_daily:
            self.daily = self.daily.persist()
        self._keep = keep_daily
        self.frame = snapshot_frame(events, self.days, cfg, end_day, self.types, self.daily)

    def __enter__(self) -> "Snapshots":
        return self

    def __exit__(self, *exc) -> None:
        if self._keep:
            self.daily.unpersist()
        self._E.unpersist()


def dropped_columns(events: SparkEvents, columns: list[str]) -> list[str]:
    """The feature columns the product drops because the log lacks their input everywhere (no rating, amount,
    quantity, category or product), by the DuckDB engine's rule (:func:`retention_core.features.dropped_columns`)."""
    return duck_dropped(columns, {c for c in ("rating", "amount", "quantity", "category", "product")
                                  if not events.has(c)})


def finish(raw: pd.DataFrame, events: SparkEvents, cfg: SnapshotConfig) -> pd.DataFrame:
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
    return frame.drop(columns=dropped_columns(events, list(frame.columns))).reset_index(drop=True)


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
