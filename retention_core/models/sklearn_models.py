"""scikit-learn churn models: logistic regression, random forest, gradient boosting, and a calibration wrapper.

Each model keeps preprocessing and estimator in one fitted ``Pipeline(ColumnTransformer, estimator)`` (``pipeline_``)
so that a saved run scores the raw per-user feature table: columns are picked by name, extra columns are ignored,
missing values, unseen categories and heavy-tailed amounts are handled inside the pipeline.

Model interface (shared by every model of the product)::

    model.fit(X, y, *, sequences=None, X_val=None, y_val=None, seq_val=None, progress=None) -> model
    model.predict_proba(X, *, sequences=None) -> np.ndarray      # 1-D churn probability (churned = 1)

Learned state of the three scikit-learn models: ``pipeline_`` (the fitted Pipeline, steps ``"preprocess"`` and
``"model"``), ``numeric_`` / ``categorical_`` (the columns used), ``feature_names_out_`` (names of the encoded columns
the estimator sees, in order: numeric columns, then ``missingindicator_<col>`` for numeric columns that had missing
values at fit, then one-hot columns named ``<col>=<value>`` with ``(missing)`` and ``(other)`` for missing and rare or
unseen values, or, with ordinal encoding, one column per categorical), ``n_train_``.
"""
from __future__ import annotations

import copy
import math
import time
import warnings
from typing import Any, Callable

import numpy as np
import pandas as pd
from scipy import special
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from retention_core.errors import ConfigError, ModelError

from .baselines import _ParamsMixin

__all__ = [
    "CalibratedModel",
    "CategoryText",
    "GradientBoostingModel",
    "LogisticModel",
    "RandomForestModel",
    "SignedLog1p",
    "infer_columns",
    "make_preprocessor",
]

MISSING_CATEGORY = "(missing)"
OTHER_CATEGORY = "(other)"
# Columns the product uses as identifiers or labels: never model inputs.
NON_FEATURES = frozenset({"user_id", "snapshot_date", "churned"})
# A category seen fewer times than this in training is grouped with the other rare values.
MIN_CATEGORY_COUNT = 5
MAX_CATEGORIES = 30

Progress = Callable[[float, str], Any]


# --------------------------------------------------------------------------------------------------------------------
# preprocessing
# --------------------------------------------------------------------------------------------------------------------


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


def category_text(s: pd.Series) -> np.ndarray:
    """Each value as category text (``3.0`` -> ``"3"``, blank or missing -> ``"(missing)"``), cleaned once per distinct
    value, so scoring a million users costs a handful of string operations, not a million."""
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    clean = np.empty(len(uniques) + 1, dtype=object)
    for i, v in enumerate(np.asarray(uniques, dtype=object)):
        if isinstance(v, float) and v.is_integer():
            clean[i] = str(int(v))
        else:
            text = str(v).strip()
            clean[i] = text if text else MISSING_CATEGORY
    clean[-1] = MISSING_CATEGORY  # the code -1 (missing) reads the last entry
    return clean[codes]


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

    Inference skips ``user_id``, ``snapshot_date``, ``churned`` and date columns; numbers are numeric, text, categories
    and booleans are categorical. A list that is given is checked against the table.
    """
    if numeric is None and categorical is None:
        num, cat = [], []
        for c in X.columns:
            if c in NON_FEATURES:
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
# shared checks
# --------------------------------------------------------------------------------------------------------------------


def check_frame(X: Any, model: str) -> pd.DataFrame:
    if not isinstance(X, pd.DataFrame):
        raise ModelError(f"{model} needs the per-user feature table as a pandas DataFrame, got {type(X).__name__}.")
    return X


def check_labels(y: Any, n: int, model: str, *, both_classes: bool = True) -> np.ndarray:
    """Labels as a float 0/1 vector (churned = 1)."""
    if y is None:
        raise ModelError(f"{model} needs labels (churned = 1, stayed = 0) to train.")
    try:
        yv = np.asarray(y, dtype="float64").ravel()
    except (TypeError, ValueError):
        raise ModelError(f"{model}: labels must be 0/1 (churned = 1).") from None
    if yv.size != n:
        raise ModelError(f"{model}: {yv.size} labels for {n} users; they must match row for row.")
    if np.isnan(yv).any():
        raise ModelError(f"{model}: {int(np.isnan(yv).sum())} label(s) are missing; train on labelled rows only.")
    bad = ~np.isin(yv, (0.0, 1.0))
    if bad.any():
        raise ModelError(f"{model}: labels must be 0/1 (churned = 1), found {yv[bad][0]!r}.")
    if both_classes and yv.min() == yv.max():
        raise ModelError(
            f"{model}: every label is {int(yv[0])}; a model needs both churned and retained users."
        )
    return yv


def _report(progress: Progress | None, fraction: float, message: str) -> None:
    if progress is not None:
        progress(float(fraction), message)


# --------------------------------------------------------------------------------------------------------------------
# scikit-learn models
# --------------------------------------------------------------------------------------------------------------------


class _SklearnModel(_ParamsMixin):
    """Common fit/predict of the Pipeline-based models; subclasses give the estimator and preprocessing options."""

    _calibrate_by_cv = True  # cheap enough to refit a few times for cross-validated calibration
    _label = "model"
    # Rows per block when scoring a large table (None: all at once). Boosted trees read every row once per tree, so
    # blocks that stay in the processor's cache score about 1.4x faster than one pass over a table in main memory,
    # and the encoded copy of the table never exceeds one block.
    _block_rows: int | None = None

    def _estimator(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _preprocessing(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _fit_pipeline(self, pipe: Pipeline, X: pd.DataFrame, y: np.ndarray, X_val: Any, y_val: Any) -> None:
        pipe.fit(X, y)

    def fit(
        self,
        X: pd.DataFrame,
        y: Any,
        *,
        sequences: Any = None,
        X_val: pd.DataFrame | None = None,
        y_val: Any = None,
        seq_val: Any = None,
        progress: Progress | None = None,
        **kw: Any,
    ) -> "_SklearnModel":
        name = type(self).__name__
        X = check_frame(X, name)
        yv = check_labels(y, len(X), name)
        num, cat = infer_columns(X, self.numeric, self.categorical)
        pipe = Pipeline([("preprocess", make_preprocessor(num, cat, **self._preprocessing())),
                         ("model", self._estimator())])
        _report(progress, 0.0, f"{self._label}: fitting on {len(X):,} rows")
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            self._fit_pipeline(pipe, X, yv, X_val, y_val)
        self.converged_ = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
        self.pipeline_ = pipe
        self.numeric_, self.categorical_ = num, cat
        self.feature_names_out_ = [str(n) for n in pipe.named_steps["preprocess"].get_feature_names_out()]
        self.n_train_ = len(X)
        self.fit_seconds_ = time.perf_counter() - t0
        _report(progress, 1.0, f"{self._label}: done in {self.fit_seconds_:.1f} s")
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "pipeline_"):
            raise ModelError(f"{type(self).__name__} is not fitted yet: call fit(X, y) first.")

    def predict_proba(self, X: pd.DataFrame, *, sequences: Any = None, **kw: Any) -> np.ndarray:
        self._check_fitted()
        X = check_frame(X, type(self).__name__)
        if len(X) == 0:
            return np.empty(0, dtype="float64")
        missing = [c for c in self.numeric_ + self.categorical_ if c not in X.columns]
        if missing:
            raise ModelError(
                f"{type(self).__name__}: the table to score lacks the column(s) "
                f"{', '.join(repr(c) for c in missing[:10])}{' ...' if len(missing) > 10 else ''} used in training."
            )
        k = list(self.pipeline_.classes_).index(1.0)
        if not self._block_rows or len(X) <= self._block_rows:
            return np.asarray(self._proba(X)[:, k], dtype="float64")
        n = self._block_rows
        return np.concatenate([self._proba(X.iloc[s:s + n])[:, k] for s in range(0, len(X), n)]).astype("float64")

    def _proba(self, X: pd.DataFrame) -> np.ndarray:
        """Class probabilities of the fitted pipeline for a block of rows."""
        return self.pipeline_.predict_proba(X)

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        """The encoded matrix the estimator sees (columns named by ``feature_names_out_``)."""
        self._check_fitted()
        return self.pipeline_.named_steps["preprocess"].transform(check_frame(X, type(self).__name__))


def _check_choice(model: str, name: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise ConfigError(f"{model}: {name} must be one of {list(choices)}, got {value!r}.")


def _check_number(model: str, name: str, value: Any, *, low: float | None = None, high: float | None = None,
                  integer: bool = False, strict_low: bool = False, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if ok:
        ok = math.isfinite(float(value))
    if ok and integer:
        ok = float(value).is_integer()
    if ok and low is not None:
        ok = value > low if strict_low else value >= low
    if ok and high is not None:
        ok = value <= high
    if not ok:
        kind = "a whole number" if integer else "a number"
        rng = ""
        if low is not None:
            rng = f" {'>' if strict_low else '>='} {low:g}"
        if high is not None:
            rng += f"{' and' if rng else ''} <= {high:g}"
        raise ConfigError(f"{model}: {name} must be {kind}{rng}{' or None' if allow_none else ''}, got {value!r}.")


class LogisticModel(_SklearnModel):
    """Regularised logistic regression on scaled, log-transformed numeric columns and one-hot categoricals.

    ``penalty``: ``"l2"`` (lbfgs solver), ``"l1"`` (liblinear) or ``"elasticnet"`` (saga, mixing ``l1_ratio``).
    ``C`` is the inverse regularisation strength. ``converged_`` says whether the solver met its tolerance.
    """

    _param_names = ("numeric", "categorical", "penalty", "C", "l1_ratio", "class_weight", "max_iter", "log_all",
                    "clip")
    _label = "logistic regression"
    PENALTIES = ("l2", "l1", "elasticnet")

    def __init__(self, numeric: list[str] | None = None, categorical: list[str] | None = None, *,
                 penalty: str = "l2", C: float = 0.1, l1_ratio: float = 0.5, class_weight: str | None = "balanced",
                 max_iter: int = 1000, log_all: bool = True, clip: bool = True):
        self.numeric = numeric
        self.categorical = categorical
        self.penalty = penalty
        self.C = C
        self.l1_ratio = l1_ratio
        self.class_weight = class_weight
        self.max_iter = max_iter
        self.log_all = log_all
        self.clip = clip

    def _estimator(self) -> Any:
        from sklearn.linear_model import LogisticRegression

        name = type(self).__name__
        _check_choice(name, "penalty", self.penalty, self.PENALTIES)
        _check_choice(name, "class_weight", self.class_weight, ("balanced", None))
        _check_number(name, "C", self.C, low=0, strict_low=True)
        _check_number(name, "l1_ratio", self.l1_ratio, low=0, high=1)
        _check_number(name, "max_iter", self.max_iter, low=1, integer=True)
        if self.penalty == "l2":
            ratio, solver = 0.0, "lbfgs"
        elif self.penalty == "l1":
            ratio, solver = 1.0, "liblinear"
        else:
            ratio, solver = float(self.l1_ratio), "saga"
        return LogisticRegression(C=float(self.C), l1_ratio=ratio, solver=solver, class_weight=self.class_weight,
                                  max_iter=int(self.max_iter), random_state=0)

    def _preprocessing(self) -> dict[str, Any]:
        # log_all: every non-negative count, amount and duration on a log scale (a linear score then reads ratios:
        # 2 orders against 1 weighs as 20 against 10), not only the most skewed ones
        return {"scale": True, "log_heavy": True, "encoding": "onehot", "clip": bool(self.clip),
                "skew_threshold": -np.inf if self.log_all else 1.0}

    def coefficients(self) -> pd.Series:
        """Coefficient per encoded column (on the scaled inputs), largest effect first."""
        self._check_fitted()
        coef = self.pipeline_.named_steps["model"].coef_.ravel()
        s = pd.Series(coef, index=self.feature_names_out_, name="coefficient")
        return s.reindex(s.abs().sort_values(ascending=False).index)


class RandomForestModel(_SklearnModel):
    """Random forest on ordinal-encoded categoricals and imputed numeric columns (no scaling or log needed).

    ``max_samples`` (share of rows drawn for each tree, None = as many as there are rows) trades a little accuracy
    for time and size: fitting time and the saved model grow with it about linearly. ``max_tree_rows`` caps the rows
    drawn for one tree whatever the share (None = no cap): on 1M rows, 30% would be 300,000 rows per tree; the cap of
    100,000 made the fit 2.7x faster (297 s to 111 s on 1M rows, 2 cores), and it does not bind below
    333,000 rows at the default share.
    """

    _param_names = ("numeric", "categorical", "n_estimators", "max_depth", "min_samples_leaf", "class_weight",
                    "n_jobs", "random_state", "max_samples", "max_tree_rows")
    _label = "random forest"

    def __init__(self, numeric: list[str] | None = None, categorical: list[str] | None = None, *,
                 n_estimators: int = 300, max_depth: int | None = None, min_samples_leaf: int = 5,
                 class_weight: str | None = "balanced_subsample", n_jobs: int | None = -1, random_state: int = 0,
                 max_samples: float | None = None, max_tree_rows: int | None = None):
        self.numeric = numeric
        self.categorical = categorical
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.class_weight = class_weight
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.max_samples = max_samples
        self.max_tree_rows = max_tree_rows

    def _estimator(self) -> Any:
        from sklearn.ensemble import RandomForestClassifier

        name = type(self).__name__
        _check_number(name, "n_estimators", self.n_estimators, low=1, integer=True)
        _check_number(name, "max_depth", self.max_depth, low=1, integer=True, allow_none=True)
        _check_number(name, "min_samples_leaf", self.min_samples_leaf, low=1, integer=True)
        _check_choice(name, "class_weight", self.class_weight, ("balanced_subsample", "balanced", None))
        _check_number(name, "max_samples", self.max_samples, low=0, high=1, strict_low=True, allow_none=True)
        _check_number(name, "max_tree_rows", self.max_tree_rows, low=1, integer=True, allow_none=True)
        return RandomForestClassifier(
            n_estimators=int(self.n_estimators),
            max_depth=None if self.max_depth is None else int(self.max_depth),
            min_samples_leaf=int(self.min_samples_leaf),
            max_features="sqrt",
            class_weight=self.class_weight,
            n_jobs=self.n_jobs,
            random_state=self.random_state,
            max_samples=None if self.max_samples is None else float(self.max_samples),
        )

    def _preprocessing(self) -> dict[str, Any]:
        return {"scale": False, "log_heavy": False, "encoding": "ordinal"}

    def _fit_pipeline(self, pipe: Pipeline, X: pd.DataFrame, y: np.ndarray, X_val: Any, y_val: Any) -> None:
        share = 1.0 if self.max_samples is None else float(self.max_samples)
        if self.max_tree_rows is not None and share * len(X) > self.max_tree_rows:
            pipe.set_params(model__max_samples=int(self.max_tree_rows))  # a number of rows, not a share
        pipe.fit(X, y)


class GradientBoostingModel(_SklearnModel):
    """Histogram gradient boosting on ordinal-encoded categoricals (codes as numbers, so SHAP's tree explainer works).

    With ``early_stopping=True`` it stops adding trees when the log-loss on a validation set stops improving: on
    ``X_val, y_val`` when ``fit`` gets them, else on 10% of the training rows. ``n_iter_`` is the number of trees kept.
    """

    _param_names = ("numeric", "categorical", "learning_rate", "max_iter", "max_leaf_nodes", "min_samples_leaf",
                    "l2_regularization", "early_stopping", "class_weight", "random_state")
    _label = "gradient boosting"

    def __init__(self, numeric: list[str] | None = None, categorical: list[str] | None = None, *,
                 learning_rate: float = 0.05, max_iter: int = 300, max_leaf_nodes: int = 15,
                 min_samples_leaf: int = 100, l2_regularization: float = 1.0, early_stopping: bool = True,
                 class_weight: str | None = None, random_state: int = 0):
        self.numeric = numeric
        self.categorical = categorical
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.early_stopping = early_stopping
        self.class_weight = class_weight
        self.random_state = random_state

    def _estimator(self) -> Any:
        from sklearn.ensemble import HistGradientBoostingClassifier

        name = type(self).__name__
        _check_number(name, "learning_rate", self.learning_rate, low=0, high=1, strict_low=True)
        _check_number(name, "max_iter", self.max_iter, low=1, integer=True)
        _check_number(name, "max_leaf_nodes", self.max_leaf_nodes, low=2, integer=True)
        _check_number(name, "min_samples_leaf", self.min_samples_leaf, low=1, integer=True)
        _check_number(name, "l2_regularization", self.l2_regularization, low=0)
        _check_choice(name, "early_stopping", self.early_stopping, (True, False))
        _check_choice(name, "class_weight", self.class_weight, ("balanced", None))
        return HistGradientBoostingClassifier(
            learning_rate=float(self.learning_rate),
            max_iter=int(self.max_iter),
            max_leaf_nodes=int(self.max_leaf_nodes),
            min_samples_leaf=int(self.min_samples_leaf),
            l2_regularization=float(self.l2_regularization),
            early_stopping=bool(self.early_stopping),
            class_weight=self.class_weight,
            categorical_features=None,  # categoricals arrive as ordinal codes; native categories defeat SHAP
            random_state=self.random_state,
        )

    _block_rows = 32_768

    def _preprocessing(self) -> dict[str, Any]:
        return {"scale": False, "log_heavy": False, "encoding": "ordinal"}

    def _proba(self, X: pd.DataFrame) -> np.ndarray:
        proba = _binned_proba(self.pipeline_.named_steps["model"], self.pipeline_[:-1].transform(X))
        return proba if proba is not None else self.pipeline_.predict_proba(X)

    def _fit_pipeline(self, pipe: Pipeline, X: pd.DataFrame, y: np.ndarray, X_val: Any, y_val: Any) -> None:
        if not (self.early_stopping and X_val is not None and y_val is not None and len(X_val) > 0):
            pipe.fit(X, y)
            return
        name = type(self).__name__
        X_val = check_frame(X_val, name)
        yv_val = check_labels(y_val, len(X_val), f"{name} (validation)", both_classes=False)
        pre, est = pipe.named_steps["preprocess"], pipe.named_steps["model"]
        Xt = pre.fit_transform(X, y)
        est.fit(Xt, y, X_val=pre.transform(X_val), y_val=yv_val)

    @property
    def n_iter_(self) -> int:
        self._check_fitted()
        return int(self.pipeline_.named_steps["model"].n_iter_)

    def refit_settings(self, scale: float = 1.0) -> dict[str, Any]:
        """Settings for a refit on ``scale`` times as many rows without validation rows: the number of trees early
        stopping kept, scaled with the rows (more rows carry more trees before they overfit), run in full."""
        return {"max_iter": max(1, int(round(self.n_iter_ * max(1.0, float(scale))))), "early_stopping": False}


def _binned_proba(est: Any, Z: np.ndarray) -> np.ndarray | None:
    """The fitted HistGradientBoosting's probabilities for the encoded rows ``Z``, through its binned trees; None when
    this scikit-learn lacks the internals used (the caller then predicts the plain way).

    Each tree then reads one byte per feature (the value's bin) instead of eight, so a block of rows stays in the
    processor's cache: about 2.4x faster on 200,000 rows. The result is the same, not an approximation: a split at bin
    ``b`` sends ``x`` left exactly when ``x <= threshold[b]``, which is when ``x`` falls in bin ``b`` or below (the
    test suite compares both ways).
    """
    try:
        from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

        categorical = getattr(est, "is_categorical_", None)
        if categorical is not None and np.any(categorical):
            return None  # native categories are never used here (see _estimator), but their bins differ
        binned = est._bin_mapper.transform(np.ascontiguousarray(Z, dtype=np.float64))
        raw = np.zeros((len(Z), est.n_trees_per_iteration_), dtype=est._baseline_prediction.dtype, order="F")
        raw += est._baseline_prediction
        est._predict_iterations(binned, est._predictors, raw, True, _openmp_effective_n_threads())
        return est._loss.predict_proba(raw)
    except (AttributeError, TypeError, ImportError):
        return None


# --------------------------------------------------------------------------------------------------------------------
# calibration
# --------------------------------------------------------------------------------------------------------------------


_EPS = 1e-6


class _Sigmoid:
    """Platt scaling on the logit of the base probability: ``p' = expit(a * logit(p) + b)``."""

    def fit(self, p: np.ndarray, y: np.ndarray) -> "_Sigmoid":
        from sklearn.linear_model import LogisticRegression

        z = special.logit(np.clip(p, _EPS, 1 - _EPS)).reshape(-1, 1)
        lr = LogisticRegression(C=1e4, solver="lbfgs", max_iter=1000).fit(z, y)
        self.a_, self.b_ = float(lr.coef_.ravel()[0]), float(lr.intercept_.ravel()[0])
        return self

    def predict(self, p: np.ndarray) -> np.ndarray:
        return special.expit(self.a_ * special.logit(np.clip(p, _EPS, 1 - _EPS)) + self.b_)


class CalibratedModel(_ParamsMixin):
    """Any model of the product with its churn probabilities recalibrated (isotonic or sigmoid / Platt).

    Where the calibration data comes from (``calibration_source_``):

    * ``"validation"``: ``fit`` got ``X_val, y_val``: the base model is fitted on the training rows (and may use the
      validation rows for early stopping), the calibrator on its validation predictions;
    * ``"cv"``: scikit-learn models without validation rows: out-of-fold predictions of ``cv`` folds (stratified)
      train the calibrator, then the base model is refitted on all the training rows;
    * ``"holdout"``: other models (baselines, neural networks) without validation rows: the base model is fitted on
      80% of the rows and the calibrator on the other 20% -- the latest 20% by ``snapshot_date`` when the table has
      several snapshots, else a stratified random 20%.

    Learned state: ``base_`` (the fitted base model), ``calibrator_``, ``calibration_source_``, ``n_calibration_``.
    SHAP explanations use ``base_``: calibration is monotone, so it keeps the ranking of users.
    """

    _param_names = ("base", "method", "cv", "holdout", "random_state")
    METHODS = ("isotonic", "sigmoid")

    def __init__(self, base: Any, method: str = "isotonic", cv: int = 3, holdout: float = 0.2, random_state: int = 0):
        self.base = base
        self.method = method
        self.cv = cv
        self.holdout = holdout
        self.random_state = random_state

    def _calibrator(self) -> Any:
        if self.method == "isotonic":
            from sklearn.isotonic import IsotonicRegression

            return IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        return _Sigmoid()

    def _new_base(self) -> Any:
        if hasattr(self.base, "get_params"):
            return type(self.base)(**self.base.get_params())
        import copy

        return copy.deepcopy(self.base)

    def fit(
        self,
        X: pd.DataFrame,
        y: Any,
        *,
        sequences: Any = None,
        X_val: pd.DataFrame | None = None,
        y_val: Any = None,
        seq_val: Any = None,
        progress: Progress | None = None,
        **kw: Any,
    ) -> "CalibratedModel":
        name = "CalibratedModel"
        _check_choice(name, "method", self.method, self.METHODS)
        _check_number(name, "cv", self.cv, low=2, integer=True)
        _check_number(name, "holdout", self.holdout, low=0.05, high=0.5)
        X = check_frame(X, name)
        yv = check_labels(y, len(X), name)
        seq = None if sequences is None else np.asarray(sequences)
        if X_val is not None and y_val is not None and len(X_val) > 0:
            yv_val = check_labels(y_val, len(X_val), f"{name} (validation)")
            base = self._new_base().fit(X, yv, sequences=seq, X_val=X_val, y_val=yv_val, seq_val=seq_val,
                                        progress=progress, **kw)
            p_cal, y_cal = base.predict_proba(X_val, sequences=seq_val), yv_val
            source = "validation"
        elif getattr(self.base, "_calibrate_by_cv", False):
            from sklearn.model_selection import StratifiedKFold

            n_min = int(min(yv.sum(), len(yv) - yv.sum()))
            folds = min(int(self.cv), n_min)
            if folds < 2:
                raise ModelError(f"{name}: too few churned or retained users ({n_min}) to calibrate by "
                                 "cross-validation; give validation rows or more data.")
            p_cal = np.empty(len(X))
            skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=self.random_state)
            for k, (tr, te) in enumerate(skf.split(np.zeros(len(yv)), yv)):
                _report(progress, 0.8 * k / folds, f"calibration fold {k + 1} of {folds}")
                m = self._new_base().fit(X.iloc[tr], yv[tr], sequences=None if seq is None else seq[tr])
                p_cal[te] = m.predict_proba(X.iloc[te], sequences=None if seq is None else seq[te])
            y_cal = yv
            _report(progress, 0.8, "refitting on all training rows")
            base = self._new_base().fit(X, yv, sequences=seq, **kw)
            source = "cv"
        else:
            tr, te = _holdout_split(X, yv, self.holdout, self.random_state)
            base = self._new_base().fit(X.iloc[tr], yv[tr], sequences=None if seq is None else seq[tr],
                                        progress=progress, **kw)
            p_cal = base.predict_proba(X.iloc[te], sequences=None if seq is None else seq[te])
            y_cal = yv[te]
            source = "holdout"
        if y_cal.min() == y_cal.max():
            raise ModelError(f"{name}: the calibration rows are all {'churned' if y_cal[0] else 'retained'}; "
                             "calibration needs both kinds of users.")
        self.calibrator_ = self._calibrator().fit(np.asarray(p_cal, dtype="float64"), y_cal)
        self.base_ = base
        self.calibration_source_ = source
        self.n_calibration_ = int(len(y_cal))
        _report(progress, 1.0, f"calibrated ({self.method}, {source}, {len(y_cal):,} rows)")
        return self

    def predict_proba(self, X: pd.DataFrame, *, sequences: Any = None, **kw: Any) -> np.ndarray:
        if not hasattr(self, "calibrator_"):
            raise ModelError("CalibratedModel is not fitted yet: call fit(X, y) first.")
        p = np.asarray(self.base_.predict_proba(X, sequences=sequences, **kw), dtype="float64")
        if p.size == 0:
            return p
        return np.clip(np.asarray(self.calibrator_.predict(p), dtype="float64"), 0.0, 1.0)

    def for_population(self, X: pd.DataFrame) -> "CalibratedModel":
        """The calibrated model around its base refitted on the scored population, when the base learns from it
        (BG/NBD); the calibration map is kept."""
        from . import for_population

        base = for_population(self.base_, X)
        if base is self.base_:
            return self
        out = copy.copy(self)
        out.base_ = base
        return out

    def __getattr__(self, name: str) -> Any:
        # attributes the product reads from a fitted model (feature names, pipeline) come from the base model
        if name in ("feature_names_out_", "numeric_", "categorical_", "n_train_") and "base_" in self.__dict__:
            return getattr(self.__dict__["base_"], name)
        raise AttributeError(name)


def _holdout_split(X: pd.DataFrame, y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (train, calibration): the latest snapshots when there are several, else stratified random."""
    n = len(X)
    if "snapshot_date" in X.columns:
        dates = pd.to_datetime(X["snapshot_date"], errors="coerce")
        if dates.notna().all() and dates.nunique() > 1:
            order = np.argsort(dates.to_numpy(), kind="stable")
            cut = int(round(n * (1 - fraction)))
            # keep whole snapshots together: move the cut to the start of the snapshot it falls in; use that only
            # when it leaves between 10% and 50% of the rows for calibration
            d_sorted = dates.to_numpy()[order]
            cut = int(np.searchsorted(d_sorted, d_sorted[min(cut, n - 1)], side="left"))
            if 0.1 * n <= n - cut <= 0.5 * n:
                tr, te = np.sort(order[:cut]), np.sort(order[cut:])
                if y[te].min() != y[te].max() and y[tr].min() != y[tr].max():
                    return tr, te
    from sklearn.model_selection import train_test_split

    idx = np.arange(n)
    counts = np.bincount(y.astype(int), minlength=2)
    stratify = y if counts.min() >= 2 else None
    tr, te = train_test_split(idx, test_size=fraction, random_state=seed, stratify=stratify)
    return np.sort(tr), np.sort(te)
