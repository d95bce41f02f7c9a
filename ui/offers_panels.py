"""Offers on the At-risk page: the top products to offer each listed user (``offer_1..offer_N`` in the list and its
download), each offer with its reason, the top offers per segment, and how good the offers are on a time split.

Offers are made from the event log the users were scored on, with the column roles the Data page shows. Where a table
cannot give offers (a user table, no product column, no purchase history, the run's validation users), the page says
why in one line and the rest of it keeps working. The computation is the library's
(:mod:`retention_core.recommend`), cached in :mod:`ui.offers_cache`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st

from retention_core import bundle, recommend, scoring
from retention_core.errors import RetentionError

from . import offers_cache, state, tables
from .state import Key, widget_key
from .widgets import SHOW_ROWS, guard

DEFAULT_OFFERS = 3
MAX_OFFERS = 10
AUTO_USERS = 50_000  # offers are on by default up to this many scored users (made once for all of them)
EVAL_K = 10
VALIDATION_NOTE = ("Offers are made from an event log with a product column: score the data loaded on the Data page "
                   "(not the run's validation users) to add offers to the list.")
RELOAD_NOTE = "Offers need the scored table: load it again on the Data page to add offers to the list."
DISCOVERY = {"similar": "products often bought with theirs", "als": "products customers like them buy (ALS)"}


@dataclass(frozen=True)
class Offers:
    """The offers of the scored users (``frame``: one row per offer), the number per user and the table they came
    from (its key, roles as JSON and rows, to evaluate the recommenders on the same events)."""

    frame: pd.DataFrame
    n: int
    table_key: str
    schema_json: str
    df: pd.DataFrame


def _k(run_name: str, *parts: Any) -> str:
    return widget_key(Key.W_AT_RISK, run_name, "offers", *parts)


def scored_source(data_key: str) -> tuple[tables.LoadedTable, Any] | str:
    """The scored table and its roles when it can give offers, else the sentence that says why not."""
    if data_key == "validation":
        return VALIDATION_NOTE
    table = tables.loaded_table()
    if table is None or table.table_key != data_key:
        return RELOAD_NOTE
    schema = offers_cache.table_schema(table.table_key, table.df)
    ok, why = recommend.offers_available(schema)
    return (table, schema) if ok else why


def add_offers(data, scored, list_df: pd.DataFrame) -> tuple[pd.DataFrame, Offers | None]:
    """The switch and the number of offers per user; returns the list with ``offer_1..offer_N`` added and the offers
    (the list unchanged and None when offers cannot be made or are switched off)."""
    with guard("checking whether offers can be made") as g:
        source = scored_source(scored.data_key)
    if g.failed:
        return list_df, None
    if isinstance(source, str):
        st.info(source, icon=":material/redeem:")
        return list_df, None
    table, schema = source
    c = st.columns([2, 1, 2], vertical_alignment="bottom")
    want = c[0].toggle("Add the top offers for each user", value=len(scored.scores) <= AUTO_USERS,
                       key=_k(data.name, "on"), help="Products to offer each listed user, from their own purchase "
                       "history first: offer_1..offer_N columns in the list and its download.")
    n = int(c[1].number_input("Offers per user (N)", 1, MAX_OFFERS, DEFAULT_OFFERS, key=_k(data.name, "n")))
    if not want or not len(list_df):
        return list_df, None
    sj = state.schema_json(schema)
    users = tuple(scored.scores["user_id"].astype(str))
    with guard("working out the offers") as g:
        try:
            frame = offers_cache.scored_offers(data.path, bundle.run_id(data.path), table.table_key, sj, scored.as_of, n,
                                               table.df, users)
        except RetentionError as e:  # no purchase history before the date: a fact about the data, not a failure
            st.info(str(e), icon=":material/redeem:")
            return list_df, None
        out = recommend.attach_offers(list_df, frame, n)
    if g.failed:
        return list_df, None
    return out, Offers(frame, n, table.table_key, sj, table.df)


def offer_details(data, scored, list_df: pd.DataFrame, offers: Offers | None) -> None:
    """Each listed user's offers with the reasons, the top offers per segment and how good the offers are."""
    if offers is None:
        return
    st.subheader("What to offer", anchor=False)
    ids = list_df["user_id"].astype(str)
    listed = offers.frame[offers.frame["user_id"].astype(str).isin(set(ids))]
    tabs = st.tabs(["Offers per user", "Top offers per segment", "How good are the offers?"])
    with tabs[0]:
        _per_user(data, listed, ids, offers)
    with tabs[1]:
        _per_segment(data, scored, list_df, listed, offers.n)
    with tabs[2]:
        _evaluation(data, offers)


def _blend_words(blend: dict) -> str:
    if not blend:
        return ""
    then = DISCOVERY.get(str(blend.get("discovery")), "products often bought with theirs")
    return (f"Each customer's own products come first (up to {blend.get('depth')}, ranked by how likely they are to "
            f"buy each again), then {then}, then the recent best sellers. {blend.get('note') or ''}").strip()


def _per_user(data, listed: pd.DataFrame, ids: pd.Series, offers: Offers) -> None:
    at = pd.Index(ids.to_numpy()).get_indexer(listed["user_id"].astype(str))  # the list's order, then the offer's
    show = listed.assign(_at=at).sort_values(["_at", "rank"], kind="stable").drop(columns="_at")
    show["basis"] = show["basis"].map(recommend.BASIS_LABELS).fillna(show["basis"])
    cols = [c for c in ["user_id", "rank", "product", "product_name", "reason", "basis", "score"] if c in show]
    with_offers = show["user_id"].nunique()
    st.caption(f":material/redeem: {with_offers:,} of {len(ids):,} listed users have offers (users with no product "
               f"bought before the scoring date have none); made from the events up to "
               f"{offers.frame.attrs.get('as_of', 'the scoring date')}. {_blend_words(offers.frame.attrs.get('blend'))}")
    if len(show) > SHOW_ROWS:
        st.caption(f":material/info: Showing the first {SHOW_ROWS:,} of {len(show):,} offers.")
    st.dataframe(show[cols].head(SHOW_ROWS), hide_index=True, width="stretch", key=_k(data.name, "per-user"),
                 column_config={
                     "user_id": st.column_config.TextColumn("user"), "rank": st.column_config.NumberColumn("offer"),
                     "product_name": st.column_config.TextColumn("name"),
                     "reason": st.column_config.TextColumn("why this offer", width="large"),
                     "basis": st.column_config.TextColumn("kind"),
                     "score": st.column_config.ProgressColumn(
                         "chance of a purchase", format="percent", min_value=0.0, max_value=1.0,
                         help="Own products: the repeat model's chance that the user buys it again within the "
                              "horizon; other offers: how often that offer position was bought on an earlier split.")})
    if len(show):
        st.plotly_chart(recommend.offers_by_basis(listed), width="stretch", key=_k(data.name, "basis-chart"))


def _per_segment(data, scored, list_df: pd.DataFrame, listed: pd.DataFrame, n: int) -> None:
    cols = [c for c in scoring.segment_columns(scored.frame) if c in list_df.columns] + ["risk_decile"]
    c = st.columns([2, 1])
    col = c[0].selectbox("Segment by", cols, key=_k(data.name, "segment"),
                         help="The products most often among the listed users' first offers, per segment.")
    top = int(c[1].number_input("Products per segment", 1, 20, 5, key=_k(data.name, "segment-top")))
    with guard("finding the top offers per segment") as g:
        table = recommend.segment_offers(listed, list_df[["user_id", col]], col, top=top, within=n)
    if g.failed:
        return
    st.caption(f"Counting each listed user's first {n} offers; share = the share of the segment's listed users "
               "offered the product.")
    st.dataframe(table, hide_index=True, width="stretch", key=_k(data.name, "segment-table"), column_config={
        "segment": st.column_config.TextColumn(str(col)), "product_name": st.column_config.TextColumn("name"),
        "users": st.column_config.NumberColumn("users offered", format="localized"),
        "share": st.column_config.ProgressColumn("share", format="percent", min_value=0.0, max_value=1.0),
        "mean_score": st.column_config.NumberColumn("mean chance of a purchase", format="percent")})


def _evaluation(data, offers: Offers) -> None:
    st.caption(f"Each recommender makes {EVAL_K} offers from the events up to a past date; they are compared with what "
               "each customer then bought over the horizon (customers who bought before and after that date). The "
               "blend is what the list offers. This takes a few seconds on a large log, once.")
    flag = _k(data.name, "evaluated", offers.table_key)
    if st.button("Evaluate the offers", icon=":material/science:", key=_k(data.name, "evaluate")):
        state.set_widget(flag, True)
    if not state.widget_value(flag):
        return
    with guard("judging the recommenders") as g:
        table = offers_cache.recommender_evaluation(offers.table_key, offers.schema_json, EVAL_K, offers.df)
    if g.failed:
        return
    cols = ["label", "precision", "recall", "ndcg", "hit_rate", "novelty", "users", "coverage", "seconds"]
    cfg = {m: st.column_config.NumberColumn(label.replace("@k", f"@{EVAL_K}"), format="%.3f")
           for m, label in recommend.METRIC_LABELS.items()}
    cfg.update({"label": st.column_config.TextColumn("recommender", width="large"),
                "users": st.column_config.NumberColumn("customers judged", format="localized"),
                "coverage": st.column_config.NumberColumn("coverage", format="percent",
                                                          help="Share of the customers judged given at least one "
                                                               "offer."),
                "seconds": st.column_config.NumberColumn("seconds", format="%.2f")})
    shown = table[[c for c in cols if c in table]].copy()
    shown.attrs = {}  # what the blend learned is worded below, not sent with the table
    st.dataframe(shown, hide_index=True, width="stretch",
                 key=_k(data.name, "evaluation"), column_config=cfg)
    st.plotly_chart(recommend.evaluation_figure(table), width="stretch", key=_k(data.name, "evaluation-chart"))
    st.caption(_blend_words(table.attrs.get("blend")))
