"""The expected-value campaign on the At-risk page: the analyst's assumptions (save rate, cost per contact, the
user's value), how many to contact, and the curve of expected net value against the number contacted with its best
point. Every number comes from :mod:`retention_core.campaign`; this module only lays it out."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import streamlit as st

from retention_core import campaign, scoring

from .widgets import guard

AUTOMATIC = "(automatic)"
HOW_MANY = {"best": "Everyone worth contacting", "top_k": "Top K users", "budget": "What a budget pays for"}
CHART_POINTS = 2_000  # points of the curve drawn (the best point always among them); the list is not thinned


def campaign_inputs(frame: pd.DataFrame, n: int, k: Callable[[str], str]) -> dict:
    """The assumptions and how many users to contact; returns the keyword arguments of ``at_risk_list``."""
    c = st.columns(3)
    save = c[0].number_input("Save rate (%)", 0.1, 100.0, campaign.DEFAULT_SAVE_RATE * 100, 1.0, format="%.1f",
                             key=k("ev_save_rate"), help=campaign.EXPLANATION)
    cost = c[1].number_input("Cost per contact", 0.0, 1e9, campaign.DEFAULT_COST, 0.5, key=k("ev_cost"),
                             help="What one contact costs, in the unit of the value (a voucher, an email, a call).")
    col = c[2].selectbox("Value at stake", [AUTOMATIC] + campaign.value_columns(frame), key=k("ev_value_col"),
                         help="What a user takes away by leaving: past revenue by default (last 365 days, else in "
                              "total), else past orders.")
    kw: dict = {"method": "expected_value", "save_rate": float(save) / 100.0, "cost_per_contact": float(cost),
                "value_col": None if col == AUTOMATIC else col}
    with st.expander("How expected net value is worked out", icon=":material/calculate:"):
        st.markdown(campaign.EXPLANATION)
    c = st.columns([2, 1], vertical_alignment="bottom")
    how = c[0].radio("Contact", list(HOW_MANY), format_func=HOW_MANY.get, horizontal=True, key=k("ev_how")) or "best"
    if how == "top_k":
        kw["k"] = int(c[1].number_input("Users to contact (K)", 1, max(n, 1), max(1, min(n, 100)), key=k("ev_k")))
    elif how == "budget":
        kw["budget"] = float(c[1].number_input("Campaign budget", 0.0, 1e12, 1000.0, 100.0, key=k("ev_budget")))
    return kw


def _eligible(scores: pd.DataFrame, frame: pd.DataFrame, segment_filter: dict,
              audience: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The scored users within the audience and the chosen segments (everyone when neither narrows them)."""
    if not segment_filter and audience in (None, "all"):
        return scores, frame
    pos = scoring.select(scores, frame, method="everyone", audience=audience, segment_filter=segment_filter).positions
    return scores.iloc[pos], frame.iloc[pos]


def _thin(curve: pd.DataFrame) -> pd.DataFrame:
    """At most ``CHART_POINTS`` evenly spread points of the curve, its ends and its highest point kept."""
    if len(curve) <= CHART_POINTS:
        return curve
    best = int(np.argmax(curve["expected_net_value"].to_numpy()))
    idx = np.unique(np.concatenate([np.linspace(0, len(curve) - 1, CHART_POINTS).astype(int), [best]]))
    return curve.iloc[idx]


def campaign_panel(scores: pd.DataFrame, frame: pd.DataFrame, list_df: pd.DataFrame, kw: dict,
                   segment_filter: dict, key: str) -> None:
    """Expected net value against the number contacted (best point marked) and what the best point and the list
    are worth, under the analyst's assumptions."""
    with guard("drawing the campaign curve") as g:
        sc, fr = _eligible(scores, frame, segment_filter, kw.get("audience"))
        curve, s = campaign.campaign_plan(sc, fr, save_rate=kw["save_rate"], cost_per_contact=kw["cost_per_contact"],
                                          value_col=kw["value_col"])
        fig = campaign.campaign_figure(_thin(curve))
        if s["contacted"] > 0.6 * max(s["users"], 1):  # the best point's label reads leftwards near the right edge
            fig.update_traces(textposition="top left", selector={"name": "best"})
    if g.failed:
        return
    st.plotly_chart(fig, width="stretch", key=key)
    listed = float(list_df["expected_net_value"].sum()) if "expected_net_value" in list_df else float("nan")
    st.markdown(f":material/flag: **Best point: contact {s['contacted']:,} of {s['users']:,} users** for an expected "
                f"net value of **{s['expected_net_value']:,.2f}** (contacting everyone: {s['everyone']:,.2f}); the "
                f"list's {len(list_df):,} users: {listed:,.2f}. Save rate {s['save_rate']:.1%}, "
                f"{s['cost_per_contact']:,.2f} per contact, value at stake: {s['value_basis'] or 'one per user'}.")
