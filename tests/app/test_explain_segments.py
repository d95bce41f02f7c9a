"""Explain and Segments pages through AppTest: a fast run trained inline on the sample, then explanations (computed
once and kept across pages), reasons for a searched user, segment tables for an attribute and RFM, and a drill-down."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from ui import cache
from ui.state import Key, widget_key

from tests.app.helpers import APP, TIMEOUT, sample_run
from tests.app.helpers import env as _env
from tests.app.helpers import texts as _texts

RUN = "insight run"
SAMPLE = 250


def _ok(at: AppTest) -> AppTest:
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    return at


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The sample dataset built on the Data page and the fast models trained inline into a temporary workspace;
    the insight pages explain a small sample to stay quick."""
    tmp = tmp_path_factory.mktemp("insight")
    with pytest.MonkeyPatch.context() as mp:
        _env(mp, tmp)
        at = _ok(sample_run(RUN))
        at.switch_page("pages/explain.py").run()
        _ok(at)
        at.selectbox(key=widget_key(Key.W_EXPLAIN, RUN, "sample")).set_value(SAMPLE).run()
        yield _ok(at)


@pytest.mark.parametrize("page", ["pages/explain.py", "pages/segments.py"])
def test_pages_render_with_no_run(tmp_path, monkeypatch, page):
    _env(monkeypatch, tmp_path)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page(page).run()
    _ok(at)
    assert "Data page first" in _texts(at)
    assert not (tmp_path / "workspace").exists(), "looking for runs never creates a workspace"


def test_explain_shows_importance_and_the_reasons_of_a_searched_user(trained):
    at = trained
    model = at.selectbox(key=widget_key(Key.W_EXPLAIN, RUN, "model")).value
    assert model == at.session_state[str(Key.RUNS)][RUN].best  # nothing chosen yet: the best model
    text = _texts(at)
    assert "What drives churn overall" in text and "Most important:" in text
    assert f"sample of {SAMPLE:,} of" in text  # the sample is said on screen
    assert len(at.get("plotly_chart")) >= 5  # importance, beeswarm, dependence, heatmap, waterfall
    path = at.session_state[str(Key.RUNS)][RUN].path
    user = str(pd.read_parquet(Path(path) / "validation.parquet")["user_id"].iloc[7])
    at.text_input(key=widget_key(Key.W_EXPLAIN, RUN, model, "user_search")).set_value(user).run()
    _ok(at)
    pick = at.selectbox(key=widget_key(Key.W_EXPLAIN, RUN, model, f"user_pick:{user}"))
    assert pick.value == 7
    assert "Reasons the risk is high" in _texts(at)
    reasons = [m.value for m in at.markdown if m.value.startswith("1. ")]
    assert reasons and "pts]" in reasons[0]
    assert any(m.label == "Churn probability" for m in at.metric)
    at.text_input(key=widget_key(Key.W_EXPLAIN, RUN, model, "user_search")).set_value("no such user").run()
    _ok(at)
    assert "No validation user matches" in _texts(at)


def test_switching_pages_does_not_recompute(trained):
    at = trained
    before = cache.EXPLAIN_COMPUTATIONS["count"]
    at.switch_page("pages/segments.py").run()
    _ok(at)
    at.switch_page("pages/evaluate.py").run()
    at.switch_page("pages/explain.py").run()
    _ok(at)
    assert cache.EXPLAIN_COMPUTATIONS["count"] == before
    assert at.selectbox(key=widget_key(Key.W_EXPLAIN, RUN, "sample")).value == SAMPLE  # the choice is kept


def test_segments_table_for_an_attribute_and_rfm_and_drill_down(trained):
    at = trained
    at.switch_page("pages/segments.py").run()
    _ok(at)
    # the page opens on RFM groups (an event log's run has recency, frequency and spend)
    assert at.get("button_group")[0].value == "rfm"
    rules, table = at.dataframe[0].value, at.dataframe[1].value
    assert "champions" in set(rules["segment"])
    assert set(table["segment"]) <= set(rules["segment"]) | {"Other"} and len(table) >= 3
    # segments too small to judge are grouped as "Other" (so at most one small segment is left, marked)
    assert (~table["reliable"].astype(str).eq("yes")).sum() <= 1
    assert "Segments side by side" in _texts(at)

    at.get("button_group")[0].set_value("attribute").run()
    _ok(at)
    table = at.dataframe[0].value
    assert {"segment", "users", "churn_rate", "mean_predicted", "roc_auc", "recall_top10", "reliable",
            "top_drivers"} <= set(table.columns)
    attr = at.selectbox(key=widget_key(Key.W_SEGMENTS, RUN, "attribute"))
    assert attr.value == "country" and "Country" in attr.options  # shown by its label, not its column name
    assert len(table) >= 2

    at.get("button_group")[0].set_value("rfm").run()
    _ok(at)
    table = at.dataframe[1].value

    drill = at.selectbox(key=widget_key(Key.W_SEGMENTS, RUN, "drill:rfm:None"))
    target = table["segment"].iloc[1]
    drill.set_value(target).run()
    _ok(at)
    assert "One segment in detail" in _texts(at)
    users = at.dataframe[-1].value
    assert len(users) == int(table.set_index("segment").loc[target, "users"])
    assert {m.label for m in at.metric} >= {"Users", "Churn rate", "ROC-AUC"}


def test_risk_tiers_and_a_custom_filter(trained):
    at = trained
    at.switch_page("pages/segments.py").run()
    at.get("button_group")[0].set_value("risk_tier").run()
    _ok(at)
    assert at.dataframe[0].value["segment"].tolist() == ["high", "medium", "low"]
    at.get("button_group")[0].set_value("custom").run()
    _ok(at)
    fk = lambda n: widget_key(Key.W_SEGMENTS, RUN, "filter", n)  # noqa: E731
    at.selectbox(key=fk("col0")).set_value("recency_days")
    at.selectbox(key=fk("op0")).set_value("<")
    at.text_input(key=fk("val0")).set_value("30")
    next(b for b in at.get("form_submit_button")).click()
    at.run()
    _ok(at)
    assert at.dataframe[0].value["segment"].tolist() == ["in the filter", "everyone else"]
    at.text_input(key=fk("val0")).set_value("soon")
    next(b for b in at.get("form_submit_button")).click()
    at.run()
    assert at.error and "'soon'" in at.error[0].value  # a bad value is explained, the page survives
    assert not at.exception
