"""The Spark engine on a real cluster: a standalone master and two small workers (one core, 1 GB each) started on
127.0.0.1 for this module (``tests/spark/standalone.py``), and the command line run as a child process with
``--engine spark --spark-master spark://127.0.0.1:PORT``, nothing set by hand: no ``PYSPARK_PYTHON``, the product
itself not installed (the executors get its code from the driver), and a ``python3`` first on PATH that fails (the
executors run the command's Python). ``build-dataset`` and ``score`` write what the DuckDB engine writes, column by
column.

The log is Online Retail II (read by Spark from Parquet) where ``../shared/data`` holds it, else a generated log.
Skipped, with the reason, where PySpark or a Java runtime is missing.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retention_core.spark.session import unavailable
from tests.conftest import DATA_DIR
from tests.spark.standalone import StandaloneCluster
from tests.spark.test_parity import RTOL, assert_same

_WHY = unavailable()
pytestmark = pytest.mark.skipif(_WHY is not None, reason=f"Spark engine not testable here: {_WHY}")

ROOT = Path(__file__).resolve().parents[2]
REAL = DATA_DIR / "online_retail_ii_2009_2010.parquet"


@pytest.fixture(scope="module")
def no_python_on_path(tmp_path_factory) -> str:
    """A PATH whose first ``python3`` and ``python`` fail: the cluster's workers and the command must not start them
    (PySpark's default for the executors' Python is ``python3`` from PATH, another Python under cron or a service)."""
    fake = tmp_path_factory.mktemp("bin")
    for name in ("python3", "python"):
        (fake / name).write_text("#!/bin/sh\necho 'the python3 on PATH was started' >&2\nexit 3\n")
        (fake / name).chmod(0o755)
    return f"{fake}{os.pathsep}{os.environ.get('PATH', '')}"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, no_python_on_path):
    c = StandaloneCluster(tmp_path_factory.mktemp("cluster"), workers=2, cores=1, memory="1g",
                          env={"PATH": no_python_on_path})
    with c:
        yield c
    assert c.leftovers() == [], "processes of the cluster outlived it"


@pytest.fixture(scope="module")
def log(tmp_path_factory) -> tuple[Path, list[str]]:
    """A Parquet event log and its attribute columns: the real one when present (the rows of one customer in eight
    and of a tenth of the guest orders, every date kept, to keep the test short), else a generated one."""
    path = tmp_path_factory.mktemp("log") / "events.parquet"
    if REAL.is_file():
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        table = pq.read_table(REAL)
        ids = table["Customer ID"]
        guests = pc.and_(pc.is_null(ids), pc.ends_with(table["Invoice"], "0"))  # a tenth of them
        keep = pc.or_(guests, pc.fill_null(pc.equal(pc.bit_wise_and(ids, 7), 0), False))
        pq.write_table(table.filter(keep), path)
        return path, ["Country"]
    from assets.generator import generate_events

    from retention_core.events import CANONICAL, canonical_events
    from retention_core.roles import infer_schema

    raw = generate_events(400, seed=3, days=500)
    raw.to_parquet(path, index=False)
    return path, [c for c in canonical_events(raw, infer_schema(raw)).columns if c not in CANONICAL]  # country, ...


def _child(args: list[str], path: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """``python -m retention_core ARGS`` as a child process, in an environment with nothing Spark-specific set by hand
    (``PYSPARK_PYTHON`` removed; ``SPARK_LOCAL_IP`` as CI sets it), ``PATH`` as given and the product found from the
    repository (its working folder), not installed."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON", "SPARK_HOME")}
    env.update(SPARK_LOCAL_IP="127.0.0.1", PATH=path)
    out = subprocess.run([sys.executable, "-m", "retention_core", *args], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stderr[-4000:]
    return out


def test_build_dataset_on_the_cluster_equals_duckdb(cluster, log, no_python_on_path, tmp_path):
    from retention_core.cli import main

    path, attributes = log
    duck, spark = tmp_path / "duckdb.parquet", tmp_path / "spark.parquet"
    assert main(["build-dataset", str(path), "--out", str(duck), "--snapshots", "2"]) == 0
    clock = time.perf_counter()
    _child(["build-dataset", str(path), "--out", str(spark), "--snapshots", "2", "--engine", "spark",
            "--spark-master", cluster.url], no_python_on_path)
    took = time.perf_counter() - clock
    a, b = (pd.read_parquet(f).sort_values(["snapshot_date", "user_id"], kind="stable").reset_index(drop=True)
            for f in (duck, spark))
    assert len(a) > 100 and a["snapshot_date"].nunique() == 2
    worst = assert_same(a, b, attributes)
    print(f"\nbuild-dataset on {cluster.url}: {len(b)} rows x {b.shape[1]} columns in {took:.1f}s, "
          f"largest relative difference {max(worst.values()):.2e}")


@pytest.fixture(scope="module")
def run(log, tmp_path_factory):
    """A run trained with the DuckDB engine on the same log (logistic regression and a gradient-boosted model)."""
    from retention_core.cli import main

    out = tmp_path_factory.mktemp("run") / "run"
    assert main(["train", str(log[0]), "--out", str(out), "--models", "logreg,gbm", "--snapshots", "2",
                 "--no-refit"]) == 0
    return out


def test_score_on_the_cluster_equals_duckdb(cluster, log, run, no_python_on_path, tmp_path):
    from retention_core.cli import main

    path = log[0]
    duck, spark = tmp_path / "duckdb.csv", tmp_path / "spark.csv"
    assert main(["score", str(run), str(path), "--out", str(duck), "--top", "500", "--no-record"]) == 0
    clock = time.perf_counter()
    _child(["score", str(run), str(path), "--out", str(spark), "--top", "500", "--no-record", "--engine", "spark",
            "--spark-master", cluster.url], no_python_on_path)
    took = time.perf_counter() - clock
    a, b = pd.read_csv(duck), pd.read_csv(spark)
    assert list(a.columns) == list(b.columns) and len(a) == len(b) > 100
    for c in a.columns:
        if c == "churn_probability" or (pd.api.types.is_float_dtype(a[c]) and not (a[c].dropna() % 1 == 0).all()):
            np.testing.assert_allclose(b[c].to_numpy("float64"), a[c].to_numpy("float64"), rtol=RTOL, atol=1e-12,
                                       err_msg=c)
        else:
            assert (a[c].astype(str).to_numpy() == b[c].astype(str).to_numpy()).all(), c
    print(f"\nscore on {cluster.url}: {len(b)} users listed in {took:.1f}s, columns {list(b.columns)}")
