"""The settings search of ``auto``: inside the training rows only, seeded and repeatable, kept only when it beats the
defaults inside, saved with the run, and off with a budget of 0 (tiny budgets and trial caps; no timings here)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from assets.generator import checkerboard_table
from tests.generated import generated_shop
from retention_core import training, tuned_run
from retention_core.dataset import user_dataset
from retention_core.models import REGISTRY
from retention_core.models.tuning import SPACES
from retention_core.roles import infer_schema
from retention_core.training import TrainConfig, train_models
from retention_core.validation import validate

BIG = 600.0  # a budget the trial cap reaches first: the same trials on any machine


def _users(df: pd.DataFrame):
    schema = infer_schema(df)
    return user_dataset(df, schema, validate(df, schema))


@pytest.fixture(scope="module")
def log_dataset():
    return generated_shop(400, seed=8, days=560, step_days=30).dataset


def _spy(monkeypatch):
    """Record the split of the run and the rows every inner fit learns from and is judged on."""
    seen = {"split": None, "calls": []}
    split, score = training._split, tuned_run.inner_score

    def spy_split(*a, **kw):
        seen["split"] = split(*a, **kw)
        return seen["split"]

    def spy_score(sp, key, params, tr, va, horizon):
        seen["calls"].append((key, np.asarray(tr), np.asarray(va)))
        return score(sp, key, params, tr, va, horizon)

    monkeypatch.setattr(training, "_split", spy_split)
    monkeypatch.setattr(tuned_run, "inner_score", spy_score)
    return seen


def _no_validation_rows(seen) -> None:
    sp = seen["split"][0]
    assert seen["calls"], "the search ran"
    for key, tr, va in seen["calls"]:
        assert not sp.val[tr].any() and not sp.val[va].any(), f"{key}: the search saw validation rows"
        assert sp.train[tr].all() and sp.train[va].all(), f"{key}: the search read rows outside the training part"
        assert not np.intersect1d(tr, va).size


def test_every_searched_setting_is_a_registry_setting_within_its_range():
    import optuna

    for key, space in SPACES.items():
        spec = REGISTRY[key]
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        for _ in range(30):
            trial = study.ask()
            params = {name: dim.suggest(trial, name) for name, dim in space.items()}
            assert spec.check_params(params)  # ConfigError on an unknown name or a value out of range
            study.tell(trial, 0.5)


def test_search_on_a_user_table_never_sees_the_holdout(monkeypatch):
    seen = _spy(monkeypatch)
    events = []
    cfg = TrainConfig(models=["logreg", "gbm"], tune_budget=BIG, tune_trials=4, cv_folds=0)
    res = train_models(_users(checkerboard_table(500)), cfg, progress=events.append)
    _no_validation_rows(seen)
    assert {k for k, _, _ in seen["calls"]} == {"logreg", "gbm"}
    assert any(e.stage == "search" and e.search is not None for e in events)
    assert res.tuning["validation"].startswith("3 stratified folds")


def test_search_on_a_log_uses_earlier_snapshots_never_the_validation_one(monkeypatch, log_dataset):
    seen = _spy(monkeypatch)
    res = train_models(log_dataset, TrainConfig(models=["logreg", "random_forest"], tune_budget=BIG, tune_trials=3,
                                                params={"random_forest": {"n_estimators": 30}}), horizon_days=60)
    _no_validation_rows(seen)
    sp = seen["split"][0]
    dates = pd.to_datetime(sp.frame["snapshot_date"]).to_numpy()
    t_val = dates[sp.val].max()
    users = sp.frame["user_id"].astype(str).to_numpy()
    for _, tr, va in seen["calls"]:
        assert dates[tr].max() < dates[va].min() <= t_val - np.timedelta64(60, "D")  # learn from earlier snapshots
        if dates[va].min() - dates[tr].max() < np.timedelta64(60, "D"):  # label windows overlap: other customers
            assert not set(users[tr]) & set(users[va])
    assert list(res.tuning["models"]) == ["logreg"]  # settings the analyst set are not searched


def test_same_seed_and_trial_cap_give_the_same_search():
    ds = _users(checkerboard_table(400, seed=1))

    def run():
        res = train_models(ds, TrainConfig(models=["logreg", "gbm"], tune_budget=BIG, tune_trials=6, cv_folds=0))
        for m in res.tuning["models"].values():
            m["seconds"] = None
            for t in m["trials"]:
                t["seconds"] = None
        return res.tuning, res.leaderboard.drop(columns="fit_seconds")

    (a, board_a), (b, board_b) = run(), run()
    assert a == b
    pd.testing.assert_frame_equal(board_a, board_b)
    assert all(len(m["trials"]) == 6 for m in a["models"].values())


def test_tuned_gradient_boosting_beats_its_defaults_where_they_lose():
    """Checkerboard cells of about 40 users: the defaults' leaves of at least 100 users cannot draw them. The search
    decides inside the training rows; the tuned model then wins on the holdout it never saw."""
    cfg = TrainConfig(models=["gbm"], tune_budget=BIG, tune_trials=12, cv_folds=0)
    res = train_models(_users(checkerboard_table(3000, seed=2)), cfg)
    row = res.leaderboard.set_index("model").loc["gbm"]
    search = res.tuning["models"]["gbm"]
    assert search["kept"] and search["best_score"] > search["default_score"]
    assert row["tuned"] and row["roc_auc"] > row["default_roc_auc"] + 0.02
    assert res.models["gbm"].get_params()["min_samples_leaf"] == search["best_params"]["min_samples_leaf"] < 100


def test_without_inner_folds_nothing_is_searched_and_the_defaults_stay():
    from retention_core.models.tuning import inner_folds, search

    y = np.array([0, 1, 0, 1])
    folds, why = inner_folds(pd.Series(pd.to_datetime(["2024-01-01"] * 4)), y, np.ones(4, bool), horizon_days=90,
                             seed=0, users=pd.Series(list("abcd")))
    assert folds == [] and "no earlier" in why
    found = search(["gbm"], lambda *a: 1.0, folds, budget=10, validation=why)
    assert found.params() == {} and found.models["gbm"].note == why and not found.models["gbm"].trials


def test_budget_zero_is_the_fixed_defaults_and_auto_searches_by_default():
    ds = _users(checkerboard_table(300, seed=3))
    off = train_models(ds, TrainConfig(models="auto", tune_budget=0, cv_folds=0))
    listed = train_models(ds, TrainConfig(models=["logreg", "random_forest", "gbm"], cv_folds=0))
    assert off.tuning == {} and "tuned" not in off.leaderboard
    pd.testing.assert_frame_equal(off.leaderboard.drop(columns="fit_seconds"),
                                  listed.leaderboard.drop(columns="fit_seconds"))
    assert TrainConfig(models="auto").search_budget() > 0 and TrainConfig(models=["gbm"]).search_budget() == 0
    with pytest.raises(Exception, match="budget"):
        TrainConfig(tune_budget=-1).model_keys()


def test_the_command_line_saves_the_chosen_settings_and_the_search_history(tmp_path):
    from retention_core.cli import main

    data = tmp_path / "users.csv"
    checkerboard_table(300, seed=4).to_csv(data, index=False)
    run = tmp_path / "run"
    assert main(["train", str(data), "--out", str(run), "--label", "churn", "--positive", "Yes", "--models",
                 "logreg", "--tune-budget", "20"]) == 0
    tuning = json.loads((run / "metrics.json").read_text())["tuning"]
    logreg = tuning["models"]["logreg"]
    assert tuning["budget_seconds"] == 20 and logreg["default_score"] is not None
    assert {"number", "params", "score", "state", "seconds"} <= set(logreg["trials"][0])
    board = pd.read_csv(run / "leaderboard.csv")
    assert {"tuned", "default_roc_auc", "search_default", "search_tuned"} <= set(board.columns)


def test_no_fit_sees_the_rows_its_leaderboard_figure_is_measured_on(monkeypatch, log_dataset):
    """Early stopping (boosting, the Keras models) watches a share of the rows a model learns from: the rows of the
    validation snapshot, where the leaderboard measures it, are never given to a fit, neither to learn nor to stop."""
    from retention_core.models.sklearn_models import _SklearnModel

    seen = _spy(monkeypatch)
    given = []
    fit = _SklearnModel.fit

    def spy_fit(self, X, y, **kw):
        given.append((type(self).__name__, X.index.to_numpy(), set(kw) - {"progress"}))
        return fit(self, X, y, **kw)

    monkeypatch.setattr(_SklearnModel, "fit", spy_fit)
    train_models(log_dataset, TrainConfig(models=["gbm"], tune_budget=0, refit=False), horizon_days=60)
    sp = seen["split"][0]
    val_index = sp.frame.index.to_numpy()[sp.val]
    assert given, "a model was fitted"
    for name, rows, other in given:
        assert not other, f"{name} was given more than its training rows: {other}"
        assert not np.isin(rows, val_index).any(), f"{name} learned from the validation snapshot"
