"""Lifecycle stages (``retention_core/lifecycle.py``): the rules on hand-built rows, the shop's rhythm, audiences,
customers by stage and risk, the realised churn by stage on real logs; customers who bought only postage or fees are
never scored (every engine) and the data report counts them."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retention_core import features, features_small, lifecycle, plots
from retention_core.dataset import SnapshotConfig, build_dataset, data_end
from retention_core.errors import ConfigError
from retention_core.events import canonical_events, fee_only_customers
from retention_core.lifecycle import StageRules, assign_stages, audience_mask, shop_gaps, shop_rhythm
from retention_core.roles import infer_schema
from retention_core.segments import make_segments, stage_risk_table
from retention_core.validation import validate

from tests.conftest import real_path

#: The shop: repeat customers' usual gaps 10, 20, ..., 100 days: typical (median) 55, 90th percentile 91.
GAPS = np.arange(10.0, 101.0, 10.0)


def _rows(*rows) -> pd.DataFrame:
    """(recency, tenure, usual gap or None) per customer."""
    return pd.DataFrame(rows, columns=["recency_days", "tenure_days", "gap_mean_days"]).astype(float)


def test_shop_rhythm_is_the_median_and_a_high_percentile_of_repeat_customers_gaps():
    r = shop_rhythm(GAPS)
    assert r.typical_gap == pytest.approx(55.0) and r.long_gap == pytest.approx(91.0) and r.repeat_customers == 10
    assert shop_rhythm(GAPS, StageRules(long_gap_percentile=50)).long_gap == pytest.approx(55.0)
    frame = pd.DataFrame({"gap_mean_days": [np.nan, 0.0, 30.0, 10.0]})
    assert shop_gaps(frame).tolist() == [10.0, 30.0]  # one-time buyers have no gap
    assert shop_gaps(pd.DataFrame({"x": [1]})) is None
    assert shop_rhythm([]).typical_gap == lifecycle.FALLBACK_GAP_DAYS


def test_stage_rules_on_hand_built_customers():
    frame = _rows(
        (5, 20, None),      # first purchase 20 days ago: new
        (5, 20, 4),         # bought several times, all within 30 days: still new
        (60, 60, None),     # bought once 60 days ago: not yet overdue (60 <= 1.5 x 55 = 82.5): new
        (90, 90, None),     # bought once 90 days ago: overdue against the shop's typical gap: slipping
        (170, 170, None),   # bought once 170 days ago: beyond 3 x 55 and the long gap (91): lapsed
        (20, 400, 30),      # repeat customer on rhythm: active
        (50, 400, 10),      # 5 usual gaps late but within the shop's typical gap (55): active
        (60, 400, 30),      # 2 gaps late, beyond the typical gap: slipping
        (100, 400, 30),     # beyond 3 gaps (90) and the long gap (91): lapsed
        (85, 400, 10),      # 8.5 gaps late but within the shop's long gap: slipping, not lapsed
        (250, 400, 100),    # 2.5 gaps of a slow buyer: slipping, although long ago
        (np.nan, 400, 30),  # no last purchase: no stage
    )
    got = assign_stages(frame, reference=GAPS)
    assert got.astype(object).where(got.notna(), None).tolist() == [
        "new", "new", "new", "slipping", "lapsed", "active", "active", "slipping", "lapsed", "slipping", "slipping",
        None]
    assert list(got.cat.categories) == ["new", "active", "slipping", "lapsed"] and got.cat.ordered
    assert lifecycle.stage_values(frame, reference=shop_rhythm(GAPS)).tolist() == got.astype(object).where(
        got.notna(), None).tolist()  # the service's path: the same stages


def test_changing_the_rules_changes_the_stages():
    frame = _rows((60, 400, 30), (100, 400, 30), (45, 45, None))
    assert assign_stages(frame, reference=GAPS).tolist() == ["slipping", "lapsed", "new"]
    strict = StageRules(new_days=60, slipping_gaps=1.0, lapsed_gaps=1.9, long_gap_percentile=50)
    assert assign_stages(frame, strict, reference=GAPS).tolist() == ["lapsed", "lapsed", "new"]
    loose = StageRules(slipping_gaps=3, lapsed_gaps=5)
    assert assign_stages(frame, loose, reference=GAPS).tolist() == ["active", "slipping", "new"]
    assert StageRules.from_dict(strict.as_dict()) == strict


@pytest.mark.parametrize("bad", [dict(lapsed_gaps=1.0), dict(slipping_gaps=0), dict(new_days=-1), dict(new_days=2.5),
                                 dict(long_gap_percentile=100), dict(slipping_gaps="soon")])
def test_bad_rules_are_refused_with_a_message(bad):
    with pytest.raises(ConfigError):
        StageRules(**bad)
    with pytest.raises(ConfigError, match="Unknown stage rule"):
        StageRules.from_dict({"lapsed_after": 3})


def test_the_reference_decides_the_shop_rhythm_and_a_user_table_gets_no_stage():
    frame = _rows((60, 400, 10), (40, 400, 10))
    # measured against its own two customers (typical gap 10), 60 days is lapsed; against the shop, slipping
    assert assign_stages(frame).tolist() == ["lapsed", "lapsed"]
    assert assign_stages(frame, reference=GAPS).tolist() == ["slipping", "active"]
    assert assign_stages(frame, reference=pd.DataFrame({"gap_mean_days": GAPS})).tolist() == ["slipping", "active"]
    users = pd.DataFrame({"plan": ["a", "b"]})
    assert assign_stages(users).isna().all()
    with pytest.raises(ConfigError, match="event log"):
        make_segments(users, "stage")


def test_audiences_and_customers_by_stage_and_risk():
    stage = pd.Series(["new", "active", "slipping", "lapsed", None, "lapsed"])
    assert audience_mask(stage, "saveable").tolist() == [True, True, True, False, True, False]
    assert audience_mask(stage, "winback").tolist() == [False, False, False, True, False, True]
    assert audience_mask(stage, "all").all() and audience_mask(stage, None).all()
    with pytest.raises(ConfigError):
        audience_mask(stage, "lost")
    p = np.linspace(0.9, 0.1, len(stage))
    table = stage_risk_table(stage, p)
    assert list(table.columns) == ["stage", "tier", "customers"] and len(table) == 12
    assert table["customers"].sum() == 5  # the customer without a stage is not drawn
    assert table.set_index(["stage", "tier"]).loc[("lapsed", "low"), "customers"] == 2
    fig = plots.stage_risk_bars(table)
    assert [t.name for t in fig.data if t.type == "bar"] == ["high risk (top 20%)", "medium (next 30%)",
                                                             "low (other 50%)"]
    assert fig.layout.legend.yref == "container" and fig.layout.legend.y == 0  # under the plot: clear of the title
    counts = lifecycle.stage_counts(stage, [1, 0, 1, 1, 0, 1])
    assert counts.set_index("stage").loc["lapsed", "churn_rate"] == 1.0 and counts["customers"].sum() == 5


def test_rules_in_words_name_the_shop_figures():
    t = lifecycle.rules_table(StageRules(), shop_rhythm(GAPS))
    assert t["stage"].tolist() == ["New", "Active", "Slipping", "Lapsed"]
    assert "55 days" in t.loc[2, "rule"] and "91 days" in t.loc[3, "rule"] and "90%" in t.loc[3, "rule"]


# ----------------------------------------------------------------------------------------------- real logs
def _churn_by_stage(file: str, cutoff: str, reference: str) -> pd.Series:
    from retention_core.io import read_table

    raw = read_table(real_path(file))
    ev = canonical_events(raw, infer_schema(raw))
    frame = build_dataset(ev, SnapshotConfig(horizon_days=90), cutoffs=[cutoff, reference]).frame
    scored = frame[frame["snapshot_date"] == pd.Timestamp(cutoff)].reset_index(drop=True)
    ref = frame[frame["snapshot_date"] == pd.Timestamp(reference)]
    stage = assign_stages(scored, reference=shop_gaps(ref))
    return lifecycle.stage_counts(stage, scored["churned"].to_numpy(float)).set_index("stage")["churn_rate"]


@pytest.mark.parametrize("file,cutoff,reference", [
    ("online_retail_ii_2009_2010.parquet", "2010-09-10", "2010-06-12"),
    ("online_retail_ii_2009_2010.parquet", "2010-06-12", "2010-03-14"),
    ("cdnow_master.txt", "1998-01-01", "1997-10-03"),
])
def test_realised_churn_rises_from_active_to_slipping_to_lapsed(file, cutoff, reference):
    """Scored at the cutoff against the shop's rhythm one horizon earlier (a run's validation users), the customers
    really churned more often the further along they were (measured: bench/published/stages.md)."""
    c = _churn_by_stage(file, cutoff, reference)
    assert c["active"] + 0.05 < c["slipping"] and c["slipping"] + 0.05 < c["lapsed"], c.to_dict()


# ----------------------------------------------------------------------------------------------- fees only
T = pd.Timestamp("2024-06-01")


def _fee_log() -> pd.DataFrame:
    """An order log like Online Retail's: customers A (products), F (postage and bank charges only), G (a product
    long before the lookback, postage inside it), L (postage before the cutoff, a product after it), C (a cancellation
    of a product line, and postage) and many product buyers so that codes without a digit read as fees."""
    rows = []

    def line(inv, code, qty, day, user, price=2.5):
        rows.append({"Invoice": inv, "StockCode": code, "Quantity": qty, "Price": price,
                     "InvoiceDate": str(T - pd.Timedelta(days=day)), "Customer ID": user})
    for i in range(30):
        line(f"9{i:03d}", f"2{i:04d}", 3, 10 + i, f"P{i}")
        line(f"8{i:03d}", f"2{i:04d}A", 1, 200 + i, f"P{i}")
    line("1001", "85123A", 6, 40, "A")
    line("1001", "POST", 1, 40, "A", 18.0)
    line("1002", "POST", 1, 30, "F", 18.0)
    line("1003", "BANK CHARGES", 1, 20, "F", 15.0)
    line("1004", "22423", 2, 500, "G")
    line("1005", "POST", 1, 25, "G", 18.0)
    line("1006", "POST", 1, 15, "L", 18.0)
    line("1007", "22423", 2, -5, "L")
    line("C1008", "22423", -2, 11, "C")
    line("1009", "POST", 1, 12, "C", 18.0)
    return pd.DataFrame(rows)


def test_customers_who_bought_only_fees_are_never_scored_by_any_engine():
    raw = _fee_log()
    schema = infer_schema(raw)
    ev = canonical_events(raw, schema)
    assert fee_only_customers(ev)["user_id"].tolist() == ["F", "C"]
    cfg = SnapshotConfig(horizon_days=30)
    duck, _ = features.compute(ev, [T], cfg, end=data_end(ev))
    small, _ = features_small.compute(ev, [T], cfg, end=data_end(ev))
    for frame in (duck, small, build_dataset(ev, cfg, cutoffs=[T]).frame):
        users = set(frame["user_id"].astype(str))
        assert {"A", "G"} <= users and not {"F", "L", "C"} & users, sorted(users)
    assert duck["user_id"].tolist() == small["user_id"].tolist()
    later = build_dataset(ev, cfg, cutoffs=[T + pd.Timedelta(days=10)]).frame
    assert "L" in set(later["user_id"].astype(str))  # once L has bought a product, L is a customer


def test_the_data_report_counts_customers_who_bought_only_fees():
    raw = _fee_log()
    f = validate(raw, infer_schema(raw)).get("fee_only_customers")
    assert f is not None and f.count == 2 and f.severity == "info"
    assert f.examples == ["F (BANK CHARGES, POST)", "C (POST)"] and "not scored" in f.action
    clean = raw[~raw["Customer ID"].isin(["C", "F"])]
    assert validate(clean, infer_schema(clean)).get("fee_only_customers") is None


def test_no_fee_only_customer_is_scored_on_online_retail():
    from retention_core.io import read_table

    raw = read_table(real_path("online_retail_ii_2009_2010.parquet"))
    schema = infer_schema(raw)
    ev = canonical_events(raw, schema)
    fees = set(fee_only_customers(ev)["user_id"])
    assert len(fees) == validate(raw, schema).get("fee_only_customers").count >= 20
    frame = build_dataset(ev, SnapshotConfig(horizon_days=90), cutoffs=["2010-09-10", "2010-12-10"]).frame
    assert not fees & set(frame["user_id"].astype(str))
