"""Ranking metrics of offers against what users bought afterwards (pure functions, no model code).

For one user with an ordered offer list ``r`` and the set ``T`` of products bought in the horizon:

- precision@k = |r[:k] ∩ T| / k (a list shorter than k still divides by k);
- recall@k = |r[:k] ∩ T| / |T|;
- NDCG@k = DCG / IDCG with DCG = sum over hits at position i (1-based) of 1 / log2(i + 1), and IDCG the same for
  ``min(k, |T|)`` hits at the top;
- hit rate@k = 1 when at least one of the first k offers was bought, else 0;
- novelty@k = share of the first k offers the user had never bought before the cutoff.

:func:`ranking_metrics` averages them over the users with a non-empty ``T`` (users who bought nothing in the horizon
cannot score), vectorised over a tidy offer table.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

METRICS = ("precision", "recall", "ndcg", "hit_rate", "novelty")
METRIC_LABELS = {"precision": "Precision@k", "recall": "Recall@k", "ndcg": "NDCG@k", "hit_rate": "Hit rate@k",
                 "novelty": "New to the user"}


def _hits(recommended: Sequence, relevant: Iterable, k: int) -> np.ndarray:
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    rel = set(relevant)
    return np.array([x in rel for x in list(recommended)[:k]], dtype=float)


def precision_at_k(recommended: Sequence, relevant: Iterable, k: int = 10) -> float:
    return float(_hits(recommended, relevant, k).sum() / k)


def recall_at_k(recommended: Sequence, relevant: Iterable, k: int = 10) -> float:
    rel = set(relevant)
    return float(_hits(recommended, rel, k).sum() / len(rel)) if rel else 0.0


def ndcg_at_k(recommended: Sequence, relevant: Iterable, k: int = 10) -> float:
    rel = set(relevant)
    h = _hits(recommended, rel, k)
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    idcg = disc[:min(k, len(rel))].sum()
    return float((h * disc[:len(h)]).sum() / idcg) if idcg > 0 else 0.0


def hit_rate_at_k(recommended: Sequence, relevant: Iterable, k: int = 10) -> float:
    return float(_hits(recommended, relevant, k).any())


def novelty_share(recommended: Sequence, history: Iterable, k: int = 10) -> float:
    """Share of the first ``k`` offers the user never bought before (0 for an empty list)."""
    r = list(recommended)[:k]
    if not r:
        return 0.0
    h = set(history)
    return float(np.mean([x not in h for x in r]))


def _pair_keys(frame: pd.DataFrame) -> pd.Index:
    """``user_id`` and ``product`` joined into one text key per row."""
    keys = frame["user_id"].astype(str).to_numpy(object) + "\x1f" + frame["product"].astype(str).to_numpy(object)
    return pd.Index(keys, dtype=object)


def ranking_metrics(offers: pd.DataFrame, truth: pd.DataFrame, k: int = 10,
                    history: pd.DataFrame | None = None) -> dict[str, float]:
    """Mean precision, recall, NDCG and hit rate at ``k`` (and novelty when ``history`` is given) over the users of
    ``truth`` (``user_id, product`` bought in the horizon); ``offers`` is ``user_id, rank, product``.

    Also ``users`` (users scored) and ``coverage`` (share of them with at least one offer).
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    t = truth[["user_id", "product"]].astype(str).drop_duplicates()
    users = pd.Index(t["user_id"].unique())
    n = len(users)
    if n == 0:
        return {m: float("nan") for m in METRICS} | {"users": 0, "coverage": float("nan")}
    o = offers[["user_id", "rank", "product"]].copy()
    o["user_id"], o["product"] = o["user_id"].astype(str), o["product"].astype(str)
    o = o[o["user_id"].isin(users)].sort_values(["user_id", "rank"], kind="stable")
    o = o.drop_duplicates(["user_id", "product"])
    o["pos"] = o.groupby("user_id", sort=False).cumcount()
    o = o[o["pos"] < k]
    o["hit"] = _pair_keys(o).isin(_pair_keys(t))
    ui = users.get_indexer(o["user_id"])
    hits = np.bincount(ui, weights=o["hit"].to_numpy(float), minlength=n)
    disc = 1.0 / np.log2(o["pos"].to_numpy() + 2.0)
    dcg = np.bincount(ui, weights=o["hit"].to_numpy(float) * disc, minlength=n)
    n_rel = t.groupby("user_id").size().reindex(users).to_numpy()
    ideal = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))])
    out = {"precision": float(np.mean(hits / k)), "recall": float(np.mean(hits / n_rel)),
           "ndcg": float(np.mean(dcg / ideal[np.minimum(n_rel, k)])), "hit_rate": float(np.mean(hits > 0))}
    if history is not None:
        new = (~_pair_keys(o).isin(_pair_keys(history))).astype(float)
        per = np.bincount(ui, weights=new, minlength=n) / np.maximum(np.bincount(ui, minlength=n), 1)
        has = np.bincount(ui, minlength=n) > 0
        out["novelty"] = float(per[has].mean()) if has.any() else float("nan")
    else:
        out["novelty"] = float("nan")
    out["users"] = n
    out["coverage"] = float((np.bincount(ui, minlength=n) > 0).mean())
    return out


def precision_from_codes(users: np.ndarray, products: np.ndarray, pos: np.ndarray, truth_keys: np.ndarray,
                         truth_users: np.ndarray, n_items: int, k: int) -> tuple[float, float]:
    """(precision@k, NDCG@k) of coded lists over the coded truth users (a fast form of :func:`ranking_metrics` for
    choosing settings on the inner split). ``truth_keys`` are sorted ``user * n_items + product`` keys."""
    if len(truth_users) == 0:
        return 0.0, 0.0
    keep = (pos < k) & np.isin(users, truth_users)
    key = users[keep].astype(np.int64) * n_items + products[keep]
    hit = np.isin(key, truth_keys).astype(float)
    ui = np.searchsorted(truth_users, users[keep])
    n = len(truth_users)
    hits = np.bincount(ui, weights=hit, minlength=n)
    dcg = np.bincount(ui, weights=hit / np.log2(pos[keep] + 2.0), minlength=n)
    n_rel = np.bincount(np.searchsorted(truth_users, truth_keys // n_items), minlength=n)
    ideal = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))])
    return float(np.mean(hits / k)), float(np.mean(dcg / ideal[np.minimum(n_rel, k)]))
