"""Each customer's recent events as tokens, as of each snapshot's cutoff: what the pre-trained sequence encoder reads.

For a row ``(user_id, snapshot_date T)`` of a dataset, :func:`tokenize` keeps the user's last ``max_events`` events at
or before ``T`` (the same rule as the features: an event at ``ts <= T`` counts) and writes, per event, oldest first and
left-padded:

* ``items``: the product (else the category) as text, ``""`` for padding; the encoder maps it to its own vocabulary;
* ``kinds``: ``purchase``, ``return``, ``cancel``, ``fee`` (a non-product line) or ``other``;
* ``values``: ``sign * log1p(|amount|)``, ``sign * log1p(|quantity|)``, ``log1p`` of the days since the user's previous
  event (``-1`` for a first event) and ``log1p`` of the days from the event to the cutoff;
* ``age_days``: days from the event to the cutoff (attributions are summed to weeks by it).

Nothing after ``T`` is read for a row at ``T``, whatever the log holds (the leakage tests check it).
:class:`SequenceInputs` carries these tokens beside the weekly activity in a dataset; in a model's input they are
columns of their own (:func:`token_columns`, ``evt:e<event>:<field>``, added by ``models.base.with_sequences``), so they
follow their rows through every slice scikit-learn makes, and :func:`tokens_of` reads them back.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["EventTokens", "SequenceInputs", "tokenize", "token_columns", "tokens_of", "KINDS", "N_VALUES"]

KINDS = ("purchase", "return", "cancel", "fee", "other")
N_VALUES = 4  # log amount, log quantity, log gap to the previous event, log age at the cutoff


@dataclass
class EventTokens:
    """Per-row event tokens (rows aligned with a dataset's frame); see the module's docstring."""

    items: np.ndarray  # (rows, L) object
    kinds: np.ndarray  # (rows, L) int8: index in KINDS, -1 for padding
    values: np.ndarray  # (rows, L, N_VALUES) float32
    age_days: np.ndarray  # (rows, L) float32, NaN for padding
    length: np.ndarray  # (rows,) int32: events kept (at most L)

    def __len__(self) -> int:
        return int(self.length.shape[0])

    def __getitem__(self, idx) -> "EventTokens":
        return EventTokens(self.items[idx], self.kinds[idx], self.values[idx], self.age_days[idx], self.length[idx])

    @property
    def max_events(self) -> int:
        return int(self.items.shape[1])


class SequenceInputs:
    """The weekly activity ``(rows, weeks, channels)`` and the event tokens of the same rows, sliced together.

    ``np.asarray(inputs)`` is the weekly array (so the weekly sequence models read it unchanged); ``inputs.tokens`` the
    :class:`EventTokens`."""

    def __init__(self, weekly: np.ndarray | None, tokens: EventTokens):
        self.weekly = weekly
        self.tokens = tokens

    def __len__(self) -> int:
        return len(self.tokens)

    def __getitem__(self, idx) -> "SequenceInputs":
        return SequenceInputs(None if self.weekly is None else self.weekly[idx], self.tokens[idx])

    @property
    def shape(self) -> tuple:
        return self.weekly.shape if self.weekly is not None else (len(self),)

    def __array__(self, dtype=None, copy=None):  # noqa: ARG002 - NumPy's protocol
        if self.weekly is None:
            raise TypeError("These sequence inputs hold event tokens only, no weekly activity.")
        return np.asarray(self.weekly, dtype=dtype)


def _kind_codes(ev: pd.DataFrame) -> np.ndarray:
    code = np.full(len(ev), KINDS.index("other"), dtype=np.int8)
    code[ev["is_purchase"].to_numpy(dtype=bool)] = KINDS.index("purchase")
    code[ev["is_return"].to_numpy(dtype=bool)] = KINDS.index("return")
    code[ev["is_cancel"].to_numpy(dtype=bool)] = KINDS.index("cancel")
    code[ev["is_nonproduct"].to_numpy(dtype=bool)] = KINDS.index("fee")
    return code


def _signed_log(x: np.ndarray) -> np.ndarray:
    x = np.nan_to_num(np.asarray(x, dtype="float64"), nan=0.0)
    return (np.sign(x) * np.log1p(np.abs(x))).astype(np.float32)


def _prepared(ev: pd.DataFrame) -> pd.DataFrame:
    """The log sorted by user and time, with each event's item text, kind and its gap to the user's previous event."""
    e = ev[["user_id", "ts", "amount", "quantity", "product", "category", "is_purchase", "is_return", "is_cancel",
            "is_nonproduct"]].sort_values(["user_id", "ts"], kind="mergesort").reset_index(drop=True)
    item = e["product"].astype("object").where(e["product"].notna(), e["category"].astype("object"))
    e["item"] = item.where(item.notna(), "(none)").astype(str)
    e["kind"] = _kind_codes(e)
    gap = e.groupby("user_id", sort=False)["ts"].diff().dt.total_seconds().to_numpy() / 86400.0
    e["gap"] = np.where(np.isnan(gap), -1.0, np.log1p(np.maximum(gap, 0.0))).astype(np.float32)
    return e


def tokenize(ev: pd.DataFrame, rows: pd.DataFrame, max_events: int = 128) -> EventTokens:
    """Event tokens for each of ``rows`` (``user_id``, ``snapshot_date``) from the canonical event table ``ev``: the
    user's last ``max_events`` events at or before the row's cutoff."""
    n, L = len(rows), int(max_events)
    out = EventTokens(np.full((n, L), "", dtype=object), np.full((n, L), -1, dtype=np.int8),
                      np.zeros((n, L, N_VALUES), dtype=np.float32), np.full((n, L), np.nan, dtype=np.float32),
                      np.zeros(n, dtype=np.int32))
    if n == 0 or len(ev) == 0:
        return out
    e = _prepared(ev)
    dates = pd.to_datetime(rows["snapshot_date"]).to_numpy()
    uid = rows["user_id"].to_numpy()
    for T in np.unique(dates):
        at = np.flatnonzero(dates == T)
        past = e[e["ts"].to_numpy() <= T]
        past = past[past["user_id"].isin(uid[at])]
        back = past.groupby("user_id", sort=False).cumcount(ascending=False).to_numpy()
        past = past[back < L]
        back = back[back < L]
        row_of = pd.Series(at, index=pd.Index(uid[at]))
        r = row_of.reindex(past["user_id"].to_numpy()).to_numpy()
        count = past.groupby("user_id", sort=False).size()
        out.length[row_of.to_numpy()] = count.reindex(row_of.index).fillna(0).to_numpy(dtype=np.int32)
        pos = L - 1 - back
        age = (T - past["ts"].to_numpy()) / np.timedelta64(1, "D")
        out.items[r, pos] = past["item"].to_numpy()
        out.kinds[r, pos] = past["kind"].to_numpy()
        out.age_days[r, pos] = age
        out.values[r, pos] = np.column_stack([
            _signed_log(past["amount"].to_numpy()), _signed_log(past["quantity"].to_numpy()),
            past["gap"].to_numpy(), np.log1p(np.maximum(age, 0.0))]).astype(np.float32)
    return out


# ------------------------------------------------------------------------------------- tokens in a model's input
PREFIX = "evt:"  #: the start of every token column of a model's input (models.base.EVENT_PREFIX)
_FIELDS = ("item", "kind", *(f"v{k}" for k in range(N_VALUES)), "age")


def _names(L: int) -> list[str]:
    return [f"{PREFIX}e{i:03d}:{f}" for i in range(L) for f in _FIELDS]


def token_columns(tokens: EventTokens, index=None) -> pd.DataFrame:
    """The tokens as columns of a model's input, event by event, field by field (``evt:e<event>:<field>``; the item
    as text, the kind as its index in :data:`KINDS` with -1 for padding, the values and the age as numbers)."""
    n, L = len(tokens), tokens.max_events
    cols: dict[str, np.ndarray] = {}
    for i in range(L):
        cols[f"{PREFIX}e{i:03d}:item"] = tokens.items[:, i]
        cols[f"{PREFIX}e{i:03d}:kind"] = tokens.kinds[:, i]
        for k in range(N_VALUES):
            cols[f"{PREFIX}e{i:03d}:v{k}"] = tokens.values[:, i, k]
        cols[f"{PREFIX}e{i:03d}:age"] = tokens.age_days[:, i]
    return pd.DataFrame(cols, index=index if index is not None else pd.RangeIndex(n), copy=False)


def tokens_of(X: pd.DataFrame) -> EventTokens | None:
    """The event tokens a model's input carries (:func:`token_columns`), or None when it carries none."""
    L = sum(1 for c in X.columns if isinstance(c, str) and c.startswith(PREFIX) and c.endswith(":item"))
    if L == 0:
        return None
    missing = [c for c in _names(L) if c not in X.columns]
    if missing:
        from .errors import ModelError

        raise ModelError(f"The event tokens of the model's input are incomplete: {missing[0]!r} is missing.")
    n = len(X)
    items = X[[f"{PREFIX}e{i:03d}:item" for i in range(L)]].to_numpy(dtype=object)
    items = np.where(pd.isna(items), "", items).astype(object)
    kinds = np.nan_to_num(X[[f"{PREFIX}e{i:03d}:kind" for i in range(L)]].to_numpy(dtype="float64"),
                          nan=-1.0).astype(np.int8)
    values = np.stack([X[[f"{PREFIX}e{i:03d}:v{k}" for k in range(N_VALUES)]].to_numpy(dtype=np.float32)
                       for i in range(L)], axis=1) if n else np.zeros((0, L, N_VALUES), dtype=np.float32)
    age = X[[f"{PREFIX}e{i:03d}:age" for i in range(L)]].to_numpy(dtype=np.float32)
    return EventTokens(items, kinds, values.reshape(n, L, N_VALUES), age, (kinds >= 0).sum(axis=1).astype(np.int32))
