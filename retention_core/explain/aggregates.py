"""SHAP values summed up for charts: importance over everyone, a beeswarm, a dependence plot, and mean |SHAP| per
segment against the whole population (the one computation behind :func:`segment_importance` and the segment heatmap
of :mod:`retention_core.segments`). Pure functions of DataFrames, aligned with the rows of the SHAP values.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from ..errors import ModelError
from .units import is_numeric
from ..models.base import MISSING_CATEGORY, category_text
from .wording import feature_label, format_number


def _numeric_values(s: pd.Series) -> np.ndarray | None:
    if s is None or not is_numeric(s):
        return None
    return pd.to_numeric(s, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def _aligned(X: pd.DataFrame | None, shap_df: pd.DataFrame) -> pd.DataFrame | None:
    if X is None:
        return None
    if len(X) != len(shap_df):
        raise ModelError(f"{len(X)} feature rows for {len(shap_df)} rows of SHAP values; they must match.")
    return X.set_axis(shap_df.index, axis=0)


def global_importance(shap_df: pd.DataFrame, X: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per feature, most important first: ``feature``, ``label`` (as charts show it), ``mean_abs_shap``,
    ``mean_shap`` and ``direction``: the rank correlation between the feature's value and its SHAP value (+1: higher
    values raise churn risk; -1: higher values lower it; empty for categories or when ``X`` is not given)."""
    X = _aligned(X, shap_df)
    rows = []
    for c in shap_df.columns:
        s = shap_df[c].to_numpy(dtype="float64")
        direction = float("nan")
        v = _numeric_values(X[c]) if X is not None and c in X.columns else None
        if v is not None:
            ok = np.isfinite(v) & np.isfinite(s)
            if ok.sum() > 2 and np.ptp(v[ok]) > 0 and np.ptp(s[ok]) > 0:
                rv = pd.Series(v[ok]).rank().to_numpy()
                rs = pd.Series(s[ok]).rank().to_numpy()
                direction = float(np.corrcoef(rv, rs)[0, 1])
        rows.append({"feature": c, "label": feature_label(c), "mean_abs_shap": float(np.nanmean(np.abs(s)))
                     if s.size else 0.0, "mean_shap": float(np.nanmean(s)) if s.size else 0.0,
                     "direction": direction})
    out = pd.DataFrame(rows, columns=["feature", "label", "mean_abs_shap", "mean_shap", "direction"])
    return out.sort_values("mean_abs_shap", ascending=False, kind="stable").reset_index(drop=True)


def beeswarm_data(shap_df: pd.DataFrame, X: pd.DataFrame, max_features: int = 15) -> pd.DataFrame:
    """Long table for a beeswarm chart: ``row`` (index of the user), ``feature``, ``label``, ``shap``, ``value``
    (the feature value scaled to 0..1 by rank within the feature; empty for categories and missing values) and
    ``value_text``; the ``max_features`` most important features, most important first."""
    X = _aligned(X, shap_df)
    top = global_importance(shap_df)["feature"].head(int(max_features)).tolist()
    parts = []
    for c in top:
        s = shap_df[c]
        raw = X[c] if c in X.columns else pd.Series(np.nan, index=shap_df.index)
        v = _numeric_values(raw)
        if v is not None:
            ranks = pd.Series(v).rank(pct=True, method="average").to_numpy()
            seen = np.isfinite(ranks).any()
            lo, hi = (np.nanmin(ranks) if seen else 0), (np.nanmax(ranks) if seen else 1)
            scaled = (ranks - lo) / (hi - lo) if hi > lo else np.where(np.isfinite(ranks), 0.5, np.nan)
            text = [(format_number(x) if np.isfinite(x) else "unknown") for x in v]
        else:
            scaled = np.full(len(s), np.nan)
            text = [("not recorded" if t == MISSING_CATEGORY else t) for t in category_text(raw)]
        parts.append(pd.DataFrame({"row": shap_df.index, "feature": c, "label": feature_label(c),
                                   "shap": s.to_numpy(dtype="float64"), "value": scaled, "value_text": text}))
    if not parts:
        return pd.DataFrame(columns=["row", "feature", "label", "shap", "value", "value_text"])
    return pd.concat(parts, ignore_index=True)


def dependence(shap_df: pd.DataFrame, X: pd.DataFrame, feature: str, color: str | None = None) -> pd.DataFrame:
    """Data for a dependence plot of one feature: ``value`` (the user's value, text for a category), ``shap``, and
    ``color`` (another feature's value) when asked; index aligned with ``shap_df``."""
    if feature not in shap_df.columns:
        raise ModelError(f"No SHAP values for {feature!r}; explained features are: {', '.join(shap_df.columns[:20])}.")
    X = _aligned(X, shap_df)
    raw = X[feature] if feature in X.columns else pd.Series(np.nan, index=shap_df.index)
    v = _numeric_values(raw)
    value = v if v is not None else category_text(raw)
    out = pd.DataFrame({"value": value, "shap": shap_df[feature].to_numpy(dtype="float64")}, index=shap_df.index)
    if color is not None:
        if color not in X.columns:
            raise ModelError(f"No column {color!r} to colour the dependence plot by.")
        cv = _numeric_values(X[color])
        out["color"] = cv if cv is not None else category_text(X[color])
    return out


class SegmentShap(NamedTuple):
    """Mean |SHAP| of each segment's users (``means``: segment x feature), ``users`` per segment, and the mean |SHAP|
    of the whole ``population`` per feature."""

    means: pd.DataFrame
    users: pd.Series
    population: pd.Series


def segment_mean_abs_shap(shap_df: pd.DataFrame, segments: Any, *, sort: bool = True,
                          as_text: bool = False) -> SegmentShap:
    """Mean |SHAP| per segment and feature, and of every row of ``shap_df`` (users with no segment count in the
    population only). ``segments`` is aligned with ``shap_df`` row for row; segments are named by their labels
    (``as_text``: by their labels' text), sorted (``sort``) or in order of first appearance."""
    seg = pd.Series(segments)
    if len(seg) != len(shap_df):
        raise ModelError(f"{len(seg)} segment labels for {len(shap_df)} users; they must match row for row.")
    absv = shap_df.abs().astype("float64")
    labels = pd.Series(seg.to_numpy(), index=shap_df.index)
    keep = labels.notna().to_numpy()
    names = labels[keep].astype(str) if as_text else labels[keep]
    grouped = absv[keep].groupby(names.to_numpy(), sort=sort)
    return SegmentShap(grouped.mean(), grouped.size(), absv.mean())
