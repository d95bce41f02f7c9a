"""Readable units: what an explanation speaks of, and each user's value of it.

One unit per original input column: the one-hot columns of a categorical and the missing-value indicator of a numeric
column are summed back into their column. Sequence models add, for each weekly activity channel, "<channel> in the
last 4 weeks" and "<channel> 5-<W> weeks ago".
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

import numpy as np
import pandas as pd

from ..features import SEQUENCE_CHANNELS

RECENT_WEEKS = 4

# weekly activity channels of the sequence models: readable noun and how a week's value is turned back into a count
_CHANNELS: dict[str, tuple[str, Callable[[np.ndarray], np.ndarray]]] = {
    "orders": ("orders", lambda a: a),
    "revenue_log": ("spend", np.expm1),
    "browsing_log": ("browsing", np.expm1),
    "returns": ("returns", lambda a: a),
}


def is_numeric(s: pd.Series) -> bool:
    """A column read as numbers (booleans are read as categories)."""
    return pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)


def unit_of_encoded(names: Sequence[str], columns: Sequence[str], categorical: Sequence[str]) -> list[str]:
    """The original column behind each encoded column: itself, ``missingindicator_<col>`` -> col, ``<col>=<value>``
    -> col (longest matching categorical name, so ``a=b=c`` is read right)."""
    cols = set(columns)
    cats = sorted(categorical, key=len, reverse=True)
    out = []
    for name in names:
        name = str(name)
        if name in cols:
            out.append(name)
        elif name.startswith("missingindicator_") and name[len("missingindicator_"):] in cols:
            out.append(name[len("missingindicator_"):])
        else:
            match = next((c for c in cats if name.startswith(f"{c}=")), None)
            out.append(match if match is not None else name)
    return out


def grouping(enc_units: list[str]) -> tuple[list[str], np.ndarray]:
    """(units in order of first appearance, 0/1 matrix encoded-column x unit that sums columns into units)."""
    units = list(dict.fromkeys(enc_units))
    index = {u: k for k, u in enumerate(units)}
    A = np.zeros((len(enc_units), len(units)))
    for j, u in enumerate(enc_units):
        A[j, index[u]] = 1.0
    return units, A


class SequenceUnit(NamedTuple):
    """One readable unit of weekly activity: its ``name``, the ``channel`` index and ``weeks`` indices it sums, and
    the ``source`` channel's name (which says how a week's value is turned back into a count)."""

    name: str
    channel: int
    weeks: np.ndarray
    source: str


def sequence_units(weeks: int, channels: int) -> list[SequenceUnit]:
    """For each channel: the last 4 weeks and the older ones."""
    names = SEQUENCE_CHANNELS if channels == len(SEQUENCE_CHANNELS) else [f"channel {c + 1}" for c in range(channels)]
    recent = min(RECENT_WEEKS, weeks)
    word = "week" if recent == 1 else "weeks"
    out = []
    for c, ch in enumerate(names):
        noun = _CHANNELS.get(ch, (ch, None))[0]
        out.append(SequenceUnit(f"{noun} in the last {recent} {word}", c, np.arange(weeks - recent, weeks), ch))
        if weeks > recent:
            out.append(SequenceUnit(f"{noun} {recent + 1}-{weeks} weeks ago", c, np.arange(0, weeks - recent), ch))
    return out


def _to_count(channel: str) -> Callable[[np.ndarray], np.ndarray]:
    return _CHANNELS.get(channel, (channel, lambda a: a))[1]


def unit_values(X: pd.DataFrame, units: Sequence[str], seq_units: Sequence[SequenceUnit],
                sequences: Any = None) -> pd.DataFrame:
    """Each user's value of each unit: the original columns; activity sums for sequence units (missing when no
    ``sequences`` are given, or for a unit ``X`` does not hold)."""
    out = pd.DataFrame(index=X.index)
    seq = None if sequences is None else np.asarray(sequences, dtype=np.float32)
    by_name = {s.name: s for s in seq_units}
    for u in units:
        s = by_name.get(u)
        if s is not None:
            if seq is None:
                out[u] = np.nan
                continue
            out[u] = _to_count(s.source)(seq[:, s.weeks, s.channel].astype("float64")).sum(axis=1)
        elif u in X.columns:
            out[u] = X[u].to_numpy()
        else:
            out[u] = np.nan
    return out
