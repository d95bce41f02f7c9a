"""Session state: every key the app keeps, and typed accessors.

Nothing outside this module reads or writes ``st.session_state`` by string. Values the app keeps across pages (the
loaded file, the analyst's column choices, the built dataset) live under :class:`Key`; widgets get their keys from
:func:`widget_key`, which ties a widget to the table it edits so that loading another file starts from fresh widgets.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

try:
    from enum import StrEnum
except ImportError:  # Python 3.10
    from enum import Enum

    class StrEnum(str, Enum):  # type: ignore[no-redef]
        def __str__(self) -> str:
            return str(self.value)

import streamlit as st

SAMPLE = "sample"
UPLOAD = "upload"


class Key(StrEnum):
    # values kept across pages
    SOURCE = "source"  # SAMPLE | UPLOAD
    UPLOAD = "upload"  # Upload: the last file the analyst uploaded
    SHEETS = "sheets"  # digest -> chosen Excel sheet
    OVERRIDES = "overrides"  # table key -> schema overrides (role -> column, kind, attributes, ...)
    TABLE = "table"  # TableInfo of the table on screen (for the sidebar and other pages)
    DATASET = "dataset"  # retention_core Dataset built on the Data page
    DATASET_INFO = "dataset_info"  # DatasetInfo: what the dataset was built from
    RUNS = "runs"  # name -> trained run (filled by the Train page)
    ACTIVE_RUN = "active_run"  # name of the run the analysis pages look at
    # widget keys (used through widget_key)
    W_SOURCE = "w_source"
    W_UPLOADER = "w_uploader"
    W_SHEET = "w_sheet"
    W_KIND = "w_kind"
    W_ROLE = "w_role"
    W_ATTRIBUTES = "w_attributes"
    W_PURCHASE = "w_purchase"
    W_POSITIVE = "w_positive"
    W_COHORT = "w_cohort"
    W_FEATURE = "w_feature"
    W_BUILD = "w_build"


def widget_key(base: Key, *parts: Any) -> str:
    """A widget key: the base name plus parts (e.g. the table key and a role), joined by ``:``."""
    return ":".join([str(base), *(str(p) for p in parts)])


# ----------------------------------------------------------------------------------------------- plain values
@dataclass(frozen=True)
class Upload:
    """A file the analyst uploaded: its name, content, content digest and the uploader's file id."""

    name: str
    data: bytes = field(repr=False)
    digest: str
    file_id: str | None = None

    @property
    def size_mb(self) -> float:
        return len(self.data) / 1e6


@dataclass(frozen=True)
class TableInfo:
    """The table on screen: where it came from and what it is."""

    source: str  # SAMPLE | UPLOAD
    name: str
    table_key: str  # digest + sheet: identifies the table in caches and widget keys
    kind: str | None = None  # "events" | "users"
    rows: int | None = None
    users: int | None = None


@dataclass(frozen=True)
class DatasetInfo:
    """What the dataset in state was built from."""

    table_key: str
    name: str
    schema_json: str
    config: dict
    kind: str


def schema_json(schema) -> str:
    """A stable text form of a Schema (used as a cache key and to tell whether a dataset is up to date)."""
    d = schema.to_dict()
    d.pop("notes", None)
    return json.dumps(d, sort_keys=True, default=str)


def _get(key: Key, default: Any = None) -> Any:
    return st.session_state.get(str(key), default)


def _set(key: Key, value: Any) -> None:
    st.session_state[str(key)] = value


def _pop(key: Key) -> None:
    st.session_state.pop(str(key), None)


# ----------------------------------------------------------------------------------------------- source
def get_source() -> str:
    return _get(Key.SOURCE, SAMPLE)


def set_source(source: str) -> None:
    if source not in (SAMPLE, UPLOAD):
        raise ValueError(f"Unknown source {source!r}")
    _set(Key.SOURCE, source)


def get_upload() -> Upload | None:
    return _get(Key.UPLOAD)


def set_upload(upload: Upload | None) -> None:
    if upload is None:
        _pop(Key.UPLOAD)
    else:
        _set(Key.UPLOAD, upload)


def get_sheet(digest: str) -> str | None:
    return _get(Key.SHEETS, {}).get(digest)


def set_sheet(digest: str, sheet: str | None) -> None:
    sheets = dict(_get(Key.SHEETS, {}))
    sheets[digest] = sheet
    _set(Key.SHEETS, sheets)


# ----------------------------------------------------------------------------------------------- schema overrides
def get_overrides(table_key: str) -> dict:
    """The analyst's choices for this table (a copy); they win over what was detected."""
    return dict(_get(Key.OVERRIDES, {}).get(table_key, {}))


def set_override(table_key: str, name: str, value: Any) -> None:
    """Record one choice (a role -> column or None, or ``kind``, ``attributes``, ``label_positive``,
    ``purchase_values``)."""
    all_overrides = dict(_get(Key.OVERRIDES, {}))
    mine = dict(all_overrides.get(table_key, {}))
    mine[name] = value
    all_overrides[table_key] = mine
    _set(Key.OVERRIDES, all_overrides)


def drop_override(table_key: str, name: str) -> None:
    all_overrides = dict(_get(Key.OVERRIDES, {}))
    mine = dict(all_overrides.get(table_key, {}))
    mine.pop(name, None)
    all_overrides[table_key] = mine
    _set(Key.OVERRIDES, all_overrides)


def clear_overrides(table_key: str) -> None:
    all_overrides = dict(_get(Key.OVERRIDES, {}))
    all_overrides.pop(table_key, None)
    _set(Key.OVERRIDES, all_overrides)


# ----------------------------------------------------------------------------------------------- table on screen
def get_table() -> TableInfo | None:
    return _get(Key.TABLE)


def set_table(info: TableInfo | None) -> None:
    if info is None:
        _pop(Key.TABLE)
    else:
        _set(Key.TABLE, info)


# ----------------------------------------------------------------------------------------------- dataset
def get_dataset():
    """The Dataset built on the Data page, or None."""
    return _get(Key.DATASET)


def get_dataset_info() -> DatasetInfo | None:
    return _get(Key.DATASET_INFO)


def set_dataset(dataset, info: DatasetInfo) -> None:
    _set(Key.DATASET, dataset)
    _set(Key.DATASET_INFO, info)


def clear_dataset() -> None:
    _pop(Key.DATASET)
    _pop(Key.DATASET_INFO)


# ----------------------------------------------------------------------------------------------- trained runs
def get_runs() -> dict:
    """Trained runs by name (empty until the Train page adds one)."""
    return dict(_get(Key.RUNS, {}))


def add_run(name: str, run: Any) -> None:
    runs = dict(_get(Key.RUNS, {}))
    runs[name] = run
    _set(Key.RUNS, runs)
    _set(Key.ACTIVE_RUN, name)


def get_active_run_name() -> str | None:
    return _get(Key.ACTIVE_RUN)


# ----------------------------------------------------------------------------------------------- widgets
def has_widget(key: str) -> bool:
    return key in st.session_state


def widget_value(key: str, default: Any = None) -> Any:
    return st.session_state.get(key, default)


def set_widget(key: str, value: Any) -> None:
    """Set a widget's value before it is drawn in this run (used to show the current choice)."""
    st.session_state[key] = value
