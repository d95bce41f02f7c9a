"""The product's features against an independent plain-pandas implementation (``bench/reference_features.py``).

The reference is written from the documented definitions (cutoff and day-bucket rules of ``events.py``, the feature
list of ``features.py``), not from the product's code, so agreement here checks the definitions themselves: same users,
same columns in the same order, numbers equal to 1e-9 (relative), missing where the other is missing, same attributes.
Logs: the shipped sample, a small generated log, the same log made awkward (purchase lines without an order id,
cancelled orders, postage lines, missing products and categories, events at midnight and at sub-second times, orders
straddling midnight, zero prices, negative quantities, attributes that change or go missing, more event types than
are kept and two types with the same column name) and a bare log with only
user, time and order id (every optional column missing, so the column-dropping rules apply).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from assets.generator import generate_for_events
from bench.reference_features import differences, pandas_full_reference
from retention_core.events import CANONICAL, canonical_events
from retention_core.dataset import SnapshotConfig, build_dataset, data_end
from retention_core.io import read_table
from retention_core.roles import infer_schema

RTOL = 1e-9
ATOL = 1e-12  # for values that are zero up to rounding (e.g. a log-ratio of two equal sums added in another order)


def _canonical(raw: pd.DataFrame, overrides: dict | None = None) -> pd.DataFrame:
    return canonical_events(raw, infer_schema(raw, overrides))


def _awkward(raw: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """The generated log with the cases a clean generator never produces."""
    rng = np.random.default_rng(seed)
    df = raw.copy()
    for c in df.columns:
        if isinstance(df[c].dtype, pd.CategoricalDtype):
            df[c] = df[c].astype(object)
    df["event_time"] = df["event_time"].astype("datetime64[ns]")
    n = len(df)
    buy = (df["event_type"] == "purchase").to_numpy()

    def some(share: float, among: np.ndarray | None = None) -> np.ndarray:
        pick = rng.random(n) < share
        return pick & among if among is not None else pick

    df.loc[some(0.10, buy), "order_id"] = None                       # purchase lines without an order id
    ids = df["order_id"].dropna().unique()
    cancelled = df["order_id"].isin(rng.choice(ids, len(ids) // 30, replace=False))
    df.loc[cancelled, "order_id"] = "C" + df.loc[cancelled, "order_id"].str[1:]  # cancelled orders (C + digits)
    df.loc[some(0.05, buy), "product_id"] = "POST"                   # postage: a purchase line that is no product
    df.loc[some(0.03), "product_id"] = None
    df.loc[some(0.03), "category"] = None
    df.loc[some(0.02, buy), "unit_price"] = 0.0                      # not a qualifying purchase
    df.loc[some(0.01, buy), "quantity"] = -1                         # a return
    mid = some(0.05)                                                 # exactly at midnight (order lines split days)
    df.loc[mid, "event_time"] = df.loc[mid, "event_time"].dt.floor("D")
    sub = some(0.05)                                                 # sub-second times
    df.loc[sub, "event_time"] += pd.to_timedelta(rng.integers(1, 10**9, int(sub.sum())), unit="ns")
    # attributes: a third of the users move country at some moment; some rows lack the channel
    users = df["customer_id"].unique()
    movers = pd.Series(rng.random(len(users)) < 0.3, index=users)
    start, stop = df["event_time"].min(), df["event_time"].max()
    switch = pd.Series(start + (stop - start) * rng.random(len(users)), index=users)
    moved = movers.loc[df["customer_id"]].to_numpy() & (df["event_time"] >= switch.loc[df["customer_id"]].to_numpy())
    df.loc[moved, "country"] = "XX"
    df.loc[some(0.05), "channel"] = None
    df.loc[df["customer_id"].isin(users[rng.random(len(users)) < 0.05]), "channel"] = None  # never known
    # more event types than the product keeps (12 kinds of page view), two that share a column name
    pages = some(0.6, (df["event_type"] == "view").to_numpy())
    df.loc[pages, "event_type"] = np.array([f"Page {k}" for k in range(12)], dtype=object)[rng.integers(0, 12, n)[pages]]
    df.loc[some(0.4, (df["event_type"] == "add_to_cart").to_numpy()), "event_type"] = "Add to cart"
    return df


def assert_same_features(ev: pd.DataFrame, T: pd.Timestamp, cfg: SnapshotConfig) -> None:
    product = build_dataset(ev, cfg, cutoffs=[T]).frame
    reference = pandas_full_reference(ev, T, cfg, data_end(ev))
    assert len(product) > 100
    problems = differences(product, reference, [c for c in ev.columns if c not in CANONICAL], rtol=RTOL, atol=ATOL)
    assert not problems, f"cutoff {T.date()}:\n" + "\n".join(problems)


@pytest.fixture(scope="module")
def generated() -> pd.DataFrame:
    return generate_for_events(50_000, seed=1)


def test_sample_log(sample_events_path):
    ev = _canonical(read_table(sample_events_path))
    end = data_end(ev)
    for T in (end - pd.Timedelta(days=90), end - pd.Timedelta(days=200)):
        assert_same_features(ev, T, SnapshotConfig())


def test_generated_log_labelled_and_unlabelled_cutoffs(generated):
    ev = _canonical(generated)
    end = data_end(ev)
    for T in (end - pd.Timedelta(days=90), end - pd.Timedelta(days=30)):  # the second one has no label yet
        assert_same_features(ev, T, SnapshotConfig())


def test_awkward_log(generated):
    ev = _canonical(_awkward(generated), {"attributes": ["country", "channel", "device"]})  # country now varies
    assert ev["is_cancel"].any() and ev["is_nonproduct"].any() and ev["order_id"].isna().any()
    assert ev["event_type"].nunique() > 8 and ev["channel"].isna().any()
    end = data_end(ev)
    for T in (end - pd.Timedelta(days=90), end - pd.Timedelta(days=150)):
        assert_same_features(ev, T, SnapshotConfig(windows=(7, 14, 30, 90, 180, 365)))


def test_bare_log_drops_missing_columns(generated):
    raw = generated.loc[generated["event_type"] == "purchase", ["customer_id", "event_time", "order_id"]]
    ev = _canonical(raw.reset_index(drop=True), {"user_id": "customer_id", "timestamp": "event_time",
                                                 "order_id": "order_id", "kind": "events"})
    T = data_end(ev) - pd.Timedelta(days=60)
    assert_same_features(ev, T, SnapshotConfig(horizon_days=60, lookback_days=180))


def test_a_very_busy_user_keeps_every_count_exact(generated):
    """Counts are packed into shared columns with room for the busiest user's events: a bot with thousands of events
    on one day (wider fields, fewer per column) must not spill into the neighbouring counts of anyone."""
    bot = generated.sample(6_000, replace=True, random_state=3).copy()
    bot["customer_id"] = "BOT"
    day = generated["event_time"].max().floor("D") - pd.Timedelta(days=120)
    bot["event_time"] = day + pd.to_timedelta(np.arange(len(bot)), unit="s")
    ev = _canonical(pd.concat([generated, bot], ignore_index=True))
    assert (ev["user_id"] == "BOT").sum() > 4096  # 13-bit counts, 4 per packed column (10 bits and 5 without it)
    T = data_end(ev) - pd.Timedelta(days=90)
    assert_same_features(ev, T, SnapshotConfig())
    row = build_dataset(ev, SnapshotConfig(), cutoffs=[T]).frame.set_index("user_id").loc["BOT"]
    assert row["events_total"] == (ev["user_id"] == "BOT").sum()


@pytest.mark.parametrize("largest", [127, 1_000, 2**26])
def test_packed_counts_read_back_their_sums(largest):
    """Each group's counts, summed in DuckDB as packed floats, read back exactly: with the busiest group at the
    largest count its fields allow (127 fills 7 bits), and with wide fields (one count per column)."""
    from retention_core.features import Packing, connect

    rng = np.random.default_rng(largest % 97)
    fields = [f"f{i}" for i in range(9)]
    groups = rng.integers(0, 50, 5_000)
    counts = {f: rng.integers(0, 2, len(groups)) for f in fields}
    counts["f0"][groups == 7] = 0
    counts["f0"][np.flatnonzero(groups == 7)[0]] = largest  # one group reaches the largest count
    P = Packing(fields, largest)
    assert len(P.columns) == -(-len(fields) // max(1, 52 // P.bits))
    frame = pd.DataFrame({"g": groups, **dict(zip(P.columns, P.pack(counts)))})
    con = connect()
    con.register("t", frame)
    reads = ", ".join(P.read(f, "sum({})") + f" AS {f}" for f in fields)
    sums = con.execute(f"SELECT g, {reads} FROM t GROUP BY g ORDER BY g").df().set_index("g")
    expected = pd.DataFrame(counts).groupby(groups).sum()
    assert expected.to_numpy().max() == largest  # the test data stay within what the packing promises
    pd.testing.assert_frame_equal(sums.astype("int64"), expected.astype("int64"), check_names=False)
