"""Calibration of any churn model of the product: :class:`CalibratedModel` recalibrates its churn probabilities
(isotonic or sigmoid / Platt) with scikit-learn's ``CalibratedClassifierCV`` on out-of-fold predictions or held-out
rows.

``make_model(key, ..., calibrate="isotonic" | "sigmoid")`` is the one place that wraps a model in it.
"""
from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pandas as pd
from scipy import special
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, train_test_split

from retention_core.errors import ModelError

from . import CALIBRATION_METHODS, for_population
from .base import Progress, check_choice, check_frame, check_labels, check_number, report_progress
from .estimator import CLASSES, ChurnClassifier

__all__ = ["CalibratedModel", "SigmoidCalibrator"]

_EPS = 1e-6


class CalibratedModel(ChurnClassifier):
    """Any model of the product with its churn probabilities recalibrated (isotonic or sigmoid / Platt, both on the
    model's log-odds of churn, its ``decision_function``) by scikit-learn's ``CalibratedClassifierCV``.

    Where the calibration data comes from (``calibration_source_``):

    * ``"cv"``: models cheap to refit (``_calibrate_by_cv``: the scikit-learn models): out-of-fold predictions of
      ``cv`` stratified folds train the calibrator, then the base model is refitted on all the training rows
      (``CalibratedClassifierCV(cv=StratifiedKFold(cv), ensemble=False)``);
    * ``"holdout"``: other models (baselines, neural networks): the base model is fitted on 80% of the rows and the
      calibrator on the other 20% -- the latest 20% by ``snapshot_date`` when the table has several snapshots, else a
      stratified random 20% (``CalibratedClassifierCV(cv=[(train, held out)])``).

    Learned state: ``calibrated_`` (the fitted ``CalibratedClassifierCV``, one base model and its calibrator),
    ``base_`` (that fitted base model), ``calibration_source_``, ``n_calibration_``, ``classes_``.
    SHAP explanations use ``base_``: calibration is monotone, so it keeps the ranking of users.
    """

    METHODS = CALIBRATION_METHODS

    def __init__(self, base: Any, method: str = "isotonic", cv: int = 3, holdout: float = 0.2, random_state: int = 0):
        self.base = base
        self.method = method
        self.cv = cv
        self.holdout = holdout
        self.random_state = random_state

    def fit(self, X: pd.DataFrame, y: Any, *, progress: Progress | None = None) -> "CalibratedModel":
        name = "CalibratedModel"
        check_choice(name, "method", self.method, self.METHODS)
        check_number(name, "cv", self.cv, low=2, integer=True)
        check_number(name, "holdout", self.holdout, low=0.05, high=0.5)
        X = check_frame(X, name)
        yv = check_labels(y, len(X), name).astype(int)
        if getattr(self.base, "_calibrate_by_cv", False):
            n_min = int(min(yv.sum(), len(yv) - yv.sum()))
            folds = min(int(self.cv), n_min)
            if folds < 2:
                raise ModelError(f"{name}: too few churned or retained users ({n_min}) to calibrate by "
                                 "cross-validation; give more data.")
            cv: Any = StratifiedKFold(n_splits=folds, shuffle=True, random_state=self.random_state)
            ensemble, source, n_cal = False, "cv", len(yv)
        else:
            tr, te = _holdout_split(X, yv, self.holdout, self.random_state)
            if yv[te].min() == yv[te].max():
                raise ModelError(f"{name}: the calibration rows are all {'churned' if yv[te][0] else 'retained'}; "
                                 "calibration needs both kinds of users.")
            cv, ensemble, source, n_cal = [(tr, te)], True, "holdout", len(te)
        report_progress(progress, 0.0, f"calibrating ({self.method}, {source})")
        cal = CalibratedClassifierCV(self.base, method=self.method, cv=cv, ensemble=ensemble)
        self.calibrated_ = cal.fit(X, yv, progress=progress)
        self.calibration_source_ = source
        self.n_calibration_ = int(n_cal)
        self._fitted_classes()
        report_progress(progress, 1.0, f"calibrated ({self.method}, {source}, {n_cal:,} rows)")
        return self

    @property
    def base_(self) -> Any:
        """The fitted base model the calibrator reads."""
        if "calibrated_" not in self.__dict__:
            raise AttributeError("base_")
        return self.calibrated_.calibrated_classifiers_[0].estimator

    def _churn(self, X: pd.DataFrame) -> np.ndarray:
        if "calibrated_" not in self.__dict__:
            raise ModelError("CalibratedModel is not fitted yet: call fit(X, y) first.")
        if len(X) == 0:
            return np.empty(0, dtype="float64")
        proba = self.calibrated_.predict_proba(X)
        return proba[:, list(self.calibrated_.classes_).index(1)]

    def calibration_map(self, p: Any) -> np.ndarray:
        """The calibrated churn probability of base-model churn probabilities ``p`` (the map alone, as
        ``predict_proba`` applies it to the base model's log-odds)."""
        z = special.logit(np.clip(np.asarray(p, dtype="float64"), 1e-15, 1.0 - 1e-15))
        calibrator = self.calibrated_.calibrated_classifiers_[0].calibrators[0]
        return np.clip(np.asarray(calibrator.predict(z), dtype="float64"), 0.0, 1.0)

    def with_base(self, base: Any) -> "CalibratedModel":
        """This calibrated model with another fitted base model (a refit, the base refitted on a population) read by
        the same calibration map; this model is not changed."""
        out = copy.copy(self)
        cal = copy.copy(self.calibrated_)
        pair = copy.copy(cal.calibrated_classifiers_[0])
        pair.estimator = base
        cal.calibrated_classifiers_ = [pair]
        out.calibrated_ = cal
        return out

    def for_population(self, X: pd.DataFrame) -> "CalibratedModel":
        """The calibrated model around its base refitted on the scored population, when the base learns from it
        (BG/NBD); the calibration map is kept."""
        base = for_population(self.base_, X)
        return self if base is self.base_ else self.with_base(base)

    def __getattr__(self, name: str) -> Any:
        # attributes the product reads from a fitted model (feature names, pipeline) come from the base model
        if name in ("feature_names_out_", "numeric_", "categorical_", "n_train_") and "calibrated_" in self.__dict__:
            return getattr(self.base_, name)
        raise AttributeError(name)

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "calibrator_" in state and "calibrated_" not in state:
            state = _from_saved_calibrator(dict(state))
        super().__setstate__(state)


class SigmoidCalibrator:
    """Platt scaling on the logit of the base probability: ``p' = expit(a * logit(p) + b)``, the calibrator of runs
    saved before calibration was scikit-learn's (kept so that they load).

    Learned state: ``a_``, ``b_``."""

    def fit(self, p: np.ndarray, y: np.ndarray) -> "SigmoidCalibrator":
        z = special.logit(np.clip(p, _EPS, 1 - _EPS)).reshape(-1, 1)
        lr = LogisticRegression(C=1e4, solver="lbfgs", max_iter=1000).fit(z, y)
        self.a_, self.b_ = float(lr.coef_.ravel()[0]), float(lr.intercept_.ravel()[0])
        return self

    def predict(self, p: np.ndarray) -> np.ndarray:
        return special.expit(self.a_ * special.logit(np.clip(p, _EPS, 1 - _EPS)) + self.b_)


class _OnProbability:
    """A calibrator fitted on churn probabilities (runs saved before calibration was scikit-learn's), read by
    scikit-learn's calibrated classifier, which hands it the log-odds."""

    def __init__(self, calibrator: Any):
        self.calibrator = calibrator

    def predict(self, T: np.ndarray) -> np.ndarray:
        p = special.expit(np.asarray(T, dtype="float64"))
        return np.clip(np.asarray(self.calibrator.predict(p), dtype="float64"), 0.0, 1.0)


def _from_saved_calibrator(state: dict[str, Any]) -> dict[str, Any]:
    """The state of a calibrated model saved before calibration was scikit-learn's (``base_``, ``calibrator_``) as
    this class keeps it: the same base model and calibration map inside a ``CalibratedClassifierCV``."""
    from sklearn.calibration import _CalibratedClassifier

    method = state.get("method", "isotonic")
    cal = CalibratedClassifierCV(state.get("base"), method=method, cv=state.get("cv", 3))
    cal.calibrated_classifiers_ = [_CalibratedClassifier(state.pop("base_"), [_OnProbability(state.pop("calibrator_"))],
                                                         classes=CLASSES.copy(), method=method)]
    cal.classes_ = CLASSES.copy()
    state["calibrated_"] = cal
    state.setdefault("classes_", CLASSES.copy())
    return state


def _holdout_split(X: pd.DataFrame, y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (train, calibration): the latest snapshots when there are several, else stratified random."""
    n = len(X)
    if "snapshot_date" in X.columns:
        dates = pd.to_datetime(X["snapshot_date"], errors="coerce")
        if dates.notna().all() and dates.nunique() > 1:
            order = np.argsort(dates.to_numpy(), kind="stable")
            cut = int(round(n * (1 - fraction)))
            # keep whole snapshots together: move the cut to the start of the snapshot it falls in; use that only
            # when it leaves between 10% and 50% of the rows for calibration
            d_sorted = dates.to_numpy()[order]
            cut = int(np.searchsorted(d_sorted, d_sorted[min(cut, n - 1)], side="left"))
            if 0.1 * n <= n - cut <= 0.5 * n:
                tr, te = np.sort(order[:cut]), np.sort(order[cut:])
                if y[te].min() != y[te].max() and y[tr].min() != y[tr].max():
                    return tr, te
    idx = np.arange(n)
    counts = np.bincount(y.astype(int), minlength=2)
    stratify = y if counts.min() >= 2 else None
    tr, te = train_test_split(idx, test_size=fraction, random_state=seed, stratify=stratify)
    return np.sort(tr), np.sort(te)
