"""Retention studio: the router. Page config, the navigation with its sections, the shared sidebar; every page lives
in pages/.

Streamlit draws no list of pages itself (``client.showSidebarNavigation = false`` in ``.streamlit/config.toml``):
otherwise the first run after the server starts would list the files of ``pages/`` by name. The pages are declared
hidden and the sidebar draws its own links, section by section. A page that Streamlit starts without this router
runs it in its place (``ui.navigation.ensure_routed``); ``ui/navigation.py`` says why in full.
"""
from __future__ import annotations

import streamlit as st

from ui import navigation, widgets

st.set_page_config(page_title="Retention studio", page_icon=":material/monitoring:", layout="wide")

pg = navigation.declare()
with st.sidebar:
    st.markdown("### :material/monitoring: Retention studio")
    navigation.sidebar_links()
    st.divider()
    summary = st.container()
try:
    with navigation.routed():
        pg.run()
finally:
    # Filled after the page ran, so it shows the table the page just loaded.
    with summary:
        widgets.sidebar_summary()
