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
    if "product" in p.columns:  # customers bought a product, not only postage or fees, at or before T
        hist &= set(p.loc[p["product"] & (p.ts <= T), "uid"])
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
    code = p.StockCode.astype(str).str.strip().str.upper()
    fees = {"POST", "DOT", "M", "BANK CHARGES", "AMAZONFEE", "C2", "D", "CRUK", "S", "B", "PADS", "ADJUST", "ADJUST2",
            "TEST001", "TEST002", "SP1002", "GIFT"}  # postage, fees, adjustments (and codes without a digit)
    p["product"] = code.str.contains(r"\d") & ~code.isin(fees)
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


# ----------------------------------------------------------------------------------------------- the same table, faster
# canonical_events gathers its columns before making the table and skips cleaning values it cannot change (one
# request's few dozen rows); bench/reference_events.py keeps the plain version it replaced. The two must give the
# same table: values, types, column order, index and cleaning counts.
def _same_canonical(raw: pd.DataFrame, schema, **kw) -> pd.DataFrame:
    from bench.reference_events import reference_canonical_events

    got = canonical_events(raw, schema, **kw)
    pd.testing.assert_frame_equal(got, reference_canonical_events(raw, schema, **kw), check_exact=True)
    assert got.attrs == reference_canonical_events(raw, schema, **kw).attrs
    return got


def _as_request(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows as the scoring service builds its table from JSON: every cell a string, typed as a CSV reader types
    them."""
    from retention_core.serve import events_frame

    return events_frame(rows.astype(str).replace({"nan": "", "<NA>": "", "None": ""}).to_dict("records"))


def test_canonical_table_equals_the_plain_version_for_requests(sample_events_path):
    raw = read_table(sample_events_path)
    schema = infer_schema(raw)
    users = raw["customer_id"].astype(str).unique()
    for u in users[::97]:
        one = _as_request(raw[raw["customer_id"].astype(str) == u])
        _same_canonical(one, schema)
        _same_canonical(one, schema, cancel_ids=True)
    _same_canonical(raw, schema)  # the whole log: 2,000 users, many values per column


def test_canonical_table_equals_the_plain_version_on_awkward_values():
    """Padded and empty cells, numbers as ids (whole floats too), text no fast path may touch (leading or trailing
    punctuation, non-breaking and other Unicode spaces, non-ASCII letters), order ids that are cancellations,
    postage codes in any case, duplicates, rows without a user or a readable time, a missing column."""
    rows = pd.DataFrame({
        "customer_id": ["a", " a ", "7", "7.0", None, "", "b\u00a0", "ü", "c", "c", "d", "e", "f"],
        "event_time": ["2024-01-01 10:00", "2024-01-02", "2024-01-03", "2024-01-03", "2024-01-04", "2024-01-05",
                       "2024-01-06", "not a date", "2024-01-07", "2024-01-07", "2024-01-08 00:00:00", "2024-01-09",
                       "2024-01-10"],
        "order_id": ["1", "C2", "c3 ", "4", "5", "6", "Ｃ7", "8", "9", "9", None, "-10", "11."],
        "event_type": ["Purchase", "purchase ", "REFUND", "cancelled", "view", "Void", "purchase", "purchase",
                       "purchase", "purchase", "Kauf", "purchase", "İpurchase"],
        "product_id": ["POST", " post", "A1", "A2", "m", "M", "DOT", "85123A", "85123A", "85123A", "\u2003x", "B1", "B2"],
        "quantity": ["1", "2", "-1", "1", "1", "0", "1", "1", "3", "3", "1", "1", "1"],
        "price": ["1.5", "2", "3", "0", "1", "1", "1", "1", "2.5", "2.5", "1", "1", "1"],
        "country": ["DE", " DE", "FR ", "", None, "NL", "NL", "PT", "PT", "PT", "ES", "ES.", "É"],
    })
    schema = infer_schema(rows, {"user_id": "customer_id", "timestamp": "event_time", "order_id": "order_id",
                                 "event_type": "event_type", "product": "product_id", "quantity": "quantity",
                                 "price": "price", "attributes": ["country"], "purchase_values": ["purchase"],
                                 "kind": "events"})
    plain = rows.iloc[[0, 3, 5, 8, 9]].copy()  # plain ASCII values only: the Python tests run instead of pandas'
    plain["order_id"] = ["Cx", "C2", "c9", "9", "9"]
    assert plain.map(lambda v: v is None or str(v).isascii()).all().all()
    for table in (rows, _as_request(rows), rows.drop(columns=["order_id"]), rows.astype({"quantity": "Float64"}),
                  plain, _as_request(plain)):
        s = infer_schema(table, {**schema.roles, "attributes": ["country"], "purchase_values": ["purchase"],
                                 "kind": "events"} | ({"order_id": None} if "order_id" not in table else {}))
        for cancel_ids in (None, True, False):
            _same_canonical(table, s, cancel_ids=cancel_ids)


@needs_data
def test_canonical_table_equals_the_plain_version_online_retail():
    raw = read_table(DATA / "online_retail_ii_2009_2010.parquet")
    schema = infer_schema(raw)
    part = raw[raw["Customer ID"].isin(raw["Customer ID"].dropna().unique()[:300])].reset_index(drop=True)
    _same_canonical(part, schema)
    for u in part["Customer ID"].unique()[:20]:
        _same_canonical(_as_request(part[part["Customer ID"] == u]), schema, cancel_ids=True)


from hypothesis import given, settings, strategies as st  # noqa: E402  (the property test below only)

_CELL = st.one_of(st.none(), st.sampled_from(["", " ", "POST", "post ", "C123", "c9", "Cx", "purchase", "Purchase",
                                               "return", "void", "A1", "85123A", "M", "10", "007", "1.0", "x\u00a0",
                                               "\u00e9t\u00e9", "I\u0307", "a-b", "-1", "\t7"]),
                  st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=6))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["u1", "u2", " u3"]), st.integers(0, 40), _CELL, _CELL, _CELL, _CELL),
                min_size=1, max_size=25), st.booleans(), st.sampled_from([None, True]))
def test_fast_paths_equal_the_plain_version_on_random_text(rows, plain_ascii, cancel_ids):
    """Random cells (any Unicode, whitespace, digits, cancellation and postage look-alikes; or plain ASCII values
    only, where the Python tests replace pandas'): the table with the fast paths equals the plain version's."""
    if plain_ascii:
        rows = [(u, d, *(_ascii_cell(c, i) for i, c in enumerate(cells))) for u, d, *cells in rows]
    from retention_core.errors import RetentionError

    df = pd.DataFrame([(u, f"2024-01-{1 + d % 28:02d} {d % 24:02d}:00", o, t, p, c) for u, d, o, t, p, c in rows],
                      columns=["customer_id", "event_time", "order_id", "event_type", "product_id", "country"])
    df["price"] = "2.5"
    schema = infer_schema(df, {"user_id": "customer_id", "timestamp": "event_time", "order_id": "order_id",
                               "event_type": "event_type", "product": "product_id", "price": "price",
                               "attributes": ["country"], "purchase_values": ["purchase"], "kind": "events"})
    try:
        _same_canonical(df, schema, cancel_ids=cancel_ids)
    except RetentionError:  # no usable rows: the plain version must refuse the same table
        from bench.reference_events import reference_canonical_events

        with pytest.raises(RetentionError):
            reference_canonical_events(df, schema, cancel_ids=cancel_ids)


_ASCII_CELLS = ["POST", "post", "Post", "m", "M", "DOT", "C123", "c9", "Cx", "xC1", "purchase", "Purchase",
                "PURCHASE", "Refund", "voided", "ReturnX", "A1", "85123A", "7", "10", "a b", "q-9"]


def _ascii_cell(cell, i: int):
    """A plain ASCII stand-in for a random cell (the same cell always gives the same stand-in)."""
    if cell is None:
        return None
    return _ASCII_CELLS[(sum(map(ord, cell)) + i) % len(_ASCII_CELLS)]
