"""Read the tables analysts really have: CSV/TSV/semicolon/pipe/whitespace text, gzip or zip, Parquet, Excel.

The one entry point is :func:`read_table`. It accepts a path or the raw bytes of an upload, detects the format from the
content (not only the file name), the text encoding (UTF-8 with or without BOM, then cp1252, then latin-1) and the
delimiter, and refuses with a :class:`DataError` anything that is not a usable table. Values that are clearly numbers
become numbers (thousands separators and currency signs allowed); identifiers with leading zeros, identifiers too
long for a 64-bit integer and dates stay text until :func:`parse_datetime` turns dates into timestamps. Nothing read
is ever executed or unpickled.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import re
import zipfile
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .errors import DataError

Source = Union[str, os.PathLike, bytes, bytearray, BinaryIO]

DEFAULT_MAX_MB = float(os.environ.get("RETENTION_MAX_UPLOAD_MB", "500"))
#: Decompressed data may be at most this many times the size limit (guards against zip bombs).
MAX_EXPANSION = 20
_TEXT_SUFFIXES = {".csv", ".tsv", ".txt", ".dat", ".tab", ".psv"}
_TABLE_SUFFIXES = _TEXT_SUFFIXES | {".parquet", ".pq", ".xlsx", ".xlsm", ".gz"}
_NA_VALUES = ["", "NA", "N/A", "n/a", "NaN", "nan", "NULL", "null", "None", "#N/A", "-"]
_NA_SET = set(_NA_VALUES)
_MAX_COLUMNS = 20_000  # wider text is read by pandas
_NOT_A_TABLE = "Upload a CSV, TSV, Parquet or Excel (.xlsx) file."
# Formats people upload by mistake, recognised by their first bytes.
_MAGIC = [
    (b"%PDF", "a PDF document"), (b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"), (b"\x7fELF", "a program"), (b"SQLite format 3", "a SQLite database"),
    (b"\xfd7zXZ", "an xz-compressed file (only gzip and zip are supported)"),
    (b"7z\xbc\xaf", "a 7-Zip archive (only gzip and zip are supported)"),
    (b"Rar!", "a RAR archive (only gzip and zip are supported)"),
    (b"\x28\xb5\x2f\xfd", "a zstd-compressed file (only gzip and zip are supported)"),
]


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
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, name = bytes(source), "upload"
    elif hasattr(source, "read"):
        data = source.read(max_bytes + 1)
        if isinstance(data, str):
            data = data.encode("utf-8")
        name = os.path.basename(str(getattr(source, "name", "upload") or "upload"))
    else:
        path = Path(source)
        try:
            if not path.exists():
                raise DataError(f"File not found: {path}. Check the path and try again.")
            if path.is_dir():
                raise DataError(f"{path} is a folder, not a file. Give the path of a CSV, Parquet or Excel file.")
            size = path.stat().st_size
            if size > max_bytes:
                raise DataError(f"{path.name} is {_mb(size)}, over the size limit of {_mb(max_bytes)}. "
                                "Filter or sample the file first, or raise the limit.")
            data, name = path.read_bytes(), path.name
        except OSError as exc:
            raise DataError(f"{path.name} cannot be opened ({exc.strerror or type(exc).__name__}).") from None
    if len(data) > max_bytes:
        raise DataError(f"The file is over the size limit of {_mb(max_bytes)}. Filter or sample it first, or raise the limit.")
    return data, str(name)


def _too_big(limit: int) -> DataError:
    return DataError(f"The compressed file expands to more than {_mb(limit)}, over the limit "
                     f"({MAX_EXPANSION} times the size limit). Split or filter it before uploading.")


def _decompress_gzip(data: bytes, limit: int) -> bytes:
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as fh:
            out = fh.read(limit + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"The gzip file is damaged and cannot be decompressed ({_short(exc)}). Export it again.") from None
    if len(out) > limit:
        raise _too_big(limit)
    return out


def _zip_member(data: bytes, limit: int) -> tuple[bytes, str]:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except Exception:  # zipfile raises several types for a damaged archive
        raise DataError("The zip file is damaged and cannot be opened. Export it again.") from None
    members = [i for i in infos if not i.is_dir() and not i.filename.startswith("__MACOSX")
               and not os.path.basename(i.filename).startswith(".")]
    if not members:
        raise DataError("The zip file holds no file. Put one CSV, Parquet or Excel file in it.")
    if any(m.filename == "mimetype" for m in members) and any(m.filename == "content.xml" for m in members):
        raise DataError("This is an OpenDocument spreadsheet (.ods). Save it as .xlsx or CSV and upload that.")
    tables = [m for m in members if Path(m.filename).suffix.lower() in _TABLE_SUFFIXES]
    if len(tables) > 1:
        names = ", ".join(m.filename for m in tables[:5])
        more = f" and {len(tables) - 5} more" if len(tables) > 5 else ""
        raise DataError(f"The zip file holds several tables ({names}{more}). Upload one file at a time.")
    if not tables and len(members) > 1:
        names = ", ".join(m.filename for m in members[:5])
        raise DataError(f"The zip file holds several files and none looks like a table ({names}). "
                        "Put one CSV, Parquet or Excel file in it.")
    member = (tables or members)[0]
    if member.file_size > limit:
        raise _too_big(limit)
    try:
        with zf.open(member) as fh:
            out = fh.read(limit + 1)
    except (RuntimeError, NotImplementedError):  # encrypted or an unsupported compression method
        raise DataError(f"{member.filename} inside the zip is encrypted or compressed in a way that is not "
                        "supported. Zip it again without a password.") from None
    except Exception:
        raise DataError("The zip file is damaged and cannot be decompressed. Export it again.") from None
    if len(out) > limit:
        raise _too_big(limit)
    return out, member.filename


def _is_xlsx(data: bytes) -> bool:
    try:
        return "xl/workbook.xml" in zipfile.ZipFile(io.BytesIO(data)).namelist()
    except Exception:
        return False


def _looks_like_office(data: bytes, name: str) -> bool:
    """A zip that is probably a (damaged) Excel workbook, judged by its name or the member names it starts with."""
    return Path(name).suffix.lower() in (".xlsx", ".xlsm") or \
        re.search(rb"PK\x03\x04.{26}(?:\[Content_Types\]\.xml|docProps/|xl/)", data[:65536], re.DOTALL) is not None


def _blank(data: bytes | str) -> bool:
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


_BINARY = "This file is binary, not a table. " + _NOT_A_TABLE
_JSON = re.compile(r'^(\{|\[\s*(\{|\[|"|-?\d|\]|true|false|null))')
_MARKUP = re.compile(r"^(<!doctype|<html|<\?xml|<head|<body|<table|<div|<svg|<!--)", re.IGNORECASE)


def _check_is_text_table(data: bytes, text: str, encoding: str = "utf-8") -> None:
    for magic, what in _MAGIC:
        if data.startswith(magic):
            raise DataError(f"This file is {what}, not a table. {_NOT_A_TABLE}")
    if data[:3] == b"BZh" and data[4:10] == b"1AY&SY":
        raise DataError(f"This file is a bzip2-compressed file (only gzip and zip are supported), not a table. "
                        f"{_NOT_A_TABLE}")
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


def _name_columns(header: list) -> list[str]:
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


def _read_text(data: bytes, name: str) -> tuple[pd.DataFrame, dict]:
    text, encoding = decode_text(data)
    _check_is_text_table(data, text, encoding)
    if _blank(text):
        raise DataError(f"{name} is empty. Upload a file with a header row and at least one row of data.")
    delimiter = sniff_delimiter(text)
    fast = _read_text_arrow(text, delimiter)
    if fast is not None:
        header, df = fast
    else:
        header, df = _read_text_pandas(text, delimiter, name)
    names = _name_columns(header)
    check_columns(names)
    df.columns = names
    df = _drop_unnamed_empty(df, header)
    return df, {"encoding": encoding, "delimiter": delimiter}


def _read_text_arrow(text: str, delimiter: str) -> tuple[list, pd.DataFrame] | None:
    """(header, rows as text columns) by Arrow's multi-threaded CSV reader, several times faster than pandas'; None
    when Arrow cannot read the text exactly as :func:`_read_text_pandas` would (space-aligned text, rows of unequal
    length): the pandas reader then reads it, or explains what is wrong with it.

    Same rules as the pandas reader: the header is a data row, every cell is text, ``_NA_VALUES`` are missing, blank
    lines are skipped and quoted cells may hold delimiters and line breaks.
    """
    if delimiter == r"\s+":
        return None
    import pyarrow.csv as pacsv

    try:
        table = pacsv.read_csv(
            io.BytesIO(text.encode("utf-8")),
            read_options=pacsv.ReadOptions(autogenerate_column_names=True),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, quote_char='"', double_quote=True,
                                             newlines_in_values=True, ignore_empty_lines=True),
            convert_options=pacsv.ConvertOptions(column_types={f"f{i}": pa.string() for i in range(_MAX_COLUMNS)},
                                                 null_values=_NA_VALUES, strings_can_be_null=True,
                                                 quoted_strings_can_be_null=True))
    except (pa.ArrowException, ValueError):
        return None
    if table.num_rows == 0 or table.num_columns > _MAX_COLUMNS:
        return None
    header = [col[0].as_py() for col in table.columns]
    body = table.slice(1)
    df = body.to_pandas(types_mapper={pa.string(): pd.StringDtype("pyarrow")}.get)
    return header, df


def _read_text_pandas(text: str, delimiter: str, name: str) -> tuple[list, pd.DataFrame]:
    """(header, rows as text columns) by pandas' reader, with a clear message for irregular tables."""
    # The header is read as a data row so that pandas neither renames duplicate names nor turns a first column
    # into an index when data rows have more fields than the header.
    kw = dict(dtype=str, keep_default_na=False, na_values=_NA_VALUES, skip_blank_lines=True, header=None,
              engine="c", on_bad_lines="error")
    try:
        if delimiter == r"\s+":
            raw = pd.read_csv(io.StringIO(text), sep=r"\s+", **kw)
        else:
            raw = pd.read_csv(io.StringIO(text), sep=delimiter, low_memory=False, **kw)
    except pd.errors.ParserError as exc:
        m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        where = f"line {m.group(2)} has {m.group(3)} fields but the first line has {m.group(1)}" if m else _short(exc)
        raise DataError(f"{name} is not a regular table: rows have different numbers of fields ({where}). "
                        "Check the delimiter and quoting, or export the file again.") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{name} is empty. Upload a file with a header row and at least one row of data.") from None
    except Exception as exc:  # the parser raises a few other types on malformed text
        raise DataError(f"{name} cannot be read as a table ({_short(exc)}). {_NOT_A_TABLE}") from None
    if raw.empty:
        raise DataError(f"{name} is empty. Upload a file with a header row and at least one row of data.")
    return raw.iloc[0].tolist(), raw.iloc[1:].reset_index(drop=True)


def _short(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__


def excel_sheets(data: bytes) -> list[dict]:
    """The sheets of an .xlsx workbook: name, visibility and whether it has data."""
    import openpyxl

    try:
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for broken files
        raise DataError(f"This Excel file cannot be opened ({_short(exc)}). Save it again as .xlsx or export CSV.") from None
    out = []
    try:
        for ws in wb.worksheets:
            has_data = False
            # Tables often start below a title or a few blank rows: look at the first rows, not only the first two.
            for row in ws.iter_rows(max_row=50, values_only=True):
                if any(v is not None and str(v).strip() for v in row):
                    has_data = True
                    break
            out.append({"name": ws.title, "hidden": ws.sheet_state != "visible", "has_data": has_data})
    except Exception as exc:
        raise DataError(f"This Excel file is damaged ({_short(exc)}). Save it again as .xlsx or export CSV.") from None
    finally:
        wb.close()
    return out


def _read_excel(data: bytes, name: str, sheet: str | int | None) -> tuple[pd.DataFrame, dict]:
    sheets = excel_sheets(data)
    names = [s["name"] for s in sheets]
    if sheet is None:
        usable = [s["name"] for s in sheets if s["has_data"] and not s["hidden"]] or \
                 [s["name"] for s in sheets if s["has_data"]]
        if not usable:
            raise DataError(f"{name}: no sheet of this workbook holds data. Sheets: {', '.join(names)}.")
        sheet = usable[0]
    elif isinstance(sheet, int) and not isinstance(sheet, bool) and sheet not in names:
        if not 0 <= sheet < len(names):
            raise DataError(f"{name} has {len(names)} sheet(s); there is no sheet number {sheet + 1}. "
                            f"Sheets: {', '.join(names)}.")
        sheet = names[sheet]
    elif sheet not in names:
        raise DataError(f"{name} has no sheet named {sheet!r}. Sheets: {', '.join(names)}.")
    try:
        raw = pd.read_excel(io.BytesIO(data), sheet_name=sheet, header=None, dtype=object, engine="openpyxl")
    except Exception as exc:
        raise DataError(f"Sheet {sheet!r} of {name} cannot be read ({_short(exc)}). Save it again as .xlsx or export CSV.") from None
    raw = raw.map(lambda v: None if isinstance(v, str) and v.strip() in _NA_SET else v)
    raw = raw.dropna(how="all").dropna(axis=1, how="all")
    if raw.empty:
        raise DataError(f"Sheet {sheet!r} of {name} is empty. Pick another sheet.")
    header = _name_columns(raw.iloc[0].tolist())
    check_columns(header)
    df = raw.iloc[1:].reset_index(drop=True)
    df.columns = header
    return df, {"sheet": sheet, "sheets": names}


def _read_parquet(data: bytes, name: str) -> pd.DataFrame:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(io.BytesIO(data))
        check_columns(table.column_names)
        return table.to_pandas()
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"{name} is not a readable Parquet file ({_short(exc)}). Export it again.") from None


def read_table(source: Source, *, name: str | None = None, sheet: str | int | None = None,
               max_mb: float | None = None) -> pd.DataFrame:
    """Read a table from a path or uploaded bytes.

    The result carries ``df.attrs["read_info"]`` (a :class:`ReadInfo` as a dict) and ``df.attrs["digest"]``.
    Raises :class:`DataError` with an analyst-readable message for anything that is not a usable table.
    """
    max_bytes = int((max_mb if max_mb is not None else DEFAULT_MAX_MB) * 1e6)
    if isinstance(source, (str, os.PathLike)) and Path(source).is_dir():  # a partitioned Parquet dataset
        return read_parquet_folder(source, name=name, max_bytes=max_bytes)
    data, src_name = _load_bytes(source, max_bytes)
    name = name or src_name
    if _blank(data):
        raise DataError(f"{name} is empty. Upload a file with a header row and at least one row of data.")
    info = ReadInfo(name=name, format="csv", size_bytes=len(data))
    limit = max_bytes * MAX_EXPANSION
    payload = data
    if payload[:2] == b"\x1f\x8b":
        payload, info.compression = _decompress_gzip(payload, limit), "gzip"
    elif payload[:4] == b"PK\x03\x04" and not _is_xlsx(payload):
        if _looks_like_office(payload, name) and not _zip_lists_tables(payload):
            raise DataError(f"{name} looks like an Excel file but it is damaged and cannot be opened. "
                            "Open it in Excel and save it again as .xlsx, or export CSV.")
        payload, _inner = _zip_member(payload, limit)
        info.compression = "zip"
        if payload[:2] == b"\x1f\x8b":
            payload = _decompress_gzip(payload, limit)
    elif payload[:4] in (b"PK\x05\x06", b"PK\x07\x08"):
        raise DataError(f"{name} is an empty zip file. Put one CSV, Parquet or Excel file in it.")
    if _blank(payload):
        raise DataError(f"{name} is empty. Upload a file with a header row and at least one row of data.")
    check_memory(len(payload), name, compressed=payload[:4] == b"PAR1" or payload[:4] == b"PK\x03\x04")
    try:
        df, info = _parse(payload, name, sheet, info)
    except MemoryError:
        raise DataError(f"{name} is too large to load in the memory this machine has free. Filter or sample it "
                        "first (fewer rows or columns).") from None
    df.attrs["read_info"] = info.as_dict()
    df.attrs["digest"] = digest(data)
    return df


# --- Parquet folders (a partitioned dataset, as data lakes and Spark write them); read alike by both engines -------
def parquet_files(folder: str | os.PathLike) -> list[Path]:
    """The Parquet files of a folder, in the order both engines read them: every ``*.parquet`` / ``*.pq`` file below
    it (``key=value`` sub-folders included), sorted by path; hidden and ``_``-prefixed files (``_SUCCESS``,
    ``_metadata``, ``.crc``) are not data. DataError when there is none."""
    root = Path(folder)
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in (".parquet", ".pq")
                   and not any(part.startswith((".", "_")) for part in p.relative_to(root).parts))
    if not files:
        raise DataError(f"{root.name} is a folder without Parquet files (*.parquet). Give a CSV, Parquet or Excel file, "
                        "or a folder of Parquet files.")
    return files


def read_parquet_folder(folder: str | os.PathLike, *, name: str | None = None,
                        max_bytes: int | None = None) -> pd.DataFrame:
    """Read a folder of Parquet files (:func:`parquet_files`) as one table: the files' rows one after the other, with
    the same checks and type rules as a single Parquet file. Files must share their columns."""
    import pyarrow.parquet as pq

    root = Path(folder)
    files = parquet_files(root)
    name = name or root.name
    size = sum(f.stat().st_size for f in files)
    if max_bytes is not None and size > max_bytes:
        raise DataError(f"{name} holds {_mb(size)} of Parquet files, over the size limit of {_mb(max_bytes)}. "
                        "Filter or sample it first, raise the limit, or build the dataset with --engine spark.")
    check_memory(size, name, compressed=True)
    try:
        tables = [pq.read_table(f) for f in files]
        table = pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]
        check_columns(table.column_names)
        df = table.to_pandas()
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"{name}: its Parquet files cannot be read as one table ({_short(exc)}).") from None
    df, info = _finish_parquet(df, name, size)
    df.attrs["read_info"] = info.as_dict()
    h = hashlib.sha256()
    for f in files:
        h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes())
    df.attrs["digest"] = h.hexdigest()[:16]
    return df


def _finish_parquet(df: pd.DataFrame, name: str, size: int) -> tuple[pd.DataFrame, ReadInfo]:
    df.columns = [str(c).strip() for c in df.columns]
    if len(df.columns) == 0 or len(df) == 0:
        raise DataError(f"{name} has no rows of data.")
    return coerce_types(df), ReadInfo(name=name, format="parquet", size_bytes=size)
# --- end of Parquet folders ---------------------------------------------------------------------------------------


#: A table in memory takes several times its text size (text cells become Python strings).
MEMORY_FACTOR_TEXT = 6
MEMORY_FACTOR_COMPRESSED = 25


def available_memory() -> int | None:
    """Bytes of memory free for new work (Linux ``MemAvailable``), or None where it cannot be read."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def check_memory(n_bytes: int, name: str, *, compressed: bool = False) -> None:
    """Refuse, with a clear message, a file whose table would not fit in the free memory (instead of crashing)."""
    free = available_memory()
    need = n_bytes * (MEMORY_FACTOR_COMPRESSED if compressed else MEMORY_FACTOR_TEXT)
    if free is not None and need > free:
        raise DataError(f"{name} needs about {need / 1e9:,.1f} GB of memory to load, but only {free / 1e9:,.1f} GB "
                        "are free. Filter or sample the file first, or use a machine with more memory.")


def _parse(payload: bytes, name: str, sheet, info: ReadInfo):
    if payload[:4] == b"PAR1":
        info.format = "parquet"
        df = _read_parquet(payload, name)
    elif payload[:4] == b"PK\x03\x04":
        if not _is_xlsx(payload):
            raise DataError(f"{name}: the zip file holds another zip or a damaged Excel file. Upload the table itself.")
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
    return coerce_types(df), info


def _zip_lists_tables(data: bytes) -> bool:
    try:
        return any(Path(n).suffix.lower() in _TABLE_SUFFIXES for n in zipfile.ZipFile(io.BytesIO(data)).namelist())
    except Exception:
        return False


def _looks_like_table_column(s: pd.Series) -> bool:
    nn = s.dropna()
    return bool(nn.astype(str).str.len().median() < 200) if len(nn) else False


# ------------------------------------------------------------------------------------------------ value types
_NUMBERISH = r"^[-+]?\s?[$£€¥]?\s?[-+]?[\d.,]*\d[\d.,]*(?:[eE][-+]?\d+)?\s?[$£€¥]?$"
_INT = r"^[-+]?\d+$"
_FLOAT = r"^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$"
_US_NUMBER = r"^[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?$"  # 1,234.50 (comma groups thousands)
_EU_NUMBER = r"^[-+]?(?:\d{1,3}(?:\.\d{3})+|\d+)(?:,\d+)?$"  # 1.234,50 (comma marks decimals)
_CURRENCY = r"[$£€¥]"
_LEADING_ZERO = r"^[-+]?0\d"


def _all(arr: pa.Array, pattern: str) -> bool:
    return bool(pc.all(pc.match_substring_regex(arr, pattern)).as_py())


def _any(arr: pa.Array, pattern: str) -> bool:
    return bool(pc.any(pc.match_substring_regex(arr, pattern)).as_py())


def _parse_numbers(valid: pa.Array) -> np.ndarray | None:
    """The numbers written in ``valid`` (non-null, stripped text) or None when any cell is not a number.

    Accepts ``1234``, ``-12.5``, ``1e3``, ``1,234.50``, ``1.234,50``, ``12,50`` and a currency sign before or after.
    Identifiers with leading zeros and integers beyond 64 bits are not numbers.
    """
    n = len(valid)
    # Cheap rejection on a spread-out sample first: most text columns fail on their first cells.
    probe = valid.take(pa.array(np.unique(np.linspace(0, n - 1, min(n, 1000)).astype(np.int64))))
    if not _all(probe, _NUMBERISH) or not _all(valid, _NUMBERISH):
        return None
    if _any(valid, _CURRENCY):
        valid = pc.replace_substring_regex(valid, r"\s?[$£€¥]\s?", "")
        if not _all(valid, r"^[-+]?[\d.,]*\d[\d.,]*(?:[eE][-+]?\d+)?$"):
            return None
    valid = pc.replace_substring_regex(valid, r"^\+", "")
    if _any(valid, _LEADING_ZERO):
        return None
    try:
        if _all(valid, _INT):
            return pc.cast(valid, pa.int64()).to_numpy(zero_copy_only=False)
        if _all(valid, _FLOAT):
            out = pc.cast(valid, pa.float64())
        elif _all(valid, _US_NUMBER) and _any(valid, ","):
            out = pc.cast(pc.replace_substring(valid, ",", ""), pa.float64())
        elif _all(valid, _EU_NUMBER) and _any(valid, ","):
            out = pc.cast(pc.replace_substring(pc.replace_substring(valid, ".", ""), ",", "."), pa.float64())
        else:
            return None
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # an integer beyond 64 bits: an identifier
        return None
    values = out.to_numpy(zero_copy_only=False)
    return values if np.isfinite(values).all() else None  # 1E999 is not a number a person meant


_TEXT = pd.StringDtype("pyarrow", na_value=np.nan)  # pandas' default text type ("str")


def _as_text(txt: pd.Series) -> pd.Series:
    return txt.astype(_TEXT)


def _numbers_to_series(values: np.ndarray, present: np.ndarray, index: pd.Index) -> pd.Series:
    """Scatter parsed numbers back over the rows; whole numbers become integers (nullable when cells are missing)."""
    if values.dtype.kind == "f":
        values = np.where(np.isfinite(values), values, np.nan)
        finite = values[~np.isnan(values)]
        whole = finite.size == 0 or (np.all(finite % 1 == 0) and np.abs(finite).max() < 2**53)
        if whole and np.isnan(values).sum() == 0:
            values = values.astype(np.int64)
    if values.dtype.kind == "i":
        if present.all():
            return pd.Series(values, index=index, dtype="int64")
        data = np.zeros(len(present), dtype=np.int64)
        data[present] = values
        return pd.Series(pd.arrays.IntegerArray(data, ~present), index=index)
    full = np.full(len(present), np.nan)
    full[present] = values
    return pd.Series(full, index=index, dtype="float64")


def _coerce_text(s: pd.Series) -> pd.Series:
    try:
        txt = s.astype("string")
    except (TypeError, ValueError):  # objects pandas cannot turn into text directly (bytes, nested values)
        txt = s.map(lambda v: None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)).astype("string")
    txt = txt.str.strip()
    txt = txt.mask(txt == "")
    arr = pa.array(txt.array) if isinstance(txt.array, pd.arrays.ArrowStringArray) else \
        pa.array(txt.to_numpy(dtype=object, na_value=None), type=pa.large_string())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    present = ~np.asarray(arr.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    if not present.any():
        return pd.Series([None] * len(s), index=s.index, dtype=object)
    values = _parse_numbers(arr.filter(pa.array(present)))
    if values is None:
        return _as_text(txt)
    return _numbers_to_series(values, present, s.index)


def _coerce_objects(s: pd.Series) -> pd.Series:
    """Object columns (Excel cells, Python objects): real numbers and dates keep their type, the rest is text."""
    kind = pd.api.types.infer_dtype(s, skipna=True)
    if kind == "empty":
        return pd.Series([None] * len(s), index=s.index, dtype=object)
    if kind in ("datetime", "datetime64", "date"):
        try:
            out = pd.to_datetime(s, errors="coerce", utc=True).dt.tz_localize(None)
            # Nanoseconds when every date fits; otherwise the coarser unit keeps placeholders such as 0001-01-01,
            # which the validation report then counts as unreadable dates.
            return out if out.dropna().empty or out.min() < pd.Timestamp.min or out.max() > pd.Timestamp.max \
                else out.astype(_NAT)
        except (TypeError, ValueError, OverflowError):
            pass
    if kind in ("integer", "floating", "mixed-integer-float", "decimal"):
        num = pd.to_numeric(s, errors="coerce").astype("float64").to_numpy()
        present = ~np.isnan(num)
        return _numbers_to_series(num[present], present, s.index)
    if kind == "boolean":
        return s.astype(object)
    return _coerce_text(s)


def coerce_types(df: pd.DataFrame) -> pd.DataFrame:
    """Strip text cells and turn text columns that hold only numbers into numbers.

    A column is converted only if every non-empty cell parses (nothing is silently lost); identifiers with leading zeros
    (``00042``) and integers too long for 64 bits stay text. Text columns come back as pandas' text type ``str``
    (Arrow-backed, NaN for missing cells: several times faster to check, hash and group than Python objects); whole
    numbers become ``int64`` (``Int64`` when cells are missing). Infinite values become missing.
    """
    out = {}
    for col in df.columns:
        s = df[col]
        if s.dtype == object:
            s = _coerce_objects(s)
        elif pd.api.types.is_string_dtype(s.dtype) and not isinstance(s.dtype, pd.CategoricalDtype):
            s = _coerce_text(s)
        elif pd.api.types.is_float_dtype(s.dtype):
            s = s.replace([np.inf, -np.inf], np.nan)
        out[col] = s
    res = df.copy(deep=False)  # columns replaced one by one: no copy of all text columns into one block
    for col, s in out.items():
        res[col] = s
    return res


# --------------------------------------------------------------------------------------------------------- dates
_DATE_FORMATS = [
    "ISO8601", "%Y%m%d",
    "%d/%m/%Y %H:%M", "%m/%d/%Y %H:%M", "%d/%m/%Y %H:%M:%S", "%m/%d/%Y %H:%M:%S", "%d/%m/%Y", "%m/%d/%Y",
    "%d.%m.%Y %H:%M", "%d.%m.%Y %H:%M:%S", "%d.%m.%Y", "%d-%m-%Y %H:%M", "%d-%m-%Y %H:%M:%S", "%d-%m-%Y",
    "%m-%d-%Y %H:%M", "%m-%d-%Y", "%Y/%m/%d", "%Y/%m/%d %H:%M", "%Y/%m/%d %H:%M:%S",
    "%d/%m/%y %H:%M", "%m/%d/%y %H:%M", "%d/%m/%y", "%m/%d/%y",
    "%d %b %Y", "%d %B %Y", "%b %d %Y", "%b %d, %Y", "%B %d, %Y", "%d-%b-%Y", "%d %b %Y %H:%M",
]
# A time-zone designator after a time of day: 10:00Z, 10:00:00+02:00, 10:00:00.123-0500, 10:00 UTC.
_TZ_SUFFIX = re.compile(r"\d:\d\d(?::\d\d(?:\.\d+)?)?\s?(?:Z|[+-]\d{2}(?::?\d{2})?|UTC|GMT)$", re.IGNORECASE)
_NAT = "datetime64[ns]"


def _empty_dates(s: pd.Series) -> pd.Series:
    return pd.Series(pd.NaT, index=s.index, dtype=_NAT)


def _ns(out: pd.Series) -> pd.Series:
    """As ``datetime64[ns]``; dates outside its range (years before 1677 or after 2262, placeholders such as
    0001-01-01) become NaT."""
    if out.dtype == _NAT:
        return out
    try:
        return out.astype(_NAT)
    except (OverflowError, ValueError):  # out of bounds for nanoseconds
        ok = out.notna() & (out >= pd.Timestamp.min) & (out <= pd.Timestamp.max)
        return out.where(ok).astype(_NAT)


def _to_naive(out: pd.Series) -> pd.Series:
    if getattr(out.dt, "tz", None) is not None:
        out = out.dt.tz_convert("UTC").dt.tz_localize(None)
    return _ns(out)


def _mixed(txt: pd.Series, dayfirst: bool) -> pd.Series:
    """The flexible (slow) parser, for a minority of cells or a column no single format fits."""
    try:
        out = pd.to_datetime(txt, errors="coerce", format="mixed", dayfirst=dayfirst, utc=True)
    except (TypeError, ValueError, OverflowError):
        return _empty_dates(txt)
    return _to_naive(out)


def parse_datetime(s: pd.Series) -> pd.Series:
    """Parse a column of dates/timestamps to naive ``datetime64[ns]``.

    Handles text in many formats (the format that parses most of a sample wins; day-first vs month-first decided by the
    data; when every day is 12 or less the day-first reading wins), time-zone offsets (converted to UTC),
    ``YYYYMMDD`` integers, Unix epochs in seconds or milliseconds and Excel serial day numbers. Unparseable cells become
    NaT; :mod:`validation` counts them.
    """
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        return _to_naive(s)
    if pd.api.types.is_bool_dtype(s.dtype):
        return _empty_dates(s)
    if pd.api.types.is_numeric_dtype(s.dtype):
        v = pd.to_numeric(s, errors="coerce").astype("float64")
        nn = v.dropna()
        if nn.empty:
            return _empty_dates(s)
        if nn.between(19000101, 21001231).all() and (nn % 1 == 0).all():
            return _ns(pd.to_datetime(v.astype("Int64").astype("string"), format="%Y%m%d", errors="coerce"))
        if nn.between(1e9, 4.2e9).all():
            return _ns(pd.to_datetime(v, unit="s", errors="coerce"))
        if nn.between(1e12, 4.2e12).all():
            return _ns(pd.to_datetime(v, unit="ms", errors="coerce"))
        if nn.between(20000, 80000).all():  # Excel serial day numbers
            return _ns(pd.to_datetime(v, unit="D", origin="1899-12-30", errors="coerce"))
        return _empty_dates(s)
    txt = s.astype("string").str.strip()
    txt = txt.mask(txt == "")
    nn = txt.dropna()
    if nn.empty:
        return _empty_dates(s)
    sample = nn.sample(min(len(nn), 2000), random_state=0) if len(nn) > 2000 else nn
    dayfirst = bool(sample.str.match(r"^(1[3-9]|2\d|3[01])[/.-]").any())
    if sample.str.contains(_TZ_SUFFIX).mean() > 0.5:
        ok = pd.to_datetime(sample, errors="coerce", format="ISO8601", utc=True)
        if ok.notna().mean() >= 0.98:
            out = _to_naive(pd.to_datetime(txt, errors="coerce", format="ISO8601", utc=True))
            rest = out.isna() & txt.notna()
            if rest.any():
                out[rest] = _mixed(txt[rest], dayfirst)
            return out
        return _mixed(txt, dayfirst)
    best, best_ok = None, 0.0
    for fmt in _DATE_FORMATS:
        try:
            ok = pd.to_datetime(sample, format=fmt, errors="coerce").notna().mean()
        except (TypeError, ValueError, OverflowError):
            continue
        if ok > best_ok:
            best, best_ok = fmt, ok
        if ok == 1.0:
            break
    if best is not None and best_ok >= 0.9:
        out = pd.to_datetime(txt, format=best, errors="coerce")
        out = _to_naive(out)
        rest = out.isna() & txt.notna()
        if rest.any():  # a minority in another format: try the flexible parser on those only
            out[rest] = _mixed(txt[rest], best.startswith("%d") or dayfirst)
        return out
    # No single format fits: the flexible parser, if it reads more of the sample than the best format.
    mixed_ok = _mixed(sample, dayfirst).notna().mean()
    if mixed_ok > best_ok and mixed_ok > 0:
        return _mixed(txt, dayfirst)
    if best is not None and best_ok > 0:
        return _to_naive(pd.to_datetime(txt, format=best, errors="coerce"))
    return _empty_dates(s)


def datetime_share(s: pd.Series, sample: int = 500) -> float:
    """Share of a sample of non-empty cells that parse as dates (used to recognise timestamp columns)."""
    nn = s.dropna()
    if nn.empty:
        return 0.0
    nn = nn.iloc[:sample]
    if pd.api.types.is_datetime64_any_dtype(nn.dtype):
        return 1.0
    if pd.api.types.is_bool_dtype(nn.dtype):
        return 0.0
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
