"""Read the tables analysts really have: CSV/TSV/semicolon/pipe/whitespace text, gzip or zip, Parquet, Excel.

The one entry point is :func:`read_table`. It accepts a path or the raw bytes of an upload, detects the format from the
content (not only the file name), the text encoding (UTF-8 with or without BOM, then cp1252, then latin-1) and the
delimiter, and refuses with a :class:`DataError` anything that is not a usable table. Values that are clearly numbers
become numbers (thousands separators and currency signs allowed); identifiers with leading zeros, identifiers too
long for a 64-bit integer and dates stay text until :func:`parse_datetime` turns dates into timestamps. Nothing read
is ever executed or unpickled. Every read stays within bounds checked before parsing (size, expansion, columns, line
length: :mod:`retention_core.bounds`), and a workbook is read on the sheet that holds its main table
(:func:`retention_core.sheets.choose_sheet`), with the reason in ``read_info``.
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

import pandas as pd
import pyarrow as pa

from . import bounds
from .bounds import Limits
from .errors import DataError
from .cells import coerce_types
from .sheets import read_excel
from .text_tables import blank, check_columns, read_text, short

Source = Union[str, os.PathLike, bytes, bytearray, BinaryIO]

DEFAULT_MAX_MB = float(os.environ.get("RETENTION_MAX_UPLOAD_MB", "500"))
#: Decompressed data may be at most this many times the size limit (guards against zip bombs).
MAX_EXPANSION = float(os.environ.get("RETENTION_MAX_EXPANSION", "20"))
#: ... and, once past RATIO_FREE_MB, at most this many times the compressed file's own size: real tables expand 5 to
#: 40 times (an all-empty table about 40), a bomb about 1,000 times. Parquet's rows x columns are held to it too.
MAX_RATIO = float(os.environ.get("RETENTION_MAX_RATIO", "100"))
RATIO_FREE_MB = 20.0
#: The widest table read; wider files are refused before they are parsed (a one-line gzip bomb is 60M columns wide).
DEFAULT_MAX_COLUMNS = int(os.environ.get("RETENTION_MAX_COLUMNS", "5000"))
#: The longest line of text read (MB); a longer line is refused before it is parsed.
DEFAULT_MAX_LINE_MB = float(os.environ.get("RETENTION_MAX_LINE_MB", "10"))
_TEXT_SUFFIXES = {".csv", ".tsv", ".txt", ".dat", ".tab", ".psv"}
_TABLE_SUFFIXES = _TEXT_SUFFIXES | {".parquet", ".pq", ".xlsx", ".xlsm", ".gz"}
# Formats people upload by mistake, recognised by their first bytes.


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
    sheet_reason: str | None = None   # why this sheet was read (see choose_sheet)
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


def _gzip_pieces(data: bytes):
    """The decompressed bytes of a gzip file (every member of it), a piece at a time."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as fh:
            while piece := fh.read(bounds.CHUNK):
                yield piece
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"The gzip file is damaged and cannot be decompressed ({short(exc)}). Export it again.") from None


def _decompress_gzip(data: bytes, name: str, limits: Limits) -> bytes:
    return bounds.inflate(_gzip_pieces(data), name, limits)


def _zip_pieces(zf: zipfile.ZipFile, member: zipfile.ZipInfo):
    try:
        with zf.open(member) as fh:
            while piece := fh.read(bounds.CHUNK):
                yield piece
    except (RuntimeError, NotImplementedError):  # encrypted or an unsupported compression method
        raise DataError(f"{member.filename} inside the zip is encrypted or compressed in a way that is not "
                        "supported. Zip it again without a password.") from None
    except Exception:
        raise DataError("The zip file is damaged and cannot be decompressed. Export it again.") from None


def _zip_member(data: bytes, name: str, limits: Limits) -> tuple[bytes, str]:
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
    if member.file_size > limits.expanded:
        raise bounds.too_big(name, limits)
    return bounds.inflate(_zip_pieces(zf, member), name, limits), member.filename


def _is_xlsx(data: bytes) -> bool:
    try:
        return "xl/workbook.xml" in zipfile.ZipFile(io.BytesIO(data)).namelist()
    except Exception:
        return False


def _looks_like_office(data: bytes, name: str) -> bool:
    """A zip that is probably a (damaged) Excel workbook, judged by its name or the member names it starts with."""
    return Path(name).suffix.lower() in (".xlsx", ".xlsm") or \
        re.search(rb"PK\x03\x04.{26}(?:\[Content_Types\]\.xml|docProps/|xl/)", data[:65536], re.DOTALL) is not None


def _read_parquet(data: bytes, name: str, limits: Limits) -> pd.DataFrame:
    import pyarrow.parquet as pq

    bounds.check_parquet(data, name, limits)
    try:
        table = pq.read_table(io.BytesIO(data))
        check_columns(table.column_names)
        return table.to_pandas()
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"{name} is not a readable Parquet file ({short(exc)}). Export it again.") from None


def read_table(source: Source, *, name: str | None = None, sheet: str | int | None = None,
               max_mb: float | None = None, max_columns: int | None = None,
               max_line_mb: float | None = None) -> pd.DataFrame:
    """Read a table from a path or uploaded bytes.

    The result carries ``df.attrs["read_info"]`` (a :class:`ReadInfo` as a dict) and ``df.attrs["digest"]``.
    Raises :class:`DataError` with an analyst-readable message for anything that is not a usable table, and for
    anything past the bounds (checked before parsing, see :mod:`retention_core.bounds`): ``max_mb`` for the file
    (``RETENTION_MAX_UPLOAD_MB``), ``MAX_EXPANSION`` and ``MAX_RATIO`` once decompressed, ``max_columns`` for the
    width (``RETENTION_MAX_COLUMNS``) and ``max_line_mb`` for one line of text (``RETENTION_MAX_LINE_MB``).
    """
    max_bytes = int((max_mb if max_mb is not None else DEFAULT_MAX_MB) * 1e6)
    if isinstance(source, (str, os.PathLike)) and Path(source).is_dir():  # a partitioned Parquet dataset
        return read_parquet_folder(source, name=name, max_bytes=max_bytes)
    data, src_name = _load_bytes(source, max_bytes)
    name = name or src_name
    if blank(data):
        raise DataError(f"{name} is empty. Upload a file with a header row and at least one row of data.")
    info = ReadInfo(name=name, format="csv", size_bytes=len(data))
    limits = Limits(upload=len(data), max_bytes=max_bytes, expansion=MAX_EXPANSION, ratio=MAX_RATIO,
                    ratio_free=int(RATIO_FREE_MB * 1e6),
                    columns=int(max_columns if max_columns is not None else DEFAULT_MAX_COLUMNS),
                    line=int((max_line_mb if max_line_mb is not None else DEFAULT_MAX_LINE_MB) * 1e6))
    payload = _unpack(data, name, limits, info)
    if blank(payload):
        raise DataError(f"{name} is empty. Upload a file with a header row and at least one row of data.")
    check_memory(len(payload), name, compressed=payload[:4] == b"PAR1" or payload[:4] == b"PK\x03\x04")
    try:
        df, info = _parse(payload, name, sheet, info, limits)
    except MemoryError:
        raise DataError(f"{name} is too large to load in the memory this machine has free. Filter or sample it "
                        "first (fewer rows or columns).") from None
    df.attrs["read_info"] = info.as_dict()
    df.attrs["digest"] = digest(data)
    return df


def _unpack(data: bytes, name: str, limits: Limits, info: ReadInfo) -> bytes:
    """The file inside gzip or zip compression, decompressed within ``limits``.

    Two layers are read (a gzip inside a gzip or a zip, as a double export makes); a zip inside anything, or a third
    layer, is refused: nothing a spreadsheet or a database writes looks like that.
    """
    payload, layers = data, []
    while True:
        if payload[:2] == b"\x1f\x8b":
            if len(layers) == 2:
                raise DataError(f"{name} is compressed three times or more. Decompress it and upload the table "
                                "(compressed once at most).")
            payload = _decompress_gzip(payload, name, limits)
            layers.append("gzip")
        elif payload[:4] == b"PK\x03\x04" and not _is_xlsx(payload):
            if layers:
                raise DataError(f"{name}: the {layers[-1]} file holds a zip file. Upload the table itself, "
                                "compressed once at most.")
            if _looks_like_office(payload, name) and not _zip_lists_tables(payload):
                raise DataError(f"{name} looks like an Excel file but it is damaged and cannot be opened. "
                                "Open it in Excel and save it again as .xlsx, or export CSV.")
            payload, _inner = _zip_member(payload, name, limits)
            layers.append("zip")
        elif payload[:4] in (b"PK\x05\x06", b"PK\x07\x08") and not layers:
            raise DataError(f"{name} is an empty zip file. Put one CSV, Parquet or Excel file in it.")
        else:
            break
    info.compression = " + ".join(layers) or None
    return payload


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
        raise DataError(f"{name}: its Parquet files cannot be read as one table ({short(exc)}).") from None
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


def _parse(payload: bytes, name: str, sheet, info: ReadInfo, limits: Limits):
    if payload[:4] == b"PAR1":
        info.format = "parquet"
        df = _read_parquet(payload, name, limits)
    elif payload[:4] == b"PK\x03\x04":  # an Excel workbook (any other zip was opened by _unpack)
        info.format = "excel"
        df, extra = read_excel(payload, name, sheet, limits)
        info.sheet, info.sheets, info.sheet_reason = extra["sheet"], extra["sheets"], extra["reason"]
    elif payload[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise DataError(f"{name} is an old Excel (.xls) or other Office file. Save it as .xlsx or CSV and upload that.")
    else:
        df, extra = read_text(payload, name, limits)
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


