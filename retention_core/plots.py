"""Plotly figure builders: each takes DataFrames and returns a ``go.Figure`` (no Streamlit here).

The same figures are used by the app and can be saved from notebooks or the command line. Colours are fixed across the
product: retained users in blue, churned users in red, users not labelled yet in grey.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .segments import PERIOD_LABELS, cohort_label

RETAINED = "#4C78A8"
CHURNED = "#E45756"
UNLABELLED = "#BAB0AC"
#: A sequential scale from near-white to deep blue, as retention charts usually use.
RETENTION_SCALE = [[0.0, "#F7FBFF"], [0.15, "#DEEBF7"], [0.35, "#9ECAE1"], [0.6, "#4292C6"], [0.8, "#2171B5"],
                   [1.0, "#08306B"]]
_FONT = dict(family="Source Sans Pro, Segoe UI, Helvetica, Arial, sans-serif", size=13)


def _base_layout(fig: go.Figure, title: str | None, height: int) -> go.Figure:
    fig.update_layout(title=dict(text=title, x=0, xanchor="left") if title else None, height=height,
                      margin=dict(l=10, r=10, t=50 if title else 20, b=10), font=_FONT,
                      plot_bgcolor="white", paper_bgcolor="white",
                      legend=dict(orientation="h", y=1.02, yanchor="bottom", x=1, xanchor="right"))
    return fig


def _pct(v: float) -> str:
    if not np.isfinite(v):
        return ""
    return "100%" if round(v, 1) >= 100 else f"{v:.1f}%"


def cohort_heatmap(matrix: pd.DataFrame, *, title: str | None = "Cohort retention") -> go.Figure:
    """Retention heatmap of :func:`retention_core.segments.cohort_retention`.

    One row per cohort (oldest at the top), labelled with the cohort and its size; one column per period since the first
    purchase; cells show the percentage of the cohort that purchased again in that period. Period 0 is always 100%,
    so the colour scale is fitted to the later periods to keep their differences visible (period 0 shows the darkest
    colour). Cells not observed yet are left empty.
    """
    period = matrix.attrs.get("period", "M")
    unit = PERIOD_LABELS.get(period, "Period")
    periods = [c for c in matrix.columns if c != "cohort_size"]
    if matrix.empty or not periods:
        fig = go.Figure()
        fig.add_annotation(text="No purchases to build cohorts from", showarrow=False, font=dict(size=14))
        fig.update_xaxes(visible=False)
        fig.update_yaxes(visible=False)
        return _base_layout(fig, title, 240)

    values = matrix[periods].to_numpy(dtype="float64") * 100
    sizes = matrix["cohort_size"].to_numpy() if "cohort_size" in matrix else np.full(len(matrix), np.nan)
    names = [cohort_label(c, period) for c in matrix.index]
    ylabels = [f"{n}  ·  {int(s):,} users" if np.isfinite(s) else n for n, s in zip(names, sizes)]
    xlabels = [f"{unit} {p}" for p in periods]
    later = values[:, 1:] if values.shape[1] > 1 else values
    zmax = float(np.nanmax(later)) if np.isfinite(later).any() else 100.0
    zmax = max(zmax, 1.0)
    returning = np.rint(values / 100 * sizes[:, None])
    text = np.array([[_pct(v) for v in row] for row in values], dtype=object)
    custom = np.dstack([np.broadcast_to(np.array(names)[:, None], values.shape), np.nan_to_num(returning).astype(int)])

    fig = go.Figure(go.Heatmap(
        z=values, x=xlabels, y=ylabels, text=text, texttemplate="%{text}", textfont=dict(size=11),
        customdata=custom, zmin=0, zmax=zmax, colorscale=RETENTION_SCALE, xgap=2, ygap=2, hoverongaps=False,
        colorbar=dict(title=dict(text="retained"), ticksuffix="%", thickness=12, len=0.8),
        hovertemplate="Cohort %{customdata[0]}<br>%{x}: %{z:.1f}% (%{customdata[1]:,} users)<extra></extra>",
    ))
    fig.update_yaxes(autorange="reversed", type="category", showgrid=False, ticks="")
    fig.update_xaxes(side="top", type="category", showgrid=False, ticks="")
    height = max(260, 90 + 30 * len(matrix))
    fig = _base_layout(fig, title, height)
    if title:
        fig.update_layout(margin=dict(t=80))
    return fig


def label_balance(summary: pd.DataFrame, *, title: str | None = "Label balance per snapshot") -> go.Figure:
    """Retained vs churned users per snapshot, from :meth:`retention_core.events.Dataset.summary`.

    Expects columns ``snapshot_date, users, labelled, churned`` (``churn_rate`` optional). Users whose horizon is not
    over yet (not labelled) are shown in grey.
    """
    s = summary.copy()
    x = s["snapshot_date"]
    x = [f"{pd.Timestamp(v):%Y-%m-%d}" if not isinstance(v, str) else v for v in x]
    churned = s["churned"].fillna(0).astype(float).to_numpy()
    labelled = s["labelled"].astype(float).to_numpy()
    retained = labelled - churned
    unlabelled = s["users"].astype(float).to_numpy() - labelled
    rate = np.divide(churned, labelled, out=np.full_like(churned, np.nan), where=labelled > 0)

    fig = go.Figure()
    fig.add_bar(name="Retained", x=x, y=retained, marker_color=RETAINED,
                hovertemplate="%{x}<br>Retained: %{y:,.0f}<extra></extra>")
    fig.add_bar(name="Churned", x=x, y=churned, marker_color=CHURNED,
                text=[f"{r:.0%} churn" if np.isfinite(r) else "" for r in rate], textposition="outside",
                hovertemplate="%{x}<br>Churned: %{y:,.0f}<extra></extra>")
    if (unlabelled > 0).any():
        fig.add_bar(name="Not labelled yet", x=x, y=unlabelled, marker_color=UNLABELLED,
                    hovertemplate="%{x}<br>Not labelled yet: %{y:,.0f}<extra></extra>")
    fig.update_layout(barmode="stack", bargap=0.35)
    fig.update_xaxes(type="category", title=None)
    fig.update_yaxes(title="users", gridcolor="#EEEEEE", rangemode="tozero")
    fig = _base_layout(fig, title, 360)
    fig.update_layout(legend=dict(traceorder="normal"))
    return fig


def _label_groups(frame: pd.DataFrame, by: str) -> list[tuple[str, pd.Series, str]]:
    if by == "churned" and by in frame:
        lab = frame[by]
        groups = [("Retained", lab == 0, RETAINED), ("Churned", lab == 1, CHURNED),
                  ("Not labelled yet", lab.isna(), UNLABELLED)]
        return [(n, m, c) for n, m, c in groups if m.any()]
    if by in frame:
        palette = [RETAINED, CHURNED, "#72B7B2", "#F58518", "#54A24B", "#B279A2", "#9D755D", UNLABELLED]
        vals = frame[by].dropna().unique()[:8]
        return [(str(v), frame[by] == v, palette[i % len(palette)]) for i, v in enumerate(vals)]
    return [("All", pd.Series(True, index=frame.index), RETAINED)]


def feature_histogram(frame: pd.DataFrame, column: str, by: str = "churned", *, bins: int = 40,
                      clip_quantile: float = 0.99, title: str | None = None) -> go.Figure:
    """Distribution of one feature per label (or per value of ``by``), as the share of each group.

    Numeric features: overlaid histograms normalised to percent, so groups of different sizes compare; values above
    the ``clip_quantile`` are left out of the chart (and the axis title says so) to keep heavy tails readable. Other
    features: the share of each group per value (top 15 values).
    """
    if column not in frame:
        raise KeyError(f"Column {column!r} is not in the table.")
    s = frame[column]
    groups = _label_groups(frame, by)
    fig = go.Figure()
    xtitle = column
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        v = s.astype("float64")
        finite = v[np.isfinite(v)]
        hi = float(finite.quantile(clip_quantile)) if len(finite) else np.nan
        lo = float(finite.min()) if len(finite) else np.nan
        clipped = bool(len(finite)) and (finite > hi).any() and hi > lo
        keep = np.isfinite(v) & ((v <= hi) if clipped else True)
        if clipped:
            xtitle += f" (values above {hi:,.4g}, the top {1 - clip_quantile:.0%}, not shown)"
        edges = dict(start=lo, end=hi if clipped else float(finite.max()) if len(finite) else None,
                     size=None)
        if len(finite) and edges["end"] is not None and edges["end"] > lo:
            edges["size"] = (edges["end"] - lo) / bins
        for name, mask, colour in groups:
            fig.add_histogram(x=v[mask & keep], name=f"{name} ({int(mask.sum()):,})", histnorm="percent",
                              marker_color=colour, opacity=0.6,
                              xbins=edges if edges["size"] else None,
                              hovertemplate=f"{name}<br>{column}: %{{x}}<br>%{{y:.1f}}% of group<extra></extra>")
        fig.update_layout(barmode="overlay")
        fig.update_xaxes(title=xtitle)
    else:
        txt = s.astype("string").fillna("(missing)")
        top = txt.value_counts().index[:15]
        for name, mask, colour in groups:
            share = txt[mask].value_counts(normalize=True).reindex(top).fillna(0) * 100
            fig.add_bar(x=[str(t) for t in top], y=share.to_numpy(), name=f"{name} ({int(mask.sum()):,})",
                        marker_color=colour, hovertemplate=f"{name}<br>%{{x}}: %{{y:.1f}}% of group<extra></extra>")
        fig.update_layout(barmode="group")
        fig.update_xaxes(type="category", title=column)
    fig.update_yaxes(title="% of group", gridcolor="#EEEEEE", rangemode="tozero")
    fig = _base_layout(fig, title, 380)
    fig.update_layout(legend=dict(traceorder="normal"))
    return fig
