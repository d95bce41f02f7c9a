"""What every churn model of the product shares: the model interface, the sequence columns of a model's input, the
one churn column of its class probabilities, the checks of the training table and labels, progress reports, and
category values as the models read them.

Model interface: every model of the registry is a scikit-learn classifier (``ClassifierMixin, BaseEstimator``, see
:class:`retention_core.models.estimator.ChurnClassifier`; the calibrated model and the averaging ensemble are
scikit-learn's own ``CalibratedClassifierCV`` and ``VotingClassifier`` inside), so ``clone``, ``cross_validate``,
``CalibratedClassifierCV`` and ``VotingClassifier`` take it as it is::

    model.fit(X, y, *, progress=None) -> model
    model.predict_proba(X) -> np.ndarray         # shape (n, 2): columns classes_ = [0, 1], churned = 1
    model.predict(X), model.decision_function(X) # the class at 0.5; the log-odds of churn
    model.get_params() / model.set_params(**settings) / sklearn.base.clone(model)

``X`` is the per-user feature table (a pandas DataFrame; columns are picked by name, extra columns are ignored), ``y``
the 0/1 labels (churned = 1). The sequence models read each user's weekly activity (``Dataset.sequences``, shape
``(rows, weeks, channels)``) from the same table: :func:`with_sequences` adds it as one column per week and channel
(``seq:w<week>:c<channel>``), and :func:`sequences_of` reads it back. The activity thus travels with its row through
every slice (``X.iloc``, scikit-learn's ``_safe_indexing`` in cross-validation and calibration, a Spark partition), and
the other models ignore those columns. :func:`churn_probability` is the one way from ``predict_proba`` to the 1-D
churn probability the product ranks, stores and shows.

Early stopping (gradient boosting, the neural models) watches a share of the model's own training rows, held out inside
``fit``: a model is never given the rows it is then measured on. ``progress(fraction, message)`` is a callback.

Optional hooks the trainer and the scorer look for:

* ``refit_settings(scale) -> dict``: settings for a refit on ``scale`` times as many rows (trees or epochs found by
  early stopping);
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
from retention_core.event_tokens import PREFIX as TOKEN_PREFIX

__all__ = [
    "MISSING_CATEGORY",
    "OTHER_CATEGORY",
    "Progress",
    "EVENT_PREFIX",
    "SEQUENCE_PREFIX",
    "category_text",
    "check_choice",
    "check_frame",
    "check_labels",
    "check_number",
    "churn_probability",
    "is_sequence_column",
    "report_progress",
    "sequence_columns",
    "sequences_of",
    "with_sequences",
]

#: Progress callback: ``progress(fraction in [0, 1], message)``.
Progress = Callable[[float, str], Any]

#: Category text of a missing or blank value, and of rare or unseen values grouped together (one-hot ``<col>=(other)``).
MISSING_CATEGORY = "(missing)"
OTHER_CATEGORY = "(other)"


def report_progress(progress: Progress | None, fraction: float, message: str) -> None:
    """Call ``progress(fraction, message)`` when a callback was given."""
    if progress is not None:
        progress(float(fraction), message)


# --------------------------------------------------------------------------------------------------------------------
# a model's input: the feature table, with the weekly activity of the sequence models in its own columns
# --------------------------------------------------------------------------------------------------------------------

#: The start of the name of every weekly-activity column of a model's input (``seq:w<week>:c<channel>``); no feature
#: name starts with it.
SEQUENCE_PREFIX = "seq:"


#: The start of the name of every event-token column of a model's input (``evt:e<event>:<field>``, see
#: :func:`retention_core.event_tokens.token_columns`): the latest events the pre-trained encoder reads.
EVENT_PREFIX = TOKEN_PREFIX


def is_sequence_column(name: Any) -> bool:
    """Whether a column of a model's input carries a user's activity (weekly or event tokens) rather than a feature."""
    return isinstance(name, str) and name.startswith((SEQUENCE_PREFIX, EVENT_PREFIX))


def sequence_columns(weeks: int, channels: int) -> list[str]:
    """The column names of a ``(weeks, channels)`` activity block, week by week, channel by channel: the order
    :func:`with_sequences` writes and :func:`sequences_of` reads."""
    return [f"{SEQUENCE_PREFIX}w{w:03d}:c{c:02d}" for w in range(int(weeks)) for c in range(int(channels))]


def with_sequences(X: pd.DataFrame, sequences: Any) -> pd.DataFrame:
    """``X`` with each user's weekly activity (``(rows, weeks, channels)``, rows aligned with ``X``) in one column per
    week and channel (float32; the columns of an earlier activity are replaced); ``X`` itself when ``sequences`` is
    None. The activity then follows its row through every slice, as scikit-learn's tools slice a table. With
    :class:`~retention_core.event_tokens.SequenceInputs`, each row's event tokens come too, in their own columns."""
    if sequences is None:
        return X
    tokens = getattr(sequences, "tokens", None)  # event_tokens.SequenceInputs: the weekly activity and the tokens
    weekly = sequences.weekly if tokens is not None else sequences
    blocks = [X.drop(columns=[c for c in X.columns if is_sequence_column(c)])]
    if weekly is not None:
        seq = np.asarray(weekly, dtype=np.float32)
        if seq.ndim != 3 or seq.shape[0] != len(X):
            raise ModelError(f"Weekly activity must have shape ({len(X)}, weeks, channels) for {len(X)} users, got "
                             f"{seq.shape}.")
        blocks.append(pd.DataFrame(seq.reshape(len(X), seq.shape[1] * seq.shape[2]), index=X.index,
                                   columns=sequence_columns(*seq.shape[1:]), copy=False))
    if tokens is not None:
        from retention_core.event_tokens import token_columns

        if len(tokens) != len(X):
            raise ModelError(f"Event tokens for {len(tokens)} rows, {len(X)} users; they must match row for row.")
        blocks.append(token_columns(tokens, X.index))
    return pd.concat(blocks, axis=1)


def sequences_of(X: pd.DataFrame, columns: list[str] | None = None) -> np.ndarray | None:
    """The weekly activity ``(rows, weeks, channels)`` (float32) a model's input carries (:func:`with_sequences`), or
    None when it carries none. ``columns``: the activity columns a fitted model read (their names give the shape);
    ModelError when the table lacks some of them."""
    carried = [c for c in X.columns if isinstance(c, str) and c.startswith(SEQUENCE_PREFIX)]
    if columns is None:
        if not carried:
            return None
        columns = carried
    weeks, channels = _block_shape(columns)
    if any(c not in X.columns for c in columns):
        if not carried:
            raise ModelError(f"The table carries no weekly activity; the model reads {weeks} weeks x {channels} "
                             "channels of it for each user (add it with models.base.with_sequences).")
        raise ModelError("The model reads {} weeks x {} channels of weekly activity; the table carries {} x {}."
                         .format(weeks, channels, *_block_shape(carried)))
    values = X[list(columns)].to_numpy(dtype=np.float32, na_value=np.nan)
    return values.reshape(len(X), weeks, channels)


def _block_shape(columns: list[str]) -> tuple[int, int]:
    """(weeks, channels) of a block of activity columns, from their names; ModelError when they make no block."""
    weeks, channels = (max(int(str(c).split(":")[k][1:]) for c in columns) + 1 for k in (1, 2))
    if weeks * channels != len(columns):
        raise ModelError(f"{len(columns)} weekly activity columns do not make {weeks} weeks x {channels} channels.")
    return weeks, channels


def churn_probability(model: Any, X: Any) -> np.ndarray:
    """The churn probability (class 1) of every row, 1-D float64: the column of ``model.predict_proba(X)`` (shape
    (n, 2)) that ``model.classes_`` names churned. The one place the product turns class probabilities into the churn
    column it ranks, stores and shows."""
    proba = np.asarray(model.predict_proba(X), dtype="float64")
    if proba.ndim != 2:
        raise ModelError(f"{type(model).__name__}.predict_proba must return one column per class, got shape "
                         f"{proba.shape}.")
    classes = list(getattr(model, "classes_", [0, 1]))
    return proba[:, classes.index(1) if 1 in classes else proba.shape[1] - 1]


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
