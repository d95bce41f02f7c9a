"""Segments on hand-made tables with known answers: RFM, risk deciles and tiers, buyer type, custom filters, the
segment table and the segment x feature heatmap data."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retention_core import plots, segments
from retention_core.errors import ConfigError


@pytest.fixture
def five() -> pd.DataFrame:
    # one user per quintile of each measure, so the scores are the ranks
    return pd.DataFrame({
        "user_id": ["A", "B", "C", "D", "E"],
        "recency_days": [1.0, 10.0, 30.0, 200.0, 400.0],   # R 5 4 3 2 1
        "orders_365d": [1.0, 5.0, 3.0, 4.0, 2.0],          # F 1 5 3 4 2
        "revenue_365d": [10.0, 500.0, 300.0, 400.0, 20.0],  # M 1 5 3 4 2
        "orders_total": [9.0, 9.0, 9.0, 9.0, 9.0],
        "revenue_total": [1.0, 2.0, 3.0, 4.0, 5.0],
    })


def test_rfm_scores_on_a_hand_example(five):
    sc = segments.rfm_scores(five)
    assert sc["R"].tolist() == [5, 4, 3, 2, 1]
    assert sc["F"].tolist() == [1, 5, 3, 4, 2]
    assert sc["M"].tolist() == [1, 5, 3, 4, 2]
    assert sc["rfm"].tolist() == ["511", "455", "333", "244", "122"]
    assert sc.attrs["columns"] == {"recency": "recency_days", "frequency": "orders_365d", "monetary": "revenue_365d"}


def test_rfm_segments_on_a_hand_example(five):
    seg = segments.rfm_segments(five)
    assert seg.tolist() == ["new customers", "loyal", "need attention", "at risk", "hibernating"]
    assert list(seg.cat.categories) == segments.RFM_SEGMENT_ORDER


def test_equal_values_share_a_score_and_totals_are_the_fallback(five):
    sc = segments.rfm_scores(five.drop(columns=["orders_365d", "revenue_365d"]))
    assert sc.attrs["columns"]["frequency"] == "orders_total"
    assert sc["F"].nunique() == 1  # every user has 9 orders: same score
    assert sc["M"].tolist() == [1, 2, 3, 4, 5]


def test_rfm_rules_cover_every_score_pair_once():
    r, fm = np.meshgrid(np.arange(1, 6), np.arange(1, 6))
    names = segments.rfm_names(r.ravel(), fm.ravel())
    assert set(names) == set(segments.RFM_SEGMENT_ORDER)  # all 11 groups reachable
    lookup = dict(zip(zip(r.ravel(), fm.ravel()), names))
    assert lookup[(5, 5)] == "champions" and lookup[(1, 1)] == "lost" and lookup[(2, 1)] == "hibernating"
    assert lookup[(1, 5)] == "can't lose them" and lookup[(5, 1)] == "new customers" and lookup[(4, 1)] == "promising"
    rules = segments.rfm_rules()
    assert rules["segment"].tolist() == segments.RFM_SEGMENT_ORDER
    assert {"recency_score", "frequency_monetary_score", "who", "action"} <= set(rules.columns)


def test_rfm_without_the_columns_says_what_is_missing():
    with pytest.raises(ConfigError, match="recency"):
        segments.rfm_segments(pd.DataFrame({"orders_total": [1, 2]}))
    with pytest.raises(ConfigError, match="'nope'"):
        segments.rfm_scores(pd.DataFrame({"recency_days": [1, 2], "orders_total": [1, 2], "revenue_total": [1, 2]}),
                            monetary="nope")


def test_risk_deciles_and_tiers():
    p = np.linspace(0.01, 0.99, 20)  # the last users are the most at risk
    d = segments.risk_deciles(p)
    assert d.iloc[-1] == 1 and d.iloc[-2] == 1 and d.iloc[0] == 10
    assert d.value_counts().eq(2).all()
    t = segments.risk_tiers(p)
    assert t.value_counts().to_dict() == {"high": 4, "medium": 6, "low": 10}
    assert t.iloc[-1] == "high" and t.iloc[0] == "low"
    with_nan = segments.risk_deciles([0.5, np.nan, 0.2])
    assert pd.isna(with_nan.iloc[1]) and with_nan.iloc[0] == 1
    assert segments.decile_segments(p).iloc[-1] == "decile 1"
    with pytest.raises(ConfigError):
        segments.risk_tiers(p, high=5, medium=3)


def test_one_time_vs_repeat_buyers():
    f = pd.DataFrame({"repeat_purchases": [0, 3, np.nan, 0, 1]})
    b = segments.buyer_type(f)
    assert b.tolist()[:2] == ["one-time", "repeat"] and pd.isna(b.iloc[2])
    assert (b == "one-time").sum() == 2
    with pytest.raises(ConfigError, match="repeat_purchases"):
        segments.buyer_type(pd.DataFrame({"x": [1]}))


def test_custom_filter_ops():
    f = pd.DataFrame({"country": ["DE", "FR", "US", None, "DE"], "recency_days": [5.0, 40.0, 90.0, 10.0, np.nan]})
    m = lambda *c, **kw: segments.filter_mask(f, list(c), **kw).tolist()  # noqa: E731
    assert m(("country", "==", "DE")) == [True, False, False, False, True]
    assert m(("country", "!=", "DE")) == [False, True, True, False, False]  # missing never matches
    assert m(("recency_days", "<", "40")) == [True, False, False, True, False]  # "40" is read as a number
    assert m(("recency_days", "<=", 40)) == [True, True, False, True, False]
    assert m(("recency_days", ">", 40)) == [False, False, True, False, False]
    assert m(("recency_days", ">=", 40)) == [False, True, True, False, False]
    assert m(("country", "in", ["DE", "US"])) == [True, False, True, False, True]
    assert m(("recency_days", "between", [10, 40])) == [False, True, False, True, False]
    assert m(("country", "==", "DE"), ("recency_days", "<", 30)) == [True, False, False, False, False]
    assert m(("country", "==", "US"), ("recency_days", "<", 30), combine="any") == [True, False, True, True, False]
    cond = segments.Condition.from_text("recency_days", "between", "10 and 40")
    assert m(cond) == [False, True, False, True, False]
    assert segments.Condition.from_text("country", "in", "DE, US").value == ["DE", "US"]
    seg = segments.custom_segments(f, [("country", "==", "DE")])
    assert seg.tolist() == ["in the filter", "everyone else", "everyone else", "everyone else", "in the filter"]


@pytest.mark.parametrize("cond, message", [
    (("plan", "==", "pro"), "'plan'"),
    (("country", "~", "DE"), "'~'"),
    (("recency_days", "<", "soon"), "'soon'"),
    (("recency_days", "between", [1]), "two bounds"),
    (("country", "in", "DE"), "list of values"),
])
def test_custom_filter_errors_quote_the_value(cond, message):
    f = pd.DataFrame({"country": ["DE"], "recency_days": [5.0]})
    with pytest.raises(ConfigError, match=message):
        segments.filter_mask(f, [cond])


def test_attribute_segments_group_rare_values_and_band_numbers():
    f = pd.DataFrame({"country": ["DE"] * 5 + ["FR"] * 3 + ["US", "IT", None], "spend": np.arange(11.0)})
    s = segments.attribute_segments(f, "country", max_segments=3)
    assert s.value_counts().to_dict() == {"DE": 5, "FR": 3, "(other)": 2, "(missing)": 1}
    bands = segments.attribute_segments(f, "spend", max_segments=4, bins=2)
    assert bands.nunique() == 2 and bands.iloc[0] == "0-5"


def _table_data(n_big: int = 200, n_small: int = 6):
    rng = np.random.default_rng(0)
    n = n_big + n_small
    p = rng.random(n)
    y = (rng.random(n) < p).astype(float)
    frame = pd.DataFrame({"plan": ["basic"] * n_big + ["vip"] * n_small})
    shap = pd.DataFrame({"recency_days": rng.normal(0, 1, n), "orders_total": rng.normal(0, 0.5, n),
                         "country": rng.normal(0, 0.2, n)})
    shap.loc[n_big:, "orders_total"] *= 8  # orders weigh far more for VIPs
    return frame, y, p, shap


def test_segment_table_marks_a_tiny_segment_unreliable():
    frame, y, p, shap = _table_data()
    t = segments.segment_table(frame, y, p, shap, "plan")
    assert t["segment"].tolist() == ["basic", "vip"]
    reliable = t.set_index("segment")["reliable"]
    assert not bool(reliable["vip"]) and bool(reliable["basic"])  # marked, not hidden
    assert {"users", "share", "churn_rate", "mean_predicted", "roc_auc", "recall_top10", "reliable",
            "explained_users", "top_drivers"} <= set(t.columns)
    assert t["users"].sum() == len(frame) and t["share"].sum() == pytest.approx(1.0)
    assert t.set_index("segment").loc["vip", "top_drivers"].startswith("Orders in total")
    # SHAP on a sample only: rows align by index
    part = segments.segment_table(frame, y, p, shap.iloc[::2], "plan")
    assert part["explained_users"].sum() == len(shap.iloc[::2])


def test_ordered_segments_keep_their_order():
    p = np.linspace(0, 1, 50)
    y = (p > 0.5).astype(float)
    seg = segments.risk_tiers(p)
    t = segments.segment_table(None, y, p, None, seg)
    assert t["segment"].tolist() == ["high", "medium", "low"]


def test_heatmap_data_shape_and_flags():
    frame, y, p, shap = _table_data()
    h = segments.segment_shap_heatmap_data(shap, frame["plan"])
    assert h.matrix.shape == (2, 3) and list(h.matrix.index) == ["basic", "vip"]
    assert set(h.matrix.columns) == {"recency_days", "orders_total", "country"}
    assert h.matrix.columns[0] == h.population.idxmax()  # most important first
    assert h.flags.loc["vip", "orders_total"]
    assert not h.flags.loc["basic"].any()  # the big segment is the population, nothing stands out
    assert h.users.to_dict() == {"basic": 200, "vip": 6}
    assert h.matrix.loc["vip", "orders_total"] == pytest.approx(
        shap.loc[200:, "orders_total"].abs().mean() - shap["orders_total"].abs().mean())
    r = segments.segment_shap_heatmap_data(shap, frame["plan"], how="ratio", max_features=2)
    assert r.matrix.shape == (2, 2) and r.matrix.loc["vip", "orders_total"] > 3
    assert h.labels["orders_total"] == "Orders in total"
    with pytest.raises(ConfigError):
        segments.segment_shap_heatmap_data(shap, frame["plan"], how="sum")
    fig = plots.segment_heatmap(h.matrix, flags=h.flags, labels=h.labels, users=h.users)
    assert "★" in "".join("".join(row) for row in fig.data[0].text)


def test_make_segments_dispatches_and_explains_errors(five):
    assert segments.make_segments(five, "rfm").iloc[0] == "new customers"
    assert segments.make_segments(five, "risk_tier", p=[0.9, 0.1, 0.2, 0.3, 0.4]).iloc[0] == "high"
    with pytest.raises(ConfigError, match="attribute"):
        segments.make_segments(five, "attribute")
    with pytest.raises(ConfigError, match="'colour'"):
        segments.make_segments(five, "colour")


def test_segments_too_small_to_judge_are_grouped_as_other():
    """Two or more segments too small to judge (under 30 users, or under 5 churners or retained users) merge into
    one "Other" segment, last; the judged ones keep their names and order; a single small segment is kept."""
    rng = np.random.default_rng(0)
    names = ["UK"] * 400 + ["DE"] * 60 + ["FR"] * 10 + ["ES"] * 8 + ["IT"] * 5
    labels = pd.Series(pd.Categorical(names, categories=["UK", "DE", "FR", "ES", "IT"], ordered=True), name="country")
    y = rng.integers(0, 2, len(names)).astype(float)
    out = segments.group_small(labels, y)
    assert list(out.cat.categories) == ["UK", "DE", "Other"]
    assert out.value_counts().to_dict() == {"UK": 400, "DE": 60, "Other": 23}
    assert out.attrs["grouped"] == ["FR", "ES", "IT"]
    one = labels.cat.remove_categories(["ES", "IT"]).fillna("FR")
    assert segments.group_small(one, y) is one  # only FR is small: kept under its own name
    rare = pd.Series(pd.Categorical(names[:-5] + ["(other)"] * 5), name="country")  # an attribute's rare values
    assert "(other)" not in set(segments.group_small(rare, y).astype(str))  # one "Other", not two
    assert segments.has_rfm(pd.DataFrame(columns=["recency_days", "orders_365d", "revenue_365d"]))
    assert not segments.has_rfm(pd.DataFrame(columns=["country", "tenure"]))
