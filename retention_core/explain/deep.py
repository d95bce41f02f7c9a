"""Neural models (MLP, CNN, GRU, Transformer), explained in **probability**.

By default (``deep_method="gradient"``, :class:`GradientBackend`) expected gradients (SHAP's GradientExplainer method,
with TensorFlow gradients) over the model inputs, summed into readable units and adjusted so each user's values add up
exactly; with ``deep_method="permutation"`` (:class:`DeepBackend`), ``shap.PermutationExplainer`` over the readable
units, with the Keras model called directly (not ``model.predict``) on inputs assembled from the user's and the
background users' values.

This module is imported when a neural model is first explained (it loads the product's Keras helpers); TensorFlow
itself is imported when the first gradients are taken.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pandas as pd

from ..errors import ModelError
from ..models.base import with_sequences
from ..models.keras_backend import load_keras
from .backend import GameBackend, Setup
from .sampling import DEEP_BACKGROUND
from .units import sequence_units, unit_of_encoded

KERAS_BATCH = 8192


class DeepBackend(GameBackend):
    """Permutation SHAP over the readable units of a Keras model: its weekly activity units (sequence models), then
    one unit per original column of its static inputs."""

    method = "permutation"
    default_background = DEEP_BACKGROUND  # neural models pay per background user and unit: keep theirs small

    def __init__(self, setup: Setup):
        super().__init__(setup)
        m = setup.model
        if not hasattr(m, "model_"):
            raise ModelError(f"{type(m).__name__} is not fitted yet: train it before explaining it.")
        enc_units = unit_of_encoded(list(m.feature_names_out_), setup.numeric + setup.categorical, setup.categorical)
        static_units = list(dict.fromkeys(enc_units))
        self._static_cols = [np.array([j for j, u in enumerate(enc_units) if u == unit]) for unit in static_units]
        if setup.needs_sequences:
            self.sequence_units = sequence_units(int(m.weeks_), int(m.channels_))
        self.units = [s.name for s in self.sequence_units] + static_units

    def pool(self, X: pd.DataFrame, sequences: Any) -> Any:
        return self.setup.model.model_inputs(with_sequences(X, sequences if self.setup.needs_sequences else None))

    def predict_units(self, pool: Any, Z: np.ndarray) -> np.ndarray:
        Z = np.asarray(Z).astype(np.int64)
        k = Z.shape[0]
        keras = load_keras()
        if self.setup.needs_sequences:
            seq_pool, static_pool = pool
        else:
            seq_pool, (static_pool,) = None, pool
        static = np.empty((k, static_pool.shape[1]), dtype=np.float32)
        offset = len(self.sequence_units)
        for j, cols in enumerate(self._static_cols):
            static[:, cols] = static_pool[Z[:, offset + j][:, None], cols[None, :]]
        inputs = [static]
        if seq_pool is not None:
            seq = np.empty((k,) + seq_pool.shape[1:], dtype=np.float32)
            for u, s in enumerate(self.sequence_units):
                seq[:, s.weeks, s.channel] = seq_pool[Z[:, u][:, None], s.weeks[None, :], s.channel]
            inputs = [seq, static]
        out = np.empty(k, dtype="float64")
        for start in range(0, k, KERAS_BATCH):
            chunk = [a[start:start + KERAS_BATCH] for a in inputs]
            x = chunk[0] if len(chunk) == 1 else chunk
            # one compiled forward pass per batch (no model.predict: no progress bar, no per-call set-up);
            # several times faster than an eager call for recurrent layers
            y = self.setup.model.model_.predict_on_batch(x)
            y = np.asarray(keras.ops.convert_to_numpy(y), dtype="float64")
            out[start:start + KERAS_BATCH] = y.reshape(len(chunk[0]), -1)[:, -1]  # trailing class dimension
        return out

    def to_units(self, per_input: list[np.ndarray]) -> np.ndarray:
        """Values per model input (weekly activity first, static inputs last) summed into readable units."""
        values = np.zeros((per_input[-1].shape[0], len(self.units)))
        for i, s in enumerate(self.sequence_units):
            values[:, i] = per_input[0][:, s.weeks, s.channel].sum(axis=1)
        offset = len(self.sequence_units)
        for i, cols in enumerate(self._static_cols):
            values[:, offset + i] = per_input[-1][:, cols].sum(axis=1)
        return values


class GradientBackend(DeepBackend):
    """Expected gradients (the method of SHAP's GradientExplainer): per user and model input, the average of
    ``(x - b) * gradient`` at random points ``b + a (x - b)`` between the user ``x`` and random background users
    ``b``; inputs are then summed into readable units. The sum matches the output minus the expected value only on
    average, so each user's residual is shared out in proportion to the size of the values, and the values add up
    exactly like every other family's. One batched forward and backward pass per block of users: several times
    faster than permutation SHAP on a CPU."""

    method = "gradient"

    def __init__(self, setup: Setup):
        super().__init__(setup)
        self._grad_fn: Any = None  # the compiled gradient graph, built on first use

    def note(self) -> str:
        return (f"expected gradients over the model inputs ({self.setup.gradient_samples} samples per user, "
                f"{self.background_size} background users), summed into readable features and adjusted so that "
                "each user's values add up exactly")

    def values(self, X: pd.DataFrame, sequences: Any) -> np.ndarray:
        s = self.setup
        n, K = len(X), s.gradient_samples
        inputs = [np.asarray(a, dtype=np.float32) for a in self.pool(X, sequences)]
        bg = [np.asarray(a, dtype=np.float32) for a in self.pool(s.X_bg, s.seq_bg)]
        B = bg[0].shape[0]
        grad = self._gradients()
        rng = np.random.default_rng(s.seed)
        phi = [np.zeros(a.shape, dtype="float64") for a in inputs]
        per_block = max(1, KERAS_BATCH // K)
        for start in range(0, n, per_block):
            users = np.arange(start, min(n, start + per_block))
            u = np.repeat(users, K)
            j = rng.integers(0, B, len(u))
            alpha = rng.random(len(u)).astype(np.float32)
            diffs = [x[u] - b[j] for x, b in zip(inputs, bg)]
            points = [b[j] + alpha.reshape((-1,) + (1,) * (d.ndim - 1)) * d for b, d in zip(bg, diffs)]
            for k, (g, d) in enumerate(zip(grad(points), diffs)):
                phi[k][users] = (g.astype("float64") * d).reshape((len(users), K) + d.shape[1:]).mean(axis=1)
        values = self.to_units(phi)
        residual = self.output(X, sequences) - self.expected_value() - values.sum(axis=1)
        size = np.abs(values)
        total = size.sum(axis=1, keepdims=True)
        share = np.where(total > 0, size / np.where(total > 0, total, 1.0), 1.0 / max(len(self.units), 1))
        return values + residual[:, None] * share

    def _gradients(self) -> Callable[[list[np.ndarray]], list[np.ndarray]]:
        """Gradients of the churn probability with respect to each model input, one compiled graph per explainer."""
        import tensorflow as tf

        if self._grad_fn is None:
            model = self.setup.model.model_

            @tf.function(reduce_retracing=True)
            def f(*xs):
                with tf.GradientTape() as tape:
                    tape.watch(xs)
                    y = model(list(xs) if len(xs) > 1 else xs[0], training=False)
                    y = tf.reshape(y, (tf.shape(y)[0], -1))[:, -1]  # a trailing class dimension
                return tape.gradient(y, xs)

            self._grad_fn = f
        fn = self._grad_fn
        return lambda points: [np.asarray(g) for g in fn(*[tf.convert_to_tensor(p) for p in points])]

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_grad_fn"] = None  # a compiled TensorFlow graph is rebuilt, not pickled
        return state
