"""Which sheet of a workbook holds the main table, and why: one choice, made here, shown by the app and the CLI.

Workbooks analysts export often open on something other than the data: a cover note, a summary, or a data dictionary
(a few rows naming and describing the columns of the real table on the next sheet). Reading the first sheet with data
turns such a workbook into a 20-row "user table" with no id and no label. :func:`choose_sheet` instead takes the
largest visible sheet that holds a table rather than a description of one, and says why in a short phrase.

It works on the summaries :func:`excel_sheets` makes (name, hidden, has_data, rows, columns, header and the first
rows), so the choice costs no second read of the workbook. :func:`read_excel` reads the chosen sheet as a frame of
cells, its width checked before pandas builds it.
"""
from __future__ import annotations

import io

import pandas as pd

from . import bounds
from .bounds import Limits
from .errors import DataError
from .text_tables import NA_SET, check_columns, name_columns, short

# Header words of a data dictionary: one naming the fields, one describing them, the rest about them too.
_NAMING = {"column", "columns", "column name", "column_name", "field", "field name", "field_name", "variable",
           "variable name", "variable_name", "attribute", "feature", "name"}
_DESCRIBING = {"description", "descriptions", "definition", "meaning", "explanation", "notes", "note", "comment",
               "comments", "details"}
_ABOUT = {"type", "data type", "data_type", "dtype", "format", "unit", "units", "example", "examples", "values",
          "allowed values", "source", "required", "nullable", "sheet", "table", "#", "no", "no."}


def _norm(v) -> str:
    return str(v).strip().lower() if v is not None else ""


def _named_header(sheet: dict) -> set[str]:
    return {h for h in map(_norm, sheet.get("header") or []) if h}


def describes(sheet: dict, sheets: list[dict]) -> str | None:
    """The name of the sheet whose columns ``sheet`` describes ("" when it reads as a data dictionary of no sheet
    here), or None when it looks like data.

    A description either lists, down one of its first three columns, column names of another sheet (at least two,
    and at least half of the names listed there or of that sheet's columns), or has a header made only of words about
    fields, one naming them and one describing them (``column`` / ``type`` / ``description``, ``field`` / ``meaning``).
    """
    body = sheet.get("sample") or []
    for other in sheets:
        if other is sheet or not other.get("has_data"):
            continue
        names = _named_header(other)
        if len(names) < 2:
            continue
        for j in range(min(3, max((len(r) for r in body), default=0))):
            listed = {_norm(r[j]) for r in body if j < len(r) and isinstance(r[j], str) and r[j].strip()}
            found = len(listed & names)
            if found >= 2 and found >= min(len(listed), len(names)) / 2:
                return other["name"]
    header = _named_header(sheet)
    if header & _NAMING and header & _DESCRIBING and header <= _NAMING | _DESCRIBING | _ABOUT:
        return ""
    return None


def _size(sheet: dict) -> str:
    return f"{sheet['rows']:,} rows x {sheet['columns']:,} columns"


def choose_sheet(sheets: list[dict]) -> tuple[str, str]:
    """(name, why): the sheet holding the main table, and a short phrase saying why it was chosen.

    Visible sheets with data come first (hidden ones only when no visible sheet has data); among them, sheets that
    describe columns rather than hold data step aside; of the rest the one with the most rows (then columns, then the
    first) wins. An explicit choice (``sheet=`` in ``read_table``, ``--sheet`` on the command line) always wins over
    this one.
    """
    with_data = [s for s in sheets if s.get("has_data")]
    if not with_data:
        raise DataError(f"No sheet of this workbook holds data. Sheets: {', '.join(s['name'] for s in sheets)}.")
    visible = [s for s in with_data if not s.get("hidden")]
    pool = visible or with_data
    hidden = [s["name"] for s in with_data if s.get("hidden")] if visible else []
    aside = {s["name"]: describes(s, sheets) for s in pool}
    tables = [s for s in pool if aside[s["name"]] is None] or pool
    order = {s["name"]: i for i, s in enumerate(sheets)}
    best = max(tables, key=lambda s: (s["rows"], s["columns"], -order[s["name"]]))
    if len(pool) == 1:
        why = f"the only {'visible ' if hidden else ''}sheet with data ({_size(best)})"
    elif len(tables) == 1:
        why = f"the sheet with the table ({_size(best)})"
    else:
        ties = [s for s in tables if (s["rows"], s["columns"]) == (best["rows"], best["columns"])]
        why = f"the largest sheet ({_size(best)})" if len(ties) == 1 else \
            f"the first of {len(ties)} sheets of the same size ({_size(best)})"
    for s in pool:
        target = aside[s["name"]]
        if s is best or target is None:
            continue
        if target == best["name"]:
            why += f"; {s['name']!r} describes its columns rather than holding data"
        elif target:
            why += f"; {s['name']!r} describes the columns of {target!r}"
        else:
            why += f"; {s['name']!r} looks like a data dictionary, not data"
    if hidden:
        why += f"; hidden: {', '.join(repr(h) for h in hidden)}"
    return best["name"], why


_SCAN_ROWS = 50          # rows of each sheet looked at (header, width, a sample for choose_sheet)
_COUNT_ROWS = 100_000    # rows counted one by one when a sheet does not record its size


def _trimmed(row: tuple) -> list:
    """A row's values without the empty cells after its last value (spreadsheets pad rows to the used range)."""
    vals = list(row)
    while vals and (vals[-1] is None or (isinstance(vals[-1], str) and not vals[-1].strip())):
        vals.pop()
    return vals


def _sheet_summary(ws) -> dict:
    """has_data, rows below the header, columns, header and a sample of the rows under it, from the first rows (and
    the size the sheet records, or a count of its rows when it records none)."""
    header_at, header, sample, scanned = None, [], [], 0
    for scanned, row in enumerate(ws.iter_rows(max_row=_SCAN_ROWS, values_only=True), start=1):
        vals = _trimmed(row)
        if header_at is None:
            if vals:  # tables often start below a title or a few blank rows
                header_at, header = scanned, vals
        elif vals:
            sample.append(vals)
    if header_at is None:
        return {"has_data": False, "rows": 0, "columns": 0, "header": [], "sample": []}
    rows = len(sample)
    if scanned >= _SCAN_ROWS:  # more rows below: the size the sheet records, else a count
        if ws.max_row is not None:
            rows = max(rows, ws.max_row - header_at)
        else:
            rows += sum(1 for r in ws.iter_rows(min_row=_SCAN_ROWS + 1, max_row=_COUNT_ROWS, values_only=True)
                        if _trimmed(r))
    columns = max(len(v) for v in [header, *sample])
    return {"has_data": True, "rows": rows, "columns": columns, "header": header, "sample": sample}


def excel_sheets(data: bytes) -> list[dict]:
    """The sheets of an .xlsx workbook: name, visibility, whether it has data, and for :func:`choose_sheet` its size
    (rows below the header, columns), header and first rows."""
    import openpyxl  # loaded when a workbook arrives: most uploads are text

    try:
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for broken files
        raise DataError(f"This Excel file cannot be opened ({short(exc)}). Save it again as .xlsx or export CSV.") from None
    out = []
    try:
        for ws in wb.worksheets:
            out.append({"name": ws.title, "hidden": ws.sheet_state != "visible", **_sheet_summary(ws)})
    except Exception as exc:
        raise DataError(f"This Excel file is damaged ({short(exc)}). Save it again as .xlsx or export CSV.") from None
    finally:
        wb.close()
    return out


def _pick_sheet(sheets: list[dict], name: str, sheet: str | int | None) -> tuple[str, str]:
    """(sheet, why): the sheet asked for (by name or number), else the one :func:`choose_sheet` picks."""
    names = [s["name"] for s in sheets]
    if sheet is None:
        if not any(s["has_data"] for s in sheets):
            raise DataError(f"{name}: no sheet of this workbook holds data. Sheets: {', '.join(names)}.")
        return choose_sheet(sheets)
    if isinstance(sheet, int) and not isinstance(sheet, bool) and sheet not in names:
        if not 0 <= sheet < len(names):
            raise DataError(f"{name} has {len(names)} sheet(s); there is no sheet number {sheet + 1}. "
                            f"Sheets: {', '.join(names)}.")
        return names[sheet], "the sheet asked for"
    if sheet not in names:
        raise DataError(f"{name} has no sheet named {sheet!r}. Sheets: {', '.join(names)}.")
    return sheet, "the sheet asked for"


def read_excel(data: bytes, name: str, sheet: str | int | None, limits: Limits) -> tuple[pd.DataFrame, dict]:
    """The sheet asked for, or the main table, as a frame of cells; its width checked before pandas builds it."""
    bounds.check_zip_expansion(data, name, limits)
    sheets = excel_sheets(data)
    sheet, why = _pick_sheet(sheets, name, sheet)
    width = next(s["columns"] for s in sheets if s["name"] == sheet)
    if width > limits.columns:
        raise bounds.too_wide(f"Sheet {sheet!r} of {name}", width, limits)
    try:
        raw = pd.read_excel(io.BytesIO(data), sheet_name=sheet, header=None, dtype=object, engine="openpyxl")
    except Exception as exc:
        raise DataError(f"Sheet {sheet!r} of {name} cannot be read ({short(exc)}). Save it again as .xlsx or export CSV.") from None
    raw = raw.map(lambda v: None if isinstance(v, str) and v.strip() in NA_SET else v)
    raw = raw.dropna(how="all").dropna(axis=1, how="all")
    if raw.empty:
        raise DataError(f"Sheet {sheet!r} of {name} is empty. Pick another sheet.")
    if raw.shape[1] > limits.columns:
        raise bounds.too_wide(f"Sheet {sheet!r} of {name}", raw.shape[1], limits)
    header = name_columns(raw.iloc[0].tolist())
    check_columns(header)
    df = raw.iloc[1:].reset_index(drop=True)
    df.columns = header
    return df, {"sheet": sheet, "sheets": [s["name"] for s in sheets], "reason": why}
