"""The pre-trained sequence encoder's late fusion (``encoder``), explained in **log-odds**.

SHAP values are read exactly from the fused gradient boosting's trees over the aggregate features and the embedding
columns; the embedding's columns are summed into one unit, :data:`PATTERN_UNIT` (a customer's recent behaviour pattern
as the encoder reads it), so the aggregates and the embedding are weighed side by side.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ModelError
from ..models.base import with_sequences
from .backend import Backend, Setup
from .encoded import TreeBackend

PATTERN_UNIT = "recent behaviour pattern"


class FusedBackend(Backend):
    """Tree SHAP of the fused boosting, the embedding's columns summed into :data:`PATTERN_UNIT`."""

    method = "tree"
    space = "log-odds"

    def __init__(self, setup: Setup):
        super().__init__(setup)
        m = setup.model
        if not hasattr(m, "head_"):
            raise ModelError(f"{type(m).__name__} is not fitted yet: train it before explaining it.")
        head = m.head_
        X_bg = m.fused(with_sequences(setup.X_bg, setup.seq_bg))
        self.inner = TreeBackend(replace(setup, model=head, numeric=list(head.numeric_),
                                         categorical=list(head.categorical_), X_ref=X_bg, X_bg=X_bg, seq_bg=None,
                                         needs_sequences=False))
        pattern = set(m.embedding_columns)
        self._inner_units = list(self.inner.units)
        self.units = [u for u in self._inner_units if u not in pattern] + [PATTERN_UNIT]
        self._A = np.zeros((len(self._inner_units), len(self.units)))
        for i, u in enumerate(self._inner_units):
            self._A[i, self.units.index(PATTERN_UNIT if u in pattern else u)] = 1.0

    def expected_value(self) -> float:
        return self.inner.expected_value()

    def note(self) -> str:
        return (f"SHAP values read exactly from the trees; the encoder's embedding of each customer's recent events "
                f"counts as one input, the {PATTERN_UNIT}")

    def values(self, X: pd.DataFrame, sequences: Any) -> np.ndarray:
        return self.inner.values(self.setup.model.fused(with_sequences(X, sequences)), None) @ self._A

    def output(self, X: pd.DataFrame, sequences: Any) -> np.ndarray:
        return self.inner.output(self.setup.model.fused(with_sequences(X, sequences)), None)
