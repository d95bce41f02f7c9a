"""At-risk: the users most likely to churn, ready to export for a retention campaign."""
from __future__ import annotations

from ui import components

components.page_header("At-risk", ":material/person_alert:",
                       "List the users most likely to churn, with the reasons, and download them for a campaign.")
components.model_status()
components.coming_next([
    "score the latest data (or a new file) with a trained model",
    "keep the top users by churn probability or everyone above a threshold",
    "download the list as CSV with the top reasons for each user",
])
