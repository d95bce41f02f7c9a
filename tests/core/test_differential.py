"""DuckDB against the small NumPy engine on hostile logs (``tests/hostile_logs.py``): every feature column of every
cutoff (integers, dates and texts exactly, money to 1e-12 relative, other numbers exactly), the weekly sequences, and
the scores of a saved run (logistic regression and gradient boosting) equal, or both engines refusing the log with
the same message. Each log goes through a Parquet file and the product's reader, as an upload does. Spark joins the
comparison in ``tests/spark/test_differential.py``.
"""
from __future__ import annotations

import io
from unittest import mock

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings

from retention_core import features, features_small
from retention_core.dataset import data_end
from retention_core.errors import RetentionError
from retention_core.events import CANONICAL, canonical_events
from retention_core.io import read_table
from retention_core.roles import infer_schema
from retention_core.scoring import score
from tests.hostile_logs import disagreements, hostile_logs, run_overrides, train_run

CASES: dict[str, int] = {}  # what the generated logs held, printed by the last test


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = tmp_path_factory.mktemp("hostile")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RETENTION_HOME", str(path / "home"))
        mp.delenv("RETENTION_BUNDLE_KEY", raising=False)
        yield train_run(path / "run")


def read_back(raw: pd.DataFrame) -> pd.DataFrame:
    """The log written as Parquet and read by the product's reader."""
    buf = io.BytesIO()
    raw.to_parquet(buf, index=False)
    return read_table(buf.getvalue(), name="log.parquet")


def scores_or_refusal(run, df, key: str, *, duckdb: bool):
    """The scores of model ``key`` (``duckdb``: with the DuckDB engine however small the log), or the refusal."""
    try:
        if duckdb:
            with mock.patch.object(features_small, "fits", lambda *a, **k: False):
                return score(run, df, model=key)[0]
        return score(run, df, model=key)[0]
    except RetentionError as exc:
        return f"{type(exc).__name__}: {exc}"


def score_differences(a, b) -> list[str]:
    """Where two engines' scores (or refusals) differ: probabilities, deciles and ranks compared exactly."""
    if isinstance(a, str) or isinstance(b, str):
        return [] if a == b else [f"{a!r} against {b!r}"]
    if len(a) != len(b) or list(a.columns) != list(b.columns):
        return [f"{len(a)} users {list(a.columns)} against {len(b)} users {list(b.columns)}"]
    out = []
    for c in a.columns:
        x, y = a[c].to_numpy(), b[c].to_numpy()
        if c == "user_id":
            x, y = x.astype(str), y.astype(str)
        if not np.array_equal(x, y):
            i = int(np.flatnonzero(x != y)[0])
            out.append(f"{c} differs, e.g. user {a['user_id'].iloc[i]!r}: {x[i]!r} against {y[i]!r}")
    return out


def tally(opts: dict, frame: pd.DataFrame, raw: pd.DataFrame, scores) -> None:
    """Counts what the generated logs held (``CASES``)."""
    counts = {f"{k}={v}": 1 for k, v in opts.items()}
    counts |= {"logs": 1, "events": len(raw), "feature rows": len(frame),
               "users scored": 0 if isinstance(scores, str) else len(scores), "logs refused": isinstance(scores, str)}
    for k, v in counts.items():
        CASES[k] = CASES.get(k, 0) + int(v)


@settings(max_examples=100, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=hostile_logs())
def test_duckdb_and_numpy_agree_on_hostile_logs(run, case):
    raw, cutoffs, cfg, opts = case
    df = read_back(raw)
    ev = canonical_events(df, infer_schema(df, run_overrides(run, df.columns)))
    attributes = [c for c in ev.columns if c not in CANONICAL]
    assert features_small.fits(ev, cfg)
    duck, duck_seq = features.compute(ev, cutoffs, cfg, end=data_end(ev), sequences=True)
    small, small_seq = features_small.compute(ev, cutoffs, cfg, end=data_end(ev), sequences=True)
    problems = disagreements(duck, small, attributes, "NumPy")
    assert not problems, "\n".join(problems)
    np.testing.assert_allclose(small_seq, duck_seq, rtol=1e-6, atol=0)
    for key in ("logreg", "gbm"):
        a, b = scores_or_refusal(run, df, key, duckdb=True), scores_or_refusal(run, df, key, duckdb=False)
        assert not score_differences(a, b), (key, score_differences(a, b))
    tally(opts, duck, raw, a)


def test_report_the_generated_cases():
    """Prints what the generated logs held (run with -s to read it)."""
    if CASES:
        print("\nhostile logs, DuckDB vs NumPy: " + ", ".join(f"{k} {v}" for k, v in sorted(CASES.items())))


def test_money_is_rounded_alike_in_duckdb_and_numpy():
    """The rounding of money sums (``features.round_money``) gives the same bits in SQL and in NumPy, on halves, on
    values a last bit apart, on negatives, huge values and missing ones."""
    rng = np.random.default_rng(3)
    cents = rng.integers(-10**9, 10**9, 2000) / 100.0
    x = np.concatenate([cents, np.nextafter(cents, np.inf), np.nextafter(cents, -np.inf), rng.normal(0, 1e4, 2000),
                        np.array([0.5e-6, 1.5e-6, -0.5e-6, 2.0**52 / 1e6, 2.0**53, -1e300, 1e300, 0.0, -0.0, np.nan])])
    con = features.connect()
    try:
        got = con.execute(f"SELECT {features.money_sql('x')} AS r FROM (SELECT unnest(?::DOUBLE[]) AS x)",
                          [x.tolist()]).df()["r"].to_numpy("float64", na_value=np.nan)
    finally:
        con.close()
    want = features.round_money(x)
    assert np.array_equal(got, want, equal_nan=True)
    assert np.array_equal(features.round_money(cents + 1e-12), cents)  # a last-bit difference is gone
