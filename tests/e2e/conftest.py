"""Real-browser fixtures: the app served by ``streamlit run`` on a free local port and a headless Chromium.

The server starts once per test module and is stopped at the end; its log is kept under
``test-artifacts/e2e-logs/`` and screenshots go to ``test-artifacts/screenshots/`` (both ignored by git). The tests
are skipped with a clear reason when Chromium or the Playwright package is not installed.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
LOGS = ARTIFACTS / "e2e-logs"
#: Where Debian's Chromium lives; RETENTION_E2E_CHROMIUM points elsewhere when it is installed another way.
CHROMIUM = os.environ.get("RETENTION_E2E_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SERVER_START_S = 90
FIRST_RENDER_S = 90


def _skip_reason() -> str | None:
    if not Path(CHROMIUM).is_file():
        return f"browser tests need Chromium, not found at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "browser tests need the playwright Python package (pip install -r requirements-dev.txt)"
    return None


def pytest_collection_modifyitems(config, items):
    """Every test in this folder is an e2e test; all are skipped, with the reason, when no browser is available."""
    reason = _skip_reason()
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.e2e)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """The app running in its own process, with its own workspace; its output goes to a log file."""

    def __init__(self, name: str, tmp: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        LOGS.mkdir(parents=True, exist_ok=True)
        self.log_path = LOGS / f"{name}.log"
        self.tmp = tmp
        env = dict(os.environ)
        env.update(RETENTION_WORKSPACE=str(tmp / "workspace"), RETENTION_HOME=str(tmp / "home"),
                   PYTHONUNBUFFERED="1", STREAMLIT_BROWSER_GATHER_USAGE_STATS="false")
        for name_ in ("RETENTION_SYNC_TRAINING", "RETENTION_BUNDLE_KEY"):
            env.pop(name_, None)  # the product as users get it: training in the background, default signing
        self._log = open(self.log_path, "w", encoding="utf-8")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
             "--server.address", "127.0.0.1", "--server.port", str(self.port)],
            cwd=REPO_ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        self.started = time.monotonic()

    def wait_listening(self, timeout: float = SERVER_START_S) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the app stopped at start (exit {self.proc.returncode}); see {self.log_path}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"the app did not listen on port {self.port} within {timeout:.0f} s; see {self.log_path}")

    def log_text(self) -> str:
        self._log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        self._log.close()


@pytest.fixture(scope="module")
def app_server(request, tmp_path_factory):
    """The app served on a free port for this module, stopped (and its log kept) at the end."""
    name = request.module.__name__.rsplit(".", 1)[-1]
    server = Server(name, tmp_path_factory.mktemp("e2e-server"))
    try:
        server.wait_listening()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium for this module."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


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
