"""The one interface every model family is explained through, and the Shapley "game" over readable units that the
model-agnostic families share.

A :class:`Backend` is built once per explainer, from a :class:`Setup`, and says which readable ``units`` it explains,
in which ``space`` (``"log-odds"`` or ``"probability"``) and by which ``method``; it gives the ``expected_value()``
the values start from and the ``values(X, sequences)`` of a block of users (one column per unit). The
:class:`~retention_core.explain.explainer.Explainer` caches, converts to points and words; it never asks which
family it explains.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import numpy as np
import pandas as pd
from scipy import special

from ..models.base import churn_probability, with_sequences
from .sampling import DEFAULT_BACKGROUND
from .units import SequenceUnit


@dataclass(frozen=True)
class Setup:
    """What a backend is built from: the explained ``model`` (a calibrated model's base), its ``numeric`` and
    ``categorical`` columns, the reference users (``X_ref``, labels ``y_ref``), the bounded background sample
    (``X_bg``, weekly activity ``seq_bg``), and the settings of the methods."""

    model: Any
    numeric: list[str]
    categorical: list[str]
    X_ref: pd.DataFrame
    y_ref: np.ndarray | None
    X_bg: pd.DataFrame
    seq_bg: np.ndarray | None
    needs_sequences: bool
    seed: int
    permutations: int
    gradient_samples: int


class Backend(ABC):
    """SHAP values of one fitted model, by the method of its family."""

    method: str  # "tree" | "linear" | "gradient" | "permutation" | "exact"
    space: str = "probability"  # the space of values() and expected_value(): "log-odds" or "probability"
    default_background: ClassVar[int] = DEFAULT_BACKGROUND

    def __init__(self, setup: Setup):
        self.setup = setup
        self.units: list[str] = []
        self.sequence_units: list[SequenceUnit] = []  # units of weekly activity (sequence models only)
        self._expected: float | None = None

    @property
    def background_size(self) -> int:
        return len(self.setup.X_bg)

    @abstractmethod
    def expected_value(self) -> float:
        """The average model output the values start from, in :attr:`space`."""

    @abstractmethod
    def values(self, X: pd.DataFrame, sequences: Any) -> np.ndarray:
        """SHAP values of the users of ``X`` (at least one), one column per unit, in :attr:`space`."""

    @abstractmethod
    def note(self) -> str:
        """How the values are computed, in a few words for the screen."""

    def output(self, X: pd.DataFrame, sequences: Any) -> np.ndarray:
        """What the values add up to: the model's output in :attr:`space`."""
        p = churn_probability(self.setup.model, with_sequences(X, sequences if self.setup.needs_sequences else None))
        if self.space == "log-odds":
            return special.logit(np.clip(p, 1e-12, 1 - 1e-12))
        return p


def background_ids(B: int, U: int) -> np.ndarray:
    """Pool ids of ``B`` background users for each of ``U`` units (row ``b`` takes every unit from user ``b``)."""
    return np.repeat(np.arange(B, dtype=float)[:, None], U, axis=1)


class GameBackend(Backend):
    """Model-agnostic SHAP over the readable units: a masked input takes each unit either from the user or from a
    background user, and the model scores the assembled rows. ``method`` ``"exact"`` scores every coalition
    (:func:`exact_shapley`); ``"permutation"`` runs ``shap.PermutationExplainer`` with ``permutations`` forward-and-back
    permutations per user (each one exactly additive; more of them lower the noise).

    Subclasses say how users become a ``pool`` of model inputs and how rows assembled from it are scored."""

    @abstractmethod
    def pool(self, X: pd.DataFrame, sequences: Any) -> Any:
        """The users' model inputs, from which masked inputs are assembled by row id."""

    @abstractmethod
    def predict_units(self, pool: Any, Z: np.ndarray) -> np.ndarray:
        """Model output for rows whose unit ``u`` takes its value from pool row ``Z[:, u]``."""

    def expected_value(self) -> float:
        if self._expected is None:
            bg = self.pool(self.setup.X_bg, self.setup.seq_bg)
            self._expected = float(np.mean(self.predict_units(bg, background_ids(self.background_size,
                                                                                  len(self.units)))))
        return float(self._expected)

    def note(self) -> str:
        if self.method == "exact":
            return f"exact SHAP values over the model's inputs ({self.background_size} background users)"
        return (f"permutation SHAP over readable features ({self.setup.permutations} permutation(s), "
                f"{self.background_size} background users)")

    def values(self, X: pd.DataFrame, sequences: Any) -> np.ndarray:
        s = self.setup
        n, U, B = len(X), len(self.units), self.background_size
        X_all = pd.concat([X.reset_index(drop=True), s.X_bg], ignore_index=True)
        seq_all = None
        if s.needs_sequences:
            seq_all = np.concatenate([np.asarray(sequences, dtype=np.float32), s.seq_bg], axis=0)
        pool = self.pool(X_all, seq_all)

        def f(Z: np.ndarray) -> np.ndarray:
            return self.predict_units(pool, Z)

        if self.method == "exact":
            values, base = exact_shapley(f, n, U, B)
        else:
            values, base = _permutation_shapley(f, n, U, B, s.permutations, s.seed)
        if self._expected is None and base is not None:
            self._expected = base
        return values


def _permutation_shapley(f: Callable[[np.ndarray], np.ndarray], n: int, U: int, B: int, permutations: int,
                         seed: int) -> tuple[np.ndarray, float | None]:
    """``shap.PermutationExplainer`` over pool ids: users ``0..n-1``, background users ``n..n+B-1``."""
    import shap

    masker = shap.maskers.Independent(background_ids(B, U) + n, max_samples=max(B, 1))
    rows = np.repeat(np.arange(n, dtype=float)[:, None], U, axis=1)
    explainer = shap.PermutationExplainer(f, masker, seed=seed)
    result = explainer(rows, max_evals=permutations * (2 * U + 1), silent=True)
    values = np.asarray(result.values, dtype="float64").reshape(n, U)
    base = np.asarray(result.base_values, dtype="float64").reshape(-1)
    return values, float(base[0]) if base.size else None


def exact_shapley(f: Callable[[np.ndarray], np.ndarray], n: int, U: int, B: int,
                  max_rows: int = 400_000) -> tuple[np.ndarray, float]:
    """Exact (interventional) Shapley values of ``n`` users over ``U`` units, all users at once: every coalition is
    scored on every (user, background user) pair, pool ids ``0..n-1`` for users and ``n..n+B-1`` for background.
    Same definition as ``shap.ExactExplainer`` with an independent masker, without its per-user overhead (the
    baselines have 1-3 inputs, so 2-8 coalitions)."""
    masks = np.array([[(m >> u) & 1 for u in range(U)] for m in range(2 ** U)], dtype=bool)
    v = np.empty((2 ** U, n))
    step = max(1, max_rows // max(B, 1))
    for start in range(0, n, step):
        users = np.arange(start, min(n, start + step))
        user_ids = np.repeat(users, B).astype(float)  # (users x B)
        bg = np.tile(np.arange(B) + n, len(users)).astype(float)
        for k, mask in enumerate(masks):
            Z = np.where(mask[None, :], user_ids[:, None], bg[:, None])
            v[k, users] = np.asarray(f(Z), dtype="float64").reshape(len(users), B).mean(axis=1)
    size = masks.sum(axis=1)
    weights = np.array([math.factorial(s) * math.factorial(U - s - 1) / math.factorial(U) if s < U else 0.0
                        for s in size])
    phi = np.zeros((n, U))
    for k, mask in enumerate(masks):
        for u in range(U):
            if not mask[u]:
                with_u = k | (1 << u)
                phi[:, u] += weights[k] * (v[with_u] - v[k])
    return phi, float(v[0].mean())
