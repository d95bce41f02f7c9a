"""Every candidate and the blend on a time split: offers from events up to ``T``, truth = products bought in
``(T, T + horizon]`` by the users active in the lookback window before ``T`` who bought then.

Every list is filled up to ``k`` with the recent best sellers (as a shop would), so the candidates differ only in what
they put first.
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd

from ..dataset import data_end
from . import candidates as C
from .blend import ALS, POPULAR, SIMILAR, RecommenderConfig, assemble, best_per_user
from .data import build_log, future_purchases
from .metrics import METRICS, ranking_metrics
from .model import Recommender

CANDIDATES = {
    "popularity": "Popularity (best sellers of the last 90 days)",
    "buy_again_count": "Buy-again by count, then last purchase (plain)",
    "buy_again": "Buy-again, weighted by recency and frequency",
    "similar": "Item-to-item similarity (co-purchases)",
    "als": "ALS matrix factorisation (implicit feedback)",
    "blend": "Blend: own products by the repeat model, then discovery (shipped)",
}


def _lists(name: str, rec: Recommender, users: np.ndarray, k: int) -> dict:
    st, cfg, pop = rec.stats_, rec.cfg, rec.popular_
    none = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    if name == "popularity":
        return assemble(none, none, POPULAR, pop, users, k, k)
    if name in ("buy_again", "buy_again_count"):
        r = st.rows(users)
        score = st.weight[r] if name == "buy_again" else st.n_lines[r] + (st.last_day[r] - st.t_day) / 1e5
        return assemble(best_per_user((st.pu[r], st.pi[r], score), k), none, SIMILAR, pop, users, k, k)
    if name == "similar":
        sim = C.similar_scores(rec.similarity_, st, users, k, exclude_own=False)
        return assemble(none, best_per_user(sim, k), SIMILAR, pop, users, k, 0)
    if name == "als":
        als = rec.als_ or C.fit_als(rec.log_, factors=cfg.als_factors, iterations=cfg.als_iterations, seed=cfg.seed)
        return assemble(none, best_per_user(C.als_scores(als, users, k, exclude_own=False), k), ALS, pop, users, k, 0)
    return rec.recommend_codes(users, k)


def evaluate_recommenders(ev: pd.DataFrame, T=None, horizon: int = 90, k: int = 10, *,
                          config: RecommenderConfig | None = None,
                          candidates: tuple[str, ...] = tuple(CANDIDATES)) -> pd.DataFrame:
    """One row per recommender: ``recommender, label, precision, recall, ndcg, hit_rate, novelty, users, coverage,
    seconds`` (metrics at ``k``), plus ``cutoff, horizon, k``; ``attrs["blend"]`` says what the blend chose.

    Only events at or before ``T`` are used to make the offers; ``users`` counts the active users who bought in the
    horizon (those the metrics average over). ``seconds`` is the time to fit and list for every active user.
    ``T`` defaults to the last date whose horizon is fully observed.
    """
    cfg = config or RecommenderConfig()
    if T is None:
        T = data_end(ev) - pd.Timedelta(days=int(horizon))
    log = build_log(ev, T)
    T = log.cutoff
    users = log.active_users(cfg.lookback_days)
    truth = future_purchases(ev, T, T + pd.Timedelta(days=int(horizon)))
    truth = truth[truth["user_id"].isin(set(log.users[users]))]
    t0 = time.perf_counter()
    rec = Recommender(cfg).fit(log)
    fit_s = time.perf_counter() - t0
    history = pd.DataFrame({"user_id": np.asarray(log.users[rec.stats_.pu]),
                            "product": np.asarray(log.items[rec.stats_.pi])})
    history = history[history["user_id"].isin(set(truth["user_id"]))]
    rows = []
    for name in candidates:
        t1 = time.perf_counter()
        lists = _lists(name, rec, users, k)
        secs = time.perf_counter() - t1 + (fit_s if name == "blend" else 0.0)
        offers = pd.DataFrame({"user_id": np.asarray(log.users[lists["user"]]), "rank": lists["pos"] + 1,
                               "product": np.asarray(log.items[lists["product"]])})
        m = ranking_metrics(offers, truth, k, history=history)
        rows.append({"recommender": name, "label": CANDIDATES.get(name, name), **{x: m[x] for x in METRICS},
                     "users": m["users"], "coverage": m["coverage"], "seconds": secs})
    out = pd.DataFrame(rows)
    out["cutoff"], out["horizon"], out["k"] = str(T.date()), int(horizon), int(k)
    from .model import describe_blend

    out.attrs["blend"] = describe_blend(rec.blend_)
    out.attrs["inner_table"] = rec.blend_.table
    return out
