"""How the command line ends its process once a command has finished.

DuckDB and Arrow keep native thread pools. When the interpreter tears them down at exit while one of their workers is
still alive, the C++ runtime aborts the process ("terminate called without an active exception", exit status -6 or
134) after the command has already done all its work and written all its files: a successful run then looks failed to
the shell, a scheduler or a campaign tool's import job. This is intermittent and seen under load (apache/arrow#34314,
duckdb/duckdb#13904).

So the command line, and only the command line (never a library caller, a test or the app), ends like this: it runs
the exit handlers Python would run (a Spark session's stop, temporary folders), flushes its output, and then leaves
without the native libraries' teardown, which has nothing left to save.
"""
from __future__ import annotations

import atexit
import os
import sys


def exit_after(code: int | None) -> None:
    """End the process with ``code`` (0 when None) after the Python exit handlers and flushed output."""
    status = 0 if code is None else int(code)
    try:
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):  # a closed pipe: nothing more can reach it
                pass
        os._exit(status)
