"""Columns of a user table that identify a customer rather than describe one: never features unless put back.

The one rule, used by :func:`retention_core.roles.infer_schema` (and through the schema by every door that turns a
user table into features: the app, the command line, the benchmark). A column is an identifier when it is

- a **row number**: whole numbers, each once, evenly spaced (``1, 2, ..., n``; an exported index ``0 .. n-1``; a
  running number in steps of 10), in row order or shuffled;
- an **id**: whole numbers or text under an id-like name (``CustomerId``, ``member_no``, ``email``) with a different
  value in more than half of the rows;
- **names or codes**: text (not dates, not numbers written as text) with a value in (nearly) every row, or with more
  distinct values than a category can have and a handful of rows per value (a ``Surname`` column: a few thousand
  names in 10,000 rows).

Numbers with fractions (a balance, a salary) are never identifiers, however distinct: they measure. Whole numbers
without an id-like name that are not evenly spaced (a credit score, a count) are kept too. Each reason is worded for
the data report, so the analyst sees why and can put the column back.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from .cells import datetime_share

MIN_ROWS = 20  # fewer rows than this say too little about a column
MAX_CATEGORY_LEVELS = 50  # text with more distinct values than this is no category (as the user-table features say)
ROWS_PER_NAME = 5  # text with more levels than a category and at most this many rows per value on average: names

_ID_WORDS = "id|uuid|guid|key|email|mail|phone|mobile|name|number|no|code|ref|reference|token|ip"
_ID_LIKE = re.compile(rf"(?:^|[^a-z0-9])(?:{_ID_WORDS})$")
_ID_CAMEL = re.compile(r"[a-z0-9](?:ID|Id|Uuid|UUID|Key|Email|Phone|Name|Number|No|Code|Ref)$")


def id_name(col) -> bool:
    """A name that says identifier: ``id``, ``customer_id``, ``memberNo``, ``RowNumber``, ``e-mail``..."""
    name = str(col).strip()
    bare = re.sub(r"[^a-z0-9]", "", name.lower())
    return bare in ("id", "uuid", "guid", "email", "phone", "name") or bool(_ID_LIKE.search(name.lower())) \
        or bool(_ID_CAMEL.search(name))


def _nunique(s: pd.Series) -> int:
    try:
        return int(s.nunique(dropna=True))
    except TypeError:  # unhashable cells (lists, dicts)
        return int(s.dropna().astype(str).nunique())


def _is_text(s: pd.Series) -> bool:
    return s.dtype == object or pd.api.types.is_string_dtype(s.dtype) or isinstance(s.dtype, pd.CategoricalDtype)


def _fmt(v: float) -> str:
    return f"{int(v):,}" if float(v).is_integer() else f"{v:,}"


def _row_number(v: np.ndarray) -> str | None:
    """Whole numbers, each once, evenly spaced: the reason in words, else None."""
    ordered = np.sort(v)
    steps = np.diff(ordered)
    step = steps[0]
    if step <= 0 or not (steps == step).all():
        return None
    by = "" if step == 1 else f" in steps of {_fmt(step)}"
    diffs = np.diff(v)
    if (diffs == step).all() or (diffs == -step).all():
        return f"numbers {_fmt(v[0])} to {_fmt(v[-1])}{by} in row order (a row number)"
    return f"numbers {_fmt(ordered[0])} to {_fmt(ordered[-1])}{by}, each once (a row or running number)"


def _numeric_reason(col, s: pd.Series, n: int) -> str | None:
    if pd.api.types.is_bool_dtype(s.dtype):
        return None
    nn = s.dropna()
    v = nn.to_numpy(dtype="float64")
    if not np.isfinite(v).all() or not (v % 1 == 0).all():
        return None  # fractions measure something: a balance, a salary
    span = v.max() - v.min() if len(v) else 0
    if len(v) == n and span > 0 and span % (n - 1) == 0:  # cheap first: evenly spaced values span a multiple of n - 1
        why = _row_number(v)
        if why:
            return why
    k = len(np.unique(v)) if id_name(col) else 0
    if k > 0.5 * n:
        return f"{k:,} different whole numbers in {n:,} rows under an id-like name (an id)"
    return None


def _numbers_as_text(nn: pd.Series) -> bool:
    """Text whose cells are (nearly) all numbers: an amount with a few odd cells, not a name."""
    sample = nn.iloc[:2_000].astype(str).str.strip()
    return bool(pd.to_numeric(sample, errors="coerce").notna().mean() >= 0.9)


def _text_reason(col, s: pd.Series, n: int) -> str | None:
    nn = s.dropna()
    k = _nunique(nn)
    named = id_name(col) and k > 0.5 * n
    many = k > MAX_CATEGORY_LEVELS and k * ROWS_PER_NAME >= n
    if not (named or many or k >= 0.95 * n) or _numbers_as_text(nn) or datetime_share(s) > 0.5:
        return None
    if named:
        return f"{k:,} different values in {n:,} rows under an id-like name (an id)"
    if k >= 0.95 * n:
        return f"a different value in almost every row ({k:,} in {n:,} rows): it names a customer, it does not " \
               "describe one"
    return f"{k:,} different values in {n:,} rows, about {n / k:.1f} rows each (names or codes, too many for " \
           "categories)"


def id_reason(col, s: pd.Series) -> str | None:
    """Why ``s`` (the column ``col`` of a user table) identifies customers rather than describes them; None when it
    does not (see the module for the rule)."""
    n = len(s)
    if n < MIN_ROWS or s.isna().all() or pd.api.types.is_datetime64_any_dtype(s.dtype):
        return None
    if pd.api.types.is_numeric_dtype(s.dtype):
        return _numeric_reason(col, s, n)
    if _is_text(s):
        return _text_reason(col, s, n)
    return None


def id_columns(df: pd.DataFrame, skip=()) -> dict:
    """The identifier columns of a user table (column -> reason), columns in ``skip`` (the user id, the label)
    aside."""
    skip = set(skip)
    out = {}
    for col in df.columns:
        if col in skip:
            continue
        why = id_reason(col, df[col])
        if why:
            out[col] = why
    return out


def chosen_ids(df: pd.DataFrame, roles: dict, overrides: dict) -> tuple[dict, list]:
    """A user table's identifier columns (column -> why) and the columns put back as features, with the analyst's
    overrides: ``id_columns`` (the list to leave out) replaces the rule's, ``keep_columns`` puts columns back."""
    found = id_columns(df, skip={c for c in (roles.get("user_id"), roles.get("label")) if c})
    keep = list(overrides.get("keep_columns") or [])
    if overrides.get("id_columns") is not None:
        ids = {c: found.get(c, "left out as you chose") for c in overrides["id_columns"] if c not in keep}
        keep += [c for c in found if c not in ids]
    else:
        ids = {c: why for c, why in found.items() if c not in keep}
    return ids, list(dict.fromkeys(keep))
