"""The pre-trained sequence encoder on the At-risk page: which of a listed customer's recent events moved the
encoder's part of their churn risk (each event left out in turn; summed per week)."""
from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from retention_core.models import REGISTRY

from . import cache, run_picker
from .widgets import guard

MAX_CUSTOMERS = 200


def recent_events(data: cache.RunData, scored: Any, list_df: pd.DataFrame) -> None:
    """For a run scored with the encoder: pick a listed customer, see the weeks and the events that raised or lowered
    the risk through the encoder's embedding."""
    spec = REGISTRY.get(scored.model)
    tokens = getattr(scored.seq, "tokens", None)
    if spec is None or not spec.needs_events or tokens is None or list_df.empty:
        return
    from retention_core.models.encoder.attribution import event_effects, week_effects

    st.subheader("Which recent events moved the risk", anchor=False)
    st.caption("The encoder reads each customer's latest events. Each event is left out in turn and the customer is "
               "scored again with the same aggregate features: the change is what that event added to the churn "
               "risk (in log-odds; above 0 raises it).")
    ids = list_df["user_id"].astype(str).head(MAX_CUSTOMERS).tolist()
    pick = st.selectbox("Customer from the list", ids, key=f"encoder_events:{data.name}:{scored.model}")
    where = (scored.frame["user_id"].astype(str) == pick).to_numpy().nonzero()[0]
    if not len(where):
        return
    pos = int(where[0])
    with guard("reading this customer's events") as g:
        run = run_picker.open_run(data.name)
        cols = list(run.info["numeric"]) + list(run.info["categorical"])
        events = event_effects(run.model(scored.model), scored.frame[cols].iloc[[pos]], tokens[[pos]])
    if g.failed:
        return
    if events.empty:
        st.info("No event of this customer before the scoring date.", icon=":material/event_busy:")
        return
    weeks = week_effects(events).rename(columns={"week": "weeks before the scoring date"})
    c = st.columns([3, 2])
    c[0].bar_chart(weeks.set_index("weeks before the scoring date")["effect"], height=260)
    top = events.reindex(events["effect"].abs().sort_values(ascending=False).index).head(10)
    c[1].dataframe(top.rename(columns={"item": "product", "days_before": "days before"})
                   [["product", "kind", "days before", "effect"]], hide_index=True, width="stretch",
                   column_config={"days before": st.column_config.NumberColumn("days before", format="%.0f"),
                                  "effect": st.column_config.NumberColumn(
                                      "effect", format="%+.3f", help="What the event added to the churn risk, in "
                                      "log-odds: above 0 it raised the risk, below 0 it lowered it.")})
