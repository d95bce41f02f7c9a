"""Uplift in the app through AppTest: a table with a treatment column offers uplift learners on the Train page, which
trains them inline and shows the leaderboard beside random and response targeting with the Qini chart; the At-risk
page ranks that run's customers by uplift; the pages about churn models say where to look at an uplift run."""
from __future__ import annotations

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.app.helpers import APP, TIMEOUT, button, env, no_exception, texts
from tests.core.test_uplift import planted
from ui.state import Key, widget_key

RUN = "planted uplift"


def _t(*parts) -> str:
    return widget_key(Key.W_TRAIN, "uplift", *parts)


def _r(*parts) -> str:
    return widget_key(Key.W_AT_RISK, "uplift", *parts)


def _upload(at: AppTest, name: str, data: bytes) -> AppTest:
    at.radio(key=widget_key(Key.W_SOURCE)).set_value("upload").run()
    at.get("file_uploader")[0].set_value((name, data, "text/csv"))
    return no_exception(at.run())


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The planted experiment uploaded, the Train page in uplift mode, three learners trained inline."""
    tmp = tmp_path_factory.mktemp("uplift_app")
    table = planted(3000, seed=2).drop(columns=["true_uplift", "customer_id"])
    with pytest.MonkeyPatch.context() as mp:
        env(mp, tmp)
        at = AppTest.from_file(APP, default_timeout=TIMEOUT)
        at.run()
        _upload(at, "test.csv", table.to_csv(index=False).encode())
        hint = texts(at)
        no_exception(at.switch_page("pages/train.py").run())
        yield at, table, hint


def test_the_train_page_offers_uplift_learners_and_shows_the_qini_chart(trained):
    at, _, hint = trained
    assert "Column **arm** looks like a randomised test (control: none" in hint  # said on the Data page
    assert at.get("button_group")[0].value == "uplift"  # no churn dataset was built: uplift comes first
    assert at.selectbox(key=_t(at.session_state[str(Key.TABLE)].table_key, "treatment")).value == "arm"
    assert at.selectbox(key=_t(at.session_state[str(Key.TABLE)].table_key, "outcome")).value == "visit"
    at.multiselect(key=_t("learners")).set_value(["two_model", "dr_learner", "class_transformation"])
    at.text_input(key=_t("name")).set_value(RUN)
    no_exception(button(at, "Train uplift models").click().run())
    assert not at.error, [e.value for e in at.error]
    run = at.session_state[str(Key.RUNS)][RUN]
    assert run.task == "uplift" and at.session_state[str(Key.ACTIVE_RUN)] == RUN
    board = next(d.value for d in at.dataframe if "qini_area" in d.value.columns)
    assert {"Random targeting", "Response targeting (P(outcome | treated))"} <= set(board["label"])
    assert board["label"].str.endswith("(best)").sum() == 1
    assert len(at.get("plotly_chart")) == 2  # the Qini chart and uplift by decile
    assert "treated: email; control: none" in texts(at)


def test_the_at_risk_page_ranks_the_run_by_uplift(trained):
    at, table, _ = trained
    no_exception(at.switch_page("pages/at_risk.py").run())
    assert not at.error, [e.value for e in at.error]
    assert "Persuadables (uplift > 0)" in [m.label for m in at.metric]
    shown = at.dataframe[-1].value
    assert list(shown.columns[:4]) == ["user_id", "uplift", "p_treated", "p_control"]
    assert len(shown) == 300 and shown["uplift"].is_monotonic_decreasing  # the top 10% by default
    # the planted effect: the customers ranked first are mostly on the 'gold' plan
    top = table.iloc[shown["user_id"].astype(int).to_numpy() - 1]
    assert (top["plan"] == "gold").mean() > 0.6
    name = at.session_state[str(Key.ACTIVE_RUN)]
    model = at.selectbox(key=widget_key(Key.W_EVAL, name, "model")).value
    at.selectbox(key=_r(name, model, "keep")).set_value("positive").run()
    no_exception(at)
    kept = at.dataframe[-1].value
    assert (kept["uplift"] > 0).all() and len(kept) > 300
    at.get("button_group")[0].set_value("p_treated").run()  # response targeting ranks differently
    no_exception(at)
    assert not np.array_equal(at.dataframe[-1].value["user_id"].head(50), kept["user_id"].head(50))


def test_churn_pages_point_to_where_an_uplift_run_is_read(trained):
    at, _, _ = trained
    for page in ("pages/evaluate.py", "pages/explain.py"):
        no_exception(at.switch_page(page).run())
        assert any("holds uplift learners" in str(i.value) for i in at.info), page


def test_no_uplift_choice_without_a_treatment_column(tmp_path, monkeypatch):
    env(monkeypatch, tmp_path)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    no_exception(at.switch_page("pages/train.py").run())
    assert not [g for g in at.get("button_group") if g.key == _t("mode")]
    assert "Uplift models" not in texts(at)
