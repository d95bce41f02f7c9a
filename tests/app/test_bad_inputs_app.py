"""Hostile uploads on the Data page (streamlit.testing AppTest): each file is either read or answered with one clear
error box, never an unexpected failure, and after each one the built-in sample still loads.

One app session takes the whole corpus (as an analyst trying file after file would), so the test stays fast; the
outcome of every file is collected and reported together. Heavy files (small files that would take gigabytes if the
bounds checked before parsing were lost) are first read by a child process under a memory ceiling, and the one-line
gzip bomb is also uploaded in a child app process, so a lost bound fails a test instead of taking the machine down.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import retention_core.io as rio
from tests.badinput.bounded import MAX_PEAK_MB, MAX_SECONDS, inspect_bounded, upload_bounded
from tests.badinput.corpus import build_corpus
from ui.tables import UPLOAD_TYPES
from ui.state import Key, widget_key

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
TIMEOUT = 120


def _errors(at: AppTest) -> list[str]:
    return [str(e.value) for e in at.error]


def _crash(at: AppTest) -> str | None:
    """What went wrong beyond a product message: an uncaught exception or the 'Details' box of a contained one."""
    if at.exception:
        return "; ".join(str(e.value) for e in at.exception)[:300]
    if "Details" in [e.label for e in at.expander]:
        return "unexpected failure: " + " | ".join(_errors(at))[:300]
    return None


def upload_name(name: str) -> str:
    """The uploader only takes table extensions; other files (PDF, PNG, JSON...) arrive renamed, as .csv."""
    return name if any(name.lower().endswith("." + t) for t in UPLOAD_TYPES) else name + ".csv"


def upload_outcome(at: AppTest, case) -> tuple[str, str]:
    """Upload one corpus file on the Data page; ('read' | 'error' | 'crash', detail). Leaves the app on the upload."""
    name = upload_name(case.name)
    at.radio(key=widget_key(Key.W_SOURCE)).set_value("upload").run()
    if (bad := _crash(at)) is not None:
        return "crash", f"choosing upload: {bad}"
    at.get("file_uploader")[0].set_value((name, case.data, "application/octet-stream"))
    at.run()
    if (bad := _crash(at)) is not None:
        return "crash", bad
    table = at.session_state[str(Key.TABLE)] if str(Key.TABLE) in at.session_state else None
    if table is None or not str(table.name).startswith(name):
        errs = _errors(at)
        return ("error", errs[0]) if errs else ("crash", "nothing read and no error shown")
    build = next((b for b in at.button if b.label == "Build dataset"), None)
    if build is not None:  # a table that was read goes one step further: the dataset builder
        build.click().run()
        if (bad := _crash(at)) is not None:
            return "crash", f"building the dataset: {bad}"
    return "read", f"{table.kind} table, {table.rows} rows"


def back_to_sample(at: AppTest) -> str | None:
    """Switch back to the built-in sample; None when it loads cleanly, else what went wrong."""
    at.radio(key=widget_key(Key.W_SOURCE)).set_value("sample").run()
    if (bad := _crash(at)) is not None:
        return bad
    if at.error:
        return "error on the sample: " + _errors(at)[0]
    table = at.session_state[str(Key.TABLE)].table_key
    if at.selectbox(key=widget_key(Key.W_ROLE, table, "user_id")).value != "customer_id":
        return "the sample's columns are not recognised any more"
    return None


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return [c for c in build_corpus(tmp_path_factory.mktemp("corpus")) if c.upload]


def test_every_hostile_upload_is_read_or_refused_and_the_sample_still_works(corpus, monkeypatch):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    problems = []
    for case in corpus:
        if case.heavy and (res := inspect_bounded(case, timeout=30)).killed:
            problems.append(f"{case.name}: reading it passed the ceiling ({res.killed}); not uploaded here")
            continue
        with monkeypatch.context() as m:
            if case.max_mb is not None:
                m.setattr(rio, "DEFAULT_MAX_MB", case.max_mb)
            outcome, detail = upload_outcome(at, case)
        if outcome == "crash":
            problems.append(f"{case.name}: {detail}")
        elif case.expect == "ok" and outcome != "read":
            problems.append(f"{case.name}: should be read, got error {detail!r}")
        elif case.expect == "error" and outcome != "error":
            problems.append(f"{case.name}: should be refused, but it was read ({detail})")
        elif case.expect == "error" and case.needle and case.needle not in detail.lower():
            problems.append(f"{case.name}: the message should say {case.needle!r}: {detail!r}")
        if (bad := back_to_sample(at)) is not None:
            problems.append(f"{case.name}: after it, the sample does not load: {bad}")
    assert not problems, "\n".join(problems)
    # the session survived the whole corpus: other pages still open
    at.switch_page("app_pages/train.py").run()
    assert not at.exception, at.exception
    at.switch_page("app_pages/data.py").run()
    assert not at.exception, at.exception


def test_the_one_line_gzip_bomb_upload_stays_within_bounds(corpus):
    """The 120 KB gzip of one 120 MB line, uploaded on the Data page of an app in its own process: one error box,
    within 1 GB (the app itself takes about 350 MB) and 10 s; the sample loads after it. It used to grow past 20 GB."""
    case = next(c for c in corpus if c.name == "bomb_line.csv.gz")
    res, report = upload_bounded(case, max_mb=MAX_PEAK_MB)
    assert res.killed is None and report is not None, f"killed ({res.killed}) at {res.peak_mb:.0f} MB\n{res.stderr}"
    assert report["outcome"] == "error" and "columns" in report["detail"], report
    assert report["after"] is None, report
    assert res.peak_mb < MAX_PEAK_MB and report["seconds"] < MAX_SECONDS, (res.peak_mb, report)
