"""The training reference a run keeps for drift monitoring: each feature's bins, read from the rows the models
learned from, and the share of those rows in each bin (and the same for each model's churn probability).

Training computes it (:func:`training_reference`) and saves it with the run; monitoring
(:mod:`retention_core.monitor.drift`) puts new users in the same bins and measures the PSI. It lives below both, so
training never imports monitoring.

Bins, all read from the reference:

- numbers: cut points at the reference deciles (10%, 20% ... 90%, each an observed value: the ``lower`` quantile),
  plus one just below the reference minimum; duplicate cut points are dropped. Bins are closed on the right,
  ``(c[i-1], c[i]]``; the first is open to minus infinity (values below the training range), the last to plus infinity
  (values above the 90% decile). Ties: a value that fills several deciles (60% of users with no order last week) is
  one bin of its own. A feature constant in the reference has three bins: below, at and above the constant.
- categories: one bin per reference category (the ``MAX_CATEGORIES`` most frequent), and ``(other)`` for the rest and
  for categories the reference never saw.
- missing values: a bin of their own, on both sides.

A reference is stored compactly (cut points or categories and shares per feature, JSON-ready), so a run can carry the
distribution of its training rows without the rows (:func:`training_reference`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

MAX_CATEGORIES = 20
DECILES = tuple(i / 10 for i in range(1, 10))
OTHER, MISSING = "(other)", "(missing)"
#: Reference rows kept when a training reference is built (a seeded sample above this).
REFERENCE_ROWS = 100_000


def is_categorical(values) -> bool:
    s = pd.Series(values) if not isinstance(values, pd.Series) else values
    return not (pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype))


def _numbers(values) -> np.ndarray:
    s = pd.Series(values) if not isinstance(values, pd.Series) else values
    return pd.to_numeric(s, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def numeric_edges(values) -> list[float]:
    """The cut points of a numeric feature from its reference values (see the module docstring)."""
    v = _numbers(values)
    v = v[np.isfinite(v)]
    if not len(v):
        return []
    cuts = np.quantile(v, DECILES, method="lower")
    low = np.nextafter(v.min(), -np.inf)
    return [float(c) for c in np.unique(np.concatenate([[low], cuts]))]


def numeric_shares(values, edges: list[float]) -> tuple[np.ndarray, float, int]:
    """(shares of the ``len(edges) + 1`` bins, share missing, rows) of numeric values; shares are of all rows."""
    v = _numbers(values)
    n = len(v)
    if not n:
        return np.zeros(len(edges) + 1), 0.0, 0
    ok = np.isfinite(v)
    idx = np.searchsorted(np.asarray(edges, dtype=float), v[ok], side="left")
    counts = np.bincount(idx, minlength=len(edges) + 1)
    return counts / n, float((~ok).sum() / n), n


def _texts(values) -> tuple[np.ndarray, np.ndarray]:
    s = pd.Series(values) if not isinstance(values, pd.Series) else values
    missing = s.isna().to_numpy()
    return s.astype(object).where(~missing, "").astype(str).to_numpy(), missing


def categorical_reference(values) -> dict:
    txt, missing = _texts(values)
    n = len(txt)
    counts = pd.Series(txt[~missing]).value_counts()
    counts = counts.sort_index().sort_values(ascending=False, kind="stable")
    cats = [str(c) for c in counts.index[:MAX_CATEGORIES]]
    shares = [float(counts[c] / n) for c in cats] if n else []
    other = float(counts.iloc[MAX_CATEGORIES:].sum() / n) if n else 0.0
    return {"kind": "categorical", "categories": cats, "shares": shares, "other": other,
            "missing": float(missing.sum() / n) if n else 0.0, "n": int(n)}


def categorical_shares(values, categories: list[str]) -> tuple[np.ndarray, float, float, int]:
    """(shares per reference category, share in other categories, share missing, rows)."""
    txt, missing = _texts(values)
    n = len(txt)
    if not n:
        return np.zeros(len(categories)), 0.0, 0.0, 0
    counts = pd.Series(txt[~missing]).value_counts()
    shares = np.array([counts.get(c, 0) for c in categories], dtype=float) / n
    other = float((n - missing.sum()) / n - shares.sum())
    return shares, max(other, 0.0), float(missing.sum() / n), n


def feature_reference(values, *, categorical: bool | None = None) -> dict:
    """The compact reference of one feature: its bins and the share of the reference rows in each."""
    categorical = is_categorical(values) if categorical is None else categorical
    if categorical:
        return categorical_reference(values)
    edges = numeric_edges(values)
    shares, missing, n = numeric_shares(values, edges)
    return {"kind": "numeric", "edges": edges, "shares": [float(x) for x in shares], "missing": missing, "n": int(n)}


def _sample(frame: pd.DataFrame, scores: dict, limit: int, seed: int) -> tuple[pd.DataFrame, dict]:
    if len(frame) <= limit:
        return frame, scores
    keep = np.sort(np.random.default_rng(seed).choice(len(frame), size=limit, replace=False))
    return frame.iloc[keep], {k: np.asarray(v)[keep] for k, v in scores.items()}


def training_reference(X: pd.DataFrame, numeric: list[str], categorical: list[str], scores: dict | None = None, *,
                       source: str = "training rows", limit: int = REFERENCE_ROWS, seed: int = 0,
                       rows: int | None = None) -> dict:
    """The compact reference a run keeps for drift monitoring: per feature its bins and shares, and per model the
    bins and shares of its churn probability on the same rows (a seeded sample of ``limit`` rows above that).
    ``rows`` is the number of rows ``X`` was sampled from, when it is a sample already."""
    rows = int(rows if rows is not None else len(X))
    X, scores = _sample(X, dict(scores or {}), limit, seed)
    feats = {c: feature_reference(X[c], categorical=False) for c in numeric if c in X.columns}
    feats.update({c: feature_reference(X[c], categorical=True) for c in categorical if c in X.columns})
    return {"format": 1, "source": source, "rows": int(rows), "sampled": int(len(X)), "features": feats,
            "scores": {k: feature_reference(np.asarray(v, dtype=float), categorical=False) for k, v in scores.items()}}
