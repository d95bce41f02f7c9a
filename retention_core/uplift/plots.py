"""Figures of an uplift run (pure Plotly builders over :mod:`retention_core.uplift.metrics` frames).

The Qini chart draws each learner's curve on the held-out customers (the best one thicker), response targeting dotted
and random targeting as a dashed grey line; the legend sits right of the plot (the
product's one legend placement), never over the title or an axis. Uplift
by decile draws the observed uplift of each tenth of the ranking against the average effect.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ..plots import CHURNED, RETAINED, UNLABELLED, _empty, base_layout

_GRID = "#EEEEEE"
_COLOURS = [RETAINED, "#F58518", "#54A24B", "#B279A2", "#72B7B2", "#9D755D"]
RESPONSE_COLOUR = "#888888"


def qini_chart(curves: dict[str, pd.DataFrame], *, best: str | None = None, response: pd.DataFrame | None = None,
               response_label: str = "Response targeting", title: str | None = "Qini curves on held-out customers",
               unit: str = "outcomes") -> go.Figure:
    """Qini curves (``curves``: label -> :func:`~retention_core.uplift.metrics.qini_curve` frame), in extra
    ``unit`` per 100 customers against the share targeted, with random targeting (from the first curve) and response
    targeting when given."""
    if not curves:
        return _empty(title, "No learner to draw")
    fig = go.Figure()
    first = next(iter(curves.values()))
    n = float(first["targeted"].iloc[-1]) or 1.0
    for i, (label, c) in enumerate(curves.items()):
        width = 3.5 if label == best else 1.8
        fig.add_scatter(x=c["share"] * 100, y=c["incremental"] / n * 100, mode="lines", name=label,
                        line=dict(color=_COLOURS[i % len(_COLOURS)], width=width),
                        hovertemplate=f"{label}<br>%{{x:.0f}}% targeted: %{{y:.2f}} extra {unit} per 100 "
                                      "customers<extra></extra>")
    if response is not None:
        fig.add_scatter(x=response["share"] * 100, y=response["incremental"] / n * 100, mode="lines",
                        name=response_label, line=dict(color=RESPONSE_COLOUR, width=1.8, dash="dot"),
                        hovertemplate=f"{response_label}<br>%{{x:.0f}}% targeted: %{{y:.2f}}<extra></extra>")
    total = float(first["incremental"].iloc[-1]) / n * 100
    fig.add_scatter(x=[0, 100], y=[0, total], mode="lines", name="Random targeting",
                    line=dict(color=UNLABELLED, width=1.5, dash="dash"), hoverinfo="skip")
    fig.update_xaxes(title="Customers targeted, best first (%)", range=[0, 101], dtick=20, gridcolor=_GRID,
                     ticksuffix="%")
    fig.update_yaxes(title=f"Extra {unit} per 100 customers", gridcolor=_GRID, zeroline=True, zerolinecolor="#CCCCCC")
    return base_layout(fig, title, 420)


def decile_chart(deciles: pd.DataFrame, *, average: float | None = None,
                 title: str | None = "Observed uplift by decile of the ranking", unit: str = "points") -> go.Figure:
    """Bars of the observed uplift (treated rate minus control rate, in percentage points) per decile of the
    ranking (1 = ranked first), blue above zero and red below, with the average effect as a dashed line."""
    if deciles is None or not len(deciles):
        return _empty(title, "No held-out customers")
    u = deciles["uplift"].to_numpy(dtype=float) * 100
    colours = [RETAINED if v >= 0 else CHURNED for v in np.nan_to_num(u)]
    custom = np.column_stack([deciles["treated"], deciles["control"], deciles["rate_treated"] * 100,
                              deciles["rate_control"] * 100])
    fig = go.Figure(go.Bar(x=deciles["decile"].astype(str), y=u, marker_color=colours, customdata=custom,
                           name="Observed uplift", text=[f"{v:+.1f}" if np.isfinite(v) else "" for v in u],
                           textposition="outside", cliponaxis=False,
                           hovertemplate="Decile %{x}: %{y:+.2f} " + unit + "<br>treated %{customdata[2]:.1f}% of "
                                         "%{customdata[0]:,}, control %{customdata[3]:.1f}% of "
                                         "%{customdata[1]:,}<extra></extra>"))
    if average is not None and np.isfinite(average):
        fig.add_scatter(x=deciles["decile"].astype(str), y=[average * 100] * len(deciles), mode="lines",
                        name="Average effect (random targeting)", line=dict(color=UNLABELLED, width=1.5, dash="dash"),
                        hoverinfo="skip")
    finite = u[np.isfinite(u)]
    top = max(float(finite.max()) if len(finite) else 0.0, (average or 0) * 100, 0.0)
    low = min(float(finite.min()) if len(finite) else 0.0, 0.0)
    pad = 0.18 * max(top - low, 1e-9)
    fig.update_xaxes(title="Decile (1 = ranked first)", type="category")
    fig.update_yaxes(title=f"Uplift ({unit})", gridcolor=_GRID, zeroline=True, zerolinecolor="#CCCCCC",
                     range=[low - (pad if low < 0 else 0), top + pad])
    return base_layout(fig, title, 360)
