"""Cached offers and their evaluation, keyed like :mod:`ui.cache` (the table's content digest and the column roles as
JSON stand for the table; arguments starting with ``_`` are not hashed).

The offers of a scored table are made once for every scored user (keyed by the run's saved version, the table, the
roles, the as-of date and the number of offers), so choosing other users, another way of selecting them or other
segments only reads them again. The canonical events are the ones the Data page already prepared for the same roles.
"""
from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from retention_core.roles import Schema

from . import cache, state


def table_schema(table_key: str, df: pd.DataFrame) -> Schema:
    """The column roles of a loaded table as the Data page shows them (the analyst's choices win)."""
    return cache.infer_schema(table_key, json.dumps(state.get_overrides(table_key), sort_keys=True, default=str), df)


@st.cache_data(max_entries=4, show_spinner=False)
def product_names(table_key: str, schema_json: str, _df: pd.DataFrame) -> pd.Series:
    """product -> its name in a loaded table (:func:`retention_core.recommend.product_names`), once per table and
    roles; empty when the table names no product."""
    from retention_core.recommend import product_names as names

    return names(_df, Schema.from_dict(json.loads(schema_json)))


@st.cache_data(max_entries=8, show_spinner="Working out the offers...")
def scored_offers(path: str, stamp: str, table_key: str, schema_json: str, as_of: str | None, n: int,
                  _df: pd.DataFrame | None = None, _users: tuple[str, ...] = ()) -> pd.DataFrame:
    """Up to ``n`` offers for each scored user of a table, from its events up to ``as_of`` (users with no product
    history get none): one row per offer, ``user_id, rank, product, score, basis, reason`` (+ ``product_name``)."""
    from retention_core.recommend import offers_from_table

    schema = Schema.from_dict(json.loads(schema_json))
    ev = cache.canonical_events(table_key, schema_json, _df)
    return offers_from_table(_df, schema, as_of=as_of, users=list(_users), n=int(n), unknown="skip", events=ev)


@st.cache_data(max_entries=4, show_spinner="Judging every recommender on a time split (this takes a few seconds)...")
def recommender_evaluation(table_key: str, schema_json: str, k: int = 10,
                           _df: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every candidate recommender and the shipped blend on the log's last fully observed horizon (see
    :func:`retention_core.recommend.evaluate_recommenders`)."""
    from retention_core.recommend import evaluate_recommenders

    ev = cache.canonical_events(table_key, schema_json, _df)
    return evaluate_recommenders(ev, k=int(k))
