"""Features that grow with the customers' age: flagged beside their labels (exactly those the feature engine makes move
one way as a customer's history gets longer), reported as expected ageing in the monitoring report, and never the
reason for a "watch" or "retrain" verdict; the verdict weighs every observed scoring by its users."""
from __future__ import annotations

import numpy as np
import pandas as pd

from retention_core import monitor
from retention_core.explain.wording import feature_label, grows_with_age

AGEING = ["tenure_days", "first_to_last_days", "repeat_purchases", "orders_total", "active_days_total",
          "revenue_total", "units_total", "lines_total", "returns_total", "cancels_total", "events_total",
          "browsing_total", "ratings_count", "rating_min", "gap_max_days", "n_products", "n_categories",
          "events_view_total", "events_add_to_cart_total"]
NOT_AGEING = ["recency_days", "days_since_last_event", "orders_30d", "revenue_365d", "active_days_90d",
              "events_view_30d", "orders_prev_90d", "orders_trend_90d", "revenue_trend_90d", "orders_30d_vs_avg",
              "avg_order_value", "lines_per_order", "return_rate", "cancel_rate", "rating_mean", "gap_mean_days",
              "gap_std_days", "recency_vs_usual_gap", "orders in the last 4 weeks", "spend 5-8 weeks ago",
              "country", "MonthlyCharges", "tenure"]


def test_the_flag_sits_beside_each_label():
    assert [f for f in AGEING if not grows_with_age(f)] == []
    assert [f for f in NOT_AGEING if grows_with_age(f)] == []
    # every flagged feature has its own label in plain words
    assert feature_label("tenure_days") == "Days since first purchase"
    assert feature_label("events_view_total") == "'view' events in total"
    assert all(feature_label(f) != f for f in AGEING)


def test_the_flagged_features_are_exactly_those_that_only_move_one_way_as_the_log_gets_longer(sample_events_path):
    """On the sample, every user present at two cutoffs three months apart: a flagged feature never moves against
    its direction for any of them (lifetime spans, totals, distinct counts and the longest gap only grow, the lowest
    rating only falls), and every feature that behaves so is flagged. Features equal for every user at both cutoffs
    (no cancellations in the sample) say nothing and are left out."""
    from retention_core.dataset import SnapshotConfig, build_dataset
    from retention_core.events import canonical_events
    from retention_core.io import read_table
    from retention_core.roles import infer_schema

    raw = read_table(sample_events_path)
    ds = build_dataset(canonical_events(raw, infer_schema(raw)), SnapshotConfig(), cutoffs=["2024-06-01",
                                                                                           "2024-09-01"])
    f = ds.frame
    a = f[f["snapshot_date"] == "2024-06-01"].set_index("user_id")
    b = f[f["snapshot_date"] == "2024-09-01"].set_index("user_id")
    both = a.index.intersection(b.index)
    assert len(both) > 1000
    one_way, checked = set(), set()
    for c in f.columns:
        if c in ("user_id", "snapshot_date", "churned") or not pd.api.types.is_numeric_dtype(f[c]):
            continue
        x, y = a.loc[both, c].astype(float), b.loc[both, c].astype(float)
        if ((x == y) | (x.isna() & y.isna())).all():
            continue
        checked.add(c)
        up = (y.fillna(-np.inf) >= x.fillna(-np.inf)).all()  # a missing value (no gap yet) counts as the lowest
        down = (y.fillna(np.inf) <= x.fillna(np.inf)).all()  # ... or, for a running minimum, the highest
        if up or down:
            one_way.add(c)
    assert len(checked) > 40
    assert one_way == {c for c in checked if grows_with_age(c)}
    assert {"tenure_days", "orders_total", "gap_max_days", "rating_min", "n_products"} <= one_way


def _rows(**kw) -> pd.DataFrame:
    base = {"as_of": "2024-01-01", "recorded_at": 1, "status": "observed", "observed": 1000, "churners": 400,
            "recall_at_10pct": 0.40, "validation_recall_at_10pct": 0.41, "roc_auc": 0.75, "validation_roc_auc": 0.75,
            "churn_rate": 0.4, "predicted_rate": 0.38}
    return pd.DataFrame([{**base, **kw}])


def _drift(bands: dict, ageing: set) -> pd.DataFrame:
    return pd.DataFrame({"feature": list(bands), "label": [feature_label(f) for f in bands],
                         "psi": [3.0 if b == "act" else 0.2 if b == "moderate" else 0.01 for b in bands.values()],
                         "band": list(bands.values()), "expected_ageing": [f in ageing for f in bands]})


def test_expected_ageing_never_drives_the_verdict():
    bands = {"tenure_days": "act", "first_to_last_days": "act", "gap_max_days": "act", "orders_total": "moderate",
             "recency_days": "stable", "orders_90d": "stable"}
    ageing = {"tenure_days", "first_to_last_days", "gap_max_days", "orders_total"}
    v = monitor.verdict(_rows(), _drift(bands, ageing), {"psi": 0.05, "band": "stable"})
    assert v.level == "ok", v.text
    assert "no feature drifted" in v.text and "expected ageing" in v.text
    assert "4 features that grow with the customers' age moved as expected (Days since first purchase" in v.text
    assert not any("Days since first purchase" in r or "tenure" in r for r in v.reasons)
    # with the score past its act band, three ageing features in act do not make it "retrain"
    v = monitor.verdict(_rows(), _drift(bands, ageing), {"psi": 0.3, "band": "act"})
    assert v.level == "watch" and v.text.startswith("watch: the score distribution moved (PSI 0.30); no feature")
    # the same drift, not flagged (as the old code read it): "watch" for the three features
    v = monitor.verdict(_rows(), _drift(bands, set()), {"psi": 0.05, "band": "stable"})
    assert v.level == "watch" and "3 features drifted (Days since first purchase" in v.text
    # a feature that does not grow with age still drives it, named in plain words
    v = monitor.verdict(_rows(), _drift({**bands, "recency_days": "act"}, ageing), None)
    assert v.level == "watch" and "1 feature drifted (Days since last purchase)" in v.text
    assert v.reasons == ["1 feature drifted (Days since last purchase)"]  # expected ageing is never a reason
    assert v.text.endswith("moved as expected (Days since first purchase, Days from first to last purchase, "
                           "Longest gap between purchases, ...): expected ageing, not a reason to act")


def test_the_verdict_weighs_every_observed_scoring_by_its_users():
    big = _rows(as_of="2024-01-01", observed=5000, churners=2000, recall_at_10pct=0.40, roc_auc=0.75)
    one = _rows(as_of="2024-02-01", recorded_at=2, observed=1, churners=1, recall_at_10pct=None, roc_auc=None,
                churn_rate=1.0, predicted_rate=0.2)
    v = monitor.verdict(pd.concat([big, one], ignore_index=True), _drift({}, set()), None)
    assert v.level == "ok", v.text  # the latest, one-user scoring does not decide ("only 1 users observed")
    assert "weighed over 2 scorings (5,001 users observed)" in v.text and "too few" not in v.text
    # realised figures are users-weighted means: 960 users at 0.80 and 40 at 0.50 -> 0.788 against 0.80
    a = _rows(observed=960, churners=380, roc_auc=0.80, validation_roc_auc=0.80)
    b = _rows(as_of="2024-02-01", observed=40, churners=16, roc_auc=0.50, validation_roc_auc=0.80)
    v = monitor.verdict(pd.concat([a, b], ignore_index=True), _drift({}, set()), None)
    assert v.level == "ok" and "realised ROC-AUC 0.79 against 0.80 at validation" in v.text, v.text
    v = monitor.verdict(pd.concat([a.assign(observed=40), b.assign(observed=960)], ignore_index=True),
                        _drift({}, set()), None)
    assert v.level == "retrain" and "ROC-AUC fell from 0.80 to 0.51" in v.text, v.text
    # a large bad scoring is not hidden by a later small good one
    bad = _rows(observed=3000, churners=1200, recall_at_10pct=0.20)
    good = _rows(as_of="2024-03-01", observed=150, churners=60, recall_at_10pct=0.45)
    v = monitor.verdict(pd.concat([bad, good], ignore_index=True), _drift({}, set()), None)
    assert v.level == "retrain" and "recall in the top 10% fell from 0.41 to 0.21" in v.text
    # too few users over all the observed scorings together
    few = pd.concat([_rows(observed=40, churners=10), _rows(as_of="2024-02-01", observed=30, churners=9)])
    v = monitor.verdict(few, _drift({}, set()), None)
    assert v.level == "watch" and "only 70 users observed in 2 scorings (19 churned): too few" in v.text


def test_a_day_zero_monitor_of_the_sample_does_not_watch_for_ageing(tmp_path, sample_events_path):
    """A run trained on the whole sample (a stationary shop), a scoring as of its last day, monitored the same day with
    the same log: the features that grow with age drift (the latest customers are older than the rows the run
    learned from; days since first purchase far past the act band) and are reported as expected ageing, with their
    labels in the JSON; nothing else drifted, so the verdict waits for outcomes instead of saying "watch"."""
    from retention_core import bundle
    from retention_core.dataset import build_dataset, default_config, training_cutoffs
    from retention_core.events import canonical_events
    from retention_core.io import read_table
    from retention_core.roles import infer_schema
    from retention_core.scoring import score_file
    from retention_core.training import TrainConfig, train_and_save

    raw = read_table(sample_events_path)
    schema = infer_schema(raw)
    ev = canonical_events(raw, schema)
    cfg = default_config(ev)
    ds = build_dataset(ev, cfg, cutoffs=training_cutoffs(ev, cfg))
    _, path = train_and_save(tmp_path / "run", ds, schema, TrainConfig(models=["logreg"]), snapshot=cfg.as_dict(),
                             digest="")
    run = bundle.load_run(path)
    monitor.record_scoring(run, score_file(run, raw), source="test", workspace=tmp_path / "ws")
    report = monitor.monitor_report(run, raw, workspace=tmp_path / "ws", require_observed=False)
    d = report.drift.set_index("feature")
    assert d.loc["tenure_days", "psi"] > 1 and d.loc["tenure_days", "band"] == "act"
    assert set(d.index[d["expected_ageing"]]) == {f for f in d.index if grows_with_age(f)}
    assert not (d.loc[~d["expected_ageing"], "band"] == "act").any()
    assert report.verdict.level == "waiting", report.verdict.text
    assert "no feature drifted" in report.verdict.text and "expected ageing" in report.verdict.text
    j = report.to_dict()
    assert {"tenure_days", "first_to_last_days"} <= set(j["drift"]["expected_ageing"])
    assert "never a reason" in j["drift"]["expected_ageing_note"]
    row = next(r for r in j["drift"]["features"] if r["feature"] == "tenure_days")
    assert row["expected_ageing"] is True and row["label"] == "Days since first purchase"
    assert next(r for r in j["drift"]["features"] if r["feature"] == "recency_days")["expected_ageing"] is False


def test_user_table_columns_are_never_expected_ageing():
    from retention_core.monitor.report import _ageing

    table = pd.DataFrame({"feature": ["tenure_days", "orders_total", "MonthlyCharges"], "psi": [1.0, 1.0, 1.0],
                          "band": ["act"] * 3})
    assert not _ageing(table.copy(), events=False)["expected_ageing"].any()
    assert _ageing(table.copy(), events=True)["expected_ageing"].tolist() == [True, True, False]
