"""Figures of the recommender (pure Plotly, in the style of :mod:`retention_core.plots`)."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from ..plots import base_layout, room_for_labels
from .metrics import METRIC_LABELS
from .model import BASIS_LABELS

_COLOURS = {"precision": "#4C78A8", "recall": "#72B7B2", "ndcg": "#F58518", "hit_rate": "#54A24B",
            "novelty": "#BAB0AC"}
SHORT = {"popularity": "Popularity", "buy_again_count": "Buy-again (count)", "buy_again": "Buy-again (recency x freq.)",
         "similar": "Similar products", "als": "ALS", "blend": "Blend (shipped)"}


def evaluation_figure(table: pd.DataFrame, metrics: tuple[str, ...] = ("precision", "recall", "ndcg", "hit_rate"), *,
                      title: str | None = None) -> go.Figure:
    """Grouped bars: each metric at k for every recommender of :func:`evaluate_recommenders` (the blend last)."""
    k = int(table["k"].iloc[0]) if "k" in table.columns and len(table) else 10
    names = [SHORT.get(r, r) for r in table["recommender"]]
    fig = go.Figure()
    for m in metrics:
        if m not in table.columns:
            continue
        fig.add_trace(go.Bar(x=names, y=table[m], name=METRIC_LABELS[m].replace("@k", f"@{k}"),
                             marker_color=_COLOURS.get(m), text=[f"{v:.3f}" for v in table[m]], textposition="outside",
                             hovertemplate="%{x}: %{y:.3f}<extra>" + METRIC_LABELS[m].replace("@k", f"@{k}") +
                                           "</extra>"))
    cutoff = table["cutoff"].iloc[0] if "cutoff" in table.columns and len(table) else ""
    horizon = int(table["horizon"].iloc[0]) if "horizon" in table.columns and len(table) else 90
    fig.update_layout(barmode="group")
    fig.update_yaxes(title=f"offers made on {cutoff}, purchases in the next {horizon} days", rangemode="tozero")
    room_for_labels(fig, [v for m in metrics if m in table.columns for v in table[m]], axis="y")
    return base_layout(fig, title if title is not None else f"Offers on a time split (top {k})", 380)


def offers_by_basis(offers: pd.DataFrame, *, title: str | None = "Where the offers come from") -> go.Figure:
    """Bars: how many offers each basis (bought before, often bought together, ...) makes, by rank."""
    g = offers.groupby(["rank", "basis"]).size().unstack(fill_value=0)
    fig = go.Figure()
    for b in g.columns:
        fig.add_trace(go.Bar(x=g.index, y=g[b], name=BASIS_LABELS.get(b, b)))
    fig.update_layout(barmode="stack")
    fig.update_xaxes(title="offer rank", dtick=1)
    fig.update_yaxes(title="offers")
    return base_layout(fig, title, 320)
