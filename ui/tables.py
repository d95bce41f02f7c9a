"""The table the analyst works on: the built-in sample or a file uploaded in this session, read through the cache.

One place finds a table again by its key (content digest, plus the Excel sheet): the Data page shows it, the Train
page rebuilds a dataset from it and the At-risk page scores its users.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from retention_core import io as rio

from . import cache, state
from .state import SAMPLE, UPLOAD

UPLOAD_TYPES = ["csv", "tsv", "txt", "gz", "zip", "parquet", "xlsx"]


@dataclass(frozen=True)
class LoadedTable:
    df: pd.DataFrame
    table_key: str
    name: str
    source: str


def accept_upload(name: str, data: bytes, file_id: str | None = None) -> state.Upload:
    """Take an uploaded file (name and bytes): keep it in the session and make it the data source.

    Reading happens later, through the cache keyed by the content digest, so a broken file only shows an error.
    """
    data = bytes(data)
    upload = state.Upload(name=str(name), data=data, digest=rio.digest(data), file_id=file_id)
    state.set_upload(upload)
    state.set_source(UPLOAD)
    return upload


def forget_upload() -> None:
    state.set_upload(None)


def read_upload(up: state.Upload, sheet: str | None = None) -> LoadedTable:
    """An uploaded file read (once per content and sheet; the workbook's own choice of sheet when none is given)."""
    key = cache.table_key(up.digest, sheet)
    df = cache.read_table(key, up.name, sheet, up.data)
    return LoadedTable(df, key, f"{up.name} [{sheet}]" if sheet else up.name, UPLOAD)


def sample() -> LoadedTable:
    df = cache.sample_table()
    return LoadedTable(df, df.attrs["digest"], df.attrs["read_info"]["name"], SAMPLE)


def table_by_key(table_key: str) -> pd.DataFrame | None:
    """The table with this key, when it is this session's upload or the sample; None when it is no longer loaded."""
    digest, _, sheet = table_key.partition(":")
    up = state.get_upload()
    if up is not None and up.digest == digest:
        return cache.read_table(table_key, up.name, sheet or None, up.data)
    df = cache.sample_table()
    return df if df.attrs.get("digest") == digest else None


def loaded_table() -> LoadedTable | None:
    """The table loaded on the Data page, read through the cache; None when nothing is loaded. Draws nothing."""
    table = state.get_table()
    if table is None:
        return None
    df = table_by_key(table.table_key)
    return None if df is None else LoadedTable(df, table.table_key, table.name, table.source)
