"""The reference the recommender is judged against on Online Retail II: what a competent analyst writes by hand.

It reads the raw invoice lines the way the project's acceptance check does, independent of the product's code:

- purchases: rows with a ``Customer ID``, an ``Invoice`` not starting with ``C``, ``Quantity > 0`` and ``Price > 0``;
  products are ``StockCode`` stripped and upper-cased;
- users: those who bought in the 365 days before the cutoff ``T``; truth: the products each of them bought in
  ``(T, T + horizon]`` (users who bought nothing then are left out);
- buy-again: a user's own products by purchase count (lines), then by last purchase time, padded with the most
  popular products of the 90 days before ``T``;
- P@k = hits / k, NDCG@k with the ideal DCG over ``min(k, |truth|)``, averaged over the buyers; coverage = share of
  the buyers who get any offer.

:func:`score_offers` scores any offer table (``user_id, rank, product``), e.g. the CSV written by
``python -m retention_core recommend``, with these rules.
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def purchases(raw: pd.DataFrame) -> pd.DataFrame:
    """``user, ts, item`` of the qualifying purchase lines of the raw Online Retail II table."""
    inv = raw["Invoice"].astype(str)
    ok = raw["Customer ID"].notna() & ~inv.str.startswith("C") & (raw["Quantity"] > 0) & (raw["Price"] > 0)
    p = raw.loc[ok.fillna(False)]
    return pd.DataFrame({"user": p["Customer ID"].astype("int64").astype(str).to_numpy(),
                         "ts": pd.to_datetime(p["InvoiceDate"]).to_numpy(),
                         "item": p["StockCode"].astype(str).str.strip().str.upper().to_numpy()})


def truth_and_users(p: pd.DataFrame, T, horizon: int = 90) -> tuple[dict[str, set], np.ndarray]:
    """(user -> products bought in ``(T, T + horizon]``, the users active in the 365 days before ``T``)."""
    T = pd.Timestamp(T)
    active = p.loc[(p["ts"] < T) & (p["ts"] >= T - pd.Timedelta(days=365)), "user"].unique()
    fut = p[(p["ts"] > T) & (p["ts"] <= T + pd.Timedelta(days=horizon)) & p["user"].isin(active)]
    truth = {u: set(g) for u, g in fut.groupby("user")["item"]}
    return truth, active


def buy_again(p: pd.DataFrame, T, users, k: int = 10) -> dict[str, list[str]]:
    """Each user's own products by count then last purchase, padded with the 90-day most popular products."""
    T = pd.Timestamp(T)
    past = p[p["ts"] < T]
    pop = past[past["ts"] >= T - pd.Timedelta(days=90)]["item"].value_counts().index.tolist()[:200]
    g = past[past["user"].isin(set(users))].groupby(["user", "item"]).agg(n=("ts", "size"), last=("ts", "max"))
    g = g.reset_index().sort_values(["user", "n", "last"], ascending=[True, False, False])
    own = {u: list(x["item"].head(k)) for u, x in g.groupby("user", sort=False)}
    out = {}
    for u in users:
        lst = own.get(u, [])
        seen = set(lst)
        for it in pop:
            if len(lst) >= k:
                break
            if it not in seen:
                lst.append(it)
                seen.add(it)
        out[u] = lst
    return out


def metrics(offers: dict[str, list[str]], truth: dict[str, set], k: int = 10) -> dict[str, float]:
    """P@k, NDCG@k and coverage over the users with a truth set, by the rules above."""
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    prec, ndcg, covered = [], [], 0
    for u, t in truth.items():
        lst = offers.get(u, [])[:k]
        covered += bool(lst)
        rel = np.array([it in t for it in lst], dtype=float)
        prec.append(rel.sum() / k)
        idcg = disc[:min(k, len(t))].sum()
        ndcg.append(float((rel * disc[:len(rel)]).sum() / idcg) if idcg else 0.0)
    n = max(len(truth), 1)
    return {"buyers": len(truth), "precision@k": float(np.mean(prec)) if prec else 0.0,
            "ndcg@k": float(np.mean(ndcg)) if ndcg else 0.0, "coverage": covered / n}


def score_offers(table: pd.DataFrame, truth: dict[str, set], k: int = 10) -> dict[str, float]:
    """Score an offer table (``user_id, rank, product``) with the reference's rules."""
    t = table.sort_values(["user_id", "rank"])
    items = t["product"].astype(str).str.strip().str.upper()
    offers = {str(u): list(g) for u, g in items.groupby(t["user_id"].astype(str), sort=False)}
    return metrics(offers, truth, k)
