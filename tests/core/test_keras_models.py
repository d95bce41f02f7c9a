"""Tests for the Keras churn models (MLP, CNN, GRU, Transformer): tiny data, two epochs, fixed seeds."""
from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.metrics import roc_auc_score
from sklearn.utils import _safe_indexing

from retention_core.errors import BundleError, ConfigError, ModelError
from retention_core.models import keras_models as km
from retention_core.models.base import churn_probability, sequences_of, with_sequences
from retention_core.models.calibration import CalibratedModel
from retention_core.models.keras_backend import load_keras
from retention_core.models.keras_builders import (
    build_cnn_model,
    build_gru_model,
    build_mlp_model,
    build_transformer_model,
)

ROOT = Path(__file__).resolve().parents[2]
WEEKS, CHANNELS = 12, 4
FAST = {"epochs": 2, "batch_size": 32, "learning_rate": 5e-3}


def make_users(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Per-user table plus weekly activity (rows, weeks, channels); churners go quiet in the last weeks."""
    rng = np.random.default_rng(seed)
    recency = rng.exponential(60, n)
    orders = rng.poisson(3, n).astype(float)
    revenue = rng.lognormal(4, 1.2, n)
    country = rng.choice(["UK", "DE", "FR"], n).astype(object)
    logit = 1.5 * (np.log1p(recency) - np.log1p(40)) - 0.4 * (orders - 3) + np.where(country == "DE", 1.0, 0.0)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    revenue[rng.random(n) < 0.1] = np.nan
    country[rng.random(n) < 0.05] = None
    X = pd.DataFrame({"user_id": [f"u{i}" for i in range(n)], "recency_days": recency, "orders": orders,
                      "revenue": revenue, "country": pd.Series(country, dtype="str")})
    seq = rng.poisson(0.6, (n, WEEKS, CHANNELS)).astype(np.float32)
    quiet = y == 1
    seq[quiet, -6:, 0] = rng.poisson(0.05, (int(quiet.sum()), 6))
    seq[quiet, -6:, 1] *= 0.1
    seq[:, :, 1] = np.log1p(seq[:, :, 1] * 40.0)  # the revenue channel is already on a log scale
    return X, y, seq


@pytest.fixture(scope="module")
def data():
    X, y, s = make_users(600, 0)
    Xt, yt, st = make_users(300, 1)
    return X, y, s, Xt, yt, st


CLASSES = [km.MLPModel, km.CNNModel, km.GRUModel, km.TransformerModel]
_FITTED: dict[type, tuple] = {}


def fitted(cls, data):
    """Each class is trained once per test session (and reused by the tests below)."""
    if cls not in _FITTED:
        X, y, s, _, _, _ = data
        calls: list[tuple[float, str]] = []
        model = cls(**FAST).fit(with_sequences(X, s), y, progress=lambda f, m: calls.append((f, m)))
        _FITTED[cls] = (model, calls)
    return _FITTED[cls]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_fit_predict_beats_chance(cls, data):
    _, _, _, Xt, yt, st = data
    model, calls = fitted(cls, data)
    proba = model.predict_proba(with_sequences(Xt, st))
    assert proba.shape == (len(Xt), 2) and proba.dtype == np.float64 and list(model.classes_) == [0, 1]
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    p = churn_probability(model, with_sequences(Xt, st))
    assert np.array_equal(p, proba[:, 1]) and ((p >= 0) & (p <= 1)).all()
    assert roc_auc_score(yt, p) > 0.6
    # the progress callback got one call per epoch, in the documented form
    assert [f for f, _ in calls] == [0.5, 1.0]
    assert calls[0][1].startswith("epoch 1: val_loss ")
    assert [h["epoch"] for h in model.history_] == [1, 2] and "val_loss" in model.history_[0]
    assert model.best_epoch_ in (1, 2)
    assert model.n_static_ == len(model.feature_names_out_)
    # predictions do not depend on how the rows are batched
    np.testing.assert_allclose(model._predict_arrays(model.model_inputs(with_sequences(Xt, st)), batch_size=7), p,
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_unseen_categories_and_missing_values_at_scoring(cls, data):
    _, _, _, Xt, _, st = data
    model, _ = fitted(cls, data)
    X = Xt.copy()
    X.loc[X.index[:10], "country"] = "Atlantis"
    X.loc[X.index[10:20], "orders"] = np.nan
    X.loc[X.index[20:30], "recency_days"] = np.inf
    X["extra"] = 1.0
    p = churn_probability(model, with_sequences(X, st))
    assert np.isfinite(p).all() and ((p >= 0) & (p <= 1)).all()
    assert model.predict_proba(with_sequences(Xt.iloc[:0], st[:0])).shape == (0, 2)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_save_load_and_pickle_give_identical_predictions(cls, data, tmp_path):
    _, _, _, Xt, _, st = data
    model, _ = fitted(cls, data)
    rows = with_sequences(Xt, st)
    p = model.predict_proba(rows)
    written = model.save(tmp_path / "m")
    assert sorted(f.name for f in written) == ["model.keras", "params.json", "preprocessing.joblib"]
    back = cls.load(tmp_path / "m")
    assert type(back) is cls and back.get_params() == model.get_params()
    assert back.history_ == model.history_ and back.feature_names_out_ == model.feature_names_out_
    np.testing.assert_array_equal(back.predict_proba(rows), p)
    np.testing.assert_array_equal(km.load_model(tmp_path / "m").predict_proba(rows), p)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(model)).predict_proba(rows), p)
    fresh = clone(model)
    assert type(fresh) is cls and fresh.get_params() == model.get_params() and not hasattr(fresh, "model_")


def test_load_errors(data, tmp_path):
    model, _ = fitted(km.MLPModel, data)
    model.save(tmp_path / "m")
    with pytest.raises(BundleError, match="not a GRUModel"):
        km.GRUModel.load(tmp_path / "m")
    (tmp_path / "m" / "model.keras").unlink()
    with pytest.raises(BundleError, match="model.keras"):
        km.MLPModel.load(tmp_path / "m")


def test_sequence_errors(data):
    X, y, s, Xt, _, st = data
    with pytest.raises(ModelError, match="weekly activity"):
        km.GRUModel(**FAST).fit(X, y)
    model, _ = fitted(km.GRUModel, data)
    with pytest.raises(ModelError, match="carries no weekly activity; the model reads 12 weeks x 4 channels"):
        model.predict_proba(Xt)
    with pytest.raises(ModelError, match="reads 12 weeks x 4 channels of weekly activity; the table carries 8 x 3"):
        model.predict_proba(with_sequences(Xt, st[:, :8, :3]))  # another shape of activity
    with pytest.raises(ModelError, match="shape"):
        with_sequences(Xt, st[:10])
    with pytest.raises(ModelError, match="not fitted"):
        km.CNNModel().predict_proba(with_sequences(Xt, st))


@pytest.mark.parametrize("cls", [km.GRUModel, km.MLPModel], ids=lambda c: c.__name__)
def test_rows_keep_their_weekly_activity_through_scikit_learns_slicing(cls, data):
    """The activity travels in the rows' own columns: scikit-learn's ``_safe_indexing`` (as cross-validation and
    calibration split a table) hands each row its own weeks, so a shuffled slice scores as the same rows did."""
    _, _, _, Xt, _, st = data
    model, _ = fitted(cls, data)
    rows = with_sequences(Xt, st)
    pick = np.random.default_rng(0).permutation(len(Xt))[:120]
    part = _safe_indexing(rows, pick)
    np.testing.assert_array_equal(sequences_of(part), st[pick])
    assert (part["user_id"].to_numpy() == Xt["user_id"].to_numpy()[pick]).all()
    np.testing.assert_allclose(churn_probability(model, part), churn_probability(model, rows)[pick], rtol=1e-5,
                               atol=1e-6)


def test_early_stopping_rows_and_calibration(data):
    X, y, s, Xt, yt, st = data
    m = km.MLPModel(hidden=(16,), epochs=3, batch_size=64, learning_rate=5e-3, patience=1)
    m.fit(X, y)  # early stopping on a stratified 15% of these rows
    assert 1 <= len(m.history_) <= 3 and all("val_loss" in h for h in m.history_)
    # a neural model is calibrated on held-out rows (no per-fold refits)
    cal = CalibratedModel(km.MLPModel(hidden=(16,), **FAST), method="sigmoid").fit(with_sequences(X, s), y)
    assert cal.calibration_source_ == "holdout"
    p = churn_probability(cal, Xt)
    assert ((p >= 0) & (p <= 1)).all() and roc_auc_score(yt, p) > 0.6
    # the wrapper pickles whole, Keras model included
    np.testing.assert_array_equal(churn_probability(pickle.loads(pickle.dumps(cal)), Xt), p)


def test_factories_shapes_and_errors():
    keras = load_keras()
    mlp = build_mlp_model(5, hidden=(8,))
    assert [tuple(i.shape) for i in mlp.inputs] == [(None, 5)]
    for build in (build_cnn_model, build_gru_model, build_transformer_model):
        model = build(5, WEEKS, CHANNELS)
        assert [i.name for i in model.inputs] == ["sequence", "static"]
        out = model([np.zeros((3, WEEKS, CHANNELS), np.float32), np.zeros((3, 5), np.float32)], training=False)
        assert tuple(keras.ops.shape(out)) == (3, 1)
    with pytest.raises(ConfigError, match="heads=3"):
        build_transformer_model(5, WEEKS, CHANNELS, d_model=32, heads=3)
    with pytest.raises(ConfigError, match="got 1.5"):
        build_gru_model(5, WEEKS, CHANNELS, dropout=1.5)
    with pytest.raises(ConfigError, match="got 0"):
        build_cnn_model(5, 0, CHANNELS)
    with pytest.raises(ConfigError, match="'wide'"):
        build_mlp_model(5, hidden="wide")
    with pytest.raises(ConfigError, match="got 0"):
        km.MLPModel(epochs=0).fit(pd.DataFrame({"a": [1.0, 2.0]}), [0, 1])


def test_module_import_does_not_import_tensorflow():
    code = ("import sys; import retention_core.models.keras_models as m; "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, sorted(sys.modules); "
            "m.MLPModel(epochs=3).get_params(); assert 'keras' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)
