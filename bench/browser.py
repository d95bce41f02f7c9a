"""The browser harness that the benchmark's app section and the browser tests (``tests/e2e``) share: a headless
Chromium driven by Playwright, a Streamlit server on a free local port in a process of its own, and waits for what a
person sees (a real element on the page, a rerun that has finished).

Chromium is Debian's (``/usr/bin/chromium``; ``RETENTION_E2E_CHROMIUM`` points elsewhere); Playwright's own browser
download is never used.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Where Debian's Chromium lives; RETENTION_E2E_CHROMIUM points elsewhere when it is installed another way.
CHROMIUM = os.environ.get("RETENTION_E2E_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
#: True while the app reruns: an element marked stale, or the status widget saying it is running.
BUSY_JS = """() => !!document.querySelector('[data-stale="true"]') ||
    !![...document.querySelectorAll('[data-testid="stStatusWidget"]')].find(e => /running/i.test(e.innerText || ''))"""


def missing_browser() -> str | None:
    """Why no browser can be driven here (Chromium or the Playwright package missing), or None."""
    if not Path(CHROMIUM).is_file():
        return f"browser tests need Chromium, not found at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "browser tests need the playwright Python package (pip install -r requirements-dev.txt)"
    return None


@contextmanager
def chromium():
    """A headless Chromium (a Playwright ``Browser``), closed on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StreamlitServer:
    """``streamlit run SCRIPT`` on a free local port, in its own process, its output in ``log_path``. ``started`` is
    the ``time.perf_counter()`` just before the process started."""

    def __init__(self, script: Path | str, *, cwd: Path | str, log_path: Path, env: dict | None = None,
                 options: tuple[str, ...] = (), workspace: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log_path = Path(log_path)
        self.workspace = workspace
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "w", encoding="utf-8")
        cmd = [sys.executable, "-m", "streamlit", "run", str(script), "--server.headless", "true",
               "--server.address", "127.0.0.1", "--server.port", str(self.port),
               "--browser.gatherUsageStats", "false", *options]
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(cmd, cwd=str(cwd), env=dict(os.environ) if env is None else env,
                                     stdout=self._log, stderr=subprocess.STDOUT)

    def elapsed(self) -> float:
        """Seconds since the server process started."""
        return time.perf_counter() - self.started

    def wait_ready(self, timeout: float = 90) -> float:
        """Wait until the server answers its health check; the seconds since it started."""
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit stopped at start (exit {self.proc.returncode}): "
                                   f"{self._log_tail()}; see {self.log_path}")
            try:
                urllib.request.urlopen(f"{self.url}_stcore/health", timeout=1)
                return self.elapsed()
            except OSError:
                time.sleep(0.05)
            if self.elapsed() > timeout:
                raise TimeoutError(f"streamlit did not answer on port {self.port} within {timeout:.0f} s; "
                                   f"see {self.log_path}")

    def _log_tail(self, chars: int = 2000) -> str:
        self._log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-chars:]

    def peak_rss_mb(self) -> float | None:
        """The server process's peak resident memory so far (VmHWM), while it runs."""
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        self._log.close()


def app_server(tmp: Path, log_path: Path, options: tuple[str, ...] = ()) -> StreamlitServer:
    """The product (``app.py``) as users get it, with a workspace and a home of its own under ``tmp``: training in
    the background and the default bundle signing, whatever this process's environment says."""
    tmp = Path(tmp)
    env = {k: v for k, v in os.environ.items() if k not in ("RETENTION_SYNC_TRAINING", "RETENTION_BUNDLE_KEY")}
    env.update(RETENTION_WORKSPACE=str(tmp / "workspace"), RETENTION_HOME=str(tmp / "home"), PYTHONUNBUFFERED="1")
    return StreamlitServer(ROOT / "app.py", cwd=ROOT, log_path=log_path, env=env, options=options,
                           workspace=tmp / "workspace")


def main_area(page):
    """The page body, not the sidebar (whose help texts would also match)."""
    return page.get_by_test_id("stMain")


def sidebar_link(page, name: str):
    """The sidebar's link to the page ``name`` (the app draws its own links there, section by section)."""
    return page.get_by_test_id("stSidebar").get_by_role("link", name=name).first


def wait_visible(locator, timeout_ms: float):
    """Wait until the first element ``locator`` matches is visible; returns that element's locator."""
    first = locator.first
    first.wait_for(state="visible", timeout=timeout_ms)
    return first


def wait_settled(page, since: float | None = None, *, quiet_s: float = 0.5, timeout_s: float = 60) -> float | None:
    """Wait until the app has finished its rerun (no stale element, no running indicator), confirmed by ``quiet_s``
    of quiet. Returns the seconds from ``since`` (a ``time.perf_counter()``; default: now) until the quiet began, or
    None when it did not settle within ``timeout_s``."""
    since = time.perf_counter() if since is None else since
    end = time.perf_counter() + timeout_s
    quiet_since = None
    while time.perf_counter() < end:
        if page.evaluate(BUSY_JS):
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.perf_counter()
        elif time.perf_counter() - quiet_since >= quiet_s:
            return quiet_since - since
        time.sleep(0.05)
    return None
