"""Models that read the encoded matrix of their pipeline: trees (random forest, gradient boosting) through
``shap.TreeExplainer`` and logistic regression through ``shap.LinearExplainer``.

Both explain the matrix the estimator sees (categoricals are ordinal codes or one-hot columns, never native
categories) and sum the encoded columns back into readable units. Gradient boosting and logistic regression are
explained in **log-odds**, the random forest in **probability** (its trees average probabilities).
"""
from __future__ import annotations

import os
from abc import abstractmethod
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ModelError
from .backend import Backend, Setup
from .sampling import sample_for_explanation
from .units import grouping, unit_of_encoded

PARALLEL_TREE_ROWS = 400  # from this many users a forest's values are computed in chunks on all cores
LINEAR_BACKGROUND = 5000  # at most this many reference users make the linear background


class EncodedBackend(Backend):
    """The part both share: the fitted pipeline's preprocessing and estimator, the encoded-column -> unit sums, the
    estimator's own log-odds as the output the values add up to."""

    def __init__(self, setup: Setup):
        super().__init__(setup)
        m = setup.model
        if not hasattr(m, "pipeline_"):
            raise ModelError(f"{type(m).__name__} is not fitted yet: train it before explaining it.")
        self.pre = m.pipeline_.named_steps["preprocess"]
        self.est = m.pipeline_.named_steps["model"]
        names = list(getattr(m, "feature_names_out_", None) or self.pre.get_feature_names_out())
        self.units, self._A = grouping(unit_of_encoded(names, setup.numeric + setup.categorical, setup.categorical))
        self._shap: Any = None  # the SHAP explainer, built on first use

    @abstractmethod
    def _build(self) -> None:
        """Build the SHAP explainer (:attr:`_shap`) and set the expected value."""

    @abstractmethod
    def _encoded_values(self, M: np.ndarray) -> Any:
        """SHAP values of the encoded matrix ``M``, one column per encoded column."""

    def _ensure_shap(self) -> None:
        if self._shap is None:
            self._build()

    def class_index(self) -> int:
        """The column of the churned class (label 1) in the estimator's outputs."""
        classes = list(getattr(self.est, "classes_", [0, 1]))
        return classes.index(1) if 1 in classes else len(classes) - 1

    def expected_value(self) -> float:
        if self._expected is None:
            self._ensure_shap()
        return float(self._expected)

    def values(self, X: pd.DataFrame, sequences: Any) -> np.ndarray:
        self._ensure_shap()
        M = np.asarray(self.pre.transform(X), dtype="float64")
        sv = np.asarray(self._encoded_values(M), dtype="float64")
        if sv.ndim == 3:  # (rows, columns, classes)
            sv = sv[:, :, self.class_index()]
        return sv @ self._A

    def output(self, X: pd.DataFrame, sequences: Any) -> np.ndarray:
        if self.space == "log-odds" and hasattr(self.est, "decision_function"):
            return np.asarray(self.est.decision_function(self.pre.transform(X)), dtype="float64").ravel()
        return super().output(X, sequences)


class TreeBackend(EncodedBackend):
    method = "tree"

    def __init__(self, setup: Setup):
        super().__init__(setup)
        # scikit-learn is loaded with the model being explained; importing it here keeps `import explain` light
        from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier

        forest = isinstance(self.est, (RandomForestClassifier, ExtraTreesClassifier))
        self.space = "probability" if forest else "log-odds"

    def note(self) -> str:
        return "SHAP values read exactly from the trees"

    def _build(self) -> None:
        import shap

        self._shap = shap.TreeExplainer(self.est)
        ev = np.atleast_1d(np.asarray(self._shap.expected_value, dtype="float64"))
        self._expected = float(ev[self.class_index()] if ev.size > 1 else ev[0])

    def _encoded_values(self, M: np.ndarray) -> np.ndarray:
        return tree_values(self._shap, self.est, M, self.space == "probability")


class LinearBackend(EncodedBackend):
    method = "linear"
    space = "log-odds"

    def note(self) -> str:
        return "SHAP values computed exactly from the model's weights"

    def _build(self) -> None:
        import shap

        s = self.setup
        X = s.X_ref if len(s.X_ref) <= LINEAR_BACKGROUND else sample_for_explanation(s.X_ref, s.y_ref,
                                                                                      LINEAR_BACKGROUND, s.seed).X
        bg = np.asarray(self.pre.transform(X), dtype="float64")
        # the whole (bounded) background, not SHAP's default 100-row subsample: stable expected values
        self._shap = shap.LinearExplainer(self.est, shap.maskers.Independent(bg, max_samples=len(bg)))
        self._expected = float(np.ravel(self._shap.expected_value)[0])

    def _encoded_values(self, M: np.ndarray) -> Any:
        return self._shap.shap_values(M)


def _tree_chunk(est: Any, M: np.ndarray) -> np.ndarray:
    import shap

    return np.asarray(shap.TreeExplainer(est).shap_values(M, check_additivity=False), dtype="float64")


def tree_values(explainer: Any, est: Any, M: np.ndarray, forest: bool) -> np.ndarray:
    """TreeExplainer values; a random forest's (deep trees, about 0.1 s per user for 300 trees on one core) are
    computed in row chunks on all cores when there are many users."""
    cores = os.cpu_count() or 1
    if not forest or cores < 2 or len(M) < PARALLEL_TREE_ROWS:
        return np.asarray(explainer.shap_values(M, check_additivity=False), dtype="float64")
    from joblib import Parallel, delayed  # loaded with scikit-learn, which the forest being explained needs

    chunks = np.array_split(M, min(cores, max(2, len(M) // 100)))
    parts = Parallel(n_jobs=min(cores, len(chunks)))(delayed(_tree_chunk)(est, c) for c in chunks)
    return np.concatenate(parts, axis=0)
