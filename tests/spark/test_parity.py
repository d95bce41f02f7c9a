"""The Spark engine against the DuckDB engine: every feature column, row set and label equal (counts exactly, other
numbers to 1e-9 relative), on the shipped sample, a hand-made log of the Definitions' edge cases, a generated log made
awkward, Online Retail II (read from a Parquet folder by Spark itself) and CDNOW, and batch scoring equal to ``score``
(on the training log and on new logs that lack an event type or the ratings the run learned from); workers run the
command's own Python.

One Spark session (``local[2]``, ``tests/spark/conftest.py``) serves every Spark test; they are skipped, with the
reason, where PySpark or a Java runtime is missing (``pip install -r requirements-spark.txt``; Java 17). The real-data
cases are skipped without ``../shared/data``.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retention_core.events import CANONICAL, canonical_events
from retention_core.dataset import SnapshotConfig, build_dataset
from retention_core.io import read_table
from retention_core.roles import infer_schema
from retention_core.spark.session import unavailable
from tests.conftest import real_path

_WHY = unavailable()
pytestmark = pytest.mark.skipif(_WHY is not None, reason=f"Spark engine not testable here: {_WHY}")

RTOL = 1e-9
TEXT_NOT_COUNTS = ("revenue", "units", "rating", "days", "rate", "gap", "trend", "vs_", "per_order", "avg_")


def assert_same(duck: pd.DataFrame, spark_frame: pd.DataFrame, attributes: list[str]) -> dict:
    """Equal frames: columns (names, order, types), rows (same users in the same order per snapshot), counts exactly,
    other numbers to 1e-9 relative (1e-12 absolute near zero), missing where missing; returns the largest relative
    difference per column."""
    assert list(spark_frame.columns) == list(duck.columns)
    assert len(spark_frame) == len(duck)
    assert (spark_frame["user_id"].astype(str).to_numpy() == duck["user_id"].astype(str).to_numpy()).all()
    assert (pd.to_datetime(spark_frame["snapshot_date"]).to_numpy() == pd.to_datetime(duck["snapshot_date"]).to_numpy()).all()
    worst = {}
    for c in duck.columns:
        if c in ("user_id", "snapshot_date"):
            continue
        assert spark_frame[c].dtype == duck[c].dtype, c
        if c in attributes:
            a = duck[c].astype(object).where(duck[c].notna(), None).to_numpy()
            b = spark_frame[c].astype(object).where(spark_frame[c].notna(), None).to_numpy()
            assert (a == b).all(), c
            continue
        x, y = duck[c].to_numpy("float64"), spark_frame[c].to_numpy("float64")
        assert (np.isnan(x) == np.isnan(y)).all(), f"{c}: missing in one engine only"
        ok = ~np.isnan(x)
        count = not any(w in c for w in TEXT_NOT_COUNTS) and np.all(x[ok] % 1 == 0)
        if count or c == "churned":
            assert (x[ok] == y[ok]).all(), f"{c}: counts differ"
        else:
            np.testing.assert_allclose(y[ok], x[ok], rtol=RTOL, atol=1e-12, err_msg=c)
        rel = np.abs(y[ok] - x[ok]) / np.maximum(np.abs(x[ok]), 1e-300)
        worst[c] = float(rel.max()) if rel.size else 0.0
    return worst


def both(ev: pd.DataFrame, cfg: SnapshotConfig, cutoffs=None, *, sequences=False, events=None):
    from retention_core import spark as rs

    duck = build_dataset(ev, cfg, cutoffs=cutoffs, sequences=sequences)
    other = rs.build_dataset(events if events is not None else ev, cfg, cutoffs=cutoffs, sequences=sequences)
    return duck, other


# ----------------------------------------------------------------------------------------------- edge cases
def edge_log() -> pd.DataFrame:
    """An order export with the Definitions' edge cases (cutoffs 2024-03-01 and 2024-03-02, 60-day lookback), on top
    of some ordinary shoppers."""
    rows = []

    def add(user, when, invoice, stock="85123A", qty=1, price=2.5, country="UK"):
        rows.append({"Customer": user, "InvoiceDate": when, "Invoice": invoice, "StockCode": stock, "Quantity": qty,
                     "Price": price, "Country": country})

    # exactly at the cutoff (before it), a second before, a microsecond after; an order across midnight
    add("u1", "2024-03-01 00:00:00", "1001")
    add("u1", "2024-02-29 23:59:59", "1002")
    add("u1", "2024-02-29 23:59:59", "1003", stock="22423")
    add("u1", "2024-03-01 00:00:00.000001", "1004")
    add("u1", "2024-03-01 23:59:59", "1005")
    add("u1", "2024-03-02 00:00:00", "1005", stock="22423")
    # a user with one event, and one whose only purchase is exactly at the lookback boundary (not counted)
    add("u2", "2024-02-10 12:00:00", "1006")
    add("u3", "2024-01-01 00:00:00", "1007")
    add("u3b", "2024-01-01 00:00:01", "1008")
    # cancellations (C...), returns (negative quantities), zero prices, postage and a bad-debt line
    add("u4", "2024-02-01 10:00:00", "1009", qty=5)
    add("u4", "2024-02-01 11:00:00", "C1009", qty=-5)
    add("u4", "2024-02-15 09:00:00", "1010", qty=-2)
    add("u4", "2024-02-15 09:30:00", "1011", price=0.0)
    add("u4", "2024-02-20 09:30:00", "1012", stock="POST", price=18.0)
    add("u4", "2024-02-20 09:30:00", "1012", stock="22423", qty=3)
    add("u4", "2024-02-21 09:30:00", "A1013", stock="B", price=-11062.06)
    # purchase lines without an order id, and exact duplicate rows
    add("u5", "2024-02-25 08:00:00", None)
    add("u5", "2024-02-25 08:05:00", None, stock="22423")
    add("u5", "2024-02-26 08:00:00", "1014")
    add("u5", "2024-02-26 08:00:00", "1014")
    # attributes that change, go missing, and padded ids
    add(" u6 ", "2024-01-20 08:00:00", "1015", country="FR")
    add("u6", "2024-02-20 08:00:00", "1016", country=None)
    add("u6", "2024-02-27 08:00:00", "1017", country="DE")
    add("u6", "2024-03-05 08:00:00", "1018", country="ES")
    # only after the cutoffs (never in the population), and sub-second times
    add("u7", "2024-03-10 08:00:00.250", "1019")
    add("u8", "2024-02-28 23:59:59.999999", "1020")
    add("u8", "2024-02-29 00:00:00.5", "1021")
    rng = np.random.default_rng(7)
    start = pd.Timestamp("2023-10-01")
    for k in range(120):  # ordinary shoppers around the cutoffs
        for j in range(int(rng.integers(1, 8))):
            t = start + pd.Timedelta(seconds=int(rng.integers(0, 200 * 86400)))
            add(f"c{k:03d}", str(t), f"{2000 + 10 * k + j}", stock=f"{20000 + int(rng.integers(0, 40))}",
                qty=int(rng.integers(1, 6)), price=float(rng.choice([0.85, 1.25, 2.95, 4.5])),
                country=str(rng.choice(["UK", "FR", "DE"])))
    return pd.DataFrame(rows)


EDGE_CFG = SnapshotConfig(horizon_days=30, lookback_days=60, windows=(7, 30, 90, 180, 365))
EDGE_CUTOFFS = ["2024-03-01", "2024-03-02", "2024-02-29", "2024-03-31"]


def test_edge_cases_from_a_pandas_log(spark):
    raw = edge_log()
    ev = canonical_events(raw, infer_schema(raw))
    duck, other = both(ev, EDGE_CFG, EDGE_CUTOFFS, sequences=True)
    assert_same(duck.frame, other.frame, ["Country"])
    assert np.array_equal(duck.sequences, other.sequences)
    at_t = duck.frame[duck.frame["snapshot_date"] == pd.Timestamp("2024-03-01")].set_index("user_id")
    assert "u3" not in at_t.index and "u3b" in at_t.index and "u7" not in at_t.index  # the lookback is (T - 60, T]
    assert at_t.loc["u1", "recency_days"] == 0.0 and at_t.loc["u1", "churned"] == 0.0


def test_edge_cases_read_by_spark_from_a_parquet_folder(spark, tmp_path):
    """The same log as a folder of Parquet files with nanosecond timestamps (which Spark reads only as raw counts),
    read by Spark with the cleaning rules ported from canonical_events, and by the product's reader for DuckDB.
    (Text timestamps from Parquet: the command-line case below.)"""
    from retention_core.spark.source import read_parquet_events

    raw = edge_log()
    raw["InvoiceDate"] = pd.to_datetime(raw["InvoiceDate"], format="ISO8601").astype("datetime64[ns]")
    folder = tmp_path / "events"
    (folder / "day=1").mkdir(parents=True)
    half = len(raw) // 2
    raw.iloc[:half].to_parquet(folder / "day=1" / "part-0.parquet", index=False)
    raw.iloc[half:].to_parquet(folder / "part-1.parquet", index=False)
    (folder / "_SUCCESS").write_text("")
    df = read_table(folder)
    ev = canonical_events(df, infer_schema(df))
    events, schema, _ = read_parquet_events(spark, folder)
    assert schema.roles == infer_schema(df).roles
    assert events.stats()["rows"] == len(ev)
    duck, other = both(ev, EDGE_CFG, EDGE_CUTOFFS, events=events)
    assert_same(duck.frame, other.frame, ["Country"])


def test_text_columns_read_as_the_product_reads_them(spark, tmp_path):
    """Text columns whose sample reads as numbers but whose whole log does not (order ids ``1001`` ... and a few
    ``C1009``, ``A1013``; a segment ``1``, ``2`` ... and one ``01``), or reads as numbers written another way (prices
    ``2.50`` ... and one ``-11,062.06``; quantities ``+3``), are read by Spark as the product reads the whole file."""
    from retention_core.spark.source import read_parquet_events

    raw = edge_log()
    raw["Invoice"] = raw["Invoice"].astype("string")
    raw["Price"] = [f"{p:,.2f}" for p in raw["Price"]]
    raw["Quantity"] = [f"+{q}" if q > 0 and i % 3 == 0 else str(q) for i, q in enumerate(raw["Quantity"])]
    raw["Segment"] = [str(1 + i % 4) for i in range(len(raw))]
    raw.loc[raw["Customer"] == "u4", "Segment"] = "01"
    src = tmp_path / "orders.parquet"
    raw.to_parquet(src, index=False)
    roles = {"user_id": "Customer", "timestamp": "InvoiceDate", "order_id": "Invoice", "product": "StockCode",
             "quantity": "Quantity", "price": "Price", "attributes": ["Country", "Segment"], "kind": "events"}
    df = read_table(src)
    assert all(df[c].dtype == "str" for c in ("Invoice", "Segment")) and df["Price"].dtype == "float64"
    ev = canonical_events(df, infer_schema(df, roles))
    assert ev["is_cancel"].any() and "01" in set(ev["Segment"].astype(str))
    events, _, _ = read_parquet_events(spark, src, roles, sample_rows=20)  # a sample without the odd cells
    duck, other = both(ev, EDGE_CFG, EDGE_CUTOFFS, events=events)
    assert_same(duck.frame, other.frame, ["Country", "Segment"])


def test_event_types_ratings_and_categories(spark):
    """A log with event types (browsing, carts, purchases, returns, cancellations), ratings and categories."""
    from assets.generator import generate_events

    raw = generate_events(500, seed=11, days=400)
    ev = canonical_events(raw, infer_schema(raw))
    cfg = SnapshotConfig(horizon_days=60)
    duck, other = both(ev, cfg, ["2023-09-15", "2023-11-01 13:00"])
    assert_same(duck.frame, other.frame, [c for c in ev.columns if c not in CANONICAL])


def test_awkward_generated_log(spark):
    """The generated log made awkward by the reference-features test (orders without ids, cancelled orders, postage,
    midnight and sub-second times, moving attributes, more event types than are kept, two sharing a column name)."""
    from assets.generator import generate_events
    from tests.core.test_reference_features import _awkward

    raw = _awkward(generate_events(400, seed=3, days=500), seed=1)
    ev = canonical_events(raw, infer_schema(raw))
    duck, other = both(ev, SnapshotConfig(horizon_days=45, n_snapshots=3, step_days=40))
    assert_same(duck.frame, other.frame, [c for c in ev.columns if c not in CANONICAL])


def test_shipped_sample_with_sequences(spark, sample_events_path):
    df = read_table(sample_events_path)
    ev = canonical_events(df, infer_schema(df))
    duck, other = both(ev, None, sequences=True)
    assert len(duck.frame["snapshot_date"].unique()) > 1
    assert_same(duck.frame, other.frame, [c for c in ev.columns if c not in CANONICAL])
    assert np.array_equal(duck.sequences, other.sequences)
    assert duck.numeric == other.numeric and duck.categorical == other.categorical


# ------------------------------------------------------------------------------------------------- real data
def test_online_retail_from_a_parquet_folder(spark, tmp_path):
    """Online Retail II split into a folder of Parquet files, read by Spark itself (never through pandas)."""
    import pyarrow.parquet as pq

    from retention_core.spark.source import read_parquet_events

    table = pq.read_table(real_path("online_retail_ii_2009_2010.parquet"))
    k = len(table) // 3
    for i in range(3):
        pq.write_table(table.slice(i * k, k if i < 2 else len(table) - 2 * k), tmp_path / f"part-{i}.parquet")
    df = read_table(tmp_path)
    ev = canonical_events(df, infer_schema(df))
    events, _, _ = read_parquet_events(spark, tmp_path)
    duck, other = both(ev, SnapshotConfig(), ["2010-09-10", "2010-06-01"], events=events)
    assert len(duck.frame) > 5000
    assert_same(duck.frame, other.frame, ["Country"])


def test_cdnow_at_two_cutoffs(spark):
    df = read_table(real_path("cdnow_master.txt"))
    ev = canonical_events(df, infer_schema(df))
    duck, other = both(ev, SnapshotConfig(horizon_days=90), ["1997-06-30", "1998-01-01"])
    assert len(duck.frame) > 5000
    assert_same(duck.frame, other.frame, [])


# --------------------------------------------------------------------------------------------- command line
def test_command_line_engine_spark_writes_the_same_file(spark, tmp_path):
    from retention_core.cli import main

    raw = edge_log()
    src = tmp_path / "orders.parquet"
    raw.to_parquet(src, index=False)
    outs = {}
    for engine in ("duckdb", "spark"):
        outs[engine] = tmp_path / f"ds_{engine}.parquet"
        assert main(["build-dataset", str(src), "--out", str(outs[engine]), "--cutoff", "2024-03-01",
                     "--snapshots", "2", "--step", "1", "--horizon", "30", "--lookback", "60",
                     "--engine", engine]) == 0
    a, b = (pd.read_parquet(outs[e]).sort_values(["user_id", "snapshot_date"]).reset_index(drop=True)
            for e in ("duckdb", "spark"))
    assert a.shape == b.shape and list(a.columns) == list(b.columns)
    for c in a.columns:
        if pd.api.types.is_numeric_dtype(a[c]):
            np.testing.assert_allclose(b[c].to_numpy("float64", na_value=np.nan),
                                       a[c].to_numpy("float64", na_value=np.nan), rtol=RTOL, atol=RTOL)
        else:
            assert (a[c].astype(str) == b[c].astype(str)).all(), c


# -------------------------------------------------------------------------------------------------- scoring
@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    """A run of four models (a baseline, BG/NBD which refits on the scored population, logistic regression and
    gradient boosting), trained once for the module and saved with this test's own signing key."""
    from assets.generator import generate_events
    from retention_core import bundle
    from retention_core.training import TrainConfig, train_models
    from retention_core.dataset import training_cutoffs

    tmp_path = tmp_path_factory.mktemp("scoring")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RETENTION_HOME", str(tmp_path / "home"))
        mp.delenv("RETENTION_BUNDLE_KEY", raising=False)
        yield from _train_and_save(tmp_path, generate_events, bundle, TrainConfig, train_models, training_cutoffs)


def _train_and_save(tmp_path, generate_events, bundle, TrainConfig, train_models, training_cutoffs):
    raw = generate_events(500, seed=5, days=500)
    schema = infer_schema(raw)
    ev = canonical_events(raw, schema)
    cfg = SnapshotConfig(horizon_days=60)
    ds = build_dataset(ev, cfg, cutoffs=training_cutoffs(ev, cfg))
    keys = ["recency", "bgnbd", "logreg", "gbm"]
    result = train_models(ds, TrainConfig(models=keys), horizon_days=60)
    path = bundle.save_run(tmp_path / "run", result, schema=schema, dataset=ds, snapshot=cfg.as_dict(),
                           data_digest="test", train_config=TrainConfig(models=keys))
    yield path, raw, [k for k in keys if k in result.models]


def test_spark_scoring_equals_score(spark, saved_run):
    from retention_core.bundle import load_run
    from retention_core.scoring import score
    from retention_core.spark import score as spark_score

    path, raw, keys = saved_run
    run = load_run(path)
    assert len(keys) >= 3
    for key in keys:
        expected, frame, _ = score(run, raw, model=key)
        got, sframe, _ = spark_score(run, raw, model=key)
        assert (got["user_id"].to_numpy() == expected["user_id"].to_numpy()).all()
        np.testing.assert_allclose(got["churn_probability"], expected["churn_probability"], rtol=RTOL, atol=1e-12,
                                   err_msg=key)
        assert (got["risk_decile"].to_numpy() == expected["risk_decile"].to_numpy()).all(), key
        assert (got["rank"].to_numpy() == expected["rank"].to_numpy()).all(), key
        assert list(sframe.columns) == list(frame.columns)


def _new_log(raw: pd.DataFrame, change: str) -> pd.DataFrame:
    """A later log to score that lacks what the run learned from: no view or return events (an event type the run
    counts) with the rating column kept but empty, or no rating column at all."""
    if change == "no views or returns, ratings empty":
        out = raw[~raw["event_type"].isin(["view", "return"])].copy()
        out["rating"] = pd.array([pd.NA] * len(out), dtype="Int8")
        return out.reset_index(drop=True)
    return raw.drop(columns=["rating"])


@pytest.mark.parametrize("change", ["no views or returns, ratings empty", "no rating column"])
def test_spark_scoring_of_a_new_log_lacking_learned_features(spark, saved_run, change):
    """Features the scored log cannot have are filled by one rule in both engines (a count the log could hold: 0,
    e.g. views in a log with event types, or ratings in a log with an empty rating column; a feature the log cannot
    have, such as ratings without a rating column: missing)."""
    from retention_core.bundle import load_run
    from retention_core.scoring import score
    from retention_core.spark import score as spark_score

    path, raw, keys = saved_run
    run = load_run(path)
    new = _new_log(raw, change)
    learned = {"events_view_30d", "ratings_count", "rating_mean"}
    assert learned <= set(run.info["numeric"])
    for key in [k for k in keys if k in ("logreg", "gbm")]:
        expected, frame, _ = score(run, new, model=key)
        got, sframe, _ = spark_score(run, new, model=key)
        lacked = {"rating_mean"} | ({"events_view_30d", "ratings_count"} if change.startswith("no views") else
                                    {"ratings_count"})
        for c in lacked:  # as filled for the model, the same in both engines
            np.testing.assert_array_equal(sframe[c].to_numpy("float64"), frame[c].to_numpy("float64"), err_msg=c)
        assert (got["user_id"].to_numpy() == expected["user_id"].to_numpy()).all()
        np.testing.assert_allclose(got["churn_probability"], expected["churn_probability"], rtol=RTOL, atol=1e-12,
                                   err_msg=key)
        assert (got["rank"].to_numpy() == expected["rank"].to_numpy()).all(), key
    if change.startswith("no views"):
        assert (frame["events_view_30d"] == 0).all() and (frame["ratings_count"] == 0).all()
        assert frame["rating_mean"].isna().all()
    else:
        assert frame["ratings_count"].isna().all()


def test_spark_scoring_refuses_a_tampered_run(spark, saved_run):
    from retention_core.errors import BundleError
    from retention_core.spark.scoring import score as spark_score

    import shutil

    original, raw, _ = saved_run
    path = original.parent / "tampered"
    shutil.copytree(original, path)
    with open(path / "run.json", "a") as fh:
        fh.write(" ")
    with pytest.raises(BundleError):
        spark_score(path, raw)


def test_score_command_with_engine_spark(spark, saved_run, tmp_path):
    """``score RUN DATA --engine spark`` writes the same list as the default engine (Parquet read by Spark)."""
    from retention_core.cli import main

    path, raw, _ = saved_run
    src = tmp_path / "log.parquet"
    raw.to_parquet(src, index=False)
    outs = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RETENTION_HOME", str(path.parent / "home"))
        for engine in ("duckdb", "spark"):
            outs[engine] = tmp_path / f"scores_{engine}.csv"
            assert main(["score", str(path), str(src), "--out", str(outs[engine]), "--top", "50",
                         "--engine", engine]) == 0
    a, b = pd.read_csv(outs["duckdb"]), pd.read_csv(outs["spark"])
    assert list(a.columns) == list(b.columns) and len(a) == len(b) == 50
    assert (a["user_id"].astype(str) == b["user_id"].astype(str)).all()
    np.testing.assert_allclose(b["churn_probability"], a["churn_probability"], rtol=RTOL, atol=1e-12)


# ------------------------------------------------------------------------------------------- the workers' Python
def test_workers_run_the_commands_python(tmp_path):
    """Started by an interpreter that is not on PATH (cron, a service, a virtual environment not activated), a
    session's Python workers run that interpreter, not the first ``python3`` on PATH (here one that cannot start)."""
    import subprocess
    import sys

    fake = tmp_path / "bin"
    fake.mkdir()
    for name in ("python3", "python"):
        (fake / name).write_text("#!/bin/sh\necho 'the python3 on PATH was started' >&2\nexit 3\n")
        (fake / name).chmod(0o755)
    script = ("from retention_core.spark import get_session\n"
              "s = get_session('local[1]')\n"
              "def where(batches):\n"
              "    import sys\n    import pandas as pd\n"
              "    for b in batches:\n        yield pd.DataFrame({'exe': [sys.executable] * len(b)})\n"
              "print('WORKER', s.range(1).mapInPandas(where, 'exe string').collect()[0].exe)\n")
    env = {k: v for k, v in os.environ.items() if k != "PYSPARK_PYTHON"}
    env["PATH"] = f"{fake}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[2]), env.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"WORKER {sys.executable}" in out.stdout


def test_the_users_worker_python_wins(monkeypatch):
    import sys

    from retention_core.spark.session import worker_python

    monkeypatch.delenv("PYSPARK_PYTHON", raising=False)
    assert worker_python() == sys.executable
    monkeypatch.setenv("PYSPARK_PYTHON", "/opt/python/bin/python3")
    assert worker_python() == "/opt/python/bin/python3"
