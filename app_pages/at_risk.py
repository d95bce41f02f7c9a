"""At-risk: the users most likely to churn, ready to export for a retention campaign."""
from __future__ import annotations

import streamlit as st

from ui import run_picker, scoring_panels
from ui.widgets import nothing_to_show, page_header


def main() -> None:
    page_header("At-risk", ":material/person_alert:",
                "List the users most likely to churn, with the reasons, and download them for a campaign.")
    names, _ = run_picker.run_names()
    if not names:
        nothing_to_show([
            "score the latest data (or the run's validation users) with a trained model",
            "keep everyone above the threshold, the top K users, what a campaign budget pays for, or the most value "
            "at risk, within the segments you choose",
            "download the list as CSV with the top reasons for each user, optionally with pseudonymised ids",
        ])
        return
    picked = run_picker.run_and_model_picker()
    if picked is None:
        return
    data, model = picked
    threshold = scoring_panels.scoring_note(data, model)
    st.divider()
    scored = scoring_panels.score_panel(data, model)
    if scored is None:
        return
    list_df = scoring_panels.who_to_contact(data, model, scored, threshold)
    if list_df is None:
        return
    st.divider()
    scoring_panels.list_panel(data, scored, list_df)


main()
