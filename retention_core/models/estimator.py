"""The scikit-learn classifier every churn model of the product is: :class:`ChurnClassifier`.

A model says how it learns (``fit``) and its churn probability for each row (``_churn``, 1-D); this class makes it a
scikit-learn binary classifier: ``classes_ = [0, 1]`` (churned = 1), ``predict_proba`` of shape (n, 2),
``decision_function`` (the log-odds of churn, what scikit-learn's sigmoid calibration reads), ``predict``,
``get_params`` / ``set_params`` from the constructor's arguments and ``clone``. See :mod:`retention_core.models.base` for
the interface and the sequence columns of a model's input.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import special
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import NotFittedError

from retention_core.errors import ConfigError, ModelError

__all__ = ["CLASSES", "ChurnClassifier", "NotFittedModel", "as_frame"]

#: The classes of every churn model: retained = 0, churned = 1.
CLASSES = np.array([0, 1])
_LOGIT_EPS = 1e-15


class NotFittedModel(ModelError, NotFittedError):
    """A model asked to score before it learned: the product's ModelError, and scikit-learn's NotFittedError."""


class ChurnClassifier(ClassifierMixin, BaseEstimator):
    """A binary scikit-learn classifier of churn (class 1) from the per-user feature table.

    Subclasses implement ``fit`` (setting :attr:`classes_` with :meth:`_fitted_classes`) and ``_churn(X)``, the churn
    probability of each row; everything scikit-learn reads comes from here."""

    _calibrate_by_cv = False  # see retention_core.models.base

    def _churn(self, X: Any) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _fitted_classes(self) -> None:
        self.classes_ = CLASSES.copy()

    def predict_proba(self, X: Any) -> np.ndarray:
        """Probabilities of ``classes_`` (retained, churned) for every row: shape (n, 2), rows summing to 1."""
        if not self.__sklearn_is_fitted__():
            raise NotFittedModel(f"{type(self).__name__} is not fitted yet: call fit(X, y) first.")
        p = np.clip(np.asarray(self._churn(X), dtype="float64").reshape(-1), 0.0, 1.0)
        return np.column_stack([1.0 - p, p])

    def decision_function(self, X: Any) -> np.ndarray:
        """The log-odds of churn (positive: churned is the more likely class)."""
        p = self.predict_proba(X)[:, 1]
        return special.logit(np.clip(p, _LOGIT_EPS, 1.0 - _LOGIT_EPS))

    def predict(self, X: Any) -> np.ndarray:
        """The more likely class of each row (churned = 1 above a probability of 0.5)."""
        return CLASSES[(self.predict_proba(X)[:, 1] > 0.5).astype(int)]

    def __sklearn_is_fitted__(self) -> bool:
        return "classes_" in self.__dict__

    def set_params(self, **params: Any) -> "ChurnClassifier":
        valid = self._get_param_names()
        unknown = [k for k in params if k.split("__")[0] not in valid]
        if unknown:
            raise ConfigError(f"{type(self).__name__} has no setting {unknown[0]!r}; settings: {list(valid)}")
        return super().set_params(**params)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False  # churned or not
        tags.input_tags.allow_nan = True  # missing values are imputed inside the model
        tags.input_tags.string = True  # category columns hold text
        return tags

    def __setstate__(self, state: dict[str, Any]) -> None:
        # a model pickled before the models were scikit-learn classifiers has no classes_: give it the only ones
        super().__setstate__(state)
        if "classes_" not in self.__dict__ and any(k.endswith("_") and not k.startswith("_") for k in state):
            self._fitted_classes()


def as_frame(X: Any, model: str) -> pd.DataFrame:
    """``X`` as a DataFrame: itself, or an array's columns named ``x0, x1, ...``; ModelError when it is neither a
    table nor a matrix."""
    if isinstance(X, pd.DataFrame):
        return X
    try:
        values = np.asarray(X)
    except (TypeError, ValueError):
        values = None
    if values is None or values.ndim != 2:
        raise ModelError(f"{model} needs the per-user feature table (a pandas DataFrame or a 2-D array), got "
                         f"{type(X).__name__}.")
    return pd.DataFrame(values, columns=[f"x{i}" for i in range(values.shape[1])])
