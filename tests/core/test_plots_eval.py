"""Evaluation figures and metrics: every builder returns the expected traces; metrics agree with scikit-learn."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from sklearn import metrics as skm

from retention_core import evaluation as ev
from retention_core import plots


@pytest.fixture(scope="module")
def yp():
    rng = np.random.default_rng(42)
    y = rng.integers(0, 2, 400)
    p = np.clip(0.35 * y + rng.uniform(0, 0.65, 400), 0, 1)
    return y, p


def _names(fig: go.Figure) -> list[str]:
    return [t.name for t in fig.data]


def test_roc_and_pr_curves_overlay_every_model(yp):
    y, p = yp
    frames = {"A": ev.roc_frame(y, p), "B": ev.roc_frame(y, 1 - p)}
    fig = plots.roc_curves(frames, aucs={"A": 0.8, "B": 0.2}, highlight="A")
    assert isinstance(fig, go.Figure)
    assert _names(fig) == ["Chance", "A (0.800)", "B (0.200)"]
    assert fig.data[1].line.width > fig.data[2].line.width
    pr = plots.pr_curves({"A": ev.pr_frame(y, p), "B": ev.pr_frame(y, 1 - p)}, base_rate=y.mean())
    assert isinstance(pr, go.Figure) and len(pr.data) == 3 and pr.data[0].name.startswith("Random")
    single = plots.roc_curves(ev.roc_frame(y, p))
    assert len(single.data) == 2


def test_calibration_lift_and_gains(yp):
    y, p = yp
    cal = plots.calibration_plot({"A": ev.calibration_frame(y, p)})
    assert isinstance(cal, go.Figure) and _names(cal) == ["Perfectly calibrated", "A"]
    lf = ev.lift_frame(y, p)
    lift = plots.lift_chart(lf)
    assert isinstance(lift, go.Figure) and [t.type for t in lift.data] == ["bar", "scatter"]
    assert len(lift.data[0].x) == 10
    gains = plots.cumulative_gains({"A": lf, "B": ev.lift_frame(y, 1 - p)})
    assert isinstance(gains, go.Figure) and _names(gains) == ["Random", "A", "B"]
    assert gains.data[1].x[0] == 0 and gains.data[1].y[-1] == pytest.approx(1.0)


def test_threshold_confusion_and_profit(yp):
    y, p = yp
    fig = plots.threshold_plot(ev.threshold_frame(y, p), 0.4)
    assert isinstance(fig, go.Figure)
    assert _names(fig) == ["Precision", "Recall", "F1", "Share flagged", "Chosen threshold"]
    assert fig.layout.shapes and fig.layout.shapes[0].x0 == pytest.approx(0.4)
    assert len(plots.threshold_plot(ev.threshold_frame(y, p)).data) == 4
    cm = plots.confusion_heatmap(ev.confusion(y, p, 0.5))
    assert isinstance(cm, go.Figure) and cm.data[0].type == "heatmap" and np.asarray(cm.data[0].z).sum() == len(y)
    pf = ev.profit_frame(y, p, cost_per_contact=1, value_retained=20, save_rate=0.3)
    best = ev.best_profit_threshold(y, p, cost_per_contact=1, value_retained=20, save_rate=0.3)
    prof = plots.profit_curve(pf, threshold=0.5, best=best)
    assert isinstance(prof, go.Figure) and _names(prof) == ["Expected profit", "Best profit", "Chosen threshold"]
    assert prof.data[1].y[0] == pytest.approx(pf["profit"].max())


def test_leaderboard_backtest_and_segments():
    board = pd.DataFrame({"model": ["logreg", "recency", "gbm"], "label": ["LR", "Recency", "GBM"],
                          "roc_auc": [0.8, 0.7, np.nan]})
    bar = plots.leaderboard_bar(board, "roc_auc", best="logreg")
    assert isinstance(bar, go.Figure) and list(bar.data[0].y) == ["Recency", "LR"]  # best at the top, NaN left out
    assert bar.data[0].marker.color[-1] == plots.CHURNED
    bt = pd.DataFrame({"cutoff": pd.to_datetime(["2024-01-01", "2024-02-01"] * 2),
                       "model": ["a", "a", "b", "b"], "roc_auc": [0.7, 0.72, 0.6, 0.65]})
    lines = plots.backtest_lines(bt, "roc_auc", labels={"a": "Model A"})
    assert isinstance(lines, go.Figure) and _names(lines) == ["Model A", "b"] and len(lines.data[0].x) == 2
    assert len(plots.backtest_lines(pd.DataFrame(), "roc_auc").data) == 0
    rng = np.random.default_rng(1)
    seg = pd.Series(rng.choice(["big", "tiny"], 300, p=[0.95, 0.05]))
    y = rng.integers(0, 2, 300)
    sm = ev.segment_metrics(y, rng.uniform(size=300), seg)
    assert not sm.set_index("segment").loc["tiny", "reliable"]
    bars = plots.segment_bars(sm, "roc_auc")
    assert isinstance(bars, go.Figure) and _names(bars) == ["ROC-AUC", "Too small to judge"]
    assert list(bars.data[1].x) == ["tiny"]


def test_metrics_equal_scikit_learn():
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 1000)
    p = np.clip(rng.beta(2, 3, 1000) + 0.2 * y, 0.001, 0.999)
    for t in (0.3, 0.5, 0.7):
        m = ev.metrics(y, p, t)
        pred = (p >= t).astype(int)
        assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p))
        assert m["pr_auc"] == pytest.approx(skm.average_precision_score(y, p))
        assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
        assert m["precision"] == pytest.approx(skm.precision_score(y, pred))
        assert m["recall"] == pytest.approx(skm.recall_score(y, pred))
        assert m["f1"] == pytest.approx(skm.f1_score(y, pred))
        assert m["log_loss"] == pytest.approx(skm.log_loss(y, p), rel=1e-6)
        assert m["brier"] == pytest.approx(skm.brier_score_loss(y, p))
    cm = ev.confusion(y, p, 0.5).to_numpy()
    assert (cm == skm.confusion_matrix(y, (p >= 0.5).astype(int))).all()


@pytest.mark.parametrize("k", [1, 10, 137, 1000])
def test_threshold_for_top_k_flags_exactly_k(k):
    p = np.random.default_rng(3).uniform(size=1000)  # no ties
    assert int((p >= ev.threshold_for_top_k(p, k)).sum()) == k
    assert int((p >= ev.threshold_for_share(p, k / 1000)).sum()) == k
    assert int((p >= ev.threshold_for_top_k(p, 0)).sum()) == 0


def test_profit_frame_on_a_hand_example():
    # 4 users: two churners (0.9, 0.6), two retained (0.7, 0.2)
    y = np.array([1, 0, 1, 0])
    p = np.array([0.9, 0.7, 0.6, 0.2])
    f = ev.profit_frame(y, p, cost_per_contact=5, value_retained=100, save_rate=0.5, points=11).set_index("threshold")
    at = lambda t: f.loc[f.index[np.isclose(f.index, t)][0]]  # noqa: E731
    # threshold 0.8: contact 1 user, 1 churner -> 1 * 0.5 * 100 - 1 * 5 = 45
    assert at(0.8)[["contacted", "churners_reached", "profit"]].tolist() == [1, 1, 45]
    # 0.5: contact 3, 2 churners -> 2 * 50 - 15 = 85
    assert at(0.5)[["contacted", "churners_reached", "profit"]].tolist() == [3, 2, 85]
    # 0.0: everyone -> 100 - 20 = 80; 1.0: nobody -> 0
    assert at(0.0)["profit"] == 80 and at(1.0)["profit"] == 0
    assert ev.best_profit_threshold(y, p, cost_per_contact=5, value_retained=100, save_rate=0.5,
                                    points=11) == pytest.approx(0.3)
