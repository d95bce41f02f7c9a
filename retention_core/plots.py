"""Plotly figure builders: each takes DataFrames and returns a ``go.Figure`` (no Streamlit here).

The same figures are used by the app and can be saved from notebooks or the command line. Colours are fixed across the
product: retained users in blue, churned users in red, users not labelled yet in grey.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .chart_layout import LEGEND, base_layout, place_legend, room_for_labels  # noqa: F401 (the shared layout)
from .evaluation import METRIC_LABELS
from .explain import feature_label
from .cohorts import PERIOD_LABELS, cohort_label, observed_periods

RETAINED = "#4C78A8"
CHURNED = "#E45756"
UNLABELLED = "#BAB0AC"
#: A sequential scale from near-white to deep blue, as retention charts usually use.
RETENTION_SCALE = [[0.0, "#F7FBFF"], [0.15, "#DEEBF7"], [0.35, "#9ECAE1"], [0.6, "#4292C6"], [0.8, "#2171B5"],
                   [1.0, "#08306B"]]
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
        return base_layout(fig, title, 240)

    values = matrix[periods].to_numpy(dtype="float64") * 100
    sizes = matrix["cohort_size"].to_numpy() if "cohort_size" in matrix else np.full(len(matrix), np.nan)
    names = [cohort_label(c, period) for c in matrix.index]
    earlier = matrix.attrs.get("earlier_customers_cohort")
    ylabels = [f"{n}  ·  {int(s):,} users" if np.isfinite(s) else n for n, s in zip(names, sizes)]
    ylabels = [f"{y}  {EARLIER_MARK}" if earlier is not None and c == earlier else y
               for y, c in zip(ylabels, matrix.index)]
    xlabels = [f"{unit} {p}" for p in periods]
    later = values[:, 1:] if values.shape[1] > 1 else values
    zmax = float(np.nanmax(later)) if np.isfinite(later).any() else 100.0
    zmax = max(zmax, 1.0)
    returning = np.rint(values / 100 * sizes[:, None])
    partial = _partial_cells(matrix, periods)
    text = np.array([[_pct(v) + (PARTIAL_MARK if cut and _pct(v) else "") for v, cut in zip(row, cuts)]
                     for row, cuts in zip(values, partial)], dtype=object)
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
    notes = _cohort_notes(matrix, unit, earlier is not None and earlier in matrix.index, bool(partial.any()))
    fig = base_layout(fig, title, height + 24 * len(notes))
    for i, note in enumerate(notes):
        fig.add_annotation(text=note, xref="paper", yref="paper", x=0, xanchor="left", y=0, yanchor="top",
                           yshift=-6 - 22 * i, showarrow=False, align="left", font=dict(size=12, color="#555555"))
    fig.update_layout(margin=dict(b=12 + 24 * len(notes)))
    return fig


#: How the heatmap marks cells of the log's partial last period and the cohort of customers already there when the
#: log starts (a note under the chart says what each mark means).
PARTIAL_MARK = " ◔"
EARLIER_MARK = "◂ log starts"


def _partial_cells(matrix: pd.DataFrame, periods: list) -> np.ndarray:
    """True where a cell falls in the log's last period and that period is partial."""
    out = np.zeros((len(matrix), len(periods)), dtype=bool)
    last = matrix.attrs.get("last_period")
    if not matrix.attrs.get("partial_last") or last is None or not len(matrix):
        return out
    k = observed_periods(pd.Timestamp(last), pd.DatetimeIndex(matrix.index), matrix.attrs.get("period", "M"))
    return np.asarray(periods)[None, :] == k[:, None]


def _cohort_notes(matrix: pd.DataFrame, unit: str, earlier: bool, partial: bool) -> list[str]:
    notes = []
    if partial:
        end = pd.Timestamp(matrix.attrs["log_end"])
        notes.append(f"{PARTIAL_MARK.strip()} partial {unit.lower()}: the log ends on {end:%d %b %Y}, so these "
                     "cells count only part of it and read low.")
    if earlier:
        start = pd.Timestamp(matrix.attrs["log_start"])
        notes.append(f"{EARLIER_MARK}: the log begins on {start:%d %b %Y}; this cohort also holds customers who "
                     "bought before, so it is not a cohort of new customers.")
    return notes


def label_balance(summary: pd.DataFrame, *, title: str | None = "Label balance per snapshot") -> go.Figure:
    """Retained vs churned users per snapshot, from :meth:`retention_core.dataset.Dataset.summary`.

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
    return base_layout(fig, title, 360)


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
    xtitle = feature_label(column)  # the feature's label, not its column name
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
    fig = base_layout(fig, title, 380)
    fig.update_layout(legend=dict(traceorder="normal"))
    return fig


# ================================================================================================ model evaluation
#: Colours for models drawn together (the first is the model in focus).
MODEL_COLOURS = ["#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#B279A2", "#EECA3B", "#9D755D", "#FF9DA6",
                 "#BAB0AC"]
_GRID = "#EEEEEE"
_REFERENCE = dict(color="#9E9E9E", dash="dot", width=1.5)


def _colour(i: int) -> str:
    return MODEL_COLOURS[i % len(MODEL_COLOURS)]


def _as_dict(frames) -> dict:
    return frames if isinstance(frames, dict) else {"Model": frames}


def _line_width(name: str, highlight: str | None) -> float:
    return 3.0 if highlight is not None and name == highlight else 2.0


def _unit_axes(fig: go.Figure, xtitle: str, ytitle: str) -> None:
    fig.update_xaxes(title=xtitle, range=[0, 1], gridcolor=_GRID, zeroline=False)
    fig.update_yaxes(title=ytitle, range=[0, 1.02], gridcolor=_GRID, zeroline=False)


def roc_curves(frames: dict[str, pd.DataFrame] | pd.DataFrame, *, aucs: dict[str, float] | None = None,
               highlight: str | None = None, title: str | None = "ROC curve") -> go.Figure:
    """ROC curves (``fpr``, ``tpr``) of one or several models, plus the chance diagonal.

    ``frames`` maps a model name to :func:`retention_core.evaluation.roc_frame`; ``aucs`` adds the area to the legend.
    """
    fig = go.Figure()
    fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", name="Chance", line=_REFERENCE, hoverinfo="skip")
    for i, (name, f) in enumerate(_as_dict(frames).items()):
        label = f"{name} ({aucs[name]:.3f})" if aucs and name in aucs and np.isfinite(aucs[name]) else str(name)
        fig.add_scatter(x=f["fpr"], y=f["tpr"], mode="lines", name=label,
                        line=dict(color=_colour(i), width=_line_width(name, highlight)),
                        customdata=f["threshold"] if "threshold" in f else None,
                        hovertemplate=f"{name}<br>false positive rate %{{x:.2f}}<br>true positive rate %{{y:.2f}}"
                                      + ("<br>threshold %{customdata:.3f}" if "threshold" in f else "")
                                      + "<extra></extra>")
    _unit_axes(fig, "False positive rate (retained users flagged)", "True positive rate (churners found)")
    return base_layout(fig, title, 400)


def pr_curves(frames: dict[str, pd.DataFrame] | pd.DataFrame, *, base_rate: float | None = None,
              aps: dict[str, float] | None = None, highlight: str | None = None,
              title: str | None = "Precision-recall curve") -> go.Figure:
    """Precision-recall curves (``recall``, ``precision``) of one or several models; ``base_rate`` (the churn rate)
    draws the precision of flagging users at random."""
    fig = go.Figure()
    if base_rate is not None and np.isfinite(base_rate):
        fig.add_scatter(x=[0, 1], y=[base_rate, base_rate], mode="lines", name=f"Random ({base_rate:.0%} churn)",
                        line=_REFERENCE, hoverinfo="skip")
    for i, (name, f) in enumerate(_as_dict(frames).items()):
        label = f"{name} ({aps[name]:.3f})" if aps and name in aps and np.isfinite(aps[name]) else str(name)
        fig.add_scatter(x=f["recall"], y=f["precision"], mode="lines", name=label,
                        line=dict(color=_colour(i), width=_line_width(name, highlight), shape="hv"),
                        hovertemplate=f"{name}<br>recall %{{x:.2f}}<br>precision %{{y:.2f}}<extra></extra>")
    _unit_axes(fig, "Recall (share of churners found)", "Precision (share of flagged users who churn)")
    return base_layout(fig, title, 400)


def calibration_plot(frames: dict[str, pd.DataFrame] | pd.DataFrame, *,
                     title: str | None = "Calibration") -> go.Figure:
    """Mean predicted vs observed churn per bin (:func:`retention_core.evaluation.calibration_frame`); a well
    calibrated model follows the diagonal. Marker size follows the users in each bin."""
    fig = go.Figure()
    fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", name="Perfectly calibrated", line=_REFERENCE, hoverinfo="skip")
    for i, (name, f) in enumerate(_as_dict(frames).items()):
        users = f["users"].to_numpy(dtype=float) if "users" in f else np.ones(len(f))
        size = 6 + 10 * np.sqrt(users / users.max()) if len(users) and users.max() > 0 else 8
        fig.add_scatter(x=f["predicted"], y=f["observed"], mode="lines+markers", name=str(name),
                        line=dict(color=_colour(i), width=2), marker=dict(size=size), customdata=users,
                        hovertemplate=f"{name}<br>predicted %{{x:.1%}}<br>observed %{{y:.1%}}"
                                      "<br>%{customdata:,.0f} users<extra></extra>")
    _unit_axes(fig, "Mean predicted churn probability", "Observed churn rate")
    return base_layout(fig, title, 400)


def lift_chart(frame: pd.DataFrame, *, title: str | None = "Lift per risk decile") -> go.Figure:
    """Lift of each risk decile (1 = the users most at risk) over the average churn rate, from
    :func:`retention_core.evaluation.lift_frame`; the line at 1 is what a random list achieves."""
    fig = go.Figure()
    fig.add_bar(x=frame["decile"], y=frame["lift"], name="Lift", marker_color=CHURNED,
                customdata=np.c_[frame["churn_rate"].to_numpy(dtype=float), frame["users"].to_numpy(dtype=float)],
                hovertemplate="decile %{x}<br>lift %{y:.2f}<br>churn rate %{customdata[0]:.1%}"
                              "<br>%{customdata[1]:,.0f} users<extra></extra>")
    fig.add_scatter(x=[0.5, len(frame) + 0.5], y=[1, 1], mode="lines", name="Random", line=_REFERENCE,
                    hoverinfo="skip")
    fig.update_xaxes(title="Risk decile (1 = highest risk)", dtick=1, gridcolor=_GRID)
    fig.update_yaxes(title="Lift over the average", gridcolor=_GRID, rangemode="tozero")
    return base_layout(fig, title, 360)


def cumulative_gains(frames: dict[str, pd.DataFrame] | pd.DataFrame, *,
                     title: str | None = "Cumulative gains") -> go.Figure:
    """Share of all churners found when contacting the riskiest share of users (from
    :func:`retention_core.evaluation.lift_frame`), one line per model plus the random diagonal."""
    fig = go.Figure()
    fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", name="Random", line=_REFERENCE, hoverinfo="skip")
    for i, (name, f) in enumerate(_as_dict(frames).items()):
        x = np.r_[0.0, f["cumulative_share_of_users"].to_numpy(dtype=float)]
        y = np.r_[0.0, f["cumulative_gain"].to_numpy(dtype=float)]
        fig.add_scatter(x=x, y=y, mode="lines+markers", name=str(name), line=dict(color=_colour(i), width=2),
                        hovertemplate=f"{name}<br>contact the riskiest %{{x:.0%}}<br>find %{{y:.0%}} of churners"
                                      "<extra></extra>")
    _unit_axes(fig, "Share of users contacted (riskiest first)", "Share of churners found")
    fig.update_xaxes(tickformat=".0%")
    fig.update_yaxes(tickformat=".0%")
    return base_layout(fig, title, 360)


def threshold_plot(frame: pd.DataFrame, threshold: float | None = None, *,
                   title: str | None = "Precision, recall and F1 by threshold") -> go.Figure:
    """Precision, recall, F1 and the share of users flagged against the threshold
    (:func:`retention_core.evaluation.threshold_frame`), with a marker at the chosen threshold."""
    fig = go.Figure()
    series = [("precision", "Precision", "#4C78A8", "solid"), ("recall", "Recall", "#E45756", "solid"),
              ("f1", "F1", "#54A24B", "solid"), ("flagged_share", "Share flagged", "#9E9E9E", "dash")]
    for col, name, colour, dash in series:
        if col in frame:
            fig.add_scatter(x=frame["threshold"], y=frame[col], mode="lines", name=name,
                            line=dict(color=colour, width=2, dash=dash),
                            hovertemplate=f"threshold %{{x:.2f}}<br>{name} %{{y:.1%}}<extra></extra>")
    if threshold is not None and np.isfinite(threshold):
        fig.add_vline(x=float(threshold), line=dict(color="#222222", width=1.5, dash="dash"))
        i = int((frame["threshold"] - threshold).abs().idxmin()) if len(frame) else None
        if i is not None:
            ys = [frame.loc[i, c] for c, *_ in series[:3] if c in frame]
            fig.add_scatter(x=[float(threshold)] * len(ys), y=ys, mode="markers", name="Chosen threshold",
                            marker=dict(color="#222222", size=9, symbol="diamond"),
                            hovertemplate=f"chosen threshold {threshold:.3f}<br>%{{y:.1%}}<extra></extra>")
    _unit_axes(fig, "Threshold (flag users at or above this churn probability)", "Value")
    fig.update_yaxes(tickformat=".0%")
    return base_layout(fig, title, 360)


def confusion_heatmap(matrix: pd.DataFrame, *, title: str | None = "Confusion matrix") -> go.Figure:
    """Counts of :func:`retention_core.evaluation.confusion` (actual in rows, predicted in columns), each cell with
    its share of all users."""
    z = matrix.to_numpy(dtype=float)
    total = z.sum() or 1.0
    text = np.array([[f"{int(v):,}<br>{v / total:.1%}" for v in row] for row in z], dtype=object)
    fig = go.Figure(go.Heatmap(z=z, x=[str(c) for c in matrix.columns], y=[str(i) for i in matrix.index], text=text,
                               texttemplate="%{text}", textfont=dict(size=14), colorscale="Blues", showscale=False,
                               xgap=3, ygap=3, hovertemplate="%{y}, %{x}: %{z:,.0f} users<extra></extra>"))
    fig.update_yaxes(autorange="reversed", type="category", showgrid=False)
    fig.update_xaxes(type="category", side="top", showgrid=False)
    return base_layout(fig, title, 300)


def profit_curve(frame: pd.DataFrame, *, threshold: float | None = None, best: float | None = None,
                 currency: str = "", title: str | None = "Expected campaign profit") -> go.Figure:
    """Expected profit of contacting everyone above each threshold
    (:func:`retention_core.evaluation.profit_frame`), with markers at the best-profit and the chosen thresholds."""
    fig = go.Figure()
    fig.add_scatter(x=frame["threshold"], y=frame["profit"], mode="lines", name="Expected profit",
                    line=dict(color="#54A24B", width=2.5), customdata=frame["contacted"],
                    hovertemplate=f"threshold %{{x:.2f}}<br>profit {currency}%{{y:,.0f}}"
                                  "<br>%{customdata:,} users contacted<extra></extra>")
    fig.add_hline(y=0, line=_REFERENCE)

    def mark(t: float, name: str, colour: str, symbol: str) -> None:
        i = int((frame["threshold"] - t).abs().idxmin())
        fig.add_scatter(x=[float(t)], y=[float(frame.loc[i, "profit"])], mode="markers", name=name,
                        marker=dict(color=colour, size=12, symbol=symbol, line=dict(color="white", width=1)),
                        hovertemplate=f"{name}: threshold %{{x:.3f}}<br>profit {currency}%{{y:,.0f}}<extra></extra>")

    if len(frame) and best is not None and np.isfinite(best):
        mark(best, "Best profit", "#F58518", "star")
    if len(frame) and threshold is not None and np.isfinite(threshold):
        mark(threshold, "Chosen threshold", "#222222", "diamond")
    fig.update_xaxes(title="Threshold", range=[0, 1], gridcolor=_GRID)
    fig.update_yaxes(title=f"Expected profit{f' ({currency})' if currency else ''}", gridcolor=_GRID)
    return base_layout(fig, title, 360)


def leaderboard_bar(board: pd.DataFrame, metric: str = "roc_auc", *, best: str | None = None,
                    metric_label: str | None = None, title: str | None = None) -> go.Figure:
    """One horizontal bar per model for ``metric`` (best first, the best model highlighted)."""
    metric_label = metric_label or METRIC_LABELS.get(metric, metric)
    b = board.dropna(subset=[metric]) if metric in board else board.iloc[0:0]
    b = b.sort_values(metric, ascending=True)
    names = (b["label"] if "label" in b else b["model"]).astype(str).tolist()
    keys = b["model"].astype(str).tolist() if "model" in b else names
    colours = [CHURNED if best is not None and k == best else RETAINED for k in keys]
    fig = go.Figure(go.Bar(x=b[metric] if metric in b else [], y=names, orientation="h", marker_color=colours,
                           text=[f"{v:.3f}" for v in b[metric]] if metric in b else None, textposition="outside",
                           name=metric_label or metric,
                           hovertemplate="%{y}: %{x:.4f}<extra></extra>"))
    fig.update_xaxes(title=metric_label or metric, gridcolor=_GRID, rangemode="tozero")
    fig.update_yaxes(type="category", automargin=True)
    room_for_labels(fig, b[metric] if metric in b else [], axis="x")
    fig = base_layout(fig, title, max(200, 70 + 40 * len(b)))
    fig.update_layout(showlegend=False)
    return fig


def backtest_lines(frame: pd.DataFrame, metric: str = "roc_auc", *, labels: dict[str, str] | None = None,
                   metric_label: str | None = None, title: str | None = "Quality per validation cutoff") -> go.Figure:
    """``metric`` of each model at each validation cutoff (the saved backtest: ``cutoff, model, <metrics>``)."""
    fig = go.Figure()
    if len(frame) and metric in frame:
        f = frame.assign(cutoff=pd.to_datetime(frame["cutoff"])).sort_values("cutoff")
        for i, (model, g) in enumerate(f.groupby("model", sort=False)):
            name = (labels or {}).get(model, str(model))
            fig.add_scatter(x=g["cutoff"], y=g[metric], mode="lines+markers", name=name,
                            line=dict(color=_colour(i), width=2),
                            hovertemplate=f"{name}<br>%{{x|%Y-%m-%d}}: %{{y:.3f}}<extra></extra>")
    fig.update_xaxes(title="Validation cutoff", gridcolor=_GRID)
    fig.update_yaxes(title=metric_label or METRIC_LABELS.get(metric, metric), gridcolor=_GRID)
    return base_layout(fig, title, 340)


def segment_bars(frame: pd.DataFrame, metric: str = "roc_auc", *, metric_label: str | None = None,
                 title: str | None = None) -> go.Figure:
    """``metric`` per segment (:func:`retention_core.evaluation.segment_metrics`); segments too small to judge
    (``reliable`` False) are drawn in grey and named as such."""
    metric_label = metric_label or METRIC_LABELS.get(metric, metric)
    f = frame.copy()
    reliable = f["reliable"].astype(bool) if "reliable" in f else pd.Series(True, index=f.index)
    names = f["segment"].astype(str)
    users = f["users"].to_numpy(dtype=float) if "users" in f else np.full(len(f), np.nan)
    fig = go.Figure()
    for ok, colour, label in ((True, RETAINED, metric_label or metric), (False, UNLABELLED, "Too small to judge")):
        m = (reliable == ok).to_numpy()
        if not m.any():
            continue
        vals = f.loc[m, metric].to_numpy(dtype=float) if metric in f else np.full(int(m.sum()), np.nan)
        fig.add_bar(x=names[m], y=vals, name=label, marker_color=colour, customdata=users[m],
                    text=[f"{v:.2f}" if np.isfinite(v) else "n/a" for v in vals], textposition="outside",
                    hovertemplate="%{x}<br>%{y:.3f}<br>%{customdata:,.0f} users<extra></extra>")
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=names.tolist())
    fig.update_yaxes(title=metric_label or metric, gridcolor=_GRID, rangemode="tozero")
    fig.update_layout(barmode="overlay")
    room_for_labels(fig, f[metric] if metric in f else [], axis="y")
    return base_layout(fig, title, 340)


#: Risk tiers from high to low (retention_core.segments.risk_tiers): colour and legend name.
TIER_COLOURS = {"high": (CHURNED, "high risk (top 20%)"), "medium": ("#F2A541", "medium (next 30%)"),
                "low": (RETAINED, "low (other 50%)")}


def stage_risk_bars(table: pd.DataFrame, *, title: str | None = "Customers by lifecycle stage and risk",
                    labels: dict | None = None) -> go.Figure:
    """Stacked bars of :func:`retention_core.segments.stage_risk_table`: customers per lifecycle stage (in stage
    order), split by risk tier; each bar carries its total. The legend sits right of the plot, clear of the title
    and the axes."""
    if table is None or not len(table) or int(table["customers"].sum()) == 0:
        return _empty(title, "No customer has a lifecycle stage (stages need an event log)")
    stages = list(dict.fromkeys(table["stage"].astype(str)))
    names = [(labels or {}).get(s, s.capitalize()) for s in stages]
    fig = go.Figure()
    for tier, (colour, legend) in TIER_COLOURS.items():
        part = table[table["tier"].astype(str) == tier].set_index("stage")["customers"].reindex(stages, fill_value=0)
        fig.add_bar(x=names, y=part.to_numpy(), name=legend, marker_color=colour,
                    hovertemplate="%{x}: %{y:,} customers at " + tier + " risk<extra></extra>")
    totals = table.groupby(table["stage"].astype(str))["customers"].sum().reindex(stages, fill_value=0)
    fig.add_scatter(x=names, y=totals.to_numpy(), mode="text", text=[f"{int(v):,}" for v in totals],
                    textposition="top center", showlegend=False, hoverinfo="skip")
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=names, title="lifecycle stage")
    fig.update_yaxes(title="customers", gridcolor=_GRID, rangemode="tozero", range=[0, float(totals.max()) * 1.15])
    fig.update_layout(barmode="stack")
    return base_layout(fig, title, 340)


# ================================================================================================ explanations
RISK_UP = CHURNED
RISK_DOWN = RETAINED
#: Low feature values in blue, high ones in red (the usual SHAP beeswarm reading).
VALUE_SCALE = [[0.0, "#3B6FB6"], [0.5, "#B8A9C9"], [1.0, "#D6404E"]]
#: Below the population in blue, above it in red, white at no difference.
DIVERGING_SCALE = [[0.0, "#2166AC"], [0.25, "#92C5DE"], [0.5, "#F7F7F7"], [0.75, "#F4A582"], [1.0, "#B2182B"]]


def _empty(title: str | None, text: str, height: int = 240) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=text, showarrow=False, font=dict(size=14))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return base_layout(fig, title, height)


def importance_bar(importance: pd.DataFrame, *, top: int = 15, unit: str = "pts",
                   title: str | None = "What drives churn risk overall") -> go.Figure:
    """Mean |SHAP| per feature (:func:`retention_core.explain.global_importance`), most important at the top;
    bars in red when higher values of the feature raise churn risk, blue when they lower it, grey otherwise."""
    if importance is None or importance.empty:
        return _empty(title, "No explanations to show")
    f = importance.head(int(top)).iloc[::-1]
    d = f["direction"].to_numpy(dtype=float) if "direction" in f else np.full(len(f), np.nan)
    colours = [RISK_UP if v > 0.2 else RISK_DOWN if v < -0.2 else UNLABELLED for v in np.nan_to_num(d)]
    how = ["higher values raise risk" if v > 0.2 else "higher values lower risk" if v < -0.2 else "mixed or a category"
           for v in np.nan_to_num(d)]
    labels = f["label"] if "label" in f else f["feature"]
    fig = go.Figure(go.Bar(x=f["mean_abs_shap"], y=labels, orientation="h", marker_color=colours, customdata=how,
                           hovertemplate=f"%{{y}}<br>mean effect %{{x:.2f}} {unit}<br>%{{customdata}}<extra></extra>"))
    fig.update_xaxes(title=f"Mean absolute effect on churn probability ({unit})", gridcolor=_GRID)
    fig.update_yaxes(type="category")
    return base_layout(fig, title, max(300, 60 + 24 * len(f)))


def beeswarm(data: pd.DataFrame, *, unit: str = "pts", seed: int = 0,
             title: str | None = "Effect of each feature, one dot per user") -> go.Figure:
    """A beeswarm-style chart from :func:`retention_core.explain.beeswarm_data`: one row per feature (most important
    at the top), one dot per user at its effect on churn risk, coloured by the feature's value (blue low, red high,
    grey for categories and missing values); dots are spread vertically so dense areas read as wide bands."""
    if data is None or data.empty:
        return _empty(title, "No explanations to show")
    labels = list(dict.fromkeys(data["label"]))
    pos = {lab: len(labels) - 1 - i for i, lab in enumerate(labels)}
    rng = np.random.default_rng(seed)
    y = np.empty(len(data))
    for lab, idx in data.groupby("label", sort=False).indices.items():
        s = data["shap"].to_numpy(dtype=float)[idx]
        # spread in proportion to the local density of dots, like a swarm
        hist, edges = np.histogram(s, bins=min(40, max(len(s), 1)))
        dens = hist[np.clip(np.searchsorted(edges, s, side="right") - 1, 0, len(hist) - 1)] / max(hist.max(), 1)
        y[idx] = pos[lab] + (rng.random(len(idx)) - 0.5) * 0.8 * np.sqrt(dens)
    v = data["value"].to_numpy(dtype=float)
    known = np.isfinite(v)
    fig = go.Figure()
    hover = "%{customdata[0]}: %{customdata[1]}<br>effect %{x:.2f} " + unit + "<extra></extra>"
    text = data[["label", "value_text"]]
    if (~known).any():
        fig.add_scattergl(x=data["shap"][~known], y=y[~known], mode="markers", name="category / missing",
                          marker=dict(color=UNLABELLED, size=5, opacity=0.6), customdata=text[~known],
                          hovertemplate=hover)
    if known.any():
        bar = dict(title=dict(text="value"), tickvals=[0, 1], ticktext=["low", "high"], thickness=10, len=0.6)
        fig.add_scattergl(x=data["shap"][known], y=y[known], mode="markers", name="feature value",
                          marker=dict(color=v[known], colorscale=VALUE_SCALE, cmin=0, cmax=1, size=5, opacity=0.7,
                                      colorbar=bar), customdata=text[known], hovertemplate=hover)
    fig.add_vline(x=0, line=_REFERENCE)
    fig.update_yaxes(tickvals=list(pos.values()), ticktext=list(pos.keys()), gridcolor=_GRID, zeroline=False)
    fig.update_xaxes(title=f"Effect on churn probability ({unit}); right of 0 raises risk", gridcolor=_GRID,
                     zeroline=False)
    fig.update_layout(showlegend=False)
    return base_layout(fig, title, max(320, 60 + 28 * len(labels)))


def dependence_plot(data: pd.DataFrame, feature_label: str, *, color_label: str | None = None, unit: str = "pts",
                    title: str | None = None) -> go.Figure:
    """Effect of one feature against its value (:func:`retention_core.explain.dependence`): a dot per user, a box per
    value for categories; coloured by another feature when ``data`` has a ``color`` column."""
    title = title if title is not None else f"How {feature_label.lower()} moves churn risk"
    if data is None or data.empty:
        return _empty(title, "No explanations to show")
    numeric = pd.api.types.is_numeric_dtype(data["value"].dtype)
    fig = go.Figure()
    if numeric:
        marker: dict = dict(size=6, opacity=0.7, color=RETAINED)
        if "color" in data and pd.api.types.is_numeric_dtype(data["color"].dtype):
            marker.update(color=data["color"], colorscale=VALUE_SCALE,
                          colorbar=dict(title=dict(text=color_label or "colour"), thickness=10, len=0.6))
            fig.add_scattergl(x=data["value"], y=data["shap"], mode="markers", marker=marker, showlegend=False,
                              hovertemplate="value %{x}<br>effect %{y:.2f} " + unit + "<extra></extra>")
        elif "color" in data:
            for i, (g, part) in enumerate(data.groupby("color", sort=True)):
                fig.add_scattergl(x=part["value"], y=part["shap"], mode="markers", name=str(g),
                                  marker=dict(size=6, opacity=0.7, color=_colour(i)),
                                  hovertemplate="value %{x}<br>effect %{y:.2f} " + unit + "<extra></extra>")
        else:
            fig.add_scattergl(x=data["value"], y=data["shap"], mode="markers", marker=marker, showlegend=False,
                              hovertemplate="value %{x}<br>effect %{y:.2f} " + unit + "<extra></extra>")
    else:
        fig.add_box(x=data["value"].astype(str), y=data["shap"], boxpoints="all", jitter=0.4, pointpos=0,
                    marker=dict(size=4, color=RETAINED, opacity=0.6), line=dict(color=RETAINED), showlegend=False,
                    hovertemplate="%{x}<br>effect %{y:.2f} " + unit + "<extra></extra>")
        fig.update_xaxes(type="category")
    fig.add_hline(y=0, line=_REFERENCE)
    fig.update_xaxes(title=feature_label, gridcolor=_GRID)
    fig.update_yaxes(title=f"Effect on churn probability ({unit})", gridcolor=_GRID, zeroline=False)
    return base_layout(fig, title, 380)


def waterfall(effects: pd.Series, *, base: float, prediction: float | None = None, labels: dict | None = None,
              values: dict | None = None, top: int = 10, unit: str = "pts",
              title: str | None = "Why this user's churn risk is what it is") -> go.Figure:
    """One user's effects (percentage points of churn probability, :meth:`Explainer.effects_points`) as a waterfall
    from the average risk ``base`` (in %) to the user's risk: the ``top`` largest effects, the rest summed into
    one bar; red bars raise risk, blue ones lower it."""
    e = pd.to_numeric(pd.Series(effects), errors="coerce").fillna(0.0)
    order = e.abs().sort_values(ascending=False, kind="stable").index
    shown = e.loc[order[: int(top)]]
    rest = float(e.loc[order[int(top):]].sum())
    names, steps = [], []
    for f, v in shown.items():
        name = (labels or {}).get(f, str(f))
        val = (values or {}).get(f)
        names.append(name if val is None or (isinstance(val, float) and not np.isfinite(val)) else f"{name} = {val}")
        steps.append(float(v))
    if len(order) > int(top):
        names.append(f"{len(order) - int(top)} other features")
        steps.append(rest)
    final = base + sum(steps) if prediction is None else prediction
    fig = go.Figure(go.Waterfall(
        orientation="h", y=["Average user"] + names + ["This user"], x=[base] + steps + [final],
        measure=["absolute"] + ["relative"] * len(steps) + ["total"],
        text=[f"{base:.1f}%"] + [f"{s:+.1f}" for s in steps] + [f"{final:.1f}%"], textposition="outside",
        increasing=dict(marker=dict(color=RISK_UP)), decreasing=dict(marker=dict(color=RISK_DOWN)),
        totals=dict(marker=dict(color="#6C6C6C")), connector=dict(line=dict(color="#BDBDBD", width=1)),
        hovertemplate="%{y}<br>%{x:.1f}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(title=f"Churn probability (%), effects in {unit}", gridcolor=_GRID)
    fig.update_layout(showlegend=False)
    return base_layout(fig, title, max(320, 80 + 28 * (len(names) + 2)))


def segment_heatmap(matrix: pd.DataFrame, *, flags: pd.DataFrame | None = None, labels: dict | None = None,
                    users: pd.Series | None = None, how: str = "difference", unit: str = "pts",
                    title: str | None = "What drives churn in each segment, against everyone") -> go.Figure:
    """Segment x feature heatmap of :func:`retention_core.segments.segment_shap_heatmap_data`: red where a feature
    weighs more in the segment than in the whole population, blue where it weighs less; flagged cells (each
    segment's biggest departures) are marked with a star."""
    if matrix is None or matrix.empty:
        return _empty(title, "No segments to compare")
    z = matrix.to_numpy(dtype=float)
    if how == "ratio":
        with np.errstate(divide="ignore", invalid="ignore"):
            zc = np.log2(z)
        lim = float(np.nanmax(np.abs(zc))) if np.isfinite(zc).any() else 1.0
        text = [[("" if not np.isfinite(v) else f"{v:.2f}x") for v in row] for row in z]
        bar = dict(title=dict(text="vs everyone"), tickvals=[-lim, 0, lim],
                   ticktext=[f"{2 ** -lim:.2f}x", "1x", f"{2 ** lim:.2f}x"], thickness=10, len=0.8)
        hover = "%{y}<br>%{x}: %{text} everyone's weight<extra></extra>"
    else:
        zc = z
        lim = float(np.nanmax(np.abs(z))) if np.isfinite(z).any() else 1.0
        text = [[("" if not np.isfinite(v) else f"{v:+.2f}") for v in row] for row in z]
        bar = dict(title=dict(text=f"{unit} vs everyone"), thickness=10, len=0.8)
        hover = "%{y}<br>%{x}: %{text} " + unit + " against everyone<extra></extra>"
    lim = max(lim, 1e-9)
    if flags is not None:
        fl = flags.reindex(index=matrix.index, columns=matrix.columns).fillna(False).to_numpy(dtype=bool)
        text = [[(t + " ★") if f and t else t for t, f in zip(row, frow)] for row, frow in zip(text, fl)]
    xs = [(labels or {}).get(c, str(c)) for c in matrix.columns]
    ys = [f"{s} · {int(users[s]):,}" if users is not None and s in users.index else str(s) for s in matrix.index]
    fig = go.Figure(go.Heatmap(z=zc, x=xs, y=ys, text=text, texttemplate="%{text}", textfont=dict(size=10),
                               colorscale=DIVERGING_SCALE, zmin=-lim, zmax=lim, zmid=0, xgap=1, ygap=1,
                               colorbar=bar, hovertemplate=hover, hoverongaps=False))
    fig.update_yaxes(autorange="reversed", type="category", showgrid=False)
    fig.update_xaxes(type="category", showgrid=False, tickangle=-35)
    return base_layout(fig, title, max(300, 140 + 30 * len(matrix)))


def segment_drivers(segment_values: pd.Series, population: pd.Series, *, labels: dict | None = None,
                    segment: str = "segment", top: int = 10, unit: str = "pts",
                    title: str | None = None) -> go.Figure:
    """Mean |SHAP| per feature in one segment next to the whole population, largest departures first."""
    title = title if title is not None else f"Drivers in {segment} against everyone"
    s = pd.to_numeric(pd.Series(segment_values), errors="coerce")
    pop = pd.to_numeric(pd.Series(population), errors="coerce").reindex(s.index)
    if s.empty:
        return _empty(title, "No explanations to show")
    order = (s - pop).abs().sort_values(ascending=False, kind="stable").index[: int(top)][::-1]
    names = [(labels or {}).get(f, str(f)) for f in order]
    fig = go.Figure()
    fig.add_bar(y=names, x=pop.loc[order], orientation="h", name="everyone", marker_color=UNLABELLED,
                hovertemplate="%{y}<br>everyone: %{x:.2f} " + unit + "<extra></extra>")
    fig.add_bar(y=names, x=s.loc[order], orientation="h", name=str(segment), marker_color=RISK_UP,
                hovertemplate="%{y}<br>" + str(segment).replace("%", "%%") + ": %{x:.2f} " + unit + "<extra></extra>")
    fig.update_layout(barmode="group")
    fig.update_xaxes(title=f"Mean absolute effect on churn probability ({unit})", gridcolor=_GRID)
    fig.update_yaxes(type="category")
    return base_layout(fig, title, max(300, 80 + 40 * len(order)))
