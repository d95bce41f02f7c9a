"""Which sheet of a workbook holds the main table, and why: one choice, made here, shown by the app and the CLI.

Workbooks analysts export often open on something other than the data: a cover note, a summary, or a data dictionary
(a few rows naming and describing the columns of the real table on the next sheet). Reading the first sheet with data
turns such a workbook into a 20-row "user table" with no id and no label. :func:`choose_sheet` instead takes the
largest visible sheet that holds a table rather than a description of one, and says why in a short phrase.

It works on the summaries :func:`retention_core.io.excel_sheets` makes (name, hidden, has_data, rows, columns, header
and the first rows), so the choice costs no second read of the workbook.
"""
from __future__ import annotations

from .errors import DataError

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
