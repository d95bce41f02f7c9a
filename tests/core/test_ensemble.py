"""The averaging ensemble: assembled from trained members, explained through them, chosen by auto only on merit."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import VotingClassifier

from retention_core.errors import ModelError
from retention_core.events import canonical_events
from retention_core.dataset import SnapshotConfig, build_dataset
from retention_core.models import REGISTRY, make_model
from retention_core.models.ensemble import EnsembleModel
from retention_core.roles import infer_schema
from retention_core.training import TrainConfig, recent_snapshots, time_split, train_models
from retention_core.dataset import training_cutoffs


@pytest.fixture(scope="module")
def dataset():
    from assets.generator import generate_events

    raw = generate_events(400, seed=21, days=500)
    ev = canonical_events(raw, infer_schema(raw))
    cfg = SnapshotConfig(horizon_days=60)
    return build_dataset(ev, cfg, cutoffs=training_cutoffs(ev, cfg))


def test_ensemble_is_the_mean_of_its_members(dataset):
    lab = dataset.labelled()
    X, y = lab.frame[lab.features], lab.frame["churned"].to_numpy()
    m = make_model("ensemble", numeric=lab.numeric, categorical=lab.categorical, horizon_days=60).fit(X, y)
    members = m.member_probabilities(X)
    assert set(members) == {"logreg", "random_forest", "gbm", "bgnbd"}
    assert isinstance(m, VotingClassifier) and m.voting == "soft"
    np.testing.assert_allclose(m.predict_proba(X)[:, 1], np.mean(list(members.values()), axis=0))
    with pytest.raises(ModelError, match="at least two"):
        EnsembleModel.from_fitted({"logreg": m.members_["logreg"]}, X, y)


def test_training_assembles_the_ensemble_from_fitted_members(dataset):
    res = train_models(dataset, TrainConfig(models=["logreg", "gbm", "ensemble"], refit=False), horizon_days=60)
    ens = res.models["ensemble"]
    assert ens.members_["logreg"] is res.models["logreg"] and ens.members_["gbm"] is res.models["gbm"]
    np.testing.assert_allclose(res.val_predictions["ensemble"],
                               (res.val_predictions["logreg"] + res.val_predictions["gbm"]) / 2)
    assert "ensemble" in res.leaderboard["model"].tolist()


def test_recent_snapshots_and_time_split_never_overlap(dataset):
    lab = dataset.labelled()
    tr, va, t_val = time_split(lab, 60, train_snapshots=2)
    d = pd.to_datetime(lab.frame["snapshot_date"])
    assert d[tr].nunique() == 2 and d[va].nunique() == 1
    assert (d[tr] + pd.Timedelta(days=60) <= t_val).all()  # no label window reaches into validation
    assert not (tr & va).any()
    all_ = np.ones(len(d), bool)
    assert d[recent_snapshots(d, all_, 1)].nunique() == 1
    assert recent_snapshots(d, all_, 0).all()


def test_auto_skips_models_a_user_table_cannot_feed():
    assert REGISTRY["ensemble"].missing_columns(["tenure", "MonthlyCharges"])
    assert not REGISTRY["ensemble"].missing_columns(["repeat_purchases", "tenure_days", "recency_days"])


def test_ensemble_explanations_add_up(dataset):
    from retention_core.explain import EnsembleExplainer, make_explainer

    lab = dataset.labelled()
    X, y = lab.frame[lab.features], lab.frame["churned"].to_numpy()
    m = make_model("ensemble", numeric=lab.numeric, categorical=lab.categorical, horizon_days=60).fit(X, y)
    ex = make_explainer(m, "ensemble", X.sample(100, random_state=0), lab.numeric, lab.categorical)
    assert isinstance(ex, EnsembleExplainer)
    few = X.iloc[:20]
    pts = ex.effects_points(few)
    p = m.predict_proba(few)[:, 1]
    # additivity in churn probability: the points add up to the ensemble's probability minus its average one
    np.testing.assert_allclose(pts.sum(axis=1).to_numpy() / 100, p - ex.expected_value, atol=0.02)
    assert np.corrcoef(pts.sum(axis=1), p)[0, 1] > 0.9
    reasons = ex.reasons(few, n=3)
    assert len(reasons) == 20 and all(len(r) <= 3 for r in reasons)
