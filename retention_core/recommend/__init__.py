"""Offers per user from the event log: buy-again, popularity, co-purchase similarity, ALS, and the shipped blend
(own products first, ranked by a learned repeat-purchase model, then discovery), with their time-split evaluation.

The library calls the app and the command line make:

- :func:`recommend` -> one row per offer (``user_id, rank, product, score, basis, reason`` + ``product_name``);
- :func:`evaluate_recommenders` -> one row per candidate and the blend (precision, recall, NDCG, hit rate at k,
  novelty) on a time split; :func:`evaluation_figure` draws it;
- :func:`offers_from_table` (raw table + roles), :func:`offers_available` (whether a table can give offers and the
  sentence to show when not), :func:`attach_offers` (``offer_1..N`` on an at-risk list), :func:`segment_offers`.
"""
from __future__ import annotations

from .blend import FEATURES, RecommenderConfig
from .data import NO_PRODUCT, Log, build_log, has_products, product_names, require_products
from .evaluate import CANDIDATES, evaluate_recommenders
from .metrics import (METRIC_LABELS, METRICS, hit_rate_at_k, ndcg_at_k, novelty_share, precision_at_k, ranking_metrics,
                      recall_at_k)
from .model import BASIS_LABELS, OFFER_COLUMNS, Recommender, recommend
from .offers import (attach_offers, offer_columns, offers_available, offers_for_run, offers_from_table, segment_offers)
from .plots import evaluation_figure, offers_by_basis

__all__ = [
    "BASIS_LABELS", "CANDIDATES", "FEATURES", "METRICS", "METRIC_LABELS", "NO_PRODUCT", "OFFER_COLUMNS", "Log",
    "Recommender", "RecommenderConfig", "build_log", "evaluate_recommenders", "has_products", "hit_rate_at_k",
    "ndcg_at_k", "novelty_share", "precision_at_k", "product_names", "ranking_metrics", "recall_at_k", "recommend",
    "require_products", "attach_offers", "offer_columns", "offers_available", "offers_for_run", "offers_from_table",
    "segment_offers", "evaluation_figure", "offers_by_basis",
]
