"""Every cached call into :mod:`retention_core`, keyed by the table's content digest and the settings.

Two kinds of cache:

- ``st.cache_resource`` for the large tables (the raw table and its canonical events). They are shared across
  sessions without copying, so callers must treat them as read-only; the key (content digest + column choices)
  guarantees one analyst never sees another's data unless the files are identical.
- ``st.cache_data`` for everything else (schemas, reports, matrices, datasets): each caller gets its own copy.

Arguments whose name starts with ``_`` (the table itself, raw bytes) are not hashed: the ``table_key`` (content digest,
plus the Excel sheet) and the JSON of the schema/config stand for them.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import streamlit as st

from retention_core import events, features, io, roles, segments, validation
from retention_core.errors import RetentionError
from retention_core.roles import Schema


def table_key(digest: str, sheet: str | None = None) -> str:
    """The key of one table: the content digest, plus the sheet for Excel workbooks."""
    return f"{digest}:{sheet}" if sheet else digest


def _schema(schema_json: str) -> Schema:
    return Schema.from_dict(json.loads(schema_json))


# ----------------------------------------------------------------------------------------------- reading
@st.cache_resource(max_entries=2, show_spinner="Reading the sample data...")
def _sample(path: str, mtime: float) -> pd.DataFrame:
    return io.read_table(path)


def sample_table() -> pd.DataFrame:
    """The shipped sample event log (read once per process)."""
    from assets.generator import sample_path

    path = Path(sample_path())
    return _sample(str(path), path.stat().st_mtime)


@st.cache_resource(max_entries=6, show_spinner="Reading the file...")
def read_table(key: str, name: str, sheet: str | None, _data: bytes) -> pd.DataFrame:
    """An uploaded table, read once per content digest and sheet."""
    return io.read_table(_data, name=name, sheet=sheet)


# ----------------------------------------------------------------------------------------------- understanding
@st.cache_data(max_entries=64, show_spinner="Working out what each column means...")
def infer_schema(key: str, overrides_json: str, _df: pd.DataFrame) -> Schema:
    return roles.infer_schema(_df, json.loads(overrides_json) or None)


@st.cache_data(max_entries=64, show_spinner="Checking the data...")
def validate(key: str, schema_json: str, _df: pd.DataFrame) -> validation.ValidationReport:
    return validation.validate(_df, _schema(schema_json))


@st.cache_data(max_entries=64, show_spinner=False)
def column_values(key: str, column: str, _df: pd.DataFrame, limit: int = 50) -> list:
    """The most frequent values of a column (as plain Python values), most frequent first."""
    counts = _df[column].dropna().value_counts()
    return [v.item() if hasattr(v, "item") else v for v in counts.index[:limit]]


@st.cache_resource(max_entries=4, show_spinner="Preparing the events...")
def canonical_events(key: str, schema_json: str, _df: pd.DataFrame) -> pd.DataFrame:
    return events.canonical_events(_df, _schema(schema_json))


@st.cache_data(max_entries=64, show_spinner=False)
def table_facts(key: str, schema_json: str, _df: pd.DataFrame) -> dict:
    """Rows, columns, distinct users and (event logs) the time span of the usable events."""
    schema = _schema(schema_json)
    user = schema.roles.get("user_id")
    facts = {"rows": len(_df), "columns": len(_df.columns),
             "users": int(_df[user].nunique(dropna=True)) if user else None, "start": None, "end": None}
    if schema.kind == "events" and user and schema.roles.get("timestamp"):
        try:
            ev = canonical_events(key, schema_json, _df)
        except RetentionError:
            return facts
        facts["start"], facts["end"] = ev["ts"].min(), ev["ts"].max()
        facts["users"] = int(ev["user_id"].nunique())
    return facts


@st.cache_data(max_entries=32, show_spinner="Computing cohort retention...")
def cohort_retention(key: str, schema_json: str, period: str, max_periods: int, _df: pd.DataFrame) -> pd.DataFrame:
    ev = canonical_events(key, schema_json, _df)
    return segments.cohort_retention(ev, period=period, max_periods=max_periods)


# ----------------------------------------------------------------------------------------------- datasets
@st.cache_data(max_entries=32, show_spinner=False)
def snapshot_defaults(key: str, schema_json: str, _df: pd.DataFrame) -> dict:
    """Default snapshot settings for this log and the dates that bound the cutoff."""
    ev = canonical_events(key, schema_json, _df)
    cfg = events.default_config(ev)
    end = events.data_end(ev)
    return {"config": cfg.as_dict(), "start": pd.Timestamp(ev["ts"].min()).floor("D"), "end": end,
            "cutoff": end - pd.Timedelta(days=cfg.horizon_days)}


@st.cache_data(max_entries=16, show_spinner="Building the dataset...")
def build_dataset(key: str, schema_json: str, config_json: str, _df: pd.DataFrame) -> events.Dataset:
    ev = canonical_events(key, schema_json, _df)
    cfg = events.SnapshotConfig(**json.loads(config_json))
    return events.build_dataset(ev, cfg)


def has_user_dataset() -> bool:
    """Whether the library can turn a user table into a dataset yet."""
    return hasattr(features, "user_dataset")


@st.cache_data(max_entries=16, show_spinner="Building the dataset...")
def user_dataset(key: str, schema_json: str, _df: pd.DataFrame):
    schema = _schema(schema_json)
    report = validate(key, schema_json, _df)
    return features.user_dataset(_df, schema, report)
