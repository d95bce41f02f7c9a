"""The Spark engine: the product's dataset and batch scoring on PySpark, for event logs beyond one machine.

DuckDB stays the embedded default and the reference; this engine is proven equal to it column by column
(``tests/spark/test_parity.py``). Entry points:

- :func:`build_dataset` / :func:`scoring_snapshot`: the :class:`~retention_core.dataset.Dataset` of
  ``retention_core.dataset`` from a canonical pandas table or a :class:`SparkEvents` (e.g. from
  :func:`read_parquet_events`, which reads Parquet files or folders with Spark and never brings the log to the driver);
- :func:`retention_core.spark.scoring.score`: a saved run applied to partitions with ``mapInPandas``, after the
  run's signature is verified on the driver.

Each takes an analyst's raw log as a Spark DataFrame too (their own column names, their own session, e.g. a
notebook's): the log is read by :func:`read_spark_events` on that DataFrame's session, which is neither replaced nor
stopped (its time zone is UTC while the engine works, then put back). ``roles`` (role -> column name) names columns
the inference would not find, as the command line's role options do.

PySpark and Java are optional (``requirements-spark.txt``); nothing here is imported by the app.
"""
from __future__ import annotations

import pandas as pd

from ..dataset import Dataset, data_end, default_config, nobody_bought, snapshot_dates, to_cutoff
from ..errors import ConfigError
from ..events import CANONICAL
from ..features import SEQUENCE_CHANNELS, feature_columns
from . import features
from .events import SparkEvents
from .scoring import score
from .session import get_session, is_spark_frame, unavailable, utc
from .source import is_parquet_source, read_parquet_events, read_spark_events

__all__ = ["SparkEvents", "as_spark_events", "build_dataset", "get_session", "is_parquet_source", "read_parquet_events",
           "read_spark_events", "score", "scoring_snapshot", "unavailable"]


def as_spark_events(ev, spark=None, master: str | None = None, roles: dict | None = None) -> SparkEvents:
    """``ev`` as :class:`SparkEvents`: a canonical pandas table is sent to Spark, a raw Spark DataFrame is read on
    its own session (``roles``: role -> column name, overriding the inference)."""
    if isinstance(ev, SparkEvents):
        return ev
    if is_spark_frame(ev):
        return read_spark_events(ev, roles)[0]
    return SparkEvents.from_pandas(spark or get_session(master), ev)


def build_dataset(ev, cfg=None, *, sequences: bool = False, cutoffs: list | None = None, spark=None,
                  master: str | None = None, roles: dict | None = None):
    """:func:`retention_core.events.build_dataset` on Spark: the same Dataset, frame and sequences. ``ev``: a
    canonical pandas table, :class:`SparkEvents`, or a raw Spark DataFrame of the log (``roles`` as in
    :func:`as_spark_events`)."""
    if is_spark_frame(ev):
        with utc(ev.sparkSession):
            return build_dataset(as_spark_events(ev, roles=roles), cfg, sequences=sequences, cutoffs=cutoffs)
    events = as_spark_events(ev, spark, master)
    bounds = events.bounds()
    cfg = cfg or default_config(bounds)
    dates = [to_cutoff(c) for c in cutoffs] if cutoffs is not None else snapshot_dates(bounds, cfg)
    if not dates:
        raise ConfigError("No snapshot fits in the data with these settings. Use fewer snapshots, a shorter step or "
                          "a later cutoff.")
    frame, seq = features.compute(events, dates, cfg, end=data_end(bounds), sequences=sequences)
    if frame.empty:
        raise nobody_bought(cfg, dates)
    numeric, categorical = feature_columns(frame, attributes=[a for a in events.attributes if a not in CANONICAL])
    conf = cfg.as_dict()
    conf["cutoffs"] = [str(d.date()) for d in dates]
    return Dataset(frame, numeric, categorical, seq, list(SEQUENCE_CHANNELS) if sequences else [], conf, "events")


def scoring_snapshot(ev, cfg, as_of=None, *, sequences: bool = False, spark=None, master: str | None = None,
                     roles: dict | None = None):
    """:func:`retention_core.events.scoring_snapshot` on Spark: features as of ``as_of`` (default: the end of the
    data), labels unknown."""
    if is_spark_frame(ev):
        with utc(ev.sparkSession):
            return scoring_snapshot(as_spark_events(ev, roles=roles), cfg, as_of, sequences=sequences)
    events = as_spark_events(ev, spark, master)
    T = to_cutoff(as_of) if as_of is not None else data_end(events.bounds())
    ds = build_dataset(events, cfg, sequences=sequences, cutoffs=[T])
    ds.frame["churned"] = ds.frame["churned"].where(pd.Series(False, index=ds.frame.index))
    return ds
