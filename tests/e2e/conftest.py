"""Real-browser fixtures: the app served by ``streamlit run`` on a free local port and a headless Chromium.

The server starts once per test module and is stopped at the end; its log is kept under
``test-artifacts/e2e-logs/`` and screenshots go to ``test-artifacts/screenshots/`` (both ignored by git). The tests
are skipped with a clear reason when Chromium or the Playwright package is not installed.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.browser import app_server as start_app_server
from bench.browser import chromium, missing_browser

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
LOGS = ARTIFACTS / "e2e-logs"
SERVER_START_S = 90


def pytest_collection_modifyitems(config, items):
    """Every test in this folder is an e2e test; all are skipped, with the reason, when no browser is available."""
    reason = missing_browser()
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.e2e)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


def _start_app(name: str, tmp: Path):
    """The app served on a free port with a workspace of its own under ``tmp``, its log kept as
    ``test-artifacts/e2e-logs/NAME.log``; returned once it answers (a :class:`bench.browser.StreamlitServer`)."""
    server = start_app_server(tmp, LOGS / f"{name}.log")
    try:
        server.wait_ready(SERVER_START_S)
    except BaseException:
        server.stop()
        raise
    return server


@pytest.fixture(scope="module")
def app_server(request, tmp_path_factory):
    """The app served on a free port for this module, stopped (and its log kept) at the end."""
    server = _start_app(request.module.__name__.rsplit(".", 1)[-1], tmp_path_factory.mktemp("e2e-server"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture()
def fresh_server(request, tmp_path):
    """A server process of its own for one test: the test's visit is the first session it ever serves."""
    server = _start_app(f"first_paint_{request.node.name}", tmp_path)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium for this module."""
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def app_page(browser, app_server):
    """One browser tab on the app, shared by the ordered tests of a module (one Streamlit session)."""
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, accept_downloads=True)
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.app_server = app_server  # type: ignore[attr-defined]
    try:
        yield page
    finally:
        context.close()


def full_screenshot(page, path: Path) -> Path:
    """The whole page, not only the viewport: Streamlit scrolls inside its main block, so the viewport is grown to the
    content's height for the picture and put back afterwards."""
    size = page.viewport_size or {"width": 1440, "height": 1000}
    height = page.evaluate(
        """() => Math.max(...[...document.querySelectorAll('[data-testid="stMain"], [data-testid="stMainBlockContainer"],'
                + '[data-testid="stAppViewContainer"]')].map(e => e.scrollHeight), document.body.scrollHeight)""")
    tall = int(min(max(height, size["height"]), 8000))
    try:
        if tall > size["height"]:
            page.set_viewport_size({"width": size["width"], "height": tall})
            page.wait_for_timeout(300)
        page.screenshot(path=str(path), full_page=True)
    finally:
        if tall > size["height"]:
            page.set_viewport_size(size)
    return path


@pytest.fixture(autouse=True)
def _screenshot_on_failure(request):
    """A picture of the page when a browser test fails, to see what the analyst would have seen."""
    yield
    rep = getattr(request.node, "rep_call", None)
    if rep is None or not rep.failed or "app_page" not in request.fixturenames:
        return
    page = request.getfixturevalue("app_page")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        full_screenshot(page, SCREENSHOTS / f"FAILED_{request.node.name}.png")
    except Exception:  # the browser may be gone; the test failure says why
        pass


@pytest.fixture(scope="session")
def screenshot():
    """``screenshot(page, name)`` writes a full-page PNG to test-artifacts/screenshots/NAME.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.glob("FAILED_*.png"):  # pictures of failures from an earlier session
        old.unlink()

    def take(page, name: str) -> Path:
        return full_screenshot(page, SCREENSHOTS / f"{name}.png")

    return take


@pytest.fixture(scope="session")
def timings():
    """A dict of measured times (seconds), written to test-artifacts/e2e-timings.json at the end of the session."""
    out: dict[str, float] = {}
    yield out
    if out:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "e2e-timings.json").write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each test's call report on the item, so ordered steps can tell that an earlier one failed."""
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call":
        item.rep_call = rep
