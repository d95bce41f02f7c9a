"""Figures of a monitoring report (pure Plotly builders over :class:`~retention_core.monitor.MonitorReport` frames).

Colours follow the product: realised outcomes in red (churn), predictions in blue, the validation figures as dashed
grey lines; drift bands green (stable), amber (moderate) and red (act).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ..explain import feature_label
from ..plots import CHURNED, RETAINED, UNLABELLED, base_layout, _empty
from .campaigns import wilson
from .drift import BANDS

BAND_COLOURS = {"stable": "#54A24B", "moderate": "#F2A93B", "act": CHURNED, None: UNLABELLED}
METRIC_LABELS = {"roc_auc": "ROC-AUC", "recall_at_10pct": "Recall in the top 10%", "pr_auc": "PR-AUC",
                 "brier": "Brier score", "precision_at_10pct": "Precision in the top 10%"}
_GRID = "#EEEEEE"
_DASH = dict(color="#888888", width=1.5, dash="dash")


def _observed(scorings: pd.DataFrame) -> pd.DataFrame:
    if not len(scorings):
        return scorings
    return scorings[scorings["status"] == "observed"].sort_values(["as_of", "recorded_at"])


def realised_quality(scorings: pd.DataFrame, metrics=("roc_auc", "recall_at_10pct"), *,
                     title: str | None = "Realised quality per scoring date") -> go.Figure:
    """Realised ROC-AUC and recall in the top 10% per scoring date, with the validation figures as dashed lines
    (marker size follows the users observed)."""
    seen = _observed(scorings)
    if not len(seen):
        return _empty(title, "No scoring's horizon is observed yet")
    fig = go.Figure()
    for i, m in enumerate(metrics):
        colour = (CHURNED, RETAINED, "#72B7B2", "#B279A2")[i % 4]
        users = seen["observed"].to_numpy(dtype=float)
        size = 7 + 9 * np.sqrt(users / users.max()) if users.max() > 0 else 8
        fig.add_scatter(x=seen["as_of"], y=seen[m].astype(float), mode="lines+markers", name=METRIC_LABELS.get(m, m),
                        line=dict(color=colour, width=2), marker=dict(size=size), customdata=users,
                        hovertemplate=f"{METRIC_LABELS.get(m, m)} %{{y:.3f}}<br>scored %{{x}}"
                                      "<br>%{customdata:,.0f} users observed<extra></extra>")
        val = pd.to_numeric(seen.get(f"validation_{m}"), errors="coerce")
        if val is not None and val.notna().any():
            fig.add_scatter(x=seen["as_of"], y=val, mode="lines", name=f"{METRIC_LABELS.get(m, m)} at validation",
                            line=dict(color=colour, width=1.5, dash="dash"), hoverinfo="skip")
    fig.update_xaxes(title="Scoring date (as of)", type="category", gridcolor=_GRID)
    fig.update_yaxes(title="Realised figure", range=[0, 1.02], gridcolor=_GRID)
    return base_layout(fig, title, 360)


def predicted_vs_realised(scorings: pd.DataFrame, *,
                          title: str | None = "Predicted against realised churn") -> go.Figure:
    """Per scoring date: the mean churn probability of the users observed and the share of them that churned."""
    seen = _observed(scorings)
    if not len(seen):
        return _empty(title, "No scoring's horizon is observed yet")
    fig = go.Figure()
    for col, name, colour in (("predicted_rate", "Predicted (mean churn probability)", RETAINED),
                              ("churn_rate", "Realised churn rate", CHURNED)):
        v = seen[col].astype(float)
        fig.add_bar(x=seen["as_of"], y=v, name=name, marker_color=colour, customdata=seen["observed"],
                    text=[f"{x:.0%}" for x in v], textposition="outside",
                    hovertemplate=f"{name} %{{y:.1%}}<br>scored %{{x}}<br>%{{customdata:,}} users<extra></extra>")
    fig.update_xaxes(title="Scoring date (as of)", type="category")
    fig.update_yaxes(title="Share of users", tickformat=".0%", rangemode="tozero", gridcolor=_GRID)
    fig.update_layout(barmode="group")
    return base_layout(fig, title, 340)


def calibration_by_decile(calibration: pd.DataFrame, as_of: str | None = None, *,
                          title: str | None = "Calibration by risk decile") -> go.Figure:
    """Predicted against realised churn per risk decile (1 = most at risk) of one scoring (the latest when not
    named)."""
    if not len(calibration):
        return _empty(title, "No scoring's horizon is observed yet")
    as_of = as_of or calibration["as_of"].max()
    f = calibration[calibration["as_of"] == as_of]
    if "scoring_id" in f and f["scoring_id"].nunique() > 1:  # the same date scored twice: the last one recorded
        f = f[f["scoring_id"] == f["scoring_id"].max()]
    fig = go.Figure()
    fig.add_bar(x=f["risk_decile"], y=f["predicted"], name="Predicted", marker_color=RETAINED,
                customdata=f["users"], hovertemplate="decile %{x}<br>predicted %{y:.1%}<br>%{customdata:,} users"
                                                     "<extra></extra>")
    fig.add_scatter(x=f["risk_decile"], y=f["realised"], mode="lines+markers", name="Realised",
                    line=dict(color=CHURNED, width=2), marker=dict(size=9),
                    hovertemplate="decile %{x}<br>realised %{y:.1%}<extra></extra>")
    fig.update_xaxes(title=f"Risk decile at scoring (1 = most at risk), scored {as_of}", dtick=1)
    fig.update_yaxes(title="Churn", tickformat=".0%", range=[0, 1.02], gridcolor=_GRID)
    return base_layout(fig, title, 340)


def drift_bars(drift: pd.DataFrame, score_drift: dict | None = None, *, top: int = 20,
               title: str | None = "Drift of the latest population (PSI)") -> go.Figure:
    """PSI per feature (the ``top`` largest; named by ``label`` when the table has it), coloured by band, with the 0.1
    and 0.25 band lines; the score's PSI as the first bar when known. Hover shows the sample sizes."""
    f = drift.head(top).copy()
    if score_drift is not None and score_drift.get("psi") is not None:
        score = {"feature": "churn probability (score)", "label": "Churn probability (the score)", **score_drift}
        f = pd.concat([pd.DataFrame([score]), f], ignore_index=True)
    if not len(f):
        return _empty(title, "No feature to compare")
    f = f.iloc[::-1]
    names = f["label"].fillna(f["feature"]) if "label" in f else f["feature"]
    fig = go.Figure()
    fig.add_bar(y=names, x=f["psi"].astype(float), orientation="h", showlegend=False,
                marker_color=[BAND_COLOURS.get(b, UNLABELLED) for b in f["band"]],
                customdata=np.c_[f["band"].astype(str), f["n_reference"], f["n_current"]],
                hovertemplate="%{y}<br>PSI %{x:.3f} (%{customdata[0]})<br>reference %{customdata[1]:,} rows, "
                              "current %{customdata[2]:,} users<extra></extra>")
    for x, name in zip(BANDS, ("moderate", "act")):
        fig.add_vline(x=x, line=_DASH, annotation_text=f"{x} ({name} above)", annotation_position="top")
    fig.update_xaxes(title="Population stability index", rangemode="tozero", gridcolor=_GRID)
    fig.update_yaxes(type="category")
    return base_layout(fig, title, max(260, 24 * len(f) + 90))


def segment_outcomes(segments: pd.DataFrame, column: str, as_of: str | None = None, *,
                     title: str | None = None) -> go.Figure:
    """Predicted against realised churn per value of one segment column for one scoring (the latest when not
    named); segments too small to judge are drawn in grey."""
    name = segment_name(column)
    f = segments[segments["column"] == column] if len(segments) else segments
    if not len(f):
        return _empty(title, f"No realised outcome per {name} yet")
    as_of = as_of or f["as_of"].max()
    f = f[f["as_of"] == as_of].head(15)
    reliable = f["reliable"].astype(bool).to_numpy()
    names = f["segment"].astype(str)
    fig = go.Figure()
    fig.add_bar(x=names, y=f["predicted_rate"].astype(float), name="Predicted", marker_color=RETAINED,
                hovertemplate="%{x}<br>predicted %{y:.1%}<extra></extra>")
    fig.add_bar(x=names, y=f["churn_rate"].astype(float), name="Realised",
                marker_color=[CHURNED if ok else UNLABELLED for ok in reliable], customdata=f["users"],
                hovertemplate="%{x}<br>realised %{y:.1%}<br>%{customdata:,} users<extra></extra>")
    fig.update_xaxes(type="category", title=f"{name} (grey: too few users to judge), scored {as_of}")
    fig.update_yaxes(title="Churn", tickformat=".0%", rangemode="tozero", gridcolor=_GRID)
    fig.update_layout(barmode="group")
    return base_layout(fig, title or f"Predicted against realised churn per {name}", 340)


# ----------------------------------------------------------------------------------------------- campaigns
CONTACTED, HELD_OUT = RETAINED, "#9D9D9D"
#: How segment columns of campaign results are named on charts (other columns: their feature label).
SEGMENT_NAMES = {"risk_decile": "risk decile", "stage": "lifecycle stage"}


def segment_name(column: str) -> str:
    """A segment column as charts and tables name it: ``risk decile``, ``lifecycle stage``, else its feature label."""
    return SEGMENT_NAMES.get(column) or feature_label(column)


def campaign_retention(campaigns: pd.DataFrame, *,
                       title: str | None = "Retention of the contacted and of the control group") -> go.Figure:
    """Per campaign (scoring date): the share of the contacted and of the control group who came back in the
    horizon, each with its 95% Wilson interval as an error bar."""
    if not len(campaigns):
        return _empty(title, "No campaign with a control group is observed yet")
    fig = go.Figure()
    x = [f"as of {a}" for a in campaigns["as_of"]]
    for name, label, colour in (("contact", "Contacted", CONTACTED), ("control", "Control group (not contacted)",
                                                                         HELD_OUT)):
        n = campaigns[f"{name}_users"].astype(int).to_numpy()
        k = campaigns[f"{name}_retained"].astype(int).to_numpy()
        p = np.where(n > 0, k / np.maximum(n, 1), np.nan)
        ci = np.array([wilson(int(a), int(b)) for a, b in zip(k, n)]).reshape(-1, 2)
        fig.add_bar(x=x, y=p, name=label, marker_color=colour, customdata=np.c_[n, k],
                    error_y=dict(type="data", array=ci[:, 1] - p, arrayminus=p - ci[:, 0], color="#555555",
                                 thickness=1.2, width=6),
                    text=[f"{v:.1%}" for v in p], textposition="inside", insidetextanchor="start",
                    hovertemplate=f"{label}<br>%{{x}}<br>retention %{{y:.1%}} (%{{customdata[1]:,}} of "
                                  "%{customdata[0]:,} came back)<extra></extra>")
    fig.update_xaxes(type="category")
    fig.update_yaxes(title="Came back in the horizon", tickformat=".0%", rangemode="tozero", gridcolor=_GRID)
    fig.update_layout(barmode="group")
    return base_layout(fig, title, 360)


def campaign_uplift(campaign: pd.Series, segments: pd.DataFrame, column: str | None = None, *,
                    title: str | None = None) -> go.Figure:
    """The uplift in retention (percentage points) with its 95% interval: the whole list first, then each value of
    one segment column; segments too small to judge in grey. A dashed line marks no effect."""
    rows = [{"label": "Whole list", **campaign[["uplift", "ci_low", "ci_high", "contact_users",
                                                "control_users"]].to_dict(), "reliable": True}]
    if column is not None and len(segments):
        part = segments[segments["column"] == column]
        name = segment_name(column)
        rows += [{"label": f"{name} {s}" if column == "risk_decile" else str(s), "reliable": bool(r), **f}
                 for s, r, f in zip(part["segment"], part["reliable"], part[["uplift", "ci_low", "ci_high",
                                                                              "contact_users", "control_users"]]
                                    .to_dict("records"))]
    f = pd.DataFrame(rows)
    f = f[np.isfinite(f["uplift"].astype(float))].iloc[::-1]
    u, lo, hi = (f[c].astype(float).to_numpy() * 100 for c in ("uplift", "ci_low", "ci_high"))
    fig = go.Figure(go.Scatter(
        x=u, y=f["label"], mode="markers+text", showlegend=False,
        marker=dict(size=11, color=[CONTACTED if ok else UNLABELLED for ok in f["reliable"]]),
        error_x=dict(type="data", array=hi - u, arrayminus=u - lo, color="#555555", thickness=1.5, width=5),
        text=[f"{v:+.1f} pts" for v in u], textposition="top center",
        customdata=np.c_[lo, hi, f["contact_users"], f["control_users"]],
        hovertemplate="%{y}<br>uplift %{x:+.1f} points (95% CI %{customdata[0]:+.1f} to %{customdata[1]:+.1f})"
                      "<br>%{customdata[2]:,} contacted, %{customdata[3]:,} in the control group<extra></extra>"))
    fig.add_vline(x=0, line=_DASH)
    fig.update_xaxes(title="Uplift in retention, points (95% interval)", gridcolor=_GRID, zeroline=False)
    # room above the top row for its label, written above the marker
    fig.update_yaxes(type="category", range=[-0.5, len(f) - 0.2])
    by = f" by {segment_name(column)}" if column else ""
    return base_layout(fig, title or f"Uplift of the campaign as of {campaign['as_of']}{by}",
                       max(240, 46 * len(f) + 110))
