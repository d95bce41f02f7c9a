"""Tests for the model registry (retention_core.models)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

import retention_core.models as models
from retention_core.errors import ConfigError
from retention_core.models import (DEFAULT_AUTO, FAMILIES, REGISTRY, ModelSpec, Param, churn_probability, make_model,
                                    resolve_model_keys)

ROOT = Path(__file__).resolve().parents[2]


def users(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """A per-user table with the columns the baselines read (days) plus a categorical attribute."""
    rng = np.random.default_rng(seed)
    tenure = rng.uniform(30, 700, n)
    repeat = rng.poisson(2, n).astype(float)
    first_to_last = np.where(repeat > 0, tenure * rng.uniform(0, 1, n), 0.0)
    recency = tenure - first_to_last
    segment = rng.choice(["a", "b", "c"], n).astype(object)
    logit = 1.5 * (np.log1p(recency) - np.log1p(120)) - 0.5 * repeat + np.where(segment == "b", 0.8, 0)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    segment[rng.random(n) < 0.05] = None
    X = pd.DataFrame({"user_id": [f"u{i}" for i in range(n)], "recency_days": recency, "tenure_days": tenure,
                      "first_to_last_days": first_to_last, "repeat_purchases": repeat,
                      "revenue": rng.lognormal(3, 1, n) * (repeat + 1), "segment": pd.Series(segment, dtype="str")})
    return X, y


NUMERIC = ["recency_days", "tenure_days", "first_to_last_days", "repeat_purchases", "revenue"]
CATEGORICAL = ["segment"]


@pytest.mark.parametrize("key", list(REGISTRY))
def test_every_spec_is_complete_and_builds_with_defaults(key):
    spec = REGISTRY[key]
    assert isinstance(spec, ModelSpec) and spec.key == key
    assert spec.label and spec.description and spec.family in FAMILIES
    assert spec.needs_sequences == (key in ("cnn", "gru", "transformer", "encoder"))
    assert bool(spec.needs_events) == (key == "encoder")  # raw events as tokens: the pre-trained encoder only
    for name, p in spec.params.items():
        assert isinstance(p, Param) and p.name == name and p.help
        assert p.check(p.default) == p.default
    model = spec.build(NUMERIC, CATEGORICAL, 60)
    assert hasattr(model, "fit") and hasattr(model, "predict_proba")
    params = model.get_params()
    for name, default in spec.defaults().items():
        assert params[name] == default
    if "horizon_days" in params:
        assert params["horizon_days"] == 60
    if "numeric" in params:
        assert params["numeric"] == NUMERIC and params["categorical"] == CATEGORICAL


def test_required_columns_of_the_baselines():
    X, _ = users(10, 0)
    assert all(not spec.missing_columns(X.columns) for spec in REGISTRY.values())
    assert REGISTRY["recency"].missing_columns(["orders"]) == ["recency_days"]
    assert REGISTRY["bgnbd"].missing_columns(["tenure_days", "recency_days"]) == ["repeat_purchases"]
    assert REGISTRY["bgnbd"].missing_columns([]) == ["repeat_purchases", "tenure_days",
                                                     "first_to_last_days or recency_days"]
    assert REGISTRY["gbm"].missing_columns([]) == []


def test_default_auto_is_fast_and_shallow():
    assert DEFAULT_AUTO == ["recency", "bgnbd", "logreg", "random_forest", "gbm", "ensemble"]
    assert all(REGISTRY[k].family != "deep" for k in DEFAULT_AUTO)
    assert {REGISTRY[k].family for k in REGISTRY} == set(FAMILIES)


def test_make_model_passes_settings_and_checks_them():
    m = make_model("gbm", numeric=NUMERIC, categorical=CATEGORICAL, learning_rate="0.1", max_iter=50)
    assert m.learning_rate == 0.1 and m.max_iter == 50
    m = make_model("mlp", numeric=None, categorical=None, hidden="64", epochs=2)
    assert m.hidden == (64,) and m.epochs == 2
    assert make_model("random_forest", numeric=None, categorical=None, max_depth="None").max_depth is None
    assert make_model("bgnbd", numeric=None, categorical=None, horizon_days=30, penalizer=0.01).penalizer == 0.01
    with pytest.raises(ConfigError, match=r"Unknown model 'xgboost'.*recency, bgnbd, logreg"):
        make_model("xgboost", numeric=None, categorical=None)
    with pytest.raises(ConfigError, match=r"no setting 'depth'.*max_depth"):
        make_model("random_forest", numeric=None, categorical=None, depth=3)
    with pytest.raises(ConfigError, match="got 'fast'"):
        make_model("gbm", numeric=None, categorical=None, learning_rate="fast")
    with pytest.raises(ConfigError, match="got 0"):
        make_model("random_forest", numeric=None, categorical=None, n_estimators=0)
    with pytest.raises(ConfigError, match="got 'l3'"):
        make_model("logreg", numeric=None, categorical=None, penalty="l3")
    with pytest.raises(ConfigError, match="got 'platt'"):
        make_model("logreg", numeric=None, categorical=None, calibrate="platt")
    cal = make_model("logreg", numeric=None, categorical=None, calibrate="isotonic", C=0.5)
    assert type(cal).__name__ == "CalibratedModel" and cal.base.C == 0.5
    for none in (None, "none"):  # "none" as the training settings and the command line write it
        assert type(make_model("logreg", numeric=None, categorical=None, calibrate=none)).__name__ == "LogisticModel"


def test_param_check_conversions():
    p = Param("n", 3, "int", low=1, high=10, help="x")
    assert p.check("4") == 4 and p.check(5.0) == 5
    for bad in (0, 11, 2.5, True, None, "many", float("nan")):
        with pytest.raises(ConfigError, match="n must be"):
            p.check(bad)
    b = Param("flag", True, "bool", help="x")
    assert b.check("false") is False and b.check(True) is True
    with pytest.raises(ConfigError, match="got 'maybe'"):
        b.check("maybe")
    c = Param("w", None, "choice", choices=(None, "balanced"), help="x")
    assert c.check("none") is None and c.check("balanced") == "balanced"
    with pytest.raises(ValueError):
        Param("bad", 1, "colour")


def test_resolve_model_keys():
    assert resolve_model_keys("auto") == DEFAULT_AUTO
    assert resolve_model_keys(None) == DEFAULT_AUTO
    assert resolve_model_keys("all") == list(REGISTRY)
    assert resolve_model_keys("gbm, GRU,gbm") == ["gbm", "gru"]
    assert resolve_model_keys(["mlp", "auto"]) == ["mlp"] + DEFAULT_AUTO
    with pytest.raises(ConfigError, match="'lstm'"):
        resolve_model_keys("gbm,lstm")


def test_default_auto_models_train_through_the_registry():
    X, y = users(1200, 0)
    Xt, yt = users(600, 1)
    for key in DEFAULT_AUTO:
        model = make_model(key, numeric=NUMERIC, categorical=CATEGORICAL, horizon_days=90)
        model.fit(X, y, progress=None)
        proba = model.predict_proba(Xt)
        assert proba.shape == (len(Xt), 2) and np.allclose(proba.sum(axis=1), 1.0), key
        p = churn_probability(model, Xt)
        np.testing.assert_allclose(p, proba[:, 1], rtol=1e-12)  # a forest on several threads: the last bit varies
        assert ((p >= 0) & (p <= 1)).all(), key
        assert roc_auc_score(yt, p) > 0.6, key


def test_lazy_attributes():
    assert models.LogisticModel.__name__ == "LogisticModel"
    assert "GRUModel" in dir(models)
    with pytest.raises(AttributeError):
        models.NoSuchModel  # noqa: B018


def test_shared_model_modules_import_neither_sklearn_nor_keras():
    # the model interface, category text and the Keras loader are read by explanations without loading either
    code = ("import sys; import retention_core.models.base, retention_core.models.keras_backend, "
            "retention_core.models.keras_builders; "
            "bad = [k for k in ('sklearn', 'tensorflow', 'keras') if k in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)


def test_import_does_not_import_tensorflow():
    code = ("import sys; import retention_core.models as m; "
            "m.make_model('gru', numeric=None, categorical=None); m.REGISTRY['transformer'].defaults(); "
            "bad = [k for k in ('tensorflow', 'keras') if k in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)
