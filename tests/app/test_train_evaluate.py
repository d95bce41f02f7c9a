"""Train and Evaluate pages through AppTest: train fast models inline, save the run, move the threshold."""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from retention_core import evaluation
from retention_core.dataset import Dataset
from retention_core.roles import Schema
from ui.state import DatasetInfo, Key, schema_json, widget_key

from tests.app.helpers import APP, TIMEOUT, sample_run_in
from tests.app.helpers import button as _button
from tests.app.helpers import env as _env
from tests.app.helpers import no_exception as _ok
from tests.app.helpers import texts as _texts
from tests.app.helpers import train_fast as _train

RUN = "fast run"


def _cards(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The sample dataset built on the Data page, the fast models trained inline into a temporary workspace."""
    with sample_run_in(tmp_path_factory, "train", RUN) as (at, tmp):
        yield at, tmp


def test_pages_render_with_no_run(tmp_path, monkeypatch):
    _env(monkeypatch, tmp_path)
    for page in ("pages/train.py", "pages/evaluate.py"):
        at = AppTest.from_file(APP, default_timeout=TIMEOUT)
        at.switch_page(page).run()
        _ok(at)
        assert not at.error
        assert "Data page first" in _texts(at)
    assert not (tmp_path / "workspace").exists(), "looking for runs never creates a workspace"


def test_training_shows_the_leaderboard_and_saves_the_run(trained):
    at, tmp = trained
    assert not at.error, [e.value for e in at.error]
    text = _texts(at)
    assert f"Run '{RUN}' trained" in text
    assert "time split" in text  # the validation scheme
    assert "measured before the refit" in text and "refitted on" in text  # the saved models learned from more
    board = at.dataframe[-1].value
    assert set(board["label"]) == {"Recency rule", "Logistic regression"}
    assert {"roc_auc", "pr_auc", "f1"} <= set(board.columns)
    assert at.get("plotly_chart"), "the leaderboard chart"
    folder = tmp / "workspace" / "runs" / RUN
    assert (folder / "manifest.json").is_file() and (folder / "validation.parquet").is_file()
    assert at.session_state[str(Key.ACTIVE_RUN)] == RUN
    assert RUN in at.session_state[str(Key.RUNS)]
    assert at.session_state[str(Key.TRAIN_JOB)].error is None


def test_evaluate_threshold_by_value_top_k_and_profit(trained):
    at, tmp = trained
    at.switch_page("pages/evaluate.py").run()
    _ok(at)
    assert not at.error, [e.value for e in at.error]
    assert at.selectbox(key=widget_key(Key.W_EVAL, "run")).value == RUN
    model = at.selectbox(key=widget_key(Key.W_EVAL, RUN, "model")).value
    assert model == at.session_state[str(Key.RUNS)][RUN].best
    assert len(at.get("plotly_chart")) >= 7  # confusion, threshold, ROC, PR, calibration, lift, gains, segments
    before = _cards(at)
    assert set(before) >= {"ROC-AUC", "PR-AUC", "Accuracy", "Precision", "Recall", "F1"}
    assert "refitted on" in _texts(at)

    # by value
    at.slider(key=widget_key(Key.W_EVAL, RUN, model, "value")).set_value(0.9).run()
    _ok(at)
    after = _cards(at)
    assert after["ROC-AUC"] == before["ROC-AUC"]
    assert after["Recall"] != before["Recall"]
    choice = at.session_state[str(Key.THRESHOLDS)][RUN]
    assert choice.model == model and choice.thresholds[model] == pytest.approx(0.9)

    val = pd.read_parquet(tmp / "workspace" / "runs" / RUN / "validation.parquet")
    y, p = val["churned"].to_numpy(float), val[f"p:{model}"].to_numpy(float)

    # by top K
    at.get("button_group")[0].set_value("top_k").run()
    _ok(at)
    at.number_input(key=widget_key(Key.W_EVAL, RUN, model, "topk")).set_value(50).run()
    _ok(at)
    thr = at.session_state[str(Key.THRESHOLDS)][RUN].thresholds[model]
    assert thr == pytest.approx(evaluation.threshold_for_top_k(p, 50))
    assert "flags **50**" in _texts(at)
    assert _cards(at)["Precision"] != after["Precision"]

    # by expected profit
    at.get("button_group")[0].set_value("profit").run()
    _ok(at)
    at.number_input(key=widget_key(Key.W_EVAL, RUN, model, "cost")).set_value(10.0).run()
    _ok(at)
    choice = at.session_state[str(Key.THRESHOLDS)][RUN]
    best = evaluation.best_profit_threshold(y, p, cost_per_contact=10.0, value_retained=50.0, save_rate=0.2)
    assert choice.how == "profit" and choice.thresholds[model] == pytest.approx(best)
    assert "Best expected profit" in _texts(at)


def test_a_saved_run_opens_in_a_new_session(trained):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page("pages/evaluate.py").run()
    _ok(at)
    assert not at.error, [e.value for e in at.error]
    assert at.selectbox(key=widget_key(Key.W_EVAL, "run")).value == RUN
    assert RUN in at.session_state[str(Key.RUNS)]
    assert at.metric, "the metric cards of the saved run"


def _one_class_dataset(n: int = 120) -> tuple[Dataset, DatasetInfo]:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"user_id": [f"U{i}" for i in range(n)], "churned": 0.0,
                          "recency_days": rng.integers(1, 300, n).astype(float), "orders": rng.poisson(3, n) * 1.0})
    ds = Dataset(frame, ["recency_days", "orders"], [], None, [], {}, "users")
    schema = Schema("users", {"user_id": "user_id", "label": "churned"}, label_positive=1)
    return ds, DatasetInfo("one-class", "one class table", schema_json(schema), {}, "users")


def test_a_failing_training_shows_an_error_and_the_app_stays_usable(tmp_path, monkeypatch):
    _env(monkeypatch, tmp_path)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    ds, info = _one_class_dataset()
    at.session_state[str(Key.DATASET)] = ds
    at.session_state[str(Key.DATASET_INFO)] = info
    _train(at, "doomed")
    assert at.error, "the failure is shown"
    assert "both classes are needed" in " ".join(e.value for e in at.error)
    assert str(Key.RUNS) not in at.session_state or not at.session_state[str(Key.RUNS)]
    assert _button(at, "Train models")  # the form is still there
    at.switch_page("pages/evaluate.py").run()
    _ok(at)
    at.switch_page("pages/data.py").run()
    _ok(at)


def _small_user_dataset(n: int = 240) -> tuple[Dataset, DatasetInfo]:
    rng = np.random.default_rng(0)
    recency = rng.integers(1, 300, n).astype(float)
    orders = rng.poisson(3, n).astype(float)
    churned = (recency / 300 + rng.normal(0, 0.3, n) > 0.5).astype(float)
    frame = pd.DataFrame({"user_id": [f"U{i}" for i in range(n)], "churned": churned, "recency_days": recency,
                          "orders": orders, "plan": rng.choice(["basic", "pro"], n)})
    ds = Dataset(frame, ["recency_days", "orders"], ["plan"], None, [], {}, "users")
    schema = Schema("users", {"user_id": "user_id", "label": "churned"}, label_positive=1)
    return ds, DatasetInfo("small-users", "small user table", schema_json(schema), {}, "users")


def test_training_in_the_background_keeps_the_app_usable(tmp_path, monkeypatch):
    _env(monkeypatch, tmp_path)
    monkeypatch.delenv("RETENTION_SYNC_TRAINING")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    ds, info = _small_user_dataset()
    at.session_state[str(Key.DATASET)] = ds
    at.session_state[str(Key.DATASET_INFO)] = info
    at.switch_page("pages/train.py").run()
    _ok(at)
    _button(at, "Fast").click().run()
    at.number_input(key=widget_key(Key.W_TRAIN, "folds")).set_value(0)
    at.text_input(key=widget_key(Key.W_TRAIN, "name")).set_value("background")
    _button(at, "Train models").click().run()
    _ok(at)
    job = at.session_state[str(Key.TRAIN_JOB)]
    at.switch_page("pages/evaluate.py").run()  # another page works meanwhile
    _ok(at)
    deadline = time.monotonic() + 120
    while not job.done and time.monotonic() < deadline:
        time.sleep(0.2)
    assert job.done and job.error is None, job.error
    at.switch_page("pages/train.py").run()
    _ok(at)
    assert "Run 'background' trained" in _texts(at)
    assert "stratified holdout" in _texts(at)
    assert at.session_state[str(Key.ACTIVE_RUN)] == "background"
    assert (tmp_path / "workspace" / "runs" / "background" / "manifest.json").is_file()


def test_a_bad_run_name_is_refused(tmp_path, monkeypatch):
    _env(monkeypatch, tmp_path)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    ds, info = _small_user_dataset()
    at.session_state[str(Key.DATASET)] = ds
    at.session_state[str(Key.DATASET_INFO)] = info
    _train(at, "../escape")
    assert any("is not allowed" in e.value for e in at.error)
    assert str(Key.TRAIN_JOB) not in at.session_state


def test_one_snapshot_dataset_offers_a_rebuild_for_training(tmp_path, monkeypatch):
    _env(monkeypatch, tmp_path)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    key = at.session_state[str(Key.TABLE)].table_key
    at.number_input(key=widget_key(Key.W_BUILD, key, "snapshots")).set_value(1)
    _button(at, "Build dataset").click().run()
    _ok(at)
    at.switch_page("pages/train.py").run()
    _ok(at)
    assert any("Time-aware validation needs" in e.value for e in at.error)
    assert not any(b.label == "Train models" for b in at.button)
    _button(at, "Rebuild the dataset for training").click().run()
    _ok(at)
    assert not at.error, [e.value for e in at.error]
    ds = at.session_state[str(Key.DATASET)]
    assert ds.frame["snapshot_date"].nunique() >= 4
    assert _button(at, "Train models")


def test_a_user_table_is_offered_only_the_models_it_can_feed(tmp_path, monkeypatch):
    """The Train page offers what the library's rule allows (the one ``auto`` training applies) and says why the
    rest is missing."""
    from retention_core.training import unavailable_models

    _env(monkeypatch, tmp_path)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    ds, info = _small_user_dataset()
    at.session_state[str(Key.DATASET)] = ds
    at.session_state[str(Key.DATASET_INFO)] = info
    at.switch_page("pages/train.py").run()
    _ok(at)
    blocked = unavailable_models(ds.features, ds.kind)
    assert {"gru", "cnn", "transformer", "bgnbd"} <= set(blocked)
    chosen = at.multiselect(key=widget_key(Key.W_TRAIN, "models")).value
    assert chosen and not set(chosen) & set(blocked), chosen
    text = _texts(at)
    assert "Not available for this dataset" in text and "needs an event log (weekly activity)" in text
