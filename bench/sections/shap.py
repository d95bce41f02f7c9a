"""Section 4: SHAP explanations per model family, against the shap library used directly (or the model's own
prediction where shap has no direct explainer)."""
from __future__ import annotations

import time

from bench.common import DEEP
from bench.data import fit_model, synthetic
from bench.measures import Job, Rows, info, only_results
from bench.registry import Plan, Section, step
from retention_core.models.base import with_sequences

NAME = "shap"


def _shap_setup(key: str, rows: int, users: int, epochs: int):
    X, y, seq, numeric, categorical = synthetic(rows, users)
    model, _ = fit_model(key, rows, epochs, X, y, seq, numeric, categorical)
    from retention_core.models import REGISTRY

    needs = REGISTRY[key].needs_sequences
    Xe = X.iloc[rows:rows + users].reset_index(drop=True)
    se = seq[rows:rows + users] if needs else None
    return model, X, y, seq, numeric, categorical, Xe, se, needs


@step("shap_product", NAME)
def shap_product(key: str, rows: int, users: int, epochs: int) -> dict:
    from retention_core.explain import make_explainer

    model, X, y, seq, numeric, categorical, Xe, se, needs = _shap_setup(key, rows, users, epochs)
    import shap  # noqa: F401  (the import is not explanation time)

    t = time.perf_counter()
    ex = make_explainer(model, key, X.iloc[:rows], numeric, categorical,
                        sequences_background=seq[:rows] if needs else None, reference_y=y[:rows])
    ex.shap_values(Xe, se)
    s = time.perf_counter() - t
    return {"measures": {"shap": s, "per_1000": s * 1000 / users},
            "info": {"users": users, "method": ex.method, "background": ex.background_size, "units": len(ex.units)}}


def _shap_direct(key: str, pipe, X, rows: int, Xe) -> float:
    """The shap library on the fitted estimator and its encoded features, with the product's background size."""
    import numpy as np
    import shap

    from retention_core.explain import DEFAULT_BACKGROUND

    pre, est = pipe.named_steps["preprocess"], pipe.named_steps["model"]

    def dense(a):
        return np.asarray(a.toarray() if hasattr(a, "toarray") else a, dtype="float64")

    bg = dense(pre.transform(X.iloc[:rows].sample(DEFAULT_BACKGROUND, random_state=0)))
    t = time.perf_counter()
    Z = dense(pre.transform(Xe))
    if key == "logreg":
        shap.LinearExplainer(est, bg)(Z)
    else:
        shap.TreeExplainer(est, bg, feature_perturbation="interventional")(Z, check_additivity=False)
    return time.perf_counter() - t


def _shap_gradient(base, X, seq, rows: int, Xe, se, needs: bool) -> float:
    """shap's GradientExplainer on the Keras model, with the product's background size and samples per user."""
    import numpy as np
    import shap

    from retention_core.explain import DEEP_BACKGROUND, GRADIENT_SAMPLES

    pick = np.random.default_rng(0).choice(rows, DEEP_BACKGROUND, replace=False)
    bg = base.model_inputs(with_sequences(X.iloc[pick], seq[pick] if needs else None))
    t = time.perf_counter()
    ex = shap.GradientExplainer(base.model_, bg if needs else bg[0])
    inputs = base.model_inputs(with_sequences(Xe, se if needs else None))
    ex.shap_values(inputs if needs else inputs[0], nsamples=GRADIENT_SAMPLES)
    return time.perf_counter() - t


@step("shap_reference", NAME)
def shap_reference(key: str, rows: int, users: int, epochs: int) -> dict:
    """Tree and linear models: the shap library used directly on the fitted estimator and its encoded features,
    with the same background size as the product. Neural networks: shap's GradientExplainer on the Keras model with
    the product's background size and samples per user. Other models: the model's own prediction for the users."""
    model, X, y, seq, numeric, categorical, Xe, se, needs = _shap_setup(key, rows, users, epochs)
    base = model.base_ if hasattr(model, "base_") and hasattr(model, "calibrator_") else model
    pipe = getattr(base, "pipeline_", None)
    if pipe is not None and key in ("logreg", "random_forest", "gbm"):
        s, what = _shap_direct(key, pipe, X, rows, Xe), "shap library directly"
    elif key in DEEP and hasattr(base, "model_"):
        from retention_core.explain import DEEP_BACKGROUND, GRADIENT_SAMPLES

        s = _shap_gradient(base, X, seq, rows, Xe, se, needs)
        what = f"shap GradientExplainer directly ({DEEP_BACKGROUND} background users, {GRADIENT_SAMPLES} samples)"
    else:
        t = time.perf_counter()
        model.predict_proba(with_sequences(Xe, se if needs else None))
        s = time.perf_counter() - t
        what = "prediction only"
    return {"measures": {"shap": s, "per_1000": s * 1000 / users}, "info": {"users": users, "reference": what}}


def plan(cfg: dict, cache: str) -> Plan:
    out = Plan()
    for key in cfg["shap_models"]:
        users = cfg["shap_users_deep"] if key in DEEP else cfg["shap_users"]
        p = {"key": key, "rows": cfg["shap_train_rows"], "users": users, "epochs": 1}
        for v in ("product", "reference"):
            out.jobs.append(Job(NAME, f"shap/{key}/{v}", f"shap_{v}", p))
    return out


def report(t: Rows) -> None:
    for key in t.cfg["shap_models"]:
        p, r = t.job(f"shap/{key}/product"), t.job(f"shap/{key}/reference")
        if p is None:
            continue
        # runs of another method (merged from an earlier part, before a change of method) get their own row; the
        # reference is the latest one measured (an earlier part may have timed a plainer reference)
        if r is not None and r.results:
            latest = r.results[-1].get("info", {}).get("reference")
            r = only_results(r, lambda x: x.get("info", {}).get("reference") == latest)
        methods = list(dict.fromkeys(x.get("info", {}).get("method", "?") for x in p.results))
        for method in methods:
            pm = only_results(p, lambda x: x.get("info", {}).get("method", "?") == method)
            t.add(NAME, f"SHAP per 1,000 users: {key} ({method})",
                  f"{info(pm, 'users', 0):,} users explained", pm, "per_1000", r, "per_1000",
                  info(r, "reference", "?") + (" (same background)" if info(r, "reference") == "shap library directly"
                                               else ""),
                  f"background {info(pm, 'background', '?')}, {info(pm, 'units', '?')} readable features")


SECTION = Section(NAME, "4. SHAP explanations", plan, report)
