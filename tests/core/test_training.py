"""Training: backtest over earlier cutoffs, user-table cross-validation, failures kept per model."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.generated import generated_shop
from retention_core.errors import ConfigError
from retention_core.roles import infer_schema
from retention_core.training import TrainConfig, train_models


@pytest.fixture(scope="module")
def dataset():
    return generated_shop(400, seed=8, days=560, step_days=30).dataset


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
    from retention_core.dataset import user_dataset
    from retention_core.validation import validate

    schema = infer_schema(df)
    ds = user_dataset(df, schema, validate(df, schema))
    res = train_models(ds, TrainConfig(models="auto", cv_folds=3, tune_budget=0))  # the search: test_tuning.py
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


def test_kept_models_are_refitted_on_the_latest_snapshots_carrying_what_validation_learned(dataset):
    """After validation every model learns from the latest labelled snapshots, the validation one included: boosting
    keeps the trees early stopping found (scaled with the rows), the leaderboard keeps the figures measured before."""
    from retention_core.training import recent_snapshots

    cfg = dict(models=["recency", "logreg", "gbm", "bgnbd", "ensemble"])
    plain = train_models(dataset, TrainConfig(**cfg, refit=False), horizon_days=60)
    res = train_models(dataset, TrainConfig(**cfg), horizon_days=60)
    pd.testing.assert_frame_equal(plain.leaderboard.drop(columns="fit_seconds"),
                                  res.leaderboard.drop(columns="fit_seconds"))
    lab = dataset.labelled().frame
    final = recent_snapshots(lab["snapshot_date"], np.ones(len(lab), bool), 3)
    t_val = pd.to_datetime(lab["snapshot_date"]).max()
    assert res.refit["rows"] == int(final.sum()) and res.refit["to"] == str(t_val.date())
    assert "refitted on" in res.refit_note and "not refitted" in plain.refit_note
    for key in ("recency", "logreg", "gbm", "bgnbd"):
        assert res.models[key].n_train_ == int(final.sum()), key
        assert plain.models[key].n_train_ != int(final.sum()), key
    validated, refitted = plain.models["gbm"], res.models["gbm"]
    scale = max(1.0, final.sum() / validated.n_train_)  # never fewer trees than validation kept
    assert refitted.early_stopping is False
    assert refitted.max_iter == round(validated.n_iter_ * scale) == res.refit["carried"]["gbm"]["max_iter"]
    assert refitted.n_iter_ == refitted.max_iter
    members = res.models["ensemble"].members_
    assert all(members[k] is res.models[k] for k in members)  # reassembled from the refitted members
    X = lab.loc[final, res.numeric + res.categorical]
    assert not np.allclose(res.models["logreg"].predict_proba(X), plain.models["logreg"].predict_proba(X))


def test_refit_keeps_the_calibration_map_and_neural_epochs(dataset):
    from retention_core.models.calibration import CalibratedModel

    res = train_models(dataset, TrainConfig(models=["logreg", "mlp"], calibrate="sigmoid",
                                            params={"mlp": {"epochs": 3, "patience": 1}}), horizon_days=60)
    cal = res.models["logreg"]
    assert isinstance(cal, CalibratedModel) and "kept through the refit" in cal.calibration_source_
    mlp = res.models["mlp"].base_
    assert mlp.early_stopping is False and mlp.epochs == res.refit["carried"]["mlp"]["epochs"]
    assert 1 <= mlp.epochs <= 3 and len(mlp.history_) == mlp.epochs  # exactly the epochs validation kept
    assert mlp.n_train_ == res.refit["rows"]


def test_bgnbd_learns_from_the_scored_population():
    """BG/NBD needs no labels: when scoring, its parameters come from all purchases of the users scored (up to the
    scoring date), wherever it sits (alone, in the ensemble, calibrated); a handful of users keeps the trained ones."""
    from retention_core.models import for_population
    from retention_core.models.baselines import BGNBDModel
    from retention_core.models.ensemble import EnsembleModel

    rng = np.random.default_rng(3)

    def population(n, rate):
        T = rng.uniform(100, 400, n)
        x = rng.poisson(rate * T / 30)
        return pd.DataFrame({"repeat_purchases": x.astype(float), "tenure_days": T,
                             "first_to_last_days": np.where(x > 0, rng.uniform(0, 1, n) * T, 0.0)})

    old, new = population(2000, 0.2), population(2000, 1.5)
    trained = BGNBDModel(horizon_days=90).fit(old)
    adapted = for_population(trained, new)
    assert adapted is not trained and trained.params_ == BGNBDModel(horizon_days=90).fit(old).params_
    np.testing.assert_allclose(adapted.predict_proba(new), BGNBDModel(horizon_days=90).fit(new).predict_proba(new))
    assert for_population(trained, new.head(20)) is trained
    ens = EnsembleModel.from_fitted({"bgnbd": trained, "recency": trained}, old, np.r_[np.zeros(1000), np.ones(1000)])
    assert for_population(ens, new).members_["bgnbd"].params_ == adapted.params_
    assert ens.members_["bgnbd"] is trained
