"""The Train page's settings search: its budget in the form (the library's default for the Auto models, none for a
hand-picked set), and the leaderboard of a searched run showing the defaults' figure beside the tuned one."""
from __future__ import annotations

import json

from streamlit.testing.v1 import AppTest

from retention_core.models.tuning import DEFAULT_BUDGET
from tests.app.helpers import APP, TIMEOUT, button, env, no_exception, texts
from ui.state import Key, widget_key

LABEL = "Settings search (seconds)"


def _budget(at: AppTest):
    return next(n for n in at.number_input if n.label == LABEL)


def test_the_budget_is_offered_and_a_searched_run_shows_tuned_against_default(tmp_path, monkeypatch):
    env(monkeypatch, tmp_path)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    button(at, "Build dataset").click().run()
    at.switch_page("pages/train.py").run()
    no_exception(at)
    assert _budget(at).value == DEFAULT_BUDGET  # the Auto models: searched by default
    button(at, "Fast").click().run()
    assert _budget(at).value == 0  # a hand-picked set: the fixed defaults unless asked
    _budget(at).set_value(3)
    at.text_input(key=widget_key(Key.W_TRAIN, "name")).set_value("searched")
    button(at, "Train models").click().run()
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    assert "Run 'searched' trained" in texts(at)
    board = next(d.value for d in at.dataframe if "default_roc_auc" in d.value.columns)
    assert set(board.loc[board["label"] == "Logistic regression", "tuned"]) <= {"yes", "no"}
    metrics = json.loads((tmp_path / "workspace" / "runs" / "searched" / "metrics.json").read_text())
    assert metrics["tuning"]["budget_seconds"] == 3 and "logreg" in metrics["tuning"]["models"]
