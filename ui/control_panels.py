"""The control group on the At-risk page's export: hold out a random, stratified share of the list (customers who are
not contacted), so that once the horizon has passed the Monitor page can tell what the campaign changed; and download
the list for a campaign tool without the control rows. The draw is :func:`retention_core.control.assign_control`, the
same call the ``score --control-share`` command makes; this module only lays it out."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from retention_core import control

from .widgets import guard

SENDS = {"all": "The whole list, with a group column (contact or control)",
         "contact": "For a campaign tool: the contacted only (control rows left out)"}
WHY = ("Customers of the control group are not contacted. Once the campaign's window has passed, the Monitor page "
       "compares how many of them came back with the contacted: the difference is what the campaign changed. The "
       "draw is random within each risk decile (and lifecycle stage), so both groups have the same mix of risk.")


def export_choice(list_df: pd.DataFrame, file_name: str, key: str, as_of: str) -> tuple[pd.DataFrame, pd.DataFrame,
                                                                                         str]:
    """Offer to hold out a control group before the download: (the list, with its ``group`` column when one is held
    out; the rows to download; the file's name)."""
    hold = st.toggle("Hold out a control group", key=f"{key}:on", help=WHY, disabled=len(list_df) < 2)
    if not hold:
        return list_df, list_df, file_name
    c = st.columns([1, 1, 1, 2], vertical_alignment="bottom")
    share = c[0].number_input("Control group (% of the list)", 1.0, 90.0, 10.0, 1.0, format="%.1f",
                              key=f"{key}:share", help="Retention teams usually hold out 5% to 20%: enough customers "
                              "to measure the difference, few enough to keep most of the campaign.")
    seed = c[1].number_input("Seed", 0, 2**31 - 1, control.default_seed(as_of), 1, key=f"{key}:seed:{as_of}",
                             help="The same list and seed always hold out the same customers. The default is the "
                                  "scoring date, so each campaign draws another group.")
    days = c[2].number_input("Campaign window (days)", 1, 730, control.DEFAULT_DAYS, 1, key=f"{key}:days",
                             help="The Monitor page judges the campaign on purchases in these days after the scoring "
                                  "date: a property of the campaign, whatever the model's horizon.")
    with guard("holding out the control group") as g:
        drawn = control.assign_control(list_df, float(share) / 100.0, int(seed), days=int(days))
    if g.failed:
        return list_df, list_df, file_name
    send = c[3].radio("Download", list(SENDS), format_func=SENDS.get, key=f"{key}:send") or "all"
    st.caption(f":material/group_off: {control.control_note(drawn)}. {WHY}")
    if send == "contact":
        stem = file_name[:-4] if file_name.endswith(".csv") else file_name
        return drawn, control.contact_rows(drawn), f"{stem}_contact_only.csv"
    return drawn, drawn, file_name


def download_label(sent: pd.DataFrame, drawn: pd.DataFrame) -> str:
    """The download button's label: the whole list, or the contacted only."""
    return "Download the contacted only (CSV)" if len(sent) < len(drawn) else "Download the list (CSV)"


def held_out(list_df: pd.DataFrame) -> pd.DataFrame | None:
    """The list when a control group was drawn from it (to keep with its scoring), else None."""
    return list_df if control.GROUP in list_df.columns and list_df.attrs.get("control") else None
