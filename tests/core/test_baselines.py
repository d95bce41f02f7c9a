"""Tests for the baseline churn models (recency rule, BG/NBD)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

from retention_core.errors import ConfigError, ModelError
from retention_core.models.base import churn_probability
from retention_core.models.baselines import (
    BGNBDModel,
    BGNBDParams,
    RecencyRule,
    loglik_terms,
    bgnbd_loglik,
    expected_purchases,
    fit_bgnbd,
    prob_alive,
    prob_no_purchase,
)

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
CDNOW_SUMMARY = DATA / "cdnow_customers_summary.csv"

# Fader, Hardie & Lee (2005), BG/NBD estimates on the CDNOW 1/10 sample, weeks.
PUBLISHED = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PUBLISHED_LOGLIK = -9582.4

PARAMS = BGNBDParams(r=0.243, alpha=4.414, a=0.793, b=2.426)


# ---------------------------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------------------------


def simulate_bgnbd(r, alpha, a, b, T, horizon, seed):
    """Simulate the BG/NBD process per customer: returns x, t_x (calibration over (0, T]) and the number of purchases
    in (T, T + horizon]. The first (trial) purchase is at time 0 and is not counted."""
    rng = np.random.default_rng(seed)
    T = np.asarray(T, dtype=float)
    n = T.size
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    now = np.zeros(n)
    x = np.zeros(n)
    t_x = np.zeros(n)
    future = np.zeros(n)
    active = np.ones(n, dtype=bool)
    end = T + horizon
    while active.any():
        idx = np.flatnonzero(active)
        new = now[idx] + rng.exponential(1.0 / lam[idx])
        over = new > end[idx]
        active[idx[over]] = False
        idx, new = idx[~over], new[~over]
        calib = new <= T[idx]
        x[idx[calib]] += 1
        t_x[idx[calib]] = new[calib]
        future[idx[~calib]] += 1
        now[idx] = new
        died = rng.random(idx.size) < p[idx]
        active[idx[died]] = False
    return x, t_x, future


def day_table(n=400, seed=0):
    """A small per-user feature table in days, consistent with the product's definitions."""
    rng = np.random.default_rng(seed)
    T_w = rng.integers(4, 60, n).astype(float)
    x, t_x, _ = simulate_bgnbd(0.5, 5.0, 0.8, 2.5, T_w, 0.0, seed)
    tenure = T_w * 7
    first_to_last = np.round(t_x * 7)
    return pd.DataFrame(
        {
            "recency_days": tenure - first_to_last,
            "tenure_days": tenure,
            "first_to_last_days": first_to_last,
            "repeat_purchases": x,
        },
        index=pd.Index([f"u{i}" for i in range(n)], name="user_id"),
    )


# ---------------------------------------------------------------------------------------------------------------------
# BG/NBD fitter
# ---------------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cdnow():
    if not CDNOW_SUMMARY.exists():
        pytest.skip(f"real data not available: {CDNOW_SUMMARY.name} not found in ../shared/data next to the repo")
    return pd.read_csv(CDNOW_SUMMARY)


def test_cdnow_reproduces_published_estimates(cdnow):
    params = fit_bgnbd(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    for name, value in PUBLISHED.items():
        got = getattr(params, name)
        assert got == pytest.approx(value, rel=0.01), f"{name}: got {got}, published {value}"
    assert params.loglik == pytest.approx(PUBLISHED_LOGLIK, abs=0.1)
    assert params.converged
    assert params.n == len(cdnow)
    # the per-row likelihood function agrees with the fitter's total
    assert bgnbd_loglik(params, cdnow["frequency"], cdnow["recency"], cdnow["T"]).sum() == pytest.approx(params.loglik)


def test_cdnow_weights_equal_duplicated_rows(cdnow):
    base = fit_bgnbd(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    weighted = fit_bgnbd(cdnow["frequency"], cdnow["recency"], cdnow["T"], weights=np.full(len(cdnow), 2.0))
    doubled = pd.concat([cdnow, cdnow])
    dup = fit_bgnbd(doubled["frequency"], doubled["recency"], doubled["T"])
    for fit in (weighted, dup):
        for name in ("r", "alpha", "a", "b"):
            assert getattr(fit, name) == pytest.approx(getattr(base, name), rel=1e-4)
        assert fit.loglik == pytest.approx(2 * base.loglik, rel=1e-8)


def test_cdnow_penalizer_shrinks(cdnow):
    base = fit_bgnbd(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    pen = fit_bgnbd(cdnow["frequency"], cdnow["recency"], cdnow["T"], penalizer=0.01)
    assert pen.loglik < base.loglik
    assert pen.alpha < base.alpha


def test_gradient_matches_finite_differences():
    rng = np.random.default_rng(3)
    T = rng.uniform(5, 60, 300)
    x, t_x, _ = simulate_bgnbd(0.6, 4.0, 0.9, 2.0, T, 0.0, seed=3)

    def f(logp):
        return -loglik_terms(logp, x, t_x, T, grad=False)[0].sum()

    def g(logp):
        return -loglik_terms(logp, x, t_x, T, grad=True)[1].sum(axis=1)

    for point in (np.log([0.3, 4.0, 0.7, 2.0]), np.log([2.0, 0.5, 3.0, 0.4])):
        err = optimize.check_grad(f, g, point)
        assert err < 1e-4 * max(1.0, np.linalg.norm(g(point)))


def test_recovers_known_parameters_from_simulation():
    true = {"r": 0.5, "alpha": 6.0, "a": 0.8, "b": 2.5}
    rng = np.random.default_rng(11)
    T = rng.integers(26, 79, 8000).astype(float)
    x, t_x, _ = simulate_bgnbd(*true.values(), T, 0.0, seed=12)
    params = fit_bgnbd(x, t_x, T)
    assert params.converged
    assert params.r == pytest.approx(true["r"], rel=0.15)
    assert params.alpha == pytest.approx(true["alpha"], rel=0.2)
    assert params.a == pytest.approx(true["a"], rel=0.35)
    assert params.b == pytest.approx(true["b"], rel=0.35)


def test_fit_survives_many_zeros_and_huge_T():
    rng = np.random.default_rng(5)
    n = 3000
    x = np.where(rng.random(n) < 0.9, 0, rng.integers(1, 40, n)).astype(float)
    T = rng.uniform(0, 5000, n)
    T[:50] = 0.0
    t_x = np.where(x > 0, T * rng.random(n), 0.0)
    params = fit_bgnbd(x, t_x, T)
    assert all(np.isfinite([params.r, params.alpha, params.a, params.b, params.loglik]))


@pytest.mark.parametrize(
    "x, t_x, T, fragment",
    [
        ([1, 2], [5.0, 12.0], [10.0, 10.0], "exceeds T"),
        ([1, -1], [5.0, 1.0], [10.0, 10.0], "negative"),
        ([1, 2], [-1.0, 1.0], [10.0, 10.0], "negative"),
        ([1, 2], [1.0, np.nan], [10.0, 10.0], "missing or infinite"),
        ([1, 2], [1.0, 2.0], [10.0, np.inf], "missing or infinite"),
        ([1.5, 2], [1.0, 2.0], [10.0, 10.0], "whole numbers"),
        ([1, 2, 3], [1.0, 2.0], [10.0, 10.0], "incompatible lengths"),
    ],
)
def test_bad_input_raises_model_error(x, t_x, T, fragment):
    with pytest.raises(ModelError, match=fragment):
        fit_bgnbd(x, t_x, T)
    with pytest.raises(ModelError, match=fragment):
        prob_alive(PARAMS, x, t_x, T)


def test_fit_refuses_data_without_repeat_purchases():
    with pytest.raises(ModelError, match="repeat purchase"):
        fit_bgnbd(np.zeros(20), np.zeros(20), np.arange(20.0))
    with pytest.raises(ModelError, match="at least 5"):
        fit_bgnbd([1, 2], [1.0, 2.0], [3.0, 3.0])
    with pytest.raises(ModelError, match="weights"):
        fit_bgnbd([1, 2, 0, 0, 1], [1, 2, 0, 0, 1], [3] * 5, weights=[1, 1, -1, 1, 1])
    with pytest.raises(ConfigError, match="penalizer"):
        fit_bgnbd([1, 2, 0, 0, 1], [1, 2, 0, 0, 1], [3] * 5, penalizer=-1)


# ---------------------------------------------------------------------------------------------------------------------
# BG/NBD individual-level quantities
# ---------------------------------------------------------------------------------------------------------------------


def test_prob_alive_properties():
    T = np.linspace(1, 200, 50)
    for x in (0, 1, 5, 30):
        t_x = 0.0 if x == 0 else 0.9
        p = prob_alive(PARAMS, x, t_x, T)
        assert np.all((p >= 0) & (p <= 1))
        if x == 0:
            assert np.all(p == 1.0)
        else:
            assert np.all(np.diff(p) < 0), "P(alive) must fall as time since the last purchase grows"
    # a customer who bought recently is more likely alive than one with the same x who stopped long ago
    assert prob_alive(PARAMS, 3, 38, 39) > prob_alive(PARAMS, 3, 5, 39)


def test_prob_no_purchase_properties():
    t = np.linspace(0, 300, 61)
    for x, t_x, T in ((0, 0.0, 10.0), (0, 0.0, 70.0), (2, 30.43, 38.86), (20, 38.0, 39.0), (5, 1.0, 500.0)):
        p = prob_no_purchase(PARAMS, t, x, t_x, T)
        assert np.all((p >= 0) & (p <= 1))
        assert p[0] == pytest.approx(1.0)
        assert np.all(np.diff(p) <= 1e-15), "the no-purchase probability cannot rise with the horizon"
        assert p[-1] < p[1] < p[0]
        # it is never below the probability of being dead already
        assert np.all(p >= 1 - prob_alive(PARAMS, x, t_x, T) - 1e-12)
    # one-time buyers: P(alive) = 1 for all, but churn probability still differs and grows with T
    p_one = prob_no_purchase(PARAMS, 13.0, 0, 0.0, np.array([1.0, 10.0, 50.0]))
    assert np.all(np.diff(p_one) > 0)


def test_expected_purchases_published_example():
    # lifetimes' documented example on the CDNOW fit: x=2, t_x=30.43, T=38.86, next 39 weeks -> about 1.226
    got = expected_purchases(PARAMS, 39, 2, 30.43, 38.86)
    assert float(got) == pytest.approx(1.226, abs=0.01)
    assert float(expected_purchases(PARAMS, 0, 2, 30.43, 38.86)) == 0.0


def test_expected_purchases_and_no_purchase_match_monte_carlo():
    r, alpha, a, b = 2.0, 10.0, 1.5, 4.0
    params = BGNBDParams(r, alpha, a, b)
    rng = np.random.default_rng(21)
    T = rng.integers(20, 60, 100_000).astype(float)
    horizon = 26.0
    x, t_x, future = simulate_bgnbd(r, alpha, a, b, T, horizon, seed=22)
    # population level (tower property): mean conditional expectation = mean realised count
    expected = expected_purchases(params, horizon, x, t_x, T)
    assert expected.mean() == pytest.approx(future.mean(), rel=0.03)
    no_purchase = prob_no_purchase(params, horizon, x, t_x, T)
    assert no_purchase.mean() == pytest.approx((future == 0).mean(), abs=0.01)
    # the same holds within any group defined by the observed history, e.g. by frequency
    one_time = x == 0
    assert no_purchase[one_time].mean() == pytest.approx((future[one_time] == 0).mean(), abs=0.02)
    for k in (0, 1, 3, 6):
        grp = x == k
        assert expected[grp].mean() == pytest.approx(future[grp].mean(), rel=0.08)


def test_expected_purchases_stable_for_large_frequency_and_a_near_one():
    huge = expected_purchases(BGNBDParams(0.77, 9.6, 0.0048, 0.62), 12.9, 300, 100.0, 101.0)
    assert np.isfinite(huge) and huge > 0
    near = expected_purchases(BGNBDParams(0.5, 5.0, 1.0, 2.0), 10.0, 3, 8.0, 10.0)
    ref = expected_purchases(BGNBDParams(0.5, 5.0, 1.001, 2.0), 10.0, 3, 8.0, 10.0)
    assert float(near) == pytest.approx(float(ref), rel=1e-2)


# ---------------------------------------------------------------------------------------------------------------------
# product models on the day-based feature table
# ---------------------------------------------------------------------------------------------------------------------


def test_bgnbd_model_on_day_table():
    X = day_table()
    model = BGNBDModel(horizon_days=90)
    assert model.fit(X, y=np.zeros(len(X)), progress=None) is model
    assert model.get_params() == {"horizon_days": 90, "penalizer": 0.0, "score": "no_purchase"}
    both = model.predict_proba(X.assign(extra="ignored"))
    assert both.shape == (len(X), 2) and np.allclose(both.sum(axis=1), 1.0) and list(model.classes_) == [0, 1]
    proba = churn_probability(model, X)
    assert np.array_equal(proba, both[:, 1])
    assert np.all((proba >= 0) & (proba <= 1))
    x, t_x, T = (X["repeat_purchases"].to_numpy(float), X["first_to_last_days"].to_numpy(float) / 7,
                 X["tenure_days"].to_numpy(float) / 7)
    np.testing.assert_allclose(prob_no_purchase(model.params_, 90 / 7, x, t_x, T), proba)
    one_time = x == 0
    assert np.all(prob_alive(model.params_, x, t_x, T)[one_time] == 1.0)  # the published model's known caveat
    assert np.unique(proba[one_time]).size > 1  # yet the no-purchase probability still separates them
    # same answer when first_to_last_days must be derived from recency_days
    np.testing.assert_allclose(churn_probability(model, X.drop(columns="first_to_last_days")), proba)
    # score="not_alive" returns 1 - P(alive)
    alt = churn_probability(BGNBDModel(score="not_alive").fit(X), X)
    np.testing.assert_allclose(alt, 1 - prob_alive(model.params_, x, t_x, T))


def test_bgnbd_model_errors():
    X = day_table(100)
    with pytest.raises(ModelError, match="'repeat_purchases'"):
        BGNBDModel().fit(X.drop(columns="repeat_purchases"))
    with pytest.raises(ModelError, match="'tenure_days'"):
        BGNBDModel().fit(X.drop(columns=["tenure_days"]))
    with pytest.raises(ModelError, match="not fitted"):
        BGNBDModel().predict_proba(X)
    with pytest.raises(ConfigError, match="score"):
        BGNBDModel(score="alive").fit(X)
    with pytest.raises(ConfigError, match="horizon_days"):
        BGNBDModel(horizon_days=0).fit(X)
    bad = X.copy()
    bad.iloc[0, bad.columns.get_loc("tenure_days")] = np.nan
    with pytest.raises(ModelError, match="'tenure_days'.*missing"):
        BGNBDModel().fit(bad)
    bad = X.copy()
    bad.loc[bad["repeat_purchases"] > 0, "first_to_last_days"] += 10_000
    with pytest.raises(ModelError, match="exceeds T"):
        BGNBDModel().fit(bad)


def test_recency_rule_ranking_equals_recency_ranking():
    X = day_table(500, seed=4)
    rng = np.random.default_rng(4)
    y = (rng.random(len(X)) < 1 / (1 + np.exp(-(X["recency_days"] - 150) / 60))).astype(int)
    for model in (RecencyRule(horizon_days=90).fit(X, y), RecencyRule(horizon_days=90).fit(X)):
        assert model.predict_proba(X).shape == (len(X), 2)
        proba = churn_probability(model, X)
        assert np.all((proba >= 0) & (proba <= 1))
        np.testing.assert_array_equal(stats.rankdata(proba), stats.rankdata(X["recency_days"]))
    fitted = RecencyRule().fit(X, pd.Series(y, index=X.index))
    assert fitted.method_ == "logistic" and fitted.slope_ > 0
    # the fitted curve is calibrated in the mean (logistic regression with an intercept)
    assert churn_probability(fitted, X).mean() == pytest.approx(y.mean(), abs=0.01)
    # labels that run against recency cannot flip the ranking
    flipped = RecencyRule().fit(X, 1 - y)
    np.testing.assert_array_equal(stats.rankdata(churn_probability(flipped, X)), stats.rankdata(X["recency_days"]))


def test_recency_rule_fixed_curve_and_errors():
    X = pd.DataFrame({"recency_days": [0.0, 45.0, 90.0, 180.0, 720.0]})
    model = RecencyRule(horizon_days=90).fit(X)
    assert model.method_ == "fixed"
    proba = churn_probability(model, X)
    assert proba[2] == pytest.approx(0.5)
    assert np.all(np.diff(proba) > 0)
    assert RecencyRule().fit(X, np.ones(5)).method_ == "fixed"  # a single class: nothing to learn
    with pytest.raises(ModelError, match="'recency_days'"):
        RecencyRule().fit(pd.DataFrame({"tenure_days": [1.0]}))
    with pytest.raises(ModelError, match="labels"):
        RecencyRule().fit(X, np.ones(3))
    with pytest.raises(ModelError, match="negative"):
        model.predict_proba(pd.DataFrame({"recency_days": [-1.0]}))
    with pytest.raises(ModelError, match="not fitted"):
        RecencyRule().predict_proba(X)
