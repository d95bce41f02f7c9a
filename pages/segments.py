"""Segments: churn and model quality by attribute, RFM group and risk tier."""
from __future__ import annotations

import streamlit as st

from ui import components

components.page_header("Segments", ":material/donut_small:",
                       "Compare churn across groups of users: attributes, RFM groups, risk tiers or your own rules.")
components.dataset_status()
st.caption("Cohort retention by month of first purchase is already on the Data page.")
components.coming_next([
    "compare churn rates by country, channel, device or any attribute you mapped",
    "group users by recency, frequency and monetary value (RFM)",
    "split users into risk tiers once a model is trained, and read how well it works in each segment",
])
