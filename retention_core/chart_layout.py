"""The one layout every chart of the product uses (pure Plotly, no Streamlit): title at the top left, the legend
under the plot, one entry a line, where it never covers the title or an axis, and room for bar labels drawn outside
the bars.

Every figure builder (:mod:`retention_core.plots`, the recommender's, the monitor's and the uplift figures) ends with
:func:`base_layout`, so a change of placement here changes every chart at once.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

_FONT = dict(family="Source Sans Pro, Segoe UI, Helvetica, Arial, sans-serif", size=13)


#: Where every chart's legend goes: one entry a line, at the bottom of the figure under the plot's left edge, below the x
#: axis and its title. The figure grows by one line per entry, so the plot keeps its size, the legend never covers
#: the title, an axis or the data, and a narrow column (two or three charts side by side) does not squeeze the plot.
LEGEND = dict(orientation="v", x=0, xanchor="left", xref="paper", y=0, yanchor="bottom", yref="container",
              traceorder="normal", bgcolor="rgba(255,255,255,0)", font=dict(size=12), itemsizing="constant")
LEGEND_LINE = 21  # pixels per legend entry
AXIS_ROOM = 64  # pixels under the plot for the x tick labels and the axis title
#: Trace types that show in the legend unless told not to (heatmaps and the like need showlegend=True).
_LISTED = {"scatter", "scattergl", "bar", "box", "histogram", "violin"}


def legend_entries(fig: go.Figure) -> int:
    """How many entries the figure's legend shows (Plotly draws none for a lone trace unless asked)."""
    if fig.layout.showlegend is False:
        return 0
    n = sum(1 for t in fig.data if t.showlegend is True or (t.showlegend is None and t.type in _LISTED))
    return 0 if fig.layout.showlegend is None and len(fig.data) <= 1 else n


def place_legend(fig: go.Figure) -> go.Figure:
    """Put the legend where :data:`LEGEND` says and make room for it (the one placement every builder uses)."""
    n = legend_entries(fig)
    if not n:
        return fig
    height = (fig.layout.height or 360) + LEGEND_LINE * n
    fig.update_layout(legend=LEGEND, height=height, margin=dict(b=AXIS_ROOM + LEGEND_LINE * n))
    return fig


def room_for_labels(fig: go.Figure, values, *, axis: str = "x", pad: float = 0.18) -> go.Figure:
    """Bar labels drawn outside the bars are never cut: the value axis reaches ``pad`` beyond the largest value and
    the labels may spill past the plot edge."""
    v = np.asarray(pd.to_numeric(pd.Series(list(values)), errors="coerce"), dtype=float)
    v = v[np.isfinite(v)]
    fig.update_traces(cliponaxis=False, selector=dict(type="bar"))
    if len(v):
        hi, lo = float(max(v.max(), 0.0)), float(min(v.min(), 0.0))
        span = (hi - lo) or 1.0
        rng = [lo - (pad * span if lo < 0 else 0.0), hi + pad * span]
        (fig.update_xaxes if axis == "x" else fig.update_yaxes)(range=rng)
    return fig


def base_layout(fig: go.Figure, title: str | None, height: int) -> go.Figure:
    """Title at the top left, white background, the product's font, and the legend placed by :func:`place_legend`.
    An x axis drawn on top (heatmaps) gets its own room under the title, so the title never covers its labels."""
    top = (50 if title else 20) + (30 if fig.layout.xaxis.side == "top" else 0)
    fig.update_layout(title=dict(text=title, x=0, xanchor="left") if title else None, height=height,
                      margin=dict(l=10, r=10, t=top, b=10), font=_FONT,
                      plot_bgcolor="white", paper_bgcolor="white")
    return place_legend(fig)
