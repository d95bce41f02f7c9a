"""The explainer of one fitted model: SHAP values computed lazily by the backend of its family and cached, effects in
percentage points of churn probability, each user's values of the readable units, and reasons in plain words.

The family is read once, when the explainer is built, and picks the :class:`~retention_core.explain.backend.Backend`
(:func:`backend_class`); everything after that asks the backend, never the family. An averaging ensemble is explained
as the average of its members' explanations (:class:`EnsembleExplainer`, chosen by :func:`make_explainer`).
"""
from __future__ import annotations

import hashlib
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import special

from ..errors import ModelError
from ..models import REGISTRY
from ..models.base import churn_probability
from .backend import Backend, Setup
from .baseline import BaselineBackend
from .encoded import LinearBackend, TreeBackend
from .sampling import sample_for_explanation
from .units import SequenceUnit, unit_values
from .wording import Reference, reason_texts

GRADIENT_SAMPLES = 64  # expected-gradients samples per user (background user and point on the line to the user)
DEEP_METHODS = ("gradient", "permutation")


def is_calibrated(model: Any) -> bool:
    """A calibration wrapper (its base model is explained; calibration is monotone and keeps the ranking)."""
    return hasattr(model, "base_") and hasattr(model, "calibrated_")


def model_family(model: Any, model_key: str | None) -> tuple[str, bool]:
    """(family, needs_sequences) of a model: from the registry by its key, else from what the model is."""
    spec = REGISTRY.get(model_key) if isinstance(model_key, str) else None
    if spec is not None:
        family, needs = spec.family, spec.needs_sequences
    elif hasattr(model, "model_inputs"):
        family, needs = "deep", bool(getattr(model, "needs_sequences", False))
    elif type(model).__name__ in ("RecencyRule", "BGNBDModel"):
        family, needs = "baseline", False
    elif type(model).__name__ == "LogisticModel":
        family, needs = "linear", False
    elif type(model).__name__ in ("RandomForestModel", "GradientBoostingModel"):
        family, needs = "tree", False
    else:
        family, needs = "other", False
    if family == "deep" and hasattr(model, "needs_sequences"):
        needs = bool(model.needs_sequences)
    return family, needs


def _sequences(sequences: Any) -> Any:
    """Weekly activity as float32; sequence inputs that also carry event tokens are kept whole."""
    return sequences if hasattr(sequences, "tokens") else np.asarray(sequences, dtype=np.float32)


def backend_class(family: str, deep_method: str = "gradient") -> type[Backend]:
    """The backend that explains a family: trees and linear models on their encoded matrix, neural models by
    expected gradients (or permutations), every other model by exact or permutation SHAP over its columns."""
    if family == "deep":
        from .deep import DeepBackend, GradientBackend  # loads the Keras helpers: only when a neural model is explained

        return GradientBackend if deep_method == "gradient" else DeepBackend
    return {"tree": TreeBackend, "linear": LinearBackend}.get(family, BaselineBackend)


def _columns(model: Any, numeric: Sequence[str] | None, categorical: Sequence[str] | None
             ) -> tuple[list[str], list[str]]:
    """The columns the model reports reading, then those given that it does not report."""
    num = list(getattr(model, "numeric_", None) or numeric or [])
    cat = list(getattr(model, "categorical_", None) or categorical or [])
    for c in list(numeric or []) + list(categorical or []):
        if c not in num and c not in cat:
            (cat if c in set(categorical or []) else num).append(c)
    return num, cat


def rows_digest(X: pd.DataFrame, sequences: Any) -> str:
    """A key for the cache of results: the rows, their index, the column names and the weekly activity."""
    h = hashlib.sha256()
    h.update(pd.util.hash_pandas_object(X, index=True).to_numpy().tobytes())
    h.update(",".join(map(str, X.columns)).encode())
    if sequences is not None:
        a = np.ascontiguousarray(np.asarray(sequences, dtype=np.float32))
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


class Explainer:
    """SHAP for one fitted model of the product, computed lazily and cached.

    ``X_background``: users that stand for "the population" (a bounded sample of them is the SHAP background) and
    give the reference values of the reasons (medians among retained users when ``reference_y`` holds their labels,
    churned = 1); ``sequences_background``: their weekly activity, for sequence models. ``background_size`` bounds the
    background; ``permutations`` is the number of forward-and-back permutations per user for neural models.

    Attributes: ``family``, ``method`` (``"tree" | "linear" | "gradient" | "permutation" | "exact"``), ``space``
    (``"log-odds"`` or ``"probability"``: the space of :meth:`shap_values` and :attr:`expected_value`), ``calibrated``
    (the model is a calibration wrapper and its base model is explained), ``units`` (readable units, the columns of
    :meth:`shap_values`), ``backend`` (how the values are computed), ``reference`` (:class:`Reference`).
    """

    def __init__(self, model: Any, model_key: str | None, X_background: pd.DataFrame, numeric: Sequence[str] | None,
                 categorical: Sequence[str] | None, *, sequences_background: Any = None, reference_y: Any = None,
                 reference_label: str | None = None, background_size: int | None = None, permutations: int = 2,
                 seed: int = 0, deep_method: str = "gradient", gradient_samples: int = GRADIENT_SAMPLES):
        if not isinstance(X_background, pd.DataFrame) or len(X_background) == 0:
            raise ModelError("Explanations need a non-empty table of background users.")
        self.model = model
        self.model_key = model_key
        self.calibrated = is_calibrated(model)
        self.explained_model = model.base_ if self.calibrated else model
        self.family, self.needs_sequences = model_family(self.explained_model, model_key)
        self.numeric, self.categorical = _columns(self.explained_model, numeric, categorical)
        self.seed = int(seed)
        self.permutations = max(1, int(permutations))
        if deep_method not in DEEP_METHODS:
            raise ModelError(f"deep_method must be 'gradient' or 'permutation', got {deep_method!r}.")
        self.deep_method = deep_method
        self.gradient_samples = max(1, int(gradient_samples))
        if self.needs_sequences and sequences_background is None:
            raise ModelError(f"{type(self.explained_model).__name__} reads weekly activity: pass "
                             "sequences_background= for the background users.")
        seq_bg = None if sequences_background is None else _sequences(sequences_background)
        yv = None if reference_y is None else np.asarray(reference_y, dtype="float64").ravel()
        self._X_ref, self._seq_ref, self._y_ref = X_background, seq_bg, yv
        self._reference_label = reference_label
        kind = backend_class(self.family, deep_method)
        if getattr(self.explained_model, "needs_events", False):  # the pre-trained encoder's late fusion
            from .fused import FusedBackend

            kind = FusedBackend
        if background_size is None:
            background_size = kind.default_background
        bg = sample_for_explanation(X_background, yv, n=max(1, int(background_size)), seed=self.seed)
        self._X_bg = bg.X.reset_index(drop=True)
        self.background_size = bg.size
        self.backend = kind(Setup(self.explained_model, self.numeric, self.categorical, X_background, yv, self._X_bg,
                                  None if seq_bg is None else seq_bg[bg.positions], self.needs_sequences, self.seed,
                                  self.permutations, self.gradient_samples))
        self.units, self.method, self.space = self.backend.units, self.backend.method, self.backend.space
        self.sequence_units: list[SequenceUnit] = self.backend.sequence_units
        self._cache: dict[str, pd.DataFrame] = {}
        self._reference: Reference | None = None

    @property
    def method_note(self) -> str:
        """One line for the screen, in the analyst's words: how the values were computed (no library or class
        names, no log-odds: every effect is shown in percentage points of churn probability)."""
        extra = "; the calibrated model is explained through its underlying model" if self.calibrated else ""
        return f"{self.backend.note()}{extra}."

    # -- results -----------------------------------------------------------------------------------------------------

    @property
    def expected_value(self) -> float:
        """The average model output the SHAP values start from, in :attr:`space` (log-odds or churn probability)."""
        return self.backend.expected_value()

    def shap_values(self, X: pd.DataFrame, sequences: Any = None) -> pd.DataFrame:
        """SHAP values, one column per readable unit, rows aligned with ``X`` (same index), in :attr:`space`."""
        if not isinstance(X, pd.DataFrame):
            raise ModelError(f"Explanations need the per-user feature table as a DataFrame, got {type(X).__name__}.")
        if self.needs_sequences:
            if sequences is None:
                raise ModelError(f"{type(self.explained_model).__name__} reads weekly activity: pass sequences= for "
                                 "the users to explain.")
            sequences = _sequences(sequences)
            if sequences.shape[0] != len(X):
                raise ModelError(f"sequences have {sequences.shape[0]} rows for {len(X)} users; they must match.")
        else:
            sequences = None
        key = rows_digest(X, sequences)
        if key not in self._cache:
            values = np.zeros((0, len(self.units))) if len(X) == 0 else self.backend.values(X, sequences)
            self._cache[key] = pd.DataFrame(values, index=X.index, columns=self.units)
        return self._cache[key].copy()

    def model_output(self, X: pd.DataFrame, sequences: Any = None) -> np.ndarray:
        """What the SHAP values add up to: the explained model's output in :attr:`space` (before calibration)."""
        return self.backend.output(X, sequences)

    def unit_values(self, X: pd.DataFrame, sequences: Any = None) -> pd.DataFrame:
        """Each user's value of each readable unit (the original columns; activity sums for sequence units)."""
        return unit_values(X, self.units, self.sequence_units, sequences)

    def effects_points(self, X: pd.DataFrame, sequences: Any = None) -> pd.DataFrame:
        """SHAP values in percentage points of churn probability (the probability the product shows, calibrated
        when the model is): a user's points add up to their churn probability minus the average one."""
        sv = self.shap_values(X, sequences)
        phi = sv.to_numpy(dtype="float64")
        total = phi.sum(axis=1)
        e = self.expected_value
        native = e + total
        to_p = (lambda z: special.expit(z)) if self.space == "log-odds" else (lambda z: np.clip(z, 0.0, 1.0))
        p, p0 = to_p(native), to_p(np.array([e]))[0]
        slope = p * (1 - p) if self.space == "log-odds" else np.ones_like(p)
        if self.calibrated:
            pc = self.model.calibration_map(np.clip(p, 0, 1))
            pc0 = float(self.model.calibration_map(np.array([p0]))[0])
            delta_cal = pc - pc0
            # keep the uncalibrated share-out where calibration is flat (it would hide every reason)
            use_cal = np.abs(delta_cal) > 1e-9
            delta = np.where(use_cal, delta_cal, p - p0)
        else:
            delta = p - p0
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(np.abs(total) > 1e-9, delta / total, slope)
        return pd.DataFrame(phi * scale[:, None] * 100.0, index=sv.index, columns=sv.columns)

    # -- reasons -----------------------------------------------------------------------------------------------------

    @property
    def reference(self) -> Reference:
        """Typical values for the reasons, from the background users (computed once) unless set."""
        if self._reference is None:
            values = self.unit_values(self._X_ref, self._seq_ref)
            self._reference = Reference.from_frame(values, self._y_ref, self.categorical, self._reference_label)
        return self._reference

    @reference.setter
    def reference(self, reference: Reference) -> None:
        self._reference = reference

    def reasons(self, X: pd.DataFrame, sequences: Any = None, n: int = 3) -> list[list[str]]:
        """Per user (in row order), up to ``n`` reasons that raise their churn risk, largest first."""
        pts = self.effects_points(X, sequences)
        values = self.unit_values(X, sequences)
        ref = self.reference
        out = []
        for i in range(len(X)):
            out.append(reason_texts(pts.iloc[i], values.iloc[i].to_dict(), ref, n=n, categorical=self.categorical))
        return out


class EnsembleExplainer(Explainer):
    """An averaging ensemble, explained as the average of its members' explanations.

    Each member's effects (in points of churn probability) add up to its probability minus its average one, so their
    mean adds up to the ensemble's probability minus its average one: additivity holds exactly in probability space.
    """

    def __init__(self, model: Any, model_key: str | None, X_background: pd.DataFrame, numeric: Sequence[str] | None,
                 categorical: Sequence[str] | None, **kw: Any):
        self.model = self.explained_model = model
        self.model_key = model_key
        self.calibrated = False
        self.family, self.needs_sequences = "ensemble", False
        self.members = {k: Explainer(m, k, X_background, numeric, categorical, **kw)
                        for k, m in model.members_.items()}
        first = next(iter(self.members.values()))
        self.numeric, self.categorical = first.numeric, first.categorical
        self.units = list(dict.fromkeys(u for e in self.members.values() for u in e.units))
        self.sequence_units = []
        self.method, self.space = "ensemble", "probability"
        self.background_size = first.background_size
        self._X_ref, self._seq_ref, self._y_ref = X_background, None, kw.get("reference_y")
        self._reference_label = kw.get("reference_label")
        self._reference = None
        self._cache = {}

    @property
    def method_note(self) -> str:
        from ..models import model_label

        parts = "; ".join(f"{model_label(k)}: {e.backend.note()}" for k, e in self.members.items())
        return f"average of the members' explanations ({parts})."

    @property
    def expected_value(self) -> float:
        vals = []
        for e in self.members.values():
            ev = e.expected_value
            vals.append(float(special.expit(ev)) if e.space == "log-odds" else ev)
        return float(np.mean(vals))

    def effects_points(self, X: pd.DataFrame, sequences: Any = None) -> pd.DataFrame:
        total = pd.DataFrame(0.0, index=X.index, columns=self.units)
        for e in self.members.values():
            total = total.add(e.effects_points(X).reindex(columns=self.units, fill_value=0.0), fill_value=0.0)
        return total / len(self.members)

    def shap_values(self, X: pd.DataFrame, sequences: Any = None) -> pd.DataFrame:
        return self.effects_points(X) / 100.0

    def model_output(self, X: pd.DataFrame, sequences: Any = None) -> np.ndarray:
        return churn_probability(self.model, X)


def make_explainer(model: Any, model_key: str | None, X_background: pd.DataFrame, numeric: Sequence[str] | None,
                   categorical: Sequence[str] | None, **kw: Any) -> Explainer:
    """The right explainer for any model of the product (an ensemble is explained through its members)."""
    if hasattr(model, "members_") and not is_calibrated(model):
        return EnsembleExplainer(model, model_key, X_background, numeric, categorical, **kw)
    return Explainer(model, model_key, X_background, numeric, categorical, **kw)
