"""The users SHAP is computed on: a bounded sample, stratified by outcome, that keeps the rows in their order.

The same sampling picks the background users every explainer compares a user with ("the population"), so both stay
small whatever the size of the table; the page says so next to each chart (:attr:`ExplanationSample.note`).
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from ..errors import ModelError

DEFAULT_SAMPLE = 1000  # users explained on a page
DEFAULT_BACKGROUND = 50  # background users of the tree, linear and baseline explainers
DEEP_BACKGROUND = 20  # neural models pay per background user and unit: theirs is smaller


class ExplanationSample(NamedTuple):
    """The users SHAP is computed on: ``X`` (and ``y``) of the sample, ``positions`` (row positions in the full table,
    to slice sequences), ``n_total`` (users in the full table)."""

    X: pd.DataFrame
    y: np.ndarray | None
    positions: np.ndarray
    n_total: int

    @property
    def size(self) -> int:
        return int(len(self.positions))

    @property
    def note(self) -> str:
        """What to say on screen next to a SHAP chart."""
        if self.size >= self.n_total:
            return f"Explanations computed on all {self.n_total:,} users."
        how = "stratified by outcome" if self.y is not None else "random"
        return f"Explanations computed on a {how} sample of {self.size:,} of {self.n_total:,} users."


def sample_for_explanation(X: pd.DataFrame, y: Any = None, n: int = DEFAULT_SAMPLE, seed: int = 0
                           ) -> ExplanationSample:
    """At most ``n`` rows of ``X``, stratified by label when ``y`` is given (each label keeps its share, and at least
    one row when it has any); rows keep their original order. Labels that are missing form their own stratum."""
    total = len(X)
    n = int(n)
    if n < 1:
        raise ModelError(f"The explanation sample needs at least 1 user, got n={n!r}.")
    yv = None if y is None else np.asarray(y, dtype="float64").ravel()
    if yv is not None and yv.size != total:
        raise ModelError(f"{yv.size} labels for {total} users; they must match row for row.")
    rng = np.random.default_rng(seed)
    if total <= n:
        pos = np.arange(total)
    elif yv is None:
        pos = np.sort(rng.choice(total, size=n, replace=False))
    else:
        keys = np.where(np.isnan(yv), -1.0, yv)
        groups = [np.flatnonzero(keys == k) for k in np.unique(keys)]
        quota = _quotas(np.array([len(g) for g in groups], dtype=float), total, n)
        pos = np.sort(np.concatenate([rng.choice(g, size=q, replace=False) for g, q in zip(groups, quota)]))
    Xs = X.iloc[pos]
    return ExplanationSample(Xs, None if yv is None else yv[pos], pos, total)


def _quotas(sizes: np.ndarray, total: int, n: int) -> np.ndarray:
    """Rows to draw from each stratum: its share of ``n``, at least one, never more than it has or ``n`` in all."""
    quota = np.maximum(1, np.floor(sizes / total * n)).astype(int)
    quota = np.minimum(quota, sizes.astype(int))
    # hand out what flooring left over to the largest remainders, never above n in all
    rest = n - int(quota.sum())
    order = np.argsort(-(sizes / total * n - np.floor(sizes / total * n)))
    for k in order:
        if rest <= 0:
            break
        if quota[k] < sizes[k]:
            quota[k] += 1
            rest -= 1
    while quota.sum() > n:
        quota[int(np.argmax(quota))] -= 1
    return quota
