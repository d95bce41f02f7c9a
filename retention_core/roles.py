"""What a table is (an event log or a user table) and what each column means.

:func:`infer_schema` looks at column names and values; every choice can be overridden by the analyst, and overrides
always win. The result, a :class:`Schema`, is plain data (JSON-serialisable) so it can be saved with a run.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .errors import ConfigError, DataError
from .io import datetime_share

ROLES = ("user_id", "timestamp", "order_id", "amount", "quantity", "price", "event_type", "product", "category",
         "rating", "label")
ROLE_LABELS = {
    "user_id": "User id", "timestamp": "Timestamp", "order_id": "Order id", "amount": "Amount (line or order value)",
    "quantity": "Quantity", "price": "Unit price", "event_type": "Event type", "product": "Product",
    "category": "Category", "rating": "Rating", "label": "Churn label",
}

# Name patterns, strongest first. Matching is on a normalised name: lower case, letters and digits only.
_PATTERNS: dict[str, list[str]] = {
    "user_id": [r"^(customer|user|client|member|account|visitor|shopper|buyer)(id|no|number|key|code)?$",
                r"^(customer|user|client|member|account|visitor|shopper|buyer)", r"^(cust|uid|cid)(id|no)?$",
                r"(customer|user|client|member)(id|no|number|key)$"],
    "timestamp": [r"^(invoice|order|event|transaction|purchase|created|booking|sale)?(date|time|datetime|timestamp|ts|at)$",
                  r"(date|time|timestamp)$", r"^(date|time|timestamp)", r"(created|updated)at$"],
    "order_id": [r"^(invoice|order|transaction|receipt|basket|purchase|sale|txn)(id|no|number|key|code)?$",
                 r"(invoice|order|transaction|receipt|basket|txn)(id|no|number)$"],
    "amount": [r"^(amount|revenue|sales|spend|gmv|total|value|turnover|net)$",
               r"(dollarvalue|ordervalue|linetotal|totalamount|totalprice|ordertotal|saleamount|netamount|revenue)",
               r"(amount|revenue|spend|sales)$", r"value$"],
    "quantity": [r"^(quantity|qty|units|count|items|numberofitems|nitems)$", r"^(quantity|qty)", r"^numberof",
                 r"(quantity|qty)$"],
    "price": [r"^(unit)?price$", r"^(unitprice|priceeach|itemprice|price)", r"price$"],
    "event_type": [r"^(event|action|activity|interaction)(type|name|kind)?$", r"^(type|eventtype|kind)$",
                   r"(event|action)(type|name)$"],
    "product": [r"^(product|item|sku|stockcode|article|asin|variant)(id|code|no|name)?$", r"(stockcode|sku|productid|itemid)"],
    "category": [r"^(category|categoryname|categorycode|department|productcategory|dept|cat|genre|class)$",
                 r"category"],
    "rating": [r"^(rating|stars|score|reviewscore|reviewrating)$", r"rating$"],
    "label": [r"^(churn|churned|ischurn|ischurned|churnflag|churnlabel|label|target|attrition|exited|left|y)$",
              r"churn", r"^(retained|isretained|active|isactive|stayed)$"],
}
_INVERTED_LABEL = re.compile(r"^(retained|isretained|active|isactive|stayed)$")
_POSITIVE_TEXT = {"yes", "y", "true", "t", "1", "churn", "churned", "left", "lost", "exited", "inactive"}
_NEGATIVE_TEXT = {"no", "n", "false", "f", "0", "stay", "stayed", "retained", "active", "remained"}
PURCHASE_WORDS = re.compile(r"purchase|order|buy|bought|transaction|checkout|sale|payment|paid", re.IGNORECASE)
RETURN_WORDS = re.compile(r"return|refund", re.IGNORECASE)
CANCEL_WORDS = re.compile(r"cancel|void", re.IGNORECASE)


def norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


@dataclass
class Schema:
    """The product's understanding of a table. ``roles`` maps a role to a column name (or None)."""

    kind: str  # "events" | "users"
    roles: dict[str, str | None] = field(default_factory=dict)
    attributes: list[str] = field(default_factory=list)
    label_positive: Any = None  # the label value that means "churned" (user tables)
    purchase_values: list[str] | None = None  # event types that count as a purchase (event logs with an event type)
    notes: list[str] = field(default_factory=list)

    def col(self, role: str) -> str | None:
        return self.roles.get(role)

    def to_dict(self) -> dict:
        d = asdict(self)
        if isinstance(d["label_positive"], (np.generic,)):
            d["label_positive"] = d["label_positive"].item()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Schema":
        return cls(**{k: d[k] for k in ("kind", "roles", "attributes", "label_positive", "purchase_values", "notes") if k in d})


def _name_score(col: str, role: str) -> float:
    n = norm(col)
    for i, pat in enumerate(_PATTERNS[role]):
        if re.search(pat, n):
            return 1.0 - 0.15 * i
    return 0.0


def _is_text(s: pd.Series) -> bool:
    return s.dtype == object or pd.api.types.is_string_dtype(s.dtype)


def _is_numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)


def _candidates(df: pd.DataFrame, role: str, sample: pd.DataFrame) -> list[tuple[float, str]]:
    out = []
    for col in df.columns:
        s = sample[col]
        score = _name_score(col, role)
        nn = s.dropna()
        if role == "timestamp":
            share = datetime_share(s)
            if share < 0.8:
                continue
            score = max(score, 0.5) + share * 0.3
        elif role in ("amount", "quantity", "price", "rating"):
            if not _is_numeric(s) or score == 0:
                continue
            if role == "rating" and len(nn) and not (nn.min() >= 0 and nn.max() <= 10):
                continue
        elif role == "label":
            if score == 0 or nn.nunique() > 10:
                continue
            if nn.nunique() == 2:
                score += 0.3
        elif role == "user_id":
            if score == 0:
                continue
            if _is_numeric(s) and len(nn) and (nn % 1 != 0).any():
                continue
        elif score == 0:
            continue
        out.append((score, col))
    return sorted(out, key=lambda t: -t[0])


def _label_positive(s: pd.Series, col: str) -> Any:
    """The value of a two-valued label that means churned."""
    vals = list(pd.unique(s.dropna()))
    inverted = bool(_INVERTED_LABEL.match(norm(col)))
    if len(vals) != 2:
        return None
    texts = {str(v).strip().lower(): v for v in vals}
    pos = [v for t, v in texts.items() if t in _POSITIVE_TEXT]
    neg = [v for t, v in texts.items() if t in _NEGATIVE_TEXT]
    if inverted:
        pos, neg = neg, pos
    if len(pos) == 1:
        return pos[0]
    if len(neg) == 1:
        return [v for v in vals if v is not neg[0] and v != neg[0]][0]
    return sorted(vals, key=str)[-1]


def _attributes(df: pd.DataFrame, used: set[str], user_col: str | None, kind: str, sample: pd.DataFrame) -> list[str]:
    """Categorical columns usable as segments (few distinct values; for event logs, constant per user)."""
    attrs = []
    for col in df.columns:
        if col in used:
            continue
        s = sample[col]
        nn = s.dropna()
        if nn.empty:
            continue
        k = nn.nunique()
        if not (2 <= k <= 50):
            continue
        if _is_numeric(s) and k > 5:
            continue
        if datetime_share(s) > 0.8:
            continue
        if kind == "events" and user_col is not None:
            per_user = sample.groupby(user_col, observed=True)[col].nunique()
            if len(per_user) == 0 or (per_user <= 1).mean() < 0.95:
                continue
        attrs.append(col)
    return attrs


def infer_schema(df: pd.DataFrame, overrides: dict | None = None) -> Schema:
    """Infer the table's kind and column roles; ``overrides`` (role -> column, plus ``kind``, ``attributes``,
    ``label_positive``, ``purchase_values``) win over inference."""
    overrides = dict(overrides or {})
    for role, col in overrides.items():
        if role in ROLES and col is not None and col not in df.columns:
            raise ConfigError(f"The column {col!r} chosen as {ROLE_LABELS[role].lower()} is not in the data. "
                              f"Columns are: {', '.join(map(str, df.columns[:20]))}.")
    sample = df if len(df) <= 200_000 else df.sample(200_000, random_state=0).sort_index()
    roles: dict[str, str | None] = {r: None for r in ROLES}
    taken: set[str] = set()
    for role, col in overrides.items():
        if role in ROLES and col:
            roles[role] = col
            taken.add(col)
    order = ["user_id", "timestamp", "order_id", "event_type", "amount", "quantity", "price", "product", "category",
             "rating", "label"]
    for role in order:
        if role in overrides:
            continue
        for score, col in _candidates(df, role, sample):
            if col not in taken:
                roles[role] = col
                taken.add(col)
                break
    # A user id we could not name: take an id-like text column with repeated values (event logs) or unique ones.
    if roles["user_id"] is None and "user_id" not in overrides:
        for col in df.columns:
            if col in taken:
                continue
            if "id" in norm(col) or norm(col).endswith(("no", "key", "code")):
                roles["user_id"] = col
                taken.add(col)
                break

    notes: list[str] = []
    kind = overrides.get("kind")
    user = roles["user_id"]
    if kind is None:
        if user is not None and roles["timestamp"] is not None:
            ratio = len(df) / max(df[user].nunique(dropna=True), 1)
            kind = "events" if ratio >= 1.2 else "users"
        else:
            kind = "users"
        notes.append("Detected an event log (several rows per user with timestamps)." if kind == "events"
                     else "Detected a user table (one row per user).")
    if kind not in ("events", "users"):
        raise ConfigError(f"Table kind must be 'events' or 'users', got {kind!r}.")

    if kind == "events":
        roles["label"] = overrides.get("label") if "label" in overrides else None
        if roles["amount"] is None and roles["price"] is not None and roles["quantity"] is not None:
            notes.append(f"Revenue is {roles['quantity']} x {roles['price']}.")
    else:
        for r in ("order_id", "event_type", "quantity", "price", "product", "rating"):
            if r not in overrides:
                roles[r] = None
        if roles["timestamp"] is not None and "timestamp" not in overrides:
            roles["timestamp"] = None  # a date column in a user table is a feature (turned into an age)

    used = {c for c in roles.values() if c}
    attributes = overrides.get("attributes")
    if attributes is None:
        attributes = _attributes(df, used, user, kind, sample)
    else:
        missing = [a for a in attributes if a not in df.columns]
        if missing:
            raise ConfigError(f"Attribute column(s) not in the data: {', '.join(missing)}.")

    label_positive = overrides.get("label_positive")
    if kind == "users" and roles["label"] is not None and label_positive is None:
        label_positive = _label_positive(df[roles["label"]], roles["label"])
    purchase_values = overrides.get("purchase_values")
    if kind == "events" and roles["event_type"] is not None and purchase_values is None:
        values = [str(v) for v in pd.unique(sample[roles["event_type"]].dropna())]
        purchase_values = [v for v in values if PURCHASE_WORDS.search(v) and not RETURN_WORDS.search(v)
                           and not CANCEL_WORDS.search(v)]
        if not purchase_values:
            notes.append(f"No event type in {roles['event_type']!r} looks like a purchase ({', '.join(values[:8])}); "
                         "choose which values count as a purchase.")
    return Schema(kind=kind, roles=roles, attributes=list(attributes), label_positive=_plain(label_positive),
                  purchase_values=purchase_values, notes=notes)


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def require_roles(schema: Schema, *roles: str) -> None:
    missing = [r for r in roles if not schema.roles.get(r)]
    if missing:
        names = ", ".join(ROLE_LABELS[r].lower() for r in missing)
        opts = " ".join(f"--{r.split('_')[0]}-col COLUMN" for r in missing)
        raise ConfigError(f"No column was recognised as the {names}. Choose it in the column mapping (or pass {opts}).")


def label_series(df: pd.DataFrame, schema: Schema) -> pd.Series:
    """The user table's label as 0/1 (1 = churned), validating that it is binary."""
    col = schema.roles.get("label")
    if not col:
        raise ConfigError("No churn label column is set. Choose the column that says whether a user churned.")
    s = df[col]
    vals = pd.unique(s.dropna())
    if len(vals) != 2:
        shown = ", ".join(map(repr, list(vals)[:6]))
        raise DataError(f"The label {col!r} must have exactly two values (churned or not); it has {len(vals)}: {shown}. "
                        "Map it to two values or choose another column.")
    pos = schema.label_positive
    if pos is None or not any(_same(v, pos) for v in vals):
        raise ConfigError(f"Choose which value of {col!r} means churned: one of {', '.join(map(repr, vals))}.")
    out = s.map(lambda v: np.nan if pd.isna(v) else float(_same(v, pos)))
    return out.astype("float64")


def _same(a: Any, b: Any) -> bool:
    if a == b:
        return True
    return str(a).strip().lower() == str(b).strip().lower()
