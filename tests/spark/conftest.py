"""One Spark session (``local[2]``) for every Spark test of a run, started on first use and stopped at the end: a
session costs about 12 s to start. Tests that use it are skipped, with the reason, where PySpark or a Java runtime is
missing (``pip install -r requirements-spark.txt``; Java 17)."""
from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def spark():
    from retention_core.spark.session import unavailable

    why = unavailable()
    if why:
        pytest.skip(f"Spark engine not testable here: {why}")
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from retention_core.spark import get_session

    session = get_session("local[2]")
    yield session
    session.stop()


def _java_causes(java, limit: int = 8) -> str:
    """The chain of a Java exception's causes, one line each (class and message), innermost last."""
    lines, seen = [], 0
    while java is not None and seen < limit:
        text = str(java.toString()).splitlines()[0] if java.toString() else type(java).__name__
        lines.append(f"  {text[:600]}")
        java, seen = java.getCause(), seen + 1
    return "\n".join(lines)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failure raised by the JVM is reported by its chain of causes, not by the JVM's stack trace of hundreds of
    lines, whose cause a log's tail would otherwise cut off."""
    outcome = yield
    report = outcome.get_result()
    exc = call.excinfo.value if call.excinfo is not None else None
    java = getattr(exc, "java_exception", None) or getattr(exc, "_origin", None)  # py4j's, or pyspark's own
    if not report.failed or java is None:
        return
    import traceback

    try:
        causes = _java_causes(java)
    except Exception as err:  # the gateway is gone: its own error says so
        causes = f"  (the causes could not be read: {err})"
    frames = "".join(traceback.format_tb(call.excinfo.tb)[-6:])
    root = causes.splitlines()[-1].strip()
    report.longrepr = (f"{type(exc).__name__} raised by the JVM, at its root: {root}\nIts causes, outermost first:\n"
                       f"{causes}\n{frames}")
