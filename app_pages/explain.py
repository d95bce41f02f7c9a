"""Explain: why users churn, overall, per segment and for each user."""
from __future__ import annotations

import streamlit as st

from ui import components
from ui.state import Key


def main() -> None:
    components.page_header("Explain", ":material/psychology:",
                           "See which behaviours drive churn, overall, per segment and for each user.")
    names, _ = components.run_names()
    if not names:
        components.model_status()
        components.coming_next([
            "rank the features that push churn up or down (SHAP values on a bounded sample)",
            "see how churn risk changes with one feature (dependence plots)",
            "read the reasons behind one user's risk in plain words",
        ])
        return
    picked = components.insight_picker(Key.W_EXPLAIN)
    if picked is None:
        return
    data, model, sample = picked
    explanation = components.explanation_status(data, model, sample)
    if explanation is None:
        return
    st.divider()
    components.explain_overall(data, explanation)
    st.divider()
    components.explain_dependence(data, explanation)
    st.divider()
    components.explain_segments(data, explanation, sample)
    st.divider()
    components.explain_user(data, explanation)


main()
