"""Section 5: the app in headless Chromium, from `streamlit run` to the Data page, a sidebar click to Train and an
upload, against a minimal Streamlit app that reads the same files with pandas and shows the same texts."""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from bench.browser import StreamlitServer, app_server, chromium, main_area, sidebar_link, wait_settled, wait_visible
from bench.common import ROOT, fmt_seconds, size_label
from bench.measures import Job, Rows, find_rows, info, median
from bench.registry import Plan, Section, step

NAME = "app"
REFERENCE_APP = '''
import pandas as pd
import streamlit as st

def data():
    st.title("Data")
    src = st.radio("Data source", ["Built-in sample", "Upload a file"], horizontal=True)
    if src == "Built-in sample":
        df = pd.read_csv(SAMPLE)
    else:
        up = st.file_uploader("Upload an event log", type=["csv", "gz"])
        if up is None:
            st.info("Upload a file to begin")
            return
        df = pd.read_csv(up, compression="gzip" if up.name.endswith(".gz") else None)
    st.subheader("What we understood")
    st.write(f"{len(df):,} rows")
    st.dataframe(df.head(20))

def train():
    st.title("Train")
    st.caption("Train several retention models")

st.navigation([st.Page(data, title="Data", default=True), st.Page(train, title="Train", url_path="train")]).run()
'''
OPTIONS = ("--server.fileWatcherType", "none", "--server.maxUploadSize", "500")
WAIT_MS = 120_000
SETTLE_S = 600


def _server(kind: str, tmp: Path) -> StreamlitServer:
    """The product (app.py) or the reference app, started now (its clock starts with the process)."""
    if kind == "product":
        return app_server(tmp, tmp / "server.log", OPTIONS)
    script = tmp / "reference_app.py"
    script.write_text(f"SAMPLE = {str(ROOT / 'assets' / 'sample_events.csv.gz')!r}\n" + REFERENCE_APP)
    return StreamlitServer(script, cwd=tmp, log_path=tmp / "server.log", env={**os.environ, "RETENTION_HOME": str(tmp)},
                           options=OPTIONS)


def _understood(page):
    return main_area(page).get_by_text("What we understood", exact=True)


def _click_to(page, link: str, shown, measures: dict, name: str, timeout_ms: float = WAIT_MS) -> None:
    """Click a sidebar link; ``measures[name]``: seconds until ``shown`` is visible, ``name_settled`` until the rerun
    finished."""
    t = time.perf_counter()
    sidebar_link(page, link).click()
    wait_visible(shown, timeout_ms)
    measures[name] = time.perf_counter() - t
    measures[name + "_settled"] = wait_settled(page, t, timeout_s=SETTLE_S)


def _upload(page, upload: Path, measures: dict) -> None:
    """Back to Data, switch to an upload, and time the generated log's upload until the page shows it."""
    t = time.perf_counter()
    sidebar_link(page, "Data").click()
    wait_visible(_understood(page), WAIT_MS)
    measures["nav_data"] = time.perf_counter() - t
    page.get_by_text("Upload a file", exact=True).first.click()
    wait_visible(page.get_by_text("Upload a file to begin"), WAIT_MS)
    wait_settled(page, timeout_s=SETTLE_S)  # the sample's elements are gone, not merely stale
    _understood(page).first.wait_for(state="detached", timeout=WAIT_MS)
    t = time.perf_counter()
    page.locator('input[type="file"]').first.set_input_files(str(upload))
    wait_visible(_understood(page), 900_000)
    measures["upload_render"] = time.perf_counter() - t
    measures["upload_settled"] = wait_settled(page, t, timeout_s=SETTLE_S)


@step("app", NAME)
def app(kind: str, cache: str, upload_events: int) -> dict:
    """Time from `streamlit run` to the Data page rendered, a sidebar click to Train rendered, and the same after
    uploading a generated event log. ``kind``: ``product`` (app.py) or ``reference`` (a minimal Streamlit app that
    reads the same files with pandas and shows the same texts)."""
    tmp = Path(tempfile.mkdtemp(prefix="bench_app_"))
    measures, out = {}, {}
    upload = Path(cache) / f"events_{upload_events}.csv.gz" if upload_events else None
    with chromium() as browser:
        page = browser.new_page()
        server = _server(kind, tmp)
        try:
            measures["server_up"] = server.wait_ready(timeout=120)
            page.goto(server.url)
            wait_visible(_understood(page), WAIT_MS)
            measures["first_render"] = server.elapsed()
            measures["first_settled"] = wait_settled(page, server.started, timeout_s=SETTLE_S)
            train_shown = main_area(page).get_by_text("Train several retention models")
            _click_to(page, "Train", train_shown, measures, "nav_train")
            if upload is not None:
                _upload(page, upload, measures)
                out["upload_mb"] = upload.stat().st_size / 1e6
                _click_to(page, "Train", train_shown, measures, "nav_train_upload")
            out["server_peak_rss_mb"] = server.peak_rss_mb()
        finally:
            server.stop()
            shutil.rmtree(tmp, ignore_errors=True)
    return {"measures": measures, "info": out}


def plan(cfg: dict, cache: str) -> Plan:
    out = Plan()
    n = cfg["app_upload_events"]
    if n:
        out.events[n] = True
    for v in ("product", "reference"):
        out.jobs.append(Job(NAME, f"app/{v}", "app", {"kind": v, "cache": cache, "upload_events": n}))
    return out


def report(t: Rows) -> None:
    p, r = t.job("app/product"), t.job("app/reference")
    if p is None:
        return
    server = info(p, "server_peak_rss_mb")
    up = t.cfg["app_upload_events"]
    same = "minimal Streamlit app, same texts"

    def done(m):
        a, b = median(p, m + "_settled"), median(r, m + "_settled")
        return f"whole rerun finished: {fmt_seconds(a)} s (reference {fmt_seconds(b)} s)"

    t.add(NAME, "`streamlit run` to Data page rendered (sample)", "sample", p, "first_render", r, "first_render", same,
          done("first") + (f"; server peak {server:,.0f} MB" if server else ""))
    t.add(NAME, "Sidebar click to Train rendered (sample)", "sample", p, "nav_train", r, "nav_train", same,
          done("nav_train"))
    if up:
        t.add(NAME, "Upload to Data page rendered", f"{size_label(up)} events ({info(p, 'upload_mb', 0):.0f} MB "
              "gz CSV)", p, "upload_render", r, "upload_render", "minimal app: pandas read_csv", done("upload"))
        t.add(NAME, "Sidebar click to Train rendered (after upload)", f"{size_label(up)} events", p,
              "nav_train_upload", r, "nav_train_upload", same, done("nav_train_upload"))


def targets(t: Rows) -> list[dict]:
    rows = t.rows
    app_rows = find_rows(rows, NAME, "`streamlit run`")
    if not app_rows:
        return []
    s = app_rows[0]["seconds"]
    return [{"target": "App first render under 6 s", "value": f"{fmt_seconds(s)} s",
             "pass": bool(s is not None and s < 6)}]


SECTION = Section(NAME, "5. App (Chromium, headless)", plan, report, targets)
