"""Section 8: the Spark engine (``local[2]``) against the DuckDB engine (2 threads) building the default training set
from the same generated Parquet log on one machine, with where the time goes (measured by ``bench/bench_spark.py``).
No target: the ratio and the phases are the result. Skipped, with the reason, where PySpark or Java is missing."""
from __future__ import annotations

import os
import time

from bench.common import fmt_seconds, size_label
from bench.data import events_file
from bench.measures import Job, Rows, info, load_text, median, peak
from bench.registry import Plan, Section, step

NAME = "spark"
MASTER = "local[2]"
THREADS = 2  # DuckDB gets the two cores Spark gets
DRIVER_MEMORY = "8g"


def _unavailable() -> str | None:
    from retention_core.spark.session import unavailable

    return unavailable()


def _split(res: dict, total: float, peak_bytes: int) -> dict:
    """A step's result from the engine's phases and counts."""
    from bench.bench_spark import PHASES

    measures = {k: res[k] for k in PHASES if k in res}
    measures.update(total=total, without_session=total - res.get("session", 0.0))
    return {"measures": measures, "info": {k: v for k, v in res.items() if k not in PHASES},
            "peak_tree_mb": peak_bytes / 2**20}


@step("spark_duckdb", NAME)
def spark_duckdb(cache: str, n: int) -> dict:
    from bench.bench_spark import PeakMemory, run_duckdb
    from retention_core import dataset, events, io, roles  # noqa: F401  (imports are not the engine's time)

    with PeakMemory() as mem:
        t = time.perf_counter()
        res = run_duckdb(events_file(cache, n), THREADS)
        total = time.perf_counter() - t
    out = _split(res, total, mem.peak)
    out["info"]["engine"] = f"DuckDB ({THREADS} threads)"
    return out


@step("spark_engine", NAME)
def spark_engine(cache: str, n: int) -> dict:
    why = _unavailable()
    if why:
        return {"measures": {}, "info": {"skipped": why}}
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    import pyspark.sql  # noqa: F401  (imports are not the engine's time)

    from bench.bench_spark import PeakMemory, run_spark
    from retention_core import dataset  # noqa: F401
    from retention_core.spark import features, source  # noqa: F401

    with PeakMemory() as mem:
        t = time.perf_counter()
        res = run_spark(events_file(cache, n), MASTER, DRIVER_MEMORY)
        total = time.perf_counter() - t
    out = _split(res, total, mem.peak)
    out["info"]["engine"] = f"Spark ({MASTER}, driver memory {DRIVER_MEMORY})"
    return out


def plan(cfg: dict, cache: str) -> Plan:
    """Both engines per size; where Spark cannot run, only its step (it says why, once) and no DuckDB run."""
    out = Plan()
    missing = _unavailable() is not None
    for n in cfg["spark_events"]:
        out.events[n] = False
        s = size_label(n)
        out.jobs.append(Job(NAME, f"spark/{s}/spark", "spark_engine", {"cache": cache, "n": n}, once=missing))
        if not missing:
            out.jobs.append(Job(NAME, f"spark/{s}/duckdb", "spark_duckdb", {"cache": cache, "n": n}))
    return out


def _shares(job: Job) -> str:
    """Where Spark's time goes (session start excluded), largest first."""
    names = {"canonical": "cleaning", "features": "features", "read": "reading (sample, roles, whole-log checks)",
             "collect": "collecting to the driver"}
    parts = {k: median(job, k) for k in names}
    whole = median(job, "without_session")
    if not whole:
        return ""
    ranked = sorted(((v, k) for k, v in parts.items() if v is not None), reverse=True)
    return "Spark's time: " + ", ".join(f"{v / whole:.0%} {names[k]}" for v, k in ranked)


def _phase_line(job: Job) -> str:
    def f(k):
        return fmt_seconds(median(job, k))

    p = peak(job)
    return (f"| {info(job, 'events', 0):,} | {info(job, 'engine', job.step)} | {f('session')} | {f('read')} | "
            f"{f('canonical')} | {f('features')} | {f('collect')} | {f('total')} | {f('without_session')} | "
            f"{'—' if p is None else f'{p:,.0f}'} | {info(job, 'rows_out', 0):,} | {load_text(job)} |")


def _rows(t: Rows, s: str, sp: Job, dk: Job | None) -> None:
    same = f"DuckDB engine ({THREADS} threads), the same Parquet file"
    rows = f"{info(sp, 'rows_out', 0):,} rows x {info(sp, 'columns', '?')} columns (DuckDB: " \
           f"{info(dk, 'rows_out', 0):,})"
    k = info(sp, "snapshots", "?")
    t.add(NAME, f"Spark {MASTER}: training set, {k} snapshots, session start excluded", f"{s} events", sp,
          "without_session", dk, "total", same, f"{rows}; {_shares(sp)}")
    t.add(NAME, f"Spark {MASTER}: the same, session start included", f"{s} events", sp, "total", dk, "total", same,
          f"session start {fmt_seconds(median(sp, 'session'))} s; load {load_text(sp)}")


def report(t: Rows) -> None:
    lines, skipped = [], []
    for sp in t.section_jobs(NAME):
        if sp.step != "spark_engine":
            continue
        s = sp.key.split("/")[1]
        why = info(sp, "skipped")
        if why:
            skipped.append(f"{s} events: {why}")
            t.add(NAME, f"Spark {MASTER}: training set", f"{s} events", sp, "total", None, "total",
                  "DuckDB engine", f"not measured: {why}")
            continue
        dk = t.job(f"spark/{s}/duckdb")
        _rows(t, s, sp, dk)
        lines += [_phase_line(j) for j in (dk, sp) if j is not None and j.results]
    if lines:
        t.tables[NAME] = ["Where the time goes (seconds, medians; peak memory: the whole process tree, for Spark the "
                          "driver, the JVM and the Python workers):", "",
                          "| events | engine | session | read | canonical | features | collect | total | "
                          "total without session | peak MB | rows out | load |",
                          "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|", *lines]
    t.details[NAME] = {"skipped": skipped}


SECTION = Section(NAME, "8. Spark engine against DuckDB (one machine, no target)", plan, report)
