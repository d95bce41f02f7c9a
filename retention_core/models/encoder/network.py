"""The Keras encoder: per event, the item's, kind's and gap bucket's embeddings with the event's amounts and times,
then a GRU over the events (padding masked); the last state projected to the customer's embedding."""
from __future__ import annotations

from typing import Any

from retention_core.event_tokens import N_VALUES
from retention_core.models.keras_backend import load_keras

from .vocabulary import GAP_BUCKETS, N_KINDS


def build_encoder(vocab_size: int, *, item_dim: int = 256, units: int = 128, dim: int = 32, seed: int = 0) -> Any:
    """The encoder: inputs ``items, kinds, gaps`` (int, ``(batch, events)``) and ``values`` (``(batch, events,
    N_VALUES)``); output ``(batch, dim)``."""
    keras = load_keras()
    L = keras.layers
    keras.utils.set_random_seed(int(seed))
    items = keras.Input((None,), dtype="int32", name="items")
    kinds = keras.Input((None,), dtype="int32", name="kinds")
    gaps = keras.Input((None,), dtype="int32", name="gaps")
    values = keras.Input((None, N_VALUES), dtype="float32", name="values")
    x = L.Concatenate()([
        L.Embedding(int(vocab_size), int(item_dim), name="item_embedding")(items),
        L.Embedding(N_KINDS, 8, name="kind_embedding")(kinds),
        L.Embedding(GAP_BUCKETS, 8, name="gap_embedding")(gaps),
        L.Dense(16, activation="tanh", name="value_projection")(values),
    ])
    x = L.Dense(int(units), activation="relu", name="event_projection")(x)
    mask = keras.ops.greater(kinds, 0)
    h = L.GRU(int(units), name="gru")(x, mask=mask)
    z = L.Dense(int(dim), name="embedding")(L.Dense(int(units), activation="relu", name="head")(h))
    return keras.Model([items, kinds, gaps, values], z, name="event_encoder")
