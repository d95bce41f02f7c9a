"""Bounds every read stays within, checked before a table is built: a small file must not take the machine down.

A 120 KB gzip can hold one 120 MB line of ``0,0,0,...`` (60 million columns); handed to a CSV parser it grows past
20 GB of memory. So an upload is measured before it is parsed:

* decompression is streamed (:class:`Inflation`) and stops as soon as the output passes the expansion limit, a line
  passes the line limit, or the first line holds more delimiters than the column limit: a bomb is stopped after a
  megabyte or so, not after gigabytes;
* text is scanned (:func:`check_text`) for the length of every line and the number of fields of every line long
  enough to hold more fields than the column limit, with C-speed counts over the bytes and no copy of the text;
* Parquet reports its width and row count from its footer (:func:`check_parquet`), Excel the size of its sheets
  from the zip directory (:func:`check_zip_expansion`), before any frame is built.

Every refusal is a :class:`DataError` that says what is wrong and which setting raises the bound.
"""
from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from .errors import DataError

#: Decompressed bytes are handed over in pieces of this size, each checked before the next is made.
CHUNK = 1 << 20
_BLOCK = 1 << 24  # bytes of text scanned at a time for line ends
_CANDIDATES = (b",", b";", b"\t", b"|")
_QUOTED = re.compile(rb'"[^"]*"')
_BINARY_STARTS = (b"PAR1", b"PK\x03\x04", b"\x1f\x8b", b"\xd0\xcf\x11\xe0")


def _mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB"


@dataclass(frozen=True)
class Limits:
    """The bounds of one read, in bytes and columns (see ``read_table`` in :mod:`retention_core.io`)."""

    upload: int              # the file as given (compressed or not)
    max_bytes: int           # the size limit
    expansion: float         # decompressed data may be this many times the size limit ...
    ratio: float             # ... and this many times the upload's own size once past ratio_free bytes
    ratio_free: int
    columns: int             # the widest table read
    line: int                # the longest line of text read, in bytes

    @property
    def by_limit(self) -> int:
        return int(self.max_bytes * self.expansion)

    @property
    def by_ratio(self) -> int:
        return max(self.ratio_free, int(self.upload * self.ratio))

    @property
    def expanded(self) -> int:
        """The most bytes the upload may expand to once decompressed."""
        return min(self.by_limit, self.by_ratio)


def too_big(name: str, limits: Limits) -> DataError:
    """The message for data that expands (or would load) past :attr:`Limits.expanded`."""
    if limits.by_ratio < limits.by_limit:
        return DataError(f"{name} expands more than {limits.ratio:g} times its size ({_mb(limits.upload)} compressed, "
                         f"more than {_mb(limits.by_ratio)} once expanded); real tables expand 5 to 40 times. "
                         "If it is genuine, upload the table uncompressed, or set RETENTION_MAX_RATIO to raise "
                         "the limit.")
    return DataError(f"The compressed file expands to more than {_mb(limits.by_limit)}, over the limit "
                     f"({limits.expansion:g} times the size limit). Split or filter it before uploading.")


def too_wide(name: str, n: int, limits: Limits, *, line: int = 1, at_least: bool = False) -> DataError:
    """The message for a table (or one line of it) with more columns than the limit."""
    more = "more than " if at_least else ""
    what = f"{name} has {more}{n:,} columns" if line == 1 else f"Line {line:,} of {name} has {more}{n:,} fields"
    return DataError(f"{what}; the studio reads at most {limits.columns:,} (set RETENTION_MAX_COLUMNS to raise it). "
                     "Is the delimiter right?")


def too_long(name: str, line: int, limits: Limits, *, length: int | None = None) -> DataError:
    """The message for a line of text longer than the line limit."""
    size = f"{_mb(length)} long" if length is not None else f"longer than {_mb(limits.line)}"
    return DataError(f"Line {line:,} of {name} is {size}; the studio reads lines of at most {_mb(limits.line)} "
                     "(set RETENTION_MAX_LINE_MB to raise it). Is it a table with one row per line?")


class Inflation:
    """Collects decompressed output piece by piece and stops it at the first bound it passes.

    For text it also follows the current line's length and, while the first line is open, how many of each likely
    delimiter it holds, so a one-line bomb is refused for its width after the first megabyte.
    """

    def __init__(self, name: str, limits: Limits):
        self.name, self.limits = name, limits
        self.parts: list[bytes] = []
        self.total = 0
        self.text: bool | None = None      # decided on the first bytes: Parquet, zip, gzip and Office are not
        self.run = 0                       # bytes in the line still open
        self.lines = 0                     # line ends seen
        self.header = dict.fromkeys(_CANDIDATES, 0)

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        self.parts.append(chunk)
        self.total += len(chunk)
        if self.total > self.limits.expanded:
            raise too_big(self.name, self.limits)
        if self.text is None:
            self.text = not chunk.startswith(_BINARY_STARTS)
        if self.text:
            self._follow_lines(chunk)

    def _follow_lines(self, chunk: bytes) -> None:
        first = chunk.find(b"\n")
        if self.lines == 0:  # the first line is still open: count its delimiters
            head = chunk if first < 0 else chunk[:first]
            for d in _CANDIDATES:
                self.header[d] += head.count(d)
            n = max(self.header.values()) + 1
            if n > self.limits.columns:
                raise too_wide(self.name, n if first >= 0 else n - 1, self.limits, at_least=first < 0)
        if first < 0:
            self.run += len(chunk)
        else:
            if self.run + first > self.limits.line:
                raise too_long(self.name, self.lines + 1, self.limits, length=self.run + first)
            self.lines += chunk.count(b"\n")
            self.run = len(chunk) - chunk.rfind(b"\n") - 1
        if self.run > self.limits.line:
            raise too_long(self.name, self.lines + 1, self.limits)

    def value(self) -> bytes:
        out = b"".join(self.parts)
        self.parts = []
        return out


def inflate(pieces: Iterable[bytes], name: str, limits: Limits) -> bytes:
    """Decompressed output gathered from ``pieces`` (each at most :data:`CHUNK` bytes), within ``limits``."""
    guard = Inflation(name, limits)
    for piece in pieces:
        guard.feed(piece)
    return guard.value()


# ------------------------------------------------------------------------------------------------------ text
def _fields(data: bytes, arr: np.ndarray, start: int, end: int, delimiter: str) -> int:
    """Fields in ``data[start:end]``: delimiters outside double quotes + 1 (runs of spaces for ``\\s+``)."""
    if delimiter == r"\s+":
        line = arr[start:end]
        word = (line != 32) & (line != 9) & (line != 13)
        return int(word[0]) + int(np.count_nonzero(word[1:] & ~word[:-1])) if len(line) else 0
    d = delimiter.encode("utf-8")
    n = data.count(d, start, end)
    if n and data.find(b'"', start, end) >= 0:  # rare: recount without the quoted cells (a copy of one line)
        n = _QUOTED.sub(b"", data[start:end]).count(d)
    return n + 1


def check_text(data: bytes, delimiter: str, name: str, limits: Limits) -> None:
    """Refuse text with a line longer than the line limit, or a line with more fields than the column limit.

    ``data`` is the text in an ASCII-compatible encoding (UTF-8, cp1252, latin-1). Line ends are found block by block;
    only lines of at least ``limits.columns`` bytes can hold more fields than the limit, and only those are counted.
    Lines are physical lines: a quoted cell that spans lines is measured piece by piece.
    """
    arr = np.frombuffer(data, dtype=np.uint8)
    wide = min(limits.columns, limits.line + 1)
    line_start, seen = 0, 0  # where the open line starts; line ends before this block
    for block in range(0, len(arr), _BLOCK):
        ends = np.flatnonzero(arr[block:block + _BLOCK] == 10) + block
        starts = np.concatenate(([line_start], ends[:-1] + 1)) if len(ends) else np.empty(0, np.int64)
        for i in np.flatnonzero(ends - starts >= wide):
            _check_line(data, arr, int(starts[i]), int(ends[i]), seen + int(i) + 1, delimiter, name, limits)
        if len(ends):
            line_start = int(ends[-1]) + 1
        seen += len(ends)
    if len(arr) - line_start >= wide:
        _check_line(data, arr, line_start, len(arr), seen + 1, delimiter, name, limits)


def _check_line(data: bytes, arr: np.ndarray, start: int, end: int, line: int, delimiter: str, name: str,
                limits: Limits) -> None:
    if end - start > limits.line:
        raise too_long(name, line, limits, length=end - start)
    n = _fields(data, arr, start, end, delimiter)
    if n > limits.columns:
        raise too_wide(name, n, limits, line=line)


# ------------------------------------------------------------------------------------------------ Parquet, zip
#: A loaded cell takes at least this many bytes (a number; text takes more).
CELL_BYTES = 8


def check_parquet(data: bytes, name: str, limits: Limits) -> None:
    """Refuse, from the footer alone, Parquet wider than the column limit or with more cells than fit the bounds.

    Parquet compresses repeated values to almost nothing (a few kilobytes can hold a billion zeros), so its rows x
    columns, at :data:`CELL_BYTES` each, are held to the same expansion limit as a compressed text file. A footer
    that cannot be read is left to the reader, which explains it.
    """
    import pyarrow.parquet as pq

    try:
        meta = pq.ParquetFile(io.BytesIO(data)).metadata
        columns, rows = meta.num_columns, meta.num_rows
    except Exception:  # damaged: the reader says so
        return
    if columns > limits.columns:
        raise too_wide(name, columns, limits)
    if rows * columns * CELL_BYTES > limits.expanded:
        raise DataError(f"{name} holds {rows:,} rows x {columns:,} columns, at least "
                        f"{_mb(rows * columns * CELL_BYTES)} once loaded: over the limit of {_mb(limits.expanded)} "
                        f"for a {_mb(limits.upload)} file. Filter or sample it first, or set RETENTION_MAX_RATIO "
                        "(and RETENTION_MAX_UPLOAD_MB) to raise the limit.")


def check_zip_expansion(data: bytes, name: str, limits: Limits) -> None:
    """Refuse a zip container (an Excel workbook) whose members together expand past the limit.

    The sizes are those the zip directory declares; the zip reader never returns more than a member declares.
    """
    try:
        total = sum(i.file_size for i in zipfile.ZipFile(io.BytesIO(data)).infolist())
    except Exception:  # damaged: the reader says so
        return
    if total > limits.expanded:
        raise too_big(name, limits)
