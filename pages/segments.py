"""Segments: churn and model quality by RFM group (first), attribute, risk tier, buyer type or a custom filter."""
from __future__ import annotations

import streamlit as st

from ui import explain_panels, run_picker, segments_panels
from ui.state import Key
from ui.widgets import nothing_to_show, page_header


def main() -> None:
    page_header("Segments", ":material/donut_small:",
                "Compare churn across groups of users: RFM groups, attributes, lifecycle stages, risk tiers or your own rules.")
    names, _ = run_picker.run_names()
    if not names:
        nothing_to_show([
            "compare churn rates and model quality by country, channel, device or any attribute you mapped",
            "group users by recency, frequency and monetary value (RFM), or by lifecycle stage (new, active, "
            "slipping, lapsed) with rules you can change",
            "split users into risk tiers, or build your own segment from conditions",
        ], note="Cohort retention by month of first purchase is already on the Data page.")
        return
    picked = run_picker.insight_picker(Key.W_SEGMENTS)
    if picked is None:
        return
    data, model, sample = picked
    choice = segments_panels.segment_choice(data)
    if choice is None:
        return
    kind, column, conditions = choice
    explanation = explain_panels.explanation_status(data, model, sample)
    st.divider()
    table = segments_panels.segment_comparison_panel(data, model, kind, column, conditions, explanation, sample)
    if table is None or table.empty:
        return
    st.divider()
    segments_panels.segment_drilldown(data, model, kind, column, conditions, table, explanation)


main()
