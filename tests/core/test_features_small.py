"""The small-log feature engine (``retention_core/features_small.py``, NumPy) against the DuckDB engine
(``features.compute``), column by column: the same rows in the same order, the same columns in the same order and
types, counts exactly equal, other numbers equal to 1e-9 (relative), missing where the other is missing, the same
attribute texts, the same weekly activity arrays.

Logs: the shipped sample (2,000 users, several cutoffs, whole and one customer at a time as the service sends them),
hand-made edge cases (events at the cutoff instant, at 23:59:59 and at midnight, window and lookback boundaries,
cancellations, returns, zero prices, postage lines, missing order ids, orders across midnight, one-event users,
attributes that change, go missing or differ at one instant, ratings), a generated log with event types and ratings
made awkward, Online Retail II customers (skipped without ``../shared/data``) and random small logs (Hypothesis).
A last test checks that the comparison itself notices one value changed in any column.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retention_core import features, features_small
from retention_core.dataset import SnapshotConfig, build_dataset, data_end
from retention_core.events import CANONICAL, canonical_events
from retention_core.io import read_table
from retention_core.roles import infer_schema

RTOL = 1e-9
ATOL = 1e-12  # values that are zero up to rounding (a log-ratio of two equal sums added in another order)
#: Columns that count things: equal exactly.
COUNT_PREFIXES = ("repeat_purchases", "orders_", "active_days_", "lines_total", "returns_total", "cancels_total",
                  "events_", "browsing_total", "ratings_count", "n_products", "n_categories", "gap_max_days")


def differences(duck: pd.DataFrame, small: pd.DataFrame, attributes: list[str]) -> tuple[list[str], dict]:
    """Where the two engines' tables disagree (one line per problem) and, per numeric column, the largest relative
    difference seen."""
    if list(duck.columns) != list(small.columns):
        return [f"columns differ: DuckDB {list(duck.columns)}, NumPy {list(small.columns)}"], {}
    problems = [f"{c}: type {duck[c].dtype} in DuckDB, {small[c].dtype} in NumPy" for c in duck.columns
                if duck[c].dtype != small[c].dtype]
    if len(duck) != len(small):
        return problems + [f"rows: {len(duck)} in DuckDB, {len(small)} in NumPy"], {}
    if not duck.index.equals(small.index):
        problems.append("the index differs")
    widest = {}
    for c in duck.columns:
        a, b = duck[c], small[c]
        if c in attributes or c == "user_id":
            x = a.astype(object).where(a.notna(), None).to_numpy()
            y = b.astype(object).where(b.notna(), None).to_numpy()
            same = x == y
        elif c == "snapshot_date":
            same = a.to_numpy() == b.to_numpy()
        else:
            x, y = a.to_numpy(dtype="float64"), b.to_numpy(dtype="float64")
            both = np.isnan(x) & np.isnan(y)
            exact = c.startswith(COUNT_PREFIXES)
            same = both | ((x == y) if exact else np.isclose(y, x, rtol=RTOL, atol=ATOL))
            with np.errstate(invalid="ignore", divide="ignore"):
                rel = np.abs(x - y) / np.maximum(np.abs(x), 1e-300)
            rel = rel[~both & ~(x == y)]
            widest[c] = float(rel.max()) if len(rel) else 0.0
        if not same.all():
            i = int(np.flatnonzero(~same)[0])
            problems.append(f"{c}: {int((~same).sum())} rows differ, e.g. row {i} ({duck['user_id'].iloc[i]}): "
                            f"DuckDB {a.iloc[i]!r}, NumPy {b.iloc[i]!r}")
    return problems, widest


@pytest.fixture(scope="module", autouse=True)
def _one_database():
    """The module's DuckDB computations share one in-memory database, as the service's do (a new database per
    computation costs 5-20 ms, most of a small log's time); the tests after this module get theirs back."""
    saved = dict(features._SHARED)
    features.share_database(threads=1)
    yield
    features._SHARED.clear()
    features._SHARED.update(saved)


WIDEST: dict[str, float] = {}  # the largest relative difference per column over every comparison of this module


#: Columns computed from whole numbers in every engine: equal to the last bit, not only to 1e-9.
BITWISE = ("gap_mean_days", "gap_std_days", "gap_max_days")


def assert_same(ev: pd.DataFrame, dates: list, cfg: SnapshotConfig | None = None, *, min_rows: int = 1) -> pd.DataFrame:
    cfg = cfg or SnapshotConfig()
    dates = [pd.Timestamp(d) for d in dates]
    end = data_end(ev)
    duck, duck_seq = features.compute(ev, dates, cfg, end=end, sequences=True)
    small, small_seq = features_small.compute(ev, dates, cfg, end=end, sequences=True)
    problems, widest = differences(duck, small, [c for c in ev.columns if c not in CANONICAL])
    assert not problems, "\n".join(problems)
    for c in BITWISE:  # tree models split on exact values: a last-bit difference can move a user across a split
        if c in duck.columns:
            x, y = duck[c].to_numpy(dtype="float64"), small[c].to_numpy(dtype="float64")
            assert ((x == y) | (np.isnan(x) & np.isnan(y))).all(), f"{c} differs in its last bits"
    for c, v in widest.items():
        WIDEST[c] = max(WIDEST.get(c, 0.0), v)
    assert duck_seq.dtype == small_seq.dtype and duck_seq.shape == small_seq.shape
    np.testing.assert_allclose(small_seq, duck_seq, rtol=1e-6, atol=0)
    assert len(duck) >= min_rows
    return small


def _canonical(raw: pd.DataFrame, overrides: dict | None = None) -> pd.DataFrame:
    return canonical_events(raw, infer_schema(raw, overrides or {}))


# ----------------------------------------------------------------------------------------------- the shipped sample
@pytest.fixture(scope="module")
def sample(sample_events_path) -> pd.DataFrame:
    return _canonical(read_table(sample_events_path))


def test_shipped_sample_every_user_several_cutoffs(sample):
    end = data_end(sample)
    dates = [end - pd.Timedelta(days=d) for d in (0, 45, 90, 200, 330)]
    assert_same(sample, dates, min_rows=5_000)


def test_shipped_sample_one_customer_at_a_time(sample):
    """As the service sees them: one customer's events, several cutoffs, users chosen across the sample."""
    end = data_end(sample)
    users = sample["user_id"].astype(str).unique()
    rows = 0
    for u in users[:: max(1, len(users) // 25)]:
        one = sample[sample["user_id"] == u].reset_index(drop=True)
        last = one["ts"].max().ceil("D")
        rows += len(assert_same(one, [last, last - pd.Timedelta(days=61), end], min_rows=0))
    assert rows >= 25


def test_windows_other_than_the_default(sample):
    part = sample[sample["user_id"].isin(sample["user_id"].unique()[:150])].reset_index(drop=True)
    cfg = SnapshotConfig(windows=(7, 14, 30, 90, 400), lookback_days=200, horizon_days=45, sequence_weeks=9)
    end = data_end(part)
    assert_same(part, [end - pd.Timedelta(days=d) for d in (10, 100)], cfg, min_rows=50)
    # without a 90-day window: the trends read their own 90 days (one definition each), in both engines
    short = SnapshotConfig(windows=(7, 30), lookback_days=200, horizon_days=45, sequence_weeks=9)
    assert_same(part, [end - pd.Timedelta(days=10)], short, min_rows=50)


# ----------------------------------------------------------------------------------------------- edge cases by hand
T = pd.Timestamp("2024-03-01")
EDGE_COLUMNS = ["customer_id", "event_time", "event_type", "order_id", "product_id", "category", "quantity",
                "unit_price", "rating", "country"]


def _edge_rows() -> list[tuple]:
    def at(delta_days: float = 0, clock: str = "00:00:00") -> str:
        return f"{(T + pd.Timedelta(days=delta_days)).date()} {clock}"

    buy = "purchase"
    return [
        # u1: at the cutoff instant (counts), 23:59:59 the evening before (same bucket), one second after (horizon)
        ("u1", at(0), buy, "1001", "A1", "Toys", 1, 5.0, None, "DE"),
        ("u1", at(-1, "23:59:59"), buy, "1002", "A2", "Toys", 2, 2.5, 4, "DE"),
        ("u1", at(0, "00:00:01"), buy, "1003", "A3", "Toys", 1, 9.0, None, "DE"),
        ("u1", at(-1, "23:59:59"), "view", None, "A9", "Books", None, None, None, "FR"),  # same instant, later row
        # u1: an order across midnight (two days), a window's edges (exactly T-7, T-30, T-90, T-180 at midnight and
        # one second later)
        ("u1", at(-20, "23:59:59"), buy, "1004", "A1", "Toys", 1, 5.0, None, None),
        ("u1", at(-19, "00:00:01"), buy, "1004", "A4", "Garden", 1, 7.0, None, None),
        *[("u1", at(-w, clock), buy, f"2{w}{k}", "A5", "Garden", 1, 1.0, 5, "DE")
          for w in (7, 30, 90, 180) for k, clock in enumerate(("00:00:00", "00:00:01"))],
        # u2: one event, a purchase without an order id
        ("u2", at(-40, "10:00:00"), buy, None, "B1", None, 3, 4.0, None, None),
        # u3: cancellations (C + digits), returns, a zero price, postage, missing order ids, ratings
        ("u3", at(-50, "09:00:00"), buy, "3001", "C1", "Home", 2, 10.0, 3, "ES"),
        ("u3", at(-50, "09:00:00"), buy, "3001", "POST", None, 1, 18.0, None, "ES"),
        ("u3", at(-49, "10:00:00"), buy, "C3001", "C1", "Home", -2, 10.0, None, "ES"),
        ("u3", at(-30, "11:00:00"), buy, "3002", "C2", "Home", -1, 10.0, None, "ES"),
        ("u3", at(-29, "12:00:00"), buy, "3003", "C3", "Home", 1, 0.0, None, "ES"),
        ("u3", at(-10, "00:00:00"), buy, None, "C4", "Home", 1, 3.0, 1, "ES"),
        ("u3", at(-10, "00:00:00"), buy, None, "C5", "Home", 1, 3.0, 2, "ES"),
        ("u3", at(-5, "13:00:00"), "return", "3004", "C4", "Home", 1, 3.0, None, "ES"),
        ("u3", at(-4, "13:00:00"), "add_to_cart", None, "C6", "Home", 1, 3.0, None, "ES"),
        # u4: the country changes, then goes missing; two values at one instant (the earlier row wins)
        ("u4", at(-300, "08:00:00"), buy, "4001", "D1", "Books", 1, 12.0, None, "PT"),
        ("u4", at(-200, "08:00:00"), buy, "4002", "D1", "Books", 1, 12.0, None, "IT"),
        ("u4", at(-100, "08:00:00"), buy, "4003", "D2", "Books", 1, 12.0, None, "NL"),
        ("u4", at(-100, "08:00:00"), "view", None, "D3", "Books", None, None, None, "BE"),
        ("u4", at(-3, "08:00:00"), "view", None, "D3", "Books", None, None, None, None),
        # u5: the only purchase exactly at T - 365 (outside the lookback); u6: one second later (inside)
        ("u5", at(-365), buy, "5001", "E1", "Toys", 1, 1.0, None, "DE"),
        ("u6", at(-365, "00:00:01"), buy, "6001", "E1", "Toys", 1, 1.0, None, "DE"),
        # u7: purchases at sub-second instants around midnight
        ("u7", at(-60, "00:00:00.000001"), buy, "7001", "F1", "Toys", 1, 2.0, None, "DE"),
        ("u7", at(-61), buy, "7002", "F1", "Toys", 1, 2.0, None, "DE"),
        ("u7", at(-62, "23:59:59.999999"), buy, "7003", "F2", "Toys", 1, 2.0, None, "DE"),
        # after the cutoff: u2 comes back at T + 90 exactly (inside the horizon), u4 at T + 91 (too late)
        ("u2", at(90), buy, None, "B1", None, 1, 4.0, None, None),
        ("u4", at(91, "00:00:01"), buy, "4004", "D1", "Books", 1, 12.0, None, "NL"),
        ("u9", at(200), buy, "9001", "Z1", "Toys", 1, 1.0, None, "DE"),  # the data run on past T + 90
    ]


@pytest.fixture(scope="module")
def edge() -> pd.DataFrame:
    raw = pd.DataFrame(_edge_rows(), columns=EDGE_COLUMNS).astype({"quantity": "Float64", "rating": "Float64"})
    ev = _canonical(raw, {"attributes": ["country"], "purchase_values": ["purchase"]})
    assert ev["is_cancel"].any() and ev["is_return"].any() and ev["is_nonproduct"].any()
    assert ev["order_id"].isna().any() and (ev["ts"] == ev["ts"].dt.floor("D")).any()
    return ev


def test_hand_made_edge_cases(edge):
    small = assert_same(edge, [T, T - pd.Timedelta(days=1), T + pd.Timedelta(days=1), T - pd.Timedelta(days=30)])
    row = small[small["snapshot_date"] == T].set_index("user_id")
    assert "u5" not in row.index and "u6" in row.index  # the lookback window is (T - 365, T]
    # the last 7 days: the orders at T and at 23:59:59 the evening before, and T - 7 plus one second; not T - 7 itself
    assert row.loc["u1", "orders_7d"] == 3 and row.loc["u1", "recency_days"] == 0
    assert row.loc["u2", "churned"] == 0 and row.loc["u4", "churned"] == 1
    assert np.isnan(row.loc["u2", "gap_mean_days"]) and np.isnan(row.loc["u2", "gap_std_days"])
    assert row.loc["u4", "country"] == "NL"  # the latest known value; at one instant, the earlier row's
    assert row.loc["u1", "country"] == "DE"


def test_edge_cases_without_optional_columns(edge):
    """Only user, time and order id: the columns of what the log lacks are dropped by both engines alike."""
    raw = pd.DataFrame(_edge_rows(), columns=EDGE_COLUMNS)[["customer_id", "event_time", "order_id"]]
    ev = _canonical(raw, {"user_id": "customer_id", "timestamp": "event_time", "order_id": "order_id",
                          "kind": "events"})
    small = assert_same(ev, [T, T - pd.Timedelta(days=20)])
    assert "revenue_total" not in small.columns and "n_products" not in small.columns


# ----------------------------------------------------------------------------------------------- generated logs
@pytest.fixture(scope="module")
def awkward() -> pd.DataFrame:
    from assets.generator import generate_for_events
    from tests.core.test_reference_features import _awkward

    raw = _awkward(generate_for_events(12_000, seed=4), seed=2)
    return _canonical(raw, {"attributes": ["country", "channel", "device"]})


def test_event_types_ratings_and_awkward_lines(awkward):
    assert awkward["event_type"].nunique() > 8 and awkward["rating"].notna().any()
    end = data_end(awkward)
    small = assert_same(awkward, [end - pd.Timedelta(days=d) for d in (30, 90, 150)],
                        SnapshotConfig(windows=(7, 14, 30, 90, 180, 365)), min_rows=100)
    assert any(c.startswith("events_add_to_cart_30d_") for c in small.columns)  # two types, one column name


def test_build_dataset_picks_the_engine_by_size(awkward, monkeypatch):
    few = awkward[awkward["user_id"].isin(awkward["user_id"].unique()[:20])].reset_index(drop=True)
    cfg = SnapshotConfig()
    assert len(awkward) <= features_small.SMALL_EVENTS and features_small.fits(awkward, cfg)
    monkeypatch.setattr(features_small, "SMALL_EVENTS", len(few))
    assert features_small.fits(few, cfg) and not features_small.fits(awkward, cfg)
    assert features_small.fits(few, SnapshotConfig(windows=(7, 30)))  # the trends read their own 90 days, any windows
    called = []
    monkeypatch.setattr(features_small, "compute", lambda *a, **k: called.append(1) or features.compute(*a, **k))
    build_dataset(few, cfg, cutoffs=[data_end(few) - pd.Timedelta(days=30)])
    assert called


# ----------------------------------------------------------------------------------------------- Online Retail II
def test_online_retail_customers(real_file):
    raw = pd.read_parquet(real_file("online_retail_ii_2009_2010.parquet"))
    ids = raw["Customer ID"].dropna().unique()
    pick = np.random.default_rng(7).choice(ids, 400, replace=False)
    ev = _canonical(raw[raw["Customer ID"].isin(pick)].reset_index(drop=True))
    assert ev["is_cancel"].any() and ev["is_nonproduct"].any()
    assert_same(ev, ["2010-09-10", "2010-06-01", "2010-12-01"], min_rows=200)
    for u in ev["user_id"].unique()[:25]:  # one customer at a time, as the service scores them
        assert_same(ev[ev["user_id"] == u].reset_index(drop=True), ["2010-09-10", "2010-12-10"], min_rows=0)


# ----------------------------------------------------------------------------------------------- random small logs
_USERS = ["a", "b", "B", "ä", "10", "9", "z z"]


@st.composite
def small_logs(draw):
    n = draw(st.integers(1, 60))
    start = pd.Timestamp("2023-01-01")
    rows = []
    for _ in range(n):
        day = draw(st.integers(0, 420))
        second = draw(st.sampled_from([0, 1, 86_399, 43_200]) | st.integers(0, 86_399))
        kind = draw(st.sampled_from(["purchase", "purchase", "purchase", "view", "return", "cancel", None]))
        order = draw(st.sampled_from([None, "1", "2", "3", "C4", "C5", "6", "7"]))
        rows.append((draw(st.sampled_from(_USERS)), str(start + pd.Timedelta(days=day, seconds=second)), kind, order,
                     draw(st.sampled_from([None, "P1", "P2", "POST", "P3"])),
                     draw(st.sampled_from([None, "X", "Y"])), draw(st.sampled_from([None, -1, 0, 1, 2, 5])),
                     draw(st.sampled_from([None, 0.0, 1.5, 2.25, 10.0])), draw(st.sampled_from([None, 1, 3, 5])),
                     draw(st.sampled_from([None, "DE", "FR", "ES"]))))
    cutoffs = draw(st.lists(st.integers(0, 430), min_size=1, max_size=3))
    return rows, [start + pd.Timedelta(days=d) for d in cutoffs]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_logs(), st.sampled_from([(30, 365), (60, 90), (7, 20)]))
def test_random_small_logs(log, horizon_lookback):
    rows, cutoffs = log
    raw = pd.DataFrame(rows, columns=EDGE_COLUMNS).astype({"quantity": "Float64", "unit_price": "Float64",
                                                           "rating": "Float64"})
    ev = _canonical(raw, {"user_id": "customer_id", "timestamp": "event_time", "order_id": "order_id",
                          "event_type": "event_type", "product": "product_id", "category": "category",
                          "quantity": "quantity", "price": "unit_price", "rating": "rating",
                          "attributes": ["country"], "purchase_values": ["purchase"], "kind": "events"})
    h, lb = horizon_lookback
    assert_same(ev, cutoffs, SnapshotConfig(horizon_days=h, lookback_days=lb, sequence_weeks=8), min_rows=0)


# ----------------------------------------------------------------------------------------------- the check itself
def test_the_comparison_notices_any_column_changed(edge):
    """One value changed in any one column (a count by one, a number by a millionth, a text, a date) is reported,
    by that column's name: the comparison above would fail if the engine got one column wrong."""
    duck, _ = features.compute(edge, [T], SnapshotConfig(), end=data_end(edge))
    attributes = ["country"]
    assert differences(duck, duck.copy(), attributes)[0] == []
    for c in duck.columns:
        changed = duck.copy()
        i = int(np.flatnonzero(changed[c].notna().to_numpy())[0])
        v = changed[c].iloc[i]
        if c == "snapshot_date":
            changed.loc[i, c] = v + pd.Timedelta(days=1)
        elif c in attributes or c == "user_id":
            changed.loc[i, c] = str(v) + "x"
        else:
            changed.loc[i, c] = v + 1 if c.startswith(COUNT_PREFIXES) else v * (1 + 1e-6) + 1e-6
        problems, _ = differences(duck, changed, attributes)
        assert problems and problems[0].startswith(f"{c}:"), (c, problems)


def test_report_widest_differences():
    """Prints the largest relative difference per column seen by this module (run with -s to read it)."""
    if WIDEST:
        worst = sorted(WIDEST.items(), key=lambda kv: -kv[1])[:8]
        print("\nwidest relative differences, NumPy vs DuckDB: " + ", ".join(f"{c} {v:.1e}" for c, v in worst))
    assert all(v <= RTOL for v in WIDEST.values())
