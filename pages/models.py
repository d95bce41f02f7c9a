"""Models: the runs trained in this session, saved and reloaded."""
from __future__ import annotations

import streamlit as st

from ui import components

components.page_header("Models", ":material/inventory_2:",
                       "Keep, compare and download the models you trained; load a saved one to score new data.")
runs = components.model_status()
if runs:
    st.markdown("Trained in this session: " + ", ".join(sorted(runs)))
components.coming_next([
    "see every run with its settings, metrics and the data it was trained on",
    "download a run as a bundle, or upload a saved bundle to score new data",
])
