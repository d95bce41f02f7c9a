"""Training: backtest over earlier cutoffs, user-table cross-validation, failures kept per model."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retention_core.errors import ConfigError
from retention_core.events import SnapshotConfig, build_dataset, canonical_events
from retention_core.roles import infer_schema
from retention_core.training import TrainConfig, train_models, training_cutoffs


@pytest.fixture(scope="module")
def dataset():
    from assets.generator import generate_events

    raw = generate_events(400, seed=8, days=560)
    ev = canonical_events(raw, infer_schema(raw))
    cfg = SnapshotConfig(horizon_days=60, step_days=30)
    return build_dataset(ev, cfg, cutoffs=training_cutoffs(ev, cfg))


def test_backtest_reports_each_earlier_cutoff(dataset):
    res = train_models(dataset, TrainConfig(models=["recency", "logreg"], backtest=2, refit=False), horizon_days=60)
    bt = res.backtest
    assert set(bt["model"]) == {"recency", "logreg"}
    t_val = pd.to_datetime(dataset.frame["snapshot_date"]).max()
    assert bt["cutoff"].nunique() == 2 and (bt["cutoff"] < t_val).all()
    assert bt["roc_auc"].between(0, 1).all()


def test_user_table_gets_holdout_and_cross_validation():
    rng = np.random.default_rng(0)
    n = 600
    x = rng.normal(size=n)
    df = pd.DataFrame({"id": [f"c{i}" for i in range(n)], "tenure": rng.integers(1, 60, n), "score": x,
                       "plan": rng.choice(["a", "b", "c"], n),
                       "churn": np.where(x + rng.normal(scale=0.8, size=n) > 0.5, "Yes", "No")})
    from retention_core.features import user_dataset
    from retention_core.validation import validate

    schema = infer_schema(df)
    ds = user_dataset(df, schema, validate(df, schema))
    res = train_models(ds, TrainConfig(models="auto", cv_folds=3))
    assert "recency" not in res.leaderboard["model"].tolist()  # auto leaves out what a user table cannot feed
    row = res.leaderboard.set_index("model").loc["logreg"]
    assert row["roc_auc"] > 0.75 and 0.6 < row["cv_roc_auc_mean"] <= 1 and row["cv_roc_auc_std"] >= 0
    assert len(res.y_val) == pytest.approx(0.2 * n, abs=2)


def test_one_failing_model_does_not_lose_the_others(dataset):
    res = train_models(dataset, TrainConfig(models=["logreg", "gbm"], params={"gbm": {"max_iter": -5}}), horizon_days=60)
    assert "logreg" in res.models and "gbm" not in res.models and "gbm" in res.errors
    with pytest.raises(Exception):
        train_models(dataset, TrainConfig(models=["gbm"], params={"gbm": {"max_iter": -5}}), horizon_days=60)
    with pytest.raises(ConfigError, match="Unknown model"):
        TrainConfig(models=["nope"]).model_keys()
