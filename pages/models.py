"""Models: the runs saved in the workspace: open one, compare them, score a new file with one, serve one over HTTP,
delete one."""
from __future__ import annotations

import streamlit as st

from ui import cache, run_picker, scoring_panels
from ui.widgets import nothing_to_show, page_header


def main() -> None:
    page_header("Models", ":material/inventory_2:",
                "Open, compare and delete the runs saved in the workspace; score a new file with one.")
    listing = st.container()
    names = run_picker.saved_names()
    if not names:
        with listing:
            nothing_to_show([
                "see every run saved in the workspace and open one for the analysis pages",
                "compare the runs' leaderboards side by side, and delete the ones you no longer need",
                "score a newly uploaded file with a saved run and download the scores",
            ])
        return
    tabs = st.tabs(["Open", "Compare", "Score a file", "Serve", "Delete"])
    with tabs[0]:
        scoring_panels.open_panel(names)
    with tabs[1]:
        scoring_panels.compare_panel(names)
    with tabs[2]:
        scoring_panels.score_file_panel(names)
    with tabs[3]:
        scoring_panels.serve_panel(names)
    with tabs[4]:
        scoring_panels.delete_panel(names)
    with listing:  # drawn last, so a deletion just made is reflected
        scoring_panels.runs_table(cache.workspace_runs())


main()
