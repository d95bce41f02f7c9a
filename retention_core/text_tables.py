"""Delimited text tables: the encoding, the delimiter, checks that the text is a table at all, and two readers that
give the same cells (Arrow's multi-threaded CSV reader, and pandas' for what Arrow cannot read exactly alike).

Every cell is read as text here; :mod:`retention_core.cells` then turns clear numbers into numbers.
"""
from __future__ import annotations

import io
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from . import bounds
from .bounds import Limits
from .errors import DataError

NOT_A_TABLE = "Upload a CSV, TSV, Parquet or Excel (.xlsx) file."
NA_VALUES = ["", "NA", "N/A", "n/a", "NaN", "nan", "NULL", "null", "None", "#N/A", "-"]
NA_SET = set(NA_VALUES)
_ARROW_COLUMNS = 20_000  # wider text (with RETENTION_MAX_COLUMNS raised) is read by pandas

_MAGIC = [
    (b"%PDF", "a PDF document"), (b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"), (b"\x7fELF", "a program"), (b"SQLite format 3", "a SQLite database"),
    (b"\xfd7zXZ", "an xz-compressed file (only gzip and zip are supported)"),
    (b"7z\xbc\xaf", "a 7-Zip archive (only gzip and zip are supported)"),
    (b"Rar!", "a RAR archive (only gzip and zip are supported)"),
    (b"\x28\xb5\x2f\xfd", "a zstd-compressed file (only gzip and zip are supported)"),
]


def short(exc: BaseException) -> str:
    """The first line of an exception's message (or its type), for a one-line explanation."""
    return str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__


def blank(data: bytes | str) -> bool:
    """Nothing but white space (without copying a big file as ``strip()`` would)."""
    return not data or data.isspace()


def decode_text(data: bytes) -> tuple[str, str]:
    """Decode bytes as UTF-8 (BOM or not), else cp1252, else latin-1; return (text, encoding)."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace"), "utf-8-sig"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            pass
    for enc in ("utf-8", "cp1252"):
        try:
            return data.decode(enc), enc
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1"), "latin-1"


_BINARY = "This file is binary, not a table. " + NOT_A_TABLE
_JSON = re.compile(r'^(\{|\[\s*(\{|\[|"|-?\d|\]|true|false|null))')
_MARKUP = re.compile(r"^(<!doctype|<html|<\?xml|<head|<body|<table|<div|<svg|<!--)", re.IGNORECASE)


def _check_is_text_table(data: bytes, text: str, encoding: str = "utf-8") -> None:
    for magic, what in _MAGIC:
        if data.startswith(magic):
            raise DataError(f"This file is {what}, not a table. {NOT_A_TABLE}")
    if data[:3] == b"BZh" and data[4:10] == b"1AY&SY":
        raise DataError(f"This file is a bzip2-compressed file (only gzip and zip are supported), not a table. "
                        f"{NOT_A_TABLE}")
    if not encoding.startswith("utf-16") and b"\x00" in data[:8192]:
        raise DataError(_BINARY)
    sample = text[:8192]
    if "\x00" in sample:
        raise DataError(_BINARY)
    ctrl = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\r\n\t")
    odd = sum(1 for ch in sample if 0x7F <= ord(ch) < 0xA0 or ch == "\ufffd")
    if sample and (ctrl + odd) / len(sample) > 0.05:
        raise DataError(_BINARY)
    stripped = sample.lstrip()
    if _MARKUP.match(stripped):
        raise DataError("This file is a web page (HTML/XML), not a table. Export the data as CSV or Excel instead.")
    if _JSON.match(stripped):
        raise DataError("This file looks like JSON, not a table. Export the data as CSV, Parquet or Excel.")


def sniff_delimiter(text: str) -> str:
    """Pick the delimiter whose count is most consistent over the first lines; ``r"\\s+"`` for space-aligned text."""
    head = text[:1_000_000]  # enough for 200 lines; splitting a whole big file would cost a copy of it
    lines = head.splitlines()
    if len(head) < len(text) and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut
    lines = [ln for ln in lines[:200] if ln.strip()]
    if not lines:
        return ","
    best, best_score = None, 0.0
    for d in [",", ";", "\t", "|"]:
        counts = [_count_outside_quotes(ln, d) for ln in lines]
        if counts[0] == 0:
            continue
        agree = sum(c == counts[0] for c in counts) / len(counts)
        score = agree * (1 + min(counts[0], 50) / 100)
        if score > best_score:
            best, best_score = d, score
    if best is not None and best_score >= 0.6:
        return best
    ws = [len(ln.split()) for ln in lines]
    if ws[0] > 1 and sum(c == ws[0] for c in ws) / len(ws) >= 0.9:
        return r"\s+"
    return best or ","


def _count_outside_quotes(line: str, d: str) -> int:
    if '"' not in line:
        return line.count(d)
    n, inside = 0, False
    for ch in line:
        if ch == '"':
            inside = not inside
        elif ch == d and not inside:
            n += 1
    return n


def check_columns(names: list) -> None:
    """Refuse duplicate column names with a message naming them."""
    clean = [str(c).strip() for c in names]
    seen, dups = set(), []
    for c in clean:
        if c in seen and c not in dups:
            dups.append(c)
        seen.add(c)
    if dups:
        shown = ", ".join(repr(d) for d in dups[:5])
        raise DataError(f"The file has duplicate column names: {shown}. Rename them so each column has its own name.")


def name_columns(header: list) -> list[str]:
    """Column names from a header row; an empty header cell is named after its position (column_3)."""
    out = []
    for i, v in enumerate(header):
        missing = v is None or (isinstance(v, float) and np.isnan(v)) or not str(v).strip()
        out.append(f"column_{i + 1}" if missing else str(v).strip())
    return out


def _drop_unnamed_empty(df: pd.DataFrame, header: list) -> pd.DataFrame:
    """Drop columns that have neither a header nor any value (a trailing delimiter on every line)."""
    keep = [i for i, h in enumerate(header)
            if not (h is None or (isinstance(h, float) and np.isnan(h)) or not str(h).strip())
            or df.iloc[:, i].notna().any()]
    return df.iloc[:, keep] if len(keep) < df.shape[1] else df


def read_text(data: bytes, name: str, limits: Limits) -> tuple[pd.DataFrame, dict]:
    text, encoding = decode_text(data)
    _check_is_text_table(data, text, encoding)
    if blank(text):
        raise DataError(f"{name} is empty. Upload a file with a header row and at least one row of data.")
    delimiter = sniff_delimiter(text)
    utf8 = data if encoding == "utf-8" else text.encode("utf-8")  # the same bytes when already UTF-8: no copy
    bounds.check_text(utf8, delimiter, name, limits)
    fast = read_text_arrow(utf8, delimiter)
    if fast is not None:
        header, df = fast
    else:
        header, df = read_text_pandas(text, delimiter, name)
    names = name_columns(header)
    check_columns(names)
    df.columns = names
    df = _drop_unnamed_empty(df, header)
    return df, {"encoding": encoding, "delimiter": delimiter}


def read_text_arrow(utf8: bytes, delimiter: str) -> tuple[list, pd.DataFrame] | None:
    """(header, rows as text columns) by Arrow's multi-threaded CSV reader, several times faster than pandas'; None
    when Arrow cannot read the text exactly as :func:`read_text_pandas` would (space-aligned text, rows of unequal
    length): the pandas reader then reads it, or explains what is wrong with it.

    Same rules as the pandas reader: the header is a data row, every cell is text, ``NA_VALUES`` are missing, blank
    lines are skipped and quoted cells may hold delimiters and line breaks.
    """
    if delimiter == r"\s+":
        return None
    try:
        table = pacsv.read_csv(
            io.BytesIO(utf8),
            read_options=pacsv.ReadOptions(autogenerate_column_names=True),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, quote_char='"', double_quote=True,
                                             newlines_in_values=True, ignore_empty_lines=True),
            convert_options=pacsv.ConvertOptions(column_types={f"f{i}": pa.string() for i in range(_ARROW_COLUMNS)},
                                                 null_values=NA_VALUES, strings_can_be_null=True,
                                                 quoted_strings_can_be_null=True))
    except (pa.ArrowException, ValueError):
        return None
    if table.num_rows == 0 or table.num_columns > _ARROW_COLUMNS:
        return None
    header = [col[0].as_py() for col in table.columns]
    body = table.slice(1)
    df = body.to_pandas(types_mapper={pa.string(): pd.StringDtype("pyarrow")}.get)
    return header, df


def read_text_pandas(text: str, delimiter: str, name: str) -> tuple[list, pd.DataFrame]:
    """(header, rows as text columns) by pandas' reader, with a clear message for irregular tables."""
    # The header is read as a data row so that pandas neither renames duplicate names nor turns a first column
    # into an index when data rows have more fields than the header.
    kw = dict(dtype=str, keep_default_na=False, na_values=NA_VALUES, skip_blank_lines=True, header=None,
              engine="c", on_bad_lines="error")
    try:
        if delimiter == r"\s+":
            raw = pd.read_csv(io.StringIO(text), sep=r"\s+", **kw)
        else:
            raw = pd.read_csv(io.StringIO(text), sep=delimiter, low_memory=False, **kw)
    except pd.errors.ParserError as exc:
        m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        where = f"line {m.group(2)} has {m.group(3)} fields but the first line has {m.group(1)}" if m else short(exc)
        raise DataError(f"{name} is not a regular table: rows have different numbers of fields ({where}). "
                        "Check the delimiter and quoting, or export the file again.") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{name} is empty. Upload a file with a header row and at least one row of data.") from None
    except Exception as exc:  # the parser raises a few other types on malformed text
        raise DataError(f"{name} cannot be read as a table ({short(exc)}). {NOT_A_TABLE}") from None
    if raw.empty:
        raise DataError(f"{name} is empty. Upload a file with a header row and at least one row of data.")
    return raw.iloc[0].tolist(), raw.iloc[1:].reset_index(drop=True)





