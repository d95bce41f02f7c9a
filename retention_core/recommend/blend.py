"""The shipped recommender: the user's own products first, ranked by a learned repeat-purchase model, then discovery.

How it is fitted at a cutoff ``T`` (nothing after ``T`` is read):

1. An inner time split at ``T' = T - horizon``: features of every (user, own product) pair from the history up to
   ``T'`` (how often and how recently the user bought it, the user's cadence, the product's recent popularity and
   repeat rate) and the label "bought again in ``(T', T]``" train a gradient-boosted classifier (the repeat-purchase
   model). The same split chooses the discovery source (co-purchase similarity or ALS) and the depth (how many own
   products may come before discovery), by precision@k and NDCG@k on the users who bought in ``(T', T]``, and
   measures the purchase rate of each offer position, which becomes the score of discovery and popular offers.
2. At ``T`` the model ranks each user's own products (its probability is their score); the chosen discovery source
   fills the list after ``depth`` own products; the recent best sellers fill what is left.

When the history before ``T`` is too short for an inner split, own products are ranked by their buy-again weight
(recency x frequency) and the note says so.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import candidates as C
from .data import DAY_NS, Log
from .metrics import precision_from_codes

BASES = ("buy_again", "similar", "als", "popular")
OWN, SIMILAR, ALS, POPULAR = range(4)
FEATURES = ("days_bought", "lines", "days_since_last", "days_since_first", "share_of_user_days", "buy_again_weight",
            "cycle_days", "overdue", "user_days", "user_days_90", "user_recency", "user_tenure", "user_products",
            "product_buyers", "product_buyers_30", "product_buyers_90", "product_recency", "product_repeat_rate")


@dataclass
class RecommenderConfig:
    """Settings of the recommender (days unless said otherwise); the defaults suit retail logs."""

    horizon_days: int = 90  # the inner split's horizon: what "will buy" means when learning
    lookback_days: int = 365  # users active in this window get offers by default
    half_life_days: float = 90.0  # buy-again weight of a purchase halves every this many days
    popularity_days: int = 90
    neighbours: int = 50  # similar products kept per product
    max_own: int = 100  # own products per user the repeat model ranks (by buy-again weight)
    discovery: int = 20  # discovery candidates per user
    als_factors: int = 32
    als_iterations: int = 15
    use_als: bool = True  # let the inner split consider ALS for discovery
    learn: bool = True  # learn the repeat model and the blend on an inner split
    max_train_users: int = 20_000
    min_history_days: int = 60  # the inner split needs this much history before T'
    depths: tuple[int, ...] = (10, 9, 8, 7, 5)  # own products before discovery, tried on the inner split (k = 10)
    seed: int = 0


@dataclass
class Blend:
    """What the inner split chose; ``table`` holds the inner-split precision/NDCG of every option tried."""

    depth: int
    discovery: str
    learned: bool
    note: str
    inner_cutoff: pd.Timestamp | None = None
    calibration: dict = field(default_factory=dict)  # (basis, position) -> purchase rate on the inner split
    table: pd.DataFrame = field(default_factory=pd.DataFrame)


# ------------------------------------------------------------------------------------------------ repeat model
def own_rows(stats: C.PairStats, users: np.ndarray, max_own: int) -> np.ndarray:
    """Pair rows of the users' own products, at most ``max_own`` per user (highest buy-again weight first)."""
    rows = stats.rows(users)
    if not max_own or len(rows) == 0:
        return rows
    _, kept, _ = C.top_n(stats.pu[rows].astype(np.int64), rows, stats.weight[rows], max_own)
    return np.sort(kept)


def own_features(stats: C.PairStats, rows: np.ndarray) -> np.ndarray:
    T = stats.t_day
    pu, pi = stats.pu[rows], stats.pi[rows]
    n_days = stats.n_days[rows].astype(np.float64)
    last, first = stats.last_day[rows], stats.first_day[rows]
    cycle = (last - first) / np.maximum(n_days - 1, 1)
    cols = [n_days, stats.n_lines[rows], T - last, T - first, n_days / np.maximum(stats.user_days[pu], 1),
            stats.weight[rows], cycle, (T - last) / (cycle + 1.0), stats.user_days[pu], stats.user_days_90[pu],
            T - stats.user_last[pu], T - stats.user_first[pu], stats.user_items[pu], stats.item_buyers[pi],
            stats.item_buyers_30[pi], stats.item_buyers_90[pi], T - stats.item_last[pi], stats.item_repeat[pi]]
    return np.column_stack([np.asarray(c, dtype=np.float32) for c in cols])


def _repeat_model(seed: int):
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(max_iter=100, learning_rate=0.1, max_leaf_nodes=15, min_samples_leaf=100,
                                          l2_regularization=1.0, early_stopping=False, random_state=seed)


def rank_own(model, stats: C.PairStats, users: np.ndarray, max_own: int) -> tuple[np.ndarray, ...]:
    """(user, product, score) of own products: the repeat model's probability, or the buy-again weight."""
    rows = own_rows(stats, users, max_own)
    if model is None or len(rows) == 0:
        return stats.pu[rows].astype(np.int64), stats.pi[rows].astype(np.int64), stats.weight[rows]
    with C.single_thread():
        p = model.predict_proba(own_features(stats, rows))[:, 1]
    return stats.pu[rows].astype(np.int64), stats.pi[rows].astype(np.int64), p


# ------------------------------------------------------------------------------------------------ assembling lists
def assemble(own, disc, disc_basis: int, pop: np.ndarray, users: np.ndarray, n: int, depth: int) -> dict:
    """Per user: own products (best first) up to ``depth``, then discovery, then the remaining own products, then
    popular products, without repeats, ``n`` in all. Returns coded columns ``user, pos, product, basis, basis_pos,
    raw``."""
    parts = []
    for (u, p, s), basis in ((own, OWN), (disc, disc_basis)):
        u, p, s = C.top_n(np.asarray(u, np.int64), np.asarray(p, np.int64), np.asarray(s, np.float64), 10**9)
        bpos = _positions(u)
        group = np.where(bpos < depth, 0, 2) if basis == OWN else np.ones(len(u), np.int64)
        parts.append((u, p, s, np.full(len(u), basis), bpos, group))
    top = pop[:n].astype(np.int64)
    m = len(top)
    parts.append((np.repeat(users.astype(np.int64), m), np.tile(top, len(users)), np.tile(-np.arange(m, dtype=float),
                  len(users)), np.full(len(users) * m, POPULAR), np.tile(np.arange(m), len(users)),
                  np.full(len(users) * m, 3)))
    u, p, s, b, bpos, g = (np.concatenate([x[j] for x in parts]) for j in range(6))
    order = np.lexsort((bpos, g, u))
    u, p, s, b, bpos, g = u[order], p[order], s[order], b[order], bpos[order], g[order]
    key = u * (int(p.max()) + 1 if len(p) else 1) + p
    _, first = np.unique(key, return_index=True)
    keep = np.sort(first)
    u, p, s, b, bpos = u[keep], p[keep], s[keep], b[keep], bpos[keep]
    pos = _positions(u)
    k = pos < n
    return {"user": u[k], "pos": pos[k], "product": p[k], "basis": b[k], "basis_pos": bpos[k], "raw": s[k]}


def _positions(sorted_users: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... within each run of equal users."""
    starts = C._group_bounds(sorted_users)
    return np.arange(len(sorted_users)) - np.repeat(starts, np.diff(np.append(starts, len(sorted_users))))


# ------------------------------------------------------------------------------------------------ the inner split
def learn_blend(log: Log, cfg: RecommenderConfig, n: int = 10) -> tuple[object, Blend]:
    """(repeat model or None, blend settings) learned on the inner split ``T - horizon`` of ``log``."""
    T = log.cutoff
    Ti = T - pd.Timedelta(days=cfg.horizon_days)
    inner = log.cut(Ti)
    first = int(inner.ts.min() // DAY_NS) if len(inner.ts) else None
    if not cfg.learn or first is None or Ti.value // DAY_NS - first < cfg.min_history_days:
        return None, Blend(depth=n, discovery="similar", learned=False, inner_cutoff=None,
                           note=f"Not enough history before {Ti.date()} to learn from: own products are ranked by "
                                "recency and frequency, then similar products.")
    stats = C.pair_stats(inner, cfg.half_life_days)
    users = inner.active_users(cfg.lookback_days)
    if len(users) > cfg.max_train_users:
        rng = np.random.default_rng(cfg.seed)
        users = np.sort(rng.choice(users, cfg.max_train_users, replace=False))
    truth = log.bought_between(Ti, T)
    truth = truth[np.isin(truth // log.n_items, users)]
    rows = own_rows(stats, users, cfg.max_own)
    y = np.isin(stats.pu[rows].astype(np.int64) * log.n_items + stats.pi[rows], truth)
    model = None
    if y.sum() >= 20 and (~y).sum() >= 20:
        with C.single_thread():
            model = _repeat_model(cfg.seed).fit(own_features(stats, rows), y)
    own = rank_own(model, stats, users, cfg.max_own)
    options = _discovery_options(inner, stats, users, cfg)
    blend = _choose(options, own, C.popularity(stats, cfg.popularity_days), users, truth, log.n_items, n, cfg)
    blend.inner_cutoff = Ti
    blend.learned = model is not None
    blend.note = (f"Learned on the purchases up to {Ti.date()} and what those users bought in the next "
                  f"{cfg.horizon_days} days ({len(users):,} users)." if model is not None else
                  "Too few repeat purchases to learn from: own products are ranked by recency and frequency.")
    return model, blend


def _discovery_options(inner: Log, stats: C.PairStats, users: np.ndarray, cfg: RecommenderConfig) -> dict:
    sim = C.item_similarity(stats, inner.n_items, neighbours=cfg.neighbours)
    out = {"similar": (C.similar_scores(sim, stats, users, cfg.discovery, exclude_own=True), SIMILAR)}
    if cfg.use_als:
        als = C.fit_als(inner, factors=cfg.als_factors, iterations=cfg.als_iterations, seed=cfg.seed)
        out["als"] = (C.als_scores(als, users, cfg.discovery, exclude_own=True), ALS)
    return out


def _choose(options: dict, own, pop, users, truth, n_items: int, n: int, cfg: RecommenderConfig) -> Blend:
    truth_users = np.unique(truth // n_items)
    rows, best, best_lists = [], None, None
    for name, (disc, basis) in options.items():
        for depth in sorted({min(d, n) for d in cfg.depths}, reverse=True):
            lists = assemble(own, disc, basis, pop, users, n, depth)
            p, g = precision_from_codes(lists["user"], lists["product"], lists["pos"], truth, truth_users, n_items, n)
            rows.append({"discovery": name, "depth": depth, "precision": p, "ndcg": g})
            if best is None or p + g > best[0] + 1e-12:
                best, best_lists = (p + g, name, depth), lists
    table = pd.DataFrame(rows)
    _, name, depth = best
    calib = _calibration(best_lists, truth, truth_users, n_items)
    return Blend(depth=depth, discovery=name, learned=True, note="", calibration=calib, table=table)


def _calibration(lists: dict, truth: np.ndarray, truth_users: np.ndarray, n_items: int) -> dict:
    """Purchase rate of each (basis, position within basis) on the inner split, over all listed users."""
    key = lists["user"] * n_items + lists["product"]
    hit = np.isin(key, truth)
    df = pd.DataFrame({"basis": lists["basis"], "pos": np.minimum(lists["basis_pos"], 19), "hit": hit})
    rate = df.groupby(["basis", "pos"])["hit"].agg(["mean", "size"])
    return {(int(b), int(p)): float(r["mean"]) for (b, p), r in rate.iterrows() if r["size"] >= 20}
