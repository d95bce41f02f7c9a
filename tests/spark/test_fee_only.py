"""The Spark engine leaves out customers who bought only postage or fees, as the DuckDB and NumPy engines do (the
hand-built log of ``tests/core/test_lifecycle.py``): the same users, the same feature columns. Skipped, with the
reason, where PySpark or a Java runtime is missing."""
from __future__ import annotations

import pandas as pd

from retention_core.dataset import SnapshotConfig, build_dataset
from retention_core.events import canonical_events
from retention_core.roles import infer_schema


def test_spark_leaves_out_customers_who_bought_only_fees(spark):  # the run's one session (conftest), not stopped here
    from retention_core import spark as rs
    from tests.core.test_lifecycle import T, _fee_log
    from tests.spark.test_parity import assert_same

    raw = _fee_log()
    ev = canonical_events(raw, infer_schema(raw))
    cfg = SnapshotConfig(horizon_days=30)
    cutoffs = [T, T + pd.Timedelta(days=10)]
    other = rs.build_dataset(ev, cfg, cutoffs=cutoffs, spark=spark)
    duck = build_dataset(ev, cfg, cutoffs=cutoffs)
    assert_same(duck.frame, other.frame, [])
    at_t = set(other.frame.loc[other.frame["snapshot_date"] == T, "user_id"].astype(str))
    assert {"A", "G"} <= at_t and not {"F", "L", "C"} & at_t
