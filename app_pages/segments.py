"""Segments: churn and model quality by attribute, RFM group, risk tier, buyer type or a custom filter."""
from __future__ import annotations

import streamlit as st

from ui import components
from ui.state import Key


def main() -> None:
    components.page_header("Segments", ":material/donut_small:",
                           "Compare churn across groups of users: attributes, RFM groups, risk tiers or your own "
                           "rules.")
    names, _ = components.run_names()
    if not names:
        components.model_status()
        st.caption("Cohort retention by month of first purchase is already on the Data page.")
        components.coming_next([
            "compare churn rates and model quality by country, channel, device or any attribute you mapped",
            "group users by recency, frequency and monetary value (RFM)",
            "split users into risk tiers, or build your own segment from conditions",
        ])
        return
    picked = components.insight_picker(Key.W_SEGMENTS)
    if picked is None:
        return
    data, model, sample = picked
    choice = components.segment_choice(data)
    if choice is None:
        return
    kind, column, conditions = choice
    explanation = components.explanation_status(data, model, sample)
    st.divider()
    table = components.segment_comparison_panel(data, model, kind, column, conditions, explanation, sample)
    if table is None or table.empty:
        return
    st.divider()
    components.segment_drilldown(data, model, kind, column, conditions, table, explanation)


main()
