"""An analyst who already has a Spark session (a notebook's) hands the engine a raw Spark DataFrame of their log, with
their own column names: ``retention_core.spark.build_dataset`` and ``score`` work on that DataFrame's session (no
session started, none stopped, its time zone put back) and give what the DuckDB engine gives on the same log."""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from retention_core.dataset import SnapshotConfig, build_dataset
from retention_core.events import canonical_events
from retention_core.roles import infer_schema
from retention_core.spark.session import unavailable
from tests.spark.test_parity import RTOL, assert_same, edge_log, saved_run  # noqa: F401 (a fixture)

_WHY = unavailable()
pytestmark = pytest.mark.skipif(_WHY is not None, reason=f"Spark engine not testable here: {_WHY}")

OWN_NAMES = {"Customer": "kunde nr", "InvoiceDate": "zeitpunkt", "Invoice": "beleg", "StockCode": "artikel",
             "Quantity": "menge", "Price": "preis", "Country": "land"}
ROLES = {"user_id": "kunde nr", "timestamp": "zeitpunkt", "order_id": "beleg", "product": "artikel",
         "quantity": "menge", "price": "preis"}


def _untouched(spark, zone: str):
    from pyspark.sql import SparkSession

    assert SparkSession.getActiveSession() is spark
    assert spark.conf.get("spark.sql.session.timeZone") == zone
    assert spark.range(3).count() == 3  # not stopped


def test_a_raw_spark_dataframe_with_the_analysts_column_names(spark):
    from retention_core import spark as rs

    raw = edge_log().rename(columns=OWN_NAMES)
    raw["zeitpunkt"] = pd.to_datetime(raw["zeitpunkt"], format="mixed")  # a timestamp column, as a table holds it
    df = spark.createDataFrame(raw)
    cfg, cutoffs = SnapshotConfig(horizon_days=30, lookback_days=60), ["2024-03-01", "2024-03-02"]
    before = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", "America/New_York")  # the analyst's own setting
    try:
        got = rs.build_dataset(df, cfg, cutoffs=cutoffs, roles=ROLES)
        _untouched(spark, "America/New_York")
    finally:
        spark.conf.set("spark.sql.session.timeZone", before)
    duck = build_dataset(canonical_events(raw, infer_schema(raw, ROLES)), cfg, cutoffs=cutoffs)
    assert len(duck.frame) > 100
    assert_same(duck.frame, got.frame, ["land"])
    assert got.numeric == duck.numeric and got.categorical == duck.categorical


def test_a_raw_spark_dataframe_with_text_dates(spark):
    from retention_core import spark as rs

    raw = edge_log()  # dates as text, read by pandas inside the workers as the product reads them
    got = rs.build_dataset(spark.createDataFrame(raw), SnapshotConfig(horizon_days=30, lookback_days=60),
                           cutoffs=["2024-03-01"])
    duck = build_dataset(canonical_events(raw, infer_schema(raw)), SnapshotConfig(horizon_days=30, lookback_days=60),
                         cutoffs=["2024-03-01"])
    assert_same(duck.frame, got.frame, ["Country"])


def test_scores_of_a_raw_spark_dataframe(spark, saved_run):  # noqa: F811 (the fixture)
    from retention_core.bundle import load_run
    from retention_core.scoring import score
    from retention_core.spark import score as spark_score

    path, raw, keys = saved_run
    run = load_run(path)
    df = spark.createDataFrame(raw)
    for key in [k for k in keys if k in ("logreg", "gbm")]:
        expected, _, _ = score(run, raw, model=key)
        got, _, _ = spark_score(run, df, model=key)
        assert (got["user_id"].to_numpy() == expected["user_id"].to_numpy()).all()
        np.testing.assert_allclose(got["churn_probability"], expected["churn_probability"], rtol=RTOL, atol=1e-12)
        assert (got["risk_decile"].to_numpy() == expected["risk_decile"].to_numpy()).all()
        assert (got["rank"].to_numpy() == expected["rank"].to_numpy()).all()
    _untouched(spark, "UTC")


def test_a_local_master_gets_a_heap_for_its_tasks(spark):
    """A local master's tasks run in the driver's JVM: the product gives it LOCAL_DRIVER_MEMORY (Spark's default of
    1 GB was more than half used by the real-log tests), unless the analyst set their own."""
    from retention_core.spark.session import LOCAL_DRIVER_MEMORY

    if os.environ.get("SPARK_DRIVER_MEMORY"):
        pytest.skip("SPARK_DRIVER_MEMORY is set here: the analyst's heap wins")
    assert spark.sparkContext.getConf().get("spark.driver.memory") == LOCAL_DRIVER_MEMORY == "2g"
    heap = spark.sparkContext._jvm.java.lang.Runtime.getRuntime().maxMemory()
    assert heap > 1.5 * 2**30, f"the JVM's heap is {heap / 2**30:.2f} GB"
