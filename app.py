"""Retention studio: the router. Page config, navigation, the shared sidebar; every page lives in app_pages/.

The folder is not called ``pages/`` on purpose: Streamlit takes a ``pages/`` folder next to the main script for an
old-style multipage app and, on the first run after the server starts, lists its files by name in the sidebar
(``app``, ``at risk``, ``data``, ...) before ``st.navigation`` below replaces them; a first visit straight to a page's
address would even run that page alone, without this router.
"""
from __future__ import annotations

import streamlit as st

from ui import widgets

st.set_page_config(page_title="Retention studio", page_icon=":material/monitoring:", layout="wide")

PAGES = {
    "Data": [st.Page("app_pages/data.py", title="Data", icon=":material/database:", default=True)],
    "Models": [
        st.Page("app_pages/train.py", title="Train", icon=":material/model_training:"),
        st.Page("app_pages/evaluate.py", title="Evaluate", icon=":material/query_stats:"),
        st.Page("app_pages/models.py", title="Models", icon=":material/inventory_2:"),
    ],
    "Insight": [
        st.Page("app_pages/explain.py", title="Explain", icon=":material/psychology:"),
        st.Page("app_pages/segments.py", title="Segments", icon=":material/donut_small:"),
    ],
    "Action": [
        st.Page("app_pages/at_risk.py", title="At-risk", icon=":material/person_alert:"),
        st.Page("app_pages/monitor.py", title="Monitor", icon=":material/monitor_heart:"),
    ],
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
        widgets.sidebar_summary()
