"""Tests for the Keras churn models (MLP, CNN, GRU, Transformer): tiny data, two epochs, fixed seeds."""
from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from retention_core.errors import BundleError, ConfigError, ModelError
from retention_core.models import keras_models as km
from retention_core.models.sklearn_models import CalibratedModel

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
        model = cls(**FAST).fit(X, y, sequences=s, progress=lambda f, m: calls.append((f, m)))
        _FITTED[cls] = (model, calls)
    return _FITTED[cls]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_fit_predict_beats_chance(cls, data):
    _, _, _, Xt, yt, st = data
    model, calls = fitted(cls, data)
    p = model.predict_proba(Xt, sequences=st)
    assert p.shape == (len(Xt),) and p.dtype == np.float64
    assert ((p >= 0) & (p <= 1)).all()
    assert roc_auc_score(yt, p) > 0.6
    # the progress callback got one call per epoch, in the documented form
    assert [f for f, _ in calls] == [0.5, 1.0]
    assert calls[0][1].startswith("epoch 1: val_loss ")
    assert [h["epoch"] for h in model.history_] == [1, 2] and "val_loss" in model.history_[0]
    assert model.best_epoch_ in (1, 2)
    assert model.n_static_ == len(model.feature_names_out_)
    # predictions do not depend on how the rows are batched
    np.testing.assert_allclose(model.predict_proba(Xt, sequences=st, batch_size=7), p, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_unseen_categories_and_missing_values_at_scoring(cls, data):
    _, _, _, Xt, _, st = data
    model, _ = fitted(cls, data)
    X = Xt.copy()
    X.loc[X.index[:10], "country"] = "Atlantis"
    X.loc[X.index[10:20], "orders"] = np.nan
    X.loc[X.index[20:30], "recency_days"] = np.inf
    X["extra"] = 1.0
    p = model.predict_proba(X, sequences=st)
    assert np.isfinite(p).all() and ((p >= 0) & (p <= 1)).all()
    assert model.predict_proba(Xt.iloc[:0], sequences=st[:0]).shape == (0,)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_save_load_and_pickle_give_identical_predictions(cls, data, tmp_path):
    _, _, _, Xt, _, st = data
    model, _ = fitted(cls, data)
    p = model.predict_proba(Xt, sequences=st)
    written = model.save(tmp_path / "m")
    assert sorted(f.name for f in written) == ["model.keras", "params.json", "preprocessing.joblib"]
    back = cls.load(tmp_path / "m")
    assert type(back) is cls and back.get_params() == model.get_params()
    assert back.history_ == model.history_ and back.feature_names_out_ == model.feature_names_out_
    np.testing.assert_array_equal(back.predict_proba(Xt, sequences=st), p)
    np.testing.assert_array_equal(km.load_model(tmp_path / "m").predict_proba(Xt, sequences=st), p)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(model)).predict_proba(Xt, sequences=st), p)


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
    with pytest.raises(ModelError, match="sequences"):
        km.GRUModel(**FAST).fit(X, y)
    model, _ = fitted(km.GRUModel, data)
    with pytest.raises(ModelError, match="12 weeks"):
        model.predict_proba(Xt, sequences=st[:, :8])
    with pytest.raises(ModelError, match="shape"):
        model.predict_proba(Xt, sequences=st[:10])
    with pytest.raises(ModelError, match="not fitted"):
        km.CNNModel().predict_proba(Xt, sequences=st)


def test_validation_rows_and_calibration(data):
    X, y, s, Xt, yt, st = data
    m = km.MLPModel(hidden=(16,), epochs=3, batch_size=64, learning_rate=5e-3, patience=1)
    m.fit(X, y, X_val=Xt, y_val=yt)
    assert 1 <= len(m.history_) <= 3 and all("val_loss" in h for h in m.history_)
    # a neural model is calibrated on held-out rows (no per-fold refits)
    cal = CalibratedModel(km.MLPModel(hidden=(16,), **FAST), method="sigmoid").fit(X, y, sequences=s)
    assert cal.calibration_source_ == "holdout"
    p = cal.predict_proba(Xt)
    assert ((p >= 0) & (p <= 1)).all() and roc_auc_score(yt, p) > 0.6
    # the wrapper pickles whole, Keras model included
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(cal)).predict_proba(Xt), p)


def test_factories_shapes_and_errors():
    keras = km.import_keras()
    mlp = km.build_mlp_model(5, hidden=(8,))
    assert [tuple(i.shape) for i in mlp.inputs] == [(None, 5)]
    for build in (km.build_cnn_model, km.build_gru_model, km.build_transformer_model):
        model = build(5, WEEKS, CHANNELS)
        assert [i.name for i in model.inputs] == ["sequence", "static"]
        out = model([np.zeros((3, WEEKS, CHANNELS), np.float32), np.zeros((3, 5), np.float32)], training=False)
        assert tuple(keras.ops.shape(out)) == (3, 1)
    with pytest.raises(ConfigError, match="heads=3"):
        km.build_transformer_model(5, WEEKS, CHANNELS, d_model=32, heads=3)
    with pytest.raises(ConfigError, match="got 1.5"):
        km.build_gru_model(5, WEEKS, CHANNELS, dropout=1.5)
    with pytest.raises(ConfigError, match="got 0"):
        km.build_cnn_model(5, 0, CHANNELS)
    with pytest.raises(ConfigError, match="'wide'"):
        km.build_mlp_model(5, hidden="wide")
    with pytest.raises(ConfigError, match="got 0"):
        km.MLPModel(epochs=0).fit(pd.DataFrame({"a": [1.0, 2.0]}), [0, 1])


def test_module_import_does_not_import_tensorflow():
    code = ("import sys; import retention_core.models.keras_models as m; "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, sorted(sys.modules); "
            "m.MLPModel(epochs=3).get_params(); assert 'keras' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)
