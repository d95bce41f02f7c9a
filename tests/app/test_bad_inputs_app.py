"""Hostile uploads on the Data page (streamlit.testing AppTest): each file is either read or answered with one clear
error box, never an unexpected failure, and after each one the built-in sample still loads.

One app session takes the whole corpus (as an analyst trying file after file would), so the test stays fast; the
outcome of every file is collected and reported together. Heavy files (small files that would take gigabytes if the
bounds checked before parsing were lost) are first read by a child process under a memory ceiling, and the one-line
gzip bomb is also uploaded in a child app process, so a lost bound fails a test instead of taking the machine down.
"""
from __future__ import annotations


import pytest
from streamlit.testing.v1 import AppTest

import retention_core.io as rio
from bench.badinput.bounded import MAX_PEAK_MB, inspect_bounded, upload_bounded
from bench.badinput.app_upload import APP, back_to_sample, upload_outcome
from bench.badinput.corpus import build_corpus

TIMEOUT = 120


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
    at.switch_page("pages/train.py").run()
    assert not at.exception, at.exception
    at.switch_page("pages/data.py").run()
    assert not at.exception, at.exception


def test_the_one_line_gzip_bomb_upload_stays_within_bounds(corpus):
    """The 120 KB gzip of one 120 MB line, uploaded on the Data page of an app in its own process: one error box,
    within 1 GB (the app itself takes about 350 MB); the sample loads after it. It used to grow past 20 GB. (The 10 s
    target is measured by the bad-input report, not here.)"""
    case = next(c for c in corpus if c.name == "bomb_line.csv.gz")
    res, report = upload_bounded(case, max_mb=MAX_PEAK_MB)
    assert res.killed is None and report is not None, f"killed ({res.killed}) at {res.peak_mb:.0f} MB\n{res.stderr}"
    assert report["outcome"] == "error" and "columns" in report["detail"], report
    assert report["after"] is None, report
    assert res.peak_mb < MAX_PEAK_MB, (res.peak_mb, report)
