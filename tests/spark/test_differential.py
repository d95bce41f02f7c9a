"""DuckDB, the small NumPy engine and Spark on hostile logs (``tests/hostile_logs.py``), each written as a Parquet file:
DuckDB and NumPy read it with the product's reader, Spark reads it itself (``read_parquet_events``). On each log
every feature column of every cutoff is equal in the three engines (integers, dates and texts exactly, money to 1e-12
relative, other numbers exactly), and so are the scores of a saved run (logistic regression and gradient boosting,
taking turns from log to log), or all three refuse the log with the same message. DuckDB against NumPy alone runs on
many more logs in ``tests/core/test_differential.py``.

The Spark leg is bounded (``EXAMPLES`` logs, derandomised: each log costs a dozen small Spark jobs) and shares the
session of ``tests/spark/conftest.py``.
"""
from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from retention_core import features, features_small
from retention_core.dataset import data_end
from retention_core.errors import RetentionError
from retention_core.events import CANONICAL, canonical_events
from retention_core.io import read_table
from retention_core.roles import infer_schema
from retention_core.spark.session import unavailable
from tests.core.test_differential import score_differences, scores_or_refusal
from tests.hostile_logs import disagreements, hostile_logs, run_overrides, train_run

_WHY = unavailable()
pytestmark = pytest.mark.skipif(_WHY is not None, reason=f"Spark engine not testable here: {_WHY}")

EXAMPLES = 16
CASES: dict[str, int] = {}
_N = itertools.count()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = tmp_path_factory.mktemp("hostile_spark")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RETENTION_HOME", str(path / "home"))
        mp.delenv("RETENTION_BUNDLE_KEY", raising=False)
        yield train_run(path / "run")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("hostile_logs")


def spark_scores_or_refusal(run, events, key: str):
    from retention_core.spark import score

    try:
        return score(run, events, model=key)[0]
    except RetentionError as exc:
        return f"{type(exc).__name__}: {exc}"


# not shrunk: each try costs Spark jobs, and a generated log is small enough to read as it is
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=hostile_logs(in_turn=True))
def test_three_engines_agree_on_hostile_logs(spark, run, folder, case):
    from retention_core.spark import features as spark_features
    from retention_core.spark.source import read_parquet_events

    raw, cutoffs, cfg, opts = case
    n = next(_N)
    path = folder / f"log{n}.parquet"
    raw.to_parquet(path, index=False)
    df = read_table(path)
    overrides = run_overrides(run, df.columns)
    ev = canonical_events(df, infer_schema(df, overrides))
    attributes = [c for c in ev.columns if c not in CANONICAL]
    duck, _ = features.compute(ev, cutoffs, cfg, end=data_end(ev))
    small, _ = features_small.compute(ev, cutoffs, cfg, end=data_end(ev))
    events, _, _ = read_parquet_events(spark, path, overrides)
    assert events.stats()["rows"] == len(ev)
    other, _ = spark_features.compute(events, cutoffs, cfg, end=data_end(events.bounds()))
    problems = disagreements(duck, small, attributes, "NumPy") + disagreements(duck, other, attributes, "Spark")
    assert not problems, "\n".join(problems)
    key = ("logreg", "gbm")[(n + n // 4) % 2]  # one Spark scoring per log, the models in turn (both: the core test)
    expected = scores_or_refusal(run, df, key, duckdb=True)
    for name, got in (("NumPy", scores_or_refusal(run, df, key, duckdb=False)),
                      ("Spark", spark_scores_or_refusal(run, events, key))):
        assert not score_differences(expected, got), (name, key, score_differences(expected, got))
    for k, v in {**{f"{k}={v}": 1 for k, v in opts.items()}, "logs": 1, "events": len(raw),
                 "feature rows": len(duck), "logs refused": isinstance(expected, str)}.items():
        CASES[k] = CASES.get(k, 0) + int(v)


def test_report_the_generated_cases():
    """Prints what the generated logs held (run with -s to read it)."""
    if CASES:
        print("\nhostile logs, DuckDB vs NumPy vs Spark: " + ", ".join(f"{k} {v}" for k, v in sorted(CASES.items())))


def test_money_is_rounded_alike_in_spark(spark):
    """Spark rounds money sums to the very bits of ``features.round_money`` (halves, last-bit neighbours, negatives,
    huge values, missing ones)."""
    import numpy as np

    from retention_core.features import round_money
    from retention_core.spark.features import _money

    rng = np.random.default_rng(3)
    cents = rng.integers(-10**9, 10**9, 500) / 100.0
    x = np.concatenate([cents, np.nextafter(cents, np.inf), np.nextafter(cents, -np.inf), rng.normal(0, 1e4, 500),
                        np.array([0.5e-6, 1.5e-6, -0.5e-6, 2.0**52 / 1e6, 2.0**53, -1e300, 1e300, 0.0])])
    rows = [(i, float(v)) for i, v in enumerate(x)] + [(len(x), None)]
    got = spark.createDataFrame(rows, "i long, x double").select("i", _money(spark_col("x")).alias("r")).toPandas()
    got = got.sort_values("i")["r"].to_numpy("float64", na_value=np.nan)
    assert np.array_equal(got, round_money(np.append(x, np.nan)), equal_nan=True)


def spark_col(name: str):
    from pyspark.sql import functions as F

    return F.col(name)
