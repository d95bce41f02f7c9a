"""Functional Keras factories of the product's neural churn models: :func:`build_mlp_model` (per-user features) and
three sequence models that read the weekly activity next to the same features (:func:`build_cnn_model`,
:func:`build_gru_model`, :func:`build_transformer_model`).

Each returns an uncompiled ``keras.Model`` with a sigmoid output named ``"churn_probability"``, after checking its
arguments (ConfigError quoting the received value). The code is backend-agnostic (functional API, ``keras.ops`` only,
the position embedding is a layer), so the same models train under ``KERAS_BACKEND=torch`` or ``jax`` on a GPU host.
Keras is imported on the first build, not with this module.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from retention_core.errors import ConfigError

from .keras_backend import custom_objects, load_keras

__all__ = [
    "build_cnn_model",
    "build_gru_model",
    "build_mlp_model",
    "build_transformer_model",
    "positive_int",
]


def positive_int(fn: str, name: str, value: Any) -> int:
    """``value`` as an int; ConfigError (``fn: name must be ...``) unless it is a whole number of at least 1."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{fn}: {name} must be a whole number of at least 1, got {value!r}.")
    return int(value)


def _fraction(fn: str, name: str, value: Any, *, high: float = 0.9) -> float:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not ok or not (0.0 <= float(value) <= high):
        raise ConfigError(f"{fn}: {name} must be a number between 0 and {high:g}, got {value!r}.")
    return float(value)


def _penalty(fn: str, value: Any) -> Any:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not ok or not (math.isfinite(float(value)) and float(value) >= 0):
        raise ConfigError(f"{fn}: l2 must be a number >= 0, got {value!r}.")
    return load_keras().regularizers.L2(float(value)) if float(value) > 0 else None


def _output(keras: Any, x: Any, *, head: int, dropout: float, reg: Any) -> Any:
    x = keras.layers.Dense(head, activation="relu", kernel_regularizer=reg, name="head")(x)
    x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    return keras.layers.Dense(1, activation="sigmoid", dtype="float32", name="churn_probability")(x)


def _static_branch(keras: Any, n_static: int, *, head: int, reg: Any) -> tuple[Any, Any]:
    static_in = keras.Input(shape=(n_static,), name="static")
    s = keras.layers.Dense(head, activation="relu", kernel_regularizer=reg, name="static_dense")(static_in)
    return static_in, s


def build_mlp_model(n_static: int, *, hidden: tuple[int, ...] = (128, 64), dropout: float = 0.3,
                    l2: float = 1e-4) -> Any:
    """Feed-forward network on the encoded per-user features: ``Dense(h) -> Dropout`` for each ``h`` in ``hidden``,
    then a sigmoid unit (churn probability). One input named ``"static"`` of width ``n_static``."""
    fn = "build_mlp_model"
    n_static = positive_int(fn, "n_static", n_static)
    if isinstance(hidden, (int, np.integer)):
        hidden = (int(hidden),)
    try:
        layers = tuple(hidden)
    except TypeError:
        raise ConfigError(f"{fn}: hidden must be a list of layer sizes such as (128, 64), got {hidden!r}.") from None
    if not layers or any(isinstance(h, bool) or not isinstance(h, (int, np.integer)) or h < 1 for h in layers):
        raise ConfigError(f"{fn}: hidden must be a list of layer sizes such as (128, 64), got {hidden!r}.")
    dropout = _fraction(fn, "dropout", dropout)
    keras = load_keras()
    reg = _penalty(fn, l2)
    inp = keras.Input(shape=(n_static,), name="static")
    x = inp
    for i, h in enumerate(layers):
        x = keras.layers.Dense(int(h), activation="relu", kernel_regularizer=reg, name=f"dense_{i}")(x)
        x = keras.layers.Dropout(dropout, name=f"dropout_{i}")(x)
    out = keras.layers.Dense(1, activation="sigmoid", dtype="float32", name="churn_probability")(x)
    return keras.Model(inp, out, name="mlp")


def _sequence_checks(fn: str, n_static: Any, weeks: Any, channels: Any) -> tuple[int, int, int]:
    return (positive_int(fn, "n_static", n_static), positive_int(fn, "weeks", weeks),
            positive_int(fn, "channels", channels))


def build_cnn_model(n_static: int, weeks: int, channels: int, *, filters: int = 32, kernel_size: int = 3,
                    dropout: float = 0.3, l2: float = 1e-4, head: int = 64) -> Any:
    """Two causal 1-D convolutions over the weekly sequence (the second dilated), pooled as maximum, mean and the
    last week, joined with a dense layer on the static features; sigmoid output.

    Inputs, in order: ``"sequence"`` ``(weeks, channels)`` and ``"static"`` ``(n_static,)``.
    """
    fn = "build_cnn_model"
    n_static, weeks, channels = _sequence_checks(fn, n_static, weeks, channels)
    filters = positive_int(fn, "filters", filters)
    kernel_size = positive_int(fn, "kernel_size", kernel_size)
    head = positive_int(fn, "head", head)
    dropout = _fraction(fn, "dropout", dropout)
    keras = load_keras()
    L = keras.layers
    reg = _penalty(fn, l2)
    seq_in = keras.Input(shape=(weeks, channels), name="sequence")
    x = L.Conv1D(filters, kernel_size, padding="causal", activation="relu", kernel_regularizer=reg,
                 name="conv_1")(seq_in)
    x = L.Conv1D(filters, kernel_size, padding="causal", dilation_rate=2, activation="relu", kernel_regularizer=reg,
                 name="conv_2")(x)
    last = L.Flatten(name="last_week")(L.Cropping1D((weeks - 1, 0), name="crop_last")(x))
    pooled = L.Concatenate(name="pooled")([L.GlobalMaxPooling1D(name="max_pool")(x),
                                           L.GlobalAveragePooling1D(name="mean_pool")(x), last])
    static_in, s = _static_branch(keras, n_static, head=head, reg=reg)
    x = L.Concatenate(name="joined")([pooled, s])
    return keras.Model([seq_in, static_in], _output(keras, x, head=head, dropout=dropout, reg=reg), name="cnn")


def build_gru_model(n_static: int, weeks: int, channels: int, *, units: int = 32, dropout: float = 0.3,
                    l2: float = 1e-4, head: int = 64) -> Any:
    """A GRU over the weekly sequence (its last state), joined with a dense layer on the static features; sigmoid
    output. Inputs, in order: ``"sequence"`` ``(weeks, channels)`` and ``"static"`` ``(n_static,)``."""
    fn = "build_gru_model"
    n_static, weeks, channels = _sequence_checks(fn, n_static, weeks, channels)
    units = positive_int(fn, "units", units)
    head = positive_int(fn, "head", head)
    dropout = _fraction(fn, "dropout", dropout)
    keras = load_keras()
    L = keras.layers
    reg = _penalty(fn, l2)
    seq_in = keras.Input(shape=(weeks, channels), name="sequence")
    # no recurrent dropout, so the fused (cuDNN) kernel is used on a GPU
    h = L.GRU(units, kernel_regularizer=reg, name="gru")(seq_in)
    h = L.Dropout(dropout, name="gru_dropout")(h)
    static_in, s = _static_branch(keras, n_static, head=head, reg=reg)
    x = L.Concatenate(name="joined")([h, s])
    return keras.Model([seq_in, static_in], _output(keras, x, head=head, dropout=dropout, reg=reg), name="gru")


def build_transformer_model(n_static: int, weeks: int, channels: int, *, d_model: int = 32, heads: int = 2,
                            blocks: int = 1, ff_dim: int | None = None, dropout: float = 0.1, l2: float = 1e-4,
                            head: int = 64) -> Any:
    """Transformer encoder over the weekly sequence: a dense projection to ``d_model``, a learned position
    embedding, ``blocks`` post-norm blocks (multi-head self-attention with ``heads`` heads, feed-forward of width
    ``ff_dim``, default ``2 * d_model``), pooled as mean and last week, joined with a dense layer on the static
    features; sigmoid output. Inputs, in order: ``"sequence"`` ``(weeks, channels)`` and ``"static"``."""
    fn = "build_transformer_model"
    n_static, weeks, channels = _sequence_checks(fn, n_static, weeks, channels)
    d_model = positive_int(fn, "d_model", d_model)
    heads = positive_int(fn, "heads", heads)
    blocks = positive_int(fn, "blocks", blocks)
    ff_dim = 2 * d_model if ff_dim is None else positive_int(fn, "ff_dim", ff_dim)
    head = positive_int(fn, "head", head)
    dropout = _fraction(fn, "dropout", dropout)
    if d_model % heads:
        raise ConfigError(f"{fn}: d_model ({d_model!r}) must be a multiple of heads, got heads={heads!r}.")
    keras = load_keras()
    L = keras.layers
    PositionEmbedding = custom_objects()["PositionEmbedding"]
    reg = _penalty(fn, l2)
    seq_in = keras.Input(shape=(weeks, channels), name="sequence")
    x = L.Dense(d_model, kernel_regularizer=reg, name="project")(seq_in)
    x = PositionEmbedding(weeks, name="position")(x)
    x = L.Dropout(dropout, name="embed_dropout")(x)
    for b in range(blocks):
        att = L.MultiHeadAttention(heads, d_model // heads, dropout=dropout, name=f"attention_{b}")(x, x)
        x = L.LayerNormalization(epsilon=1e-6, name=f"norm_att_{b}")(L.Add(name=f"res_att_{b}")([x, att]))
        ff = L.Dense(ff_dim, activation="relu", kernel_regularizer=reg, name=f"ff_in_{b}")(x)
        ff = L.Dense(d_model, kernel_regularizer=reg, name=f"ff_out_{b}")(ff)
        ff = L.Dropout(dropout, name=f"ff_dropout_{b}")(ff)
        x = L.LayerNormalization(epsilon=1e-6, name=f"norm_ff_{b}")(L.Add(name=f"res_ff_{b}")([x, ff]))
    last = L.Flatten(name="last_week")(L.Cropping1D((weeks - 1, 0), name="crop_last")(x))
    pooled = L.Concatenate(name="pooled")([L.GlobalAveragePooling1D(name="mean_pool")(x), last])
    static_in, s = _static_branch(keras, n_static, head=head, reg=reg)
    x = L.Concatenate(name="joined")([pooled, s])
    return keras.Model([seq_in, static_in], _output(keras, x, head=head, dropout=dropout, reg=reg),
                       name="transformer")
