"""Explain: why users churn, overall and for each user."""
from __future__ import annotations

from ui import components

components.page_header("Explain", ":material/psychology:",
                       "See which behaviours drive churn, overall, per segment and for each user.")
components.model_status()
components.coming_next([
    "rank the features that push churn up or down (SHAP values on a bounded sample)",
    "see how churn risk changes with one feature (dependence plots)",
    "read the reasons behind one user's risk in plain words",
])
