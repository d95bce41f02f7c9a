"""Shared AppTest helpers: the app, a temporary workspace, buttons, page texts, and a fast run trained inline."""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
from streamlit.testing.v1 import AppTest

from ui.state import Key, widget_key

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
TIMEOUT = 180


def env(mp: pytest.MonkeyPatch, tmp: Path) -> None:
    """A temporary workspace and key folder, and training inline so tests are deterministic."""
    mp.setenv("RETENTION_WORKSPACE", str(tmp / "workspace"))
    mp.setenv("RETENTION_HOME", str(tmp / "home"))
    mp.setenv("RETENTION_SYNC_TRAINING", "1")
    mp.delenv("RETENTION_BUNDLE_KEY", raising=False)


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def texts(at: AppTest) -> str:
    parts = [e.value for kind in ("markdown", "caption", "info", "success", "warning", "error", "title", "subheader")
             for e in getattr(at, kind)]
    return "\n".join(map(str, parts))


def no_exception(at: AppTest) -> AppTest:
    assert not at.exception, at.exception
    return at


def train_fast(at: AppTest, name: str) -> AppTest:
    """On the Train page: the "Fast" preset (recency rule and logistic regression), saved under ``name``."""
    at.switch_page("pages/train.py").run()
    no_exception(at)
    button(at, "Fast").click().run()
    no_exception(at)
    at.text_input(key=widget_key(Key.W_TRAIN, "name")).set_value(name)
    button(at, "Train models").click().run()
    return no_exception(at)


def with_upload(file_name: str, data: bytes, mime: str = "text/csv") -> AppTest:
    """A new app session with ``data`` uploaded as ``file_name`` on the Data page."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.switch_page("pages/data.py").run()
    at.radio(key=widget_key(Key.W_SOURCE)).set_value("upload").run()
    at.get("file_uploader")[0].set_value((file_name, data, mime))
    at.run()
    return no_exception(at)


def sample_run(name: str) -> AppTest:
    """A new app session on the built-in sample with its dataset built and a fast run trained as ``name``."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    button(at, "Build dataset").click().run()
    no_exception(at)
    train_fast(at, name)
    assert at.session_state[str(Key.ACTIVE_RUN)] == name
    return at


@contextmanager
def sample_run_in(tmp_path_factory: pytest.TempPathFactory, prefix: str, name: str) -> Iterator[tuple[AppTest, Path]]:
    """:func:`sample_run` in a new temporary workspace (:func:`env`) kept for the block; yields the session and the
    temporary folder. For a module's fixture: ``with sample_run_in(tmp_path_factory, "x", RUN) as (at, tmp): ...``."""
    tmp = tmp_path_factory.mktemp(prefix)
    with pytest.MonkeyPatch.context() as mp:
        env(mp, tmp)
        yield sample_run(name), tmp


def table(at: AppTest, column: str):
    """The last table on the page that has ``column`` (AppTest does not expose the keys of dataframes)."""
    found = [d.value for d in at.dataframe if column in d.value.columns]
    assert found, f"no table with a {column!r} column"
    return found[-1]


def at_risk_list(at: AppTest):
    """The at-risk list on the At-risk page (the table with a ``value_at_risk`` column)."""
    return table(at, "value_at_risk")
