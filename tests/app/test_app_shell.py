"""The app shell: every page renders with and without a dataset; the library stays free of Streamlit."""
from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from ui.state import Key

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
PAGES = ["pages/data.py", "pages/train.py", "pages/evaluate.py", "pages/models.py",
         "pages/explain.py", "pages/segments.py", "pages/at_risk.py", "pages/monitor.py"]


@pytest.fixture(autouse=True)
def _empty_workspace(tmp_path, monkeypatch):
    """A workspace of its own, with no run and no scoring history: what other tests saved or recorded elsewhere
    never changes what these pages show."""
    monkeypatch.setenv("RETENTION_WORKSPACE", str(tmp_path / "workspace"))


def _texts(at: AppTest) -> str:
    parts = [e.value for kind in ("markdown", "caption", "info", "success", "warning", "error", "title")
             for e in getattr(at, kind)]
    return "\n".join(map(str, parts))


@pytest.fixture(scope="module")
def with_dataset() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    next(b for b in at.button if b.label == "Build dataset").click().run()
    assert not at.exception, at.exception
    assert at.session_state[str(Key.DATASET)] is not None
    return at


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_without_a_dataset(page):
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page(page).run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert at.title, "every page has a title"
    if page != "pages/data.py":
        text = _texts(at)
        assert "Data page first" in text
        assert "This page will let you" in text


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_with_a_dataset(with_dataset, page):
    at = with_dataset
    at.switch_page(page).run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    if page != "pages/data.py":
        assert "Dataset ready" in _texts(at)
        assert "Data page first" not in _texts(at)


def test_the_app_opens_on_the_data_page_with_sections():
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    assert at.title[0].value.endswith("Data")
    side = "\n".join(m.value for m in at.sidebar.markdown)
    assert "Retention studio" in side and "sample_events.csv.gz" in side


def _sidebar_script():
    from ui import state, widgets

    state.set_table(state.TableInfo("upload", "shop.xlsx [Orders]", "abc:Orders", "events", 1234, 56))
    widgets.sidebar_summary()


def test_sidebar_summary_says_what_is_loaded():
    at = AppTest.from_function(_sidebar_script, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    text = at.markdown[0].value
    assert "shop.xlsx [Orders]" in text and "Event log" in text and "1,234 rows" in text and "56 users" in text
    assert "How it works" in at.caption[0].value


def _empty_sidebar_script():
    from ui import widgets

    widgets.sidebar_summary()


def test_sidebar_summary_without_data():
    at = AppTest.from_function(_empty_sidebar_script, default_timeout=60)
    at.run()
    assert "No data loaded yet" in at.caption[0].value


# ------------------------------------------------------------------------------------------------ layering
LIBRARY = sorted((ROOT / "retention_core").rglob("*.py"))
IMPORT_STREAMLIT = re.compile(r"^\s*(import\s+streamlit|from\s+streamlit[\s.])", re.MULTILINE)


def test_library_sources_never_import_streamlit():
    assert LIBRARY
    offenders = [str(p.relative_to(ROOT)) for p in LIBRARY if IMPORT_STREAMLIT.search(p.read_text(encoding="utf-8"))]
    assert not offenders, f"retention_core must not import Streamlit: {offenders}"


def test_every_page_is_in_the_navigation_and_streamlit_lists_none_itself():
    """Streamlit would list the files of pages/ by name in the sidebar on a server's first run; the config turns its
    list off and the app draws its own links (tests/e2e/test_first_paint.py shows both in a browser)."""
    from ui.navigation import SECTIONS

    declared = [p.script for specs in SECTIONS.values() for p in specs]
    assert sorted(declared) == sorted(PAGES) == sorted(f"pages/{p.name}" for p in (ROOT / "pages").glob("*.py"))
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["client"]["showSidebarNavigation"] is False


def test_every_page_starts_with_its_header():
    """``page_header`` first makes sure the page runs inside the router: a page that skipped it could be shown alone
    on a fresh server's first visit to its address."""
    for page in PAGES:
        tree = ast.parse((ROOT / page).read_text(encoding="utf-8"))
        main = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main")
        first = main.body[0]
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):  # a docstring
            first = main.body[1]
        call = first.value if isinstance(first, ast.Expr) else None
        assert isinstance(call, ast.Call) and getattr(call.func, "id", None) == "page_header", \
            f"{page}: main() does not start with page_header"


def test_pages_reach_the_library_only_through_ui():
    for page in PAGES:
        src = (ROOT / page).read_text(encoding="utf-8")
        assert "session_state" not in src, f"{page} touches session state directly"
        assert "cache_data" not in src and "cache_resource" not in src, f"{page} defines a cache"


def test_importing_the_library_loads_neither_streamlit_nor_tensorflow():
    # Every module of the library, except the Keras model module, whose job is to use TensorFlow (lazily imported
    # everywhere else so that pages that do not train start fast).
    modules = ["retention_core." + ".".join(p.relative_to(ROOT / "retention_core").with_suffix("").parts)
               for p in LIBRARY if p.name != "__init__.py"]
    modules = [m for m in modules if not m.endswith(("__main__", "keras_models"))]
    code = ("import sys\n" + "".join(f"import {m}\n" for m in modules) +
            "bad = sorted(m for m in ('streamlit', 'tensorflow', 'keras') if m in sys.modules)\n"
            "print(','.join(bad))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "", f"importing retention_core loaded {out.stdout.strip()}"
