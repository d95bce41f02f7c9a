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
