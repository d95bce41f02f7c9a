"""Request bodies to tables: the JSON text to a checked :class:`ScoreRequest` (orjson with the rows checked in one
pass, pydantic for anything else), raw rows to the table the file reader would give, feature rows to the model's
input."""
from __future__ import annotations

from itertools import chain
from operator import itemgetter

import numpy as np
import orjson
import pandas as pd
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from ..cells import coerce_types
from ..text_tables import NA_SET
from .schemas import RequestError, ScoreRequest


_DIGITS_AND_POINTS = bytes(ord("9") if chr(i).isdigit() and i < 128 else ord(".") if i == ord(".") else ord(" ")
                           for i in range(256))
_INTEGER_OF_19_DIGITS = b" " + b"9" * 19


def _may_hold_huge_integer(body: bytes) -> bool:
    """Whether the body may hold an integer beyond 64 bits (19 digits or more not after a decimal point), which
    orjson reads as a float where the request model keeps it whole: such bodies go to pydantic. One pass in C (a
    regular expression takes several milliseconds on a 1,000-user body); a long digit run inside a text cell only
    sends the body down the slower path."""
    return _INTEGER_OF_19_DIGITS in body.translate(_DIGITS_AND_POINTS)


_CELL_CLASSES = frozenset({str, int, float, bool, type(None)})
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_FLOAT_MAX = int(np.finfo("float64").max)


def _plain_rows(rows) -> bool:
    """Whether ``rows`` is what the request's ``events``/``users`` field accepts: absent, or a non-empty list of
    objects whose cells are text, numbers, true/false or null (the check the model's ``Cell`` type makes)."""
    if rows is None:
        return True
    if rows.__class__ is not list or not rows or not all(r.__class__ is dict for r in rows):
        return False
    return set(map(type, chain.from_iterable(r.values() for r in rows))) <= _CELL_CLASSES


def parse_request(body: bytes) -> ScoreRequest:
    """The request from its JSON text, checked by :class:`ScoreRequest`.

    The body is read by orjson; when its rows are plain (a list of objects of cells), only the rest of the request
    goes through the model's checks and the rows are checked in one pass over their cell types: a 1,000-user body
    in about a quarter of the time pydantic's own parser takes. Anything else (bad JSON, a wrong type anywhere) is
    parsed by pydantic, whose errors name each field at fault.
    """
    try:
        data = None if _may_hold_huge_integer(body) else orjson.loads(body)
    except orjson.JSONDecodeError:  # pydantic says where the JSON breaks
        data = None
    if data.__class__ is dict and _plain_rows(data.get("events")) and _plain_rows(data.get("users")):
        rows = {f: data.pop(f) for f in ("events", "users") if data.get(f) is not None}
        try:
            return ScoreRequest.model_validate(data).model_copy(update=rows)
        except ValidationError:
            pass  # the full parse below reports it as for any request
    try:
        return ScoreRequest.model_validate_json(body)
    except ValidationError as exc:
        raise RequestValidationError(_cell_errors(exc.errors(include_url=False))) from None


_CELL_TYPES = {"str", "int", "float", "bool", "none"}
NOT_FINITE = ("a finite number: NaN, Infinity and numbers beyond float range (about 1.8e308) are refused; null for a "
              "value that is not known")


def _cell_errors(raw: list[dict]) -> list[dict]:
    """pydantic's errors with one error per cell: a cell is checked against each kind of cell it may be, and fails
    each; a number that is not finite (NaN, Infinity, 1e400) says so rather than that it is no cell."""
    not_finite = {e["loc"][:-1] for e in raw if e["type"] == "finite_number" and e["loc"][-1:] == ("float",)}
    errors, seen = [], set()
    for e in raw:
        loc = ("body", *e["loc"])
        if loc[-1] in _CELL_TYPES:  # one error per kind of cell the value is not: say it once
            loc = loc[:-1]
            e = {**e, "msg": NOT_FINITE, "type": "finite_number"} if e["loc"][:-1] in not_finite else \
                {**e, "msg": "a cell is text, a number, true/false or null", "type": "cell_type"}
        elif e["type"] == "finite_number":
            e = {**e, "msg": NOT_FINITE}
        if loc not in seen:
            seen.add(loc)
            errors.append({**e, "loc": loc})
    return errors


# ----------------------------------------------------------------------------------------------- rows to tables
def events_frame(records: list[dict], field: str = "events") -> pd.DataFrame:
    """JSON rows as the table the file reader would give for the same cells in a CSV: column names trimmed, the
    same missing-value markers ('' 'NA' 'null' ...) missing, then the reader's own typing (:func:`coerce_types`)."""
    columns: dict[str, list] = {}
    n = len(records)
    for i, row in enumerate(records):
        for key, v in row.items():
            col = columns.get(key)
            if col is None:
                col = columns[key] = [None] * n
            if v.__class__ is str:
                if v in NA_SET:
                    v = None
            elif v.__class__ is int and not _INT64_MIN <= v <= _INT64_MAX:
                v = str(v)  # digits beyond 64 bits are text to the file reader too: a long id stays whole
            col[i] = v
    names = [str(c).strip() for c in columns]
    if len(set(names)) < len(names):
        dup = next(name for name in names if names.count(name) > 1)
        raise RequestError(f"two columns are both named {dup!r} once trimmed.", (field,))
    return coerce_types(pd.DataFrame(dict(zip(names, columns.values())), index=pd.RangeIndex(n)))


def feature_frame(rows: list[dict], numeric: list[str], categorical: list[str], field: str = "users"
                  ) -> tuple[list[str], pd.DataFrame]:
    """User ids and the model's input table from feature rows: numbers (null: unknown) and category texts, in the
    columns and types batch scoring gives the model (float64; text or None). Unknown, missing or mistyped features
    raise :class:`RequestError` naming the row and feature."""
    known = {"user_id", *numeric, *categorical}
    for i, row in enumerate(rows):
        if len(row) != len(known) or row.keys() != known:
            _check_keys(row, known, i, field)
    ids = [row["user_id"] for row in rows]
    if not set(map(type, ids)) <= {str, int} or "" in ids:
        i = next(i for i, u in enumerate(ids) if type(u) not in (str, int) or u == "")
        raise RequestError("give the user's id as text or a whole number.", (field, i, "user_id"))
    take = itemgetter(*numeric) if len(numeric) > 1 else (lambda row: tuple(row[c] for c in numeric))
    values = [take(row) for row in rows]
    if not set(map(type, chain.from_iterable(values))) <= {int, float, type(None)}:
        for i, vals in enumerate(values):  # find the first cell that is not a number
            for v, c in zip(vals, numeric):
                _number(v, (field, i, c))
    try:
        num = np.array(values, dtype="float64").reshape(len(rows), len(numeric))  # null -> NaN
    except OverflowError:  # a whole number beyond float range (1e400 written out)
        i, c, v = next((i, c, v) for i, vals in enumerate(values) for v, c in zip(vals, numeric)
                       if v.__class__ is int and abs(v) > _FLOAT_MAX)
        raise RequestError(f"{NOT_FINITE} (got a whole number of {len(str(abs(v)))} digits).", (field, i, c)) from None
    X = pd.DataFrame(num, columns=numeric, copy=False)
    for c in categorical:
        cells = [row[c] for row in rows]
        if set(map(type, cells)) <= {str, type(None)}:  # the usual case, checked in one pass
            X[c] = np.array([v if v is None else (v.strip() or None) for v in cells], dtype=object)
        else:
            X[c] = np.array([_category(v, (field, i, c)) for i, v in enumerate(cells)], dtype=object)
    return [str(u) for u in ids], X


def _check_keys(row: dict, known: set, i: int, field: str) -> None:
    extra = [k for k in row if k not in known]
    if extra:
        raise RequestError(f"{extra[0]!r} is not a feature of this run (GET /v1/model lists them).",
                           (field, i, extra[0]))
    missing = [k for k in known if k not in row]
    raise RequestError("missing: send every feature of the run, null for a value that is not known.",
                       (field, i, sorted(missing)[0] if "user_id" not in missing else "user_id"))


def _number(v, loc: tuple) -> float:
    if v is None:
        return np.nan
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise RequestError(f"a number or null, got {v!r}.", loc)
    return v


def _category(v, loc: tuple):
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (str, int)):
        raise RequestError(f"a text value or null, got {v!r}.", loc)
    v = str(v).strip()
    return v or None
