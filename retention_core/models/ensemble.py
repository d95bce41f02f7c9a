"""An equal-weight average of several of the product's models: scikit-learn's soft-voting ``VotingClassifier``.

Averaging the churn probabilities of models that err differently (a linear model, two tree ensembles and the BG/NBD
baseline) is steadier across cutoffs than any one of them, and costs nothing extra during training: the trainer
assembles it from members it has already fitted (:meth:`EnsembleModel.from_fitted`, each member frozen with
scikit-learn's ``FrozenEstimator`` so that the vote does not fit it again).
"""
from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import VotingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import Bunch

from retention_core.errors import ModelError

from . import for_population, make_model
from .base import Progress, churn_probability
from .estimator import CLASSES

DEFAULT_MEMBERS = ("logreg", "random_forest", "gbm", "bgnbd")


def default_members(numeric: list[str] | None = None, categorical: list[str] | None = None, horizon_days: float = 90,
                    members: tuple[str, ...] = DEFAULT_MEMBERS) -> list[tuple[str, Any]]:
    """``(key, unfitted model)`` for each member, as the registry builds them."""
    return [(k, make_model(k, numeric=numeric, categorical=categorical, horizon_days=horizon_days)) for k in members]


class EnsembleModel(VotingClassifier):
    """Soft voting (the mean of the members' class probabilities) over ``estimators``: ``(key, model)`` pairs.

    ``members_`` names each fitted member by its key (the model itself, unwrapped from a ``FrozenEstimator``)."""

    def __init__(self, estimators: list[tuple[str, Any]], *, voting: str = "soft", weights: Any = None,
                 n_jobs: int | None = None, flatten_transform: bool = True, verbose: bool = False):
        super().__init__(estimators, voting=voting, weights=weights, n_jobs=n_jobs,
                         flatten_transform=flatten_transform, verbose=verbose)

    @classmethod
    def from_fitted(cls, fitted: dict[str, Any], X: pd.DataFrame, y: Any) -> "EnsembleModel":
        """The vote of members already fitted (``key -> model``), none fitted again; ``X, y``: rows they learned
        from (the vote reads only the classes of ``y``)."""
        if len(fitted) < 2:
            raise ModelError(f"An ensemble needs at least two trained members, got {list(fitted)}.")
        model = cls([(k, FrozenEstimator(m)) for k, m in fitted.items()])
        return model.fit(X, np.asarray(y, dtype=float).astype(int))

    def fit(self, X: pd.DataFrame, y: Any, *, progress: Progress | None = None, **fit_params: Any) -> "EnsembleModel":
        return super().fit(X, np.asarray(y, dtype=float).astype(int), **fit_params)

    @property
    def members_(self) -> dict[str, Any]:
        if "named_estimators_" not in self.__dict__:
            raise AttributeError("members_")
        return {k: m.estimator if isinstance(m, FrozenEstimator) else m for k, m in self.named_estimators_.items()}

    def for_population(self, X: pd.DataFrame) -> "EnsembleModel":
        """The ensemble with each member that learns from the scored population itself (BG/NBD) refitted on it."""
        if "named_estimators_" not in self.__dict__:
            raise ModelError("The ensemble is not fitted yet.")
        adapted = {k: for_population(m, X) for k, m in self.members_.items()}
        if all(adapted[k] is m for k, m in self.members_.items()):
            return self
        out = copy.copy(self)
        out.estimators_ = [FrozenEstimator(m) for m in adapted.values()]
        out.named_estimators_ = Bunch(**dict(zip(adapted, out.estimators_)))
        return out

    def member_probabilities(self, X: pd.DataFrame) -> dict[str, np.ndarray]:
        """Each member's churn probability."""
        if "named_estimators_" not in self.__dict__:
            raise ModelError("The ensemble is not fitted yet.")
        return {k: churn_probability(m, X) for k, m in self.members_.items()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "members_" in state and "estimators_" not in state:  # saved before the ensemble was scikit-learn's
            members = state["members_"]
            frozen = [FrozenEstimator(m) for m in members.values()]
            state = {"estimators": list(zip(members, frozen)), "voting": "soft", "weights": None, "n_jobs": None,
                     "flatten_transform": True, "verbose": False, "estimators_": frozen,
                     "named_estimators_": Bunch(**dict(zip(members, frozen))), "le_": LabelEncoder().fit(CLASSES),
                     "classes_": CLASSES.copy()}
        super().__setstate__(state)
