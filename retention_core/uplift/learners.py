"""Uplift learners: models of how much a contact changes the chance of an outcome, for each customer.

Every learner is a scikit-learn estimator (constructor arguments stored unchanged, learned state ending in ``_``)::

    learner.fit(X, y, treatment) -> learner        # y: outcome 0/1, treatment: 1 = contacted, 0 = control
    learner.predict_uplift(X) -> np.ndarray         # P(outcome | treated) - P(outcome | control)
    learner.predict_arms(X) -> (p_treated, p_control), with p_treated - p_control == predict_uplift(X)

``X`` is a table of raw customer columns; each learner encodes them in its own pipeline (numeric columns: signed log of
skewed amounts, imputation, scaling; text columns: one-hot codes), so a saved learner scores raw columns.

* :class:`TwoModelUplift` fits the outcome in each arm and subtracts (the "two-model" or T-learner).
* :class:`ClassTransformationUplift` learns the effect directly from one classifier of
  ``Z = 1`` when (treated and responded) or (control and did not respond), with the arms weighted equally:
  ``uplift = 2 P(Z = 1 | x) - 1`` (Jaskowski & Jaroszewicz 2012).
* :class:`DoublyRobustUplift` learns the effect directly by regressing the doubly robust pseudo-outcome
  ``mu1 - mu0 + (W - e) / (e (1 - e)) (Y - mu_W)`` on the customer's columns, with the outcome models ``mu`` fitted on
  other folds than the rows they score (cross-fitting) and ``e`` the treated share (known: the experiment is
  randomised) (the DR-learner, Kennedy 2020).
* :class:`XLearnerUplift` regresses the imputed effects of each arm (``Y - mu0`` for the treated, ``mu1 - Y`` for the
  control) and weighs the two by the treated share (Künzel et al. 2019).

The direct learners give the two probabilities around a pooled prediction ``e mu1 + (1 - e) mu0`` so that they add up
to it and differ by exactly the learned uplift (moved into [0, 1] when needed, the difference kept).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline

from ..errors import ConfigError, ModelError
from ..models.preprocessing import make_preprocessor

BASES = ("logistic", "boosting")
FINALS = ("ridge", "boosting")


# ------------------------------------------------------------------------------------------------ building blocks
class _Constant:
    """The outcome model of an arm where every customer had the same outcome (rare outcomes in small arms)."""

    def __init__(self, rate: float):
        self.rate = float(rate)

    def predict_proba(self, X) -> np.ndarray:
        p = np.full(len(X), self.rate)
        return np.column_stack([1 - p, p])


def _classifier(base: str, numeric, categorical, seed: int) -> Pipeline:
    if base == "logistic":
        pre = make_preprocessor(numeric, categorical, scale=True, log_heavy=True, encoding="onehot")
        return Pipeline([("preprocess", pre), ("model", LogisticRegression(C=1.0, max_iter=2000))])
    pre = make_preprocessor(numeric, categorical, scale=False, log_heavy=False, encoding="ordinal")
    return Pipeline([("preprocess", pre), ("model", HistGradientBoostingClassifier(
        max_iter=150, learning_rate=0.05, max_leaf_nodes=15, min_samples_leaf=100, early_stopping=False,
        random_state=seed))])


def _regressor(final: str, numeric, categorical, seed: int) -> Pipeline:
    if final == "ridge":
        pre = make_preprocessor(numeric, categorical, scale=True, log_heavy=True, encoding="onehot")
        return Pipeline([("preprocess", pre), ("model", Ridge(alpha=1.0))])
    pre = make_preprocessor(numeric, categorical, scale=False, log_heavy=False, encoding="ordinal")
    return Pipeline([("preprocess", pre), ("model", HistGradientBoostingRegressor(
        max_iter=60, learning_rate=0.05, max_depth=3, min_samples_leaf=500, early_stopping=False,
        random_state=seed))])


def _fit_outcome(make: Callable[[], Pipeline], X: pd.DataFrame, y: np.ndarray, sample_weight=None):
    if len(np.unique(y)) < 2:
        return _Constant(float(y.mean()) if len(y) else 0.0)
    model = make()
    return model.fit(X, y) if sample_weight is None else model.fit(X, y, model__sample_weight=sample_weight)


def _p(model, X: pd.DataFrame) -> np.ndarray:
    return np.asarray(model.predict_proba(X)[:, 1], dtype=float)


def arms_around(center: np.ndarray, uplift: np.ndarray, treated_share: float) -> tuple[np.ndarray, np.ndarray]:
    """``(p_treated, p_control)`` whose difference is ``uplift`` (clipped to [-1, 1]) and whose mix at the treated
    share is ``center`` where both fit in [0, 1]; otherwise the pair is moved into [0, 1], the difference kept."""
    tau = np.clip(np.asarray(uplift, dtype=float), -1.0, 1.0)
    p_c = np.asarray(center, dtype=float) - treated_share * tau
    p_c = np.clip(p_c, np.maximum(0.0, -tau), np.minimum(1.0, 1.0 - tau))
    return p_c + tau, p_c


def check_experiment(X, y, treatment) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The inputs of ``fit`` checked: a table, 0/1 outcomes and treatment flags of its length, both arms present."""
    if not isinstance(X, pd.DataFrame):
        raise ModelError(f"Uplift learners read a table of customer columns (a DataFrame), got {type(X).__name__}.")
    y = np.asarray(y, dtype=float).ravel()
    w = np.asarray(treatment, dtype=float).ravel()
    if not (len(X) == len(y) == len(w)):
        raise ModelError(f"{len(X):,} rows, {len(y):,} outcomes and {len(w):,} treatment flags do not match.")
    for name, v in (("outcome", y), ("treatment flag", w)):
        if not np.isin(v, (0.0, 1.0)).all():
            raise ModelError(f"Every {name} must be 0 or 1.")
    if w.all() or not w.any():
        raise ModelError("Uplift needs customers in both arms: some treated (contacted) and some in the control group.")
    return X.reset_index(drop=True), y, w


class UpliftLearner(BaseEstimator):
    """What every uplift learner shares: settings, the checks of ``fit`` and the outputs (see the module)."""

    def __init__(self, numeric: list[str] | None = None, categorical: list[str] | None = None, *,
                 base: str = "logistic", seed: int = 0):
        self.numeric = numeric
        self.categorical = categorical
        self.base = base
        self.seed = seed

    def _start(self, X, y, treatment):
        if self.base not in BASES:
            raise ConfigError(f"The base model must be one of {', '.join(BASES)}, got {self.base!r}.")
        X, y, w = check_experiment(X, y, treatment)
        self.treated_share_ = float(w.mean())
        self.n_features_in_ = len(self._columns())
        return X, y, w

    def _columns(self) -> list[str]:
        return list(self.numeric or []) + list(self.categorical or [])

    def _make(self) -> Callable[[], Pipeline]:
        return lambda: _classifier(self.base, self.numeric, self.categorical, self.seed)

    def _check_fitted(self) -> None:
        if not hasattr(self, "treated_share_"):
            raise ModelError(f"{type(self).__name__} is not fitted yet: call fit first.")

    def predict_uplift(self, X: pd.DataFrame) -> np.ndarray:
        p_t, p_c = self.predict_arms(X)
        return p_t - p_c

    def predict_arms(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError


class TwoModelUplift(UpliftLearner):
    """One outcome model per arm; uplift is the difference of their probabilities."""

    def fit(self, X, y, treatment) -> "TwoModelUplift":
        X, y, w = self._start(X, y, treatment)
        self.model_treated_ = _fit_outcome(self._make(), X[w == 1], y[w == 1])
        self.model_control_ = _fit_outcome(self._make(), X[w == 0], y[w == 0])
        return self

    def predict_arms(self, X):
        self._check_fitted()
        return _p(self.model_treated_, X), _p(self.model_control_, X)


class _Direct(UpliftLearner):
    """A learner of the effect itself, with arm outcome models for the two probabilities."""

    def _fit_arms(self, X, y, w) -> None:
        self.model_treated_ = _fit_outcome(self._make(), X[w == 1], y[w == 1])
        self.model_control_ = _fit_outcome(self._make(), X[w == 0], y[w == 0])

    def predict_arms(self, X):
        self._check_fitted()
        e = self.treated_share_
        center = e * _p(self.model_treated_, X) + (1 - e) * _p(self.model_control_, X)
        return arms_around(center, self._effect(X), e)

    def _effect(self, X) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


class ClassTransformationUplift(_Direct):
    """One classifier of the transformed class ``Z`` with the arms weighted equally; uplift = 2 P(Z = 1) - 1."""

    def fit(self, X, y, treatment) -> "ClassTransformationUplift":
        X, y, w = self._start(X, y, treatment)
        e = self.treated_share_
        z = (y == w).astype(int)
        weight = np.where(w == 1, 0.5 / e, 0.5 / (1 - e))
        self.model_z_ = _fit_outcome(self._make(), X, z, sample_weight=weight)
        self._fit_arms(X, y, w)
        return self

    def _effect(self, X) -> np.ndarray:
        return 2 * _p(self.model_z_, X) - 1


class _Regressed(_Direct):
    """A direct learner whose effect model is a regression (``final``: ridge or boosting)."""

    def __init__(self, numeric: list[str] | None = None, categorical: list[str] | None = None, *,
                 base: str = "logistic", final: str = "ridge", folds: int = 2, seed: int = 0):
        super().__init__(numeric, categorical, base=base, seed=seed)
        self.final = final
        self.folds = folds

    def _regression(self, X, target, rows=None):
        if self.final not in FINALS:
            raise ConfigError(f"The effect model must be one of {', '.join(FINALS)}, got {self.final!r}.")
        model = _regressor(self.final, self.numeric, self.categorical, self.seed)
        return model.fit(X if rows is None else X[rows], target if rows is None else target[rows])


class DoublyRobustUplift(_Regressed):
    """The DR-learner: the doubly robust pseudo-outcome, from cross-fitted outcome models, regressed on the columns."""

    def fit(self, X, y, treatment) -> "DoublyRobustUplift":
        X, y, w = self._start(X, y, treatment)
        if int(self.folds) < 2:
            raise ConfigError(f"Cross-fitting needs at least 2 folds, got {self.folds}.")
        e = self.treated_share_
        mu1, mu0 = np.zeros(len(y)), np.zeros(len(y))
        split = StratifiedKFold(int(self.folds), shuffle=True, random_state=self.seed)
        for fit_rows, other in split.split(X, (2 * w + y).astype(int)):
            t, c = fit_rows[w[fit_rows] == 1], fit_rows[w[fit_rows] == 0]
            mu1[other] = _p(_fit_outcome(self._make(), X.iloc[t], y[t]), X.iloc[other])
            mu0[other] = _p(_fit_outcome(self._make(), X.iloc[c], y[c]), X.iloc[other])
        observed = np.where(w == 1, mu1, mu0)
        pseudo = mu1 - mu0 + (w - e) / (e * (1 - e)) * (y - observed)
        self.model_effect_ = self._regression(X, pseudo)
        self._fit_arms(X, y, w)
        return self

    def _effect(self, X) -> np.ndarray:
        return np.asarray(self.model_effect_.predict(X), dtype=float)


class XLearnerUplift(_Regressed):
    """The X-learner: imputed effects of each arm regressed on the columns, weighed by the treated share."""

    def fit(self, X, y, treatment) -> "XLearnerUplift":
        X, y, w = self._start(X, y, treatment)
        self._fit_arms(X, y, w)
        d = np.where(w == 1, y - _p(self.model_control_, X), _p(self.model_treated_, X) - y)
        self.model_effect_treated_ = self._regression(X, d, w == 1)
        self.model_effect_control_ = self._regression(X, d, w == 0)
        return self

    def _effect(self, X) -> np.ndarray:
        e = self.treated_share_
        return e * self.model_effect_control_.predict(X) + (1 - e) * self.model_effect_treated_.predict(X)


# ------------------------------------------------------------------------------------------------ the registry
@dataclass(frozen=True)
class LearnerSpec:
    """An uplift learner the product offers: ``key`` (command line, saved runs), ``label`` (screen), ``kind``
    (``two-model`` or ``direct``: learns the effect itself), a description and the settings it is built with."""

    key: str
    label: str
    kind: str
    cls: type
    settings: dict
    description: str

    def build(self, numeric, categorical, seed: int = 0) -> UpliftLearner:
        return self.cls(list(numeric), list(categorical), seed=int(seed), **self.settings)


LEARNERS: dict[str, LearnerSpec] = {s.key: s for s in (
    LearnerSpec("two_model", "Two models (logistic)", "two-model", TwoModelUplift, {"base": "logistic"},
                "A logistic regression of the outcome in each arm; uplift is their difference."),
    LearnerSpec("two_model_gbm", "Two models (gradient boosting)", "two-model", TwoModelUplift,
                {"base": "boosting"}, "Gradient-boosted trees of the outcome in each arm; uplift is their difference."),
    LearnerSpec("class_transformation", "Class transformation", "direct", ClassTransformationUplift,
                {"base": "logistic"}, "One logistic regression of 'treated and responded, or control and did not', "
                "the arms weighted equally: the effect learned directly."),
    LearnerSpec("dr_learner", "Doubly robust (DR-learner)", "direct", DoublyRobustUplift,
                {"base": "logistic", "final": "ridge"}, "A ridge regression of each customer's doubly robust "
                "effect estimate (outcome models cross-fitted): the effect learned directly."),
    LearnerSpec("x_learner", "X-learner", "direct", XLearnerUplift, {"base": "logistic", "final": "ridge"},
                "Ridge regressions of the effects imputed in each arm, weighed by the treated share."),
)}
DEFAULT_LEARNERS = tuple(LEARNERS)


def learner_keys(keys) -> list[str]:
    """The learners asked for (``"auto"``, None or a list of keys), checked against :data:`LEARNERS`."""
    if keys in (None, "auto", ["auto"], ()):
        return list(DEFAULT_LEARNERS)
    keys = [keys] if isinstance(keys, str) else list(keys)
    unknown = [k for k in keys if k not in LEARNERS]
    if unknown:
        raise ConfigError(f"Unknown uplift learner(s) {', '.join(map(repr, unknown))}. Choose from "
                          f"{', '.join(LEARNERS)} or 'auto'.", field="models", value=unknown[0])
    if not keys:
        raise ConfigError("Choose at least one uplift learner.", field="models")
    return keys


def make_learner(key: str, numeric, categorical, seed: int = 0) -> UpliftLearner:
    return LEARNERS[learner_keys([key])[0]].build(numeric, categorical, seed)
