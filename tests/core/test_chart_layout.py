"""Every chart builder places its legend the same way, clear of the title and the axes, and its bar labels fit.

The title sits above the plot at the left; the axes below and left of it. A legend inside the title band (above the
plot, y > 1) or over the plot would cover one of them, so each figure's legend must sit right of the plot
(x >= 1, anchored on its left) and no higher than the plot's top.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from retention_core import evaluation as ev
from retention_core import plots
from retention_core.monitor import plots as mplots
from retention_core.recommend import plots as rplots
from retention_core.uplift import plots as uplots


def _yp():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300)
    return y, np.clip(0.3 * y + rng.uniform(0, 0.7, 300), 0, 1)


def _figures() -> dict[str, go.Figure]:
    y, p = _yp()
    lf = ev.lift_frame(y, p)
    seg = ev.segment_metrics(y, p, pd.Series(np.where(np.arange(300) < 290, "big", "tiny")))
    qini = pd.DataFrame({"share": np.linspace(0, 1, 11), "targeted": np.arange(11) * 30,
                         "incremental": np.linspace(0, 12, 11)})
    deciles = pd.DataFrame({"decile": range(1, 11), "uplift": np.linspace(0.1, -0.05, 10), "treated": 30,
                            "control": 30, "rate_treated": 0.5, "rate_control": 0.45})
    recs = pd.DataFrame({"recommender": ["popularity", "blend"], "k": 10, "precision": [0.1, 0.2],
                         "recall": [0.3, 0.4], "ndcg": [0.2, 0.3], "hit_rate": [0.5, 0.6],
                         "cutoff": "2011-06-01", "horizon": 90})
    campaigns = pd.DataFrame({"as_of": ["2011-06-01"], "contact_users": [900], "contact_retained": [500],
                              "control_users": [100], "control_retained": [45]})
    summary = pd.DataFrame({"snapshot_date": ["2011-01-01", "2011-02-01"], "users": [100, 120],
                            "labelled": [100, 90], "churned": [40, 30]})
    return {
        "roc": plots.roc_curves({"Logistic regression": ev.roc_frame(y, p), "Recency": ev.roc_frame(y, 1 - p)}),
        "pr": plots.pr_curves({"A": ev.pr_frame(y, p)}, base_rate=y.mean()),
        "calibration": plots.calibration_plot({"A": ev.calibration_frame(y, p)}),
        "lift": plots.lift_chart(lf),
        "gains": plots.cumulative_gains({"A": lf}),
        "threshold": plots.threshold_plot(ev.threshold_frame(y, p), 0.4),
        "profit": plots.profit_curve(ev.profit_frame(y, p, cost_per_contact=1, value_retained=20, save_rate=0.3),
                                     threshold=0.5, best=0.3),
        "segments": plots.segment_bars(seg, "roc_auc"),
        "balance": plots.label_balance(summary),
        "offers": rplots.evaluation_figure(recs),
        "campaign": mplots.campaign_retention(campaigns),
        "qini": uplots.qini_chart({"Two models": qini, "Class transformation": qini}, response=qini),
        "deciles": uplots.decile_chart(deciles, average=0.02),
    }


@pytest.mark.parametrize("name", list(_figures()))
def test_legend_never_covers_the_title_or_an_axis(name):
    """The legend sits at the bottom of the figure, one entry a line, with the room under the plot grown for the x
    axis and every entry: above it nothing of the title, the plot or the axis titles is covered."""
    fig = _figures()[name]
    entries = sum(1 for t in fig.data if t.showlegend is not False and t.type in ("scatter", "bar"))
    assert entries >= 2 and fig.layout.showlegend is not False, name  # a legend is drawn
    leg = fig.layout.legend
    assert leg.yref == "container" and leg.y == 0 and leg.yanchor == "bottom", name  # the figure's bottom
    assert leg.orientation == "v" and leg.xanchor == "left", name
    assert fig.layout.margin.b >= 60 + 20 * entries, name  # room for the x axis, then one line per entry
    assert fig.layout.title.text is None or fig.layout.title.x == 0  # the title at the top left, far from it


def test_every_builder_module_uses_the_shared_layout():
    import inspect

    for module in (plots, mplots, rplots, uplots):
        src = inspect.getsource(module)
        assert "legend=dict(orientation" not in src and "_legend_below" not in src, module.__name__


def test_leaderboard_bar_labels_are_not_cut():
    board = pd.DataFrame({"model": ["logreg", "gbm"], "label": ["Logistic regression", "Gradient boosting"],
                          "roc_auc": [0.81, 0.79]})
    fig = plots.leaderboard_bar(board, "roc_auc", best="logreg")
    bar = fig.data[0]
    assert bar.textposition == "outside" and bar.cliponaxis is False
    lo, hi = fig.layout.xaxis.range
    assert hi >= 0.81 * 1.15  # room for the "0.810" label past the longest bar
    assert fig.layout.xaxis.title.text == "ROC-AUC"  # the metric's name, not its key


def test_offer_quality_labels_have_room():
    recs = pd.DataFrame({"recommender": ["popularity"], "k": 10, "precision": [0.1], "recall": [0.3],
                         "ndcg": [0.2], "hit_rate": [0.6]})
    fig = rplots.evaluation_figure(recs)
    assert fig.layout.yaxis.range[1] >= 0.6 * 1.15
    assert all(t.cliponaxis is False for t in fig.data)


def test_monitor_charts_name_segment_columns_by_their_labels():
    """A segment column is named as the product labels the feature ("Days since first purchase"), never by its
    column name (``tenure_days``)."""
    segs = pd.DataFrame({"scoring_id": "s1", "as_of": "2011-06-01", "column": "tenure_days",
                         "segment": ["0-90", "91-365"], "users": [120, 300], "predicted_rate": [0.5, 0.3],
                         "churn_rate": [0.55, 0.28], "reliable": [True, True]})
    fig = mplots.segment_outcomes(segs, "tenure_days")
    text = f"{fig.layout.title.text} {fig.layout.xaxis.title.text}"
    assert "tenure_days" not in text and "Days since first purchase" in text
    assert mplots.segment_name("stage") == "lifecycle stage" and mplots.segment_name("country") == "Country"


def test_a_title_never_covers_labels_of_an_x_axis_on_top():
    """Heatmaps draw their x axis above the plot: the title gets a line of its own above those labels."""
    y, p = _yp()
    cm = plots.confusion_heatmap(ev.confusion(y, p, 0.5))
    assert cm.layout.xaxis.side == "top" and cm.layout.margin.t >= 80
    assert plots.confusion_heatmap(ev.confusion(y, p, 0.5), title=None).layout.margin.t >= 50


def test_feature_histogram_names_the_feature_by_its_label():
    frame = pd.DataFrame({"churned": [0, 1] * 50, "tenure_days": np.arange(100.0)})
    title = plots.feature_histogram(frame, "tenure_days").layout.xaxis.title.text
    assert title.startswith("Days since first purchase") and "tenure_days" not in title
