"""The canonical event table: a raw log's columns mapped to their roles, cleaned, and each row flagged as a qualifying
purchase, a return, a cancellation or a non-product line. Snapshots and datasets are built from it in
:mod:`retention_core.dataset`.

A qualifying purchase is a purchase row (any row when there is no event type column) that is not a cancellation, not a
return, and has a positive quantity, price and amount where those columns exist.
"""
from __future__ import annotations

import re
import numpy as np
import pandas as pd

from .errors import ConfigError, DataError
from .cells import parse_datetime
from .roles import CANCEL_WORDS, RETURN_WORDS, Schema, require_roles

NON_PRODUCT_CODES = {"POST", "DOT", "M", "BANK CHARGES", "AMAZONFEE", "C2", "D", "CRUK", "S", "B", "PADS",
                     "ADJUST", "ADJUST2", "TEST001", "TEST002", "SP1002", "GIFT"}
CANONICAL = ["user_id", "ts", "order_id", "amount", "quantity", "event_type", "product", "category", "rating",
             "is_purchase", "is_return", "is_cancel", "is_nonproduct"]


#: Up to this many distinct values, :func:`_text` checks them one by one in Python (see :func:`_plain_text`).
FEW_VALUES = 2_000


def _text(s: pd.Series) -> pd.Series:
    """A column as clean text (stripped; empty = missing), returned as a categorical.

    Cleaning runs once per distinct value, not once per row, which keeps a 10M-row log fast; DuckDB reads the
    categorical as a dictionary-encoded column. Values that cleaning cannot change skip it (:func:`_plain_text`):
    one request's log holds a few dozen values, and pandas' text methods cost more to start than to run.
    """
    if pd.api.types.is_float_dtype(s.dtype) and (s.dropna() % 1 == 0).all():
        s = s.astype("Int64")
    if isinstance(s.dtype, pd.CategoricalDtype):  # already coded (Parquet, a previous pass): clean the categories
        codes, uniques = s.cat.codes.to_numpy(), s.cat.categories
    else:
        codes, uniques = pd.factorize(s, use_na_sentinel=True)
    plain = _plain_text(uniques)
    if plain is not None:
        dtype = pd.CategoricalDtype(pd.Index(np.asarray(plain, dtype=object)))
        return pd.Series(pd.Categorical.from_codes(codes, dtype=dtype, validate=False), index=s.index)
    clean = pd.Series(np.asarray(uniques, dtype=object)).astype("string").str.strip().replace("", pd.NA)
    new_codes, categories = pd.factorize(clean, use_na_sentinel=True)
    lookup = np.append(new_codes, -1).astype(np.int32)  # a missing value (code -1) reads the last entry: -1
    dtype = pd.CategoricalDtype(pd.Index(np.asarray(categories, dtype=object)))
    cat = pd.Categorical.from_codes(lookup[codes], dtype=dtype, validate=False)
    return pd.Series(cat, index=s.index)


def _plain_text(uniques) -> list[str] | None:
    """The distinct values as text when cleaning would leave every one unchanged, else None.

    That holds for a few values (``FEW_VALUES``), each text or a whole number (written as pandas writes it), that
    begins and ends with a letter or a digit: no stripping rule removes a letter or a digit, so nothing is stripped,
    and no value is empty. Then the categories are the values themselves, in the same order.
    """
    if len(uniques) > FEW_VALUES:
        return None
    out = []
    for v in uniques:
        if isinstance(v, str):
            text = str(v)  # a str subclass (NumPy's) as plain text, as pandas gives it
        elif isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)):
            text = str(int(v))
        else:
            return None
        if not (text[:1].isalnum() and text[-1:].isalnum()):
            return None
        out.append(text)
    return out


def canonical_events(df: pd.DataFrame, schema: Schema, *, cancel_ids: bool | None = None) -> pd.DataFrame:
    """The raw log in the product's canonical columns (``CANONICAL`` + user attributes under their own names).

    Rows without a user id or a readable timestamp and exact duplicate rows are dropped (the validation report says so);
    counts are in ``out.attrs["cleaning"]``. ``cancel_ids``: whether order ids ``C`` + digit mark cancellations in
    this shop's logs (None: decide from this log, see :func:`cancelled_orders`; the scoring service knows it from the
    run, since one customer's lines cannot tell).

    The columns are gathered first and become one table at the end (adding them to a table one by one cost more than
    computing them for a log of a few dozen rows); ``bench/reference_events.py`` keeps the plain version, which the
    tests compare with this one.
    """
    if schema.kind != "events":
        raise ConfigError("This table was read as a user table, not an event log. Switch the kind to 'event log' "
                          "if each row is an event.")
    require_roles(schema, "user_id", "timestamp")
    r = schema.roles
    n0 = len(df)
    dup = exact_duplicates(df)
    if dup.any():
        df = df.loc[~dup]
    q, p = _number(df, r.get("quantity")), _number(df, r.get("price"))
    if r.get("amount"):
        amount = _number(df, r["amount"])
    elif q is not None and p is not None:
        amount = q * p
    else:
        amount = p if p is not None else np.full(len(df), np.nan)
    cols = {"user_id": _text(df[r["user_id"]]), "ts": parse_datetime(df[r["timestamp"]]),
            "order_id": _text_or_missing(df, r.get("order_id")),
            "amount": np.where(np.isinf(amount), np.nan, amount), "quantity": q if q is not None else np.nan,
            "event_type": _text_or_missing(df, r.get("event_type")), "product": _text_or_missing(df, r.get("product")),
            "category": _text_or_missing(df, r.get("category")),
            "rating": _number(df, r["rating"]) if r.get("rating") else np.nan}
    cols |= _flags(cols, schema, q, p, cancel_ids)
    for a in schema.attributes:
        if a in df.columns and a not in cols:
            cols[a] = _text(df[a])
    out = pd.DataFrame(cols, index=df.index)
    missing_user = out["user_id"].isna().to_numpy()
    bad_ts = out["ts"].isna().to_numpy()
    out = (out.loc[~missing_user & ~bad_ts] if (missing_user | bad_ts).any() else out).reset_index(drop=True)
    if out.empty:
        raise DataError("No usable events: every row lacks a user id or a readable timestamp. "
                        "Check the user id and timestamp columns in the column mapping.")
    out.attrs["cleaning"] = {"rows_in": n0, "duplicates_dropped": int(dup.sum()),
                             "missing_user_dropped": int(missing_user.sum()), "bad_timestamp_dropped": int((bad_ts & ~missing_user).sum()),
                             "rows_out": len(out), "purchases": int(out["is_purchase"].sum()),
                             "returns": int(out["is_return"].sum()), "cancellations": int(out["is_cancel"].sum())}
    return out


def _number(df: pd.DataFrame, column: str | None) -> np.ndarray | None:
    """A column as float64 numbers (NaN where a cell is not one), or None without the column."""
    if not column:
        return None
    return pd.to_numeric(df[column], errors="coerce").astype("float64").to_numpy()


def _text_or_missing(df: pd.DataFrame, column: str | None) -> pd.Series:
    return _text(df[column]) if column else pd.Series(pd.NA, index=df.index, dtype="string")


def _flags(cols: dict, schema: Schema, q: np.ndarray | None, p: np.ndarray | None,
           cancel_ids: bool | None) -> dict[str, np.ndarray]:
    """Each row as a qualifying purchase, a return, a cancellation and a non-product line (see the module notes)."""
    r, n = schema.roles, len(cols["user_id"])
    et, amount = cols["event_type"], cols["amount"]
    none = np.zeros(n, dtype=bool)
    typed = bool(r.get("event_type"))
    is_cancel = _per_value(et, lambda t: t.str.contains(CANCEL_WORDS, na=False),
                           lambda v: CANCEL_WORDS.search(v) is not None).to_numpy() if typed else none
    if r.get("order_id"):
        is_cancel = is_cancel | cancelled_orders(cols["order_id"], known=cancel_ids).to_numpy()
    is_return = _per_value(et, lambda t: t.str.contains(RETURN_WORDS, na=False),
                           lambda v: RETURN_WORDS.search(v) is not None).to_numpy() if typed else none
    is_return = is_return | (amount < 0)  # NaN compares False: a missing amount is no return
    if q is not None:
        is_return = is_return | (q < 0)
    is_return = is_return & ~is_cancel
    if typed:
        values = [v.lower() for v in (schema.purchase_values or [])]
        is_type = _per_value(et, lambda t: t.str.lower().isin(values).fillna(False),
                             lambda v: v.lower() in values).to_numpy()
    else:
        is_type = ~none
    positive = np.isnan(amount) | (amount > 0)
    for v in (q, p):
        if v is not None:
            positive = positive & (np.isnan(v) | (v > 0))
    prod = cols["product"]
    nonproduct = non_product_lines(prod).to_numpy() if r.get("product") and prod.notna().any() else False
    return {"is_purchase": is_type & ~is_cancel & ~is_return & positive, "is_return": is_return,
            "is_cancel": is_cancel, "is_nonproduct": nonproduct}


def _per_value(s: pd.Series, test, one=None) -> pd.Series:
    """A boolean test of text values, run once per distinct value of a categorical (missing values test False).

    ``one``: the same test of one value in plain Python, used instead when the categorical has a few values, all
    plain ASCII text beginning and ending with a letter or digit (:func:`_plain_ascii`), where Python's and Arrow's
    regular expressions, case mappings and stripping agree (``tests/core/test_events.py`` checks each pair): a
    request's log holds a few dozen values, and each pandas text method costs a fraction of a millisecond to start.
    """
    if isinstance(s.dtype, pd.CategoricalDtype):
        codes = s.cat.codes.to_numpy()
        cats = s.cat.categories
        if one is not None and _plain_ascii(cats):
            per_cat = np.fromiter((one(v) for v in cats), dtype=bool, count=len(cats))
        else:
            per_cat = np.asarray(test(pd.Series(cats, dtype="string")), dtype=bool)
        hit = np.append(per_cat, False)[np.where(codes >= 0, codes, len(per_cat))]
        return pd.Series(hit, index=s.index)
    return pd.Series(np.asarray(test(s.astype("string")), dtype=bool), index=s.index)


def _plain_ascii(values) -> bool:
    """A few values (``FEW_VALUES``), each ASCII text that begins and ends with a letter or a digit."""
    return len(values) <= FEW_VALUES and all(
        isinstance(v, str) and v.isascii() and v[:1].isalnum() and v[-1:].isalnum() for v in values)


_C_DIGIT = re.compile(r"[Cc][0-9]")
_DIGIT = re.compile(r"[0-9]")


def cancelled_orders(order_ids: pd.Series, known: bool | None = None) -> pd.Series:
    """Cancellation lines by order id: ``C`` followed by a digit (as in ``C489449``), when that pattern is a minority
    of the ids (so a shop whose every order id starts with ``C`` is not read as all cancellations); ``known``: whether
    the pattern marks cancellations in this shop, decided elsewhere (None: by this rule)."""
    c = _per_value(order_ids, lambda t: t.str.match(r"^[Cc]\d", na=False).fillna(False),
                   lambda v: _C_DIGIT.match(v) is not None)
    holds = (0 < c.mean() < 0.5) if known is None else known
    return c if holds else pd.Series(False, index=order_ids.index)


def non_product_lines(codes: pd.Series) -> pd.Series:
    """Lines that are not products: postage, fees and manual adjustments (known codes, and codes without a digit when
    almost every product code has one)."""
    known = _per_value(codes, lambda t: t.str.strip().str.upper().isin(NON_PRODUCT_CODES).fillna(False),
                       lambda v: v.strip().upper() in NON_PRODUCT_CODES)
    has_digit = _per_value(codes, lambda t: t.str.contains(r"\d", na=False).fillna(False),
                           lambda v: _DIGIT.search(v) is not None)
    if has_digit.mean() > 0.8:
        return known | (~has_digit & codes.notna().to_numpy())
    return known


def fee_only_customers(ev: pd.DataFrame) -> pd.DataFrame:
    """The users of the canonical table whose purchases are all non-product lines (postage, fees, manual
    adjustments): no dataset, scoring or list holds them as customers (:mod:`retention_core.features`). One row per
    such user (``user_id``, ``purchases``, ``codes``: the codes they paid for), most purchases first."""
    bought = ev.loc[ev["is_purchase"].to_numpy(dtype=bool), ["user_id", "is_nonproduct", "product"]]
    if not len(bought) or not bought["is_nonproduct"].any():
        return pd.DataFrame({"user_id": pd.Series(dtype=object), "purchases": pd.Series(dtype="int64"),
                             "codes": pd.Series(dtype=object)})
    g = bought.assign(user_id=bought["user_id"].astype(str)).groupby("user_id", sort=True)
    only = g["is_nonproduct"].all()
    fees = bought[bought["user_id"].astype(str).isin(only.index[only.to_numpy()])].assign(
        user_id=lambda d: d["user_id"].astype(str), product=lambda d: d["product"].astype(str))
    out = fees.groupby("user_id", sort=True).agg(purchases=("product", "size"),
                                                 codes=("product", lambda c: ", ".join(sorted(set(c)))))
    return out.reset_index().sort_values(["purchases", "user_id"], ascending=[False, True], kind="stable") \
        .reset_index(drop=True)


def exact_duplicates(df: pd.DataFrame) -> pd.Series:
    """Rows that repeat an earlier row exactly (the first copy is not marked).

    Rows are hashed first and compared cell by cell only where a hash repeats, which is exact and about twice as fast
    as comparing every row on a large log. A few rows (a scoring request) are compared as Python tuples instead.
    """
    if len(df) <= FEW_ROWS:
        few = _few_duplicates(df)
        if few is not None:
            return few
    try:
        h = pd.util.hash_pandas_object(df, index=False)
    except TypeError:  # unhashable cells: compare their text
        return df.astype(str).duplicated()
    candidates = h.duplicated(keep=False).to_numpy()
    out = pd.Series(False, index=df.index)
    if candidates.any():
        sub = df.loc[candidates]
        try:
            out.loc[sub.index] = sub.duplicated().to_numpy()
        except TypeError:
            out.loc[sub.index] = sub.astype(str).duplicated().to_numpy()
    return out


#: Up to this many rows, :func:`exact_duplicates` compares rows as Python tuples.
FEW_ROWS = 256
_MISSING = object()  # every missing cell as one value (Python's NaNs are not even equal to each other)


def _few_duplicates(df: pd.DataFrame) -> pd.Series | None:
    """:func:`exact_duplicates` for a few rows of two columns or more (None otherwise, or when a cell cannot be
    hashed). As in pandas' rule for several columns, every missing cell (None, NaN, NA, NaT) is the same value."""
    if len(df.columns) < 2:  # pandas' one-column rule tells None from NaN: left to it
        return None

    def cells(col):
        return [_MISSING if v is None or v is pd.NA or v is pd.NaT or (v.__class__ is float and v != v) else v
                for v in df[col].tolist()]

    seen: set = set()
    out = np.zeros(len(df), dtype=bool)
    try:
        for i, row in enumerate(zip(*(cells(c) for c in df.columns))):
            if row in seen:
                out[i] = True
            else:
                seen.add(row)
    except TypeError:  # unhashable cells: the general path compares their text
        return None
    return pd.Series(out, index=df.index)


_SAFE = re.compile(r"[^0-9a-zA-Z]+")


def slug(value: str) -> str:
    return _SAFE.sub("_", str(value).strip().lower()).strip("_")[:30] or "other"
