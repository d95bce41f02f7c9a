"""A new feature is one definition in the registry: the Spark engine computes it from that definition, equal to the
DuckDB engine (the toy registry of ``tests/core/test_feature_registry.py``: a single column, a family over the
windows and a ratio of two other features after the attributes)."""
from __future__ import annotations

import pandas as pd

from retention_core import features
from retention_core.dataset import SnapshotConfig, data_end
from retention_core.events import CANONICAL
from tests.core.test_feature_registry import TOY, _generated
from tests.spark.test_parity import assert_same


def test_a_new_feature_is_one_definition_that_spark_computes_as_duckdb(spark):
    from retention_core.spark import as_spark_events
    from retention_core.spark import features as spark_features

    ev = _generated()
    cfg = SnapshotConfig(horizon_days=60, windows=(7, 30, 90))
    dates = [pd.Timestamp("2023-09-15"), pd.Timestamp("2023-11-01")]
    duck, _ = features.compute(ev, dates, cfg, end=data_end(ev), features=TOY)
    events = as_spark_events(ev, spark)
    other, _ = spark_features.compute(events, dates, cfg, end=data_end(events.bounds()), features=TOY)
    for c in ("spend_per_active_day_30d", "browsing_7d", "browsing_90d", "orders_per_tenure_week"):
        assert c in other.columns and other[c].notna().any(), c
    assert_same(duck, other, [c for c in ev.columns if c not in CANONICAL])
