"""Tests for the synthetic event-log generator and the shipped sample."""

from __future__ import annotations

import pandas as pd
import pytest

from assets import generator as gen
from assets.generator import (
    COLUMNS,
    EVENT_TYPES,
    SAMPLE_SPEC,
    generate_events,
    generate_for_events,
    sample_path,
)

START = "2023-01-01"
DAYS = 730


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    return generate_events(3000, start=START, days=DAYS, seed=3)


def _churn_by(frame: pd.DataFrame, attribute: str) -> pd.Series:
    """Share of customers who bought in the year before the cutoff, not in the 90 days after."""
    end = pd.Timestamp(START) + pd.Timedelta(days=DAYS)
    cutoff = end - pd.Timedelta(days=90)
    buys = frame[frame["event_type"] == "purchase"]
    year_ago = cutoff - pd.Timedelta(days=365)
    year_before = buys["event_time"].between(year_ago, cutoff, inclusive="left")
    before = buys[year_before]
    after = buys[buys["event_time"] >= cutoff]
    active = before.drop_duplicates("customer_id").set_index("customer_id")[attribute]
    churned = ~active.index.isin(after["customer_id"].unique())
    return pd.Series(churned, index=active.values).groupby(level=0, observed=True).mean()


def test_deterministic_given_seed():
    a = generate_events(300, seed=5)
    b = generate_events(300, seed=5)
    pd.testing.assert_frame_equal(a, b)
    c = generate_events(300, seed=6)
    assert not a.equals(c)


def test_columns_and_dtypes(events):
    assert tuple(events.columns) == COLUMNS
    text_columns = ("customer_id", "event_type", "order_id", "product_id", "category")
    for col in text_columns + ("country", "channel", "device"):
        assert isinstance(events[col].dtype, pd.CategoricalDtype), col
    assert events["event_time"].dtype == "datetime64[s]"
    assert events["event_time"].dt.tz is None
    assert events["quantity"].dtype.kind == "i"
    assert events["unit_price"].dtype == "float32"
    assert str(events["rating"].dtype) == "Int8"

    assert set(events["event_type"].unique()) == set(EVENT_TYPES)
    assert events["event_time"].is_monotonic_increasing
    assert events["event_time"].min() >= pd.Timestamp(START)
    assert events["event_time"].max() < pd.Timestamp(START) + pd.Timedelta(days=DAYS)
    assert (events["unit_price"] > 0).all()
    assert events["customer_id"].astype(str).str.fullmatch(r"C\d{6}").all()
    assert events["product_id"].astype(str).str.fullmatch(r"P\d{4}").all()
    assert events["category"].nunique() == 12
    assert (events.groupby("product_id", observed=True)["category"].nunique() == 1).all()
    per_customer = events.groupby("customer_id", observed=True)
    attrs = per_customer[["country", "channel", "device"]].nunique()
    assert (attrs == 1).all().all()

    kind = events["event_type"]
    buys = events[kind == "purchase"]
    assert buys["order_id"].astype(str).str.fullmatch(r"O\d{7}").all()
    assert (buys["quantity"] > 0).all()
    assert events.loc[kind.isin(["view", "add_to_cart"]), "order_id"].isna().all()
    rated = buys["rating"].dropna()
    assert 0 < len(rated) < 0.2 * len(buys)
    assert rated.between(1, 5).all()
    assert events.loc[kind != "purchase", "rating"].isna().all()
    lines = buys.groupby("order_id", observed=True).size()
    assert lines.between(1, 4).all()


def test_returns_reference_an_earlier_order(events):
    returns = events[events["event_type"] == "return"]
    buys = events[events["event_type"] == "purchase"]
    orders = buys.groupby("order_id", observed=True).size()
    assert 0.01 < len(returns) / len(orders) < 0.08
    assert (returns["quantity"] < 0).all()
    assert returns["order_id"].astype(str).str.fullmatch(r"RO\d{7}").all()

    original = returns.assign(source=returns["order_id"].astype(str).str[1:])
    bought = buys.assign(source=buys["order_id"].astype(str))[
        ["source", "customer_id", "product_id", "event_time", "quantity"]
    ]
    merged = original.merge(bought, on="source", suffixes=("", "_bought"))
    same_line = merged[
        (merged["customer_id"].astype(str) == merged["customer_id_bought"].astype(str))
        & (merged["product_id"].astype(str) == merged["product_id_bought"].astype(str))
    ]
    assert same_line["source"].nunique() == len(returns)
    assert (same_line["event_time"] > same_line["event_time_bought"]).all()
    assert (-same_line["quantity"] <= same_line["quantity_bought"]).all()


def test_purchase_counts_are_overdispersed(events):
    orders = (
        events[events["event_type"] == "purchase"]
        .groupby("customer_id", observed=True)["order_id"]
        .nunique()
    )
    assert orders.min() >= 1
    assert orders.var() > 2 * orders.mean()


def test_paid_social_churns_more_than_email(events):
    churn = _churn_by(events, "channel")
    assert churn["paid_social"] > churn["email"] + 0.05
    overall = _churn_by(events.assign(all="all"), "all")["all"]
    assert 0.40 <= overall <= 0.75


def test_typical_volume():
    frame = generate_events(2000, seed=1)
    purchase_lines = int((frame["event_type"] == "purchase").sum())
    assert 20_000 <= purchase_lines <= 40_000
    assert 30_000 <= len(frame) <= 120_000


@pytest.mark.parametrize("n_events", [5_000, 40_000])
def test_generate_for_events_hits_target(n_events):
    frame = generate_for_events(n_events, seed=2)
    assert abs(len(frame) - n_events) <= 0.15 * n_events


def test_cli_writes_csv_and_parquet(tmp_path):
    csv = tmp_path / "events.csv.gz"
    assert gen.main(["--users", "40", "--out", str(csv), "--seed", "4"]) == 0
    read = pd.read_csv(csv)
    assert tuple(read.columns) == COLUMNS
    assert read["event_time"].str.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d").all()
    assert len(read) == len(generate_events(40, seed=4))

    parquet = tmp_path / "events.parquet"
    assert gen.main(["--events", "2000", "--out", str(parquet)]) == 0
    assert tuple(pd.read_parquet(parquet).columns) == COLUMNS

    with pytest.raises(ValueError):
        gen.write_events(read, tmp_path / "events.xlsx")


def test_shipped_sample_reads_with_pandas():
    path = sample_path()
    assert path.exists()
    assert path.stat().st_size < 1_600_000
    sample = pd.read_csv(path)
    assert tuple(sample.columns) == COLUMNS
    assert set(sample["event_type"].unique()) == set(EVENT_TYPES)
    times = pd.to_datetime(sample["event_time"], format="%Y-%m-%d %H:%M:%S")
    start = pd.Timestamp(SAMPLE_SPEC["start"])
    assert times.min() >= start
    assert times.max() < start + pd.Timedelta(days=SAMPLE_SPEC["days"])
    n_users = SAMPLE_SPEC["n_users"]
    assert 0.95 * n_users <= sample["customer_id"].nunique() <= n_users
    assert (sample.loc[sample["event_type"] == "return", "quantity"] < 0).all()
    assert sample.loc[sample["event_type"] == "view", "order_id"].isna().all()
