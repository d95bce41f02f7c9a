"""Campaigns ranked by expected net value (retention_core.campaign and the at-risk list's ``expected_value`` method),
against hand computations."""
from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from retention_core.campaign import (DEFAULT_COST, DEFAULT_SAVE_RATE, EXPLANATION, Assumptions, best_point,
                                     campaign_curve, campaign_export, campaign_figure, campaign_plan,
                                     expected_net_value, expected_value_table)
from retention_core.errors import ConfigError
from retention_core.scoring import METHODS, at_risk_list, scores_table

P = np.array([0.5, 0.2, 0.9, 0.6])
VALUE = np.array([100.0, 1000.0, 10.0, np.nan])  # a missing value counts as 0


def _scored():
    scores = scores_table(["a", "b", "c", "d"], P)
    frame = pd.DataFrame({"user_id": ["a", "b", "c", "d"], "revenue_365d": VALUE, "country": ["FR", "FR", "DE", "DE"]})
    return scores, frame


def test_expected_net_value_by_hand():
    env = expected_net_value(P, VALUE, save_rate=0.1, cost_per_contact=1.0)
    np.testing.assert_allclose(env, [0.5 * 100 * 0.1 - 1, 0.2 * 1000 * 0.1 - 1, 0.9 * 10 * 0.1 - 1, -1.0])
    assert DEFAULT_SAVE_RATE == 0.10 and DEFAULT_COST == 1.0
    assert "save rate" in EXPLANATION and "cost per contact" in EXPLANATION


def test_curve_and_best_point_by_hand():
    curve = campaign_curve([4.0, 19.0, -0.1, -1.0])
    assert curve["contacted"].tolist() == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(curve["expected_net_value"], [0, 19, 23, 22.9, 21.9])
    assert best_point(curve) == {"contacted": 2, "expected_net_value": 23.0}
    assert best_point(campaign_curve([-1.0, -2.0])) == {"contacted": 0, "expected_net_value": 0.0}


def test_at_risk_list_ranked_by_expected_value():
    scores, frame = _scored()
    assert "expected_value" in METHODS
    out = at_risk_list(scores, frame, method="expected_value", save_rate=0.1, cost_per_contact=1.0)
    assert out["user_id"].tolist() == ["b", "a"]  # worth contacting: 19.0, then 4.0; c (-0.1) and d (-1) are not
    np.testing.assert_allclose(out["expected_net_value"], [19.0, 4.0])
    assert out["save_rate"].eq(0.1).all() and out["cost_per_contact"].eq(1.0).all()
    assert out["value_basis"].eq("revenue_365d").all()
    assert out.attrs["assumptions"]["save_rate"] == 0.1
    top3 = at_risk_list(scores, frame, method="expected_value", k=3, save_rate=0.1, cost_per_contact=1.0)
    assert top3["user_id"].tolist() == ["b", "a", "c"]  # K asked for: the best K, even below zero
    paid = at_risk_list(scores, frame, method="expected_value", budget=1.5, save_rate=0.1, cost_per_contact=1.0)
    assert paid["user_id"].tolist() == ["b"]
    fr = at_risk_list(scores, frame, method="expected_value", segment_filter={"country": "DE"}, save_rate=0.5,
                      cost_per_contact=1.0)
    assert fr["user_id"].tolist() == ["c"]  # 0.9 * 10 * 0.5 - 1 = 3.5
    default = at_risk_list(scores, frame, method="expected_value")
    assert default["save_rate"].iloc[0] == DEFAULT_SAVE_RATE and default["cost_per_contact"].iloc[0] == DEFAULT_COST


@pytest.mark.parametrize("save_rate, cost", [(0, 1), (1.5, 1), (0.1, -1), ("x", 1), (float("nan"), 1)])
def test_bad_assumptions_are_config_errors(save_rate, cost):
    with pytest.raises(ConfigError):
        expected_net_value(P, VALUE, save_rate, cost)
    scores, frame = _scored()
    with pytest.raises(ConfigError):
        at_risk_list(scores, frame, method="expected_value", save_rate=save_rate, cost_per_contact=cost)


def test_export_carries_the_assumptions_and_is_formula_safe():
    scores, frame = _scored()
    frame["country"] = ["=cmd()", "FR", "DE", "DE"]
    out = at_risk_list(scores, frame, method="expected_value", save_rate=0.2, cost_per_contact=2.0)
    text = campaign_export(out).decode()
    back = pd.read_csv(io.StringIO(text))
    money = "(currency of the log)"  # the value is past revenue: amounts carry the log's currency
    assert {f"expected_net_value {money}", "save_rate", f"cost_per_contact {money}", "value_basis"} <= set(back.columns)
    assert back["save_rate"].eq(0.2).all() and back[f"cost_per_contact {money}"].eq(2.0).all()
    assert "'=cmd()" in text
    plain = out.drop(columns=["save_rate", "cost_per_contact", "value_basis"])
    plain.attrs["assumptions"] = {}
    with pytest.raises(ConfigError):
        campaign_export(plain)
    assert "save_rate" in campaign_export(plain, Assumptions(0.3, 1.0, "revenue_365d")).decode()


def test_plan_table_and_figure():
    scores, frame = _scored()
    curve, summary = campaign_plan(scores, frame, save_rate=0.1, cost_per_contact=1.0)
    assert summary["contacted"] == 2 and summary["expected_net_value"] == pytest.approx(23.0)
    assert summary["everyone"] == pytest.approx(21.9) and summary["value_basis"] == "revenue_365d"
    table = expected_value_table(scores, np.nan_to_num(VALUE), Assumptions(0.1, 1.0))
    assert table["user_id"].tolist() == ["b", "a", "c", "d"]
    fig = campaign_figure(curve)
    assert len(fig.data) == 2 and fig.data[1].x[0] == 2 and "best: 2 users" in fig.data[1].text[0]
    no_value, s2 = campaign_plan(scores, None)  # no value column: one per user, nobody is worth 1.0 a contact
    assert s2["contacted"] == 0 and s2["value_basis"] is None
