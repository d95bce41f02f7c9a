"""The one lock of the library: an exclusive lock on a file that two processes may change at once.

Saving or deleting a run (:mod:`retention_core.bundle`, lock file ``.<run>.lock`` beside the run's folder) and every
connection to the scoring history (:mod:`retention_core.monitor.store`, ``history.duckdb.lock``) hold it. It is a
POSIX ``flock`` on a lock file (created when missing, never deleted), so the system releases it when a process dies
holding it; a process that cannot take it retries every ``POLL`` seconds and gives up after ``timeout`` seconds with
the error its caller words (``busy(timeout)``): a run being saved by another session, a history busy with another
scoring.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

#: Seconds between two tries to take a lock another process holds.
POLL = 0.05


@contextmanager
def exclusive(lock_file: str | Path, timeout: float, busy: Callable[[float], Exception]) -> Iterator[None]:
    """Hold the exclusive lock on ``lock_file`` for the ``with`` block, waiting at most ``timeout`` seconds for
    another holder (then ``busy(timeout)`` is raised, nothing held); the lock is released on leaving, error or not."""
    import fcntl  # POSIX only: imported where it is used

    path = Path(lock_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    limit = float(timeout)
    with open(path, "a") as fh:
        t0 = time.monotonic()
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() - t0 >= limit:
                    raise busy(limit) from None
                time.sleep(POLL)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
