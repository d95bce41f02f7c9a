"""Tests for the scikit-learn churn models, their preprocessing and the calibration wrapper."""
from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from scipy import special
from sklearn.base import clone
from sklearn.metrics import brier_score_loss, roc_auc_score

from retention_core.errors import ConfigError, ModelError
from retention_core.models.base import churn_probability
from retention_core.models.baselines import RecencyRule
from retention_core.models.calibration import CalibratedModel
from retention_core.models.preprocessing import SignedLog1p, infer_columns, make_preprocessor
from retention_core.models.sklearn_models import GradientBoostingModel, LogisticModel, RandomForestModel

NUMERIC = ["recency_days", "orders", "revenue", "trend", "is_member"]
CATEGORICAL = ["country"]


def make_users(n: int, seed: int, *, base_rate: float = 0.0) -> tuple[pd.DataFrame, np.ndarray]:
    """Per-user table with a real signal: churn rises with recency and in one country, falls with orders and trend.

    Revenue is heavy-tailed with 10% missing, the country has a rare value and missing entries, ``base_rate`` shifts
    the churn logit (negative = fewer churners).
    """
    rng = np.random.default_rng(seed)
    recency = rng.exponential(60, n)
    orders = rng.poisson(3, n).astype(float)
    revenue = rng.lognormal(4, 1.2, n)
    trend = rng.normal(0, 1, n)
    member = (rng.random(n) < 0.3).astype(float)
    country = rng.choice(["UK", "DE", "FR", "US", "IS"], n, p=[0.4, 0.3, 0.17, 0.128, 0.002]).astype(object)
    logit = (base_rate + 1.5 * (np.log1p(recency) - np.log1p(40)) - 0.4 * (orders - 3) - 0.6 * trend
             + np.where(country == "DE", 1.2, 0.0))
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    revenue[rng.random(n) < 0.1] = np.nan
    country[rng.random(n) < 0.05] = None
    X = pd.DataFrame({
        "user_id": [f"u{seed}_{i}" for i in range(n)],
        "snapshot_date": pd.Timestamp("2024-01-01"),
        "recency_days": recency, "orders": orders, "revenue": revenue, "trend": trend, "is_member": member,
        "country": pd.Series(country, dtype="str"),
    })
    return X, y


@pytest.fixture(scope="module")
def data():
    X, y = make_users(1500, 0)
    Xt, yt = make_users(800, 1)
    return X, y, Xt, yt


def awkward(Xt: pd.DataFrame) -> pd.DataFrame:
    """The scoring table with unseen categories, missing values everywhere, extra and reordered columns."""
    X = Xt.copy()
    X.loc[X.index[:20], "country"] = "Atlantis"
    X.loc[X.index[20:40], "country"] = None
    X.loc[X.index[40:60], "orders"] = np.nan
    X.loc[X.index[60:80], "recency_days"] = np.inf
    X.loc[X.index[80:100], "trend"] = np.nan  # no missing trend at fit time
    X["something_else"] = "x"
    return X[list(reversed(X.columns))]


MODELS = [
    pytest.param(lambda: LogisticModel(NUMERIC, CATEGORICAL), id="logreg-l2"),
    pytest.param(lambda: LogisticModel(NUMERIC, CATEGORICAL, penalty="l1", C=0.5), id="logreg-l1"),
    pytest.param(lambda: LogisticModel(NUMERIC, CATEGORICAL, penalty="elasticnet", class_weight=None), id="logreg-en"),
    pytest.param(lambda: RandomForestModel(NUMERIC, CATEGORICAL, n_estimators=60), id="random_forest"),
    pytest.param(lambda: GradientBoostingModel(NUMERIC, CATEGORICAL, max_iter=100), id="gbm"),
    pytest.param(lambda: GradientBoostingModel(max_iter=100), id="gbm-inferred-columns"),
]


# ---------------------------------------------------------------------------------------------------------------------
# preprocessing
# ---------------------------------------------------------------------------------------------------------------------


def test_signed_log_picks_heavy_tailed_nonnegative_columns():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({
        "revenue": rng.lognormal(4, 1.5, 500),  # heavy tail, >= 0
        "trend": rng.normal(0, 1, 500) ** 3,  # heavy tail but negative values
        "flag": (rng.random(500) < 0.05).astype(float),  # skewed but binary
        "uniform": rng.random(500),  # not skewed
    })
    t = SignedLog1p().fit(X)
    assert t.log_columns_.tolist() == [True, False, False, False]
    out = t.transform(pd.DataFrame({"revenue": [-5.0, np.inf, 0.0], "trend": [1.0, 2.0, 3.0],
                                    "flag": [0.0, 1.0, np.nan], "uniform": [0.1, 0.2, 0.3]}))
    assert out[0, 0] == pytest.approx(-np.log1p(5.0))  # a negative value seen only at scoring stays finite
    assert np.isnan(out[1, 0]) and np.isnan(out[2, 2])  # inf is treated as missing
    assert SignedLog1p(enabled=False).fit(X).log_columns_.sum() == 0
    assert list(t.get_feature_names_out()) == list(X.columns)


def test_preprocessor_onehot_names_missing_and_unseen(data):
    X, y, Xt, _ = data
    pre = make_preprocessor(NUMERIC, CATEGORICAL).fit(X, y)
    names = list(pre.get_feature_names_out())
    assert names[:5] == NUMERIC
    assert "missingindicator_revenue" in names
    assert "country=(missing)" in names and "country=DE" in names
    assert "country=(other)" in names  # the rare value
    assert "country=IS" not in names
    out = pre.transform(awkward(Xt))
    assert out.shape == (len(Xt), len(names)) and out.dtype == np.float64
    assert np.isfinite(out).all()
    other = names.index("country=(other)")
    assert (out[:20, other] == 1).all()  # unseen "Atlantis" counts as other
    # scaled numeric columns, log on the heavy-tailed revenue only
    log_cols = pre.named_transformers_["num"].named_steps["log"].log_columns_
    assert dict(zip(NUMERIC, log_cols))["revenue"] and not dict(zip(NUMERIC, log_cols))["trend"]
    assert abs(pre.transform(X)[:, 0].mean()) < 1e-6


def test_preprocessor_ordinal_unknown_is_minus_one(data):
    X, y, Xt, _ = data
    pre = make_preprocessor(NUMERIC, CATEGORICAL, scale=False, log_heavy=False, encoding="ordinal").fit(X, y)
    names = list(pre.get_feature_names_out())
    assert names[-1] == "country"
    out = pre.transform(awkward(Xt))
    assert (out[:20, -1] == -1).all()
    assert np.isfinite(out).all()
    assert out[:, 0].max() > 100  # recency in days, untouched


def test_preprocessor_rejects_bad_settings():
    with pytest.raises(ConfigError, match="'target'"):
        make_preprocessor(["a"], [], encoding="target")
    with pytest.raises(ConfigError, match="both numeric and categorical"):
        make_preprocessor(["a"], ["a"])
    with pytest.raises(ConfigError):
        make_preprocessor([], [])


def test_infer_columns_skips_identifiers(data):
    X, _, _, _ = data
    num, cat = infer_columns(X.assign(churned=0.0))
    assert num == NUMERIC and cat == CATEGORICAL
    assert infer_columns(X, ["orders"], None) == (["orders"], ["country"])
    with pytest.raises(ModelError, match="'nope'"):
        infer_columns(X, ["nope"], [])


# ---------------------------------------------------------------------------------------------------------------------
# models
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("factory", MODELS)
def test_model_fits_and_scores_raw_columns(factory, data):
    X, y, Xt, yt = data
    calls = []
    model = factory()
    assert model.fit(X, y, progress=lambda f, m: calls.append((f, m))) is model
    assert calls[0][0] == 0.0 and calls[-1][0] == 1.0
    proba = model.predict_proba(Xt)
    assert proba.shape == (len(Xt), 2) and proba.dtype == np.float64 and list(model.classes_) == [0, 1]
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    p = churn_probability(model, Xt)
    assert p.shape == (len(Xt),)
    np.testing.assert_allclose(p, proba[:, 1], rtol=1e-12)  # a forest on several threads: the last bit may vary
    assert ((p >= 0) & (p <= 1)).all()
    assert roc_auc_score(yt, p) > 0.7
    assert np.array_equal(model.predict(Xt), (p > 0.5).astype(int))
    np.testing.assert_allclose(special.expit(model.decision_function(Xt)), p, rtol=1e-12)
    # awkward input: unseen categories, missing and infinite values, extra and reordered columns
    q = churn_probability(model, awkward(Xt))
    assert q.shape == (len(Xt),) and np.isfinite(q).all() and ((q >= 0) & (q <= 1)).all()
    # the fitted pipeline alone scores the raw table, and survives pickling
    pipe = pickle.loads(pickle.dumps(model.pipeline_))
    np.testing.assert_allclose(pipe.predict_proba(Xt)[:, 1], p)
    assert len(model.feature_names_out_) == model.encoded(Xt).shape[1]
    assert model.numeric_ == NUMERIC and model.categorical_ == CATEGORICAL
    assert model.predict_proba(Xt.iloc[:0]).shape == (0, 2)


def test_models_store_params_unchanged():
    m = RandomForestModel(["a"], None, n_estimators=10, max_depth=3)
    assert m.get_params()["max_depth"] == 3 and m.get_params()["categorical"] is None
    assert m.set_params(max_depth=None) is m and m.max_depth is None
    with pytest.raises(ConfigError, match="'depth'"):
        m.set_params(depth=3)
    assert "n_estimators=10" in repr(m)


@pytest.mark.parametrize(
    "model, match",
    [
        (LogisticModel(penalty="l3"), "'l3'"),
        (LogisticModel(C=0), "got 0"),
        (RandomForestModel(n_estimators=2.5), "got 2.5"),
        (GradientBoostingModel(learning_rate=-1), "got -1"),
        (GradientBoostingModel(class_weight="heavy"), "'heavy'"),
    ],
)
def test_bad_settings_quote_the_value(model, match, data):
    X, y, _, _ = data
    with pytest.raises(ConfigError, match=match):
        model.fit(X, y)


def test_training_and_scoring_errors(data):
    X, y, Xt, _ = data
    with pytest.raises(ModelError, match="not fitted"):
        LogisticModel().predict_proba(Xt)
    with pytest.raises(ModelError, match="both churned and retained"):
        LogisticModel().fit(X, np.zeros(len(X)))
    with pytest.raises(ModelError, match="labels"):
        LogisticModel().fit(X, y[:-1])
    with pytest.raises(ModelError, match="DataFrame"):
        LogisticModel().fit(X["orders"].to_numpy(), y)  # a table or a matrix, not one column
    # a matrix is a table of numeric columns x0, x1, ...
    M = X[["recency_days", "orders"]].to_numpy()
    named = pd.DataFrame(M, columns=["x0", "x1"])
    np.testing.assert_array_equal(LogisticModel().fit(M, y).predict_proba(M[:50]),
                                  LogisticModel().fit(named, y).predict_proba(named.iloc[:50]))
    m = LogisticModel(NUMERIC, CATEGORICAL).fit(X, y)
    with pytest.raises(ModelError, match="'orders'"):
        m.predict_proba(Xt.drop(columns=["orders"]))


def test_gbm_stops_early_on_a_share_of_its_own_training_rows(data):
    X, y, Xt, yt = data
    m = GradientBoostingModel(NUMERIC, CATEGORICAL, learning_rate=0.3, max_iter=300).fit(X, y)
    est = m.pipeline_.named_steps["model"]
    assert est.early_stopping and est.validation_fraction == 0.1  # held out of the rows given to fit
    assert m.n_iter_ < 300
    assert roc_auc_score(yt, churn_probability(m, Xt)) > 0.7
    with pytest.raises(TypeError):
        m.fit(X, y, X_val=Xt, y_val=yt)  # no other rows to stop on: the measured rows never reach a fit


def test_gbm_scores_large_tables_in_blocks_with_the_same_result(data):
    X, y, Xt, yt = data
    m = GradientBoostingModel(NUMERIC, CATEGORICAL, max_iter=50).fit(X, y)
    table = awkward(Xt)
    whole = m.pipeline_.predict_proba(table)[:, list(m.pipeline_.classes_).index(1.0)]
    m._block_rows = 97  # 800 rows: 9 blocks, the last one short
    assert np.array_equal(churn_probability(m, table), whole)


def test_gbm_scores_through_binned_trees_exactly(data):
    """Scoring reads each tree through the model's bins (one byte per value): the probabilities must be exactly the
    plain ones, including for values lying exactly on split thresholds, far outside the training range or missing."""
    from retention_core.models.sklearn_models import binned_proba

    X, y, Xt, yt = data
    m = GradientBoostingModel(NUMERIC, CATEGORICAL, max_iter=80).fit(X, y)
    est, pre = m.pipeline_.named_steps["model"], m.pipeline_[:-1]
    Z = pre.transform(awkward(Xt))
    rng = np.random.default_rng(0)
    edges = est._bin_mapper.bin_thresholds_
    for j, thresholds in enumerate(edges):  # a quarter of the rows sit exactly on a bin edge of each feature
        if len(thresholds):
            rows = rng.random(len(Z)) < 0.25
            Z[rows, j] = rng.choice(thresholds, rows.sum())
    Z[:30, 0], Z[30:60, 1], Z[60:90, 2] = 1e12, -1e12, np.nan
    fast = binned_proba(est, Z)
    assert fast is not None, "this scikit-learn should support the binned path"
    assert np.array_equal(fast, est.predict_proba(Z))
    assert np.array_equal(churn_probability(m, awkward(Xt)), est.predict_proba(pre.transform(awkward(Xt)))[:, 1])


def test_category_text_cleans_each_distinct_value_once():
    from retention_core.models.base import category_text

    s = pd.Series([" UK", "UK", None, "", 3.0, 2.5, "DE ", np.nan], dtype=object)
    assert list(category_text(s)) == ["UK", "UK", "(missing)", "(missing)", "3", "2.5", "DE", "(missing)"]
    cat = pd.Series(pd.Categorical(["a", None, " b"]))
    assert list(category_text(cat)) == ["a", "(missing)", "b"]


def test_random_forest_caps_rows_per_tree(data):
    X, y, Xt, yt = data  # 1,500 training rows
    capped = RandomForestModel(NUMERIC, CATEGORICAL, n_estimators=20, max_samples=0.5, max_tree_rows=400).fit(X, y)
    assert capped.pipeline_.named_steps["model"].max_samples == 400  # 750 rows by share, capped to 400
    loose = RandomForestModel(NUMERIC, CATEGORICAL, n_estimators=20, max_samples=0.5, max_tree_rows=1000).fit(X, y)
    assert loose.pipeline_.named_steps["model"].max_samples == 0.5  # the cap does not bind
    assert roc_auc_score(yt, churn_probability(capped, Xt)) > 0.7
    with pytest.raises(ConfigError, match="max_tree_rows"):
        RandomForestModel(NUMERIC, CATEGORICAL, max_tree_rows=0).fit(X, y)


def test_l1_logistic_drops_noise_features(data):
    X, y, _, _ = data
    rng = np.random.default_rng(5)
    noisy = X.assign(**{f"noise_{i}": rng.normal(size=len(X)) for i in range(10)})
    m = LogisticModel(penalty="l1", C=0.01).fit(noisy, y)
    coef = pd.Series(m.pipeline_.named_steps["model"].coef_.ravel(), index=m.feature_names_out_)
    assert (coef.filter(like="noise_") == 0).sum() >= 5
    assert coef.abs().idxmax() == "recency_days"


# ---------------------------------------------------------------------------------------------------------------------
# calibration
# ---------------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rare_churn():
    """About 15% churners: a class-balanced logistic regression overstates every probability."""
    X, y = make_users(2000, 2, base_rate=-2.5)
    Xt, yt = make_users(1500, 3, base_rate=-2.5)
    return X, y, Xt, yt


@pytest.mark.parametrize("method", ["isotonic", "sigmoid"])
@pytest.mark.parametrize("how", ["cv", "prefit"])
def test_calibration_improves_brier_on_miscalibrated_model(method, how, rare_churn):
    """Cross-validated (the product's CalibratedModel) and on validation rows around a fitted model (scikit-learn's
    own CalibratedClassifierCV over FrozenEstimator): both take the product's model as it is."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator

    X, y, Xt, yt = rare_churn
    assert 0.05 < y.mean() < 0.3
    base = LogisticModel(NUMERIC, CATEGORICAL, class_weight="balanced")
    p_base = churn_probability(clone(base).fit(X, y), Xt)
    if how == "cv":
        cal = CalibratedModel(base, method=method).fit(X, y)
        assert cal.calibration_source_ == "cv" and isinstance(cal.calibrated_, CalibratedClassifierCV)
        assert cal.base is base and not hasattr(base, "pipeline_")  # the given model is left untouched
        assert cal.feature_names_out_ == cal.base_.feature_names_out_
    else:
        cal = CalibratedClassifierCV(FrozenEstimator(clone(base).fit(X, y)), method=method).fit(Xt.iloc[:700],
                                                                                               yt[:700])
    proba = cal.predict_proba(Xt.iloc[700:])
    assert proba.shape == (800, 2) and np.allclose(proba.sum(axis=1), 1.0)
    p = churn_probability(cal, Xt.iloc[700:])
    assert ((p >= 0) & (p <= 1)).all()
    assert brier_score_loss(yt[700:], p) < brier_score_loss(yt[700:], p_base[700:]) - 0.01
    assert abs(p.mean() - yt[700:].mean()) < abs(p_base[700:].mean() - yt[700:].mean())


def test_calibration_holdout_for_other_models_uses_latest_snapshot(rare_churn):
    X, y, Xt, yt = rare_churn
    Xs = pd.concat([X, Xt.iloc[:500].assign(snapshot_date=pd.Timestamp("2024-02-01"))], ignore_index=True)
    ys = np.concatenate([y, yt[:500]])
    cal = CalibratedModel(RecencyRule(horizon_days=90), method="sigmoid").fit(Xs, ys)
    assert cal.calibration_source_ == "holdout" and cal.n_calibration_ == 500
    p = churn_probability(cal, Xt.iloc[500:])
    assert ((p >= 0) & (p <= 1)).all() and p.shape == (1000,)
    assert roc_auc_score(yt[500:], p) > 0.6
    # a single snapshot: a stratified 20%
    cal = CalibratedModel(RecencyRule(), method="isotonic").fit(X, y)
    assert cal.calibration_source_ == "holdout" and cal.n_calibration_ == 400


def test_calibration_errors(data):
    X, y, Xt, _ = data
    with pytest.raises(ConfigError, match="'beta'"):
        CalibratedModel(LogisticModel(), method="beta").fit(X, y)
    with pytest.raises(ModelError, match="not fitted"):
        CalibratedModel(LogisticModel()).predict_proba(Xt)
    one_churner = np.zeros(len(X))
    one_churner[0] = 1
    with pytest.raises(ModelError, match=r"too few churned or retained users \(1\)"):
        CalibratedModel(LogisticModel()).fit(X, one_churner)


def test_logistic_regression_clips_lifetime_totals_to_the_training_range():
    """A lifetime total far beyond anything seen in training (a later snapshot, a longer history) scores as the
    largest value seen, not as an extrapolation; every count is read on a log scale."""
    from retention_core.models.preprocessing import QuantileClip

    rng = np.random.default_rng(0)
    n = 2000
    orders = rng.poisson(5, n).astype(float)
    recency = rng.uniform(1, 300, n)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-(recency / 100 - np.log1p(orders))))).astype(float)
    X = pd.DataFrame({"orders_total": orders, "recency_days": recency})
    m = LogisticModel(["orders_total", "recency_days"], []).fit(X, y)
    clip = m.pipeline_.named_steps["preprocess"].named_transformers_["num"].named_steps["clip"]
    assert isinstance(clip, QuantileClip)
    top = X["orders_total"].quantile(0.995)
    far = pd.DataFrame({"orders_total": [top, 50 * top, np.nan], "recency_days": [50.0, 50.0, 50.0]})
    p = churn_probability(m, far)
    assert p[0] == pytest.approx(p[1])
    assert np.isfinite(p[2])
    unclipped = churn_probability(LogisticModel(["orders_total", "recency_days"], [], clip=False).fit(X, y), far)
    assert unclipped[1] < unclipped[0] - 0.01  # without the clip the linear score runs on past the data
    log = m.pipeline_.named_steps["preprocess"].named_transformers_["num"].named_steps["log"]
    assert log.log_columns_.all()  # recency is not very skewed, yet it is on a log scale too


def _saved_the_old_way(state: dict, cls=CalibratedModel) -> bytes:
    """A pickle of ``cls`` holding ``state`` as runs saved before the models were scikit-learn classifiers held it,
    the classes named by ``retention_core.models.sklearn_models`` as before the models package was split."""
    old = cls.__new__(cls)
    old.__dict__.update(state)
    text = pickle.dumps(old, protocol=0)  # protocol 0 names each class as "module\nname\n"
    where = b"retention_core.models.sklearn_models\n"
    for new in (b"retention_core.models.preprocessing\n", b"retention_core.models.calibration\n"):
        text = text.replace(new, where)
    return text.replace(where + b"SigmoidCalibrator\n", where + b"_Sigmoid\n")


@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
def test_calibrated_models_saved_before_scikit_learn_calibration_still_load(method, data):
    """A calibrated model saved by an earlier version (its own calibrator on the base model's probability, classes
    named by their paths before the models package was split) loads and scores as it did: the same base model and
    calibration map, now read through scikit-learn's calibrated classifier."""
    from sklearn.isotonic import IsotonicRegression

    from retention_core.models.calibration import SigmoidCalibrator

    X, y, Xt, _ = data
    base = LogisticModel(NUMERIC, CATEGORICAL).fit(X, y)
    base.__dict__.pop("classes_")  # the models had no classes_ then
    p_fit = base.pipeline_.predict_proba(X)[:, 1]
    calibrator = SigmoidCalibrator() if method == "sigmoid" else IsotonicRegression(y_min=0.0, y_max=1.0,
                                                                                 out_of_bounds="clip")
    calibrator.fit(p_fit, y)
    text = _saved_the_old_way({"base": LogisticModel(NUMERIC, CATEGORICAL), "method": method, "cv": 3,
                               "holdout": 0.2, "random_state": 0, "base_": base, "calibrator_": calibrator,
                               "calibration_source_": "cv", "n_calibration_": len(y)})
    assert b"retention_core.models.preprocessing" not in text
    assert (b"_Sigmoid" in text) == (method == "sigmoid")
    restored = pickle.loads(text)
    table = awkward(Xt)
    was = np.clip(calibrator.predict(base.pipeline_.predict_proba(table)[:, 1]), 0.0, 1.0)
    np.testing.assert_allclose(churn_probability(restored, table), was, rtol=1e-9, atol=1e-12)
    assert list(restored.classes_) == [0, 1] and list(restored.base_.classes_) == [0, 1]
    assert restored.predict_proba(table).shape == (len(table), 2)


def test_an_ensemble_saved_before_the_vote_was_scikit_learns_still_loads(data):
    from retention_core.models.ensemble import EnsembleModel

    X, y, Xt, _ = data
    members = {"logreg": LogisticModel(NUMERIC, CATEGORICAL).fit(X, y),
               "recency": RecencyRule(horizon_days=90).fit(X.assign(recency_days=X["recency_days"].abs()), y)}
    was = np.mean([churn_probability(m, Xt.assign(recency_days=Xt["recency_days"].abs())) for m in members.values()],
                  axis=0)
    for m in members.values():
        m.__dict__.pop("classes_")
    text = _saved_the_old_way({"numeric": NUMERIC, "categorical": CATEGORICAL, "horizon_days": 90,
                               "members": tuple(members), "members_": members, "errors_": {}}, EnsembleModel)
    restored = pickle.loads(text)
    assert set(restored.members_) == {"logreg", "recency"}
    np.testing.assert_allclose(churn_probability(restored, Xt.assign(recency_days=Xt["recency_days"].abs())), was)


def test_binned_scoring_uses_the_openmp_threads_asked_for(monkeypatch):
    from retention_core.models import sklearn_models

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert sklearn_models._openmp_threads() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "3,2")
    assert sklearn_models._openmp_threads() == 3
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert sklearn_models._openmp_threads() >= 1


def test_logistic_probability_of_a_row_does_not_depend_on_the_rows_beside_it(data):
    """A whole table, blocks of any size (Spark's partitions) and one row at a time (the service) get the same bits:
    each row's linear score is summed on its own row, not by a matrix product whose kernel changes with the rows."""
    X, y, Xt, yt = data
    m = LogisticModel(NUMERIC, CATEGORICAL).fit(X, y)
    table = awkward(Xt)
    whole = churn_probability(m, table)
    for n in (1, 7, 64, 301):
        parts = [churn_probability(m, table.iloc[s:s + n]) for s in range(0, len(table), n)]
        assert np.array_equal(np.concatenate(parts), whole), n
    np.testing.assert_allclose(whole, m.pipeline_.predict_proba(table)[:, 1], rtol=1e-12, atol=1e-15)
