"""Which of a customer's recent events moved the encoder's part of their score most.

Occlusion: each event (or each week of events) is left out of the customer's sequence in turn, the encoder embeds
what remains and the fused boosting scores it with the customer's own aggregate features; the event's effect is the
change in churn log-odds it causes (positive: the event raises the churn risk). Only the embedding changes, so the
effects are those of the encoder's part; they are read per event and summed per week before the scoring date.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from retention_core.event_tokens import KINDS, EventTokens, SequenceInputs
from retention_core.models.base import churn_probability, with_sequences


def _without(tokens: EventTokens, drops: list[np.ndarray]) -> EventTokens:
    """One copy of the single row ``tokens`` per entry of ``drops`` (positions to leave out), re-left-padded."""
    L, n = tokens.max_events, len(drops)
    out = EventTokens(np.full((n, L), "", dtype=object), np.full((n, L), -1, dtype=np.int8),
                      np.zeros((n, L, tokens.values.shape[2]), np.float32), np.full((n, L), np.nan, np.float32),
                      np.zeros(n, np.int32))
    real = np.flatnonzero(tokens.kinds[0] >= 0)
    for i, drop in enumerate(drops):
        keep = np.setdiff1d(real, drop)
        k = len(keep)
        if k:
            out.items[i, L - k:], out.kinds[i, L - k:] = tokens.items[0, keep], tokens.kinds[0, keep]
            out.values[i, L - k:], out.age_days[i, L - k:] = tokens.values[0, keep], tokens.age_days[0, keep]
        out.length[i] = k
    return out


def event_effects(model, x: pd.DataFrame, tokens: EventTokens) -> pd.DataFrame:
    """Per event of one customer (``x``: their one feature row, ``tokens``: their one row of tokens), most recent
    first: ``item``, ``kind``, ``days_before``, ``week`` (0 = the last 7 days), ``effect`` (change in churn log-odds
    when the event is left out, negated: what the event adds)."""
    if len(x) != 1 or len(tokens) != 1:
        raise ValueError("event_effects explains one customer at a time.")
    real = np.flatnonzero(tokens.kinds[0] >= 0)
    if len(real) == 0:
        return pd.DataFrame(columns=["item", "kind", "days_before", "week", "effect"])
    variants = _without(tokens, [np.array([], int)] + [np.array([j]) for j in real])
    X = pd.concat([x] * len(variants), ignore_index=True)
    p = np.clip(churn_probability(model, with_sequences(X, SequenceInputs(None, variants))), 1e-9, 1 - 1e-9)
    logit = np.log(p / (1 - p))
    age = tokens.age_days[0, real]
    out = pd.DataFrame({"item": tokens.items[0, real], "kind": [KINDS[k] for k in tokens.kinds[0, real]],
                        "days_before": age, "week": (age // 7).astype(int), "effect": logit[0] - logit[1:]})
    return out.iloc[::-1].reset_index(drop=True)


def week_effects(events: pd.DataFrame) -> pd.DataFrame:
    """The events' effects summed per week before the scoring date (``week`` 0 = the last 7 days)."""
    if events.empty:
        return pd.DataFrame(columns=["week", "events", "effect"])
    return (events.groupby("week").agg(events=("effect", "size"), effect=("effect", "sum")).reset_index()
            .sort_values("week"))
