"""Preprocessing of the per-user feature table for the product's scikit-learn and neural models.

:func:`make_preprocessor` builds the ``ColumnTransformer`` from raw per-user columns to a dense float matrix (numeric:
signed log of heavy-tailed columns, clipping to the training range, median imputation with missing indicators,
scaling; categorical: text, then one-hot or ordinal codes); :func:`infer_columns` picks the numeric and categorical
feature columns of a table. The transformers follow scikit-learn's conventions so a fitted pipeline pickles and scores
a table with extra columns.
"""
from __future__ import annotations

import warnings
import weakref
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from retention_core.errors import ConfigError, ModelError

from .base import MISSING_CATEGORY, OTHER_CATEGORY, category_text, is_sequence_column

__all__ = [
    "CategoryText",
    "MAX_CATEGORIES",
    "MIN_CATEGORY_COUNT",
    "MISSING_CATEGORY",
    "NON_FEATURES",
    "OTHER_CATEGORY",
    "QuantileClip",
    "SignedLog1p",
    "infer_columns",
    "make_preprocessor",
    "one_hot_name",
]

# Columns the product uses as identifiers or labels: never model inputs.
NON_FEATURES = frozenset({"user_id", "snapshot_date", "churned"})
# A category seen fewer times than this in training is grouped with the other rare values.
MIN_CATEGORY_COUNT = 5
MAX_CATEGORIES = 30


def _as_float_matrix(X: Any) -> np.ndarray:
    """Numeric input as a float64 matrix; text that is not a number and +-inf become NaN (treated as missing)."""
    if isinstance(X, pd.DataFrame) and all(pd.api.types.is_numeric_dtype(t) and not pd.api.types.is_bool_dtype(t)
                                           for t in X.dtypes):
        out = X.to_numpy(dtype="float64", na_value=np.nan, copy=True)  # one copy of the block, not one per column
    elif isinstance(X, pd.DataFrame):
        cols = []
        for c in X.columns:
            s = X[c]
            if not pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype):
                s = pd.to_numeric(s.astype("object"), errors="coerce")
            cols.append(s.to_numpy(dtype="float64", na_value=np.nan))
        out = np.column_stack(cols) if cols else np.empty((len(X), 0))
    else:
        out = np.array(X, dtype="float64", copy=True)
        if out.ndim == 1:
            out = out.reshape(-1, 1)
    out[~np.isfinite(out)] = np.nan
    return out


def _skewness(v: np.ndarray) -> float:
    v = v[np.isfinite(v)]
    if v.size < 3:
        return 0.0
    sd = v.std()
    if sd == 0:
        return 0.0
    return float(np.mean(((v - v.mean()) / sd) ** 3))


class SignedLog1p(TransformerMixin, BaseEstimator):
    """``sign(x) * log1p(|x|)`` on the heavy-tailed, non-negative columns (decided at fit by skewness).

    A column is transformed when, at fit, its smallest value is >= 0, it has more than two distinct values and its
    skewness exceeds ``skew_threshold`` (counts, amounts and durations usually do). The signed form keeps a negative
    value seen only at scoring time finite. ``enabled=False`` passes values through. Every input is returned as
    float64 with +-inf and non-numeric text turned into NaN, so the imputer after it sees missing values only.

    Learned state: ``log_columns_`` (bool mask), ``n_features_in_``, ``feature_names_in_`` (when fitted on a frame).
    """

    def __init__(self, skew_threshold: float = 1.0, enabled: bool = True):
        self.skew_threshold = skew_threshold
        self.enabled = enabled

    def fit(self, X: Any, y: Any = None) -> "SignedLog1p":
        M = _as_float_matrix(X)
        self.n_features_in_ = M.shape[1]
        if isinstance(X, pd.DataFrame):
            self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
        mask = np.zeros(M.shape[1], dtype=bool)
        if self.enabled:
            for j in range(M.shape[1]):
                v = M[:, j]
                v = v[~np.isnan(v)]
                if v.size and v.min() >= 0 and np.unique(v[:10_000]).size > 2:
                    mask[j] = _skewness(v) > self.skew_threshold
        self.log_columns_ = mask
        return self

    def transform(self, X: Any) -> np.ndarray:
        M = _as_float_matrix(X)
        if M.shape[1] != self.n_features_in_:
            raise ModelError(f"Expected {self.n_features_in_} numeric column(s), got {M.shape[1]}.")
        m = self.log_columns_
        if m.any():
            M[:, m] = np.sign(M[:, m]) * np.log1p(np.abs(M[:, m]))
        return M

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        if input_features is not None:
            return np.asarray(input_features, dtype=object)
        if hasattr(self, "feature_names_in_"):
            return self.feature_names_in_.copy()
        return np.asarray([f"x{i}" for i in range(self.n_features_in_)], dtype=object)


class QuantileClip(TransformerMixin, BaseEstimator):
    """Each numeric column clipped to its ``[low, high]`` quantiles at fit (missing values pass through).

    Lifetime totals grow with the length of a user's history, so a snapshot scored later in a log holds values beyond
    any seen in training; a linear model extrapolates them without bound, a tree does not. Clipping to the training
    range keeps a linear score as far as the training data supports and no further. ``enabled=False`` passes values
    through. Learned state: ``low_``, ``high_`` (per column; NaN where a column had no values).
    """

    def __init__(self, low: float = 0.005, high: float = 0.995, enabled: bool = True):
        self.low = low
        self.high = high
        self.enabled = enabled

    def fit(self, X: Any, y: Any = None) -> "QuantileClip":
        M = _as_float_matrix(X)
        self.n_features_in_ = M.shape[1]
        if isinstance(X, pd.DataFrame):
            self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-missing columns
            q = np.nanquantile(M, [self.low, self.high], axis=0) if M.size else np.empty((2, M.shape[1]))
        self.low_, self.high_ = q[0], q[1]
        return self

    def transform(self, X: Any) -> np.ndarray:
        M = _as_float_matrix(X)
        if M.shape[1] != self.n_features_in_:
            raise ModelError(f"Expected {self.n_features_in_} numeric column(s), got {M.shape[1]}.")
        if self.enabled:
            lo = np.where(np.isnan(self.low_), -np.inf, self.low_)
            hi = np.where(np.isnan(self.high_), np.inf, self.high_)
            np.clip(M, lo, hi, out=M)  # NaN stays NaN
        return M

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return SignedLog1p.get_feature_names_out(self, input_features)


class CategoryText(TransformerMixin, BaseEstimator):
    """Categorical input as text: every value as a string, missing values as ``"(missing)"``.

    Codes stored as whole floats (``3.0``) are written as ``"3"`` so a column read as numbers in one file and as text
    in another still matches.
    """

    def fit(self, X: Any, y: Any = None) -> "CategoryText":
        frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X, dtype=object))
        self.n_features_in_ = frame.shape[1]
        if isinstance(X, pd.DataFrame):
            self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
        return self

    def transform(self, X: Any) -> np.ndarray:
        frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X, dtype=object))
        if frame.shape[1] != self.n_features_in_:
            raise ModelError(f"Expected {self.n_features_in_} categorical column(s), got {frame.shape[1]}.")
        out = np.empty(frame.shape, dtype=object)
        for j in range(frame.shape[1]):
            out[:, j] = category_text(frame.iloc[:, j])
        return out

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        if input_features is not None:
            return np.asarray(input_features, dtype=object)
        if hasattr(self, "feature_names_in_"):
            return self.feature_names_in_.copy()
        return np.asarray([f"x{i}" for i in range(self.n_features_in_)], dtype=object)


def one_hot_name(feature: str, category: Any) -> str:
    """Name of a one-hot column: ``country=UK``; rare and unseen values share ``country=(other)``."""
    cat = OTHER_CATEGORY if str(category) == "infrequent_sklearn" else str(category)
    return f"{feature}={cat}"


_ENCODINGS = ("onehot", "ordinal")


def make_preprocessor(
    numeric: list[str],
    categorical: list[str],
    *,
    scale: bool = True,
    log_heavy: bool = True,
    encoding: str = "onehot",
    skew_threshold: float = 1.0,
    clip: bool = False,
) -> ColumnTransformer:
    """ColumnTransformer from raw per-user columns to a dense float matrix.

    * numeric: :class:`SignedLog1p` on heavy-tailed non-negative columns (when ``log_heavy``), median imputation with
      a missing indicator for each column that had missing values at fit, then standard scaling (when ``scale``;
      for linear and neural models);
    * categorical: text (missing -> ``"(missing)"``), then ``encoding="onehot"`` (rare values, seen fewer than 5 times,
      and values unseen at fit go to ``<col>=(other)``; at most 30 columns per feature) or ``encoding="ordinal"``
      (one code per value, rare values share a code, unseen values -> -1), for tree models.

    Columns not named are dropped, so the fitted transformer scores a table with extra columns.
    """
    if encoding not in _ENCODINGS:
        raise ConfigError(f"encoding must be one of {list(_ENCODINGS)}, got {encoding!r}.")
    numeric, categorical = list(numeric or []), list(categorical or [])
    overlap = sorted(set(numeric) & set(categorical))
    if overlap:
        raise ConfigError(f"Column(s) {overlap} are listed as both numeric and categorical; pick one.")
    if not numeric and not categorical:
        raise ConfigError("No feature columns to model: numeric and categorical are both empty.")
    transformers = []
    if numeric:
        steps: list[tuple[str, Any]] = [
            ("log", SignedLog1p(skew_threshold=skew_threshold, enabled=log_heavy)),
            ("clip", QuantileClip(enabled=clip)),
            ("impute", SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)),
        ]
        if scale:
            steps.append(("scale", StandardScaler()))
        transformers.append(("num", Pipeline(steps), numeric))
    if categorical:
        if encoding == "onehot":
            enc = OneHotEncoder(
                handle_unknown="infrequent_if_exist",
                min_frequency=MIN_CATEGORY_COUNT,
                max_categories=MAX_CATEGORIES,
                sparse_output=False,
                dtype=np.float64,
                feature_name_combiner=one_hot_name,
            )
        else:
            enc = OrdinalEncoder(
                handle_unknown="use_encoded_value",
                unknown_value=-1,
                encoded_missing_value=-1,
                min_frequency=MIN_CATEGORY_COUNT,
                max_categories=MAX_CATEGORIES,
                dtype=np.float64,
            )
        transformers.append(("cat", Pipeline([("text", CategoryText()), ("encode", enc)]), categorical))
    return ColumnTransformer(transformers, remainder="drop", sparse_threshold=0.0, verbose_feature_names_out=False)


def infer_columns(
    X: pd.DataFrame, numeric: list[str] | None = None, categorical: list[str] | None = None
) -> tuple[list[str], list[str]]:
    """The (numeric, categorical) feature columns: the lists given, or inferred from dtypes.

    Inference skips ``user_id``, ``snapshot_date``, ``churned``, date columns and weekly activity columns (``seq:...``);
    numbers are numeric, text, categories and booleans are categorical. A list that is given is checked against the
    table.
    """
    if numeric is None and categorical is None:
        num, cat = [], []
        for c in X.columns:
            if c in NON_FEATURES or is_sequence_column(c):
                continue
            dt = X[c].dtype
            if pd.api.types.is_datetime64_any_dtype(dt) or isinstance(dt, pd.PeriodDtype):
                continue
            if pd.api.types.is_bool_dtype(dt) or not pd.api.types.is_numeric_dtype(dt):
                cat.append(c)
            else:
                num.append(c)
    else:
        given = set(numeric or []) | set(categorical or [])
        num = list(numeric) if numeric is not None else []
        cat = list(categorical) if categorical is not None else []
        # one list given: the other holds the remaining columns of its kind
        if numeric is None:
            num = [c for c in infer_columns(X)[0] if c not in given]
        if categorical is None:
            cat = [c for c in infer_columns(X)[1] if c not in given]
    missing = [c for c in num + cat if c not in X.columns]
    if missing:
        raise ModelError(
            f"The feature table lacks the column(s) {', '.join(repr(c) for c in missing[:10])}"
            f"{' ...' if len(missing) > 10 else ''}; it has {', '.join(repr(str(c)) for c in list(X.columns)[:15])}"
            f"{' ...' if X.shape[1] > 15 else ''}."
        )
    if not num and not cat:
        raise ModelError("The feature table has no feature columns (only identifiers, dates or the label).")
    return num, cat


# --------------------------------------------------------------------------------------------------------------------
# the same transform, for a few rows
# --------------------------------------------------------------------------------------------------------------------
#: Tables of up to this many rows go through :func:`transform_rows`'s compiled form (larger ones through the
#: ColumnTransformer: its fixed cost is then small against the work).
SMALL_ROWS = 5_000
_COMPILED: "weakref.WeakKeyDictionary[ColumnTransformer, Any]" = weakref.WeakKeyDictionary()
_UNSEEN = "\x00(unseen value)"


def transform_rows(pre: ColumnTransformer, X: pd.DataFrame) -> np.ndarray:
    """``pre.transform(X)``, the same numbers, without the ColumnTransformer's fixed cost for a few rows.

    Scoring one user through a fitted ColumnTransformer costs about 3 ms, nearly all of it checks, column selection
    and dispatch; the arithmetic is microseconds. For the transformers :func:`make_preprocessor` builds, the fitted
    state is read once into plain arrays and lookups (:class:`_Compiled`): numeric columns go through the product's
    own log and clip steps, then the imputer's and scaler's arithmetic as scikit-learn writes it; each categorical
    value maps to the row the fitted encoder gives it. The compiled form is checked against ``pre.transform`` on a
    table covering every category, missing and unseen values and awkward numbers before it is used; any difference
    (or a transformer it does not know) keeps the ColumnTransformer.
    """
    if len(X) > SMALL_ROWS or not isinstance(X, pd.DataFrame):
        return pre.transform(X)
    try:
        fast = _COMPILED[pre]
    except KeyError:
        fast = _COMPILED[pre] = _compile(pre)
    if fast is None or not fast.has_columns(X):
        return pre.transform(X)
    return fast.transform(X)


class _Compiled:
    """A fitted ColumnTransformer as arrays: numeric steps and categorical lookups (see :func:`transform_rows`)."""

    def __init__(self, parts: list[tuple[str, list[str], Any]]):
        self.parts = parts  # ("num", columns, steps) or ("cat", columns, [(lookup, table, unknown row)])
        self.columns = [c for _, cols, _ in parts for c in cols]

    def has_columns(self, X: pd.DataFrame) -> bool:
        return all(c in X.columns for c in self.columns)

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        blocks = []
        for kind, cols, steps in self.parts:
            if kind == "num":
                blocks.append(_numeric(X[cols], steps))
            else:
                for c, (lookup, table, unknown) in zip(cols, steps):
                    rows = [lookup.get(t, unknown) for t in category_text(X[c])]
                    blocks.append(table[rows])
        return np.hstack(blocks) if blocks else np.zeros((len(X), 0))


def _numeric(X: pd.DataFrame, steps: list) -> np.ndarray:
    """The numeric pipeline's output: the product's log and clip steps, then the imputer's and the scaler's
    arithmetic exactly as scikit-learn computes it (fill each missing cell with its column's statistic, append the
    missing-value indicators as 0/1 columns; subtract the mean, divide by the scale)."""
    M = None
    for step in steps:
        if isinstance(step, (SignedLog1p, QuantileClip)):
            M = step.transform(X if M is None else M)
        elif isinstance(step, SimpleImputer):
            M = _as_float_matrix(X) if M is None else M
            missing = np.isnan(M)
            filled = np.where(missing, step.statistics_.astype(np.float64), M)
            if step.add_indicator:
                features = step.indicator_.features_
                filled = np.hstack((filled, missing[:, features] if len(features) < M.shape[1] else missing))
            M = filled
        else:  # StandardScaler
            M = _as_float_matrix(X) if M is None else M.copy()
            if step.with_mean:
                M -= step.mean_
            if step.with_std:
                M /= step.scale_
    return M


def _compile(pre: ColumnTransformer) -> _Compiled | None:
    """The compiled form of a fitted ColumnTransformer made by :func:`make_preprocessor`, checked against it; None when
    it holds something else or the check finds a difference."""
    parts = []
    for name, trans, cols in getattr(pre, "transformers_", []):
        if name == "remainder" and trans == "drop":
            continue
        if not isinstance(trans, Pipeline) or not all(isinstance(c, str) for c in cols):
            return None
        steps = [s for _, s in trans.steps]
        if all(isinstance(s, (SignedLog1p, QuantileClip, SimpleImputer, StandardScaler)) for s in steps):
            if any(isinstance(s, SimpleImputer) and not (isinstance(s.missing_values, float)
                                                         and np.isnan(s.missing_values)) for s in steps):
                return None  # an imputer of another marker than NaN: not what make_preprocessor builds
            parts.append(("num", list(cols), steps))
        elif len(steps) == 2 and isinstance(steps[0], CategoryText) and isinstance(steps[1], (OneHotEncoder,
                                                                                           OrdinalEncoder)):
            lookups = _category_lookups(steps[1], len(cols))
            if lookups is None:
                return None
            parts.append(("cat", list(cols), lookups))
        else:
            return None
    fast = _Compiled(parts)
    return fast if _agrees(pre, fast) else None


def _category_lookups(enc: OneHotEncoder | OrdinalEncoder, n: int) -> list | None:
    """Per categorical column: {category text: row}, the table of encoded rows (one per category, then the row of a
    value unseen at fit) and the unseen row's index, read from the fitted encoder's own output."""
    cats = getattr(enc, "categories_", None)
    if cats is None or len(cats) != n or not all(len(c) for c in cats):
        return None
    longest = max(len(c) for c in cats)
    grid = np.empty((longest + 1, n), dtype=object)
    for j, c in enumerate(cats):
        grid[:longest, j] = [c[i] if i < len(c) else c[0] for i in range(longest)]
        grid[longest, j] = _UNSEEN
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # unseen values are what the last row is for
            out = np.asarray(enc.transform(grid), dtype=np.float64)
        widths = [1] * n if isinstance(enc, OrdinalEncoder) else [int(w) for w in enc._n_features_outs]
    except (ValueError, AttributeError, TypeError):
        return None
    if sum(widths) != out.shape[1]:
        return None
    bounds = np.cumsum([0, *widths])
    lookups = []
    for j, c in enumerate(cats):
        block = out[:, bounds[j]:bounds[j + 1]]
        table = np.vstack([block[:len(c)], block[longest:]])
        lookups.append(({str(v): i for i, v in enumerate(c)}, table, len(c)))
    return lookups


def _agrees(pre: ColumnTransformer, fast: _Compiled) -> bool:
    """Whether the compiled form gives exactly ``pre.transform``'s numbers on a table with every category of every
    column, missing, blank and unseen values, and numbers of every kind (0, negative, fractional, huge, infinite,
    missing)."""
    numbers = [np.nan, 0.0, 1.0, -1.0, 0.5, 3.0, 7.25, 1e9, -1e9, np.inf, -np.inf, 1e-300, 2.0**60]
    texts = {}
    for kind, cols, steps in fast.parts:
        if kind == "cat":
            for c, (lookup, _, _) in zip(cols, steps):
                texts[c] = [*lookup, None, "", " ", _UNSEEN, 3.0]
    n = max([len(numbers), *(len(v) for v in texts.values())])
    table = {}
    for j, c in enumerate(fast.columns):
        if c in texts:
            table[c] = np.array([texts[c][(i + j) % len(texts[c])] for i in range(n)], dtype=object)
        else:
            table[c] = np.array([numbers[(i + j) % len(numbers)] for i in range(n)], dtype=np.float64)
    check = pd.DataFrame(table)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want, got = np.asarray(pre.transform(check)), fast.transform(check)
    except (ValueError, TypeError, KeyError, IndexError):
        return False
    return want.dtype == got.dtype and want.shape == got.shape and bool(np.array_equal(want, got, equal_nan=True))
