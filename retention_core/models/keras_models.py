"""Neural churn models in Keras 3: an MLP on the per-user features and three sequence models (1-D CNN, GRU,
Transformer encoder) that read the weekly activity sequence next to the same features. The architectures are the
factories of :mod:`retention_core.models.keras_builders`; the models are scikit-learn classifiers following the
interface of :mod:`retention_core.models.base`.

Importing this module does not import Keras or TensorFlow; they are imported on first use (building, training,
loading a model; :func:`~retention_core.models.keras_backend.load_keras`), so pages that never train a neural model
start fast.

The sequence models read each user's weekly activity (``Dataset.sequences``, ``(rows, weeks, channels)``) from the
activity columns of ``X`` (:func:`~retention_core.models.base.with_sequences`) at fit and at scoring; the MLP ignores
them.

Training: static features go through :func:`~retention_core.models.preprocessing.make_preprocessor` (fitted on the
training rows; float32); sequences get a signed ``log1p`` and a per-channel centring and scaling learned at fit. Early
stopping watches the loss on a stratified 15% of the model's own training rows (held out inside ``fit``) and restores
the best epoch's weights; ``class_weight="balanced"`` weighs churned and retained users equally;
``keras.utils.set_random_seed(seed)`` fixes the seeds (Python, NumPy and the backend). ``progress(fraction, message)``
is called after each epoch with ``"epoch {e}: val_loss {v:.4f}"``.

Learned state: ``model_`` (the Keras model), ``preprocessor_``, ``seq_center_`` / ``seq_scale_`` (per channel),
``numeric_``, ``categorical_``, ``feature_names_out_`` (static inputs after encoding), ``n_static_``, ``weeks_``,
``channels_`` (the activity columns read: :func:`~retention_core.models.base.sequence_columns`), ``classes_``,
``history_`` (one dict per epoch: ``epoch``, ``loss``, ``val_loss``), ``best_epoch_``, ``n_train_``,
``fit_seconds_``.

Saving: ``model.save(directory)`` writes three files, and ``<Class>.load(directory)`` reads them back::

    model.keras           the Keras model (architecture + weights, native Keras format)
    preprocessing.joblib  {"preprocessor": fitted ColumnTransformer, "seq_center": array, "seq_scale": array}
    params.json           {"format": 1, "class": ..., "params": constructor arguments, "state": learned
                           attributes other than the model and preprocessing, "versions": {...}}

The models also pickle (the Keras model travels inside the pickle as the bytes of a ``.keras`` file), so a wrapper
such as ``CalibratedModel(GRUModel())`` can be saved whole with joblib.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from retention_core.errors import BundleError, ConfigError, ModelError

from .base import Progress, check_frame, check_labels, sequence_columns, sequences_of
from .estimator import ChurnClassifier
from .keras_backend import load_keras, load_keras_file
from .keras_builders import build_cnn_model, build_gru_model, build_mlp_model, build_transformer_model, positive_int
from .preprocessing import infer_columns, make_preprocessor, transform_rows

__all__ = [
    "CNNModel",
    "GRUModel",
    "MLPModel",
    "TransformerModel",
    "load_model",
]

MODEL_FILE = "model.keras"
PREPROCESSING_FILE = "preprocessing.joblib"
PARAMS_FILE = "params.json"
FORMAT_VERSION = 1
PREDICT_BATCH = 8192
VALIDATION_FRACTION = 0.15


def _progress_callback(keras: Any, progress: Progress | None, epochs: int, history: list[dict[str, Any]],
                       monitor: str) -> Any:
    class _Epochs(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            logs = dict(logs or {})
            row = {"epoch": epoch + 1, **{k: float(v) for k, v in logs.items()}}
            history.append(row)
            if progress is not None:
                value = row.get(monitor, float("nan"))
                progress(min(1.0, (epoch + 1) / epochs), f"epoch {epoch + 1}: {monitor} {value:.4f}")

    return _Epochs()


def _one_or_list(inputs: list[np.ndarray]) -> Any:
    """A single input array as itself (the MLP), several as the list Keras takes in input order."""
    return inputs[0] if len(inputs) == 1 else inputs


def _class_weights(y: np.ndarray) -> dict[int, float]:
    n, n1 = len(y), float(y.sum())
    n0 = n - n1
    return {0: n / (2.0 * n0), 1: n / (2.0 * n1)}


class _KerasModel(ChurnClassifier):
    """Common training, scoring, saving and loading; subclasses name the architecture."""

    _common = ("numeric", "categorical", "epochs", "batch_size", "learning_rate", "patience", "class_weight", "seed",
               "early_stopping")
    _arch: tuple[str, ...] = ()
    needs_sequences = True
    _calibrate_by_cv = False  # too costly to refit per fold: calibration holds out rows instead

    def __init__(self, numeric: list[str] | None = None, categorical: list[str] | None = None, *, epochs: int = 30,
                 batch_size: int = 256, learning_rate: float = 1e-3, patience: int = 5,
                 class_weight: str | None = "balanced", seed: int = 0, early_stopping: bool = True):
        self.numeric = numeric
        self.categorical = categorical
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.patience = patience
        self.class_weight = class_weight
        self.seed = seed
        self.early_stopping = early_stopping

    @classmethod
    def _get_param_names(cls) -> list[str]:
        """The settings (``get_params``, ``clone``): the common ones, then the architecture's, as the subclasses take
        the common ones through ``**kw``."""
        return list(cls._common + cls._arch)

    # -- architecture ------------------------------------------------------------------------------------------------

    def _build(self, n_static: int, weeks: int, channels: int) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _check_settings(self) -> None:
        name = type(self).__name__
        positive_int(name, "epochs", self.epochs)
        positive_int(name, "batch_size", self.batch_size)
        positive_int(name, "patience", self.patience)
        lr = self.learning_rate
        if isinstance(lr, bool) or not isinstance(lr, (int, float, np.integer, np.floating)) or not (0 < lr <= 1):
            raise ConfigError(f"{name}: learning_rate must be a number in (0, 1], got {lr!r}.")
        if self.class_weight not in ("balanced", None):
            raise ConfigError(f"{name}: class_weight must be 'balanced' or None, got {self.class_weight!r}.")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)):
            raise ConfigError(f"{name}: seed must be a whole number, got {self.seed!r}.")

    # -- inputs ------------------------------------------------------------------------------------------------------

    def _sequences(self, X: pd.DataFrame, what: str) -> np.ndarray:
        """The weekly activity the rows of ``X`` carry (the columns this model read at fit, once fitted)."""
        name = type(self).__name__
        fitted = getattr(self, "weeks_", None) is not None
        seq = sequences_of(X, sequence_columns(self.weeks_, self.channels_) if fitted else None)
        if seq is None:
            raise ModelError(f"{name} reads weekly activity: build the dataset with sequences and add them to the "
                             f"{what} rows (models.base.with_sequences).")
        return seq

    def _scale_sequences(self, seq: np.ndarray) -> np.ndarray:
        z = np.sign(seq) * np.log1p(np.abs(seq))
        z = (z - self.seq_center_) / self.seq_scale_
        return np.nan_to_num(z, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32, copy=False)

    def _static(self, X: pd.DataFrame) -> np.ndarray:
        return np.asarray(transform_rows(self.preprocessor_, X), dtype=np.float32)  # a few rows: no fixed cost

    def model_inputs(self, X: pd.DataFrame) -> list[np.ndarray]:
        """The arrays the Keras model reads for these rows (with their weekly activity columns for the sequence
        models), in input order (``[static]`` for the MLP, ``[sequence, static]`` for the sequence models), e.g. for
        gradient-based explanations."""
        self._check_fitted()
        name = type(self).__name__
        X = check_frame(X, name)
        missing = [c for c in self.numeric_ + self.categorical_ if c not in X.columns]
        if missing:
            raise ModelError(f"{name}: the table to score lacks the column(s) "
                             f"{', '.join(repr(c) for c in missing[:10])} used in training.")
        static = self._static(X)
        if not self.needs_sequences:
            return [static]
        return [self._scale_sequences(self._sequences(X, "scored")), static]

    # -- fit ---------------------------------------------------------------------------------------------------------

    def fit(self, X: pd.DataFrame, y: Any, *, progress: Progress | None = None) -> "_KerasModel":
        name = type(self).__name__
        self._check_settings()
        X = check_frame(X, name)
        yv = check_labels(y, len(X), name)
        for k in ("weeks_", "channels_"):
            self.__dict__.pop(k, None)  # a refit reads the activity it is given
        seq = self._sequences(X, "training") if self.needs_sequences else None
        num, cat = infer_columns(X, self.numeric, self.categorical)
        t0 = time.perf_counter()

        keras = load_keras()
        keras.utils.set_random_seed(int(self.seed))
        train_inputs = self._fit_inputs(X, yv, seq, num, cat)
        train_inputs, yv, validation = self._validation_data(train_inputs, yv)
        monitor = "val_loss" if validation is not None else "loss"
        self.model_, self.history_ = self._train(keras, train_inputs, yv, validation, monitor, progress)
        losses = [h.get(monitor, float("inf")) for h in self.history_]
        self.best_epoch_ = int(np.argmin(losses)) + 1 if losses else 0
        self.n_train_ = int(len(X))
        self.fit_seconds_ = time.perf_counter() - t0
        self._fitted_classes()
        return self

    def _fit_inputs(self, X: pd.DataFrame, y: np.ndarray, seq: np.ndarray | None, num: list[str],
                    cat: list[str]) -> list[np.ndarray]:
        """Fit the static preprocessing (and the sequences' per-channel centring and scaling); the training rows as
        the Keras model reads them."""
        pre = make_preprocessor(num, cat, scale=True, log_heavy=True, encoding="onehot")
        static = np.asarray(pre.fit_transform(X, y), dtype=np.float32)
        self.preprocessor_ = pre
        self.numeric_, self.categorical_ = num, cat
        self.feature_names_out_ = [str(n) for n in pre.get_feature_names_out()]
        self.n_static_ = int(static.shape[1])
        if seq is None:
            self.seq_center_ = self.seq_scale_ = None
            self.weeks_ = self.channels_ = None
            return [static]
        z = np.sign(seq) * np.log1p(np.abs(seq))
        center = np.nanmean(z, axis=(0, 1))
        scale = np.nanstd(z, axis=(0, 1))
        self.seq_center_ = np.nan_to_num(center).astype(np.float32)
        self.seq_scale_ = np.where(np.isfinite(scale) & (scale > 1e-6), scale, 1.0).astype(np.float32)
        self.weeks_, self.channels_ = int(seq.shape[1]), int(seq.shape[2])
        return [self._scale_sequences(seq), static]

    def _validation_data(self, train_inputs: list[np.ndarray], y: np.ndarray
                         ) -> tuple[list[np.ndarray], np.ndarray, tuple[Any, np.ndarray] | None]:
        """(training inputs, training labels, Keras ``validation_data`` or None): with early stopping, a stratified
        share of the training rows, which then leaves the training rows."""
        val_inputs = None
        if self.early_stopping:
            tr, va = _validation_split(y, int(self.seed))
            if va is not None:
                val_inputs = [a[va] for a in train_inputs]
                yv_val = y[va]
                train_inputs = [a[tr] for a in train_inputs]
                y = y[tr]
        if val_inputs is None:
            return train_inputs, y, None
        return train_inputs, y, (_one_or_list(val_inputs), yv_val.astype(np.float32))

    def _train(self, keras: Any, train_inputs: list[np.ndarray], y: np.ndarray, validation: Any, monitor: str,
               progress: Progress | None) -> tuple[Any, list[dict[str, Any]]]:
        """Build, compile and train the Keras model; returns it and the history (one dict per epoch)."""
        model = self._build(self.n_static_, self.weeks_ or 0, self.channels_ or 0)
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=float(self.learning_rate)),
                      loss="binary_crossentropy")
        history: list[dict[str, Any]] = []
        callbacks = [_progress_callback(keras, progress, int(self.epochs), history, monitor)]
        if self.early_stopping:  # off: exactly `epochs` passes (a refit with the count validation found)
            callbacks.insert(0, keras.callbacks.EarlyStopping(monitor=monitor, patience=int(self.patience),
                                                              restore_best_weights=True))
        model.fit(
            _one_or_list(train_inputs),
            y.astype(np.float32),
            validation_data=validation,
            epochs=int(self.epochs),
            batch_size=int(self.batch_size),
            class_weight=_class_weights(y) if self.class_weight == "balanced" else None,
            callbacks=callbacks,
            shuffle=True,
            verbose=0,
        )
        return model, history

    def refit_settings(self, scale: float = 1.0) -> dict[str, Any]:
        """Settings for a refit on more rows without validation rows: the epoch early stopping kept, run in full.
        The count is not scaled: an epoch is one pass over the larger set, so its steps grow with the rows already."""
        self._check_fitted()
        return {"epochs": max(1, int(self.best_epoch_ or self.epochs)), "early_stopping": False}

    # -- predict -----------------------------------------------------------------------------------------------------

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise ModelError(f"{type(self).__name__} is not fitted yet: call fit(X, y) first.")

    def _churn(self, X: pd.DataFrame) -> np.ndarray:
        self._check_fitted()
        X = check_frame(X, type(self).__name__)
        if len(X) == 0:
            return np.empty(0, dtype="float64")
        return self._predict_arrays(self.model_inputs(X))

    def _predict_arrays(self, inputs: list[np.ndarray], batch_size: int = PREDICT_BATCH) -> np.ndarray:
        # predict_on_batch runs the compiled inference step: 3-30x faster than an eager call and, unlike predict(),
        # without per-call set-up, so small requests (one user, an explainer's batches) stay fast too
        n = len(inputs[0])
        out = np.empty(n, dtype="float64")
        for start in range(0, n, batch_size):
            chunk = [a[start:start + batch_size] for a in inputs]
            p = self.model_.predict_on_batch(chunk[0] if len(chunk) == 1 else chunk)
            out[start:start + batch_size] = np.asarray(p, dtype="float64").reshape(-1)
        return np.clip(out, 0.0, 1.0)

    # -- persistence -------------------------------------------------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        keys = ("numeric_", "categorical_", "feature_names_out_", "n_static_", "weeks_", "channels_", "history_",
                "best_epoch_", "n_train_", "fit_seconds_")
        return {k: getattr(self, k) for k in keys}

    def save(self, directory: str | os.PathLike) -> list[Path]:
        """Write ``model.keras``, ``preprocessing.joblib`` and ``params.json`` into ``directory`` (created if needed);
        returns the paths written."""
        self._check_fitted()
        keras = load_keras()
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        self.model_.save(d / MODEL_FILE)
        joblib.dump({"preprocessor": self.preprocessor_, "seq_center": self.seq_center_,
                     "seq_scale": self.seq_scale_}, d / PREPROCESSING_FILE)
        meta = {
            "format": FORMAT_VERSION,
            "class": type(self).__name__,
            "params": _jsonable(self.get_params()),
            "state": _jsonable(self._state()),
            "versions": {"keras": keras.__version__, "backend": keras.backend.backend()},
        }
        (d / PARAMS_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
        return [d / MODEL_FILE, d / PREPROCESSING_FILE, d / PARAMS_FILE]

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "_KerasModel":
        """Read a model written by :meth:`save` (called on a subclass, the saved class must match)."""
        d = Path(directory)
        missing = [f for f in (MODEL_FILE, PREPROCESSING_FILE, PARAMS_FILE) if not (d / f).is_file()]
        if missing:
            raise BundleError(f"The saved neural model in {str(d)!r} lacks {', '.join(missing)}.")
        try:
            meta = json.loads((d / PARAMS_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise BundleError(f"{str(d / PARAMS_FILE)!r} cannot be read: {exc}") from None
        name = meta.get("class")
        target = _CLASSES.get(name)
        if target is None:
            raise BundleError(f"{str(d / PARAMS_FILE)!r} names an unknown model class {name!r}.")
        if cls is not _KerasModel and target is not cls:
            raise BundleError(f"{str(d)!r} holds a {name}, not a {cls.__name__}.")
        params = dict(meta.get("params", {}))
        if "hidden" in params and isinstance(params["hidden"], list):
            params["hidden"] = tuple(params["hidden"])
        obj = target(**params)
        for k, v in meta.get("state", {}).items():
            setattr(obj, k, v)
        prep = joblib.load(d / PREPROCESSING_FILE)
        obj.preprocessor_ = prep["preprocessor"]
        obj.seq_center_, obj.seq_scale_ = prep["seq_center"], prep["seq_scale"]
        obj.model_ = load_keras_file(d / MODEL_FILE)
        obj._fitted_classes()
        return obj

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        if "model_" in state:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / MODEL_FILE
                state["model_"].save(path)
                state["model_"] = {"keras_file": path.read_bytes()}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        model = state.get("model_")
        if isinstance(model, dict) and "keras_file" in model:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / MODEL_FILE
                path.write_bytes(model["keras_file"])
                state["model_"] = load_keras_file(path)
        super().__setstate__(state)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _validation_split(y: np.ndarray, seed: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """A stratified ``VALIDATION_FRACTION`` of the rows for early stopping (none when the data is too small)."""
    n = len(y)
    counts = np.bincount(y.astype(int), minlength=2)
    if n < 20 or counts.min() < 2:
        return None, None
    idx = np.arange(n)
    tr, va = train_test_split(idx, test_size=VALIDATION_FRACTION, random_state=seed, stratify=y)
    return np.sort(tr), np.sort(va)


class MLPModel(_KerasModel):
    """Feed-forward network on the per-user features (no sequences); see :func:`build_mlp_model`."""

    _arch = ("hidden", "dropout", "l2")
    needs_sequences = False

    def __init__(self, numeric: list[str] | None = None, categorical: list[str] | None = None, *,
                 hidden: tuple[int, ...] = (128, 64), dropout: float = 0.3, l2: float = 1e-4, **kw: Any):
        super().__init__(numeric, categorical, **kw)
        self.hidden = hidden
        self.dropout = dropout
        self.l2 = l2

    def _build(self, n_static: int, weeks: int, channels: int) -> Any:
        return build_mlp_model(n_static, hidden=self.hidden, dropout=self.dropout, l2=self.l2)


class CNNModel(_KerasModel):
    """1-D convolutions over the weekly activity plus the per-user features; see :func:`build_cnn_model`."""

    _arch = ("filters", "kernel_size", "dropout", "l2")

    def __init__(self, numeric: list[str] | None = None, categorical: list[str] | None = None, *,
                 filters: int = 32, kernel_size: int = 3, dropout: float = 0.3, l2: float = 1e-4, **kw: Any):
        super().__init__(numeric, categorical, **kw)
        self.filters = filters
        self.kernel_size = kernel_size
        self.dropout = dropout
        self.l2 = l2

    def _build(self, n_static: int, weeks: int, channels: int) -> Any:
        return build_cnn_model(n_static, weeks, channels, filters=self.filters, kernel_size=self.kernel_size,
                               dropout=self.dropout, l2=self.l2)


class GRUModel(_KerasModel):
    """A GRU over the weekly activity plus the per-user features; see :func:`build_gru_model`."""

    _arch = ("units", "dropout", "l2")

    def __init__(self, numeric: list[str] | None = None, categorical: list[str] | None = None, *,
                 units: int = 32, dropout: float = 0.3, l2: float = 1e-4, **kw: Any):
        super().__init__(numeric, categorical, **kw)
        self.units = units
        self.dropout = dropout
        self.l2 = l2

    def _build(self, n_static: int, weeks: int, channels: int) -> Any:
        return build_gru_model(n_static, weeks, channels, units=self.units, dropout=self.dropout, l2=self.l2)


class TransformerModel(_KerasModel):
    """A Transformer encoder over the weekly activity plus the per-user features; see
    :func:`build_transformer_model`."""

    _arch = ("d_model", "heads", "blocks", "dropout", "l2")

    def __init__(self, numeric: list[str] | None = None, categorical: list[str] | None = None, *,
                 d_model: int = 32, heads: int = 2, blocks: int = 1, dropout: float = 0.1, l2: float = 1e-4,
                 **kw: Any):
        super().__init__(numeric, categorical, **kw)
        self.d_model = d_model
        self.heads = heads
        self.blocks = blocks
        self.dropout = dropout
        self.l2 = l2

    def _build(self, n_static: int, weeks: int, channels: int) -> Any:
        return build_transformer_model(n_static, weeks, channels, d_model=self.d_model, heads=self.heads,
                                       blocks=self.blocks, dropout=self.dropout, l2=self.l2)


_CLASSES: dict[str, type[_KerasModel]] = {c.__name__: c for c in (MLPModel, CNNModel, GRUModel, TransformerModel)}


def load_model(directory: str | os.PathLike) -> _KerasModel:
    """Read any neural model written by ``save`` (the class is taken from ``params.json``)."""
    return _KerasModel.load(directory)
