"""Parquet files or folders read by Spark itself and cleaned with the rules of
:func:`retention_core.events.canonical_events`, so that a log larger than the driver's memory never passes through
pandas.

What is decided on the driver, from a sample (at most ``sample_rows`` rows, read through the product's own type rules,
``coerce_types``): the table kind and column roles (``infer_schema``, as for an upload), the validation errors that
stop a build, and how the timestamp text is written (the format ``parse_datetime`` would pick). What is decided on the
whole log, in Spark: everything that depends on all rows (exact duplicates, whether ``C...`` order ids are a minority,
whether product codes mostly hold digits, whether float ids are whole numbers, the first and last timestamp). Each row
is then cleaned in Spark with the same rules, and timestamp text is parsed by pandas itself inside Spark's Python
workers (a pandas UDF with the format fixed), so both engines read every date alike.

Rows keep their place in the log (``pos``: file by file in path order, rows in file order) for the tie-breaks of the
DuckDB engine. Columns that only live in folder names (``key=value``) are not read, by either engine.
"""
from __future__ import annotations

import re
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pandas as pd

from ..cells import (NUMBER_FACTS, STRIP_CURRENCY, coerce_types, date_text, number_reading, read_text_dates,
                     text_date_rule)
from ..errors import ConfigError, DataError
from ..events import CANONICAL, NON_PRODUCT_CODES
from ..io import parquet_files
from ..roles import CANCEL_WORDS, RETURN_WORDS, infer_schema, require_roles
from ..validation import validate
from .events import DAY_NS, SparkEvents

#: Python's ``str.strip()`` whitespace, which Spark's ``trim`` (spaces only) does not cover.
_WS = r"[\s\x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
_NUMBER_TEXT = r"^[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$"


def is_parquet_source(path) -> bool:
    """True for a Parquet file, a folder of Parquet files, or a remote path (``s3a://...``) Spark reads."""
    s = str(path)
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", s) and not s.startswith("file://"):
        return True
    p = Path(s.removeprefix("file://"))
    if p.is_dir():
        return True
    try:
        with open(p, "rb") as fh:
            return fh.read(4) == b"PAR1"
    except OSError:
        return False


def _files(path) -> list[str] | None:
    """Local Parquet files in reading order (None for a remote path: Spark lists it)."""
    s = str(path)
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", s) and not s.startswith("file://"):
        return None
    p = Path(s.removeprefix("file://"))
    if not p.exists():
        raise DataError(f"File not found: {p}. Check the path and try again.")
    return [str(f.resolve()) for f in parquet_files(p)] if p.is_dir() else [str(p.resolve())]


def _nanosecond_columns(files: list[str] | None) -> set[str]:
    if not files:
        return set()
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pq.read_schema(files[0])
    return {f.name for f in schema if pa.types.is_timestamp(f.type) and f.type.unit == "ns"}


def _parquet(spark, path):
    """The Parquet data as Spark reads it, and the local files in reading order (None for a remote path)."""
    files = _files(path)
    if _nanosecond_columns(files):  # Spark reads TIMESTAMP(NANOS) only as the raw count of nanoseconds
        spark.conf.set("spark.sql.legacy.parquet.nanosAsLong", "true")
    try:
        return spark.read.parquet(*(files or [str(path)])), files
    except Exception as exc:  # an unreadable file: the analyst's problem, in one line
        raise DataError(f"{Path(str(path)).name} cannot be read as Parquet by Spark ({_reason(exc)}).") from None


def _reason(exc: Exception) -> str:
    """The first line of what Spark said (the Java exception's message, not py4j's "An error occurred while calling
    o17.parquet")."""
    java = getattr(exc, "java_exception", None)
    try:
        text = str(java.getMessage()) if java is not None else str(exc)
    except Exception:  # the gateway itself is gone
        text = str(exc)
    return (text.strip().splitlines() or ["no reason given"])[0][:300]


def parquet_columns(spark, path) -> list[str]:
    """The column names of a Parquet file or folder (stripped), read from its schema only."""
    return [str(c).strip() for c in _parquet(spark, path)[0].columns]


def _file_rank(name: str, files: list[str] | None):
    """Where a file Spark names (``_metadata.file_path``: a URI such as ``file:/tmp/a%20b.parquet``) comes in the
    log: the product's reading order of local files (``io.parquet_files``), else the URIs' order."""
    if files:
        local = str(Path(unquote(urlparse(name).path)).resolve())
        if local in files:
            return 0, files.index(local), name
    return 1, 0, name


def read_raw(spark, path):
    """The Parquet data as Spark reads it, with ``pos`` (place in the log: files in the product's reading order, rows
    in file order), the names of nanosecond columns and the number of rows (one pass over the files' row counts)."""
    from pyspark.sql import functions as F

    raw, files = _parquet(spark, path)
    nanos = _nanosecond_columns(files)
    per_file = raw.groupBy(F.col("_metadata.file_path").alias("f")).count().collect()
    # files keyed by the very text Spark gives each row (URIs are written in more than one way: file:/ or file:///)
    order = sorted((r["f"] for r in per_file), key=lambda f: _file_rank(f, files))
    index = F.create_map(*[x for i, f in enumerate(order) for x in (F.lit(f), F.lit(i))]) if order else None
    pos = F.element_at(index, F.col("_metadata.file_path")).cast("long") * (1 << 40) if order else F.lit(0).cast("long")
    raw = raw.withColumn("__pos", pos + F.col("_metadata.row_index"))
    return raw, nanos, sum(int(r["count"]) for r in per_file)


def _sample(raw, n: int, nanos: set[str], total: int) -> pd.DataFrame:
    """At most ``n`` rows spread over the log, in log order, typed as the product reads a Parquet file."""
    import pyarrow as pa
    import pyarrow.compute as pc

    part = raw if total <= n else raw.sample(fraction=min(1.0, 1.2 * n / total), seed=0)
    table = part.limit(n).toArrow()
    table = table.take(pc.sort_indices(table["__pos"])).drop_columns(["__pos"])  # in log order
    mapper = {pa.int64(): pd.Int64Dtype(), pa.int32(): pd.Int64Dtype(), pa.int16(): pd.Int64Dtype(),
              pa.int8(): pd.Int64Dtype()}
    df = table.to_pandas(types_mapper=mapper.get)
    for c in nanos:
        df[c] = pd.to_datetime(df[c].astype("float64"), unit="ns")
    return df, total


# --------------------------------------------------------------------------------------------------- date text
def apply_text_date_rule(s: pd.Series, rule: dict) -> pd.Series:
    """Nanoseconds since 1970 (missing where unreadable) of text read with ``rule``, as ``parse_datetime`` reads it."""
    out = read_text_dates(date_text(s), rule)
    missing = out.isna().to_numpy()
    res = pd.array(out.to_numpy(dtype="datetime64[ns]").view(np.int64), dtype="Int64")
    res[missing] = pd.NA
    return pd.Series(res, index=s.index)


def _date_udf(rule: dict):
    from pyspark.sql import functions as F

    @F.pandas_udf("long")
    def parse(s: pd.Series) -> pd.Series:
        from retention_core.spark.source import apply_text_date_rule

        return apply_text_date_rule(s, rule)

    return parse


# ------------------------------------------------------------------------------------------- column expressions
def _java(pattern: str) -> str:
    """A pattern of ``cells`` for Java's regular expressions: ``\\s`` as the white space of Arrow's (RE2), without
    the vertical tab that Java's adds."""
    return pattern.replace(r"\s", r"[\t\n\f\r ]")


def _reading_steps(col):
    """The cells at each step of ``cells.NUMBER_FACTS`` (``raw``, ``unpriced``, ``bare``), and which cells are given."""
    from pyspark.sql import functions as F

    unpriced = F.regexp_replace(col, _java(STRIP_CURRENCY), "")
    return {"raw": col, "unpriced": unpriced, "bare": F.regexp_replace(unpriced, r"^\+", "")}, col.isNotNull()


def _read_as(bare, kind: str):
    """Bare cells read as ``kind`` of ``cells.number_reading`` (null where they do not read)."""
    from pyspark.sql import functions as F

    if kind == "int":
        return bare.try_cast("long")
    if kind == "us":
        bare = F.regexp_replace(bare, ",", "")
    elif kind == "eu":
        bare = F.regexp_replace(F.regexp_replace(bare, r"\.", ""), ",", ".")
    return bare.try_cast("double")


def float_text(s: pd.Series) -> pd.Series:
    """Numbers as the product writes a non-whole number column as text (``events._text``: Python's ``str``)."""
    out = pd.Series(s.to_numpy(dtype=object), index=s.index).astype("string")
    return out.astype(object).where(out.notna(), None)


def _float_text(col):
    from pyspark.sql import functions as F

    @F.pandas_udf("string")
    def text(s: pd.Series) -> pd.Series:
        from retention_core.spark.source import float_text

        return float_text(s)

    return text(col)


def _clean_text(col):
    """Stripped as Python strips, empty as missing (``coerce_types``)."""
    from pyspark.sql import functions as F

    t = F.regexp_replace(F.regexp_replace(col, f"^{_WS}+", ""), f"{_WS}+$", "")
    return F.when(t != "", t)


def _kind(dtype) -> str:
    from pyspark.sql import types as T

    if isinstance(dtype, T.StringType):
        return "text"
    if isinstance(dtype, (T.ByteType, T.ShortType, T.IntegerType, T.LongType)):
        return "int"
    if isinstance(dtype, (T.FloatType, T.DoubleType, T.DecimalType)):
        return "float"
    if isinstance(dtype, T.BooleanType):
        return "bool"
    if isinstance(dtype, (T.TimestampType, T.TimestampNTZType)):
        return "timestamp"
    if isinstance(dtype, T.DateType):
        return "date"
    return "other"


class _Cleaner:
    """Spark expressions for each role column, with the whole-log checks they need (one aggregate pass)."""
    def __init__(self, df, sample: pd.DataFrame, nanos: set[str]):
        self.df, self.sample, self.nanos = df, sample, nanos
        self.kinds = {f.name: _kind(f.dataType) for f in df.schema.fields}
        self.checks: dict[str, object] = {}

    def _numeric_in_sample(self, c: str) -> bool:
        return c in self.sample.columns and pd.api.types.is_numeric_dtype(self.sample[c].dtype) \
            and not pd.api.types.is_bool_dtype(self.sample[c].dtype)

    def _plan_reading(self, c: str) -> None:
        """For text whose sample reads as numbers: the whole log's facts of ``cells.number_reading``."""
        from pyspark.sql import functions as F

        steps, given = _reading_steps(F.col(f"`{c}`"))
        for fact, (step, pattern) in NUMBER_FACTS.items():
            hit = F.when(given, steps[step].rlike(_java(pattern)).cast("int"))
            self.checks[f"every {fact}:{c}"], self.checks[f"some {fact}:{c}"] = F.min(hit), F.max(hit)
        for kind in ("int", "float", "us", "eu"):
            v = _read_as(steps["bare"], kind)
            ok = v.isNotNull() if kind == "int" else v.isNotNull() & ~F.isnan(v) & (F.abs(v) != float("inf"))
            self.checks[f"every read:{kind}:{c}"] = F.min(F.when(given, ok.cast("int")))
            if kind != "int":  # whole numbers are written as integers (``events._text``)
                self.checks[f"whole {kind}:{c}"] = F.min(F.when(given, (v == F.floor(v)).cast("int")))

    def _reading(self, c: str, found: dict) -> str | None:
        """How the product reads this text column as a whole (``cells.number_reading``; None: as text)."""
        if self.kinds[c] != "text" or not self._numeric_in_sample(c):
            return None
        return number_reading(lambda fact: found.get(f"every {fact}:{c}") in (None, 1),
                              lambda fact: found.get(f"some {fact}:{c}") == 1)

    def plan_text(self, c: str):
        from pyspark.sql import functions as F

        k, col = self.kinds[c], F.col(f"`{c}`")
        if k == "text" and self._numeric_in_sample(c):
            self._plan_reading(c)
        elif k == "float":
            whole = (col == F.floor(col)) & (F.abs(col) != float("inf"))  # inf is no whole number (events._text)
            self.checks[f"whole:{c}"] = F.min(F.when(col.isNotNull() & ~F.isnan(col), whole.cast("int")))

    def text(self, c: str, found: dict):
        """The column as the product's text (``events._text`` after ``coerce_types``): numbers as Python writes them,
        whole ones as integers; a text column that holds only numbers, on the whole log, as those numbers."""
        from pyspark.sql import functions as F

        k, col = self.kinds[c], F.col(f"`{c}`")
        kind = self._reading(c, found)
        if k == "text" and kind is None:
            return col
        if k == "text":
            v = _read_as(_reading_steps(col)[0]["bare"], kind)
            if kind == "int" or found.get(f"whole {kind}:{c}") in (None, 1):
                return v.cast("long").cast("string")
            return _float_text(v)
        if k == "int":
            return col.cast("string")
        if k == "float":
            v = F.when(~F.isnan(col), col)
            return v.cast("long").cast("string") if found.get(f"whole:{c}") in (None, 1) else _float_text(v)
        if k == "bool":
            return F.when(col, F.lit("True")).when(~col, F.lit("False"))
        return col.cast("string")

    def plan_number(self, c: str):
        if self.kinds[c] == "text" and self._numeric_in_sample(c):
            self._plan_reading(c)

    def number(self, c: str, found: dict):
        """The column as numbers (``events._number``): a text column that holds only numbers on the whole log is
        read as ``coerce_types`` reads it (thousands separators, currency signs), any other cell by cell."""
        from pyspark.sql import functions as F

        k, col = self.kinds[c], F.col(f"`{c}`")
        if k in ("int", "float", "bool"):
            v = col.cast("double")
        elif k == "text":
            kind = self._reading(c, found)
            v = F.when(col.rlike(_NUMBER_TEXT), col.cast("double")) if kind is None \
                else _read_as(_reading_steps(col)[0]["bare"], kind).cast("double")
        else:
            v = F.lit(None).cast("double")
        return F.when(~F.isnan(v) & (F.abs(v) != float("inf")), v)

    def plan_time(self, c: str):
        from pyspark.sql import functions as F

        if self.kinds[c] in ("int", "float") and c not in self.nanos:
            col = F.col(f"`{c}`").cast("double")
            self.checks[f"tmin:{c}"] = F.min(F.when(~F.isnan(col), col))
            self.checks[f"tmax:{c}"] = F.max(F.when(~F.isnan(col), col))
            self.checks[f"twhole:{c}"] = F.min(F.when(~F.isnan(col), (col == F.floor(col)).cast("int")))

    def time(self, c: str, found: dict):
        """The timestamp as nanoseconds since 1970 (null when unreadable), as ``parse_datetime`` reads it."""
        from pyspark.sql import functions as F

        k, col = self.kinds[c], F.col(f"`{c}`")
        if c in self.nanos:
            return col.cast("long")
        if k == "timestamp":
            return F.unix_micros(col.cast("timestamp")) * 1000
        if k == "date":
            return F.unix_date(col).cast("long") * DAY_NS
        if k == "text":
            sample = self.sample[c] if c in self.sample else pd.Series([], dtype=str)
            return _date_udf(text_date_rule(date_text(sample)))(col)
        if k in ("int", "float"):
            lo, hi, whole = found.get(f"tmin:{c}"), found.get(f"tmax:{c}"), found.get(f"twhole:{c}")
            v = col.cast("double")
            if lo is None:
                return F.lit(None).cast("long")
            if 19000101 <= lo and hi <= 21001231 and whole == 1:
                d = F.to_date(v.cast("long").cast("string"), "yyyyMMdd")
                return F.unix_date(d).cast("long") * DAY_NS
            for a, b, unit in ((1e9, 4.2e9, 10**9), (1e12, 4.2e12, 10**6)):
                if a <= lo and hi <= b:
                    return F.round(v * unit).cast("long")
            if 20000 <= lo and hi <= 80000:
                return F.round((v - 25569.0) * DAY_NS).cast("long")
        return F.lit(None).cast("long")


def read_parquet_events(spark, path, overrides: dict | None = None, *, sample_rows: int = 200_000,
                        timings: dict | None = None):
    """A Parquet file or folder as :class:`SparkEvents`, with the schema inferred on a sample and its validation
    report (on the sample). Raises ConfigError/DataError as ``canonical_events`` would. ``timings`` (a dict) gets the
    seconds of each phase: ``sample`` (files, sample, roles, validation), ``checks`` (whole-log checks) and ``clean``
    (duplicates, dates, flags' shares: the cleaned log is cached)."""
    clock = time.perf_counter()
    raw, nanos, total = read_raw(spark, path)
    return _events_from_raw(raw, nanos, total, overrides, sample_rows, timings, clock)


def read_spark_events(df, overrides: dict | None = None, *, sample_rows: int = 200_000, timings: dict | None = None):
    """A raw event log that is already a Spark DataFrame (the analyst's own columns and names, e.g. a table of a
    notebook's session) as :class:`SparkEvents`, read with the rules of :func:`read_parquet_events`: roles inferred on
    a sample (``overrides``: role -> column name, as for ``infer_schema``), every row cleaned in Spark, on the
    DataFrame's own session. Rows keep the DataFrame's order (``monotonically_increasing_id``) for the tie-breaks."""
    from pyspark.sql import functions as F

    clock = time.perf_counter()
    if "__pos" in df.columns:
        raise ConfigError("The event log has a column named __pos, which the Spark engine uses itself: rename it.")
    raw = df.withColumn("__pos", F.monotonically_increasing_id())
    return _events_from_raw(raw, set(), raw.count(), overrides, sample_rows, timings, clock)


def _events_from_raw(raw, nanos: set[str], total: int, overrides, sample_rows: int, timings, clock):
    """The raw rows (with ``__pos``) as :class:`SparkEvents`, their schema and validation report."""
    from pyspark.sql import functions as F

    timings = timings if timings is not None else {}
    names = [c for c in raw.columns if c != "__pos"]
    stripped = {c: str(c).strip() for c in names}
    sample, n_rows = _sample(raw, sample_rows, nanos, total)
    sample.columns = [stripped[c] for c in sample.columns]
    sample = coerce_types(sample)
    schema = infer_schema(sample, overrides)
    report = validate(sample, schema)
    if schema.kind != "events":
        raise ConfigError("This table was read as a user table, not an event log. The Spark engine builds datasets "
                          "from event logs; use the DuckDB engine for a user table.")
    require_roles(schema, "user_id", "timestamp")
    by_name = {stripped[c]: c for c in names}  # role names are the stripped names the sample shows
    timings["sample"], clock = time.perf_counter() - clock, time.perf_counter()

    # text cells stripped and empty cells missing, then exact duplicates dropped (the first copy kept)
    kinds = {f.name: _kind(f.dataType) for f in raw.schema.fields}
    cols = [(_clean_text(F.col(f"`{c}`")) if kinds[c] == "text" else F.col(f"`{c}`")).alias(c) for c in names]
    raw = raw.select(*cols, "__pos")

    r = {role: by_name[col] for role, col in schema.roles.items() if col}
    cl = _Cleaner(raw, sample.rename(columns={stripped[c]: c for c in names}), nanos)
    for role in ("user_id", "order_id", "event_type", "product", "category"):
        if r.get(role):
            cl.plan_text(r[role])
    attributes = [a for a in schema.attributes if a in by_name and a not in CANONICAL]
    for a in attributes:
        cl.plan_text(by_name[a])
    for role in ("amount", "quantity", "price", "rating"):
        if r.get(role):
            cl.plan_number(r[role])
    cl.plan_time(r["timestamp"])
    # whole-column checks (exact duplicates cannot change an all, a min or a max: read before dropping them)
    found = raw.agg(*[v.alias(k) for k, v in cl.checks.items()]).collect()[0].asDict() if cl.checks else {}
    df = raw.groupBy(*[F.col(f"`{c}`") for c in names]).agg(F.min("__pos").alias("__pos"))
    timings["checks"], clock = time.perf_counter() - clock, time.perf_counter()

    null_text = F.lit(None).cast("string")
    ev = df.select(
        F.col("__pos").alias("pos"),
        cl.text(r["user_id"], found).alias("user_id"),
        cl.time(r["timestamp"], found).alias("ns"),
        *[(cl.text(r[x], found) if r.get(x) else null_text).alias(x) for x in ("order_id", "event_type", "product",
                                                                               "category")],
        *[(cl.number(r[x], found) if r.get(x) else F.lit(None).cast("double")).alias(x)
          for x in ("amount", "quantity", "price", "rating")],
        *[cl.text(by_name[a], found).alias(f"a{i}") for i, a in enumerate(attributes)])
    q, p = (F.col("quantity") if r.get("quantity") else None), (F.col("price") if r.get("price") else None)
    if not r.get("amount"):
        ev = ev.withColumn("amount", q * p if q is not None and p is not None else (p if p is not None else F.lit(None).cast("double")))
        ev = ev.withColumn("amount", F.when(~F.isnan("amount") & (F.abs("amount") != float("inf")), F.col("amount")))

    # kept (memory, then disk): every later step reads the cleaned rows, not the files, the duplicates and the dates
    ev = ev.persist()

    ev = _flagged(ev, r, schema, q, p, attributes)
    timings["clean"] = time.perf_counter() - clock
    ev = ev.where(F.col("user_id").isNotNull() & F.col("ns").isNotNull())
    events = SparkEvents(ev, attributes, {"rows_in": int(n_rows)}, schema.held())
    return events, schema, report

def _flagged(ev, r: dict, schema, q, p, attributes: list[str]):
    """The cleaned rows with the day bucket and the flags of ``canonical_events``: purchase, return, cancellation,
    non-product line, with the whole-log shares it decides by (computed before rows without a user are dropped)."""
    from pyspark.sql import functions as F

    shares = {}
    if r.get("order_id"):
        shares["c_share"] = F.avg(F.coalesce(F.col("order_id").rlike(r"^[Cc][0-9]"), F.lit(False)).cast("double"))
    if r.get("product"):
        shares["digit_share"] = F.avg(F.coalesce(F.col("product").rlike("[0-9]"), F.lit(False)).cast("double"))
        shares["any_product"] = F.count("product")
    got = ev.agg(F.count(F.lit(1)).alias("_rows"), *[v.alias(k) for k, v in shares.items()]).collect()[0].asDict()
    et = F.col("event_type")
    cancel = F.coalesce(et.rlike("(?i)" + CANCEL_WORDS.pattern), F.lit(False))
    if r.get("order_id") and 0 < (got.get("c_share") or 0) < 0.5:
        cancel = cancel | F.coalesce(F.col("order_id").rlike(r"^[Cc][0-9]"), F.lit(False))
    ret = F.coalesce(et.rlike("(?i)" + RETURN_WORDS.pattern), F.lit(False)) | F.coalesce(F.col("amount") < 0, F.lit(False))
    if q is not None:
        ret = ret | F.coalesce(q < 0, F.lit(False))
    ret = ret & ~cancel
    if r.get("event_type"):
        values = [v.lower() for v in (schema.purchase_values or [])]
        is_type = F.coalesce(F.lower(et).isin(values), F.lit(False)) if values else F.lit(False)
    else:
        is_type = F.lit(True)
    positive = F.col("amount").isNull() | (F.col("amount") > 0)
    if q is not None:
        positive = positive & (q.isNull() | (q > 0))
    if p is not None:
        positive = positive & (p.isNull() | (p > 0))
    if r.get("product") and got.get("any_product"):
        prod = F.col("product")
        nonproduct = F.coalesce(F.upper(_clean_text(prod)).isin(sorted(NON_PRODUCT_CODES)), F.lit(False))
        if (got.get("digit_share") or 0) > 0.8:
            nonproduct = nonproduct | (prod.isNotNull() & ~prod.rlike("[0-9]"))
    else:
        nonproduct = F.lit(False)
    ev = ev.select(
        "user_id", "ns",
        # the day bucket: the first midnight at or after the instant, in exact integer arithmetic
        F.expr(f"((ns + {DAY_NS - 1}) - pmod(ns + {DAY_NS - 1}, {DAY_NS})) div {DAY_NS}").cast("int").alias("b"),
        "pos", "order_id", "amount", "quantity", "event_type", "product", "category", "rating",
        (is_type & ~cancel & ~ret & positive).alias("is_purchase"), ret.alias("is_return"),
        cancel.alias("is_cancel"), nonproduct.alias("is_nonproduct"),
        *[f"a{i}" for i in range(len(attributes))])
    return ev

