"""Shared test helpers: where the real public data lives and how to skip when it is absent.

The real files (Online Retail II, CDNOW, Telco; see ``shared/data/README.md``) sit in ``../shared/data`` next to the
repository and are never copied into it. Tests that need one call :func:`real_path` (or take the ``real_file``
fixture), which skips the test with a clear reason when the file is missing.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = REPO_ROOT.parent / "shared" / "data"
SAMPLE_EVENTS = REPO_ROOT / "assets" / "sample_events.csv.gz"


def real_path(name: str) -> Path:
    """The path of one real data file, skipping the calling test when it is absent."""
    path = DATA_DIR / name
    if not path.is_file():
        pytest.skip(f"real data not available: {name} not found in ../shared/data next to the repository")
    return path


@pytest.fixture(scope="session")
def real_file():
    """A function ``real_file(name) -> Path`` that skips the calling test when that real file is absent."""
    return real_path


@pytest.fixture(scope="session")
def sample_events_path() -> Path:
    """The small generated event log shipped with the app."""
    if not SAMPLE_EVENTS.is_file():
        pytest.skip("the shipped sample assets/sample_events.csv.gz is missing")
    return SAMPLE_EVENTS


@pytest.fixture(scope="session", autouse=True)
def _workspace_outside_the_repository(tmp_path_factory):
    """Every scoring is recorded in the workspace's history: commands a test runs without a workspace of its own
    record into a temporary one, never into the repository's ./workspace."""
    if not os.environ.get("RETENTION_WORKSPACE"):
        os.environ["RETENTION_WORKSPACE"] = str(tmp_path_factory.mktemp("workspace"))
    yield
