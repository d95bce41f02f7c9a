"""The canonical event table on Spark.

Columns (internal names: Spark column names cannot hold every name an analyst gives an attribute):

``user_id`` (text), ``ns`` (the timestamp as nanoseconds since 1970-01-01, long), ``b`` (the day bucket: the first
midnight at or after the event, as days since 1970-01-01), ``pos`` (the row's place in the log, for tie-breaks as the
DuckDB engine breaks them), ``order_id``, ``event_type``, ``product``, ``category`` (text), ``amount``, ``quantity``,
``rating`` (double, null when missing: never NaN), ``is_purchase``, ``is_return``, ``is_cancel``, ``is_nonproduct``
(boolean) and one text column ``a0, a1, ...`` per user attribute.

Timestamps travel as integers so that no time zone, date function or micro/nanosecond rounding of Spark's can move an
event across a day boundary: the bucket of an event is computed exactly, from nanoseconds, as the DuckDB engine does.

Two ways in: :meth:`SparkEvents.from_pandas` (a canonical table made by
:func:`retention_core.events.canonical_events`: files the product reads with pandas) and
:func:`retention_core.spark.source.read_parquet_events` (Parquet files or folders read by Spark itself, cleaned with the
same rules, for logs that do not fit one machine).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import DataError
from ..events import CANONICAL

DAY_NS = 86_400 * 10**9
TEXT = ["user_id", "order_id", "event_type", "product", "category"]
NUMBERS = ["amount", "quantity", "rating"]
FLAGS = ["is_purchase", "is_return", "is_cancel", "is_nonproduct"]


@dataclass
class SparkEvents:
    """A canonical event log as a Spark DataFrame, with what the engine needs to know about the whole log."""
    df: object  # pyspark.sql.DataFrame with the columns of the module notes
    attributes: list[str] = field(default_factory=list)  # attribute names, in the order of columns a0, a1, ...
    cleaning: dict = field(default_factory=dict)
    roles: frozenset[str] | None = None  # the roles the source's columns hold (None: not known, see held_roles)
    _stats: dict | None = None
    _types: pd.DataFrame | None = None

    @property
    def spark(self):
        return self.df.sparkSession

    def type_counts(self) -> pd.DataFrame:
        """Events per event type (``n``) with the first row of each (``first``), and per type the first and last
        timestamp and the values of the optional columns: one pass over the log gives :meth:`stats` too."""
        if self._types is None:
            from pyspark.sql import functions as F

            opt = ("amount", "quantity", "rating", "product", "category")
            self._types = self.df.groupBy("event_type").agg(
                F.count(F.lit(1)).alias("n"), F.min("pos").alias("first"), F.min("ns").alias("t0"),
                F.max("ns").alias("t1"), *[F.count(c).alias("has_" + c) for c in opt]).toPandas()
        return self._types

    def stats(self) -> dict:
        """First and last timestamp (ns), rows, and how many values each optional column holds."""
        if self._stats is None:
            t = self.type_counts()
            self._stats = {"first": int(t["t0"].min()) if len(t) else None,
                           "last": int(t["t1"].max()) if len(t) else None, "rows": int(t["n"].sum()),
                           **{c[4:]: int(t[c].sum()) for c in t.columns if c.startswith("has_")}}
        return self._stats

    def bounds(self) -> pd.DataFrame:
        """A two-row frame with the first and last timestamp: what :func:`retention_core.events.default_config`,
        ``snapshot_dates`` and ``data_end`` read from a log (``ts`` only), without the log on the driver."""
        s = self.stats()
        if s["rows"] == 0:

            raise DataError("No usable events: every row lacks a user id or a readable timestamp. "
                            "Check the user id and timestamp columns in the column mapping.")
        return pd.DataFrame({"ts": pd.to_datetime([s["first"], s["last"]], unit="ns")})

    def has(self, column: str) -> bool:
        return bool(self.stats()[column])

    def held_roles(self) -> frozenset[str]:
        """The roles the source's columns hold; for a log made elsewhere (``roles`` not known), the canonical columns
        some event has a value in."""
        if self.roles is not None:
            return self.roles
        typed = bool(self.type_counts()["event_type"].notna().any())
        return frozenset([c for c in ("amount", "quantity", "rating", "product", "category") if self.has(c)]
                         + ["event_type"] * typed)

    @classmethod
    def from_pandas(cls, spark, ev: pd.DataFrame, roles=None) -> "SparkEvents":
        """A canonical pandas table (``canonical_events``) on Spark, row order kept in ``pos``; ``roles``: the roles
        the raw log's columns held (``Schema.held()``), when known."""
        import pyarrow as pa


        attributes = [c for c in ev.columns if c not in CANONICAL]
        ns = ev["ts"].to_numpy(dtype="datetime64[ns]").view(np.int64)
        cols = {"user_id": _text(ev["user_id"]), "ns": pa.array(ns, type=pa.int64()),
                "b": pa.array(-((-ns) // DAY_NS), type=pa.int32()),
                "pos": pa.array(np.arange(len(ev), dtype=np.int64))}
        for c in TEXT[1:]:
            cols[c] = _text(ev[c])
        for c in NUMBERS:
            v = ev[c].to_numpy(dtype="float64", na_value=np.nan)
            cols[c] = pa.array(v, type=pa.float64(), mask=~np.isfinite(v))
        for c in FLAGS:
            cols[c] = pa.array(ev[c].to_numpy(dtype=bool))
        for i, a in enumerate(attributes):
            cols[f"a{i}"] = _text(ev[a])
        table = pa.table(cols)
        df = spark.createDataFrame(table)
        return cls(df, attributes, dict(ev.attrs.get("cleaning", {})), None if roles is None else frozenset(roles))


def _text(s: pd.Series):
    """A text column (categorical, str or object) as an Arrow string array with nulls; values as the DuckDB engine
    decodes them (``str`` of each category)."""
    import pyarrow as pa

    if isinstance(s.dtype, pd.CategoricalDtype):
        cats = np.asarray(pd.Index(s.cat.categories).astype(str), dtype=object)
        codes = s.cat.codes.to_numpy()
        out = np.empty(len(s), dtype=object)
        known = codes >= 0
        out[known] = cats[codes[known]]
        out[~known] = None
        return pa.array(out, type=pa.string())
    txt = s.astype("string")
    return pa.array(txt.to_numpy(dtype=object, na_value=None), type=pa.string())
