"""CoLES contrastive pre-training (Babaev et al., 2022) and the embedding of whole sequences.

Each step draws a batch of customers and, for each, two random contiguous subsequences of their events (the views);
the loss is the in-batch softmax (InfoNCE, symmetric) over the cosine similarities of the views' embeddings: the two
views of one customer are the positive pair, every other customer of the batch a negative. No label is read.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from retention_core.models.base import Progress, report_progress


def _views(a: dict[str, np.ndarray], rows: np.ndarray, lengths: np.ndarray, width: int, min_len: int,
           rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One random contiguous subsequence per row (left-padded to ``width``)."""
    L = a["items"].shape[1]
    n = len(rows)
    out = {k: np.zeros((n, width) + v.shape[2:], dtype=v.dtype) for k, v in a.items()}
    for j, (r, ln) in enumerate(zip(rows, np.minimum(lengths[rows], L))):
        hi = min(int(ln), width)
        size = int(rng.integers(min(min_len, hi), hi + 1))
        start = L - int(ln) + int(rng.integers(0, int(ln) - size + 1))
        for k, v in a.items():
            out[k][j, width - size:] = v[r, start:start + size]
    return out


def info_nce(z1: Any, z2: Any, temperature: float) -> Any:
    """Symmetric in-batch softmax loss of two views' embeddings (row i of each is the same customer)."""
    import tensorflow as tf

    z1, z2 = tf.math.l2_normalize(z1, axis=1), tf.math.l2_normalize(z2, axis=1)
    logits = tf.matmul(z1, z2, transpose_b=True) / temperature
    labels = tf.range(tf.shape(z1)[0])
    ce = tf.keras.losses.sparse_categorical_crossentropy
    return 0.5 * (tf.reduce_mean(ce(labels, logits, from_logits=True))
                  + tf.reduce_mean(ce(labels, tf.transpose(logits), from_logits=True)))


def pretrain(encoder: Any, a: dict[str, np.ndarray], lengths: np.ndarray, *, epochs: int, batch_size: int,
             learning_rate: float, temperature: float, width: int, max_rows: int, seed: int,
             progress: Progress | None = None) -> list[dict[str, float]]:
    """Train ``encoder`` in place on the arrays ``a`` (rows of at least two events); returns the loss per epoch."""
    import tensorflow as tf

    keras_opt = tf.keras.optimizers.Adam(learning_rate)
    rng = np.random.default_rng(seed)
    usable = np.flatnonzero(lengths >= 2)
    history: list[dict[str, float]] = []
    if len(usable) < 4:
        return history

    @tf.function(reduce_retracing=True)
    def step(v1, v2):
        with tf.GradientTape() as tape:
            loss = info_nce(encoder(v1, training=True), encoder(v2, training=True), temperature)
        grads = tape.gradient(loss, encoder.trainable_variables)
        keras_opt.apply_gradients(zip(grads, encoder.trainable_variables))
        return loss

    for epoch in range(int(epochs)):
        t0 = time.perf_counter()
        order = rng.permutation(usable)[:max_rows]
        losses = []
        for b in range(0, len(order) - 1, batch_size):
            rows = order[b:b + batch_size]
            if len(rows) < 2:
                continue
            w = int(min(width, max(2, lengths[rows].max())))  # no step longer than the batch's longest history
            v1, v2 = (_views(a, rows, lengths, w, 4, rng) for _ in range(2))
            losses.append(float(step(v1, v2)))
        history.append({"epoch": epoch + 1, "loss": float(np.mean(losses)), "seconds": time.perf_counter() - t0})
        report_progress(progress, (epoch + 1) / epochs, f"pre-training epoch {epoch + 1}/{epochs}: contrastive loss "
                        f"{history[-1]['loss']:.3f} ({history[-1]['seconds']:.0f} s)")
    return history


def embed(encoder: Any, a: dict[str, np.ndarray], batch_size: int = 1024) -> np.ndarray:
    """The encoder's embedding of each row (frozen: inference mode). Rows go in batches of similar length, each cut
    to its longest sequence: the padding is masked, so the embedding is the same, and short histories cost little."""
    n, dim = a["items"].shape[0], int(encoder.output.shape[-1])
    out = np.zeros((n, dim), np.float32)
    lengths = (a["kinds"] > 0).sum(axis=1)
    order = np.argsort(lengths, kind="stable")
    for i in range(0, n, batch_size):
        rows = order[i:i + batch_size]
        width = max(1, int(lengths[rows].max()))
        out[rows] = np.asarray(encoder({k: v[rows][:, -width:] for k, v in a.items()}, training=False))
    return out
