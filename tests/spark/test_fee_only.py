"""The Spark engine leaves out customers who bought only postage or fees, as the DuckDB and NumPy engines do (the
hand-built log of ``tests/core/test_lifecycle.py``): the same users, the same feature columns. Skipped, with the
reason, where PySpark or a Java runtime is missing."""
from __future__ import annotations

import os

import pandas as pd
import pytest

from retention_core.dataset import SnapshotConfig, build_dataset
from retention_core.events import canonical_events
from retention_core.roles import infer_schema
from retention_core.spark.session import unavailable

_WHY = unavailable()
pytestmark = pytest.mark.skipif(_WHY is not None, reason=f"Spark engine not testable here: {_WHY}")


def test_spark_leaves_out_customers_who_bought_only_fees():
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from retention_core import spark as rs
    from retention_core.spark import get_session
    from tests.core.test_lifecycle import T, _fee_log
    from tests.spark.test_parity import assert_same

    raw = _fee_log()
    ev = canonical_events(raw, infer_schema(raw))
    cfg = SnapshotConfig(horizon_days=30)
    cutoffs = [T, T + pd.Timedelta(days=10)]
    session = get_session("local[2]")
    try:
        other = rs.build_dataset(ev, cfg, cutoffs=cutoffs)
    finally:
        session.stop()
    duck = build_dataset(ev, cfg, cutoffs=cutoffs)
    assert_same(duck.frame, other.frame, [])
    at_t = set(other.frame.loc[other.frame["snapshot_date"] == T, "user_id"].astype(str))
    assert {"A", "G"} <= at_t and not {"F", "L", "C"} & at_t
