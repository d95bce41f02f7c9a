"""Tests for explanations: SHAP per model family, readable units, plain-language reasons, sample and aggregates."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import special

from retention_core.errors import ModelError
from retention_core.explain import (
    Explainer,
    Reference,
    beeswarm_data,
    dependence,
    feature_label,
    global_importance,
    reason_texts,
    sample_for_explanation,
    segment_mean_abs_shap,
    top_reasons,
)
from retention_core.models import make_model, model_input
from retention_core.models.base import churn_probability, with_sequences

NUMERIC = ["recency_days", "tenure_days", "repeat_purchases", "orders_365d", "revenue_90d", "return_rate"]
CATEGORICAL = ["country"]
WEEKS, CHANNELS = 8, 4


def make_users(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Per-user features with a churn signal (recency, few orders, returns, one country) and weekly activity."""
    rng = np.random.default_rng(seed)
    recency = rng.exponential(50, n)
    tenure = recency + rng.exponential(200, n)
    repeat = rng.poisson(3, n).astype(float)
    orders = repeat + 1
    revenue = rng.lognormal(4, 1, n) * (rng.random(n) < 0.7)
    returns = np.clip(rng.beta(1, 12, n), 0, 1)
    country = rng.choice(["UK", "DE", "FR", "ES"], n, p=[0.4, 0.3, 0.2, 0.1]).astype(object)
    logit = (1.4 * (np.log1p(recency) - np.log1p(40)) - 0.3 * (orders - 4) + 6 * (returns - 0.08)
             + np.where(country == "ES", 1.0, 0.0))
    y = (rng.random(n) < special.expit(logit)).astype(float)
    revenue[rng.random(n) < 0.05] = np.nan
    X = pd.DataFrame({"user_id": [f"u{seed}_{i}" for i in range(n)], "recency_days": recency, "tenure_days": tenure,
                      "repeat_purchases": repeat, "orders_365d": orders, "revenue_90d": revenue,
                      "return_rate": returns, "country": pd.Series(country, dtype="str")})
    seq = rng.poisson(0.5, (n, WEEKS, CHANNELS)).astype(np.float32)
    seq[y == 1, -3:, 0] = 0
    seq[:, :, 1] = np.log1p(seq[:, :, 1] * 30)
    return X, y, seq


@pytest.fixture(scope="module")
def data():
    return make_users(400, 0)


_FITTED: dict[str, object] = {}


def fitted(key: str, data, **params):
    name = key + repr(sorted(params.items()))
    if name not in _FITTED:
        X, y, seq = data
        model = make_model(key, numeric=NUMERIC, categorical=CATEGORICAL, horizon_days=90, **params)
        _FITTED[name] = model.fit(model_input(key, X, seq), y)
    return _FITTED[name]


def explainer(key: str, data, **params) -> Explainer:
    X, y, seq = data
    model = fitted(key, data, **params)
    return Explainer(model, key, X, NUMERIC, CATEGORICAL, sequences_background=seq, reference_y=y,
                     background_size=30)


# --------------------------------------------------------------------------------------------------- additivity


@pytest.mark.parametrize("key, params, space", [
    ("gbm", {"max_iter": 40}, "log-odds"),
    ("random_forest", {"n_estimators": 30, "n_jobs": 1}, "probability"),
    ("logreg", {}, "log-odds"),
])
def test_additive_on_original_columns(data, key, params, space):
    X, y, seq = data
    ex = explainer(key, data, **params)
    rows = X.iloc[:60]
    sv = ex.shap_values(rows)
    assert ex.space == space
    assert list(sv.columns) == NUMERIC + CATEGORICAL  # encoded / one-hot / indicator columns summed back
    assert sv.index.equals(rows.index)
    out = ex.model_output(rows)
    np.testing.assert_allclose(sv.sum(axis=1).to_numpy() + ex.expected_value, out, atol=1e-6)
    # the probability points add up to the churn probability minus the average one
    pts = ex.effects_points(rows)
    p = churn_probability(fitted(key, data, **params), rows)
    p0 = special.expit(ex.expected_value) if space == "log-odds" else ex.expected_value
    np.testing.assert_allclose(pts.sum(axis=1).to_numpy(), 100 * (p - p0), atol=1e-6)


def test_one_hot_columns_summed_back(data):
    X, _, _ = data
    ex = explainer("logreg", data)
    enc = fitted("logreg", data).feature_names_out_
    assert any(n.startswith("country=") for n in enc) and "missingindicator_revenue_90d" in enc
    sv = ex.shap_values(X.iloc[:20])
    assert "country" in sv.columns and not any("=" in c or c.startswith("missingindicator_") for c in sv.columns)
    # the one-hot contributions of a user sum into "country": compare with coef * (x - background mean)
    est = fitted("logreg", data).pipeline_.named_steps["model"]
    pre = fitted("logreg", data).pipeline_.named_steps["preprocess"]
    M, B = pre.transform(X.iloc[:20]), pre.transform(X)
    cols = [j for j, n in enumerate(enc) if n.startswith("country=")]
    expected = ((M[:, cols] - B[:, cols].mean(axis=0)) * est.coef_.ravel()[cols]).sum(axis=1)
    np.testing.assert_allclose(sv["country"].to_numpy(), expected, atol=1e-8)


def test_calibrated_model_explains_its_base(data):
    X, y, _ = data
    model = make_model("gbm", numeric=NUMERIC, categorical=CATEGORICAL, calibrate="sigmoid", max_iter=30)
    model.fit(X, y)
    ex = Explainer(model, "gbm", X, NUMERIC, CATEGORICAL, reference_y=y)
    assert ex.calibrated and ex.explained_model is model.base_ and "underlying model" in ex.method_note
    rows = X.iloc[:30]
    sv = ex.shap_values(rows)
    np.testing.assert_allclose(sv.sum(axis=1) + ex.expected_value, ex.model_output(rows), atol=1e-6)
    pts = ex.effects_points(rows)
    p = churn_probability(model, rows)
    p0 = model.calibration_map(np.array([special.expit(ex.expected_value)]))[0]
    np.testing.assert_allclose(pts.sum(axis=1).to_numpy(), 100 * (p - p0), atol=1e-6)


def test_results_are_cached(data):
    X, _, _ = data
    ex = explainer("gbm", data, max_iter=40)
    a = ex.shap_values(X.iloc[:10])
    n = len(ex._cache)
    b = ex.shap_values(X.iloc[:10])
    assert len(ex._cache) == n
    pd.testing.assert_frame_equal(a, b)


# --------------------------------------------------------------------------------------------------- neural models


def test_sequence_model_attributions_grouped_into_readable_units(data):
    X, _, seq = data
    ex = explainer("gru", data, epochs=1, batch_size=64, units=8)
    rows, s = X.iloc[:8], seq[:8]
    sv = ex.shap_values(rows, sequences=s)
    expected_units = ["orders in the last 4 weeks", "orders 5-8 weeks ago", "spend in the last 4 weeks",
                      "spend 5-8 weeks ago", "browsing in the last 4 weeks", "browsing 5-8 weeks ago",
                      "returns in the last 4 weeks", "returns 5-8 weeks ago"]
    assert list(sv.columns) == expected_units + NUMERIC + CATEGORICAL
    assert ex.method == "gradient" and ex.space == "probability"
    p = churn_probability(fitted("gru", data, epochs=1, batch_size=64, units=8), with_sequences(rows, s))
    np.testing.assert_allclose(sv.sum(axis=1).to_numpy() + ex.expected_value, p, atol=1e-5)
    values = ex.unit_values(rows, s)
    np.testing.assert_allclose(values["orders in the last 4 weeks"], s[:, -4:, 0].sum(axis=1))
    with pytest.raises(ModelError, match="sequences"):
        ex.shap_values(rows)


def test_deep_gradient_and_permutation_values_agree(data):
    """Expected gradients (the default) and permutation SHAP rank the same features as important, and both add up."""
    from scipy import stats

    X, y, seq = data
    model = fitted("mlp", data, epochs=1, batch_size=64, hidden=(64,))
    rows = X.iloc[:60]
    p = churn_probability(model, rows)
    values = {}
    for method in ("gradient", "permutation"):
        ex = Explainer(model, "mlp", X, NUMERIC, CATEGORICAL, reference_y=y, background_size=30, deep_method=method)
        assert ex.method == method
        assert ("expected gradients" if method == "gradient" else "permutation SHAP") in ex.method_note
        values[method] = ex.shap_values(rows)
        np.testing.assert_allclose(values[method].sum(axis=1).to_numpy() + ex.expected_value, p, atol=1e-6)
    g, q = values["gradient"].abs().mean(), values["permutation"].abs().mean()
    assert stats.spearmanr(g, q).correlation > 0.8
    with pytest.raises(ModelError, match="deep_method"):
        Explainer(model, "mlp", X, NUMERIC, CATEGORICAL, deep_method="magic")


def test_mlp_units_are_original_columns(data):
    X, _, _ = data
    ex = explainer("mlp", data, epochs=1, batch_size=64, hidden=(64,))
    rows = X.iloc[:8]
    sv = ex.shap_values(rows)
    assert list(sv.columns) == NUMERIC + CATEGORICAL
    p = churn_probability(fitted("mlp", data, epochs=1, batch_size=64, hidden=(64,)), rows)
    np.testing.assert_allclose(sv.sum(axis=1).to_numpy() + ex.expected_value, p, atol=1e-5)


# --------------------------------------------------------------------------------------------------- baselines


def test_recency_rule_explained_exactly(data):
    X, _, _ = data
    ex = explainer("recency", data)
    rows = X.iloc[:15]
    sv = ex.shap_values(rows)
    assert list(sv.columns) == ["recency_days"] and ex.method == "exact"
    p = churn_probability(fitted("recency", data), rows)
    np.testing.assert_allclose(sv["recency_days"].to_numpy() + ex.expected_value, p, atol=1e-9)
    # one input: its SHAP value is the user's probability minus the background average
    bg = ex._X_bg
    np.testing.assert_allclose(ex.expected_value, churn_probability(fitted("recency", data), bg).mean(), atol=1e-9)


def test_bgnbd_explained_over_its_three_inputs(data):
    X, _, _ = data
    ex = explainer("bgnbd", data)
    rows = X.iloc[:15]
    sv = ex.shap_values(rows)
    assert list(sv.columns) == ["repeat_purchases", "recency_days", "tenure_days"]
    p = churn_probability(fitted("bgnbd", data), rows)
    np.testing.assert_allclose(sv.sum(axis=1).to_numpy() + ex.expected_value, p, atol=1e-8)


# --------------------------------------------------------------------------------------------------- reasons


def test_reason_text_for_a_long_silence():
    texts = reason_texts(pd.Series({"recency_days": 12.0}), {"recency_days": 94.2}, {"recency_days": 21.0})
    assert len(texts) == 1
    assert "94 days" in texts[0] and "21" in texts[0] and "+12 pts" in texts[0]
    assert texts[0].startswith("No purchase for 94 days (typical for retained users: 21)")


def test_reasons_list_only_risk_raising_features_largest_first():
    effects = pd.Series({"recency_days": 4.0, "orders_365d": 9.0, "return_rate": -6.0, "country": 2.5,
                         "revenue_90d": 0.0})
    values = {"recency_days": 60, "orders_365d": 1, "return_rate": 0.3, "country": "ES", "revenue_90d": 10}
    ref = Reference(medians={"recency_days": 20, "orders_365d": 6, "return_rate": 0.02},
                    category_rates={"country": {"ES": 0.6, "UK": 0.2}}, churn_rate=0.3)
    texts = reason_texts(effects, values, ref, categorical=["country"])
    assert texts == [
        "Only 1 order in the last 365 days (typical for retained users: 6) [+9 pts]",
        "No purchase for 60 days (typical for retained users: 20) [+4 pts]",
        "Country: ES (churns more than average) [+2.5 pts]",
    ]
    assert not any("Returned" in t for t in texts)
    assert reason_texts(effects, values, ref, n=1, categorical=["country"]) == texts[:1]


def test_known_and_generic_texts():
    ref = Reference(medians={"return_rate": 0.02, "MonthlyCharges": 64.4, "orders_trend_90d": 0.0})
    t = reason_texts(pd.Series({"return_rate": 3.0}), {"return_rate": 0.3}, ref)[0]
    assert t.startswith("Returned 30% of items (typical for retained users: 2%)")
    t = reason_texts(pd.Series({"orders_trend_90d": 3.0}), {"orders_trend_90d": -2.0}, ref)[0]
    assert t.startswith("Bought less in the last 90 days than the 90 before")
    t = reason_texts(pd.Series({"MonthlyCharges": 5.0}), {"MonthlyCharges": 95.3}, ref)[0]
    assert t.startswith("MonthlyCharges is 95.3 (typical for retained users: 64.4)")
    t = reason_texts(pd.Series({"Contract": 5.0}), {"Contract": "Month-to-month"}, ref, categorical=["Contract"])[0]
    assert t.startswith("Contract: Month-to-month")
    t = reason_texts(pd.Series({"gap_mean_days": 1.0}), {"gap_mean_days": np.nan}, ref)[0]
    assert "one purchase day" in t
    t = reason_texts(pd.Series({"orders in the last 4 weeks": 2.0}), {"orders in the last 4 weeks": 0.0},
                     Reference(medians={"orders in the last 4 weeks": 2.0}))[0]
    assert t.startswith("No orders in the last 4 weeks (typical for retained users: 2)")
    assert feature_label("recency_days") == "Days since last purchase"
    assert feature_label("orders_30d") == "Orders in the last 30 days"


def test_reference_medians_are_among_retained_users(data):
    X, y, _ = data
    ex = explainer("gbm", data, max_iter=40)
    assert ex.reference.label == "retained users"
    assert ex.reference.medians["recency_days"] == pytest.approx(float(np.median(X["recency_days"][y == 0])))
    assert ex.reference.category_rates["country"]["ES"] == pytest.approx(float(y[X["country"] == "ES"].mean()))


def test_top_reasons_from_an_explainer_n_lists_aligned_with_rows(data):
    X, _, _ = data
    ex = explainer("logreg", data)
    rows = X.iloc[:25]
    reasons = top_reasons(ex, rows, n=3)
    assert len(reasons) == 3 and all(len(r) == len(rows) for r in reasons)
    per_user = ex.reasons(rows, n=3)
    for i in range(len(rows)):
        assert [reasons[k][i] for k in range(3)] == (per_user[i] + ["", "", ""])[:3]
    assert all("_" not in t.split(" [")[0] for r in reasons for t in r if t)  # no raw feature names
    pts = ex.effects_points(rows)
    first = pts.idxmax(axis=1)
    for i in range(len(rows)):
        if pts.iloc[i].max() >= 0.05:
            assert reasons[0][i] != ""
        else:
            assert reasons[0][i] == ""
    assert first.notna().all()


class FakeRun:
    """What top_reasons reads from a saved run."""

    def __init__(self, model, key, validation: pd.DataFrame | None):
        self._model, self.best, self._val = model, key, validation
        self.info = {"numeric": NUMERIC, "categorical": CATEGORICAL, "best_model": key, "kind": "events"}
        self.threshold = 0.5

    def model(self, key=None):
        return self._model

    def validation(self):
        if self._val is None:
            raise FileNotFoundError("validation.parquet")
        return self._val


def test_top_reasons_from_a_run(data):
    X, y, _ = data
    model = fitted("gbm", data, max_iter=40)
    frame = X.iloc[:40].reset_index(drop=True)
    val = X.iloc[200:].assign(churned=y[200:])
    reasons = top_reasons(FakeRun(model, "gbm", val), frame, n=2)
    assert len(reasons) == 2 and all(len(r) == len(frame) for r in reasons)
    assert any("typical for retained users" in t for t in reasons[0])
    # validation rows without features: the scored users are the reference (low-risk users stand in)
    reasons = top_reasons(FakeRun(model, "gbm", X[["user_id"]].assign(churned=y)), frame, n=2)
    assert len(reasons[0]) == len(frame)
    assert not any("typical for retained users" in t for r in reasons for t in r)
    assert top_reasons(FakeRun(model, "gbm", None), frame.iloc[:0], n=2) == [[], []]


# --------------------------------------------------------------------------------------------------- sample, aggregates


def test_sample_is_stratified_and_bounded():
    rng = np.random.default_rng(3)
    X = pd.DataFrame({"a": rng.normal(size=5000)})
    y = (rng.random(5000) < 0.1).astype(float)
    s = sample_for_explanation(X, y, n=1000, seed=0)
    assert s.size == 1000 == len(s.X) and s.n_total == 5000
    assert abs(s.y.mean() - y.mean()) < 0.005
    assert np.all(np.diff(s.positions) > 0) and X.iloc[s.positions].index.equals(s.X.index)
    assert "1,000 of 5,000" in s.note
    small = sample_for_explanation(X.iloc[:50], y[:50], n=1000)
    assert small.size == 50 and "all 50" in small.note
    rare = np.zeros(5000)
    rare[:3] = 1
    assert sample_for_explanation(X, rare, n=100).y.sum() >= 1  # a rare label keeps at least one user
    assert sample_for_explanation(X, None, n=10, seed=1).size == 10
    with pytest.raises(ModelError):
        sample_for_explanation(X, y[:10], n=10)


def test_global_importance_beeswarm_dependence_segments(data):
    X, _, _ = data
    ex = explainer("gbm", data, max_iter=40)
    rows = X.iloc[:200]
    sv, vals = ex.shap_values(rows), ex.unit_values(rows)
    imp = global_importance(sv, vals)
    assert list(imp.columns) == ["feature", "label", "mean_abs_shap", "mean_shap", "direction"]
    assert imp["mean_abs_shap"].is_monotonic_decreasing and set(imp["feature"]) == set(sv.columns)
    assert imp.set_index("feature").loc["recency_days", "direction"] > 0.5  # longer silence, more risk
    assert np.isnan(imp.set_index("feature").loc["country", "direction"])
    bee = beeswarm_data(sv, vals, max_features=3)
    assert len(bee) == 3 * len(rows) and set(bee.columns) >= {"feature", "shap", "value"}
    assert bee["value"].dropna().between(0, 1).all()
    dep = dependence(sv, vals, "recency_days")
    assert list(dep.columns) == ["value", "shap"] and len(dep) == len(rows)
    assert dependence(sv, vals, "country", color="recency_days")["value"].iloc[0] in {"UK", "DE", "FR", "ES"}
    seg = segment_mean_abs_shap(sv, rows["country"])
    assert set(seg.means.index) == {"UK", "DE", "FR", "ES"}
    assert seg.population["country"] == pytest.approx(sv["country"].abs().mean())
    assert seg.means.loc["ES", "country"] == pytest.approx(sv.loc[rows["country"] == "ES", "country"].abs().mean())
    assert seg.users["ES"] == int((rows["country"] == "ES").sum())


def test_forest_values_in_parallel_chunks_match_one_pass(data):
    import shap

    from retention_core.explain.encoded import tree_values

    X, _, _ = data
    model = fitted("random_forest", data, n_estimators=30, n_jobs=1)
    est = model.pipeline_.named_steps["model"]
    M = model.pipeline_.named_steps["preprocess"].transform(pd.concat([X, X.iloc[:100]]))
    one = np.asarray(shap.TreeExplainer(est).shap_values(M, check_additivity=False))
    both = tree_values(shap.TreeExplainer(est), est, M, forest=True)
    np.testing.assert_allclose(both, one, atol=1e-10)


@pytest.mark.parametrize("key", ["logreg", "gbm", "random_forest"])
def test_the_method_line_is_in_the_analysts_words(data, key):
    """The Explain page's method line names no library class (LinearExplainer, TreeExplainer) and no log-odds: every
    effect on screen is in percentage points of churn probability."""
    ex = explainer(key, data)
    note = ex.method_note
    assert "Explainer" not in note and "log-odds" not in note and "encoded" not in note, note
    assert note.startswith("SHAP values") and note.endswith(".")


def test_model_labels_come_from_the_registry():
    from retention_core.models import model_label

    assert model_label("logreg") == "Logistic regression" and model_label("gbm") == "Gradient boosting"
    assert model_label("not-a-model") == "not-a-model"
