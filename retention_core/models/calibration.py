"""Calibration of any churn model of the product: :class:`CalibratedModel` recalibrates its churn probabilities
(isotonic or sigmoid / Platt) on validation rows, out-of-fold predictions or held-out rows.

``make_model(key, ..., calibrate="isotonic" | "sigmoid")`` is the one place that wraps a model in it.
"""
from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pandas as pd
from scipy import special
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, train_test_split

from retention_core.errors import ModelError

from . import CALIBRATION_METHODS, for_population
from .base import ParamsMixin, Progress, check_choice, check_frame, check_labels, check_number, report_progress

__all__ = ["CalibratedModel", "SigmoidCalibrator"]

_EPS = 1e-6


class SigmoidCalibrator:
    """Platt scaling on the logit of the base probability: ``p' = expit(a * logit(p) + b)``.

    Learned state: ``a_``, ``b_``."""

    def fit(self, p: np.ndarray, y: np.ndarray) -> "SigmoidCalibrator":
        z = special.logit(np.clip(p, _EPS, 1 - _EPS)).reshape(-1, 1)
        lr = LogisticRegression(C=1e4, solver="lbfgs", max_iter=1000).fit(z, y)
        self.a_, self.b_ = float(lr.coef_.ravel()[0]), float(lr.intercept_.ravel()[0])
        return self

    def predict(self, p: np.ndarray) -> np.ndarray:
        return special.expit(self.a_ * special.logit(np.clip(p, _EPS, 1 - _EPS)) + self.b_)


class CalibratedModel(ParamsMixin):
    """Any model of the product with its churn probabilities recalibrated (isotonic or sigmoid / Platt).

    Where the calibration data comes from (``calibration_source_``):

    * ``"validation"``: ``fit`` got ``X_val, y_val``: the base model is fitted on the training rows (and may use the
      validation rows for early stopping), the calibrator on its validation predictions;
    * ``"cv"``: scikit-learn models without validation rows: out-of-fold predictions of ``cv`` folds (stratified)
      train the calibrator, then the base model is refitted on all the training rows;
    * ``"holdout"``: other models (baselines, neural networks) without validation rows: the base model is fitted on
      80% of the rows and the calibrator on the other 20% -- the latest 20% by ``snapshot_date`` when the table has
      several snapshots, else a stratified random 20%.

    Learned state: ``base_`` (the fitted base model), ``calibrator_``, ``calibration_source_``, ``n_calibration_``.
    SHAP explanations use ``base_``: calibration is monotone, so it keeps the ranking of users.
    """

    _param_names = ("base", "method", "cv", "holdout", "random_state")
    METHODS = CALIBRATION_METHODS

    def __init__(self, base: Any, method: str = "isotonic", cv: int = 3, holdout: float = 0.2, random_state: int = 0):
        self.base = base
        self.method = method
        self.cv = cv
        self.holdout = holdout
        self.random_state = random_state

    def _calibrator(self) -> Any:
        if self.method == "isotonic":
            return IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        return SigmoidCalibrator()

    def _new_base(self) -> Any:
        if hasattr(self.base, "get_params"):
            return type(self.base)(**self.base.get_params())
        return copy.deepcopy(self.base)

    def fit(
        self,
        X: pd.DataFrame,
        y: Any,
        *,
        sequences: Any = None,
        X_val: pd.DataFrame | None = None,
        y_val: Any = None,
        seq_val: Any = None,
        progress: Progress | None = None,
        **kw: Any,
    ) -> "CalibratedModel":
        name = "CalibratedModel"
        check_choice(name, "method", self.method, self.METHODS)
        check_number(name, "cv", self.cv, low=2, integer=True)
        check_number(name, "holdout", self.holdout, low=0.05, high=0.5)
        X = check_frame(X, name)
        yv = check_labels(y, len(X), name)
        seq = None if sequences is None else np.asarray(sequences)
        if X_val is not None and y_val is not None and len(X_val) > 0:
            yv_val = check_labels(y_val, len(X_val), f"{name} (validation)")
            base = self._new_base().fit(X, yv, sequences=seq, X_val=X_val, y_val=yv_val, seq_val=seq_val,
                                        progress=progress, **kw)
            p_cal, y_cal = base.predict_proba(X_val, sequences=seq_val), yv_val
            source = "validation"
        elif getattr(self.base, "_calibrate_by_cv", False):
            n_min = int(min(yv.sum(), len(yv) - yv.sum()))
            folds = min(int(self.cv), n_min)
            if folds < 2:
                raise ModelError(f"{name}: too few churned or retained users ({n_min}) to calibrate by "
                                 "cross-validation; give validation rows or more data.")
            p_cal = np.empty(len(X))
            skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=self.random_state)
            for k, (tr, te) in enumerate(skf.split(np.zeros(len(yv)), yv)):
                report_progress(progress, 0.8 * k / folds, f"calibration fold {k + 1} of {folds}")
                m = self._new_base().fit(X.iloc[tr], yv[tr], sequences=None if seq is None else seq[tr])
                p_cal[te] = m.predict_proba(X.iloc[te], sequences=None if seq is None else seq[te])
            y_cal = yv
            report_progress(progress, 0.8, "refitting on all training rows")
            base = self._new_base().fit(X, yv, sequences=seq, **kw)
            source = "cv"
        else:
            tr, te = _holdout_split(X, yv, self.holdout, self.random_state)
            base = self._new_base().fit(X.iloc[tr], yv[tr], sequences=None if seq is None else seq[tr],
                                        progress=progress, **kw)
            p_cal = base.predict_proba(X.iloc[te], sequences=None if seq is None else seq[te])
            y_cal = yv[te]
            source = "holdout"
        if y_cal.min() == y_cal.max():
            raise ModelError(f"{name}: the calibration rows are all {'churned' if y_cal[0] else 'retained'}; "
                             "calibration needs both kinds of users.")
        self.calibrator_ = self._calibrator().fit(np.asarray(p_cal, dtype="float64"), y_cal)
        self.base_ = base
        self.calibration_source_ = source
        self.n_calibration_ = int(len(y_cal))
        report_progress(progress, 1.0, f"calibrated ({self.method}, {source}, {len(y_cal):,} rows)")
        return self

    def predict_proba(self, X: pd.DataFrame, *, sequences: Any = None, **kw: Any) -> np.ndarray:
        if not hasattr(self, "calibrator_"):
            raise ModelError("CalibratedModel is not fitted yet: call fit(X, y) first.")
        p = np.asarray(self.base_.predict_proba(X, sequences=sequences, **kw), dtype="float64")
        if p.size == 0:
            return p
        return np.clip(np.asarray(self.calibrator_.predict(p), dtype="float64"), 0.0, 1.0)

    def for_population(self, X: pd.DataFrame) -> "CalibratedModel":
        """The calibrated model around its base refitted on the scored population, when the base learns from it
        (BG/NBD); the calibration map is kept."""
        base = for_population(self.base_, X)
        if base is self.base_:
            return self
        out = copy.copy(self)
        out.base_ = base
        return out

    def __getattr__(self, name: str) -> Any:
        # attributes the product reads from a fitted model (feature names, pipeline) come from the base model
        if name in ("feature_names_out_", "numeric_", "categorical_", "n_train_") and "base_" in self.__dict__:
            return getattr(self.__dict__["base_"], name)
        raise AttributeError(name)


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
