"""Read the tables analysts really have: CSV/TSV/semicolon/whitespace text, gzip or zip, Parquet, Excel.

The one entry point is :func:`read_table`. It accepts a path or the raw bytes of an upload, detects the format from the
content (not only the file name), the text encoding (UTF-8 with or without BOM, then cp1252, then latin-1) and the
delimiter, and refuses with a :class:`DataError` anything that is not a usable table. Values that are clearly numbers
become numbers; identifiers with leading zeros and dates stay text until :func:`parse_datetime` turns dates into
timestamps. Nothing read is ever executed or unpickled.
"""
from __future__ import annotations

import csv
import gzip
import hashlib
import io
import os
import re
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
import pandas as pd

from .errors import DataError

Source = Union[str, os.PathLike, bytes, bytearray, BinaryIO]

DEFAULT_MAX_MB = float(os.environ.get("RETENTION_MAX_UPLOAD_MB", "500"))
#: Decompressed data may be at most this many times the size limit (guards against zip bombs).
MAX_EXPANSION = 20
_TEXT_SUFFIXES = {".csv", ".tsv", ".txt", ".dat", ".tab", ".psv"}
_NA_VALUES = ["", "NA", "N/A", "n/a", "NaN", "nan", "NULL", "null", "None", "#N/A", "-"]


@dataclass
class ReadInfo:
    """How a file was read, shown to the analyst next to the preview."""

    name: str
    format: str
    size_bytes: int
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None
    sheets: list[str] | None = None
    compression: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def digest(data: bytes) -> str:
    """A short, stable content digest used as a cache key and recorded in saved runs."""
    return hashlib.sha256(data).hexdigest()[:16]


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


def _load_bytes(source: Source, max_bytes: int) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray)):
        data, name = bytes(source), "upload"
    elif hasattr(source, "read"):
        data = source.read(max_bytes + 1)
        name = getattr(source, "name", "upload")
    else:
        path = Path(source)
        if not path.exists():
            raise DataError(f"File not found: {path}. Check the path and try again.")
        if path.is_dir():
            raise DataError(f"{path} is a folder, not a file. Give the path of a CSV, Parquet or Excel file.")
        size = path.stat().st_size
        if size > max_bytes:
            raise DataError(f"{path.name} is {_mb(size)}, over the size limit of {_mb(max_bytes)}. "
                            "Filter or sample the file first, or raise the limit.")
        data, name = path.read_bytes(), path.name
    if len(data) > max_bytes:
        raise DataError(f"The file is over the size limit of {_mb(max_bytes)}. Filter or sample it first, or raise the limit.")
    return data, str(name)


def _decompress_gzip(data: bytes, limit: int) -> bytes:
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as fh:
            out = fh.read(limit + 1)
    except (OSError, EOFError) as exc:
        raise DataError(f"The gzip file is damaged and cannot be decompressed ({exc}). Export it again.") from None
    if len(out) > limit:
        raise DataError(f"The compressed file expands to more than {_mb(limit)}, over the limit. "
                        "Split it or filter it before uploading.")
    return out


def _zip_member(data: bytes, limit: int) -> tuple[bytes, str]:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise DataError("The zip file is damaged and cannot be opened. Export it again.") from None
    members = [i for i in zf.infolist() if not i.is_dir() and not i.filename.startswith("__MACOSX")
               and not os.path.basename(i.filename).startswith(".")]
    if not members:
        raise DataError("The zip file holds no file. Put one CSV, Parquet or Excel file in it.")
    tables = [m for m in members if Path(m.filename).suffix.lower() in _TEXT_SUFFIXES | {".parquet", ".xlsx", ".gz"}]
    if len(tables) > 1:
        names = ", ".join(m.filename for m in tables[:5])
        raise DataError(f"The zip file holds several tables ({names}). Upload one file at a time.")
    member = (tables or members)[0]
    if member.file_size > limit:
        raise DataError(f"{member.filename} inside the zip expands to {_mb(member.file_size)}, over the limit of {_mb(limit)}.")
    with zf.open(member) as fh:
        out = fh.read(limit + 1)
    if len(out) > limit:
        raise DataError(f"{member.filename} inside the zip expands past the limit of {_mb(limit)}.")
    return out, member.filename


def _is_xlsx(data: bytes) -> bool:
    try:
        return "xl/workbook.xml" in zipfile.ZipFile(io.BytesIO(data)).namelist()
    except zipfile.BadZipFile:
        return False


def decode_text(data: bytes) -> tuple[str, str]:
    """Decode bytes as UTF-8 (BOM or not), else cp1252, else latin-1; return (text, encoding)."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace"), "utf-8-sig"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16"), "utf-16"
    for enc in ("utf-8", "cp1252"):
        try:
            return data.decode(enc), enc
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1"), "latin-1"


def _check_is_text_table(data: bytes, text: str) -> None:
    head = data[:8192]
    if b"\x00" in head:
        raise DataError("This file is binary, not a table. Upload a CSV, TSV, Parquet or Excel (.xlsx) file.")
    sample = text[:8192]
    ctrl = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\r\n\t")
    odd = sum(1 for ch in sample if 0x7F <= ord(ch) < 0xA0 or ch == "\ufffd")
    if sample and (ctrl + odd) / len(sample) > 0.05:
        raise DataError("This file is binary, not a table. Upload a CSV, TSV, Parquet or Excel (.xlsx) file.")
    stripped = sample.lstrip().lower()
    if stripped.startswith(("<!doctype", "<html", "<?xml", "<head", "<body", "<table")):
        raise DataError("This file is a web page (HTML/XML), not a table. Export the data as CSV or Excel instead.")
    if stripped.startswith(("{", "[")):
        raise DataError("This file looks like JSON, not a table. Export the data as CSV, Parquet or Excel.")


def sniff_delimiter(text: str) -> str:
    """Pick the delimiter whose count is most consistent over the first lines; ``r"\\s+"`` for space-aligned text."""
    lines = [ln for ln in text.splitlines()[:200] if ln.strip()]
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


def _header(text: str, delimiter: str) -> list[str]:
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    if delimiter == r"\s+":
        return first.split()
    return [c.strip() for c in next(csv.reader([first], delimiter=delimiter))]


def check_columns(names: list) -> None:
    """Refuse duplicate or missing column names with a message naming them."""
    clean = [str(c).strip() for c in names]
    seen, dups = set(), []
    for c in clean:
        if c in seen and c not in dups:
            dups.append(c)
        seen.add(c)
    if dups:
        shown = ", ".join(repr(d) for d in dups[:5])
        raise DataError(f"The file has duplicate column names: {shown}. Rename them so each column has its own name.")


def _read_text(data: bytes, name: str) -> tuple[pd.DataFrame, dict]:
    text, encoding = decode_text(data)
    _check_is_text_table(data, text)
    if not text.strip():
        raise DataError(f"{name} is empty. Upload a file with a header row and at least one row of data.")
    delimiter = sniff_delimiter(text)
    header = _header(text, delimiter)
    check_columns(header)
    kw = dict(dtype=str, keep_default_na=False, na_values=_NA_VALUES, skip_blank_lines=True)
    try:
        if delimiter == r"\s+":
            df = pd.read_csv(io.StringIO(text), sep=r"\s+", engine="python", **kw)
        else:
            df = pd.read_csv(io.StringIO(text), sep=delimiter, engine="c", low_memory=False, on_bad_lines="error", **kw)
    except pd.errors.ParserError as exc:
        raise DataError(f"{name} is not a regular table: rows have different numbers of fields ({_short(exc)}). "
                        "Check the delimiter and quoting, or export the file again.") from None
    except (pd.errors.EmptyDataError, UnicodeError) as exc:
        raise DataError(f"{name} cannot be read as a table ({_short(exc)}).") from None
    return df, {"encoding": encoding, "delimiter": delimiter}


def _short(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__


def excel_sheets(data: bytes) -> list[dict]:
    """The sheets of an .xlsx workbook: name, visibility and whether it has data."""
    import openpyxl

    try:
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for broken files
        raise DataError(f"This Excel file cannot be opened ({_short(exc)}). Save it again as .xlsx or export CSV.") from None
    out = []
    for ws in wb.worksheets:
        has_data = False
        for row in ws.iter_rows(max_row=2, values_only=True):
            if any(v is not None and str(v).strip() for v in row):
                has_data = True
                break
        out.append({"name": ws.title, "hidden": ws.sheet_state != "visible", "has_data": has_data})
    wb.close()
    return out


def _read_excel(data: bytes, name: str, sheet: str | None) -> tuple[pd.DataFrame, dict]:
    sheets = excel_sheets(data)
    names = [s["name"] for s in sheets]
    if sheet is None:
        usable = [s["name"] for s in sheets if s["has_data"] and not s["hidden"]] or \
                 [s["name"] for s in sheets if s["has_data"]]
        if not usable:
            raise DataError(f"{name}: no sheet of this workbook holds data. Sheets: {', '.join(names)}.")
        sheet = usable[0]
    elif sheet not in names:
        raise DataError(f"{name} has no sheet named {sheet!r}. Sheets: {', '.join(names)}.")
    try:
        raw = pd.read_excel(io.BytesIO(data), sheet_name=sheet, header=None, dtype=object, engine="openpyxl")
    except Exception as exc:
        raise DataError(f"Sheet {sheet!r} of {name} cannot be read ({_short(exc)}). Save it again as .xlsx or export CSV.") from None
    raw = raw.dropna(how="all").dropna(axis=1, how="all")
    if raw.empty:
        raise DataError(f"Sheet {sheet!r} of {name} is empty. Pick another sheet.")
    header = [str(v).strip() if v is not None and not (isinstance(v, float) and np.isnan(v)) else f"column_{i + 1}"
              for i, v in enumerate(raw.iloc[0].tolist())]
    check_columns(header)
    df = raw.iloc[1:].reset_index(drop=True)
    df.columns = header
    df = df.map(lambda v: v if v is None or isinstance(v, (pd.Timestamp, float, int)) else str(v))
    return df, {"sheet": sheet, "sheets": names}


def _read_parquet(data: bytes, name: str) -> pd.DataFrame:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(io.BytesIO(data))
    except Exception as exc:
        raise DataError(f"{name} is not a readable Parquet file ({_short(exc)}). Export it again.") from None
    check_columns(table.column_names)
    return table.to_pandas()


def read_table(source: Source, *, name: str | None = None, sheet: str | None = None,
               max_mb: float | None = None) -> pd.DataFrame:
    """Read a table from a path or uploaded bytes.

    The result carries ``df.attrs["read_info"]`` (a :class:`ReadInfo` as a dict) and ``df.attrs["digest"]``.
    Raises :class:`DataError` with an analyst-readable message for anything that is not a usable table.
    """
    max_bytes = int((max_mb if max_mb is not None else DEFAULT_MAX_MB) * 1e6)
    data, src_name = _load_bytes(source, max_bytes)
    name = name or src_name
    if not data.strip():
        raise DataError(f"{name} is empty. Upload a file with a header row and at least one row of data.")
    info = ReadInfo(name=name, format="csv", size_bytes=len(data))
    limit = max_bytes * MAX_EXPANSION
    payload = data
    if payload[:2] == b"\x1f\x8b":
        payload, info.compression = _decompress_gzip(payload, limit), "gzip"
    elif payload[:4] == b"PK\x03\x04" and not _is_xlsx(payload):
        payload, inner = _zip_member(payload, limit)
        info.compression = "zip"
        if payload[:2] == b"\x1f\x8b":
            payload = _decompress_gzip(payload, limit)

    if payload[:4] == b"PAR1":
        info.format = "parquet"
        df = _read_parquet(payload, name)
    elif payload[:4] == b"PK\x03\x04":
        info.format = "excel"
        df, extra = _read_excel(payload, name, sheet)
        info.sheet, info.sheets = extra["sheet"], extra["sheets"]
    elif payload[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise DataError(f"{name} is an old Excel (.xls) or other Office file. Save it as .xlsx or CSV and upload that.")
    else:
        df, extra = _read_text(payload, name)
        info.format = "tsv" if extra["delimiter"] == "\t" else "text"
        info.encoding, info.delimiter = extra["encoding"], extra["delimiter"]

    df.columns = [str(c).strip() for c in df.columns]
    if len(df.columns) == 0:
        raise DataError(f"{name} has no columns. Upload a table with a header row.")
    if len(df) == 0:
        raise DataError(f"{name} has column names but no rows of data ({len(df.columns)} columns: "
                        f"{', '.join(df.columns[:6])}{'...' if len(df.columns) > 6 else ''}).")
    if len(df.columns) == 1 and info.format not in ("parquet", "excel") and len(df) > 1:
        only = df.columns[0]
        if any(ch in only for ch in ",;\t|") or not _looks_like_table_column(df[only]):
            raise DataError(f"{name} was read as a single column ({only[:60]!r}). Check that it is a delimited table "
                            "(comma, semicolon, tab or pipe) with a header row.")
    df = coerce_types(df)
    df.attrs["read_info"] = info.as_dict()
    df.attrs["digest"] = digest(data)
    return df


def _looks_like_table_column(s: pd.Series) -> bool:
    return s.dropna().astype(str).str.len().median() < 200 if len(s.dropna()) else False


_LEADING_ZERO = re.compile(r"^0\d")


def coerce_types(df: pd.DataFrame) -> pd.DataFrame:
    """Strip text cells and turn text columns that hold only numbers into numbers.

    A column is converted only if every non-empty cell parses (nothing is silently lost); identifiers with leading zeros
    (``00042``) stay text. Infinite values become missing.
    """
    out = {}
    for col in df.columns:
        s = df[col]
        if s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
            s = s.astype("string").str.strip()
            s = s.mask(s == "")
            nn = s.dropna()
            if len(nn):
                num = pd.to_numeric(nn.str.replace(",", "", regex=False) if nn.str.fullmatch(r"-?\d{1,3}(,\d{3})+(\.\d+)?").all()
                                    else nn, errors="coerce")
                if num.notna().all() and not nn.str.match(_LEADING_ZERO).any():
                    full = pd.Series(np.nan, index=s.index, dtype="float64")
                    full[nn.index] = num.astype("float64")
                    if np.isfinite(full.dropna()).all() and (full.dropna() % 1 == 0).all() \
                            and full.dropna().abs().max() < 2**53:
                        s = full.astype("Int64") if full.isna().any() else full.astype("int64")
                    else:
                        s = full.replace([np.inf, -np.inf], np.nan)
                else:
                    s = s.astype(object).where(s.notna(), None)
            else:
                s = s.astype(object).where(s.notna(), None)
        elif pd.api.types.is_float_dtype(s.dtype):
            s = s.replace([np.inf, -np.inf], np.nan)
        out[col] = s
    return pd.DataFrame(out, index=df.index)


# --------------------------------------------------------------------------------------------------------- dates
_DATE_FORMATS = [
    "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d", "%Y%m%d",
    "%d/%m/%Y %H:%M", "%m/%d/%Y %H:%M", "%d/%m/%Y %H:%M:%S", "%m/%d/%Y %H:%M:%S", "%d/%m/%Y", "%m/%d/%Y",
    "%d.%m.%Y %H:%M", "%d.%m.%Y", "%d-%m-%Y", "%Y/%m/%d", "%Y/%m/%d %H:%M:%S", "%d %b %Y", "%b %d %Y",
]
_TZ_SUFFIX = re.compile(r"(?:Z|[+-]\d{2}:?\d{2}|\s?UTC|\s?GMT)$", re.IGNORECASE)


def parse_datetime(s: pd.Series) -> pd.Series:
    """Parse a column of dates/timestamps to naive ``datetime64[ns]``.

    Handles text in many formats (the format that parses most of a sample wins; day-first vs month-first decided by the
    data), time-zone suffixes (converted to UTC), ``YYYYMMDD`` integers and Unix epochs. Unparseable cells become NaT;
    :mod:`validation` counts them.
    """
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        if getattr(s.dt, "tz", None) is not None:
            s = s.dt.tz_convert("UTC").dt.tz_localize(None)
        return s.astype("datetime64[ns]")
    if pd.api.types.is_numeric_dtype(s.dtype):
        v = pd.to_numeric(s, errors="coerce").astype("float64")
        nn = v.dropna()
        if len(nn) and nn.between(19000101, 21001231).all() and (nn % 1 == 0).all():
            return pd.to_datetime(v.astype("Int64").astype("string"), format="%Y%m%d", errors="coerce")
        if len(nn) and nn.between(1e9, 4.2e9).all():
            return pd.to_datetime(v, unit="s", errors="coerce")
        if len(nn) and nn.between(1e12, 4.2e12).all():
            return pd.to_datetime(v, unit="ms", errors="coerce")
        if len(nn) and nn.between(20000, 80000).all():  # Excel serial day numbers
            return pd.to_datetime(v, unit="D", origin="1899-12-30", errors="coerce")
        return pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns]")
    txt = s.astype("string").str.strip()
    nn = txt.dropna()
    if nn.empty:
        return pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns]")
    sample = nn.sample(min(len(nn), 2000), random_state=0) if len(nn) > 2000 else nn
    if sample.str.contains(_TZ_SUFFIX).mean() > 0.5:
        out = pd.to_datetime(txt, utc=True, errors="coerce", format="mixed")
        return out.dt.tz_localize(None).astype("datetime64[ns]")
    best, best_ok = None, 0.0
    for fmt in _DATE_FORMATS:
        ok = pd.to_datetime(sample, format=fmt, errors="coerce").notna().mean()
        if ok > best_ok:
            best, best_ok = fmt, ok
        if ok == 1.0:
            break
    if best is not None and best_ok >= 0.98:
        out = pd.to_datetime(txt, format=best, errors="coerce")
        rest = out.isna() & txt.notna()
        if rest.any():  # a minority in another format: try the flexible parser on those only
            out[rest] = pd.to_datetime(txt[rest], errors="coerce", format="mixed", dayfirst=best.startswith("%d"))
        return out.astype("datetime64[ns]")
    dayfirst = bool(sample.str.match(r"^(1[3-9]|2\d|3[01])[/.-]").any())
    out = pd.to_datetime(txt, errors="coerce", format="mixed", dayfirst=dayfirst, utc=True)
    return out.dt.tz_localize(None).astype("datetime64[ns]")


def datetime_share(s: pd.Series, sample: int = 500) -> float:
    """Share of a sample of non-empty cells that parse as dates (used to recognise timestamp columns)."""
    nn = s.dropna()
    if nn.empty:
        return 0.0
    nn = nn.iloc[:sample]
    if pd.api.types.is_datetime64_any_dtype(nn.dtype):
        return 1.0
    if pd.api.types.is_numeric_dtype(nn.dtype):
        v = nn.astype("float64")
        if v.between(19000101, 21001231).all() and (v % 1 == 0).all() and v.nunique() > 1:
            return float(parse_datetime(nn).notna().mean())
        return 0.0
    txt = nn.astype(str)
    if not txt.str.contains(r"\d").all() or txt.str.len().max() > 40:
        return 0.0
    if not txt.str.contains(r"[-/.:]|\d{8}|[A-Za-z]{3}").mean() > 0.9:
        return 0.0
    return float(parse_datetime(nn).notna().mean())
