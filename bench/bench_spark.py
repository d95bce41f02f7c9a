"""The Spark engine against the DuckDB engine on one machine: a training set (the default snapshots) from generated
event logs of 1M and 10M events, written as Parquet.

Usage (from the repository root; Java 17 and ``requirements-spark.txt``)::

    python -m bench.bench_spark                      # 1M and 10M events, Spark local[2] and DuckDB (2 threads)
    python -m bench.bench_spark 1000000 --out bench/published/spark.json

Each engine and size runs in a fresh process, so its peak memory (the process and its children: the JVM and Spark's
Python workers, sampled every 0.2 s) is its own. Phases:

- DuckDB: ``read`` (the product's Parquet reader into pandas), ``canonical`` (roles + ``canonical_events``),
  ``features`` (every snapshot's 65 columns; DuckDB hands back a pandas frame, so this includes the collect);
- Spark: ``session`` (JVM start), ``read`` (file listing, a 200k-row sample to the driver, roles, validation, one
  pass of whole-log checks; the log stays in Spark), ``canonical`` (exact duplicates, dates, cleaning rules and
  flags, materialised and cached, plus one pass for event types and bounds), ``features`` (every snapshot's rows,
  materialised and cached on the executors), ``collect`` (those rows to a pandas frame on the driver).

The generated Parquet files are kept in ``--cache`` (default: a folder under the system's temporary folder).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


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


def make_log(n_events: int, cache: Path) -> Path:
    """A generated log of about ``n_events`` rows as Parquet (made once, then reused)."""
    path = cache / f"events_{n_events}.parquet"
    if not path.exists():
        from assets.generator import generate_for_events, write_events

        cache.mkdir(parents=True, exist_ok=True)
        write_events(generate_for_events(n_events, seed=0), path)
    return path


def run_duckdb(path: Path, threads: int) -> dict:
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
    from retention_core.dataset import data_end, default_config, snapshot_dates
    from retention_core.spark import features as sf
    from retention_core.spark import get_session
    from retention_core.spark.source import read_parquet_events

    out = {}
    t = time.perf_counter()
    spark = get_session(master, conf={"spark.driver.memory": driver_memory})
    out["session"] = time.perf_counter() - t
    t = time.perf_counter()
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
    spark.stop()
    return out


def one(args) -> None:
    path = make_log(args.events, Path(args.cache))
    load0 = os.getloadavg()[0]
    with PeakMemory() as mem:
        t = time.perf_counter()
        res = run_spark(path, args.master, args.driver_memory) if args.engine == "spark" else \
            run_duckdb(path, args.threads)
        res["total"] = time.perf_counter() - t
    res.update(engine=args.engine, target_events=args.events, peak_mb=mem.peak / 2**20,
               load_before=load0, load_after=os.getloadavg()[0], cores=os.cpu_count(),
               master=args.master if args.engine == "spark" else f"{args.threads} threads")
    print("RESULT " + json.dumps(res), flush=True)


def table(results: list[dict]) -> str:
    lines = ["| events | engine | session | read | canonical | features | collect | total | total w/o session | "
             "peak MB | rows out | load avg |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    f = lambda r, k: f"{r[k]:.1f}" if k in r else "-"  # noqa: E731
    for r in results:
        lines.append(f"| {r['events']:,} | {r['engine']} ({r['master']}) | {f(r, 'session')} | {f(r, 'read')} | "
                     f"{f(r, 'canonical')} | {f(r, 'features')} | {f(r, 'collect')} | {r['total']:.1f} | "
                     f"{r['total'] - r.get('session', 0):.1f} | {r['peak_mb']:,.0f} | {r['rows_out']:,} | "
                     f"{r['load_before']:.1f}-{r['load_after']:.1f} |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("sizes", nargs="*", type=int, default=[1_000_000, 10_000_000])
    p.add_argument("--engine", choices=["spark", "duckdb"], help=argparse.SUPPRESS)
    p.add_argument("--events", type=int, help=argparse.SUPPRESS)
    p.add_argument("--master", default="local[2]")
    p.add_argument("--threads", type=int, default=2, help="DuckDB threads (default 2, as local[2])")
    p.add_argument("--driver-memory", default="8g")
    p.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "retention-bench-spark"))
    p.add_argument("--out", help="write the results as JSON (and the table as Markdown next to it)")
    args = p.parse_args(argv)
    if args.engine:
        one(args)
        return 0
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    results = []
    for n in args.sizes:
        make_log(n, Path(args.cache))
        for engine in ("duckdb", "spark"):
            cmd = [sys.executable, "-m", "bench.bench_spark", "--engine", engine, "--events", str(n), "--master", args.master,
                   "--threads", str(args.threads), "--driver-memory", args.driver_memory, "--cache", args.cache]
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
            line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
            if proc.returncode or not line:
                print(proc.stderr[-3000:], file=sys.stderr)
                return 1
            results.append(json.loads(line[-1][7:]))
            print(table(results[-1:]).splitlines()[-1], flush=True)
    print(table(results))
    for n in args.sizes:
        d = next(r for r in results if r["target_events"] == n and r["engine"] == "duckdb")
        s = next(r for r in results if r["target_events"] == n and r["engine"] == "spark")
        print(f"{n:,} events: Spark/DuckDB = {(s['total'] - s['session']) / d['total']:.1f}x without the session "
              f"start, {s['total'] / d['total']:.1f}x with it; Spark features {s['events'] / s['features']:,.0f} "
              f"events/s on {args.master}")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))
        Path(args.out).with_suffix(".md").write_text(table(results) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
