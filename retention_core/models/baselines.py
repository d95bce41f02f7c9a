"""Baseline churn models: a recency rule and the BG/NBD model.

Both are scikit-learn classifiers following the product's model interface (:mod:`retention_core.models.base`)::

    model.fit(X, y=None, *, progress=None) -> model   # BG/NBD learns without labels
    model.predict_proba(X) -> np.ndarray              # shape (n, 2): retained, churned

``X`` is the per-user feature table; the columns used here are in days (floats):

* ``recency_days``: cutoff minus last purchase;
* ``tenure_days``: cutoff minus first purchase (the BG/NBD ``T``);
* ``first_to_last_days``: last purchase minus first purchase (the BG/NBD ``t_x``);
* ``repeat_purchases``: number of distinct purchase days minus one (the BG/NBD ``x``, "frequency").

Label polarity: ``churned = 1`` means no purchase in the horizon after the cutoff, and every score is a churn
probability.

The BG/NBD part is written from Fader, Hardie & Lee (2005), "Counting Your Customers the Easy Way: An Alternative to
the Pareto/NBD Model", Marketing Science 24(2), 275-284. Beware of the naming clash: in the BG/NBD functions below,
``recency`` / ``t_x`` is the *age at the last purchase* (time from first to last purchase), as in the paper and the
CDNOW summary file, not the product's ``recency_days`` (time since the last purchase) -- ``t_x = T - recency_days``.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd
from scipy import optimize, special

from retention_core.errors import ConfigError, ModelError

from .base import Progress, check_frame
from .estimator import ChurnClassifier

__all__ = [
    "BGNBDParams",
    "BGNBDModel",
    "RecencyRule",
    "bgnbd_loglik",
    "expected_purchases",
    "fit_bgnbd",
    "prob_alive",
    "prob_no_purchase",
]

DAYS_PER_WEEK = 7.0

# Bounds on the log parameters during fitting: about 3e-7 .. 3.3e6 (time unit weeks or days both fit inside).
_LOG_BOUND = 15.0


# --------------------------------------------------------------------------------------------------------------------
# column checks shared by both models
# --------------------------------------------------------------------------------------------------------------------


def _require_columns(X: Any, needed: list[str], model: str) -> None:
    check_frame(X, model)
    missing = [c for c in needed if c not in X.columns]
    if missing:
        raise ModelError(
            f"{model} needs the column(s) {', '.join(repr(c) for c in missing)} in the feature table, which has "
            f"{', '.join(repr(str(c)) for c in list(X.columns)[:20])}{' ...' if X.shape[1] > 20 else ''}."
        )


def _numeric_column(X: pd.DataFrame, col: str, model: str) -> np.ndarray:
    try:
        values = pd.to_numeric(X[col], errors="raise").to_numpy(dtype=float, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{model}: column {col!r} must be numeric (days); {exc}") from None
    bad = ~np.isfinite(values)
    if bad.any():
        raise ModelError(
            f"{model}: column {col!r} has {int(bad.sum())} missing or infinite value(s) (first at row "
            f"{X.index[int(np.argmax(bad))]!r}); fill or drop those users first."
        )
    neg = values < 0
    if neg.any():
        raise ModelError(
            f"{model}: column {col!r} has {int(neg.sum())} negative value(s) (smallest {values.min():g}); "
            "durations in days cannot be negative."
        )
    return values


# --------------------------------------------------------------------------------------------------------------------
# Recency rule
# --------------------------------------------------------------------------------------------------------------------


class RecencyRule(ChurnClassifier):
    """Churn probability as a rising logistic curve of ``log1p(recency_days)``.

    With labels, ``fit`` estimates the intercept and slope of a one-feature logistic regression on
    ``z = log1p(recency_days)`` (tiny ridge penalty; the slope is kept strictly positive, so the score always ranks
    users exactly as recency does). Without labels (or with a single class), it uses a fixed curve centred at the
    horizon: ``p = expit(3 * (log1p(recency) - log1p(horizon_days)))``, i.e. 0.5 for a user last seen one horizon ago.

    Learned state: ``intercept_``, ``slope_``, ``method_`` ("logistic" or "fixed"), ``n_train_``.
    """

    FIXED_SLOPE = 3.0
    MIN_SLOPE = 1e-3
    _COLUMNS = ["recency_days"]

    def __init__(self, horizon_days: float = 90):
        self.horizon_days = horizon_days

    def _z(self, X: pd.DataFrame) -> np.ndarray:
        _require_columns(X, self._COLUMNS, "RecencyRule")
        return np.log1p(_numeric_column(X, "recency_days", "RecencyRule"))

    def fit(self, X: pd.DataFrame, y: np.ndarray | pd.Series | None = None, *,
            progress: Progress | None = None) -> "RecencyRule":
        horizon = _check_horizon(self.horizon_days, "RecencyRule")
        z = self._z(X)
        self.n_train_ = int(z.size)
        fixed_slope = self.FIXED_SLOPE
        fixed_intercept = -fixed_slope * math.log1p(horizon)
        self.method_ = "fixed"
        self.slope_, self.intercept_ = fixed_slope, fixed_intercept
        self._fitted_classes()
        if y is None:
            return self
        yv = _labels(y, z.size, "RecencyRule")
        if yv.min() == yv.max():
            return self  # a single class: nothing to learn a slope from

        zc = z.mean()
        zs = z.std() or 1.0
        u = (z - zc) / zs  # standardised feature for a well-conditioned fit
        ridge = 1e-6

        def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
            b0, b1 = theta
            eta = b0 + b1 * u
            # negative mean log-likelihood of a Bernoulli with logit eta
            nll = np.mean(np.logaddexp(0.0, eta) - yv * eta) + ridge * b1 * b1
            resid = special.expit(eta) - yv
            grad = np.array([resid.mean(), (resid * u).mean() + 2 * ridge * b1])
            return float(nll), grad

        base = float(np.clip(yv.mean(), 1e-6, 1 - 1e-6))
        res = optimize.minimize(
            objective,
            x0=np.array([math.log(base / (1 - base)), 1.0]),
            jac=True,
            method="L-BFGS-B",
            bounds=[(-50.0, 50.0), (self.MIN_SLOPE * zs, 50.0)],
        )
        if not np.all(np.isfinite(res.x)):
            return self
        b0, b1 = (float(v) for v in res.x)
        self.slope_ = b1 / zs
        self.intercept_ = b0 - b1 * zc / zs
        self.method_ = "logistic"
        return self

    def _churn(self, X: pd.DataFrame) -> np.ndarray:
        if not hasattr(self, "slope_"):
            raise ModelError("RecencyRule is not fitted yet: call fit(X, y) first.")
        z = self._z(X)
        return special.expit(self.intercept_ + self.slope_ * z)


def _check_horizon(horizon_days: Any, model: str) -> float:
    try:
        horizon = float(horizon_days)
    except (TypeError, ValueError):
        raise ConfigError(f"{model}: horizon_days must be a positive number of days, got {horizon_days!r}.") from None
    if not (math.isfinite(horizon) and horizon > 0):
        raise ConfigError(f"{model}: horizon_days must be a positive number of days, got {horizon_days!r}.")
    return horizon


def _labels(y: Any, n: int, model: str) -> np.ndarray:
    yv = np.asarray(y, dtype=float).ravel()
    if yv.size != n:
        raise ModelError(f"{model}: {yv.size} labels for {n} users; they must match row for row.")
    if not np.all(np.isin(yv, (0.0, 1.0))):
        raise ModelError(f"{model}: labels must be 0/1 (churned = 1), found other values.")
    return yv


# --------------------------------------------------------------------------------------------------------------------
# BG/NBD: parameters, likelihood, fitting
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BGNBDParams:
    """Fitted BG/NBD parameters (time unit of the data they were fitted on, weeks in the product).

    ``r, alpha``: gamma heterogeneity of the purchase rate; ``a, b``: beta heterogeneity of the dropout probability;
    ``loglik``: total (weighted) log-likelihood at the estimate, without the penalty; ``converged``: the optimiser's
    verdict; ``n``: total weight (number of customers) fitted on.
    """

    r: float
    alpha: float
    a: float
    b: float
    loglik: float = float("nan")
    converged: bool = True
    n: float = float("nan")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _as_float_array(values: Any, name: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise ModelError(f"BG/NBD: {name} must be numeric.") from None
    return arr


def _validate_xtT(x: Any, t_x: Any, T: Any, *, what: str = "BG/NBD") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check (frequency, recency=t_x, T); returns float arrays broadcast to one shape (t_x clipped to T on ties)."""
    x = _as_float_array(x, "frequency")
    t_x = _as_float_array(t_x, "recency")
    T = _as_float_array(T, "T")
    try:
        x, t_x, T = np.broadcast_arrays(x, t_x, T)
    except ValueError:
        raise ModelError(
            f"{what}: frequency, recency and T have incompatible lengths {x.shape}, {t_x.shape}, {T.shape}."
        ) from None
    for name, arr in (("frequency", x), ("recency (age at last purchase)", t_x), ("T (age at cutoff)", T)):
        bad = ~np.isfinite(arr)
        if bad.any():
            raise ModelError(f"{what}: {name} has {int(bad.sum())} missing or infinite value(s).")
        neg = arr < 0
        if neg.any():
            raise ModelError(f"{what}: {name} has {int(neg.sum())} negative value(s) (smallest {arr.min():g}).")
    if np.any(np.abs(x - np.round(x)) > 1e-9):
        raise ModelError(f"{what}: frequency (number of repeat purchases) must be whole numbers.")
    tol = 1e-9 * np.maximum(1.0, T)
    over = t_x > T + tol
    if over.any():
        i = int(np.argmax(over.ravel()))
        raise ModelError(
            f"{what}: recency (age at last purchase) exceeds T (age at cutoff) for {int(over.sum())} customer(s), e.g. "
            f"recency={t_x.ravel()[i]:g} > T={T.ravel()[i]:g}; the last purchase cannot be after the cutoff."
        )
    # with x = 0 the likelihood and every prediction ignore t_x, so a same-day gap (hours) is harmless there
    return np.round(x), np.minimum(t_x, T), T


def loglik_terms(
    logp: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, grad: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-row log-likelihood (and its gradient w.r.t. the log parameters, shape (4, n))."""
    r, alpha, a, b = np.exp(logp)
    pos = x > 0
    xs = np.where(pos, x, 1.0)  # safe value for the x > 0 term
    log_a_T = np.log(alpha + T)
    log_a_tx = np.log(alpha + t_x)
    beta_ab = special.betaln(a, b)
    A1 = special.gammaln(r + x) - special.gammaln(r) + r * math.log(alpha)
    A2 = special.betaln(a, b + x) - beta_ab - (r + x) * log_a_T
    A3 = np.where(pos, special.betaln(a + 1.0, b + xs - 1.0) - beta_ab - (r + x) * log_a_tx, -np.inf)
    lse = np.logaddexp(A2, A3)
    ll = A1 + lse
    if not grad:
        return ll, None
    w2 = np.exp(A2 - lse)
    w3 = np.exp(A3 - lse)  # 0 where x == 0
    dg = special.digamma
    d_ab = dg(a + b)
    d_abx = dg(a + b + x)
    # d/d theta of each term
    dr = dg(r + x) - dg(r) + math.log(alpha) - w2 * log_a_T - w3 * log_a_tx
    dalpha = r / alpha - w2 * (r + x) / (alpha + T) - w3 * (r + x) / (alpha + t_x)
    dA2_da = d_ab - d_abx
    dA2_db = dg(b + x) - d_abx - dg(b) + d_ab
    dA3_da = dg(a + 1.0) - d_abx - dg(a) + d_ab
    dA3_db = np.where(pos, dg(b + xs - 1.0), 0.0) - d_abx - dg(b) + d_ab
    da = w2 * dA2_da + w3 * dA3_da
    db = w2 * dA2_db + w3 * dA3_db
    # chain rule to log parameters
    g = np.vstack([r * dr, alpha * dalpha, a * da, b * db])
    return ll, g


def bgnbd_loglik(params: BGNBDParams, frequency: Any, recency: Any, T: Any) -> np.ndarray:
    """Per-customer BG/NBD log-likelihood (eq. 6 of the paper, on the log scale)."""
    x, t_x, T = _validate_xtT(frequency, recency, T)
    logp = np.log([params.r, params.alpha, params.a, params.b])
    ll, _ = loglik_terms(logp, x.ravel(), t_x.ravel(), T.ravel(), grad=False)
    return ll.reshape(x.shape)


def _compress(x: np.ndarray, t_x: np.ndarray, T: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, ...]:
    """Merge identical (x, t_x, T) rows, summing their weights."""
    rows = np.column_stack([x, t_x, T])
    uniq, inverse = np.unique(rows, axis=0, return_inverse=True)
    counts = np.bincount(inverse.ravel(), weights=w, minlength=uniq.shape[0])
    keep = counts > 0
    return uniq[keep, 0], uniq[keep, 1], uniq[keep, 2], counts[keep]


def fit_bgnbd(
    frequency: Any,
    recency: Any,
    T: Any,
    *,
    penalizer: float = 0.0,
    weights: Any = None,
) -> BGNBDParams:
    """Maximum-likelihood BG/NBD fit.

    ``frequency`` = number of repeat purchases x, ``recency`` = age at the last purchase t_x (0 when x = 0), ``T`` =
    age at the cutoff, all in one time unit (weeks in the product and in the paper). ``weights`` are optional
    non-negative row weights (e.g. counts of identical rows); identical rows are merged anyway, so large tables fit
    fast. ``penalizer`` adds ``penalizer * (r^2 + alpha^2 + a^2 + b^2)`` to the mean negative log-likelihood (the
    ``lifetimes`` convention); 0 gives the plain MLE.

    The optimiser works on the log parameters (L-BFGS-B, analytic gradient, bounds so that every parameter stays in
    about [3e-7, 3e6]) from several starting points, with a Nelder-Mead fallback. The returned ``loglik`` is the total
    weighted log-likelihood without the penalty.
    """
    x, t_x, T = _validate_xtT(frequency, recency, T)
    x, t_x, T = x.ravel(), t_x.ravel(), T.ravel()
    w = _fit_weights(weights, x)
    pen = _fit_penalizer(penalizer)
    total = float(w.sum())
    _check_fittable(x, T, w, total)

    x, t_x, T, w = _compress(x, t_x, T, w)
    wn = w / total
    objective = _fit_objective(x, t_x, T, wn, pen)
    best = _minimise(objective, _starting_points(x, T, wn))

    logp = np.asarray(best.x, dtype=float)
    ll, _ = loglik_terms(logp, x, t_x, T, grad=False)
    r, alpha, a, b = (float(v) for v in np.exp(logp))
    at_bound = bool(np.any(np.abs(logp) >= _LOG_BOUND - 1e-6))
    return BGNBDParams(
        r=r,
        alpha=alpha,
        a=a,
        b=b,
        loglik=float(np.dot(w, ll)),
        converged=bool(best.success) and not at_bound,
        n=total,
    )


def _fit_weights(weights: Any, x: np.ndarray) -> np.ndarray:
    """Row weights: ones when none are given, else checked (one per row, finite, non-negative)."""
    if weights is None:
        return np.ones_like(x)
    w = _as_float_array(weights, "weights").ravel()
    if w.shape != x.shape:
        raise ModelError(f"BG/NBD: {w.size} weights for {x.size} customers; they must match row for row.")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ModelError("BG/NBD: weights must be finite and non-negative.")
    return w


def _fit_penalizer(penalizer: Any) -> float:
    try:
        pen = float(penalizer)
    except (TypeError, ValueError):
        raise ConfigError(f"BG/NBD: penalizer must be a non-negative number, got {penalizer!r}.") from None
    if not (math.isfinite(pen) and pen >= 0):
        raise ConfigError(f"BG/NBD: penalizer must be a non-negative number, got {penalizer!r}.")
    return pen


def _check_fittable(x: np.ndarray, T: np.ndarray, w: np.ndarray, total: float) -> None:
    """ModelError when the data cannot identify the four parameters (too few customers, no repeat purchase, T = 0)."""
    if total < 5:
        raise ModelError(f"BG/NBD needs at least 5 customers to fit 4 parameters, got {total:g}.")
    if float(w[x > 0].sum()) == 0:
        raise ModelError(
            "BG/NBD cannot be fitted: no customer made a repeat purchase before the cutoff (every frequency is 0). "
            "Use a longer history or a later cutoff."
        )
    if float(T[w > 0].max()) <= 0:
        raise ModelError("BG/NBD cannot be fitted: every customer's T (age at cutoff) is 0.")


def _fit_objective(x: np.ndarray, t_x: np.ndarray, T: np.ndarray, wn: np.ndarray,
                   pen: float) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """Penalised mean negative log-likelihood of the log parameters and its gradient (``1e100`` where it is not
    finite, so the optimiser backs off)."""

    def objective(logp: np.ndarray) -> tuple[float, np.ndarray]:
        ll, g = loglik_terms(logp, x, t_x, T, grad=True)
        theta = np.exp(logp)
        f = -float(np.dot(wn, ll)) + pen * float(np.sum(theta**2))
        grad = -(g @ wn) + 2.0 * pen * theta**2
        if not np.isfinite(f) or not np.all(np.isfinite(grad)):
            return 1e100, np.zeros(4)
        return f, grad

    return objective


def _starting_points(x: np.ndarray, T: np.ndarray, wn: np.ndarray) -> list[np.ndarray]:
    """Log-parameter starts: all ones, and two with the purchase rate matched to the data's mean rate."""
    mean_x = float(np.dot(wn, x))
    mean_T = float(np.dot(wn, T))
    rate = max(mean_x, 0.01) / max(mean_T, 1e-9)
    return [
        np.zeros(4),
        np.log([1.0, 1.0 / rate, 1.0, 1.0]),
        np.log([0.25, 0.25 / rate, 0.8, 2.5]),
    ]


def _minimise(objective: Callable[[np.ndarray], tuple[float, np.ndarray]], starts: list[np.ndarray]) -> Any:
    """The best L-BFGS-B result over the starts (log parameters within the bounds); Nelder-Mead from the best start
    when none gives a finite value; ModelError when that fails too."""

    def value(logp: np.ndarray) -> float:
        return objective(np.clip(logp, -_LOG_BOUND, _LOG_BOUND))[0]

    bounds = [(-_LOG_BOUND, _LOG_BOUND)] * 4
    best = None
    for s in starts:
        s = np.clip(s, -_LOG_BOUND + 1, _LOG_BOUND - 1)
        try:
            res = optimize.minimize(
                objective,
                s,
                jac=True,
                method="L-BFGS-B",
                bounds=bounds,
                options={"maxiter": 2000, "ftol": 1e-13, "gtol": 1e-9},
            )
        except (FloatingPointError, ValueError, np.linalg.LinAlgError):  # pragma: no cover - defensive
            continue
        if np.isfinite(res.fun) and (best is None or res.fun < best.fun - 1e-12):
            best = res
    if best is None or not np.isfinite(best.fun) or best.fun >= 1e99:
        start = starts[0] if best is None else best.x
        best = optimize.minimize(
            value, start, method="Nelder-Mead", options={"maxiter": 20000, "xatol": 1e-10, "fatol": 1e-12}
        )
        best.x = np.clip(best.x, -_LOG_BOUND, _LOG_BOUND)
        if not np.isfinite(best.fun) or best.fun >= 1e99:
            raise ModelError("BG/NBD fit failed: the likelihood could not be evaluated at any starting point.")
    return best


# --------------------------------------------------------------------------------------------------------------------
# BG/NBD: individual-level quantities
# --------------------------------------------------------------------------------------------------------------------


def _log_odds_dead(params: BGNBDParams, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """log( P(dead) / P(alive) ) given (x, t_x, T); -inf for x = 0."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    pos = x > 0
    xs = np.where(pos, x, 1.0)
    lo = math.log(a) - np.log(b + xs - 1.0) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
    return np.where(pos, lo, -np.inf)


def prob_alive(params: BGNBDParams, x: Any, t_x: Any, T: Any) -> np.ndarray:
    """P(customer still active at T | x, t_x, T) (eq. 13 of the paper).

    By the BG/NBD assumptions a customer can only drop out right after a repeat purchase, so every customer with
    x = 0 has P(alive) = 1 whatever T is (the published caveat of the model; the MBG/NBD variant differs there).
    """
    x, t_x, T = _validate_xtT(x, t_x, T)
    return special.expit(-_log_odds_dead(params, x, t_x, T))


def _check_t(t: Any) -> np.ndarray:
    t = _as_float_array(t, "t")
    if not np.all(np.isfinite(t)) or np.any(t < 0):
        raise ModelError("BG/NBD: the prediction period t must be finite and non-negative.")
    return t


def expected_purchases(params: BGNBDParams, t: Any, x: Any, t_x: Any, T: Any) -> np.ndarray:
    """E[number of purchases in (T, T + t] | x, t_x, T] (eq. 10 of the paper).

    Computed with the Euler transform of the Gaussian hypergeometric function,
    ``((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z) = (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z)`` with
    ``z = t / (alpha+T+t)``, whose series stays well conditioned for large x.
    """
    t = _check_t(t)
    x, t_x, T = _validate_xtT(x, t_x, T)
    t, x, t_x, T = np.broadcast_arrays(t, x, t_x, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    if abs(a - 1.0) < 1e-7:  # removable singularity at a = 1
        a = 1.0 + 1e-7
    z = t / (alpha + T + t)
    hyp = special.hyp2f1(a + b - 1.0 - r, a - 1.0, a + b + x - 1.0, z)
    bracket = 1.0 - np.exp((a - 1.0) * np.log1p(-z)) * hyp
    uncond_alive = (a + b + x - 1.0) / (a - 1.0) * bracket
    p_alive = special.expit(-_log_odds_dead(params, x, t_x, T))
    out = p_alive * uncond_alive
    return np.maximum(out, 0.0)


def prob_no_purchase(params: BGNBDParams, t: Any, x: Any, t_x: Any, T: Any) -> np.ndarray:
    """P(no purchase in (T, T + t] | x, t_x, T) = (1 - P(alive)) + P(alive) ((alpha+T)/(alpha+T+t))^(r+x).

    Given alive at T the purchase rate has the posterior Gamma(r + x, alpha + T), and a customer cannot drop out
    without purchasing first, hence the second term. This is the churn probability over a horizon of length t.
    """
    t = _check_t(t)
    x, t_x, T = _validate_xtT(x, t_x, T)
    t, x, t_x, T = np.broadcast_arrays(t, x, t_x, T)
    p_alive = special.expit(-_log_odds_dead(params, x, t_x, T))
    stay_quiet = np.exp((params.r + x) * (np.log(params.alpha + T) - np.log(params.alpha + T + t)))
    return np.clip((1.0 - p_alive) + p_alive * stay_quiet, 0.0, 1.0)


# --------------------------------------------------------------------------------------------------------------------
# BG/NBD: product model
# --------------------------------------------------------------------------------------------------------------------


class BGNBDModel(ChurnClassifier):
    """BG/NBD on the product's per-user feature table (days are converted to weeks for fitting).

    Unsupervised: ``fit`` ignores ``y``; it uses ``repeat_purchases`` (x), ``first_to_last_days`` (t_x) and
    ``tenure_days`` (T). If ``first_to_last_days`` is absent it is derived as ``tenure_days - recency_days``.

    What the product shows is **P(no purchase in the horizon)** (``score="no_purchase"``, the default), i.e.
    ``prob_no_purchase(params, horizon, x, t_x, T)``, *not* 1 - P(alive). The two differ: the BG/NBD model gives
    P(alive) = 1 to every one-time buyer (x = 0), because it only lets customers drop out right after a repeat
    purchase -- a known caveat of the published model (Fader, Hardie & Lee 2005; Batislam et al. 2007 proposed the
    MBG/NBD to avoid it). The no-purchase probability still separates one-time buyers: for x = 0 it equals
    ``((alpha+T)/(alpha+T+t))^r``, which grows with T (a buyer first seen long ago and silent since is more likely
    to stay silent). ``score="not_alive"`` returns 1 - P(alive) instead (0 for all one-time buyers).

    Learned state: ``params_`` (:class:`BGNBDParams`, in weeks), ``horizon_weeks_``, ``n_train_``.
    """

    _SCORES = ("no_purchase", "not_alive")

    def __init__(self, horizon_days: float = 90, penalizer: float = 0.0, score: str = "no_purchase"):
        self.horizon_days = horizon_days
        self.penalizer = penalizer
        self.score = score

    def _xtT_weeks(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        name = "BGNBDModel"
        if isinstance(X, pd.DataFrame) and "first_to_last_days" not in X.columns and "recency_days" in X.columns:
            _require_columns(X, ["repeat_purchases", "tenure_days", "recency_days"], name)
            T = _numeric_column(X, "tenure_days", name)
            t_x = T - _numeric_column(X, "recency_days", name)
            if np.any(t_x < -1e-9 * np.maximum(1, T)):
                raise ModelError(f"{name}: recency_days exceeds tenure_days for {int((t_x < 0).sum())} user(s).")
            t_x = np.maximum(t_x, 0.0)
        else:
            _require_columns(X, ["repeat_purchases", "first_to_last_days", "tenure_days"], name)
            T = _numeric_column(X, "tenure_days", name)
            t_x = _numeric_column(X, "first_to_last_days", name)
        x = _numeric_column(X, "repeat_purchases", name)
        return _validate_xtT(x, t_x / DAYS_PER_WEEK, T / DAYS_PER_WEEK, what=name)

    def fit(self, X: pd.DataFrame, y: np.ndarray | pd.Series | None = None, *,
            progress: Progress | None = None) -> "BGNBDModel":
        horizon = _check_horizon(self.horizon_days, "BGNBDModel")
        if self.score not in self._SCORES:
            raise ConfigError(f"BGNBDModel: score must be one of {list(self._SCORES)}, got {self.score!r}.")
        x, t_x, T = self._xtT_weeks(X)
        self.params_ = fit_bgnbd(x, t_x, T, penalizer=self.penalizer)
        self.horizon_weeks_ = horizon / DAYS_PER_WEEK
        self.n_train_ = int(x.size)
        self._fitted_classes()
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "params_"):
            raise ModelError("BGNBDModel is not fitted yet: call fit(X) first.")

    #: Fewest users whose purchases refit the parameters at scoring time (fewer: the trained parameters are kept).
    MIN_POPULATION = 500

    def for_population(self, X: pd.DataFrame) -> "BGNBDModel":
        """This model with its four parameters fitted on the users being scored, i.e. on all their purchases up to
        the scoring date: BG/NBD learns no labels, so the population it should describe is the one scored, not the
        one of an earlier snapshot. Below :attr:`MIN_POPULATION` users (a single request, a small file) or when
        that fit fails, the trained parameters are kept. The model itself is not changed."""
        self._check_fitted()
        if len(X) < self.MIN_POPULATION:
            return self
        try:
            return type(self)(**self.get_params()).fit(X)
        except ModelError:
            return self

    def _churn(self, X: pd.DataFrame) -> np.ndarray:
        self._check_fitted()
        x, t_x, T = self._xtT_weeks(X)
        if self.score == "not_alive":
            return 1.0 - prob_alive(self.params_, x, t_x, T)
        return prob_no_purchase(self.params_, self.horizon_weeks_, x, t_x, T)
