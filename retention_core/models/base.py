"""What every churn model of the product shares: the model interface, settings in the scikit-learn manner, the
checks of the training table and labels, progress reports, and category values as the models read them.

Model interface (every model of the registry follows it; scikit-learn habits: constructor arguments are stored
unchanged, learned state ends in ``_``, ``fit`` returns ``self``)::

    model.fit(X, y, *, sequences=None, X_val=None, y_val=None, seq_val=None, progress=None) -> model
    model.predict_proba(X, *, sequences=None) -> np.ndarray      # 1-D churn probability (churned = 1)
    model.get_params() / model.set_params(**settings)

``X`` is the per-user feature table (a pandas DataFrame; columns are picked by name, extra columns are ignored), ``y``
the 0/1 labels (churned = 1). ``sequences`` is the ``(rows, weeks, channels)`` weekly activity of
``Dataset.sequences``, read by the sequence models only; ``X_val, y_val[, seq_val]`` are validation rows for early
stopping or calibration, ``progress(fraction, message)`` a callback. Models that do not use an argument accept and
ignore it.

Optional hooks the trainer and the scorer look for:

* ``refit_settings(scale) -> dict``: settings for a refit on ``scale`` times as many rows without validation rows
  (trees or epochs found by early stopping);
* ``for_population(X) -> model``: the model to score ``X`` with, for models that learn from the scored population
  itself (BG/NBD); see :func:`retention_core.models.for_population`;
* ``_calibrate_by_cv`` (class attribute): True when refitting per fold is cheap enough for cross-validated
  calibration (:class:`~retention_core.models.calibration.CalibratedModel`).

Importing this module imports neither scikit-learn nor Keras.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import pandas as pd

from retention_core.errors import ConfigError, ModelError

__all__ = [
    "MISSING_CATEGORY",
    "OTHER_CATEGORY",
    "ParamsMixin",
    "Progress",
    "category_text",
    "check_choice",
    "check_frame",
    "check_labels",
    "check_number",
    "report_progress",
]

#: Progress callback: ``progress(fraction in [0, 1], message)``.
Progress = Callable[[float, str], Any]

#: Category text of a missing or blank value, and of rare or unseen values grouped together (one-hot ``<col>=(other)``).
MISSING_CATEGORY = "(missing)"
OTHER_CATEGORY = "(other)"


class ParamsMixin:
    """``get_params`` / ``set_params`` in the scikit-learn manner (constructor arguments only, named by
    ``_param_names``) and a ``repr`` that shows them."""

    _param_names: tuple[str, ...] = ()

    def get_params(self, deep: bool = True) -> dict[str, Any]:  # noqa: ARG002 - scikit-learn signature
        return {name: getattr(self, name) for name in self._param_names}

    def set_params(self, **params: Any) -> "ParamsMixin":
        for name, value in params.items():
            if name not in self._param_names:
                raise ConfigError(f"{type(self).__name__} has no setting {name!r}; settings: {list(self._param_names)}")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


def report_progress(progress: Progress | None, fraction: float, message: str) -> None:
    """Call ``progress(fraction, message)`` when a callback was given."""
    if progress is not None:
        progress(float(fraction), message)


# --------------------------------------------------------------------------------------------------------------------
# checks of the training table, the labels and the settings
# --------------------------------------------------------------------------------------------------------------------


def check_frame(X: Any, model: str) -> pd.DataFrame:
    """``X`` itself when it is a DataFrame; ModelError naming ``model`` otherwise."""
    if not isinstance(X, pd.DataFrame):
        raise ModelError(f"{model} needs the per-user feature table as a pandas DataFrame, got {type(X).__name__}.")
    return X


def check_labels(y: Any, n: int, model: str, *, both_classes: bool = True) -> np.ndarray:
    """Labels as a float 0/1 vector (churned = 1) of length ``n``; ModelError on missing, other or too few values
    (``both_classes``: churned and retained users must both be there)."""
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


def check_choice(model: str, name: str, value: Any, choices: tuple) -> None:
    """ConfigError quoting ``value`` when it is not one of ``choices``."""
    if value not in choices:
        raise ConfigError(f"{model}: {name} must be one of {list(choices)}, got {value!r}.")


def check_number(model: str, name: str, value: Any, *, low: float | None = None, high: float | None = None,
                 integer: bool = False, strict_low: bool = False, allow_none: bool = False) -> None:
    """ConfigError quoting ``value`` when it is not a finite number (``integer``: a whole one) within ``low`` (``>``
    when ``strict_low``, else ``>=``) and ``high`` (``<=``); None passes when ``allow_none``."""
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


# --------------------------------------------------------------------------------------------------------------------
# category values as the models read them
# --------------------------------------------------------------------------------------------------------------------


def category_text(s: pd.Series) -> np.ndarray:
    """Each value as category text (``3.0`` -> ``"3"``, blank or missing -> ``"(missing)"``), cleaned once per distinct
    value, so scoring a million users costs a handful of string operations, not a million.

    Codes stored as whole floats are written as whole numbers so a column read as numbers in one file and as text in
    another still matches. Explanations use it to show a user's category as the model read it."""
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
