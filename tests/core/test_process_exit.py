"""The command line ends its process without the native libraries' teardown, after Python's exit handlers and with
its output flushed (see ``retention_core.process_exit``)."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent("""
    import atexit, sys
    from retention_core.process_exit import exit_after

    class Pool:  # stands for a native thread pool torn down when the interpreter finalizes its modules
        def __del__(self):
            sys.stderr.write("torn down\\n")

    POOL = Pool()
    atexit.register(lambda: sys.stderr.write("exit handler ran\\n"))
    sys.stdout.write("written before exit")  # no newline: only a flush gets it out of the buffer of a pipe
    exit_after({code})
""")


def _run(code) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", SCRIPT.format(code=code)], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)


def test_the_exit_handlers_run_the_output_is_flushed_and_the_teardown_is_skipped():
    p = _run(3)
    assert p.returncode == 3
    assert p.stdout == "written before exit"
    assert "exit handler ran" in p.stderr
    assert "torn down" not in p.stderr


def test_none_is_success():
    assert _run(None).returncode == 0


def test_the_command_line_ends_through_it():
    source = (ROOT / "retention_core" / "__main__.py").read_text()
    assert "exit_after(main())" in source and "sys.exit(" not in source
    p = subprocess.run([sys.executable, "-m", "retention_core", "inspect", str(ROOT / "no-such-file.csv")],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert p.returncode == 2 and p.stderr.startswith("error: ") and "Traceback" not in p.stderr
