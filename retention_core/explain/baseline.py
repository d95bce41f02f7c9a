"""The baselines (recency rule, BG/NBD), and any other model that scores a table of columns, explained in
**probability** over their inputs: exact SHAP over the one to three inputs of a baseline with a small background,
permutation SHAP when a model reads more than six columns.

For BG/NBD, a background mix where days since the last purchase exceed the customer's age is clipped to the age (the
model cannot score impossible histories).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..models.base import churn_probability
from .backend import GameBackend, Setup
from .units import is_numeric

MAX_EXACT_UNITS = 6  # 2^6 coalitions per user and background user; above, permutations


class BaselineBackend(GameBackend):
    def __init__(self, setup: Setup):
        super().__init__(setup)
        self.units = self._columns()
        self.method = "exact" if len(self.units) <= MAX_EXACT_UNITS else "permutation"

    def _columns(self) -> list[str]:
        """The columns the model reads: BG/NBD reads the purchase days, first-to-last span (or recency) and age."""
        name = type(self.setup.model).__name__
        cols = set(self.setup.X_ref.columns)
        if name == "RecencyRule":
            return ["recency_days"]
        if name == "BGNBDModel":
            middle = "first_to_last_days" if "first_to_last_days" in cols or "recency_days" not in cols \
                else "recency_days"
            return ["repeat_purchases", middle, "tenure_days"]
        return [c for c in self.setup.numeric + self.setup.categorical if c in cols]

    def pool(self, X: pd.DataFrame, sequences: Any) -> dict[str, np.ndarray]:
        cols = {}
        for u in self.units:
            s = X[u]
            cols[u] = s.to_numpy(dtype="float64", na_value=np.nan) if is_numeric(s) else s.astype(object).to_numpy()
        return cols

    def predict_units(self, pool: dict[str, np.ndarray], Z: np.ndarray) -> np.ndarray:
        Z = np.asarray(Z).astype(np.int64)
        m = self.setup.model
        frame = pd.DataFrame({u: pool[u][Z[:, j]] for j, u in enumerate(self.units)})
        if type(m).__name__ == "BGNBDModel" and "tenure_days" in frame:
            # a mix of two users can be impossible (silent longer than a customer); clip to the customer's age
            for c in ("recency_days", "first_to_last_days"):
                if c in frame:
                    frame[c] = np.minimum(frame[c].to_numpy(dtype="float64"), frame["tenure_days"].to_numpy())
        return churn_probability(m, frame)
