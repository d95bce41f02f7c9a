"""Candidate offers, each a plain model of "what will this user buy next", computed from a :class:`Log`.

- buy-again: the user's own products, each weighted by recency and frequency (every day it was bought counts,
  halving every ``half_life_days``);
- popularity: products bought by the most customers in a recent window;
- item-item similarity: cosine similarity of co-purchases (two products bought by the same customers), shrunk for
  products bought by few, keeping each product's strongest neighbours;
- ALS: matrix factorisation on implicit feedback (the ``implicit`` library), single-threaded and seeded so the same
  data gives the same offers.
"""
from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .data import CART, PURCHASE, VIEW, Log


@dataclass
class PairStats:
    """Per (user, product) purchase history at the cutoff, with per-user and per-product totals."""

    pu: np.ndarray  # user code of each pair (sorted by user, then product)
    pi: np.ndarray  # product code of each pair
    n_days: np.ndarray  # distinct days the user bought the product
    n_lines: np.ndarray  # purchase lines
    first_day: np.ndarray
    last_day: np.ndarray
    weight: np.ndarray  # buy-again weight: sum over purchase days of 0.5 ** (age / half-life)
    user_days: np.ndarray  # per user: distinct purchase days
    user_last: np.ndarray
    user_first: np.ndarray
    user_items: np.ndarray
    user_days_90: np.ndarray
    item_buyers: np.ndarray  # per product: distinct buyers ever
    item_buyers_30: np.ndarray
    item_buyers_90: np.ndarray
    item_last: np.ndarray
    item_repeat: np.ndarray  # share of the product's buyers who bought it on two days or more
    t_day: int

    def rows(self, users: np.ndarray) -> np.ndarray:
        """Indices of the pairs of the given users (codes)."""
        starts = np.searchsorted(self.pu, users, side="left")
        ends = np.searchsorted(self.pu, users, side="right")
        lens = ends - starts
        if lens.sum() == 0:
            return np.zeros(0, dtype=np.int64)
        offs = np.repeat(starts - np.cumsum(lens) + lens, lens)
        return offs + np.arange(lens.sum())


def _sorted_counts(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(unique keys, counts) by sorting (faster than ``np.unique`` on millions of int64 keys)."""
    k = np.sort(keys)
    starts = _group_bounds(k)
    return k[starts], np.diff(np.append(starts, len(k)))


def _group_bounds(keys: np.ndarray) -> np.ndarray:
    """Start index of each run of equal values in a sorted array."""
    if len(keys) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))


def pair_stats(log: Log, half_life_days: float = 90.0) -> PairStats:
    u, i, d = log.purchases()
    nu, ni, T = log.n_users, log.n_items, log.t_day
    d0 = int(d.min()) if len(d) else 0
    span = int(d.max()) - d0 + 1 if len(d) else 1
    key = (u.astype(np.int64) * ni + i) * span + (d - d0)
    kd, lines = _sorted_counts(key)  # one row per (user, product, day)
    pk, day = kd // span, (kd % span + d0).astype(np.int32)
    starts = _group_bounds(pk)
    ends = np.append(starts[1:], len(pk))
    pairs = pk[starts]
    pu, pi = (pairs // ni).astype(np.int32), (pairs % ni).astype(np.int32)
    age = (T - day).astype(np.float64)
    weight = np.add.reduceat(0.5 ** (age / half_life_days), starts) if len(starts) else np.zeros(0)
    n_days = (ends - starts).astype(np.int32)
    n_lines = np.add.reduceat(lines, starts).astype(np.int32) if len(starts) else np.zeros(0, np.int32)
    first_day, last_day = day[starts], day[ends - 1]

    ud, _ = _sorted_counts(u.astype(np.int64) * span + (d - d0))
    ud_u, ud_day = ud // span, ud % span + d0
    user_days = np.bincount(ud_u, minlength=nu).astype(np.int32)
    user_days_90 = np.bincount(ud_u[ud_day > T - 90], minlength=nu).astype(np.int32)
    user_last = np.full(nu, -10**6, np.int32)
    np.maximum.at(user_last, pu, last_day)
    user_first = np.full(nu, 10**6, np.int32)
    np.minimum.at(user_first, pu, first_day)
    item_last = np.full(ni, -10**6, np.int32)
    np.maximum.at(item_last, pi, last_day)
    buyers = np.bincount(pi, minlength=ni)
    return PairStats(
        pu=pu, pi=pi, n_days=n_days, n_lines=n_lines, first_day=first_day, last_day=last_day,
        weight=weight.astype(np.float64), user_days=user_days, user_last=user_last, user_first=user_first,
        user_items=np.bincount(pu, minlength=nu).astype(np.int32), user_days_90=user_days_90,
        item_buyers=buyers, item_buyers_30=np.bincount(pi[last_day > T - 30], minlength=ni),
        item_buyers_90=np.bincount(pi[last_day > T - 90], minlength=ni), item_last=item_last,
        item_repeat=np.bincount(pi, weights=(n_days >= 2), minlength=ni) / np.maximum(buyers, 1), t_day=T)


# ------------------------------------------------------------------------------------------------ top-N helpers
def top_n(rows: np.ndarray, cols: np.ndarray, scores: np.ndarray, n: int, *,
          presorted: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``n`` best (row, col, score) entries of each row, best first; ties go to the lower column code
    (``presorted``: the entries already come sorted by row, then column, which saves a sort key)."""
    order = np.lexsort((-scores, rows)) if presorted else np.lexsort((cols, -scores, rows))
    rows, cols, scores = rows[order], cols[order], scores[order]
    starts = _group_bounds(rows)
    rank = np.arange(len(rows)) - np.repeat(starts, np.diff(np.append(starts, len(rows))))
    keep = rank < n
    return rows[keep], cols[keep], scores[keep]


def buy_again(stats: PairStats, users: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user, product, weight) of each user's own products."""
    r = stats.rows(users)
    return stats.pu[r], stats.pi[r], stats.weight[r]


def popularity(stats: PairStats, window_days: int = 90) -> np.ndarray:
    """Product codes, most popular first: distinct buyers in the last ``window_days`` (then ever, then code)."""
    recent = stats.item_buyers_90 if window_days == 90 else np.bincount(
        stats.pi[stats.last_day > stats.t_day - window_days], minlength=len(stats.item_buyers))
    order = np.lexsort((np.arange(len(recent)), -stats.item_buyers, -recent))
    return order[(recent[order] > 0) | (stats.item_buyers[order] > 0)]


# ------------------------------------------------------------------------------------------------ item similarity
@dataclass
class ItemSimilarity:
    """Sparse product x product cosine similarity of co-purchases, ``neighbours`` per product."""

    sim: sp.csr_matrix
    neighbours: int = 50


def item_similarity(stats: PairStats, n_items: int, *, neighbours: int = 50, shrink: float = 10.0,
                    max_items_per_user: int = 200, min_common: int = 2) -> ItemSimilarity:
    """Co-purchase cosine similarity ``c_ij / sqrt(n_i n_j) * c_ij / (c_ij + shrink)`` over customers (each
    customer's ``max_items_per_user`` most recent products; pairs bought together by fewer than ``min_common``
    customers are left out), keeping the ``neighbours`` strongest per product."""
    pu, pi, last = stats.pu, stats.pi, stats.last_day
    if max_items_per_user and len(pu) and np.bincount(pu).max() > max_items_per_user:
        order = np.lexsort((pi, -last, pu))
        starts = _group_bounds(pu[order])
        rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.append(starts, len(order))))
        keep = order[rank < max_items_per_user]
        pu, pi = pu[keep], pi[keep]
    nu = int(pu.max()) + 1 if len(pu) else 1
    B = sp.csr_matrix((np.ones(len(pu), np.float32), (pu, pi)), shape=(nu, n_items))
    C = (B.T @ B).tocsr()
    C.sort_indices()
    C = C.tocoo()
    off = (C.row != C.col) & (C.data >= min_common)
    r, c, v = C.row[off].astype(np.int64), C.col[off].astype(np.int64), C.data[off].astype(np.float64)
    n = np.asarray(B.sum(axis=0)).ravel().astype(np.float64)
    s = v / np.sqrt(n[r] * n[c]) * v / (v + shrink)
    r, c, s = top_n(r, c, s, neighbours, presorted=True)
    return ItemSimilarity(sp.csr_matrix((s.astype(np.float32), (r, c)), shape=(n_items, n_items)), neighbours)


def dense_top(scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, col, score) of the ``n`` best finite entries of each row of a dense score block, best first (ties: the
    lower column). The block is overwritten."""
    n_rows, n_cols = scores.shape
    n = min(n, n_cols)
    if n == 0 or n_rows == 0:
        return _cat([])
    neg = np.negative(scores, out=scores)  # in place (the block is the caller's scratch): smallest = best
    idx = np.argpartition(neg, n - 1, axis=1)[:, :n] if n < n_cols else np.tile(np.arange(n_cols), (n_rows, 1))
    vals = -np.take_along_axis(neg, idx, axis=1)
    order = np.lexsort((idx, -vals), axis=1)
    idx, vals = np.take_along_axis(idx, order, axis=1), np.take_along_axis(vals, order, axis=1)
    rows = np.repeat(np.arange(n_rows), n)
    ok = np.isfinite(vals.ravel())
    return rows[ok], idx.ravel()[ok].astype(np.int64), vals.ravel()[ok].astype(np.float64)


def similar_scores(model: ItemSimilarity, stats: PairStats, users: np.ndarray, n: int, *, exclude_own: bool,
                   batch: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user, product, score) of the ``n`` best products per user by similarity to the user's own products (each
    weighted by its buy-again weight); products with no similarity are not listed."""
    out = []
    n_items = model.sim.shape[0]
    batch = batch or max(256, 20_000_000 // max(n_items, 1))
    for start in range(0, len(users), batch):
        part = users[start:start + batch]
        r = stats.rows(part)
        local = np.searchsorted(part, stats.pu[r])
        W = sp.csr_matrix((stats.weight[r], (local, stats.pi[r])), shape=(len(part), n_items))
        S = (W @ model.sim).toarray()
        S[S <= 0] = -np.inf
        if exclude_own:
            S[local, stats.pi[r]] = -np.inf
        rows, cols, vals = dense_top(S, n)
        out.append((part[rows], cols, vals))
    return _cat(out)


def strongest_link(model: ItemSimilarity, stats: PairStats, users: np.ndarray, products: np.ndarray) -> np.ndarray:
    """For each (user, product) offer, the user's own product that contributes most to its similarity score
    (-1 when none does)."""
    out = np.full(len(users), -1, dtype=np.int64)
    if len(users) == 0:
        return out
    starts = np.searchsorted(stats.pu, users, side="left")
    lens = np.searchsorted(stats.pu, users, side="right") - starts
    offer = np.repeat(np.arange(len(users)), lens)
    rows = np.repeat(starts - np.cumsum(lens) + lens, lens) + np.arange(lens.sum())
    own = stats.pi[rows].astype(np.int64)
    contrib = similarity_of(model.sim, own, np.repeat(np.asarray(products, np.int64), lens)) * stats.weight[rows]
    has = lens > 0
    if not has.any():
        return out
    best = np.maximum.reduceat(contrib, (np.cumsum(lens) - lens)[has])
    top = np.flatnonzero(contrib == np.repeat(best, lens[has]))  # the first maximum of each offer: lowest code
    first = top[_group_bounds(offer[top])]
    ok = contrib[first] > 0
    out[offer[first][ok]] = own[first][ok]
    return out


def similarity_of(sim: sp.csr_matrix, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``sim[a, b]`` elementwise, by binary search in the sorted (row, column) keys of the sparse matrix."""
    sim = sim.tocsr()
    sim.sort_indices()
    n = sim.shape[1]
    rows = np.repeat(np.arange(sim.shape[0], dtype=np.int64), np.diff(sim.indptr))
    keys = rows * n + sim.indices
    want = a.astype(np.int64) * n + b
    pos = np.minimum(np.searchsorted(keys, want), max(len(keys) - 1, 0))
    found = (keys[pos] == want) if len(keys) else np.zeros(len(want), bool)
    return np.where(found, sim.data[pos] if len(keys) else 0.0, 0.0)


def _cat(parts):
    if not parts:
        z = np.zeros(0, dtype=np.int64)
        return z, z, np.zeros(0)
    return tuple(np.concatenate([p[j] for p in parts]) for j in range(3))


# ------------------------------------------------------------------------------------------------ ALS
INTEREST_WEIGHT = {PURCHASE: 1.0, CART: 0.3, VIEW: 0.1}


def interest_matrix(log: Log) -> sp.csr_matrix:
    """User x product interest: purchase days count 1, add-to-cart 0.3 and views 0.1 (per event)."""
    w = np.zeros(len(log.kind), np.float32)
    for k, v in INTEREST_WEIGHT.items():
        w[log.kind == k] = v
    X = sp.csr_matrix((w, (log.u, log.i)), shape=(log.n_users, log.n_items))
    X.sum_duplicates()
    return X


_LIMIT_LOCK = threading.Lock()
_LIMIT_DEPTH = 0


@contextmanager
def single_thread():
    """One thread for BLAS and OpenMP inside the block: deterministic results, and no oversubscription when several
    analysts share the machine. Re-entrant: nested blocks and worker threads started inside keep the outer limit.
    The libraries are loaded first so the limit reaches them."""
    global _LIMIT_DEPTH
    with _LIMIT_LOCK:
        first = _LIMIT_DEPTH == 0
        _LIMIT_DEPTH += 1
    ctl = None
    try:
        if first:
            import sklearn.ensemble  # noqa: F401  (loads the OpenMP runtime of the repeat model)
            from threadpoolctl import threadpool_limits

            ctl = threadpool_limits(limits=1)
        yield
    finally:
        if ctl is not None:
            ctl.restore_original_limits()
        with _LIMIT_LOCK:
            _LIMIT_DEPTH -= 1


@dataclass
class ALSModel:
    model: object
    confidence: sp.csr_matrix


def fit_als(log: Log, *, factors: int = 32, iterations: int = 15, regularization: float = 0.05, alpha: float = 5.0,
            seed: int = 0, users: np.ndarray | None = None) -> ALSModel:
    """Implicit-feedback ALS (``implicit.cpu.als``): confidence ``1 + alpha * log(1 + interest)``, one thread
    (``users``: learn from these users' rows only; the others get zero factors)."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from implicit.cpu.als import AlternatingLeastSquares

    X = interest_matrix(log)
    if users is not None:
        keep = np.zeros(X.shape[0], np.float32)
        keep[users] = 1.0
        X = sp.diags(keep) @ X
        X.eliminate_zeros()
    C = X.copy()
    C.data = (1.0 + alpha * np.log1p(C.data)).astype(np.float32)
    with single_thread():
        m = AlternatingLeastSquares(factors=factors, iterations=iterations, regularization=regularization,
                                    random_state=seed, num_threads=1, calculate_training_loss=False)
        m.fit(C, show_progress=False)
    return ALSModel(m, C)


def als_scores(als: ALSModel, users: np.ndarray, n: int, *, exclude_own: bool, owned: sp.csr_matrix | None = None,
               batch: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user, product, score) of the ``n`` best products per user by ALS (``owned`` masks products to leave out)."""
    n_items = als.confidence.shape[1]
    batch = batch or max(256, 20_000_000 // max(n_items, 1))
    n = min(n, n_items)
    mask = owned if owned is not None else (als.confidence > 0).astype(np.float32)
    out = []
    uf, itf = np.asarray(als.model.user_factors), np.asarray(als.model.item_factors)
    with single_thread():
        for start in range(0, len(users), batch):
            part = users[start:start + batch]
            s = uf[part] @ itf.T
            if exclude_own:
                m = mask[part].tocoo()
                s[m.row, m.col] = -np.inf
            r, c, v = dense_top(s, n)
            out.append((part[r], c, v))
    return _cat(out)
