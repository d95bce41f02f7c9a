"""The Spark engine against the DuckDB engine on one machine: what the benchmark's spark section measures
(``bench/sections/spark.py`` plans and reports it): a training set (the default snapshots) from a generated event log
written as Parquet.

    SPARK_LOCAL_IP=127.0.0.1 python -m bench.run --quick --only spark    # 200k events
    SPARK_LOCAL_IP=127.0.0.1 python -m bench.run --full --only spark     # 1M and 10M events, three runs

Needs Java 17 and ``requirements-spark.txt`` (the section says why it measured nothing otherwise). Each engine and
size runs in a fresh process, its modules imported before the clock starts; its peak memory is that of the process
and its children (the JVM and Spark's Python workers, sampled every 0.2 s by :class:`PeakMemory`). Phases:

- DuckDB (:func:`run_duckdb`, 2 threads): ``read`` (the product's Parquet reader into pandas), ``canonical`` (roles +
  ``canonical_events``), ``features`` (every snapshot's 65 columns; DuckDB hands back a pandas frame, so this
  includes the collect);
- Spark (:func:`run_spark`, ``local[2]``): ``session`` (JVM start), ``read`` (file listing, a 200k-row sample to the
  driver, roles, validation, one pass of whole-log checks; the log stays in Spark), ``canonical`` (exact duplicates,
  dates, cleaning rules and flags, materialised and cached, plus one pass for event types and bounds), ``features``
  (every snapshot's rows, materialised and cached on the executors), ``collect`` (those rows to a pandas frame on the
  driver).
"""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

PHASES = ("session", "read", "canonical", "features", "collect")


class PeakMemory:
    """Peak resident memory of this process and all its descendants, sampled in a thread."""

    def __init__(self, every: float = 0.2):
        self.every, self.peak, self._stop = every, 0, threading.Event()

    @staticmethod
    def _children(pid: int) -> list[int]:
        out = []
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as fh:
                    out += [int(x) for x in fh.read().split()]
        except OSError:
            pass
        return out

    @staticmethod
    def _rss(pid: int) -> int:
        try:
            with open(f"/proc/{pid}/statm") as fh:
                return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            return 0

    def _tree(self) -> int:
        todo, total, seen = [os.getpid()], 0, set()
        while todo:
            pid = todo.pop()
            if pid in seen:
                continue
            seen.add(pid)
            total += self._rss(pid)
            todo += self._children(pid)
        return total

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._tree())
            time.sleep(self.every)

    def __enter__(self):
        threading.Thread(target=self._run, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self.peak = max(self.peak, self._tree())


def run_duckdb(path: Path, threads: int) -> dict:
    """The DuckDB engine's phases (seconds) and what it built, DuckDB on ``threads`` threads."""
    from retention_core import features
    from retention_core.events import canonical_events
    from retention_core.dataset import build_dataset, default_config
    from retention_core.io import read_table
    from retention_core.roles import infer_schema

    os.environ["RETENTION_MAX_UPLOAD_MB"] = "100000"
    orig = features.connect
    features.connect = lambda t=None: orig(threads)  # the same two cores Spark gets
    out = {}
    t = time.perf_counter()
    df = read_table(path, max_mb=100_000)
    out["read"] = time.perf_counter() - t
    t = time.perf_counter()
    ev = canonical_events(df, infer_schema(df))
    out["canonical"] = time.perf_counter() - t
    del df
    t = time.perf_counter()
    ds = build_dataset(ev, default_config(ev))
    out["features"] = time.perf_counter() - t
    out["rows_out"], out["columns"], out["events"] = len(ds.frame), len(ds.frame.columns), len(ev)
    out["snapshots"] = len(ds.config["cutoffs"])
    return out


def run_spark(path: Path, master: str, driver_memory: str) -> dict:
    """Spark's phases (seconds) and what it built, on ``master`` with ``spark.driver.memory``; the session is stopped
    even when a phase fails."""
    from retention_core.spark import get_session

    out = {}
    t = time.perf_counter()
    spark = get_session(master, conf={"spark.driver.memory": driver_memory})
    out["session"] = time.perf_counter() - t
    try:
        out.update(_spark_phases(spark, path))
    finally:
        spark.stop()
    return out


def _spark_phases(spark, path: Path) -> dict:
    from retention_core.dataset import data_end, default_config, snapshot_dates
    from retention_core.spark import features as sf
    from retention_core.spark.source import read_parquet_events

    out = {}
    phases: dict = {}
    events, _, _ = read_parquet_events(spark, path, timings=phases)
    out["read"] = phases["sample"] + phases["checks"]  # files, a sample, roles and whole-log checks
    out["canonical"] = phases["clean"]  # duplicates, dates and flags: the cleaned log is cached
    t = time.perf_counter()
    bounds = events.bounds()  # event types, first and last timestamps, what the log holds (one pass, cached log)
    out["canonical"] += time.perf_counter() - t
    cfg = default_config(bounds)
    dates = snapshot_dates(bounds, cfg)
    t = time.perf_counter()
    with sf.Snapshots(events, dates, cfg, end=data_end(bounds)) as snap:
        frame_sdf = snap.frame.persist()
        n = frame_sdf.count()
        out["features"] = time.perf_counter() - t
        t = time.perf_counter()
        frame = sf.finish(frame_sdf.toPandas(), events, cfg)
        out["collect"] = time.perf_counter() - t
        frame_sdf.unpersist()
    out["rows_out"], out["columns"], out["events"] = n, len(frame.columns), events.stats()["rows"]
    out["snapshots"] = len(dates)
    return out
