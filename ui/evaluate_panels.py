"""The Evaluate page's panels: the threshold to act on (with metric cards, confusion matrix and profit), the curves of
every model of the run, quality per segment and quality over time."""
from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from retention_core import bundle, plots, segments
from retention_core.explain import feature_label

from . import cache, state
from .run_picker import threshold_for
from .state import Key, widget_key
from .widgets import guard, metric_cards

THRESHOLD_HOW = {"value": "By value", "top_k": "Top K users", "top_share": "Top % of users",
                 "profit": "Best expected profit"}


def _y_p(data: cache.RunData, model: str) -> tuple[Any, Any]:
    v = data.validation
    return v["churned"].to_numpy(float), v[f"p:{model}"].to_numpy(float)


def _choose_threshold(how: str, y, p, stored: float, k) -> tuple[float, Any, Any]:
    """The threshold by the chosen way (its inputs drawn here); with the profit frame and best threshold for
    ``profit``."""
    from retention_core import evaluation as ev

    n = len(p)
    if how == "value":
        thr = st.slider("Flag users whose churn probability is at least", 0.0, 1.0, round(stored, 3), 0.001,
                        format="%.3f", key=k("value"))
        # the slider shows three decimals; keep the exact threshold until it is moved
        return (stored if thr == round(stored, 3) else thr), None, None
    if how == "top_k":
        kk = st.number_input("Users to contact (K)", 1, max(n, 1), max(1, min(n, round(0.1 * n))), key=k("topk"),
                             help="The K users most at risk are flagged.")
        return ev.threshold_for_top_k(p, int(kk)), None, None
    if how == "top_share":
        share = st.slider("Share of users to contact (%)", 1, 100, 10, key=k("share"),
                          help="The riskiest share of users is flagged (a campaign budget).")
        return ev.threshold_for_share(p, share / 100), None, None
    c = st.columns(3)
    cost = c[0].number_input("Cost per contact", 0.0, 1e6, 2.0, 0.5, key=k("cost"),
                             help="What one retention contact costs (voucher, call, e-mail).")
    value = c[1].number_input("Value of a retained user", 0.0, 1e9, 50.0, 5.0, key=k("value_retained"),
                              help="What keeping one customer is worth (e.g. margin over the next year).")
    save = c[2].number_input("Expected save rate (%)", 0.0, 100.0, 20.0, 1.0, key=k("save"),
                             help="Share of contacted churners the campaign keeps.")
    kw = dict(cost_per_contact=float(cost), value_retained=float(value), save_rate=float(save) / 100)
    best = ev.best_profit_threshold(y, p, **kw)
    return best, ev.profit_frame(y, p, **kw), best


@st.fragment
def threshold_panel(data: cache.RunData, model: str) -> None:
    """Choose the threshold (value, top-K, top share or best profit): cards, confusion matrix and curves follow.
    Runs alone, so moving the threshold redraws only this panel."""
    from retention_core import evaluation as ev

    st.subheader("Threshold", anchor=False)
    y, p = _y_p(data, model)
    n, run = len(p), data.name
    choice = state.get_threshold_choice(run)
    how = st.segmented_control("Choose the threshold", list(THRESHOLD_HOW), format_func=THRESHOLD_HOW.get,
                               default=choice.how if choice is not None and choice.how in THRESHOLD_HOW else "value",
                               key=widget_key(Key.W_EVAL, run, model, "how")) or "value"
    k = lambda name: widget_key(Key.W_EVAL, run, model, name)  # noqa: E731
    with guard("choosing the threshold") as g:
        thr, profit, best = _choose_threshold(how, y, p, threshold_for(run, data.info, model), k)
    if g.failed:
        return
    thr = float(thr)
    state.set_chosen_threshold(run, model, thr, how)
    flagged = int((p >= thr).sum())
    st.caption(f"Threshold **{thr:.3f}** flags **{flagged:,}** of {n:,} validation users ({flagged / max(n, 1):.1%}). "
               "Scoring and export use this threshold for this run.")
    metric_cards(ev.metrics(y, p, thr), ev.metrics(y, p, data.model_threshold(model)))
    if profit is not None:
        row = profit.loc[int((profit["threshold"] - best).abs().idxmin())]
        st.caption(f":material/savings: Best expected profit **{row['profit']:,.0f}** at threshold {best:.3f}: "
                   f"{int(row['contacted']):,} users contacted, {int(row['churners_reached']):,} of them churners.")
        st.plotly_chart(plots.profit_curve(profit, threshold=thr, best=best), width="stretch", key=k("profit_chart"))
    curves = cache.model_curves(data.path, bundle.run_id(data.path), model)
    c = st.columns([2, 3])
    c[0].plotly_chart(plots.confusion_heatmap(ev.confusion(y, p, thr)), width="stretch", key=k("confusion"))
    c[1].plotly_chart(plots.threshold_plot(curves["threshold"], thr), width="stretch", key=k("threshold_chart"))


def curves_panel(data: cache.RunData, model: str) -> None:
    """ROC and precision-recall curves of every model of the run, calibration, lift and cumulative gains."""
    labels = data.labels()
    stamp = bundle.run_id(data.path)
    curves = {k: cache.model_curves(data.path, stamp, k) for k in data.models}
    order = [model] + [k for k in data.models if k != model]  # the model in focus first
    named = lambda part: {labels.get(k, k): curves[k][part] for k in order}  # noqa: E731
    b = data.leaderboard.set_index("model")
    aucs = {labels.get(k, k): float(b.loc[k, "roc_auc"]) for k in order if k in b.index and "roc_auc" in b}
    aps = {labels.get(k, k): float(b.loc[k, "pr_auc"]) for k in order if k in b.index and "pr_auc" in b}
    focus = labels.get(model, model)
    st.subheader("Curves", anchor=False)
    st.caption("All models of the run, the one chosen above in bold. ROC and precision-recall do not depend on the "
               "threshold.")
    k = lambda name: widget_key(Key.W_EVAL, data.name, name)  # noqa: E731
    c = st.columns(2)
    c[0].plotly_chart(plots.roc_curves(named("roc"), aucs=aucs, highlight=focus), width="stretch", key=k("roc"))
    base = float(data.validation["churned"].mean())
    c[1].plotly_chart(plots.pr_curves(named("pr"), base_rate=base, aps=aps, highlight=focus), width="stretch",
                      key=k("pr"))
    c = st.columns(3)
    c[0].plotly_chart(plots.calibration_plot({focus: curves[model]["calibration"]}), width="stretch",
                      key=k("calibration"))
    c[1].plotly_chart(plots.lift_chart(curves[model]["lift"], title=f"Lift per risk decile ({focus})"),
                      width="stretch", key=k("lift"))
    c[2].plotly_chart(plots.cumulative_gains(named("lift")), width="stretch", key=k("gains"))


def segment_panel(data: cache.RunData, model: str) -> None:
    """Model quality per segment of a chosen attribute; segments too small to judge are marked, never hidden."""
    from retention_core import evaluation as ev

    st.subheader("Quality per segment", anchor=False)
    attrs = data.attributes
    if not attrs:
        st.caption("The validation users have no attributes (country, channel, ...) to split by.")
        return
    akey = widget_key(Key.W_EVAL, data.name, "segment")
    if state.widget_value(akey) not in attrs:
        state.set_widget(akey, attrs[0])
    attr = st.selectbox("Split by", attrs, key=akey, format_func=feature_label)
    y, p = _y_p(data, model)
    with guard("computing the metrics per segment") as g:
        labels = segments.group_small(data.validation[attr].reset_index(drop=True), y)  # the small ones: "Other"
        seg = ev.segment_metrics(y, p, labels)
        seg = pd.concat([seg[seg["segment"] != segments.SMALL_GROUP], seg[seg["segment"] == segments.SMALL_GROUP]])
    if g.failed:
        return
    grouped = labels.attrs.get("grouped", [])
    if grouped:
        st.caption(f":material/info: {len(grouped)} segments too small to judge (fewer than 30 users or 5 churners or "
                   f"retained users) are grouped as **{segments.SMALL_GROUP}**.")
    small = int((~seg["reliable"]).sum())
    if small:
        st.caption(f":material/info: {small} segment(s) are too small to judge: shown in grey, read them with care.")
    c = st.columns([2, 3])
    show = seg.assign(reliable=seg["reliable"].map({True: "yes", False: "too small"}))
    c[0].dataframe(show, hide_index=True, width="stretch", column_config={
        "users": st.column_config.NumberColumn("users", format="localized"),
        "churn_rate": st.column_config.NumberColumn("churn rate", format="percent"),
        "mean_predicted": st.column_config.NumberColumn("mean predicted", format="percent"),
        "roc_auc": st.column_config.NumberColumn("ROC-AUC", format="%.3f"),
        "recall_top10": st.column_config.NumberColumn("recall @10%", format="%.3f"),
        "reliable": st.column_config.TextColumn("reliable")})
    c[1].plotly_chart(plots.segment_bars(seg, "roc_auc", metric_label="ROC-AUC", title=f"ROC-AUC by {feature_label(attr)}"),
                      width="stretch", key=widget_key(Key.W_EVAL, data.name, "segment_chart"))


def backtest_panel(data: cache.RunData) -> None:
    """The metric per validation cutoff, when the run was trained with a backtest."""
    from retention_core.evaluation import METRIC_LABELS

    bt = data.backtest
    if bt is None or not len(bt):
        return
    st.subheader("Quality over time", anchor=False)
    st.caption("Each earlier snapshot validated in turn, with the models trained only on snapshots a full horizon "
               "before it: a stable line means the model keeps working as customers change.")
    options = [m for m in ["roc_auc", "pr_auc", "f1", "recall_top10", "lift_top10", "brier"] if m in bt]
    mkey = widget_key(Key.W_EVAL, data.name, "backtest_metric")
    metric = st.selectbox("Metric", options, format_func=METRIC_LABELS.get, key=mkey) or options[0]
    st.plotly_chart(plots.backtest_lines(bt, metric, labels=data.labels(), metric_label=METRIC_LABELS.get(metric)),
                    width="stretch", key=widget_key(Key.W_EVAL, data.name, "backtest_chart"))
