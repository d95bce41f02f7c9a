"""An equal-weight average of several of the product's models.

Averaging the churn probabilities of models that err differently (a linear model, two tree ensembles and the BG/NBD
baseline) is steadier across cutoffs than any one of them, and costs nothing extra during training: the trainer
assembles it from members it has already fitted (:meth:`EnsembleModel.from_fitted`).
"""
from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pandas as pd

from retention_core.errors import ModelError

from . import for_population, make_model

DEFAULT_MEMBERS = ("logreg", "random_forest", "gbm", "bgnbd")


class EnsembleModel:
    def __init__(self, numeric: list[str] | None = None, categorical: list[str] | None = None,
                 horizon_days: float = 90, members: tuple[str, ...] = DEFAULT_MEMBERS):
        self.numeric = numeric
        self.categorical = categorical
        self.horizon_days = horizon_days
        self.members = members

    def get_params(self, deep: bool = False) -> dict:
        return {"numeric": self.numeric, "categorical": self.categorical, "horizon_days": self.horizon_days,
                "members": self.members}

    @classmethod
    def from_fitted(cls, fitted: dict[str, Any], **init: Any) -> "EnsembleModel":
        if len(fitted) < 2:
            raise ModelError(f"An ensemble needs at least two trained members, got {list(fitted)}.")
        model = cls(members=tuple(fitted), **init)
        model.members_ = dict(fitted)
        return model

    def fit(self, X: pd.DataFrame, y, **kw: Any) -> "EnsembleModel":
        fitted, errors = {}, {}
        for key in self.members:
            try:
                m = make_model(key, numeric=self.numeric, categorical=self.categorical, horizon_days=self.horizon_days)
                fitted[key] = m.fit(X, y, X_val=kw.get("X_val"), y_val=kw.get("y_val"))
            except ModelError as exc:
                errors[key] = str(exc)
        if len(fitted) < 2:
            raise ModelError(f"An ensemble needs at least two members that train on this data; failures: {errors}.")
        self.members_ = fitted
        self.errors_ = errors
        return self

    def for_population(self, X: pd.DataFrame) -> "EnsembleModel":
        """The ensemble with each member that learns from the scored population itself (BG/NBD) refitted on it."""
        if not hasattr(self, "members_"):
            raise ModelError("The ensemble is not fitted yet.")
        out = copy.copy(self)
        out.members_ = {k: for_population(m, X) for k, m in self.members_.items()}
        return out

    def member_probabilities(self, X: pd.DataFrame) -> dict[str, np.ndarray]:
        if not hasattr(self, "members_"):
            raise ModelError("The ensemble is not fitted yet.")
        return {k: np.asarray(m.predict_proba(X), dtype=float) for k, m in self.members_.items()}

    def predict_proba(self, X: pd.DataFrame, **kw: Any) -> np.ndarray:
        return np.mean(list(self.member_probabilities(X).values()), axis=0)
