"""The churn models are scikit-learn classifiers: scikit-learn's own estimator checks on the tabular ones, ``clone``,
``cross_validate``, ``CalibratedClassifierCV`` and ``VotingClassifier`` on every model of the registry, class
probabilities of shape (n, 2), and weekly activity that stays with its rows when scikit-learn slices a table."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone, is_classifier
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import VotingClassifier
from sklearn.metrics import make_scorer, roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_validate
from sklearn.utils import _safe_indexing
from sklearn.utils.estimator_checks import parametrize_with_checks

from retention_core.errors import ModelError
from retention_core.event_tokens import EventTokens, SequenceInputs, tokens_of
from retention_core.models import REGISTRY, churn_probability, make_model, model_input
from retention_core.models.base import sequences_of, with_sequences
from retention_core.models.sklearn_models import GradientBoostingModel, LogisticModel, RandomForestModel

NUMERIC = ["recency_days", "tenure_days", "repeat_purchases", "first_to_last_days", "revenue"]
CATEGORICAL = ["country"]
WEEKS, CHANNELS = 6, 4
# small and quick settings, the same models
QUICK = {"random_forest": {"n_estimators": 20, "n_jobs": 1}, "gbm": {"max_iter": 30},
         "encoder": {"item_dim": 8, "units": 16, "dim": 8, "pretrain_rows": 256, "view_events": 8, "max_iter": 30,
                     "min_samples_leaf": 20}}
DEEP = {"epochs": 2, "batch_size": 64}

# scikit-learn's checks the tabular models are not meant to pass, and why
_LABELS = "a churn model learns churned = 1 against retained = 0: other labels are refused (ModelError)"
_BY_NAME = ("columns are read by name and extra columns are ignored (a saved run scores a wider table), so there is "
            "no fixed number of features to check")
_WORDING = "the product words its refusals for the analyst (ModelError), not in scikit-learn's phrases"
NOT_MEANT = {
    "check_class_weight_classifiers": "class_weight is 'balanced' or None, as the product offers it",
    "check_classifier_data_not_an_array": _LABELS,
    "check_classifier_not_supporting_multiclass": _LABELS,
    "check_classifiers_classes": _LABELS,
    "check_classifiers_one_label": "a model needs both churned and retained users; one class is refused",
    "check_classifiers_regression_target": _WORDING,
    "check_classifiers_train": _BY_NAME,
    "check_complex_data": _WORDING,
    "check_estimator_sparse_array": "the feature table is dense; " + _WORDING,
    "check_estimator_sparse_matrix": "the feature table is dense; " + _WORDING,
    "check_estimator_sparse_tag": "the feature table is dense; " + _WORDING,
    "check_estimators_dtypes": _LABELS,
    "check_estimators_empty_data_messages": _WORDING,
    "check_fit2d_1feature": _LABELS,
    "check_fit2d_1sample": _WORDING,
    "check_fit2d_predict1d": _WORDING,
    "check_n_features_in": _BY_NAME,
    "check_n_features_in_after_fitting": _BY_NAME,
    "check_requires_y_none": _WORDING,
    "check_supervised_y_2d": "a column of labels is read as labels, without a warning",
}


@parametrize_with_checks([LogisticModel(), RandomForestModel(n_estimators=10, n_jobs=1),
                          GradientBoostingModel(max_iter=20)], expected_failed_checks=lambda est: NOT_MEANT)
def test_scikit_learn_estimator_checks(estimator, check):
    """Every other check of scikit-learn's suite: parameters stored unchanged and cloned, fit returning self,
    pickling, predictions independent of the rows beside them, NotFittedError before fit, probabilities that sum
    to one, decision_function and predict consistent with them, ..."""
    check(estimator)


def make_users(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    tenure = rng.uniform(60, 500, n)
    repeat = rng.poisson(2, n).astype(float)
    span = np.where(repeat > 0, rng.uniform(0, 1, n) * tenure, 0.0)
    recency = tenure - span
    logit = 1.4 * (np.log1p(recency) - np.log1p(120)) - 0.3 * repeat
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    X = pd.DataFrame({"recency_days": recency, "tenure_days": tenure, "repeat_purchases": repeat,
                      "first_to_last_days": span, "revenue": rng.lognormal(3, 1, n),
                      "country": rng.choice(["UK", "DE", "FR"], n)})
    seq = rng.poisson(0.5, (n, WEEKS, CHANNELS)).astype(np.float32)
    seq[y == 1, -2:, 0] = 0
    return X, y, SequenceInputs(seq, _tokens(rng, recency))


def _tokens(rng, recency: np.ndarray, L: int = 8) -> EventTokens:
    """Each user's latest events (the pre-trained encoder reads them): up to ``L``, the last one ``recency`` days
    before the cutoff."""
    n = len(recency)
    length = rng.integers(1, L + 1, n)
    real = np.arange(L)[None, :] >= (L - length)[:, None]
    age = recency[:, None] + 14.0 * (L - 1 - np.arange(L))[None, :]
    values = np.stack([rng.normal(3, 1, (n, L)), np.zeros((n, L)), np.full((n, L), np.log1p(14.0)), np.log1p(age)],
                      axis=2).astype(np.float32)
    return EventTokens(np.where(real, rng.choice(["A", "B", "C"], (n, L)), "").astype(object),
                       np.where(real, 0, -1).astype(np.int8), np.where(real[..., None], values, 0).astype(np.float32),
                       np.where(real, age, np.nan).astype(np.float32), length.astype(np.int32))


@pytest.fixture(scope="module")
def users():
    return make_users(500, 0)


def _model(key: str):
    params = {**(DEEP if REGISTRY[key].family == "deep" else {}), **QUICK.get(key, {})}
    return make_model(key, numeric=NUMERIC, categorical=CATEGORICAL, horizon_days=90, **params)


@pytest.mark.parametrize("key", list(REGISTRY))
def test_every_registry_model_is_a_classifier_that_clones_and_cross_validates(key, users):
    X, y, seq = users
    model = _model(key)
    assert is_classifier(model)
    twin = clone(model)
    assert type(twin) is type(model) and twin is not model
    assert repr(twin.get_params(deep=False)) == repr(model.get_params(deep=False))
    rows = model_input(key, X, seq)  # the sequence models find each row's weekly activity in its own columns
    folds = StratifiedKFold(3, shuffle=True, random_state=0)
    result = cross_validate(model, rows, y, cv=folds, error_score="raise", return_estimator=True,
                            scoring=make_scorer(roc_auc_score, response_method="predict_proba"))
    assert len(result["test_score"]) == 3 and np.isfinite(result["test_score"]).all()
    assert result["test_score"].mean() > 0.55, key
    assert not hasattr(model, "classes_")  # cross-validation fitted clones, not the model given
    fold_model = result["estimator"][0]
    proba = fold_model.predict_proba(rows)
    assert proba.shape == (len(X), 2) and list(fold_model.classes_) == [0, 1]
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert ((proba >= 0) & (proba <= 1)).all()
    np.testing.assert_allclose(churn_probability(fold_model, rows), proba[:, 1], rtol=1e-12)  # forests: last bit
    assert set(np.unique(fold_model.predict(rows))) <= {0, 1}


@pytest.mark.parametrize("key", ["logreg", "bgnbd", "gru"])
def test_scikit_learns_calibration_takes_the_models_as_they_are(key, users):
    X, y, seq = users
    rows = model_input(key, X, seq)
    cal = CalibratedClassifierCV(_model(key), method="isotonic", cv=3).fit(rows, y)
    proba = cal.predict_proba(rows)
    assert proba.shape == (len(X), 2) and np.allclose(proba.sum(axis=1), 1.0)
    assert roc_auc_score(y, proba[:, 1]) > 0.55


def test_the_ensemble_is_scikit_learns_soft_vote(users):
    X, y, _ = users
    ens = _model("ensemble")
    assert isinstance(ens, VotingClassifier) and ens.voting == "soft"
    assert [k for k, _ in ens.estimators] == ["logreg", "random_forest", "gbm", "bgnbd"]
    ens.set_params(random_forest__n_estimators=20, gbm__max_iter=30).fit(X, y)
    members = ens.member_probabilities(X)
    np.testing.assert_allclose(churn_probability(ens, X), np.mean(list(members.values()), axis=0))
    assert clone(ens).get_params()["random_forest__n_estimators"] == 20


def test_weekly_activity_stays_with_its_rows_when_scikit_learn_slices_the_table(users):
    X, y, inputs = users
    seq = inputs.weekly
    rows = with_sequences(X, seq)
    assert rows.shape == (len(X), X.shape[1] + WEEKS * CHANNELS)
    np.testing.assert_array_equal(sequences_of(rows), seq)
    assert sequences_of(X) is None
    pick = np.random.default_rng(1).permutation(len(X))[:200]
    part = _safe_indexing(rows, pick)
    np.testing.assert_array_equal(sequences_of(part), seq[pick])
    np.testing.assert_array_equal(part["recency_days"].to_numpy(), X["recency_days"].to_numpy()[pick])
    # the same through a boolean mask and through pandas itself
    mask = y == 1
    np.testing.assert_array_equal(sequences_of(rows[mask]), seq[mask])
    # another activity replaces the first one's columns
    np.testing.assert_array_equal(sequences_of(with_sequences(rows, seq[:, :3])), seq[:, :3])
    # the tabular models ignore the activity columns, even when they pick their columns themselves
    plain = LogisticModel().fit(X[NUMERIC], y)
    with_activity = LogisticModel().fit(with_sequences(X[NUMERIC], seq), y)
    assert with_activity.numeric_ == NUMERIC
    np.testing.assert_array_equal(churn_probability(plain, X), churn_probability(with_activity, rows))
    # the event tokens of the pre-trained encoder ride along the same way, and are no feature either
    both = with_sequences(X, inputs)
    assert tokens_of(rows) is None and tokens_of(both) is not None
    part = _safe_indexing(both, pick)
    got, want = tokens_of(part), inputs.tokens[pick]
    np.testing.assert_array_equal(sequences_of(part), seq[pick])
    for field in ("items", "kinds", "values", "age_days", "length"):
        np.testing.assert_array_equal(getattr(got, field), getattr(want, field), err_msg=field)
    assert LogisticModel().fit(both[NUMERIC + [c for c in both.columns if c.startswith("evt:")]], y).numeric_ == \
        NUMERIC


def test_a_sequence_model_needs_the_activity_in_its_input(users):
    X, y, seq = users
    with pytest.raises(Exception, match="weekly activity"):
        model_input("gru", X, None)
    with pytest.raises(ModelError, match="weekly activity"):
        _model("gru").fit(X, y)
    assert model_input("gbm", X, seq) is X  # a model that does not read it gets the table as it is
