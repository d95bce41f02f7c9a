"""Run a command in a child process with a memory and time ceiling, and measure its peak memory and time.

The tests use it to prove a hostile file cannot take the machine down (a one-line gzip bomb made the old reader grow
past 20 GB: under a ceiling it is killed instead, and the test fails); the bad-input report uses it to measure every
corpus file. The child's memory is read every few milliseconds from Linux ``/proc``: its resident size, to kill it
when it passes the ceiling, and its high-water mark (``VmHWM``, kept by the kernel, so a spike between two reads is
not missed; only the last few milliseconds before it exits go unseen), the peak reported. ``getrusage`` and
``wait4`` are no use here: a child's ``ru_maxrss`` starts from the memory of the process that started it (a test
process of several hundred megabytes), so a small child looks big.

    res = run_bounded([sys.executable, "-m", "retention_core", "inspect", path], max_mb=1024, timeout=20)
    res.rc, res.stderr, res.peak_mb, res.seconds, res.killed     # killed: None, "memory" or "time"
"""
from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Bounded:
    rc: int | None          # exit status (None when killed)
    stdout: str
    stderr: str
    peak_mb: float          # the child's peak resident memory (its high-water mark)
    seconds: float          # wall time of the child
    killed: str | None      # "memory" or "time" when the ceiling stopped it


def _memory_mb(pid: int) -> tuple[float, float]:
    """(resident, high-water mark) of a process in MB; zeros once it is gone."""
    rss = hwm = 0.0
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) / 1024
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return rss, hwm


def run_bounded(args: list[str], *, max_mb: float, timeout: float, env: dict | None = None,
                cwd: str | Path | None = None, poll: float = 0.005) -> Bounded:
    """Run ``args`` to the end, or kill it once its resident memory passes ``max_mb`` or it runs ``timeout`` s."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(args, stdout=out, stderr=err, env=env, cwd=cwd)
        killed, peak = None, 0.0
        while True:
            rss, hwm = _memory_mb(proc.pid)  # read before the check: the last reading is taken while it runs
            pid, status = os.waitpid(proc.pid, os.WNOHANG)
            if pid:
                break
            peak = max(peak, rss, hwm)
            if rss > max_mb:
                killed = "memory"
            elif time.perf_counter() - t0 > timeout:
                killed = "time"
            if killed is not None:
                os.kill(proc.pid, signal.SIGKILL)
                pid, status = os.waitpid(proc.pid, 0)
                break
            time.sleep(poll)
        seconds = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait for it again
        out.seek(0)
        err.seek(0)
        return Bounded(rc=None if killed else proc.returncode, stdout=out.read().decode("utf-8", "replace"),
                       stderr=err.read().decode("utf-8", "replace"), peak_mb=peak,
                       seconds=seconds, killed=killed)


@contextlib.contextmanager
def address_space_ceiling(extra_mb: float):
    """Within the block, this process may map at most ``extra_mb`` more memory (``RLIMIT_AS``): an allocation past it
    fails with MemoryError instead of growing the process (for tests that read a bomb in the test process)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/status") as fh:
        size = next(int(ln.split()[1]) * 1024 for ln in fh if ln.startswith("VmSize:"))
    ceiling = size + int(extra_mb * 2**20)
    if hard != resource.RLIM_INFINITY:
        ceiling = min(ceiling, hard)
    resource.setrlimit(resource.RLIMIT_AS, (ceiling, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


ROOT = Path(__file__).resolve().parents[2]
#: The ceiling every corpus file must stay within, through the CLI and through the app.
MAX_PEAK_MB = 1024
MAX_SECONDS = 10


def _env(case=None) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if case is not None and case.max_mb is not None:
        env["RETENTION_MAX_UPLOAD_MB"] = str(case.max_mb)
    return env


def inspect_bounded(case, *, max_mb: float = MAX_PEAK_MB, timeout: float = 60) -> Bounded:
    """``python -m retention_core inspect`` on a corpus file, in a child process under the ceiling."""
    return run_bounded([sys.executable, "-m", "retention_core", "inspect", str(case.path)], max_mb=max_mb,
                       timeout=timeout, env=_env(case), cwd=ROOT)


def upload_bounded(case, *, max_mb: float = MAX_PEAK_MB + 512, timeout: float = 120) -> tuple[Bounded, dict | None]:
    """A corpus file uploaded on the Data page (bench/badinput/child.py) in a child process under the ceiling; the
    run and the child's JSON report (None when it was killed or printed none). The app alone takes about 350 MB, so
    the ceiling here leaves room to measure a file that goes past 1 GB rather than kill it."""
    limit = ["--max-mb", str(case.max_mb)] if case.max_mb is not None else []
    res = run_bounded([sys.executable, "-m", "bench.badinput.child", str(case.path), "--name", case.name, *limit],
                      max_mb=max_mb, timeout=timeout, env=_env(), cwd=ROOT)
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
    return res, (json.loads(lines[-1]) if res.killed is None and lines else None)
