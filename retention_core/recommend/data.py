"""The interactions offers learn from: the canonical event table cut at a date and coded as integers.

Only events at or before the cutoff ``T`` enter a :class:`Log`, and users and products are coded by their sorted
text, so two logs that agree up to ``T`` give identical codes and identical offers whatever happened after ``T``.

A purchase is a qualifying purchase line of a product (not postage or a fee, not a return or a cancellation).
Views and add-to-cart events count as weaker interest when the log has them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..dataset import to_cutoff
from ..errors import ConfigError, DataError
from ..roles import Schema

PURCHASE, CART, VIEW = 0, 1, 2
_CART_WORDS = re.compile(r"cart|basket|wish", re.IGNORECASE)
_VIEW_WORDS = re.compile(r"view|click|detail|visit|impression|browse", re.IGNORECASE)
DAY_NS = 86_400 * 10**9

NO_PRODUCT = ("Offers need a product column: this log has no column recognised as the product (a product id, SKU or "
              "stock code per line). Choose it in the column mapping.")


def as_cutoff(value) -> pd.Timestamp:
    return to_cutoff(value)


def _codes(s: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(codes, categories as text) of a text column; missing values get code -1."""
    if not isinstance(s.dtype, pd.CategoricalDtype):
        s = s.astype("category")
    return s.cat.codes.to_numpy(np.int64), np.asarray(s.cat.categories.astype(str), dtype=object)


def _sorted_codes(codes: np.ndarray, cats: np.ndarray) -> tuple[np.ndarray, pd.Index]:
    """Codes over the used values only, numbered in the sorted order of their text."""
    used = np.unique(codes[codes >= 0])
    names = cats[used]
    order = np.argsort(names.astype(str), kind="stable")
    remap = np.full(len(cats) + 1, -1, dtype=np.int64)
    remap[used[order]] = np.arange(len(used))
    return remap[codes], pd.Index(names[order].astype(str), dtype="str")


def _kind(ev: pd.DataFrame) -> np.ndarray:
    """PURCHASE / CART / VIEW per row, -1 for rows that are none of these."""
    kind = np.where(ev["is_purchase"].to_numpy(bool), PURCHASE, -1).astype(np.int8)
    et = ev["event_type"] if "event_type" in ev.columns else None
    if et is None or et.isna().all():
        return kind
    codes, cats = _codes(et)
    text = pd.Series(cats, dtype=object).astype(str)
    per = np.where(text.str.contains(_CART_WORDS), CART, np.where(text.str.contains(_VIEW_WORDS), VIEW, -1))
    per = np.append(per, -1).astype(np.int8)
    other = per[np.where(codes >= 0, codes, len(per) - 1)]
    return np.where(kind == PURCHASE, kind, other).astype(np.int8)


@dataclass
class Log:
    """Interactions at or before ``cutoff``: integer codes per row, with users and products as sorted text."""

    cutoff: pd.Timestamp
    users: pd.Index
    items: pd.Index
    u: np.ndarray  # int32 user code per interaction
    i: np.ndarray  # int32 product code per interaction
    ts: np.ndarray  # int64 nanoseconds per interaction
    kind: np.ndarray  # int8 PURCHASE / CART / VIEW
    buyer_u: np.ndarray  # users of every qualifying purchase (products or not), to find active users
    buyer_ts: np.ndarray
    names: pd.Series = field(default_factory=lambda: pd.Series(dtype="str"))  # product -> name (when known)

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def t_day(self) -> int:
        """The cutoff as a day number (the cutoff is a midnight: days before it are whole)."""
        return int(self.cutoff.value // DAY_NS)

    @property
    def day(self) -> np.ndarray:
        """Day number (days since 1970-01-01) of each interaction."""
        return (self.ts // DAY_NS).astype(np.int32)

    def purchases(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        m = self.kind == PURCHASE
        return self.u[m], self.i[m], (self.ts[m] // DAY_NS).astype(np.int32)

    def active_users(self, lookback_days: int = 365) -> np.ndarray:
        """Codes of users with a qualifying purchase in ``(T - lookback, T]``."""
        m = self.buyer_ts > self.cutoff.value - int(lookback_days) * DAY_NS
        return np.unique(self.buyer_u[m])

    def cut(self, cutoff) -> "Log":
        """The same log at an earlier cutoff (codes kept)."""
        T = as_cutoff(cutoff)
        m, b = self.ts <= T.value, self.buyer_ts <= T.value
        return Log(cutoff=T, users=self.users, items=self.items, u=self.u[m], i=self.i[m], ts=self.ts[m],
                   kind=self.kind[m], buyer_u=self.buyer_u[b], buyer_ts=self.buyer_ts[b], names=self.names)

    def bought_between(self, start: pd.Timestamp, end: pd.Timestamp) -> np.ndarray:
        """Sorted unique ``user * n_items + product`` keys of purchases in ``(start, end]``."""
        m = (self.kind == PURCHASE) & (self.ts > start.value) & (self.ts <= end.value)
        return np.unique(self.u[m].astype(np.int64) * self.n_items + self.i[m])

    def name_of(self, codes: np.ndarray) -> np.ndarray:
        """The product names of product codes (empty text when unknown)."""
        prod = self.items[np.asarray(codes, dtype=np.int64)]
        if self.names.empty:
            return np.full(len(prod), "", dtype=object)
        return self.names.reindex(prod).fillna("").to_numpy(dtype=object)

    def label(self, codes: np.ndarray) -> np.ndarray:
        """Product names where known, else the product ids (for reasons)."""
        names = self.name_of(codes)
        prod = np.asarray(self.items[np.asarray(codes, dtype=np.int64)], dtype=object)
        return np.where(names != "", names, prod)


def has_products(ev: pd.DataFrame) -> bool:
    return "product" in ev.columns and bool(ev["product"].notna().any())


def require_products(ev: pd.DataFrame) -> None:
    if not has_products(ev):
        raise ConfigError(NO_PRODUCT, roles=["product"])


def product_names(df: pd.DataFrame, schema) -> pd.Series:
    """product -> name from the raw table's description column (the most frequent name of each product); empty when
    the log has no description or no product column."""
    r = schema.roles
    if not r.get("description") or not r.get("product"):
        return pd.Series(dtype="str")
    pairs = pd.DataFrame({"product": df[r["product"]].astype("string").str.strip(),
                          "name": df[r["description"]].astype("string").str.strip()}).dropna()
    pairs = pairs[(pairs["name"] != "") & (pairs["product"] != "") & (pairs["name"].str.lower() != "nan")]
    if pairs.empty:
        return pd.Series(dtype="str")
    counts = pairs.value_counts(["product", "name"], sort=True)
    first = counts.reset_index().drop_duplicates("product")
    return pd.Series(first["name"].to_numpy(dtype=str), index=pd.Index(first["product"].astype(str), dtype="str"),
                     dtype="str", name="product_name")


def build_log(ev: pd.DataFrame, cutoff=None, *, names: pd.Series | None = None) -> Log:
    """The :class:`Log` of the canonical events ``ev`` at or before ``cutoff`` (default: the end of the data)."""
    require_products(ev)
    ts = ev["ts"]
    T = as_cutoff(cutoff) if cutoff is not None else pd.Timestamp(ts.max()).ceil("D")
    past = (ts <= T).to_numpy()
    ev = ev.loc[past]
    kind = _kind(ev)
    prod_codes, prod_cats = _codes(ev["product"])
    nonproduct = ev["is_nonproduct"].to_numpy(bool) if "is_nonproduct" in ev.columns else np.zeros(len(ev), bool)
    keep = (kind >= 0) & (prod_codes >= 0) & ~nonproduct
    for flag in ("is_return", "is_cancel"):
        if flag in ev.columns:
            keep &= ~ev[flag].to_numpy(bool)
    user_codes, user_cats = _codes(ev["user_id"])
    buy = ev["is_purchase"].to_numpy(bool) & (user_codes >= 0)
    used_users = keep | buy
    ucodes, users = _sorted_codes(np.where(used_users, user_codes, -1), user_cats)
    icodes, items = _sorted_codes(np.where(keep, prod_codes, -1), prod_cats)
    tns = ts.loc[past].to_numpy("datetime64[ns]").astype(np.int64)
    if not (keep & (kind == PURCHASE)).any():
        raise DataError(f"No purchase of a product at or before {T.date()}: there is no history to make offers "
                        "from. Pick a later date or check the product and purchase settings.")
    nm = names if names is not None else (_names_from_events(ev) if "description" in ev.columns else None)
    return Log(cutoff=T, users=users, items=items, u=ucodes[keep].astype(np.int32), i=icodes[keep].astype(np.int32),
               ts=tns[keep], kind=kind[keep], buyer_u=ucodes[buy].astype(np.int32), buyer_ts=tns[buy],
               names=nm if nm is not None else pd.Series(dtype="str"))


def _names_from_events(ev: pd.DataFrame) -> pd.Series:
    return product_names(ev, Schema(kind="events", roles={"product": "product", "description": "description"}))


def future_purchases(ev: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """``user_id, product`` pairs bought in ``(start, end]`` (product lines only), as text."""
    ts = ev["ts"]
    m = ((ts > start) & (ts <= end)).to_numpy() & ev["is_purchase"].to_numpy(bool) & ev["product"].notna().to_numpy()
    if "is_nonproduct" in ev.columns:
        m &= ~ev["is_nonproduct"].to_numpy(bool)
    out = pd.DataFrame({"user_id": ev["user_id"].to_numpy()[m].astype(str),
                        "product": ev["product"].to_numpy()[m].astype(str)})
    return out.drop_duplicates().reset_index(drop=True)
