"""The Segments page's panels: the segmentation (an attribute, RFM groups, risk tiers or deciles, buyer type or a
custom filter read by the library's condition parser), the segments side by side and one segment in detail."""
from __future__ import annotations

import json
from typing import Any

import pandas as pd
import streamlit as st

from retention_core import bundle, plots
from retention_core.explain import feature_label
from retention_core import segments as seg
from retention_core.segments import OPS, Condition

from . import cache, stage_panels, state
from .state import Key, widget_key
from .widgets import NONE, guard

FILTER_ROWS = 3


def _k(data: cache.RunData):
    return lambda n: widget_key(Key.W_SEGMENTS, data.name, n)


def _value_text(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return ", ".join(map(str, v))
    return "" if v is None else str(v)


def _conditions_form(data: cache.RunData) -> list:
    """A small form to build a custom segment: up to three conditions, all of which must hold. The typed values are
    read by the library's parser (``in``: a comma-separated list, ``between``: two bounds), so the segment's
    conditions are ``(column, op, value)`` with a list for those two operators."""
    name = data.name
    saved = state.get_segment_filter(name)
    columns = [c for c in data.validation.columns if not str(c).startswith("p:") and c != "snapshot_date"]
    k = lambda n: widget_key(Key.W_SEGMENTS, name, "filter", n)  # noqa: E731
    with st.form(k("form"), border=True):
        st.markdown("**Users who meet all of these conditions**")
        rows = []
        for i in range(FILTER_ROWS):
            col, op, val = saved[i] if i < len(saved) else (NONE, "==", "")
            c = st.columns([3, 1, 3])
            opts = [NONE] + columns
            shown = "visible" if i == 0 else "collapsed"
            rows.append((c[0].selectbox("Column", opts, index=opts.index(col) if col in opts else 0, key=k(f"col{i}"),
                                        label_visibility=shown, format_func=lambda c: c if c == NONE
                                        else feature_label(c)),
                         c[1].selectbox("Operator", OPS, index=OPS.index(op) if op in OPS else 0, key=k(f"op{i}"),
                                        label_visibility=shown),
                         c[2].text_input("Value", value=_value_text(val), key=k(f"val{i}"),
                                         placeholder="30 · DE, FR (in) · 10, 50 (between)", label_visibility=shown)))
        if st.form_submit_button("Apply filter", icon=":material/filter_alt:", type="primary"):
            parsed = [Condition.from_text(c, o, v) for c, o, v in rows if c != NONE]
            saved = [(x.column, x.op, x.value) for x in parsed]
            state.set_segment_filter(name, saved)
    return saved


def _explain_kind(kind: str) -> None:
    """How the built-in segmentations are made."""
    if kind == "rfm":
        with st.expander("RFM rules", icon=":material/rule:"):
            st.caption("Scores 1-5 by quintile: R from days since the last purchase (5 = most recent), F from orders "
                       "and M from spend in the last 365 days (totals when missing); FM is the rounded mean of F and "
                       "M. The first rule that matches wins.")
            st.dataframe(seg.rfm_rules(), hide_index=True, width="stretch")
    elif kind == "risk_tier":
        st.caption("Tiers by the chosen model's churn probability: **high** = the 20% most at risk (deciles 1-2), "
                   "**medium** = the next 30% (deciles 3-5), **low** = the rest.")
    elif kind == "risk_decile":
        st.caption("Deciles by the chosen model's churn probability: decile 1 holds the 10% most at risk.")
    elif kind == "buyer":
        st.caption("One-time buyers have no repeat purchase day yet (repeat purchases = 0).")


def _rules_json(data: cache.RunData, kind: str) -> str:
    """The stage rules in force, as the caches key them (lifecycle stages only)."""
    return json.dumps(stage_panels.rules_for(data).as_dict(), sort_keys=True) if kind == "stage" else "{}"


def segment_choice(data: cache.RunData) -> tuple[str, str | None, str] | None:
    """Choose the segmentation: an attribute, RFM groups, risk tiers or deciles, one-time vs repeat buyers or a
    custom filter; returns (kind, column, conditions as JSON)."""
    k = _k(data)
    first = "rfm" if seg.has_rfm(data.validation) else "attribute"  # RFM groups whenever the run can make them
    kind = st.segmented_control("Split users by", list(seg.SEGMENTATIONS), format_func=seg.SEGMENTATIONS.get,
                                default=first, key=k("kind")) or first
    column, conditions = None, "[]"
    if kind == "attribute":
        attrs = cache.segment_attributes(data)
        if not attrs:
            st.info("The validation users have no attributes to split by.", icon=":material/info:")
            return None
        column = st.selectbox("Attribute", attrs, key=k("attribute"), format_func=feature_label,
                              help="Mapped attributes first; numeric features are cut into five bands.")
    elif kind == "stage":
        stage_panels.rules_panel(data, k("stage_rules"))
    elif kind == "custom":
        conds = _conditions_form(data)
        if not conds:
            st.info("Add a condition and apply the filter to build your segment.", icon=":material/filter_alt:")
            return None
        conditions = json.dumps([list(c) for c in conds], default=str)
    else:
        _explain_kind(kind)
    return kind, column, conditions


def _segment_heatmap(heat, e: cache.Explanation, key: str) -> None:
    st.plotly_chart(plots.segment_heatmap(heat.matrix, flags=heat.flags, labels=heat.labels, users=heat.users,
                                          how=heat.how), width="stretch", key=key)
    st.caption(f"Mean effect of each feature in the segment minus over everyone explained (pts); ★ marks each "
               f"segment's biggest departures. {e.note}")


def segment_comparison_panel(data: cache.RunData, model: str, kind: str, column: str | None, conditions: str,
                             e: cache.Explanation | None, sample: int) -> pd.DataFrame | None:
    """The comparison table (size, churn, predicted risk, ROC-AUC, recall @10%, reliable, drivers), a chart and the
    segment x feature heatmap."""
    digest = bundle.run_id(data.path) if e is not None else None
    with guard("comparing the segments") as g:
        table, heat = cache.segment_comparison(data.path, bundle.run_id(data.path), model, kind, column, conditions,
                                               digest, sample if e is not None else None, _rules_json(data, kind))
    if g.failed:
        return None
    k = _k(data)
    st.subheader("Segments side by side", anchor=False)
    grouped = list(cache.segment_labels(data.path, bundle.run_id(data.path), model, kind, column, conditions,
                                        _rules_json(data, kind)).attrs.get("grouped", []))
    if grouped:
        st.caption(f":material/info: {len(grouped)} segments too small to judge (fewer than 30 users or 5 churners or "
                   f"retained users) are grouped as **{seg.SMALL_GROUP}**: {', '.join(grouped[:12])}"
                   f"{' ...' if len(grouped) > 12 else ''}.")
    small = int((~table["reliable"]).sum())
    if small:
        st.caption(f":material/info: {small} segment(s) are too small to judge: marked, read them with care.")
    show = table.assign(reliable=table["reliable"].map({True: "yes", False: "too small"}))
    st.dataframe(show, hide_index=True, width="stretch", key=k("table"), column_config={
        "segment": st.column_config.TextColumn("segment"),
        "users": st.column_config.NumberColumn("users", format="localized"),
        "share": st.column_config.NumberColumn("share", format="percent"),
        "churn_rate": st.column_config.NumberColumn("churn rate", format="percent"),
        "mean_predicted": st.column_config.NumberColumn("predicted risk", format="percent"),
        "roc_auc": st.column_config.NumberColumn("ROC-AUC", format="%.3f"),
        "recall_top10": st.column_config.NumberColumn("recall @10%", format="%.3f"),
        "reliable": st.column_config.TextColumn("reliable"),
        "explained_users": st.column_config.NumberColumn("users explained", format="localized"),
        "top_drivers": st.column_config.TextColumn("drivers above everyone")})
    if kind == "stage":
        labels = cache.segment_labels(data.path, bundle.run_id(data.path), model, kind, column, conditions,
                                      _rules_json(data, kind))
        stage_panels.stage_chart(pd.DataFrame({"stage": labels.to_numpy(), "churn_probability":
                                               data.validation[f"p:{model}"].to_numpy(float)}), k("stage_chart"))
    c = st.columns(2)
    c[0].plotly_chart(plots.segment_bars(table, "churn_rate", metric_label="Churn rate", title="Churn rate"),
                      width="stretch", key=k("churn_chart"))
    c[1].plotly_chart(plots.segment_bars(table, "roc_auc", metric_label="ROC-AUC", title="ROC-AUC"),
                      width="stretch", key=k("auc_chart"))
    if heat is not None:
        _segment_heatmap(heat, e, k("heatmap"))
    return table


def _segment_cards(row: pd.Series) -> None:
    pct = lambda v: f"{v:.1%}" if pd.notna(v) else "-"  # noqa: E731
    dec = lambda v: f"{v:.3f}" if pd.notna(v) else "-"  # noqa: E731
    cards = st.columns(5)
    cards[0].metric("Users", f"{int(row['users']):,}", help=f"{row['share']:.1%} of the validation users")
    cards[1].metric("Churn rate", pct(row["churn_rate"]))
    cards[2].metric("Predicted risk", pct(row["mean_predicted"]))
    cards[3].metric("ROC-AUC", dec(row["roc_auc"]))
    cards[4].metric("Recall @10%", dec(row["recall_top10"]))
    if not bool(row["reliable"]):
        st.caption(":material/info: Too small to judge the model here; read these numbers with care.")


def segment_drilldown(data: cache.RunData, model: str, kind: str, column: str | None, conditions: str,
                      table: pd.DataFrame, e: cache.Explanation | None) -> None:
    """One segment: its metrics, its drivers against the population and its users, most at risk first."""
    st.subheader("One segment in detail", anchor=False)
    k = _k(data)
    name = st.selectbox("Segment", table["segment"].tolist(), key=k(f"drill:{kind}:{column}"))
    _segment_cards(table.set_index("segment").loc[name])
    labels_all = cache.segment_labels(data.path, bundle.run_id(data.path), model, kind, column, conditions,
                                      _rules_json(data, kind))
    in_seg = (labels_all.astype("string").fillna(seg.MISSING) == name).to_numpy()
    if e is not None:
        explained = e.points.loc[in_seg[e.points.index.to_numpy()]]
        if len(explained):
            labels = dict(zip(e.importance["feature"], e.importance["label"]))
            st.plotly_chart(plots.segment_drivers(explained.abs().mean(), e.points.abs().mean(), labels=labels,
                                                  segment=str(name)), width="stretch", key=k("drivers"))
            st.caption(f"Drivers from the {len(explained):,} users of this segment among those explained.")
    v = data.validation.reset_index(drop=True)
    attrs = [c for c in cache.segment_attributes(data)[:6] if c in v.columns]
    cols = ["user_id", f"p:{model}", "churned"] + [c for c in attrs if c not in ("user_id", "churned")]
    users = v.loc[in_seg, cols].sort_values(f"p:{model}", ascending=False, kind="stable")
    users = users.rename(columns={f"p:{model}": "churn_probability"})
    users = users.rename(columns={c: feature_label(c) for c in users.columns if c not in ("user_id",
                                                                                        "churn_probability")})
    st.markdown(f"**Users in {name}** ({len(users):,}, most at risk first)")
    st.dataframe(users.head(1000), hide_index=True, width="stretch", key=k("users"), column_config={
        "churn_probability": st.column_config.ProgressColumn("churn probability", min_value=0.0, max_value=1.0,
                                                            format="percent")})
