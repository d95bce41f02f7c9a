"""Reading: how long type detection takes on a real order log, beside the bare cost of turning the same columns into
Python objects (the reference, measured in the same run). Detection once took more than 10 times the reference; it
should stay near 1.5 times.

    python -m bench.bench_reading [--rows 200000] [--repeat 3]

Reads ``../shared/data/online_retail_ii_2009_2010.parquet`` (the public Online Retail II file) and prints one line per
measure, best of ``--repeat`` runs.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "online_retail_ii_2009_2010.parquet"


def best_of(n: int, fn) -> float:
    best = float("inf")
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--data", default=str(DATA))
    a = ap.parse_args()
    import pyarrow.parquet as pq

    from retention_core.cells import coerce_types
    from retention_core.io import read_table

    frame = pq.read_table(a.data).slice(0, a.rows).to_pandas()
    bare = best_of(a.repeat, lambda: frame.astype(object))
    detect = best_of(a.repeat, lambda: coerce_types(frame))
    whole = best_of(1, lambda: read_table(a.data))
    print(f"reference: columns to Python objects ({len(frame):,} rows)  {bare:.3f} s")
    print(f"product:   type detection (coerce_types, same rows)        {detect:.3f} s  ({detect / bare:.1f}x the reference)")
    print(f"product:   read_table of the whole file                    {whole:.3f} s")


if __name__ == "__main__":
    main()
