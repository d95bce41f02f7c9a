"""At-risk export: time and peak memory to write a list of a million scored users (with three reasons each) as
formula-safe CSV.

    python -m bench.bench_export [--users 1000000] [--chunk-rows 100000]

Builds synthetic scores, attributes and reason texts (some starting with ``-`` or ``=`` so neutralising has work to
do), selects everyone with ``at_risk_list``, then times and measures (tracemalloc peak of the Python/NumPy
allocations made during the call, on top of the list itself):

- ``export_csv`` to a file (streams chunk by chunk),
- ``export_csv_bytes`` (what the download button sends: the whole file in memory, once),
- the naive one-shot ``neutralise_frame(df).to_csv()`` for comparison,
- ``pseudonymise`` of every id.

Timings are measured without tracemalloc (it slows allocation-heavy code); peaks in a second, traced pass.
"""
from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd

from retention_core.export import export_csv, export_csv_bytes, neutralise_frame, pseudonymise
from retention_core.scoring import at_risk_list
from retention_core.segments import risk_deciles

REASONS = ["No purchase for {d} days (typical for retained users: 34) [+{p} pts]",
           "-{p}% orders in the last 90 days against the 90 before [+{p} pts]",
           "Spent {d} in the last 90 days (typical for retained users: 86) [+{p} pts]",
           "=Irregular buying rhythm (gaps vary by {d} days) [+{p} pts]",
           "Only {p} active days in the last 180 days [+{p} pts]"]


def synthetic(n: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, list[list[str]]]:
    rng = np.random.default_rng(seed)
    p = rng.beta(2, 3, n)
    order = np.argsort(-p, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(1, n + 1)
    ids = np.char.add("C", np.char.zfill(np.arange(n).astype(str), 7))
    scores = pd.DataFrame({"user_id": ids, "churn_probability": p, "risk_decile": risk_deciles(p), "rank": rank})
    frame = pd.DataFrame({"user_id": ids, "snapshot_date": pd.Timestamp("2024-12-31"),
                          "country": rng.choice(["DE", "FR", "UK", "US", "-"], n),
                          "channel": rng.choice(["web", "app", "store"], n),
                          "revenue_365d": np.round(rng.gamma(2.0, 80.0, n) - 20, 2)})
    days, pts = rng.integers(1, 400, n), rng.integers(1, 40, n)
    templates = [rng.integers(0, len(REASONS), n) for _ in range(3)]
    reasons = [[REASONS[t].format(d=d, p=q) for t, d, q in zip(tt, days, pts)] for tt in templates]
    return scores, frame, reasons


def timed(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def peak_mb(fn) -> float:
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return (peak - base) / 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=1_000_000)
    ap.add_argument("--chunk-rows", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()

    t = time.perf_counter()
    scores, frame, reasons = synthetic(a.users)
    gen_s = time.perf_counter() - t
    t = time.perf_counter()
    lst = at_risk_list(scores, frame, method="threshold", threshold=0.0, reasons=reasons, model="gbm")
    list_s = time.perf_counter() - t
    del reasons
    list_mb = lst.memory_usage(deep=True).sum() / 1e6
    print(f"{a.users:,} users, {lst.shape[1]} columns, list in memory {list_mb:,.0f} MB "
          f"(synthetic data {gen_s:.1f} s, at_risk_list {list_s:.2f} s); cores: {os.cpu_count()}")

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "at_risk.csv"
        rows = []

        def to_file():
            export_csv(lst, out, chunk_rows=a.chunk_rows)

        def to_bytes():
            return export_csv_bytes(lst, chunk_rows=a.chunk_rows)

        def naive():
            return neutralise_frame(lst).to_csv(index=False, lineterminator="\r\n").encode()

        ids = lst["user_id"]
        for name, fn in [("export_csv (file, streamed)", to_file), ("export_csv_bytes (download)", to_bytes),
                         ("one-shot neutralise_frame + to_csv", naive),
                         ("pseudonymise ids", lambda: pseudonymise(ids, "bench-key"))]:
            s = timed(fn, a.repeat)
            rows.append((name, s, peak_mb(fn)))
        size_mb = out.stat().st_size / 1e6
        same = out.read_bytes() == to_bytes()
    print(f"CSV size {size_mb:,.0f} MB; file and download bytes identical: {same}")
    print(f"{'step':<38}{'median s':>10}{'users/s':>14}{'peak MB':>10}")
    for name, s, mb in rows:
        print(f"{name:<38}{s:>10.2f}{a.users / s:>14,.0f}{mb:>10,.0f}")
    print(f"process max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3:,.0f} MB")


if __name__ == "__main__":
    main()
