"""Retention studio: the router. Page config, navigation, the shared sidebar; every page lives in pages/."""
from __future__ import annotations

import streamlit as st

from ui import components

st.set_page_config(page_title="Retention studio", page_icon=":material/monitoring:", layout="wide")

PAGES = {
    "Data": [st.Page("pages/data.py", title="Data", icon=":material/database:", default=True)],
    "Models": [
        st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
        st.Page("pages/evaluate.py", title="Evaluate", icon=":material/query_stats:"),
        st.Page("pages/models.py", title="Models", icon=":material/inventory_2:"),
    ],
    "Insight": [
        st.Page("pages/explain.py", title="Explain", icon=":material/psychology:"),
        st.Page("pages/segments.py", title="Segments", icon=":material/donut_small:"),
    ],
    "Action": [st.Page("pages/at_risk.py", title="At-risk", icon=":material/person_alert:")],
}

pg = st.navigation(PAGES)
with st.sidebar:
    st.markdown("### :material/monitoring: Retention studio")
    summary = st.container()
try:
    pg.run()
finally:
    # Filled after the page ran, so it shows the table the page just loaded.
    with summary:
        components.sidebar_summary()
