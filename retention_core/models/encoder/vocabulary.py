"""Event tokens to the integer and float arrays the encoder reads.

Items (products, else categories) get ids by frequency in the training rows (``0``: padding, ``1``: an item outside
the vocabulary, seen too rarely or only after training); time gaps are also bucketed on a log scale.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from retention_core.event_tokens import KINDS, EventTokens

PAD, OOV = 0, 1
GAP_BUCKETS = 16  # 0: padding, 1: first event, then half-steps of log1p(days)


@dataclass
class Vocabulary:
    """The items the encoder knows, most frequent first (ids from 2)."""

    items: list

    @classmethod
    def learn(cls, tokens: EventTokens, max_size: int, min_count: int = 2) -> "Vocabulary":
        seen = Counter(v for v in tokens.items.ravel().tolist() if v != "")
        common = [k for k, c in seen.most_common(max(0, int(max_size) - 2)) if c >= min_count]
        return cls(common)

    @property
    def size(self) -> int:
        return len(self.items) + 2

    def ids(self, items: np.ndarray) -> np.ndarray:
        index = {k: i + 2 for i, k in enumerate(self.items)}
        flat = [PAD if v == "" else index.get(v, OOV) for v in items.ravel().tolist()]
        return np.asarray(flat, dtype=np.int32).reshape(items.shape)


def arrays(tokens: EventTokens, vocab: Vocabulary, width: int | None = None) -> dict[str, np.ndarray]:
    """The network's inputs for ``tokens`` (the last ``width`` events when given)."""
    t = tokens if width is None or width >= tokens.max_events else EventTokens(
        tokens.items[:, -width:], tokens.kinds[:, -width:], tokens.values[:, -width:], tokens.age_days[:, -width:],
        np.minimum(tokens.length, width))
    pad = t.kinds < 0
    gap = t.values[..., 2]
    bucket = np.where(gap < 0, 1, 2 + np.clip(np.floor(gap * 2), 0, GAP_BUCKETS - 3)).astype(np.int32)
    return {"items": vocab.ids(t.items), "kinds": np.where(pad, 0, t.kinds.astype(np.int32) + 1),
            "gaps": np.where(pad, 0, bucket), "values": np.where(pad[..., None], 0.0, t.values).astype(np.float32)}


N_KINDS = len(KINDS) + 1
