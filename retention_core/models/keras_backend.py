"""Keras, loaded on first use: :func:`load_keras` (the one loader of the product, for the neural models and their
explanations), the product's own layers (:func:`custom_objects`) and reading a ``.keras`` file
(:func:`load_keras_file`).

Importing this module imports neither Keras nor TensorFlow (about 3 s), so pages that never train or explain a
neural model start fast.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from retention_core.errors import BundleError

__all__ = ["custom_objects", "load_keras", "load_keras_file"]


def load_keras() -> Any:
    """The ``keras`` module, imported on first use (TensorFlow's start-up chatter is kept quiet unless the user asked
    for it with ``TF_CPP_MIN_LOG_LEVEL``)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    return keras


_CUSTOM: dict[str, Any] = {}


def custom_objects() -> dict[str, Any]:
    """The product's own Keras layers (defined on first use, registered for saving and loading)."""
    if _CUSTOM:
        return _CUSTOM
    keras = load_keras()
    ops = keras.ops

    @keras.saving.register_keras_serializable(package="retention_core")
    class PositionEmbedding(keras.layers.Layer):
        """Adds a learned vector per time step (week) to a ``(batch, steps, features)`` input."""

        def __init__(self, length: int, **kwargs: Any):
            super().__init__(**kwargs)
            self.length = int(length)

        def build(self, input_shape: Any) -> None:
            self.position = self.add_weight(
                name="position",
                shape=(self.length, int(input_shape[-1])),
                initializer=keras.initializers.RandomNormal(stddev=0.02),
            )

        def call(self, x: Any) -> Any:
            return x + ops.expand_dims(ops.cast(self.position, x.dtype), 0)

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "length": self.length}

    _CUSTOM["PositionEmbedding"] = PositionEmbedding
    _CUSTOM["retention_core>PositionEmbedding"] = PositionEmbedding
    return _CUSTOM


def load_keras_file(path: Path) -> Any:
    """The Keras model saved in ``path`` (uncompiled: it only predicts); BundleError naming the file when it cannot be
    read."""
    keras = load_keras()
    try:
        return keras.saving.load_model(path, custom_objects=custom_objects(), compile=False)
    except Exception as exc:  # a damaged or foreign file: say which one
        raise BundleError(f"The Keras model file {str(path)!r} cannot be loaded: {exc}") from None
