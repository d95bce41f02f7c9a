"""Explain: why users churn, overall, per segment and for each user."""
from __future__ import annotations

import streamlit as st

from ui import explain_panels, run_picker
from ui.state import Key
from ui.widgets import nothing_to_show, page_header


def main() -> None:
    page_header("Explain", ":material/psychology:",
                "See which behaviours drive churn, overall, per segment and for each user.")
    names, _ = run_picker.run_names()
    if not names:
        nothing_to_show([
            "rank the features that push churn up or down (SHAP values on a bounded sample)",
            "see how churn risk changes with one feature (dependence plots)",
            "read the reasons behind one user's risk in plain words",
        ])
        return
    picked = run_picker.insight_picker(Key.W_EXPLAIN)
    if picked is None:
        return
    data, model, sample = picked
    explanation = explain_panels.explanation_status(data, model, sample)
    if explanation is None:
        return
    st.divider()
    explain_panels.explain_overall(data, explanation)
    st.divider()
    explain_panels.explain_dependence(data, explanation)
    st.divider()
    explain_panels.explain_segments(data, explanation, sample)
    st.divider()
    explain_panels.explain_user(data, explanation)


main()
