"""At-risk: the users most likely to churn (or most worth contacting), what to offer them, ready to export for a
retention campaign."""
from __future__ import annotations

import streamlit as st

from ui import encoder_panels, offers_panels, run_picker, scoring_panels, uplift_panels
from ui.widgets import nothing_to_show, page_header


def main() -> None:
    page_header("At-risk", ":material/person_alert:",
                "List the users most likely to churn (or most worth contacting), with the reasons and what to offer "
                "them, and download them for a campaign.")
    names, _ = run_picker.run_names()
    if not names:
        nothing_to_show([
            "score the latest data (or the run's validation users) with a trained model; each customer gets a "
            "lifecycle stage: new, active, slipping or lapsed",
            "contact the customers who can still be saved, or the lapsed with a win-back offer: by default the top "
            "10% most worth a contact, or everyone above the threshold, the top K, what a budget pays for, within "
            "the segments you choose",
            "offer each user the products they are most likely to buy, with the reason for each offer",
            "download the list as CSV with the top reasons and offers for each user, optionally with pseudonymised "
            "ids",
        ])
        return
    picked = run_picker.run_and_model_picker(uplift=True)
    if picked is None:
        return
    data, model = picked
    if data.task == "uplift":  # customers ranked by uplift, persuadables first
        uplift_panels.at_risk(data, model)
        return
    threshold = scoring_panels.scoring_note(data, model)
    st.divider()
    scored = scoring_panels.score_panel(data, model)
    if scored is None:
        return
    list_df = scoring_panels.who_to_contact(data, model, scored, threshold)
    if list_df is None:
        return
    list_df, offers = offers_panels.add_offers(data, scored, list_df)
    st.divider()
    scoring_panels.list_panel(data, scored, list_df)
    offers_panels.offer_details(data, scored, list_df, offers)
    encoder_panels.recent_events(data, scored, list_df)


main()
