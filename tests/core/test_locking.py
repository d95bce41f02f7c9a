"""The one lock (``retention_core.locking``): exclusive across processes, bounded wait, released on error, and the
only lock loop of the library (saving runs and the scoring history both hold it)."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from retention_core import locking

ROOT = Path(__file__).resolve().parents[2]


class Busy(Exception):
    pass


def _holder(lock_file: Path, seconds: float) -> subprocess.Popen:
    """Another process holding the lock for ``seconds``; returns once it holds it."""
    code = ("import sys, time\nfrom retention_core.locking import exclusive\n"
            f"with exclusive({str(lock_file)!r}, 5, RuntimeError):\n"
            "    print('held', flush=True)\n"
            f"    time.sleep({seconds})\n")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_another_process_holding_it_makes_the_wait_end_with_the_callers_error(tmp_path):
    lock = tmp_path / "sub" / "thing.lock"  # its folder is created
    proc = _holder(lock, 1.0)
    try:
        t0 = time.monotonic()
        with pytest.raises(Busy, match="0.2"):
            with locking.exclusive(lock, 0.2, lambda limit: Busy(f"busy for {limit:g} s")):
                pass
        assert 0.2 <= time.monotonic() - t0 < 0.9
        with locking.exclusive(lock, 5, Busy):  # waits for the holder to finish, then holds it
            pass
    finally:
        proc.wait(timeout=10)


def test_the_lock_is_released_when_the_block_fails(tmp_path):
    lock = tmp_path / "x.lock"
    with pytest.raises(ValueError):
        with locking.exclusive(lock, 1, Busy):
            raise ValueError("boom")
    with locking.exclusive(lock, 0, Busy):  # free again at once
        pass
    assert lock.exists()


def test_the_library_has_one_lock_loop():
    """``flock`` is called in ``locking.py`` alone: a second loop creeping back fails here."""
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "retention_core").rglob("*.py")
                 if "flock(" in p.read_text() and p.name != "locking.py"]
    assert not offenders, f"lock files are taken through retention_core.locking.exclusive: {offenders}"
