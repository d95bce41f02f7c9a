"""The feature registry (``retention_core/feature_registry.py``): every column an event log's dataset holds has
exactly one definition, with its label, unit and reason wording; a new feature is one definition, which the DuckDB
and NumPy engines both compute from it, equal (the Spark engine: ``tests/spark/test_feature_registry.py``); the
explanations word features from their definitions.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retention_core import features, features_small
from retention_core.dataset import SnapshotConfig, build_dataset, data_end
from retention_core.events import CANONICAL, canonical_events
from retention_core.explain.wording import feature_label, feature_unit, grows_with_age, reason_texts, reason_theme
from retention_core.feature_expr import Ref, count, last, money, ratio
from retention_core.feature_registry import FEATURES, Feature, Reason, Registry
from retention_core.roles import infer_schema
from tests.core.test_features_small import differences

RETAIL = Path(__file__).resolve().parents[3] / "shared" / "data" / "online_retail_ii_2009_2010.parquet"

#: A toy registry: the product's features and three more, each one definition (a single column over two leaves, a
#: family over the configured windows, and a ratio of two other features placed after the attributes).
TOY = FEATURES.plus(
    Feature("spend_per_active_day_30d", ratio(money(last(30)), count("days", last(30))),
            "Spend per active day, last 30 days", "money", Reason("sentence", text="Spent {v} per active day"),
            "spend", needs="amount"),
    Feature("browsing_{w}d", lambda w: count("browsing", last(w)), "Browsing events in the last {w} days", "events",
            Reason("count", "browsing event", "browsing events", "in the last {w} days"), "browsing"),
    Feature("orders_per_tenure_week", ratio(Ref("orders_total") * 7.0, Ref("tenure_days") + 1), "Orders per week",
            "orders", Reason("sentence", text="{v} orders a week"), "frequency", after_attributes=True),
)


def _generated() -> pd.DataFrame:
    from assets.generator import generate_events

    raw = generate_events(300, seed=5, days=400)
    return canonical_events(raw, infer_schema(raw))


def _check_definitions(frame: pd.DataFrame, attributes: list[str]) -> None:
    columns = [c for c in frame.columns if c not in ("user_id", "snapshot_date", "churned") and c not in attributes]
    assert columns
    for c in columns:
        defining = [f.name for f in FEATURES.features if f.pattern().match(c)]
        assert len(defining) == 1, f"{c}: defined by {defining}"
        d = FEATURES.describe(c)
        assert d.label and d.unit and d.theme and d.reason is not None, c
        assert feature_label(c) == d.label and feature_unit(c) == d.unit and grows_with_age(c) == d.ages
        assert reason_texts(pd.Series({c: 5.0}), {c: 3.0}, {c: 4.0})[0].endswith("[+5 pts]"), c


def test_every_column_of_a_generated_log_has_one_definition():
    ev = _generated()
    ds = build_dataset(ev, SnapshotConfig(horizon_days=60))
    assert any(c.startswith("events_") for c in ds.frame.columns) and "rating_mean" in ds.frame.columns
    _check_definitions(ds.frame, [c for c in ev.columns if c not in CANONICAL])


@pytest.mark.skipif(not RETAIL.exists(), reason="the shared data folder (../shared/data) is absent")
def test_every_column_build_dataset_writes_on_online_retail_has_one_definition():
    raw = pd.read_parquet(RETAIL)
    ev = canonical_events(raw, infer_schema(raw))
    ds = build_dataset(ev, SnapshotConfig(), cutoffs=[data_end(ev) - pd.Timedelta(days=120)])
    _check_definitions(ds.frame, [c for c in ev.columns if c not in CANONICAL])


def test_a_new_feature_is_one_definition_that_duckdb_and_numpy_compute_alike():
    ev = _generated()
    cfg = SnapshotConfig(horizon_days=60, windows=(7, 30, 90))
    dates = [pd.Timestamp("2023-09-15"), pd.Timestamp("2023-11-01")]
    duck, _ = features.compute(ev, dates, cfg, end=data_end(ev), features=TOY)
    small, _ = features_small.compute(ev, dates, cfg, end=data_end(ev), features=TOY)
    problems, _ = differences(duck, small, [c for c in ev.columns if c not in CANONICAL])
    assert not problems, "\n".join(problems)
    plain, _ = features.compute(ev, dates, cfg, end=data_end(ev))
    new = ["spend_per_active_day_30d", "browsing_7d", "browsing_30d", "browsing_90d", "orders_per_tenure_week"]
    assert [c for c in duck.columns if c not in plain.columns] == new
    assert list(duck.columns[-1:]) == ["orders_per_tenure_week"]  # after the attributes, as its definition says
    assert (duck[plain.columns].equals(plain))  # the product's own columns do not move
    days = plain["active_days_30d"].to_numpy()
    expected = np.where(days > 0, plain["revenue_30d"].to_numpy() / np.where(days > 0, days, 1), np.nan)
    np.testing.assert_allclose(duck["spend_per_active_day_30d"].to_numpy(), expected, rtol=1e-12, equal_nan=True)
    np.testing.assert_array_equal(duck["orders_per_tenure_week"], plain["orders_total"] * 7.0 / (plain["tenure_days"] + 1))
    assert (duck["browsing_90d"] >= duck["browsing_30d"]).all() and (duck["browsing_30d"] >= duck["browsing_7d"]).all()
    assert (duck["browsing_90d"] <= plain["browsing_total"]).all() and duck["browsing_90d"].sum() > 0


def test_a_feature_whose_input_the_log_lacks_is_dropped_in_both_engines():
    ev = _generated().assign(amount=np.nan)
    cfg = SnapshotConfig(horizon_days=60, windows=(30, 90))
    dates = [pd.Timestamp("2023-11-01")]
    duck, _ = features.compute(ev, dates, cfg, end=data_end(ev), features=TOY)
    small, _ = features_small.compute(ev, dates, cfg, end=data_end(ev), features=TOY)
    assert list(duck.columns) == list(small.columns)
    assert "spend_per_active_day_30d" not in duck.columns and "browsing_30d" in duck.columns
    assert not [c for c in duck.columns if "revenue" in c or c == "avg_order_value"]


def test_definitions_are_checked():
    one = FEATURES.features[0]
    with pytest.raises(ValueError, match="defined twice"):
        Registry([one, one])
    broken = Registry([Feature("x", Ref("nowhere") + 1, "X", "orders", None, "x")])
    with pytest.raises(ValueError, match="nowhere"):
        broken.columns((30,), [])
    with pytest.raises(ValueError, match="unknown count"):
        count("purchases")


def test_wording_comes_from_the_definitions():
    assert feature_label("orders_45d") == "Orders in the last 45 days" and feature_unit("revenue_45d") == "money"
    assert feature_label("events_add_to_cart_30d") == "'add to cart' events in the last 30 days"
    assert feature_label("events_add_to_cart_total_1") == "'add to cart' events in total"
    assert grows_with_age("events_view_total") and not grows_with_age("events_view_30d")
    assert grows_with_age("tenure_days") and not grows_with_age("recency_days") and not grows_with_age("MonthlyCharges")
    assert reason_theme("revenue_prev_90d") == "trend" and reason_theme("units_total") == "spend"
    assert reason_theme("returns in the last 4 weeks") == "returns" and reason_theme("MonthlyCharges") == "MonthlyCharges"
    assert feature_unit("MonthlyCharges") is None and feature_label("payment_method") == "Payment method"
    texts = reason_texts(pd.Series({"recency_vs_usual_gap": 9.0, "return_rate": 8.0, "gap_mean_days": 7.0,
                                    "orders_30d_vs_avg": 6.0}),
                         {"recency_vs_usual_gap": 2.5, "return_rate": 0.25, "gap_mean_days": None,
                          "orders_30d_vs_avg": -1.0}, {"recency_vs_usual_gap": 1.0, "return_rate": 0.1})
    assert texts == ["Silent for 2.5x their usual time between purchases (typical for retained users: 1x) [+9 pts]",
                     "Returned 25% of items (typical for retained users: 10%) [+8 pts]",
                     "Only one purchase day so far (no usual rhythm yet) [+7 pts]",
                     "Fewer orders in the last 30 days than usual [+6 pts]"]
