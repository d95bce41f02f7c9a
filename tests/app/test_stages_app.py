"""Lifecycle stages and audiences in the app (AppTest, a fast run trained inline on the sample): At-risk opens on the
customers who can still be saved with a budget of the top 10% ranked by expected net value, offers the lapsed as a
win-back audience and the threshold as a choice; the stage rules are shown and editable, and editing them changes
the stages on At-risk and Segments."""
from __future__ import annotations

import math
import re

import pytest

from ui.state import Key, widget_key

from tests.app.helpers import at_risk_list, button, no_exception, sample_run_in, table, texts

RUN = "stage run"


def _k(*parts) -> str:
    return widget_key(Key.W_AT_RISK, *parts)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    with sample_run_in(tmp_path_factory, "stages", RUN) as (at, _):
        yield at


def _scored_users(at) -> int:
    m = re.search(r"([\d,]+) users scored", texts(at))
    assert m, "the page says how many users were scored"
    return int(m.group(1).replace(",", ""))


def _lapsed_among_everyone(at, model: str) -> int:
    """How many scored customers are lapsed: the win-back audience listed whole (top K = everyone)."""
    at.segmented_control(key=_k(RUN, "audience")).set_value("winback").run()
    at.segmented_control(key=_k(RUN, model, "method")).set_value("top_k").run()
    at.number_input(key=_k(RUN, model, "top_k")).set_value(_scored_users(at)).run()
    no_exception(at)
    listed = at_risk_list(at)
    assert (listed["stage"] == "lapsed").all()
    return len(listed)


def test_at_risk_opens_on_the_savable_customers_with_a_budget_of_ten_percent(trained):
    at = trained
    at.switch_page("pages/at_risk.py").run()
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    model = at.session_state[str(Key.RUNS)][RUN].best
    assert at.segmented_control(key=_k(RUN, "audience")).value == "saveable"
    assert at.segmented_control(key=_k(RUN, model, "method")).value == "contacts"
    n = _scored_users(at)
    assert at.number_input(key=_k(RUN, model, "contacts")).value == math.ceil(0.1 * n)
    listed = at_risk_list(at)
    assert len(listed) == math.ceil(0.1 * n) and "lapsed" not in set(listed["stage"])
    assert listed["expected_net_value"].is_monotonic_decreasing
    assert any("expected net value" in c.value for c in at.caption)
    assert at.get("plotly_chart"), "customers by stage and risk"
    # a count the analyst sets
    at.number_input(key=_k(RUN, model, "contacts")).set_value(12).run()
    assert len(at_risk_list(at)) == 12
    # the lapsed, a separate win-back audience
    at.segmented_control(key=_k(RUN, "audience")).set_value("winback").run()
    no_exception(at)
    back = at_risk_list(at)
    assert len(back) > 0 and (back["stage"] == "lapsed").all()
    # the threshold is still a choice
    at.segmented_control(key=_k(RUN, "audience")).set_value("saveable").run()
    at.segmented_control(key=_k(RUN, model, "method")).set_value("threshold").run()
    no_exception(at)
    above = at_risk_list(at)
    thr = float(above["threshold"].iloc[0])
    assert len(above) > 0 and (above["churn_probability"] >= thr).all() and "lapsed" not in set(above["stage"])


def test_editing_the_stage_rules_changes_the_stages(trained):
    at = trained
    at.switch_page("pages/at_risk.py").run()
    model = at.session_state[str(Key.RUNS)][RUN].best
    before = _lapsed_among_everyone(at, model)
    rules = {n.label: n for n in at.number_input}
    assert {"Lapsed after (usual gaps)", "Shop's long gap (percentile)"} <= set(rules)
    assert "3 x their usual gap" in texts(at)  # the rules in force, shown in words
    rules["Slipping after (usual gaps)"].set_value(1.0)
    rules["Lapsed after (usual gaps)"].set_value(1.5)
    rules["Shop's long gap (percentile)"].set_value(50)
    button(at, "Apply the rules").click().run()
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    after = _lapsed_among_everyone(at, model)
    assert after > before, (before, after)
    assert "1.5 x their usual gap" in texts(at)
    # the Segments page splits by stage with the same rules, and draws customers by stage and risk
    at.switch_page("pages/segments.py").run()
    at.segmented_control(key=widget_key(Key.W_SEGMENTS, RUN, "kind")).set_value("stage").run()
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    seg = table(at, "churn_rate")
    assert set(seg["segment"]) <= {"new", "active", "slipping", "lapsed"} and "lapsed" in set(seg["segment"])
    lapsed_validation = int(seg.set_index("segment").loc["lapsed", "users"])
    button(at, "Back to the defaults").click().run()
    no_exception(at)
    seg = table(at, "churn_rate")
    assert int(seg.set_index("segment").loc["lapsed", "users"]) < lapsed_validation
    assert at.get("plotly_chart")
