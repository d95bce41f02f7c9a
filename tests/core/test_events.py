"""Event log -> labelled snapshots: cutoff semantics, labels, leakage and sequences."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retention_core.errors import ConfigError, DataError
from retention_core.events import canonical_events
from retention_core.dataset import SnapshotConfig, build_dataset, data_end, default_config, scoring_snapshot, snapshot_dates, to_cutoff
from retention_core.io import read_table
from retention_core.roles import infer_schema

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
needs_data = pytest.mark.skipif(not DATA.exists(), reason="real data folder ../shared/data is absent")


def _log(rows):
    df = pd.DataFrame(rows, columns=["customer_id", "event_time", "order_id", "amount"])
    schema = infer_schema(df, {"user_id": "customer_id", "timestamp": "event_time", "order_id": "order_id",
                               "amount": "amount", "kind": "events"})
    return canonical_events(df, schema)


@pytest.fixture(scope="module")
def sample_events():
    from assets.generator import generate_events

    raw = generate_events(300, seed=3, days=400)
    schema = infer_schema(raw)
    return canonical_events(raw, schema)


def test_cutoff_is_a_day_boundary_and_labels_follow_the_contract():
    ev = _log([
        ("a", "2024-01-01 10:00", "o1", 10.0),
        ("a", "2024-03-01 00:00", "o2", 5.0),   # exactly at the cutoff instant: a past event
        ("a", "2024-03-01 08:00", "o3", 7.0),   # later that day: after the cutoff, in the horizon
        ("b", "2024-02-10 12:00", "o4", 20.0),
        ("b", "2024-05-30 00:00", "o5", 20.0),  # exactly at cutoff + 90 days: inside the horizon
        ("c", "2024-02-20 12:00", "o6", 3.0),
        ("c", "2024-05-30 09:00", "o7", 3.0),   # after cutoff + 90 days: too late
        ("d", "2024-06-30 09:00", "o8", 3.0),
    ])
    ds = build_dataset(ev, SnapshotConfig(horizon_days=90, cutoff="2024-03-01"))
    f = ds.frame.set_index("user_id")
    assert set(f.index) == {"a", "b", "c"}  # d has no purchase before the cutoff
    assert f.loc["a", "churned"] == 0 and f.loc["b", "churned"] == 0 and f.loc["c", "churned"] == 1
    assert f.loc["a", "orders_total"] == 2  # o1 and o2, not o3
    assert f.loc["a", "revenue_total"] == 15.0
    assert f.loc["a", "recency_days"] == 0.0
    assert f.loc["b", "recency_days"] == pytest.approx(19.5)
    assert f.loc["b", "repeat_purchases"] == 0
    assert to_cutoff("2024-03-01 08:00") == pd.Timestamp("2024-03-02")


def test_cancellations_returns_and_zero_values_are_not_purchases():
    ev = _log([
        ("a", "2024-01-05", "C100", 10.0),   # cancellation
        ("a", "2024-01-06", "200", -4.0),    # return
        ("a", "2024-01-07", "300", 0.0),     # zero value
        ("b", "2024-01-05", "400", 10.0),
        ("b", "2024-01-06", "401", 10.0),
        ("b", "2024-04-06", "402", 10.0),
    ])
    assert ev["is_cancel"].tolist() == [True, False, False, False, False, False]
    assert ev["is_return"].tolist() == [False, True, False, False, False, False]
    assert ev["is_purchase"].tolist() == [False, False, False, True, True, True]
    ds = build_dataset(ev, SnapshotConfig(horizon_days=30, cutoff="2024-02-01"))
    assert ds.frame["user_id"].tolist() == ["b"]  # a never made a qualifying purchase


def test_unlabelled_snapshot_when_horizon_not_observed(sample_events):
    end = data_end(sample_events)
    cutoff = end - pd.Timedelta(days=30)
    ds = build_dataset(sample_events, SnapshotConfig(horizon_days=90), cutoffs=[cutoff])
    assert ds.frame["churned"].isna().all()
    sc = scoring_snapshot(sample_events, SnapshotConfig(horizon_days=90))
    assert sc.frame["churned"].isna().all()
    assert (sc.frame["snapshot_date"] == end).all()
    labelled = build_dataset(sample_events, SnapshotConfig(horizon_days=90, n_snapshots=3, step_days=30))
    assert labelled.frame["churned"].notna().all()
    assert sorted(labelled.frame["snapshot_date"].unique())[-1] == end - pd.Timedelta(days=90)
    assert len(labelled.frame["snapshot_date"].unique()) == 3


def test_config_errors_are_clear(sample_events):
    with pytest.raises(ConfigError, match="after the end"):
        snapshot_dates(sample_events, SnapshotConfig(cutoff="2100-01-01"))
    with pytest.raises(ConfigError, match="not a date"):
        SnapshotConfig(cutoff="yesterday-ish")
    with pytest.raises(ConfigError, match="at least 1"):
        SnapshotConfig(horizon_days=0)
    with pytest.raises(ConfigError, match="too short"):
        snapshot_dates(sample_events, SnapshotConfig(horizon_days=3000, lookback_days=365))


def test_default_config_suits_the_span(sample_events):
    cfg = default_config(sample_events)
    assert cfg.horizon_days == 90 and cfg.lookback_days == 365 and cfg.n_snapshots >= 2
    short = sample_events[sample_events["ts"] < sample_events["ts"].min() + pd.Timedelta(days=120)]
    cfg = default_config(short)
    assert cfg.horizon_days < 90
    assert build_dataset(short, cfg).frame["churned"].notna().all()


def _perturb_future(ev: pd.DataFrame, T: pd.Timestamp, rng: np.random.Generator) -> pd.DataFrame:
    """Change, delete and add events strictly after the cutoff."""
    out = ev.copy()
    fut = out["ts"] > T
    idx = np.flatnonzero(fut.to_numpy())
    drop = rng.choice(idx, size=len(idx) // 3, replace=False)
    out.loc[out.index[idx], "amount"] = out.loc[out.index[idx], "amount"] * rng.uniform(0, 5, len(idx))
    out.loc[out.index[idx], "event_type"] = rng.choice(["view", "purchase", "return"], len(idx))
    out.loc[out.index[idx], "is_purchase"] = rng.random(len(idx)) < 0.5
    out = out.drop(index=out.index[drop])
    extra = out.sample(200, random_state=int(rng.integers(1e9)), replace=True).copy()
    extra["ts"] = T + pd.to_timedelta(rng.integers(1, 86400 * 60, len(extra)), unit="s")
    extra["is_purchase"] = True
    return pd.concat([out, extra], ignore_index=True)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_leakage_events_after_cutoff_do_not_change_features(sample_events, seed):
    cfg = SnapshotConfig(horizon_days=60, n_snapshots=2, step_days=45)
    dates = snapshot_dates(sample_events, cfg)
    base = build_dataset(sample_events, cfg, sequences=True)
    for T in dates:
        changed = _perturb_future(sample_events, T, np.random.default_rng(seed))
        other = build_dataset(changed, cfg, cutoffs=[T], sequences=True)
        a = base.frame[base.frame["snapshot_date"] == T].drop(columns="churned").reset_index(drop=True)
        b = other.frame.drop(columns="churned").reset_index(drop=True)
        cols = [c for c in a.columns if c in b.columns]
        pd.testing.assert_frame_equal(a[cols], b[cols], check_dtype=False)
        assert set(a.columns) - set(b.columns) <= set()  # no feature disappears
        mask = (base.frame["snapshot_date"] == T).to_numpy()
        np.testing.assert_array_equal(base.sequences[mask], other.sequences)


def test_sequences_align_with_rows(sample_events):
    ds = build_dataset(sample_events, SnapshotConfig(horizon_days=60, sequence_weeks=12), sequences=True)
    assert ds.sequences.shape == (len(ds.frame), 12, 4) and ds.sequences.dtype == np.float32
    orders_week = ds.sequences[:, -1, 0]
    np.testing.assert_allclose(orders_week, ds.frame["orders_7d"].to_numpy())
    assert (ds.sequences[:, :, 0].sum(axis=1) <= ds.frame["orders_90d"].to_numpy() + 1e-6).all()


def test_attributes_and_breadth_features(sample_events):
    ds = build_dataset(sample_events, SnapshotConfig(horizon_days=60))
    assert {"country", "channel", "device"} <= set(ds.categorical)
    for c in ("n_products", "n_categories", "rating_mean", "return_rate", "gap_mean_days", "events_view_30d",
              "revenue_trend_90d", "orders_365d"):
        assert c in ds.numeric, c
    assert "user_id" not in ds.features and "churned" not in ds.features and "snapshot_date" not in ds.features
    assert (ds.frame["n_categories"] <= ds.frame["n_products"]).all()


def _truth(p: pd.DataFrame, T: pd.Timestamp, horizon=90, lookback=365) -> pd.Series:
    hist = set(p.loc[(p.ts <= T) & (p.ts > T - pd.Timedelta(days=lookback)), "uid"])
    fut = set(p.loc[(p.ts > T) & (p.ts <= T + pd.Timedelta(days=horizon)), "uid"])
    return pd.Series({u: int(u not in fut) for u in hist}).sort_index()


@needs_data
def test_labels_match_independent_computation_online_retail():
    raw = read_table(DATA / "online_retail_ii_2009_2010.parquet")
    ev = canonical_events(raw, infer_schema(raw))
    cfg = SnapshotConfig(horizon_days=90, cutoff="2010-09-10", n_snapshots=3, step_days=30)
    ds = build_dataset(ev, cfg)
    r = pd.read_parquet(DATA / "online_retail_ii_2009_2010.parquet")
    r["ts"] = pd.to_datetime(r.InvoiceDate)
    p = r.dropna(subset=["Customer ID"])
    p = p[~p.Invoice.astype(str).str.startswith("C") & (p.Quantity > 0) & (p.Price > 0)].copy()
    p["uid"] = p["Customer ID"].astype(int).astype(str)
    for T in pd.to_datetime(ds.frame["snapshot_date"].unique()):
        truth = _truth(p, T)
        got = ds.frame[ds.frame["snapshot_date"] == T].set_index("user_id")["churned"].sort_index()
        assert list(got.index) == list(truth.index)
        assert (got.astype(int).to_numpy() == truth.to_numpy()).all()


@needs_data
def test_labels_match_independent_computation_cdnow():
    raw = read_table(DATA / "cdnow_master.txt")
    ev = canonical_events(raw, infer_schema(raw))
    ds = build_dataset(ev, SnapshotConfig(horizon_days=90, lookback_days=180, cutoff="1998-01-01", n_snapshots=2))
    c = pd.read_csv(DATA / "cdnow_master.txt", sep=r"\s+", dtype={"customer_id": str}).drop_duplicates()
    c = c[c.dollar_value > 0].copy()
    c["ts"], c["uid"] = pd.to_datetime(c.date.astype(str), format="%Y%m%d"), c.customer_id
    for T in pd.to_datetime(ds.frame["snapshot_date"].unique()):
        truth = _truth(c, T, lookback=180)
        got = ds.frame[ds.frame["snapshot_date"] == T].set_index("user_id")["churned"].sort_index()
        assert list(got.index) == list(truth.index)
        assert (got.astype(int).to_numpy() == truth.to_numpy()).all()
    # Several orders on one day are several orders, one active day.
    f = ds.frame[ds.frame["snapshot_date"] == pd.Timestamp("1998-01-01")]
    purchase_days = f["repeat_purchases"] + 1
    assert (f["orders_total"] >= purchase_days).all()
    assert (f["orders_total"] > purchase_days).any()


def test_no_usable_rows_is_a_clear_error():
    df = pd.DataFrame({"customer_id": [None, None], "event_time": ["2024-01-01", "2024-01-02"], "amount": [1.0, 2.0]})
    schema = infer_schema(df, {"user_id": "customer_id", "timestamp": "event_time", "kind": "events"})
    with pytest.raises(DataError, match="No usable events"):
        canonical_events(df, schema)


def test_exact_duplicates_match_pandas():
    from retention_core.events import exact_duplicates

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.integers(0, 5, 3000), "b": rng.choice(["x", "y", None], 3000),
                       "c": rng.integers(0, 3, 3000).astype(float)})
    df.loc[5, "c"] = np.nan
    pd.testing.assert_series_equal(exact_duplicates(df), df.duplicated(), check_names=False)
    df["d"] = [[i % 2] for i in range(3000)]  # unhashable cells
    assert exact_duplicates(df).sum() == df.astype(str).duplicated().sum()
