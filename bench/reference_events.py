"""The canonical event table the plain pandas way: each column added to the table in turn, every text column
cleaned with pandas' text methods (once per distinct value), flags as Series operations.

This is ``retention_core.events.canonical_events`` as it was before its fixed cost was cut for small logs (the
scoring service reads one customer's few dozen rows per request): the product now gathers the columns first and
skips cleaning values it cannot change. ``tests/core/test_events.py`` checks that both give the same table (values,
types, order, index and cleaning counts). It reads only the rules of the product (the words and codes, the date
parser and the duplicate rule), never its table-building or text-testing code.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from retention_core.cells import parse_datetime
from retention_core.errors import ConfigError, DataError
from retention_core.events import NON_PRODUCT_CODES, exact_duplicates
from retention_core.roles import CANCEL_WORDS, RETURN_WORDS, Schema, require_roles


def text_column(s: pd.Series) -> pd.Series:
    """A column as clean text (stripped; empty = missing), returned as a categorical.

    Cleaning runs once per distinct value, not once per row, which keeps a 10M-row log fast; DuckDB reads the
    categorical as a dictionary-encoded column.
    """
    if pd.api.types.is_float_dtype(s.dtype) and (s.dropna() % 1 == 0).all():
        s = s.astype("Int64")
    if isinstance(s.dtype, pd.CategoricalDtype):  # already coded (Parquet, a previous pass): clean the categories
        codes, uniques = s.cat.codes.to_numpy(), s.cat.categories
    else:
        codes, uniques = pd.factorize(s, use_na_sentinel=True)
    clean = pd.Series(np.asarray(uniques, dtype=object)).astype("string").str.strip().replace("", pd.NA)
    new_codes, categories = pd.factorize(clean, use_na_sentinel=True)
    lookup = np.append(new_codes, -1).astype(np.int32)  # a missing value (code -1) reads the last entry: -1
    dtype = pd.CategoricalDtype(pd.Index(np.asarray(categories, dtype=object)))
    cat = pd.Categorical.from_codes(lookup[codes], dtype=dtype, validate=False)
    return pd.Series(cat, index=s.index)


def reference_canonical_events(df: pd.DataFrame, schema: Schema, *, cancel_ids: bool | None = None) -> pd.DataFrame:
    """The raw log in the product's canonical columns (``CANONICAL`` + user attributes under their own names).

    Rows without a user id or a readable timestamp and exact duplicate rows are dropped (the validation report says so);
    counts are in ``out.attrs["cleaning"]``. ``cancel_ids``: whether order ids ``C`` + digit mark cancellations in
    this shop's logs (None: decide from this log, see :func:`cancelled_orders`; the scoring service knows it from the
    run, since one customer's lines cannot tell).
    """
    if schema.kind != "events":
        raise ConfigError("This table was read as a user table, not an event log. Switch the kind to 'event log' "
                          "if each row is an event.")
    require_roles(schema, "user_id", "timestamp")
    r = schema.roles
    n0 = len(df)
    dup = exact_duplicates(df)
    df = df.loc[~dup]
    out = pd.DataFrame(index=df.index)
    out["user_id"] = text_column(df[r["user_id"]])
    out["ts"] = parse_datetime(df[r["timestamp"]])
    q = pd.to_numeric(df[r["quantity"]], errors="coerce").astype("float64") if r.get("quantity") else None
    p = pd.to_numeric(df[r["price"]], errors="coerce").astype("float64") if r.get("price") else None
    if r.get("amount"):
        amount = pd.to_numeric(df[r["amount"]], errors="coerce").astype("float64")
    elif q is not None and p is not None:
        amount = q * p
    elif p is not None:
        amount = p
    else:
        amount = pd.Series(np.nan, index=df.index)
    out["order_id"] = text_column(df[r["order_id"]]) if r.get("order_id") else pd.Series(pd.NA, index=df.index, dtype="string")
    out["amount"] = amount.replace([np.inf, -np.inf], np.nan)
    out["quantity"] = q if q is not None else np.nan
    out["event_type"] = text_column(df[r["event_type"]]) if r.get("event_type") else pd.Series(pd.NA, index=df.index, dtype="string")
    out["product"] = text_column(df[r["product"]]) if r.get("product") else pd.Series(pd.NA, index=df.index, dtype="string")
    out["category"] = text_column(df[r["category"]]) if r.get("category") else pd.Series(pd.NA, index=df.index, dtype="string")
    out["rating"] = pd.to_numeric(df[r["rating"]], errors="coerce").astype("float64") if r.get("rating") else np.nan

    et = out["event_type"]
    is_cancel = _per_value(et, lambda t: t.str.contains(CANCEL_WORDS, na=False))
    if r.get("order_id"):
        is_cancel |= _cancelled(out["order_id"], known=cancel_ids)
    is_return = _per_value(et, lambda t: t.str.contains(RETURN_WORDS, na=False)) | (out["amount"] < 0).fillna(False)
    if q is not None:
        is_return |= (q < 0).fillna(False)
    is_return &= ~is_cancel
    if r.get("event_type"):
        values = [v.lower() for v in (schema.purchase_values or [])]
        is_type = _per_value(et, lambda t: t.str.lower().isin(values).fillna(False))
    else:
        is_type = pd.Series(True, index=df.index)
    positive = (out["amount"].isna() | (out["amount"] > 0))
    if q is not None:
        positive &= (q.isna() | (q > 0))
    if p is not None:
        positive &= (p.isna() | (p > 0))
    out["is_purchase"] = (is_type & ~is_cancel & ~is_return & positive).astype(bool)
    out["is_return"] = is_return.astype(bool)
    out["is_cancel"] = is_cancel.astype(bool)
    prod = out["product"]
    if r.get("product") and prod.notna().any():
        out["is_nonproduct"] = _non_product(prod)
    else:
        out["is_nonproduct"] = False
    for a in schema.attributes:
        if a in df.columns and a not in out.columns:
            out[a] = text_column(df[a])
    missing_user = out["user_id"].isna()
    bad_ts = out["ts"].isna()
    out = out.loc[~missing_user & ~bad_ts].reset_index(drop=True)
    if out.empty:
        raise DataError("No usable events: every row lacks a user id or a readable timestamp. "
                        "Check the user id and timestamp columns in the column mapping.")
    out.attrs["cleaning"] = {"rows_in": n0, "duplicates_dropped": int(dup.sum()),
                             "missing_user_dropped": int(missing_user.sum()), "bad_timestamp_dropped": int((bad_ts & ~missing_user).sum()),
                             "rows_out": len(out), "purchases": int(out["is_purchase"].sum()),
                             "returns": int(out["is_return"].sum()), "cancellations": int(out["is_cancel"].sum())}
    return out


def _per_value(s: pd.Series, test) -> pd.Series:
    """A boolean test of text values, run once per distinct value of a categorical (missing values test False)."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        codes = s.cat.codes.to_numpy()
        per_cat = np.asarray(test(pd.Series(s.cat.categories, dtype="string")), dtype=bool)
        hit = np.append(per_cat, False)[np.where(codes >= 0, codes, len(per_cat))]
        return pd.Series(hit, index=s.index)
    return pd.Series(np.asarray(test(s.astype("string")), dtype=bool), index=s.index)


def _cancelled(order_ids: pd.Series, known: bool | None = None) -> pd.Series:
    """Cancellation lines by order id: ``C`` followed by a digit (as in ``C489449``), when that pattern is a minority
    of the ids (so a shop whose every order id starts with ``C`` is not read as all cancellations); ``known``: whether
    the pattern marks cancellations in this shop, decided elsewhere (None: by this rule)."""
    c = _per_value(order_ids, lambda t: t.str.match(r"^[Cc]\d", na=False).fillna(False))
    holds = (0 < c.mean() < 0.5) if known is None else known
    return c if holds else pd.Series(False, index=order_ids.index)


def _non_product(codes: pd.Series) -> pd.Series:
    """Lines that are not products: postage, fees and manual adjustments (known codes, and codes without a digit when
    almost every product code has one)."""
    known = _per_value(codes, lambda t: t.str.strip().str.upper().isin(NON_PRODUCT_CODES).fillna(False))
    has_digit = _per_value(codes, lambda t: t.str.contains(r"\d", na=False).fillna(False))
    if has_digit.mean() > 0.8:
        return known | (~has_digit & codes.notna().to_numpy())
    return known
