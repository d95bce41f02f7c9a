"""The Monitor page through AppTest: what to do when nothing is recorded, the demo on the sample, a scoring of new data
recorded only when its list is downloaded or the analyst asks (once, across reruns, pages and sessions; never the
validation users; trying as-of dates records nothing), deleting a recorded scoring with confirmation, the page's
realised figures equal to the library's report, drift with the expected ageing apart and in plain words, and a table
without the run's columns refused while the history stays whole."""
from __future__ import annotations

import shutil
from datetime import date

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from retention_core import bundle, io, monitor
from ui.state import Key, widget_key

from tests.app.helpers import APP, ROOT, TIMEOUT, at_risk_list, button, no_exception, sample_run_in, texts
from tests.app.helpers import env as _env
from tests.app.test_data_page import user_table_csv

RUN = "monitored run"
MONITOR = "pages/monitor.py"
AT_RISK = "pages/at_risk.py"
SAMPLE = ROOT / "assets" / "sample_events.csv.gz"
EARLY = date(2024, 8, 1)  # the sample ends on 2024-12-31: a 90-day horizon after this day is observed in it


def _k(*parts) -> str:
    return widget_key(Key.W_AT_RISK, *parts)


def _history(tmp) -> pd.DataFrame:
    ws = tmp / "workspace"
    return monitor.scorings(workspace=ws) if (ws / monitor.HISTORY_FILE).is_file() else pd.DataFrame()


def _table(at: AppTest, column: str) -> pd.DataFrame:
    found = [d.value for d in at.dataframe if column in d.value.columns]
    assert found, f"no table with a {column!r} column"
    return found[-1]


def _alerts(at: AppTest) -> str:
    return "\n".join(str(e.value) for kind in ("success", "info", "warning", "error") for e in getattr(at, kind))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The sample's dataset built and the fast models trained inline into a temporary workspace."""
    with sample_run_in(tmp_path_factory, "monitor", RUN) as (at, tmp):
        yield at, tmp


# ------------------------------------------------------------------------------------------------ empty state
def test_empty_state_without_a_run_says_what_to_do(tmp_path, monkeypatch):
    _env(monkeypatch, tmp_path)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page(MONITOR).run()
    no_exception(at)
    assert not at.error
    text = texts(at)
    assert "Data page first" in text and "This page will let you" in text
    assert "Show a demo on the sample" in [b.label for b in at.button]
    assert not (tmp_path / "workspace").exists(), "looking at the history never creates a workspace"


def test_empty_state_with_a_run_says_score_then_come_back(trained, tmp_path, monkeypatch):
    _, tmp = trained
    ws = tmp_path / "workspace"
    shutil.copytree(tmp / "workspace" / "runs" / RUN, ws / "runs" / RUN)
    monkeypatch.setenv("RETENTION_WORKSPACE", str(ws))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page(MONITOR).run()
    no_exception(at)
    text = texts(at)
    assert f"No scoring of run '{RUN}' is recorded yet" in text, text
    assert "Wait for the horizon" in text and "Come back with the newer data" in text
    assert not at.error


def test_the_demo_fills_the_page_and_leaves_the_history_alone(tmp_path, monkeypatch):
    _env(monkeypatch, tmp_path)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page(MONITOR).run()
    button(at, "Show a demo on the sample").click().run()
    no_exception(at)
    assert not [e.value for e in at.error if "Retrain" not in str(e.value)]
    alerts = _alerts(at)
    assert "Demo on the built-in sample" in alerts
    assert any(w in alerts for w in ("Holding up", "Watch", "Retrain")), alerts  # the verdict
    scorings = _table(at, "observable_from")
    assert len(scorings) == 3 and (scorings["status"] == "observed").all()
    assert scorings["roc_auc"].between(0.5, 1).all()
    assert len(at.get("plotly_chart")) >= 5  # quality, predicted vs realised, calibration, drift, segments
    assert _table(at, "psi")["band"].notna().all()
    assert {m.label for m in at.metric} >= {"Realised ROC-AUC", "Recall in the top 10%", "Realised churn"}
    ws = tmp_path / "workspace"
    assert not (ws / monitor.HISTORY_FILE).exists() and not (ws / "runs").exists(), "the real workspace is untouched"
    assert not any((ws / "demo").iterdir()), "the demo's temporary workspace is removed"
    button(at, "Close the demo").click().run()
    no_exception(at)
    assert "Show a demo on the sample" in [b.label for b in at.button]


# ------------------------------------------------------------------------------------------------ recording
def _download(at: AppTest, label: str = "Download the list (CSV)") -> AppTest:
    next(b for b in at.get("download_button") if b.label == label).click().run()
    return no_exception(at)


def _record(at: AppTest) -> AppTest:
    """Keep the scoring on screen for monitoring with the button (when it is not kept already)."""
    found = [b for b in at.button if b.label == "Record this scoring for monitoring"]
    if found:
        found[0].click().run()
    return no_exception(at)


def test_trying_as_of_dates_records_nothing(trained):
    at, tmp = trained
    before = _history(tmp)
    at.switch_page(AT_RISK).run()
    at.radio(key=_k(RUN, "source")).set_value("table").run()
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    for day in (EARLY, date(2024, 9, 15), date(2024, 11, 1), None):
        at.date_input(key=_k(RUN, "as_of")).set_value(day).run()
        no_exception(at)
        assert "Not kept for monitoring yet" in texts(at) or "in the scoring history" in texts(at), texts(at)
    at.switch_page("pages/evaluate.py").run()
    at.switch_page(AT_RISK).run()
    no_exception(at)
    after = _history(tmp)
    assert len(after) == len(before), "trying dates, reruns and pages record nothing"
    if len(before):
        assert set(after["scoring_id"]) == set(before["scoring_id"])


def test_downloading_the_list_records_its_scoring_once(trained):
    at, tmp = trained
    before = len(_history(tmp))
    at.switch_page(AT_RISK).run()
    at.radio(key=_k(RUN, "source")).set_value("table").run()
    at.date_input(key=_k(RUN, "as_of")).set_value(None).run()
    no_exception(at)
    assert "Not kept for monitoring yet" in texts(at), texts(at)
    assert len(_history(tmp)) == before
    _download(at)
    assert not at.error, [e.value for e in at.error]
    assert "Recorded in the scoring history: come back after 2025-03-31" in texts(at), texts(at)
    h = _history(tmp)
    assert len(h) == before + 1
    new = h.sort_values("recorded_at").iloc[-1]
    assert new["source"] == "app" and new["run_name"] == RUN and new["as_of"] == "2024-12-31"
    assert new["data_name"] == "sample_events.csv.gz" and new["users"] >= len(at_risk_list(at)) > 0  # all scored
    # downloading again, reruns, another page and back, the validation users: nothing more is recorded
    _download(at)
    at.switch_page("pages/evaluate.py").run()
    at.switch_page(AT_RISK).run()
    at.radio(key=_k(RUN, "source")).set_value("validation").run()
    no_exception(at)
    _download(at)  # the validation users' list: never recorded
    at.radio(key=_k(RUN, "source")).set_value("table").run()
    no_exception(at)
    assert len(_history(tmp)) == before + 1
    # the same file scored on the Models page is the same scoring
    at.switch_page("pages/models.py").run()
    at.file_uploader(key=widget_key(Key.W_MODELS, "score", "file")).set_value(
        ("the same events.csv.gz", SAMPLE.read_bytes(), "application/gzip"))
    at.run()
    no_exception(at)
    assert "Users scored" in [m.label for m in at.metric]
    assert "in the scoring history: come back after 2025-03-31" in texts(at)
    _download(at, "Download the scores (CSV)")
    assert len(_history(tmp)) == before + 1
    # a new session (a reload) scoring the same data: already kept
    again = AppTest.from_file(APP, default_timeout=TIMEOUT)
    again.run()
    again.switch_page(AT_RISK).run()
    no_exception(again)
    assert "Already in the scoring history" in texts(again), texts(again)
    assert not [b for b in again.button if b.label == "Record this scoring for monitoring"]
    assert len(_history(tmp)) == before + 1


def test_the_record_button_keeps_a_scoring_without_a_download(trained):
    at, tmp = trained
    before = len(_history(tmp))
    at.switch_page(AT_RISK).run()
    at.radio(key=_k(RUN, "source")).set_value("table").run()
    at.date_input(key=_k(RUN, "as_of")).set_value(date(2024, 7, 1)).run()
    no_exception(at)
    assert len(_history(tmp)) == before
    button(at, "Record this scoring for monitoring").click().run()
    no_exception(at)
    assert "Recorded in the scoring history: come back after 2024-09-29" in texts(at), texts(at)
    assert not [b for b in at.button if b.label == "Record this scoring for monitoring"]
    h = _history(tmp)
    assert len(h) == before + 1 and h.sort_values("recorded_at").iloc[-1]["as_of"] == "2024-07-01"
    at.date_input(key=_k(RUN, "as_of")).set_value(None).run()


def test_a_new_file_scored_on_the_models_page_is_recorded_on_request(trained):
    at, tmp = trained
    before = len(_history(tmp))
    raw = io.read_table(SAMPLE)
    older = raw[raw["event_time"] < "2024-11-01"].to_csv(index=False).encode()
    at.switch_page("pages/models.py").run()
    at.file_uploader(key=widget_key(Key.W_MODELS, "score", "file")).set_value(("october.csv", older, "text/csv"))
    at.run()
    no_exception(at)
    assert len(_history(tmp)) == before, "scoring a file records nothing by itself"
    assert "Not kept for monitoring yet" in texts(at)
    _download(at, "Download the scores (CSV)")
    h = _history(tmp)
    assert len(h) == before + 1
    new = h.sort_values("recorded_at").iloc[-1]
    assert new["data_name"] == "october.csv" and new["source"] == "app" and new["as_of"] < "2024-11-02"
    assert f"Recorded in the scoring history: come back after {new['observable_from']}" in texts(at)


def test_the_page_shows_the_librarys_realised_figures(trained):
    at, tmp = trained
    at.switch_page(AT_RISK).run()
    at.radio(key=_k(RUN, "source")).set_value("table").run()
    at.date_input(key=_k(RUN, "as_of")).set_value(EARLY).run()
    _record(at)
    assert "Recorded in the scoring history: come back after 2024-10-30" in texts(at), texts(at)
    at.switch_page(MONITOR).run()
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    shown = _table(at, "observable_from").set_index("as_of")
    run = bundle.load_run(tmp / "workspace" / "runs" / RUN)
    direct = monitor.monitor_report(run, io.read_table(SAMPLE), require_observed=False)
    want = direct.scorings.set_index("as_of")
    assert shown.loc["2024-08-01", "status"] == "observed" and shown.loc["2024-12-31", "status"] == "waiting"
    for col in ("observed", "churn_rate", "predicted_rate", "roc_auc", "recall_at_10pct", "validation_roc_auc",
                "validation_recall_at_10pct"):
        assert float(shown.loc["2024-08-01", col]) == pytest.approx(float(want.loc["2024-08-01", col]), abs=1e-12)
    assert direct.verdict.text.split(": ", 1)[1] in _alerts(at)
    assert len(at.get("plotly_chart")) >= 5
    # the waiting scoring and when it can be checked; its outcome columns are empty, not the word "None"
    assert shown.loc["2024-12-31", "observable_from"] == "2025-03-31" and "waiting for" in texts(at)
    waiting = shown.loc["2024-12-31"]
    assert pd.isna(waiting["roc_auc"]) and pd.isna(waiting["churn_rate"])
    assert all(pd.api.types.is_numeric_dtype(shown[c]) for c in ("observed", "roc_auc", "churn_rate", "predicted_rate"))
    assert not any(v is None for v in shown.to_numpy().ravel())  # the grid would print the word "None"
    # drift: the features that grow with the customers' age apart, as expected ageing, in plain words
    psi_tables = [d.value for d in at.dataframe if "psi" in d.value.columns]
    assert len(psi_tables) == 2 and all("feature" not in t.columns or t["feature"].str.contains(" ").all()
                                        for t in psi_tables)
    moved, aged = psi_tables
    aged_names = set(aged["label"] if "label" in aged else aged["feature"])
    assert {"Days since first purchase", "Orders in total"} <= aged_names
    assert not aged_names & set(moved["label"] if "label" in moved else moved["feature"])
    assert "Expected ageing" in texts(at) and "never a reason to watch or retrain" in texts(at)
    flagged = direct.drift[direct.drift["expected_ageing"]]
    assert len(aged) == len(flagged) and "tenure_days" not in _alerts(at) + texts(at)


def test_a_recorded_scoring_is_deleted_on_the_monitor_page_once_confirmed(trained):
    at, tmp = trained
    at.switch_page(AT_RISK).run()
    at.radio(key=_k(RUN, "source")).set_value("table").run()
    at.date_input(key=_k(RUN, "as_of")).set_value(date(2024, 6, 1)).run()
    _record(at)
    at.date_input(key=_k(RUN, "as_of")).set_value(None).run()
    kept = _history(tmp)
    sid = kept.loc[kept["as_of"] == "2024-06-01", "scoring_id"].iloc[-1]
    at.switch_page(MONITOR).run()
    no_exception(at)
    at.selectbox(key=widget_key(Key.W_MONITOR, "delete")).set_value(sid).run()
    no_exception(at)
    assert button(at, "Delete").disabled, "nothing is deleted before the analyst confirms"
    assert len(_history(tmp)) == len(kept)
    at.checkbox(key=widget_key(Key.W_MONITOR, "delete", "confirm", sid)).check().run()
    button(at, "Delete").click().run()
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    left = _history(tmp)
    assert set(left["scoring_id"]) == set(kept["scoring_id"]) - {sid}
    assert not len(monitor.scores_of([sid], workspace=tmp / "workspace")), "its users are gone too"
    assert "2024-06-01" not in set(_table(at, "observable_from")["as_of"])


def test_a_table_without_the_runs_columns_is_refused_and_nothing_is_lost(trained):
    at, tmp = trained
    _record(at.switch_page(AT_RISK).run())  # at least one scoring recorded
    kept = _history(tmp)
    assert len(kept)
    at.switch_page("pages/data.py").run()
    at.radio(key=widget_key(Key.W_SOURCE)).set_value("upload").run()
    at.get("file_uploader")[0].set_value(("customers.csv", user_table_csv(), "application/octet-stream"))
    at.run()
    no_exception(at)
    at.switch_page(MONITOR).run()
    no_exception(at)
    assert any("column" in e.value for e in at.error), [e.value for e in at.error]
    assert "recorded scorings are kept" in texts(at)
    assert at.title and at.selectbox(key=widget_key(Key.W_MONITOR, "run")).value == RUN
    pd.testing.assert_frame_equal(_history(tmp).drop(columns="run_exists"), kept.drop(columns="run_exists"))
    # back to the sample: the report again
    at.switch_page("pages/data.py").run()
    at.radio(key=widget_key(Key.W_SOURCE)).set_value("sample").run()
    at.switch_page(MONITOR).run()
    no_exception(at)
    assert not [e.value for e in at.error if "column" in e.value]
    assert len(_table(at, "observable_from")) == len(kept)


def test_a_run_deleted_since_it_scored_can_still_be_monitored(trained, tmp_path):
    at, tmp = trained
    _record(at.switch_page(AT_RISK).run())  # at least one scoring recorded
    folder = tmp / "workspace" / "runs" / RUN
    shutil.move(folder, tmp_path / RUN)
    try:
        fresh = AppTest.from_file(APP, default_timeout=TIMEOUT)
        fresh.switch_page(MONITOR).run()
        no_exception(fresh)
        assert "Load the newer data on the Data page" in texts(fresh)  # no table on screen yet
        fresh.switch_page("pages/data.py").run()  # the sample
        fresh.switch_page(MONITOR).run()
        no_exception(fresh)
        assert not fresh.error, [e.value for e in fresh.error]
        assert "deleted from the workspace" in texts(fresh)
        assert "the score's drift needs its model" in texts(fresh)
        assert len(_table(fresh, "observable_from")) == len(_history(tmp))
        assert _table(fresh, "psi")["band"].notna().all()
    finally:
        shutil.move(tmp_path / RUN, folder)
