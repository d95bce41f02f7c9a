"""The :class:`Recommender` (fit at a cutoff, offers per user) and :func:`recommend`, the call the app and the command
line make: one row per offer with ``user_id, rank, product, score, basis, reason`` (+ ``product_name``)."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

from ..errors import DataError
from . import candidates as C
from .blend import (ALS, BASES, OWN, POPULAR, SIMILAR, Blend, RecommenderConfig, assemble, best_per_user, learn_blend,
                    rank_own)
from .data import Log, build_log

BASIS_LABELS = {"buy_again": "Bought before", "similar": "Often bought together", "als": "Customers like you",
                "popular": "Popular now"}
OFFER_COLUMNS = ["user_id", "rank", "product", "score", "basis", "reason"]


class Recommender:
    """Offers per user from a :class:`Log`; ``fit`` learns at the log's cutoff and reads nothing after it.

    Learned state (after ``fit``): ``blend_`` (what the inner split chose and why), ``model_`` (the repeat-purchase
    model or None), ``stats_`` (purchase history per user and product), ``similarity_``, ``als_`` (when chosen),
    ``popular_`` (product codes, best sellers first) and ``seconds_`` (fit time per part).
    """

    def __init__(self, config: RecommenderConfig | None = None):
        self.config = config

    @property
    def cfg(self) -> RecommenderConfig:
        return self.config or RecommenderConfig()

    def fit(self, log: Log) -> "Recommender":
        cfg, t0 = self.cfg, time.perf_counter()
        self.log_ = log
        with C.single_thread(), ThreadPoolExecutor(1) as pool:  # the candidates at T on the second core
            outer = pool.submit(self._candidates, log)
            self.model_, self.blend_ = learn_blend(log, cfg)
            t1 = time.perf_counter()
            outer.result()
            if self.blend_.discovery == "als":
                self.als_ = C.fit_als(log, factors=cfg.als_factors, iterations=cfg.als_iterations, seed=cfg.seed)
        self.seconds_ = {"inner split": t1 - t0, "fit": time.perf_counter() - t0}
        return self

    def _candidates(self, log: Log) -> None:
        cfg = self.cfg
        self.stats_ = C.pair_stats(log, cfg.half_life_days)
        self.similarity_ = C.item_similarity(self.stats_, log.n_items, neighbours=cfg.neighbours)
        self.popular_ = C.popularity(self.stats_, cfg.popularity_days)
        self.als_ = None

    def _discovery(self, users: np.ndarray):
        cfg = self.cfg
        if self.als_ is not None:
            return C.als_scores(self.als_, users, cfg.discovery, exclude_own=True), ALS
        return C.similar_scores(self.similarity_, self.stats_, users, cfg.discovery, exclude_own=True), SIMILAR

    def recommend_codes(self, users: np.ndarray, n: int = 10) -> dict:
        """Coded offers (``user, pos, product, basis, basis_pos, raw``) for user codes, ``n`` each."""
        users = np.unique(np.asarray(users, dtype=np.int64))
        with C.single_thread():
            return self._lists(users, n)

    def _lists(self, users: np.ndarray, n: int) -> dict:
        with ThreadPoolExecutor(1) as pool:  # discovery on the second core while the repeat model ranks
            found = pool.submit(self._discovery, users)
            own = best_per_user(rank_own(self.model_, self.stats_, users, self.cfg.max_own, pool), n)
            disc, basis = found.result()
        return assemble(own, best_per_user(disc, n), basis, self.popular_, users, n, min(self.blend_.depth, n))

    def recommend(self, users: np.ndarray | None = None, n: int = 10) -> pd.DataFrame:
        """One row per offer for user codes (default: users active in the lookback window)."""
        if users is None:
            users = self.log_.active_users(self.cfg.lookback_days)
        lists = self.recommend_codes(users, n)
        return offers_frame(self, lists)


def _scores(rec: Recommender, lists: dict) -> np.ndarray:
    """Own products: the repeat model's probability of a purchase in the horizon; other offers: the purchase rate of
    their position on the inner split (raw scores when nothing was learned)."""
    basis, raw = lists["basis"], lists["raw"].astype(float)
    out = raw.copy()
    pop_share = rec.stats_.item_buyers_90 / max(len(rec.log_.active_users(90)), 1)
    out[basis == POPULAR] = pop_share[lists["product"][basis == POPULAR]]
    calib = rec.blend_.calibration
    if calib:
        for b in (SIMILAR, ALS, POPULAR) + (() if rec.model_ is not None else (OWN,)):
            m = basis == b
            if m.any():
                pos = np.minimum(lists["basis_pos"][m], 19)
                est = np.array([calib.get((b, int(p)), np.nan) for p in pos])
                out[m] = np.where(np.isfinite(est), est, out[m])
    return out


def _per_value(values: np.ndarray, text) -> np.ndarray:
    """``text(v)`` for each value, computed once per distinct value."""
    uniq, inv = np.unique(np.asarray(values), return_inverse=True)
    return np.array([text(v) for v in uniq], dtype=object)[inv.ravel()]


def _times(n: np.ndarray) -> np.ndarray:
    words = {1: "once", 2: "twice"}
    return _per_value(n, lambda x: words.get(int(x), f"{int(x)} times"))


def _ago(d: np.ndarray) -> np.ndarray:
    return _per_value(d, lambda x: "today" if x <= 0 else "yesterday" if x == 1 else f"{int(x)} days ago")


def reasons(rec: Recommender, lists: dict) -> np.ndarray:
    """Why each offer is made, in words ("bought 4 times, last 60 days ago", "often bought with X")."""
    st, log = rec.stats_, rec.log_
    out = np.full(len(lists["user"]), "", dtype=object)
    u, p, b = lists["user"], lists["product"], lists["basis"]
    m = b == OWN
    if m.any():
        keys = st.pu.astype(np.int64) * log.n_items + st.pi
        r = np.searchsorted(keys, u[m] * log.n_items + p[m])
        n, ago = st.n_days[r], st.t_day - st.last_day[r]
        out[m] = np.where(n == 1, "bought once, " + _ago(ago), "bought " + _times(n) + ", last " + _ago(ago))
    m = b == SIMILAR
    if m.any():
        link = C.strongest_link(rec.similarity_, st, u[m], p[m])
        names = np.where(link >= 0, log.label(np.maximum(link, 0)), "")
        out[m] = np.where(link >= 0, "often bought with " + names.astype(object), "often bought together")
    out[b == ALS] = "bought by customers with similar baskets"
    m = b == POPULAR
    if m.any():
        buyers = st.item_buyers_90[p[m]]
        out[m] = _per_value(buyers, lambda x: f"popular: bought by {int(x):,} customers in the last 90 days")
    return out


def offers_frame(rec: Recommender, lists: dict) -> pd.DataFrame:
    log = rec.log_
    out = pd.DataFrame({"user_id": np.asarray(log.users[lists["user"]], dtype=object),
                        "rank": lists["pos"].astype(np.int64) + 1,
                        "product": np.asarray(log.items[lists["product"]], dtype=object),
                        "score": np.round(_scores(rec, lists), 6),
                        "basis": np.asarray(BASES, dtype=object)[lists["basis"]],
                        "reason": reasons(rec, lists)})
    if not log.names.empty:
        out["product_name"] = log.name_of(lists["product"])
    out = out.astype({"user_id": "str", "product": "str", "basis": "str", "reason": "str"})
    out.attrs["as_of"] = str(log.cutoff.date())
    out.attrs["blend"] = describe_blend(rec.blend_)
    return out


def describe_blend(blend: Blend) -> dict:
    return {"depth": blend.depth, "discovery": blend.discovery, "learned": blend.learned, "note": blend.note,
            "inner_cutoff": str(blend.inner_cutoff.date()) if blend.inner_cutoff is not None else None}


def user_codes(log: Log, users, *, unknown: str = "error") -> np.ndarray:
    """Codes of the given user ids; ids not in the log before the cutoff raise a DataError (``unknown="error"``) or
    are left out (``"skip"``)."""
    ids = pd.Index(pd.Series(list(users), dtype=object).astype(str).str.strip().unique())
    pos = log.users.get_indexer(ids)
    missing = ids[pos < 0]
    if len(missing) and unknown == "error":
        shown = ", ".join(map(str, missing[:5]))
        raise DataError(f"{len(missing):,} of the {len(ids):,} users are not in the log at or before "
                        f"{log.cutoff.date()} (e.g. {shown}): offers need some history. Check the user ids and the "
                        "date.")
    return np.unique(pos[pos >= 0])


def recommend(ev: pd.DataFrame, *, as_of=None, users=None, n: int = 10, config: RecommenderConfig | None = None,
              names: pd.Series | None = None, unknown: str = "error") -> pd.DataFrame:
    """Offers for the users of the canonical event log ``ev`` as of ``as_of`` (default: the end of the data).

    ``users``: ids to make offers to (default: users with a purchase in the lookback window). ``names``: product ->
    name (see :func:`retention_core.recommend.product_names`). One row per offer: ``user_id, rank, product, score,
    basis, reason`` (+ ``product_name`` when names are known); ``attrs`` say the date and what the blend chose.
    """
    if int(n) < 1:
        raise DataError(f"The number of offers per user must be at least 1, got {n}.")
    log = build_log(ev, as_of, names=names)
    cfg = config or RecommenderConfig()
    codes = None if users is None else user_codes(log, users, unknown=unknown)
    if codes is None and len(log.active_users(cfg.lookback_days)) == 0:
        raise DataError(f"No customer bought in the {cfg.lookback_days} days before {log.cutoff.date()}: there is "
                        "nobody to make offers to. Pick an earlier date, a longer lookback or list the users.")
    rec = Recommender(cfg).fit(log)
    return rec.recommend(codes, int(n))
