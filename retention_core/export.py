"""Writing what the product hands out: safe, atomic CSV/Parquet files, and keyed pseudonyms for user ids.

Every text cell that a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return) is prefixed with a single quote, so opening an exported list in Excel or Sheets never executes anything.
Numbers stay numbers. Lines end in CRLF (RFC 4180), so a cell holding a line break is always quoted. Files are
written to a temporary name next to the target and renamed into place, so a crash never leaves a half-written file
where a good one was.

Lists handed to people (the ``score`` CSV, the app's downloads) go through :func:`readable_list` first: probabilities
(``churn_probability``, ``uplift``, ``p_treated``, ``p_control``, ``threshold``, ``save_rate``) rounded to 4
decimals, amounts (``value``, ``value_at_risk``, ``expected_net_value``, ``cost_per_contact``) to 2, and each amount
column named with its unit in brackets, read from what the value is based on: ``value (currency of the log)`` when it
is past revenue, ``value (orders)`` for past orders, ``value (customers)`` when each customer counts 1. Rounding
happens after ranking, so ``rank`` and the row order are those of the exact figures. The first columns
``user_id, churn_probability, risk_decile, rank`` keep their names.
"""
from __future__ import annotations

import gzip
import hashlib
import hmac
import io
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import ConfigError

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise_text(s: pd.Series) -> pd.Series:
    """Prefix formula-like text cells with a single quote (numbers and missing values are left alone)."""
    if not (s.dtype == object or pd.api.types.is_string_dtype(s.dtype) or isinstance(s.dtype, pd.CategoricalDtype)):
        return s
    txt = s.astype("string")
    risky = txt.str.startswith(FORMULA_START, na=False)
    if not risky.any():
        return s
    out = txt.astype(object).where(txt.notna(), None)
    out[risky] = "'" + txt[risky]
    return out


def neutralise_frame(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    out.columns = [("'" + c) if isinstance(c, str) and c.startswith(FORMULA_START) else c for c in out.columns]
    for c in out.columns:
        out[c] = neutralise_text(out[c])
    return out


@contextmanager
def atomic_target(path: str | os.PathLike):
    """Yield a temporary path next to ``path``; on success it is renamed over ``path``, on failure removed, so a
    crash or an error never leaves a half-written file where a good one was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_table(df: pd.DataFrame, path: str | os.PathLike, *, chunk_rows: int = 200_000) -> Path:
    """Write ``df`` as CSV (formula-safe, in chunks) or Parquet, chosen by the file name, atomically."""
    path = Path(path)
    suffix = "".join(path.suffixes[-2:]).lower() if path.suffix.lower() == ".gz" else path.suffix.lower()
    if suffix not in (".csv", ".parquet", ".csv.gz"):
        raise ConfigError(f"Output file {path.name!r} must end in .csv, .csv.gz or .parquet.")
    with atomic_target(path) as tmp:
        if suffix == ".parquet":
            df.to_parquet(tmp, index=False)
        elif suffix == ".csv.gz":
        
            with gzip.open(tmp, "wt", encoding="utf-8", newline="") as fh:
                _write_csv_chunks(df, fh, chunk_rows)
        else:
            with open(tmp, "w", encoding="utf-8", newline="") as fh:
                _write_csv_chunks(df, fh, chunk_rows)
    return path


def _write_csv_chunks(df: pd.DataFrame, fh, chunk_rows: int) -> int:
    """Write ``df`` as formula-safe CSV to the open text handle ``fh``, ``chunk_rows`` rows at a time (only one
    neutralised chunk is held at once). Returns the number of data rows written."""
    chunk_rows = max(int(chunk_rows), 1)
    for start in range(0, max(len(df), 1), chunk_rows):
        part = neutralise_frame(df.iloc[start:start + chunk_rows])
        # CRLF line ends (RFC 4180): the writer then quotes every cell holding a CR or LF, so a stray carriage
        # return inside a text cell can never split a row
        part.to_csv(fh, index=False, header=start == 0, date_format="%Y-%m-%d", lineterminator="\r\n")
        del part
    return len(df)


PROBABILITY_COLUMNS = ("churn_probability", "uplift", "p_treated", "p_control", "threshold", "save_rate")
AMOUNT_COLUMNS = ("value", "value_at_risk", "expected_net_value", "cost_per_contact")
#: What a list's value is based on (see retention_core.campaign.value_basis) -> the unit its amounts are in.
_MONEY_WORDS = ("revenue", "monetary", "spend", "amount", "sales", "price")
_COUNT_WORDS = ("orders", "frequency", "purchases")


def value_unit(basis: str | None) -> str:
    """The unit of a list's amounts from its value basis: the log's currency for revenue, orders, or customers when
    every customer counts 1 (other columns: the column's own units)."""
    b = str(basis or "").strip().lower()
    if not b or b in ("one per user", "none", "nan"):
        return "customers"
    if any(w in b for w in _MONEY_WORDS):
        return "currency of the log"
    if any(w in b for w in _COUNT_WORDS):
        return "orders"
    return f"units of {basis}"


def readable_list(df: pd.DataFrame, basis: str | None = None, *, probabilities: bool = True) -> pd.DataFrame:
    """An at-risk or uplift list as handed to people: probabilities rounded to 4 decimals (unless ``probabilities``
    is False: the command line's scores file keeps them exact, as the service answers them), amounts to 2 with the
    unit in the column name (a copy; rows and their order unchanged). ``basis`` defaults to the list's
    ``attrs["value_basis"]`` or its ``value_basis`` column."""
    out = df.copy()
    for c in PROBABILITY_COLUMNS if probabilities else ():
        if c in out.columns and pd.api.types.is_numeric_dtype(out[c].dtype):
            out[c] = out[c].astype(float).round(4)
    amounts = [c for c in AMOUNT_COLUMNS if c in out.columns and pd.api.types.is_numeric_dtype(out[c].dtype)]
    if not amounts:
        return out
    if basis is None:
        basis = df.attrs.get("value_basis")
        if basis is None and "value_basis" in df.columns and len(df):
            basis = df["value_basis"].iloc[0]
    unit = value_unit(basis)
    for c in amounts:
        out[c] = out[c].astype(float).round(2)
    return out.rename(columns={c: f"{c} ({unit})" for c in amounts})


def format_dates(df: pd.DataFrame) -> pd.DataFrame:
    """Snapshot dates as plain YYYY-MM-DD text for export."""
    out = df.copy()
    for c in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[c].dtype):
            out[c] = out[c].dt.strftime("%Y-%m-%d")
    return out


def export_csv(df: pd.DataFrame, path_or_buffer, *, chunk_rows: int = 100_000) -> int:
    """Write ``df`` as formula-safe UTF-8 CSV, ``chunk_rows`` rows at a time: only one neutralised chunk is in memory
    besides ``df`` itself, so a list of a million users exports without several full copies.

    ``path_or_buffer`` is a file path (written to a temporary name next to it and renamed into place, so a failed
    export never leaves a half-written file) or an open text or binary file object. Returns the rows written.
    """

    if isinstance(path_or_buffer, (str, os.PathLike)):
        with atomic_target(path_or_buffer) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
            return _write_csv_chunks(df, fh, chunk_rows)
    if isinstance(path_or_buffer, io.TextIOBase):
        return _write_csv_chunks(df, path_or_buffer, chunk_rows)
    text = io.TextIOWrapper(path_or_buffer, encoding="utf-8", newline="", write_through=True)
    try:
        rows = _write_csv_chunks(df, text, chunk_rows)
        text.flush()
    finally:
        text.detach()  # leave the caller's file object open
    return rows


def export_csv_bytes(df: pd.DataFrame, *, chunk_rows: int = 100_000) -> bytes:
    """The formula-safe CSV of ``df`` as bytes (for a download button); the same content :func:`export_csv`
    writes."""

    buf = io.BytesIO()
    export_csv(df, buf, chunk_rows=chunk_rows)
    return buf.getvalue()


def pseudonymise(ids, key: str | bytes, *, length: int = 16):
    """Keyed pseudonyms for user ids: HMAC-SHA256 of the id's text under ``key``, as ``length`` hex characters.

    The same id and key always give the same pseudonym (lists exported on different days can be joined), a different
    key gives unrelated ones, and without the key the ids cannot be recovered by hashing guesses. Returns a Series
    (same index) for a Series, else a list.
    """

    if isinstance(key, str):
        key = key.encode("utf-8")
    if not key:
        raise ConfigError("Give a key to pseudonymise the user ids.")
    if not 8 <= int(length) <= 64:
        raise ConfigError(f"The pseudonym length must be between 8 and 64 hex characters, got {length}.")
    proto = hmac.new(key, digestmod=hashlib.sha256)

    def one(v) -> str | None:
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
            return None
        h = proto.copy()
        h.update(str(v).encode("utf-8"))
        return h.hexdigest()[:length]

    if isinstance(ids, pd.Series):
        return pd.Series([one(v) for v in ids.astype(object)], index=ids.index, dtype=object, name=ids.name)
    return [one(v) for v in ids]


def pseudonymise_list(list_df: pd.DataFrame, key: str | bytes, *, column: str = "user_id") -> pd.DataFrame:
    """``list_df`` with its user ids replaced by keyed pseudonyms (a copy)."""
    out = list_df.copy()
    out[column] = pseudonymise(out[column], key)
    return out
