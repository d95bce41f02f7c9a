"""At-risk and Models pages through AppTest: a fast run trained inline on the sample, then listed, exported, opened,
compared, used to score an uploaded file, refused when tampered with, and deleted."""
from __future__ import annotations

import io
import shutil
from datetime import date

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from retention_core.export import export_csv_bytes
from ui.state import Key, widget_key

from tests.app.helpers import APP, ROOT, TIMEOUT, sample_run_in
from tests.app.helpers import button as _button
from tests.app.helpers import at_risk_list as _list, env as _env, table as _table
from tests.app.helpers import no_exception as _ok

SAMPLE = ROOT / "assets" / "sample_events.csv.gz"
RUN = "fast run"


def _errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def _k(*parts) -> str:
    return widget_key(Key.W_AT_RISK, *parts)


def _m(*parts) -> str:
    return widget_key(Key.W_MODELS, *parts)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The sample dataset built on the Data page, the fast models trained inline into a temporary workspace."""
    with sample_run_in(tmp_path_factory, "atrisk", RUN) as (at, tmp):
        yield at, tmp


def test_pages_render_with_no_run(tmp_path, monkeypatch):
    _env(monkeypatch, tmp_path)
    for page in ("pages/at_risk.py", "pages/models.py"):
        at = AppTest.from_file(APP, default_timeout=TIMEOUT)
        at.switch_page(page).run()
        _ok(at)
        assert not at.error
    assert not (tmp_path / "workspace").exists(), "looking for runs never creates a workspace"


def test_at_risk_lists_users_by_threshold_and_top_k(trained):
    at, tmp = trained
    at.switch_page("pages/at_risk.py").run()
    _ok(at)
    assert not at.error, _errors(at)
    run = at.session_state[str(Key.RUNS)][RUN]
    model = run.best
    # by threshold (the run's threshold; a choice, not the default): everyone at or above it, most at risk first,
    # with reasons, among everyone scored
    at.segmented_control(key=_k(RUN, "audience")).set_value("all").run()
    at.segmented_control(key=_k(RUN, model, "method")).set_value("threshold").run()
    _ok(at)
    listed = _list(at)
    assert list(listed.columns[:4]) == ["user_id", "churn_probability", "risk_decile", "rank"]
    assert {"country", "reason_1", "reason_2", "reason_3", "value", "value_at_risk", "threshold", "model",
            "scoring_date"} <= set(listed.columns)
    thr = float(listed["threshold"].iloc[0])
    assert len(listed) > 0 and (listed["churn_probability"] >= thr).all()
    assert listed["rank"].is_monotonic_increasing and (listed["model"] == model).all()
    assert listed["reason_1"].astype(str).str.len().gt(0).any()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Users selected"] == f"{len(listed):,}"
    assert "Expected churners among them" in metrics
    assert any(k.startswith("Value at risk (") for k in metrics), metrics  # the amount says its unit
    assert at.get("download_button"), "the CSV download"

    # top-K: exactly K users
    at.segmented_control(key=_k(RUN, model, "method")).set_value("top_k").run()
    _ok(at)
    at.number_input(key=_k(RUN, model, "top_k")).set_value(25).run()
    _ok(at)
    top = _list(at)
    assert len(top) == 25 and top["rank"].tolist() == list(range(1, 26))
    assert not at.error, _errors(at)

    # a segment filter narrows the list to one country
    country = str(top["country"].iloc[0])
    at.multiselect(key=_k(RUN, "segment", "country")).set_value([country]).run()
    _ok(at)
    seg = _list(at)
    assert len(seg) == 25 and (seg["country"].astype(str) == country).all()

    # the download bytes (AppTest cannot read them): formula-safe, numbers stay numbers
    data = export_csv_bytes(seg)
    back = pd.read_csv(io.BytesIO(data))
    assert back["churn_probability"].tolist() == pytest.approx(seg["churn_probability"].tolist())
    assert len(back) == 25

    # budget and value at risk
    at.segmented_control(key=_k(RUN, model, "method")).set_value("budget").run()
    at.number_input(key=_k(RUN, model, "budget")).set_value(30.0).run()
    at.number_input(key=_k(RUN, model, "cost")).set_value(2.0).run()
    _ok(at)
    assert len(_list(at)) == 15
    at.segmented_control(key=_k(RUN, model, "method")).set_value("value").run()
    _ok(at)
    val = _list(at)
    assert val["value_at_risk"].is_monotonic_decreasing and not at.error

    # trying ways to choose, segments and as-of dates keeps nothing in the scoring history: only a download or the
    # analyst's explicit request records a scoring
    at.date_input(key=_k(RUN, "as_of")).set_value(date(2024, 9, 1)).run()
    at.date_input(key=_k(RUN, "as_of")).set_value(None).run()
    _ok(at)
    assert not (tmp / "workspace" / "history.duckdb").exists(), "nothing recorded without a download or a request"
    assert any(b.label == "Record this scoring for monitoring" for b in at.button)


def test_at_risk_scores_the_validation_users(trained):
    at, _ = trained
    at.switch_page("pages/at_risk.py").run()
    at.radio(key=_k(RUN, "source")).set_value("validation").run()
    _ok(at)
    assert not at.error, _errors(at)
    assert len(_list(at)) > 0


def test_models_page_lists_opens_compares_and_scores_a_file(trained):
    at, tmp = trained
    at.switch_page("pages/models.py").run()
    _ok(at)
    assert not at.error, _errors(at)
    assert RUN in _table(at, "status")["run"].tolist()
    at.session_state[str(Key.ACTIVE_RUN)] = None
    at.selectbox(key=_m("open")).set_value(RUN)
    _button(at, "Open").click().run()
    _ok(at)
    assert at.session_state[str(Key.ACTIVE_RUN)] == RUN
    assert any("is open and active" in s.value for s in at.success)
    assert _table(at, "best model")["run"].tolist() == [RUN]
    # score a newly uploaded file with the saved run
    at.file_uploader(key=_m("score", "file")).set_value(("new_events.csv.gz", SAMPLE.read_bytes(),
                                                         "application/gzip"))
    at.run()
    _ok(at)
    assert not at.error, _errors(at)
    scored = _list(at)
    assert len(scored) > 100 and scored["rank"].tolist() == list(range(1, len(scored) + 1))
    assert any(b.label == "Download the scores (CSV)" for b in at.get("download_button"))
    # the command that serves the chosen run over HTTP
    at.selectbox(key=_m("serve")).set_value(RUN).run()
    command = next(c.value for c in at.code if "retention_core serve" in c.value)
    assert command.startswith("python -m retention_core serve ") and RUN.replace(" ", "") in command.replace(" ", "")
    assert command.endswith("--port 8000")


def test_tampered_run_is_refused_and_the_app_stays_usable(trained):
    at, tmp = trained
    runs = tmp / "workspace" / "runs"
    shutil.copytree(runs / RUN, runs / "tampered")
    f = runs / "tampered" / "run.json"
    f.write_text(f.read_text().replace('"best_model"', '"best_model" ', 1))
    at.switch_page("pages/models.py").run()
    _ok(at)
    assert "tampered" in _table(at, "status")["run"].tolist()
    at.selectbox(key=_m("open")).set_value("tampered")
    _button(at, "Open").click().run()
    _ok(at)
    assert any("changed" in e for e in _errors(at)), _errors(at)
    assert at.session_state[str(Key.ACTIVE_RUN)] == RUN  # the good run stays active
    # comparing still shows the good run, with an error for the tampered one
    at.multiselect(key=_m("compare")).set_value([RUN, "tampered"]).run()
    _ok(at)
    assert _table(at, "best model")["run"].tolist() == [RUN]
    assert any("changed" in e for e in _errors(at))
    # the other pages keep working
    at.switch_page("pages/at_risk.py").run()
    _ok(at)
    assert not at.error, _errors(at)


def test_delete_a_run_with_confirmation(trained):
    at, tmp = trained
    runs = tmp / "workspace" / "runs"
    shutil.copytree(runs / RUN, runs / "spare")
    at.switch_page("pages/models.py").run()
    at.selectbox(key=_m("delete")).set_value("spare").run()
    _ok(at)
    assert _button(at, "Delete").disabled, "nothing is deleted before the analyst confirms"
    at.checkbox(key=_m("delete", "confirm", "spare")).check().run()
    _button(at, "Delete").click().run()
    _ok(at)
    assert not (runs / "spare").exists()
    assert any("was deleted" in s.value for s in at.success)
    assert "spare" not in _table(at, "status")["run"].tolist()
    assert RUN in _table(at, "status")["run"].tolist() and (runs / RUN).is_dir()
