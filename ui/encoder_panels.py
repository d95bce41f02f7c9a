"""The pre-trained sequence encoder on the At-risk page: which of a listed customer's recent events moved the
encoder's part of their churn risk (each event left out in turn; summed per week)."""
from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from retention_core.models import REGISTRY

from . import cache, offers_cache, offers_panels, run_picker, state
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
    moved = events[events["effect"].abs() > 5e-4]
    if moved.empty:
        st.info("Leaving out any one of this customer's events does not change their risk: the encoder's part of "
                "their score rests on their history as a whole.", icon=":material/info:")
        return
    c = st.columns([1, 1])
    c[0].plotly_chart(_weeks_figure(week_effects(events)), width="stretch", key=f"encoder_weeks:{data.name}")
    top = moved.reindex(moved["effect"].abs().sort_values(ascending=False).index).head(10)
    top = top.assign(product=_named(top["item"], scored))
    c[1].dataframe(top.rename(columns={"days_before": "days before"})[["product", "kind", "days before", "effect"]],
                   hide_index=True, width="stretch",
                   column_config={"days before": st.column_config.NumberColumn("days before", format="%.0f"),
                                  "effect": st.column_config.NumberColumn(
                                      "effect", format="%+.3f", help="What the event added to the churn risk, in "
                                      "log-odds: above 0 it raised the risk, below 0 it lowered it.")})


def _named(items: pd.Series, scored: Any) -> pd.Series:
    """Products by their names where the scored table names them (the offers' names), else as they are."""
    source = offers_panels.scored_source(scored.data_key)
    if isinstance(source, str):  # the scored table is not loaded, or names no product
        return items
    table, schema = source
    names = offers_cache.product_names(table.table_key, state.schema_json(schema), table.df)
    return items.map(lambda p: f"{names[p]} ({p})" if p in names.index else p)


def _weeks_figure(weeks: pd.DataFrame) -> go.Figure:
    """The events' effects summed per week before the scoring date: above 0 raised the risk."""
    colour = ["#c0392b" if v > 0 else "#2471a3" for v in weeks["effect"]]
    fig = go.Figure(go.Bar(x=weeks["week"], y=weeks["effect"], marker_color=colour,
                           customdata=weeks["events"], hovertemplate="%{customdata} events, %{x} weeks before: "
                           "%{y:+.3f}<extra></extra>"))
    fig.update_layout(title="Effect of each week's events on the churn risk", height=300, showlegend=False,
                      margin=dict(t=50, b=50, l=60, r=10),
                      xaxis=dict(title="weeks before the scoring date", dtick=1 if weeks["week"].max() <= 12 else None,
                                 range=[-0.5, max(float(weeks["week"].max()), 3.0) + 0.5]),
                      yaxis=dict(title="effect (log-odds)", zeroline=True))
    return fig
