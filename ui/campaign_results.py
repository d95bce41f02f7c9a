"""Campaign results on the Monitor page: for every recorded scoring with a control group whose horizon has passed,
the retention of the contacted against the control group, the uplift with its 95% interval, the incremental customers
and revenue, and the return on the cost per contact the analyst enters; the same per lifecycle stage, segment and
risk decile. Every figure comes from :mod:`retention_core.monitor.campaigns`; this module only lays it out."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from retention_core import campaign, monitor
from retention_core.monitor import plots
from retention_core.monitor.campaigns import MIN_GROUP, summary

from .state import Key, widget_key

HOW = ("**How to read it.** Retention is the share of customers who bought again within the campaign's window after "
       "the scoring date (chosen with the control group; 90 days unless another was set). The uplift is the "
       "retention of the contacted minus that of the control group, in percentage points, with its 95% confidence "
       "interval (Newcombe's method, from each group's Wilson interval): when the interval leaves out 0, the "
       "difference is unlikely to be chance. Incremental customers = uplift x customers contacted. Revenue counts "
       "the product purchases in the window; incremental revenue = (revenue per contacted customer - revenue per "
       "control customer) x customers contacted. Return on cost = (incremental revenue - cost of the contacts) / "
       "cost of the contacts, on revenue, not margin.")


def _k(*parts) -> str:
    return widget_key(Key.W_MONITOR, "campaigns", *parts)


def has_campaigns(report: monitor.MonitorReport) -> bool:
    s = report.scorings
    return len(report.campaigns) > 0 or ("control_share" in s and s["control_share"].notna().any())


def _waiting(report: monitor.MonitorReport) -> None:
    for _, r in monitor.report.waiting_campaigns(report.scorings).iterrows():
        st.caption(f":material/hourglass_top: The campaign as of {r['as_of']} ({r['control_share']:.0%} held out) "
                   f"can be compared from {r['campaign_from']}, once its {int(r['campaign_days'])}-day window has "
                   "passed.")


def _pick(campaigns: pd.DataFrame, key: str) -> pd.Series:
    rows = campaigns.sort_values("as_of").reset_index(drop=True)
    if len(rows) == 1:
        return rows.iloc[0]
    i = st.selectbox("Campaign", list(range(len(rows))), index=len(rows) - 1, key=_k(key, "pick"),
                     format_func=lambda j: f"as of {rows.loc[j, 'as_of']} · {int(rows.loc[j, 'contact_users']):,} "
                                           f"contacted, {int(rows.loc[j, 'control_users']):,} held out")
    return rows.iloc[i]


def _cards(r: pd.Series) -> None:
    c = st.columns(5)
    c[0].metric("Retention, contacted", f"{r['contact_retention']:.1%}",
                help=f"{int(r['contact_retained']):,} of {int(r['contact_users']):,} contacted came back.")
    c[1].metric("Retention, control group", f"{r['control_retention']:.1%}",
                help=f"{int(r['control_retained']):,} of {int(r['control_users']):,} held out came back.")
    c[2].metric("Uplift", f"{r['uplift'] * 100:+.1f} pts",
                help=f"95% interval {r['ci_low'] * 100:+.1f} to {r['ci_high'] * 100:+.1f} points.")
    c[3].metric("Incremental customers", f"{r['incremental_customers']:,.0f}",
                help="Contacted customers kept who would have left without the contact (uplift x contacted).")
    inc = r.get("incremental_revenue")
    roi = r.get("roi")
    c[4].metric("Incremental revenue", "-" if pd.isna(inc) else f"{inc:,.2f}",
                delta=None if pd.isna(roi) else f"{roi:+.0%} return on cost", delta_color="normal",
                help=None if pd.isna(inc) else f"95% interval {r['incremental_revenue_ci_low']:,.2f} to "
                f"{r['incremental_revenue_ci_high']:,.2f}; the contacts cost {r['cost']:,.2f}.")


def _split_columns(segments: pd.DataFrame, sid: str) -> list[str]:
    cols = list(dict.fromkeys(segments.loc[segments["scoring_id"] == sid, "column"])) if len(segments) else []
    first = [c for c in ("stage",) if c in cols]
    return first + [c for c in cols if c not in first]


def _segment_table(part: pd.DataFrame, column: str, key: str) -> None:
    show = part[["segment", "contact_users", "contact_retention", "control_users", "control_retention", "uplift",
                 "incremental_customers", "incremental_revenue", "reliable"]].copy()
    for c in ("contact_retention", "control_retention", "uplift"):
        show[c] = show[c] * 100
    show.insert(6, "ci", [f"{lo * 100:+.1f} to {hi * 100:+.1f}" for lo, hi in zip(part["ci_low"], part["ci_high"])])
    pct = lambda name: st.column_config.NumberColumn(name, format="%.1f%%")  # noqa: E731
    st.dataframe(show, hide_index=True, width="stretch", key=_k(key, "table"), column_config={
        "segment": st.column_config.TextColumn(plots.segment_name(column)),
        "contact_users": st.column_config.NumberColumn("contacted", format="localized"),
        "contact_retention": pct("retention, contacted"),
        "control_users": st.column_config.NumberColumn("control group", format="localized"),
        "control_retention": pct("retention, control"),
        "uplift": st.column_config.NumberColumn("uplift (pts)", format="%+.1f"),
        "ci": st.column_config.TextColumn("95% interval (pts)"),
        "incremental_customers": st.column_config.NumberColumn("incremental customers", format="%.0f"),
        "incremental_revenue": st.column_config.NumberColumn("incremental revenue", format="%.2f"),
        "reliable": st.column_config.CheckboxColumn("enough customers", help=f"At least {MIN_GROUP} customers in "
                                                    "each group; fewer: the interval says how little it shows.")})


def campaigns_panel(report: monitor.MonitorReport, key: str) -> None:
    """The campaign results of the report, or what to do to get some."""
    if not len(report.campaigns):
        st.info("No campaign with a control group can be compared yet. On the At-risk page, hold out a control "
                "group when you download the list (or score with `--control-share`); once its window has passed, "
                "this tab shows what the campaign changed.", icon=":material/group_off:")
        _waiting(report)
        return
    c = st.columns([1, 3], vertical_alignment="bottom")
    cost = c[0].number_input("Cost per contact", 0.0, 1e6, campaign.DEFAULT_COST, 0.1, format="%.2f",
                             key=_k(key, "cost"), help="What one contact cost (voucher, e-mail, call), in the unit "
                                                       "of the log's amounts: gives the return on the campaign.")
    campaigns, segments = report.campaign_table(float(cost))
    with c[1]:
        r = _pick(campaigns, key)
    box = st.success if r["significant"] and r["uplift"] > 0 else st.warning if r["significant"] else st.info
    box(summary(r), icon=":material/campaign:")
    _cards(r)
    left, right = st.columns(2)
    left.plotly_chart(plots.campaign_retention(campaigns), width="stretch", key=_k(key, "retention"))
    with right:
        cols = _split_columns(segments, r["scoring_id"])
        column = st.selectbox("Split the uplift by", cols, key=_k(key, "split"),
                              format_func=plots.segment_name) if cols else None
        part = segments[(segments["scoring_id"] == r["scoring_id"]) & (segments["column"] == column)] \
            if column else segments.iloc[:0]
        st.plotly_chart(plots.campaign_uplift(r, part, column), width="stretch", key=_k(key, "uplift"))
        st.caption(f"Grey: fewer than {MIN_GROUP} customers in a group, too few to judge. The dashed line is no "
                   "effect: an interval that crosses it may be chance.")
    if column:
        _segment_table(part, column, key)
    with st.expander("How these figures are worked out", icon=":material/calculate:"):
        st.markdown(HOW)
    _waiting(report)
