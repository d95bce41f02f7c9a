"""Time the synthetic event-log generator at 1M and 10M events.

Usage (from the repository root)::

    python -m bench.bench_generator            # 1M and 10M events
    python -m bench.bench_generator 250000     # any sizes

Each size runs in a fresh process so the reported peak memory is its own.
"""

from __future__ import annotations

import pathlib
import resource
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _one(n_events: int) -> None:
    from assets.generator import generate_for_events

    t = time.perf_counter()
    frame = generate_for_events(n_events, seed=0)
    seconds = time.perf_counter() - t
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB on Linux
    frame_mb = frame.memory_usage(deep=True).sum() / 1024**2
    print(
        f"generate_for_events({n_events:>11,}): {seconds:6.2f} s  "
        f"rows={len(frame):,}  customers={frame['customer_id'].nunique():,}  "
        f"frame={frame_mb:,.0f} MiB  peak_rss={peak_gb:.2f} GiB",
        flush=True,
    )


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "--one":
        _one(int(argv[1]))
        return 0
    sizes = [int(a) for a in argv] or [1_000_000, 10_000_000]
    for n in sizes:
        subprocess.run([sys.executable, "-m", "bench.bench_generator", "--one", str(n)], cwd=ROOT, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
