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

from concurrent.futures import ThreadPoolExecutor
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
    max_train_rows: int = 200_000  # (user, own product) rows the repeat model learns from, at most
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

    return HistGradientBoostingClassifier(max_iter=60, learning_rate=0.15, max_leaf_nodes=15, min_samples_leaf=100,
                                          l2_regularization=1.0, early_stopping=False, random_state=seed)


def rank_own(model, stats: C.PairStats, users: np.ndarray, max_own: int, pool=None) -> tuple[np.ndarray, ...]:
    """(user, product, score) of own products: the repeat model's probability, or the buy-again weight. With a
    thread ``pool``, half the rows are scored on it (each row's score is independent, so the result is the same)."""
    rows = own_rows(stats, users, max_own)
    if model is None or len(rows) == 0:
        return stats.pu[rows].astype(np.int64), stats.pi[rows].astype(np.int64), stats.weight[rows]
    X = own_features(stats, rows)
    with C.single_thread():
        if pool is not None and len(rows) > 100_000:
            half = len(rows) // 2
            later = pool.submit(model.predict_proba, X[half:])
            p = np.concatenate([model.predict_proba(X[:half])[:, 1], later.result()[:, 1]])
        else:
            p = model.predict_proba(X)[:, 1]
    return stats.pu[rows].astype(np.int64), stats.pi[rows].astype(np.int64), p


# ------------------------------------------------------------------------------------------------ assembling lists
def best_per_user(cands, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``n`` best (user, product, score) of each user, sorted by user then score (best first)."""
    u, p, s = cands
    return C.top_n(np.asarray(u, np.int64), np.asarray(p, np.int64), np.asarray(s, np.float64), n)


def assemble(own, disc, disc_basis: int, pop: np.ndarray, users: np.ndarray, n: int, depth: int) -> dict:
    """Per user: own products (best first) up to ``depth``, then discovery, then the remaining own products, then
    popular products, without repeats, ``n`` in all. ``own`` and ``disc`` come from :func:`best_per_user` (at most
    ``n`` per user, disjoint). Returns coded columns ``user, pos, product, basis, basis_pos, raw`` sorted by user
    and position; each part is placed by arithmetic on positions, with no sort."""
    users = np.unique(np.asarray(users, np.int64))
    nu = len(users)
    slots = np.full((nu, n), -1, np.int64)  # product per (user, position)
    basis = np.full((nu, n), -1, np.int64)
    bpos = np.zeros((nu, n), np.int64)
    raw = np.zeros((nu, n))
    ou, op, os_ = own
    ui_o = np.searchsorted(users, ou)
    j_o = _positions(ou)
    n_own = np.bincount(ui_o, minlength=nu)
    du, dp, ds = disc
    ui_d = np.searchsorted(users, du)
    j_d = _positions(du)
    n_disc = np.bincount(ui_d, minlength=nu)
    head = np.minimum(n_own, depth)
    pos_o = np.where(j_o < depth, j_o, head[ui_o] + n_disc[ui_o] + j_o - depth)
    pos_d = head[ui_d] + j_d
    for ui, pos, p, sc, b, j in ((ui_o, pos_o, op, os_, OWN, j_o), (ui_d, pos_d, dp, ds, disc_basis, j_d)):
        k = pos < n
        slots[ui[k], pos[k]], basis[ui[k], pos[k]], raw[ui[k], pos[k]], bpos[ui[k], pos[k]] = p[k], b, sc[k], j[k]
    top = np.asarray(pop[:n], np.int64)
    if len(top):
        where = np.full(max(int(top.max()), int(op.max(initial=0)), int(dp.max(initial=0))) + 1, -1, np.int64)
        where[top] = np.arange(len(top))  # product -> its place among the best sellers
        fresh = np.ones((nu, len(top)), bool)
        for ui, p in ((ui_o, op), (ui_d, dp)):
            w = where[p]
            fresh[ui[w >= 0], w[w >= 0]] = False  # already listed as own or discovery
        rank = np.cumsum(fresh, axis=1) - 1
        pos = (n_own + n_disc)[:, None] + rank
        k = fresh & (pos < n)
        ui = np.broadcast_to(np.arange(nu)[:, None], k.shape)[k]
        slots[ui, pos[k]] = np.broadcast_to(top[None, :], k.shape)[k]
        basis[ui, pos[k]], bpos[ui, pos[k]] = POPULAR, np.broadcast_to(np.arange(len(top))[None, :], k.shape)[k]
        raw[ui, pos[k]] = -bpos[ui, pos[k]]
    filled = slots >= 0
    ui, pos = np.nonzero(filled)
    return {"user": users[ui], "pos": pos, "product": slots[filled], "basis": basis[filled], "basis_pos": bpos[filled],
            "raw": raw[filled]}


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
        why = "Learning is switched off" if not cfg.learn else f"Not enough history before {Ti.date()} to learn from"
        return None, Blend(depth=n, discovery="similar", learned=False, inner_cutoff=None,
                           note=f"{why}: own products are ranked by recency and frequency, then similar products.")
    with C.single_thread(), ThreadPoolExecutor(1) as pool:  # ALS learns on the second core meanwhile
        stats = C.pair_stats(inner, cfg.half_life_days)
        users, rows = _training_users(inner, stats, cfg)
        als = pool.submit(C.fit_als, inner, factors=cfg.als_factors, iterations=cfg.als_iterations, seed=cfg.seed,
                          users=users) if cfg.use_als else None
        truth = log.bought_between(Ti, T)
        truth = truth[np.isin(truth // log.n_items, users)]
        y = np.isin(stats.pu[rows].astype(np.int64) * log.n_items + stats.pi[rows], truth)
        model = None
        if y.sum() >= 20 and (~y).sum() >= 20:
            model = _repeat_model(cfg.seed).fit(own_features(stats, rows), y)
        own = best_per_user(rank_own(model, stats, users, cfg.max_own), n)
        sim = C.item_similarity(stats, inner.n_items, neighbours=cfg.neighbours)
        options = {"similar": (C.similar_scores(sim, stats, users, cfg.discovery, exclude_own=True), SIMILAR)}
        if als is not None:
            options["als"] = (C.als_scores(als.result(), users, cfg.discovery, exclude_own=True), ALS)
    blend = _choose(options, own, C.popularity(stats, cfg.popularity_days), users, truth, log.n_items, n, cfg)
    blend.inner_cutoff = Ti
    blend.learned = model is not None
    blend.note = (f"Learned on the purchases up to {Ti.date()} and what those users bought in the next "
                  f"{cfg.horizon_days} days ({len(users):,} users)." if model is not None else
                  "Too few repeat purchases to learn from: own products are ranked by recency and frequency.")
    return model, blend


def _training_users(inner: Log, stats: C.PairStats, cfg: RecommenderConfig) -> tuple[np.ndarray, np.ndarray]:
    """(users, their own-product rows) the inner split learns from: the active users, a seeded sample of at most
    ``max_train_users`` users whose rows number at most ``max_train_rows``."""
    users = inner.active_users(cfg.lookback_days)
    if len(users) > cfg.max_train_users:
        users = np.sort(np.random.default_rng(cfg.seed).choice(users, cfg.max_train_users, replace=False))
    rows = own_rows(stats, users, cfg.max_own)
    if len(rows) > cfg.max_train_rows:  # fewer users, all of each user's products
        per_user = np.bincount(np.searchsorted(users, stats.pu[rows]), minlength=len(users))
        order = np.random.default_rng(cfg.seed + 1).permutation(len(users))
        users = np.sort(users[order[np.cumsum(per_user[order]) <= cfg.max_train_rows]])
        rows = own_rows(stats, users, cfg.max_own)
    return users, rows


def _choose(options: dict, own, pop, users, truth, n_items: int, n: int, cfg: RecommenderConfig) -> Blend:
    truth_users = np.unique(truth // n_items)
    rows, best, best_lists = [], None, None
    for name, (disc, basis) in options.items():
        disc = best_per_user(disc, n)
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


def _calibration(lists: dict, truth: np.ndarray, truth_users: np.ndarray, n_items: int, prior: float = 20.0) -> dict:
    """Purchase rate of each (basis, position within basis) on the inner split, over all listed users, shrunk towards
    the basis's overall rate as if ``prior`` more offers had that rate (so a position seen a few times is not 0)."""
    key = lists["user"] * n_items + lists["product"]
    hit = np.isin(key, truth)
    df = pd.DataFrame({"basis": lists["basis"], "pos": np.minimum(lists["basis_pos"], 19), "hit": hit})
    overall = df.groupby("basis")["hit"].mean()
    rate = df.groupby(["basis", "pos"])["hit"].agg(["sum", "size"])
    return {(int(b), int(p)): float((r["sum"] + prior * overall[b]) / (r["size"] + prior))
            for (b, p), r in rate.iterrows()}
