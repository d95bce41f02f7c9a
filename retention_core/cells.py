"""Value types of cells read as text: clear numbers become numbers (thousands separators and currency signs allowed),
identifiers with leading zeros or too long for a 64-bit integer stay text, and :func:`parse_datetime` turns the many
ways dates are written into timestamps.
"""
from __future__ import annotations

import re
from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

_NUMBERISH = r"^[-+]?\s?[$£€¥]?\s?[-+]?[\d.,]*\d[\d.,]*(?:[eE][-+]?\d+)?\s?[$£€¥]?$"
_INT = r"^[-+]?\d+$"
_PLAIN_INT = r"^-?(?:0|[1-9]\d*)$"  # no sign to strip, no leading zero: what _INT keeps as a number, as is
_FLOAT = r"^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$"
_US_NUMBER = r"^[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?$"  # 1,234.50 (comma groups thousands)
_EU_NUMBER = r"^[-+]?(?:\d{1,3}(?:\.\d{3})+|\d+)(?:,\d+)?$"  # 1.234,50 (comma marks decimals)
_CURRENCY = r"[$£€¥]"
_LEADING_ZERO = r"^[-+]?0\d"


def _all(arr: pa.Array, pattern: str) -> bool:
    return bool(pc.all(pc.match_substring_regex(arr, pattern)).as_py())


def _any(arr: pa.Array, pattern: str) -> bool:
    return bool(pc.any(pc.match_substring_regex(arr, pattern)).as_py())


_AFTER_CURRENCY = r"^[-+]?[\d.,]*\d[\d.,]*(?:[eE][-+]?\d+)?$"
STRIP_CURRENCY = r"\s?[$£€¥]\s?"
#: The patterns that decide whether a column of text cells holds numbers and how they are written
#: (:func:`number_reading`), each tested at one step of reading a cell: ``raw`` (stripped), ``unpriced`` (currency
#: signs and the space beside them removed, ``STRIP_CURRENCY``), ``bare`` (then a leading ``+`` removed). The Spark
#: engine tests the same patterns on a whole log.
NUMBER_FACTS = {"plain_int": ("raw", _PLAIN_INT), "numberish": ("raw", _NUMBERISH), "currency": ("raw", _CURRENCY),
                "after_currency": ("unpriced", _AFTER_CURRENCY), "leading_zero": ("bare", _LEADING_ZERO),
                "int": ("bare", _INT), "float": ("bare", _FLOAT), "us": ("bare", _US_NUMBER),
                "eu": ("bare", _EU_NUMBER), "comma": ("bare", ",")}


def number_reading(every, some) -> str | None:
    """How :func:`coerce_types` reads a column of text cells: ``"int"``, ``"float"``, ``"us"`` (``1,234.50``: drop the
    commas), ``"eu"`` (``1.234,50``: drop the points, the comma marks decimals) of the ``bare`` cells, or None (the
    column stays text). ``every(fact)`` / ``some(fact)``: whether every / some cell matches ``NUMBER_FACTS[fact]``;
    ``every("read:" + kind)``: whether every cell read that way is a finite number (for ``int``, one within 64 bits).

    One rule for every reader: Arrow's (:func:`_parse_numbers`), Python's for a few cells (:func:`_parse_few`) and the
    Spark engine's, which decides it from the facts of a whole log."""
    if every("plain_int"):  # the commonest column, decided without the rest
        return "int" if every("read:int") else None
    if not every("numberish") or (some("currency") and not every("after_currency")) or some("leading_zero"):
        return None
    for kind, comma in (("int", False), ("float", False), ("us", True), ("eu", True)):
        if every(kind) and (not comma or some("comma")):
            return kind if every("read:" + kind) else None
    return None


class _ArrowCells:
    """The facts of :func:`number_reading` about non-null, stripped Arrow text cells, computed when asked, and the
    numbers they hold."""

    def __init__(self, valid: pa.Array):
        n = len(valid)
        # cheap rejection on a spread-out sample first: most text columns fail on their first cells
        self.probe = valid.take(pa.array(np.unique(np.linspace(0, n - 1, min(n, 1000)).astype(np.int64))))
        self.steps, self.numbers = {"raw": valid}, {}

    def step(self, name: str) -> pa.Array:
        if name not in self.steps:
            if name == "unpriced":
                raw = self.steps["raw"]
                self.steps[name] = pc.replace_substring_regex(raw, STRIP_CURRENCY, "") if self.some("currency") \
                    else raw
            else:
                self.steps[name] = pc.replace_substring_regex(self.step("unpriced"), r"^\+", "")
        return self.steps[name]

    def every(self, fact: str) -> bool:
        if fact.startswith("read:"):
            return self.read(fact[5:]) is not None
        step, pattern = NUMBER_FACTS[fact]
        return (step != "raw" or _all(self.probe, pattern)) and _all(self.step(step), pattern)

    def some(self, fact: str) -> bool:
        step, pattern = NUMBER_FACTS[fact]
        return _any(self.step(step), pattern)

    def read(self, kind: str) -> np.ndarray | None:
        if kind not in self.numbers:
            bare, out = self.step("bare"), None
            if kind == "us":
                bare = pc.replace_substring(bare, ",", "")
            elif kind == "eu":
                bare = pc.replace_substring(pc.replace_substring(bare, ".", ""), ",", ".")
            try:
                out = pc.cast(bare, pa.int64() if kind == "int" else pa.float64()).to_numpy(zero_copy_only=False)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # an integer beyond 64 bits: an identifier
                pass
            self.numbers[kind] = out if out is None or kind == "int" or np.isfinite(out).all() else None
        return self.numbers[kind]  # 1E999 is not a number a person meant


def _parse_numbers(valid: pa.Array) -> np.ndarray | None:
    """The numbers written in ``valid`` (non-null, stripped text) or None when any cell is not a number.

    Accepts ``1234``, ``-12.5``, ``1e3``, ``1,234.50``, ``1.234,50``, ``12,50`` and a currency sign before or after.
    Identifiers with leading zeros and integers beyond 64 bits are not numbers (:func:`number_reading`).
    """
    cells = _ArrowCells(valid)
    kind = number_reading(cells.every, cells.some)
    return None if kind is None else cells.read(kind)


_TEXT = pd.StringDtype("pyarrow", na_value=np.nan)  # pandas' default text type ("str")


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


def _text_cells(s: pd.Series) -> pa.Array:
    """The cells of ``s`` as one Arrow text array, stripped, empty cells missing.

    Columns the Arrow reader made are used as they are (no pandas round trip: a 2,000-column table is read several
    times faster); other columns are turned into text first.
    """
    if isinstance(s.array, pd.arrays.ArrowStringArray):
        arr = pa.array(s.array)
    else:
        try:
            txt = s.astype("string")
        except (TypeError, ValueError):  # objects pandas cannot turn into text directly (bytes, nested values)
            txt = s.map(lambda v: None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)).astype("string")
        arr = pa.array(txt.array) if isinstance(txt.array, pd.arrays.ArrowStringArray) else \
            pa.array(txt.to_numpy(dtype=object, na_value=None), type=pa.large_string())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    arr = pc.utf8_trim_whitespace(arr)  # what pandas' str.strip() does on Arrow text
    return pc.if_else(pc.equal(arr, ""), pa.nulls(len(arr), arr.type), arr)


#: Text columns up to this many rows whose cells are printable ASCII are typed in Python (:func:`_coerce_few`): a
#: scoring request's few dozen cells cost more to hand to Arrow than to check one by one.
FEW_CELLS = 256
_PY = {name: (step, re.compile(pattern)) for name, (step, pattern) in NUMBER_FACTS.items()}
_INT64 = (-2**63, 2**63 - 1)


def _few_cells(s: pd.Series) -> list[str | None] | None:
    """The cells of a short column of text as :func:`_text_cells` gives them (stripped, empty = None), or None when
    a cell is not missing and not printable ASCII text: there Python's and Arrow's rules (white space, digits, line
    ends) are the same, so both paths type the column the same (tested)."""
    out: list[str | None] = []
    for v in s.tolist():
        if v is None or v is pd.NA or (v.__class__ is float and v != v):
            out.append(None)
        elif v.__class__ is str and v.isascii() and v.isprintable():
            out.append(v.strip(" ") or None)
        else:
            return None
    return out


def _parse_few(valid: list[str]) -> np.ndarray | None:
    """:func:`_parse_numbers` for a few printable ASCII cells, in Python: the same rule and the same answers."""
    steps = {"raw": valid}

    def cells(step: str) -> list[str]:  # the cells at a step of reading, made when first asked for
        if step not in steps:
            strip = re.compile(STRIP_CURRENCY)
            steps["unpriced"] = [strip.sub("", v) for v in valid]
            steps["bare"] = [v[1:] if v.startswith("+") else v for v in steps["unpriced"]]
        return steps[step]

    def some(fact: str) -> bool:
        step, pattern = _PY[fact]
        return any(pattern.search(v) for v in cells(step))

    def every(fact: str) -> bool:
        if fact.startswith("read:"):
            return read(fact[5:]) is not None
        step, pattern = _PY[fact]
        return all(pattern.search(v) for v in cells(step))

    def read(kind: str) -> np.ndarray | None:
        bare = cells("bare")
        if kind == "int":
            ints = [int(v) for v in bare]
            return np.array(ints, dtype=np.int64) if all(_INT64[0] <= i <= _INT64[1] for i in ints) else None
        texts = {"float": bare, "us": [v.replace(",", "") for v in bare],
                 "eu": [v.replace(".", "").replace(",", ".") for v in bare]}[kind]
        values = np.array([float(v) for v in texts], dtype="float64")
        return values if np.isfinite(values).all() else None

    kind = number_reading(every, some)
    return None if kind is None else read(kind)


def _coerce_few(s: pd.Series) -> pd.Series | None:
    """:func:`_coerce_text` for a short column of printable ASCII text (None for any other column)."""
    cells = _few_cells(s)
    if cells is None:
        return None
    present = np.array([c is not None for c in cells], dtype=bool)
    if not present.any():
        return pd.Series([None] * len(s), index=s.index, dtype=object)
    values = _parse_few([c for c in cells if c is not None])
    if values is None:
        return pd.Series(cells, index=s.index, name=s.name, dtype=_TEXT)
    return _numbers_to_series(values, present, s.index)


def _coerce_text(s: pd.Series) -> pd.Series:
    if len(s) <= FEW_CELLS:
        few = _coerce_few(s)
        if few is not None:
            return few
    return _coerce_arrow(s)


def _coerce_arrow(s: pd.Series) -> pd.Series:
    arr = _text_cells(s)
    valid = arr.is_valid()
    present = np.asarray(valid.to_numpy(zero_copy_only=False), dtype=bool)
    if not present.any():
        return pd.Series([None] * len(s), index=s.index, dtype=object)
    values = _parse_numbers(arr.filter(valid))
    if values is None:
        return pd.Series(_TEXT.__from_arrow__(arr), index=s.index, name=s.name)
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
DATE_FORMATS = [
    "ISO8601", "%Y%m%d",
    "%d/%m/%Y %H:%M", "%m/%d/%Y %H:%M", "%d/%m/%Y %H:%M:%S", "%m/%d/%Y %H:%M:%S", "%d/%m/%Y", "%m/%d/%Y",
    "%d.%m.%Y %H:%M", "%d.%m.%Y %H:%M:%S", "%d.%m.%Y", "%d-%m-%Y %H:%M", "%d-%m-%Y %H:%M:%S", "%d-%m-%Y",
    "%m-%d-%Y %H:%M", "%m-%d-%Y", "%Y/%m/%d", "%Y/%m/%d %H:%M", "%Y/%m/%d %H:%M:%S",
    "%d/%m/%y %H:%M", "%m/%d/%y %H:%M", "%d/%m/%y", "%m/%d/%y",
    "%d %b %Y", "%d %B %Y", "%b %d %Y", "%b %d, %Y", "%B %d, %Y", "%d-%b-%Y", "%d %b %Y %H:%M",
]
# A time-zone designator after a time of day: 10:00Z, 10:00:00+02:00, 10:00:00.123-0500, 10:00 UTC.
TZ_SUFFIX = re.compile(r"\d:\d\d(?::\d\d(?:\.\d+)?)?\s?(?:Z|[+-]\d{2}(?::?\d{2})?|UTC|GMT)$", re.IGNORECASE)
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


def to_naive(out: pd.Series) -> pd.Series:
    if getattr(out.dt, "tz", None) is not None:
        out = out.dt.tz_convert("UTC").dt.tz_localize(None)
    return _ns(out)


def mixed_dates(txt: pd.Series, dayfirst: bool) -> pd.Series:
    """The flexible (slow) parser, for a minority of cells or a column no single format fits."""
    try:
        out = pd.to_datetime(txt, errors="coerce", format="mixed", dayfirst=dayfirst, utc=True)
    except (TypeError, ValueError, OverflowError):
        return _empty_dates(txt)
    return to_naive(out)


_ISO_DAY_TIME = re.compile(r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)?")


def _few_iso_dates(s: pd.Series) -> pd.Series | None:
    """:func:`parse_datetime` for a short column whose every non-empty cell is a valid ISO date or date and time
    without a time zone (``2011-06-30``, ``2011-06-30 10:05:00``), read in Python; None for any other column.

    Such a column is read in full by the first format tried (``ISO8601``), so the general path gives these very
    values (tested); a request's 50 cells cost less in Python than the half dozen pandas steps of that path.
    """
    cells = _few_cells(s)
    if cells is None or all(c is None for c in cells):
        return None
    out = []
    for c in cells:
        if c is None:
            out.append(None)
            continue
        if _ISO_DAY_TIME.fullmatch(c) is None:
            return None
        try:
            out.append(datetime.fromisoformat(c))
        except ValueError:  # 2011-02-30: the general path decides what such a column is
            return None
    return pd.Series(np.array(out, dtype="datetime64[ns]"), index=s.index, name=s.name)


def parse_datetime(s: pd.Series) -> pd.Series:
    """Parse a column of dates/timestamps to naive ``datetime64[ns]``.

    Handles text in many formats (the format that parses most of a sample wins; day-first vs month-first decided by the
    data; when every day is 12 or less the day-first reading wins), time-zone offsets (converted to UTC),
    ``YYYYMMDD`` integers, Unix epochs in seconds or milliseconds and Excel serial day numbers. Unparseable cells become
    NaT; :mod:`validation` counts them.
    """
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        return to_naive(s)
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
    if len(s) <= FEW_CELLS:
        few = _few_iso_dates(s)
        if few is not None:
            return few
    txt = date_text(s)
    return read_text_dates(txt, text_date_rule(txt))


def date_text(s: pd.Series) -> pd.Series:
    """A column of dates written as text, stripped, empty cells missing: what :func:`text_date_rule` decides on and
    :func:`read_text_dates` reads."""
    txt = s.astype("string").str.strip()
    return txt.mask(txt == "")


def text_date_rule(txt: pd.Series) -> dict:
    """How to read a column of dates written as text (:func:`date_text`), decided on a sample of its cells: ISO with
    time zones (``iso_tz``), one format for most cells (``format``; the rest by the flexible parser), one format only
    (``format_only``), the flexible parser (``mixed``), or nothing readable (``none``). The Spark engine decides on a
    sample with it and reads its partitions with :func:`read_text_dates`."""
    nn = txt.dropna()
    if nn.empty:
        return {"kind": "none"}
    sample = nn.sample(min(len(nn), 2000), random_state=0) if len(nn) > 2000 else nn
    dayfirst = bool(sample.str.match(r"^(1[3-9]|2\d|3[01])[/.-]").any())
    if sample.str.contains(TZ_SUFFIX).mean() > 0.5:
        ok = pd.to_datetime(sample, errors="coerce", format="ISO8601", utc=True)
        return {"kind": "iso_tz" if ok.notna().mean() >= 0.98 else "mixed", "dayfirst": dayfirst}
    best, best_ok = None, 0.0
    for fmt in DATE_FORMATS:
        try:
            ok = pd.to_datetime(sample, format=fmt, errors="coerce").notna().mean()
        except (TypeError, ValueError, OverflowError):
            continue
        if ok > best_ok:
            best, best_ok = fmt, ok
        if ok == 1.0:
            break
    if best is not None and best_ok >= 0.9:
        return {"kind": "format", "fmt": best, "dayfirst": best.startswith("%d") or dayfirst}
    # No single format fits: the flexible parser, if it reads more of the sample than the best format.
    mixed_ok = mixed_dates(sample, dayfirst).notna().mean()
    if mixed_ok > best_ok and mixed_ok > 0:
        return {"kind": "mixed", "dayfirst": dayfirst}
    if best is not None and best_ok > 0:
        return {"kind": "format_only", "fmt": best}
    return {"kind": "none"}


def read_text_dates(txt: pd.Series, rule: dict) -> pd.Series:
    """Naive ``datetime64[ns]`` of a column of dates written as text (:func:`date_text`) read with ``rule``
    (:func:`text_date_rule`); a minority in another format goes to the flexible parser."""
    kind = rule["kind"]
    if kind == "none":
        return _empty_dates(txt)
    if kind == "mixed":
        return mixed_dates(txt, rule["dayfirst"])
    if kind == "iso_tz":
        out = to_naive(pd.to_datetime(txt, errors="coerce", format="ISO8601", utc=True))
    else:
        out = to_naive(pd.to_datetime(txt, format=rule["fmt"], errors="coerce"))
    rest = out.isna() & txt.notna()
    if kind != "format_only" and rest.any():
        out[rest] = mixed_dates(txt[rest], rule["dayfirst"])
    return out


def datetime_share(s: pd.Series, sample: int = 500) -> float:
    """Share of a sample of non-empty cells that parse as dates (used to recognise timestamp columns)."""
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        # numbers are dates only as YYYYMMDD: decided on plain arrays (called once per column of wide tables)
        v = s.to_numpy(dtype="float64", na_value=np.nan)
        v = v[~np.isnan(v)][:sample]
        if v.size and ((v >= 19000101) & (v <= 21001231)).all() and (v % 1 == 0).all() and np.unique(v).size > 1:
            return float(parse_datetime(s.dropna().iloc[:sample]).notna().mean())
        return 0.0
    nn = s.dropna()
    if nn.empty:
        return 0.0
    nn = nn.iloc[:sample]
    if pd.api.types.is_datetime64_any_dtype(nn.dtype):
        return 1.0
    if pd.api.types.is_bool_dtype(nn.dtype):
        return 0.0
    txt = nn.astype(str)
    if not txt.str.contains(r"\d").all() or txt.str.len().max() > 40:
        return 0.0
    if not txt.str.contains(r"[-/.:]|\d{8}|[A-Za-z]{3}").mean() > 0.9:
        return 0.0
    return float(parse_datetime(nn).notna().mean())
