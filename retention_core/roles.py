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
from .cells import datetime_share
from .identifiers import chosen_ids

ROLES = ("user_id", "timestamp", "order_id", "amount", "quantity", "price", "event_type", "product", "category",
         "rating", "label", "description")
ROLE_LABELS = {
    "user_id": "User id", "timestamp": "Timestamp", "order_id": "Order id", "amount": "Amount (line or order value)",
    "quantity": "Quantity", "price": "Unit price", "event_type": "Event type", "product": "Product",
    "category": "Category", "rating": "Rating", "label": "Churn label", "description": "Product name",
}

_INVERTED_NAMES = (r"^(retained|isretained|retention|active|isactive|stillactive|stayed|renewed|isrenewed|returning|"
                   r"isreturning)$")
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
    "product": [r"^(product|item|sku|stockcode|article|asin|variant)(id|code|no)?$", r"(stockcode|sku|productid|itemid)",
                r"^(product|item|article|variant)name$"],
    "category": [r"^(category|categoryname|categorycode|department|productcategory|dept|cat|genre|class)$",
                 r"category"],
    "rating": [r"^(rating|stars|score|reviewscore|reviewrating)$", r"rating$"],
    # the product's name, shown with offers (optional; only read when a product column is set)
    "description": [r"^(description|desc|productdescription|itemdescription|productname|itemname|producttitle|"
                    r"itemtitle|title|articlename|skuname)$", r"(description|productname|itemname|producttitle)"],
    "label": [r"^(churn|churned|ischurn|ischurned|churnflag|churnlabel|label|target|attrition|attrited|exited|left|"
              r"lapsed|islapsed|y)$",
              r"churn", _INVERTED_NAMES],
}
# Label names that say the opposite of churn: for them the no-like value means churned.
_INVERTED_LABEL = re.compile(_INVERTED_NAMES)
_POSITIVE_TEXT = {"yes", "y", "true", "t", "1", "churn", "churned", "left", "lost", "exited", "inactive", "lapsed",
                  "attrited", "cancelled", "canceled"}
_NEGATIVE_TEXT = {"no", "n", "false", "f", "0", "stay", "stayed", "retained", "active", "remained", "existing",
                  "current", "renewed"}
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
    # user tables: columns that identify a customer (row numbers, ids, names), left out of the features -> why
    id_columns: dict = field(default_factory=dict)
    kept_columns: list = field(default_factory=list)  # identifier-like columns the analyst put back as features

    def col(self, role: str) -> str | None:
        return self.roles.get(role)

    def held(self) -> frozenset[str]:
        """The roles some column of the table holds."""
        return frozenset(r for r, c in self.roles.items() if c)

    def to_dict(self) -> dict:
        d = asdict(self)
        if isinstance(d["label_positive"], (np.generic,)):
            d["label_positive"] = d["label_positive"].item()
        return d

    def for_new_data(self, columns, *, label: bool = True, attributes: bool = True) -> dict:
        """This saved schema as ``infer_schema`` overrides for new data with ``columns`` (scoring, monitoring,
        offers, on either engine): a role keeps its saved column when the data has it and is inferred again when the
        data lacks it; a role the run had no column for stays without one, so that a column which merely looks
        like one (an ``amount``, an event type) cannot change what the run's features mean. ``label``: keep the
        label's column (when False it is inferred again); ``attributes``: the saved attributes the data has (when False
        they are inferred again)."""
        have = set(columns)
        out: dict[str, Any] = {}
        for role, col in self.roles.items():
            if role == "label" and not label:
                continue
            if not col:
                out[role] = None
            elif col in have:
                out[role] = col
        out["kind"] = self.kind
        if attributes:
            out["attributes"] = [a for a in self.attributes if a in have]
        if self.purchase_values:
            out["purchase_values"] = self.purchase_values
        if self.label_positive is not None:
            out["label_positive"] = self.label_positive
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "Schema":
        keys = ("kind", "roles", "attributes", "label_positive", "purchase_values", "notes", "id_columns",
                "kept_columns")
        return cls(**{k: d[k] for k in keys if k in d})


def _name_score(col: str, role: str) -> float:
    n = norm(col)
    for i, pat in enumerate(_PATTERNS[role]):
        if re.search(pat, n):
            return 1.0 - 0.15 * i
    return 0.0


def _is_text(s: pd.Series) -> bool:
    """Text, including categorical columns (as frames built in memory often have)."""
    return s.dtype == object or pd.api.types.is_string_dtype(s.dtype) or isinstance(s.dtype, pd.CategoricalDtype)


def _is_numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)


class _Profile:
    """What is known about one column of the sample, computed once and shared by every role."""

    def __init__(self, s: pd.Series):
        self.s = s
        self._nn: pd.Series | None = None
        self.numeric = _is_numeric(s)
        self.text = _is_text(s)
        self._k: int | None = None
        self._dt: float | None = None
        self._whole: bool | None = None

    @property
    def nn(self) -> pd.Series:
        """The column without missing cells (computed on first use: roles given by name never need it)."""
        if self._nn is None:
            self._nn = self.s.dropna()
        return self._nn

    @property
    def k(self) -> int:
        if self._k is None:
            try:
                self._k = int(self.nn.nunique())
            except TypeError:  # unhashable cells (lists, dicts)
                self._k = int(self.nn.astype(str).nunique())
        return self._k

    @property
    def dt_share(self) -> float:
        if self._dt is None:
            try:
                self._dt = datetime_share(self.s)
            except (TypeError, ValueError, OverflowError):
                self._dt = 0.0
        return self._dt

    @property
    def whole(self) -> bool:
        """Numbers without fractions (identifiers can be numbers, but never 12.5)."""
        if self._whole is None:
            v = self.nn.astype("float64") if self.numeric else None
            self._whole = bool(v is None or len(v) == 0 or (v % 1 == 0).all())
        return self._whole


def _epoch_share(p: _Profile) -> float:
    """Share of a numeric column that reads as Unix epoch seconds or milliseconds."""
    if not p.numeric or p.nn.empty:
        return 0.0
    v = p.nn.astype("float64")
    return 1.0 if v.between(1e9, 4.2e9).all() or v.between(1e12, 4.2e12).all() else 0.0


def _candidates(role: str, prof: dict[str, _Profile]) -> list[tuple[float, str]]:
    out = []
    for col, p in prof.items():
        score = _name_score(col, role)
        nn = p.nn
        if role == "timestamp":
            share = p.dt_share
            if share < 0.8 and score > 0:
                share = _epoch_share(p)  # epoch seconds count only under a date-like name
            if share < 0.8:
                continue
            score = max(score, 0.5) + share * 0.3
        elif role in ("amount", "quantity", "price", "rating"):
            if not p.numeric or score == 0:
                continue
            if role == "rating" and len(nn) and not (nn.min() >= 0 and nn.max() <= 10):
                continue
        elif role == "label":
            if score == 0 or p.k > 10 or p.k < 1:
                continue
            if p.k == 2:
                score += 0.3
        elif role == "user_id":
            if score == 0 or not p.whole or p.dt_share > 0.8:
                continue
            # A loosely named column with few values is a segment (customer_type), not an identifier.
            if score < 1.0 and p.k <= 10 and p.k < 0.5 * len(nn):
                continue
        elif role == "event_type":
            if score == 0 or not p.text or p.k > 200:
                continue
        elif role in ("order_id", "product"):
            if score == 0 or not p.whole or p.dt_share > 0.8:
                continue
        elif role == "description":
            if score == 0 or not p.text or p.dt_share > 0.8:
                continue
        elif score == 0:
            continue
        out.append((score, col))
    return sorted(out, key=lambda t: -t[0])


_GENERIC_YES = {"yes", "y", "true", "t", "1"}
_GENERIC_NO = {"no", "n", "false", "f", "0"}


def _truth(v: Any) -> tuple[bool | None, bool]:
    """(meaning, generic): meaning is True for a value that reads as churned/yes, False for stayed/no, None when it
    says neither; generic is True for yes/no, true/false and 1/0, whose meaning depends on the column name."""
    if isinstance(v, (bool, np.bool_)):
        return bool(v), True
    if isinstance(v, (int, float, np.integer, np.floating)):
        return (True if v == 1 else False if v == 0 else None), True
    t = str(v).strip().lower()
    if t in _GENERIC_YES:
        return True, True
    if t in _GENERIC_NO:
        return False, True
    if t in _POSITIVE_TEXT:
        return True, False
    if t in _NEGATIVE_TEXT:
        return False, False
    try:
        f = float(t)
    except ValueError:
        return None, False
    return (True if f == 1 else False if f == 0 else None), True


def _label_positive(s: pd.Series, col: str) -> Any:
    """The value of a two-valued label that means churned.

    Values that say what happened (churned, stayed, retained, inactive) are taken at their word. Generic values
    (yes/no, true/false, 1/0): the yes-like one means churned, unless the column's name says the opposite of churn
    ("retained", "active"), where the no-like one does. Two values that say neither: the later one in sort order
    (the earlier one for an opposite name).
    """
    vals = list(pd.unique(s.dropna()))
    if len(vals) != 2:
        return None
    inverted = bool(_INVERTED_LABEL.match(norm(col)))
    read = [_truth(v) for v in vals]
    meanings = [m for m, _ in read]
    if None in meanings and meanings.count(None) == 1:  # one value understood: the other is its opposite
        i = 1 - meanings.index(None)
        meanings[1 - i] = not meanings[i]
        read[1 - i] = (meanings[1 - i], read[i][1])
    if set(meanings) == {True, False}:
        yes = vals[meanings.index(True)]
        no = vals[meanings.index(False)]
        generic = all(g for _, g in read)
        return no if (inverted and generic) else yes
    ordered = sorted(vals, key=str)
    return ordered[0] if inverted else ordered[-1]


def _attributes(used: set[str], user_col: str | None, kind: str, sample: pd.DataFrame,
                prof: dict[str, _Profile]) -> list[str]:
    """Categorical columns usable as segments (few distinct values; for event logs, constant per user)."""
    attrs = []
    for col, p in prof.items():
        if col in used or p.nn.empty:
            continue
        if not (2 <= p.k <= 50):
            continue
        if p.numeric and p.k > 5:
            continue
        if p.dt_share > 0.8:
            continue
        if kind == "events" and user_col is not None:
            try:
                per_user = sample.groupby(user_col, observed=True)[col].nunique()
            except TypeError:
                continue
            if len(per_user) == 0 or (per_user <= 1).mean() < 0.95:
                continue
        attrs.append(col)
    return attrs


_ID_NAME = re.compile(r"(?:^|[^a-z0-9])(?:id|key|no|code|number|num)$|^id(?:[^a-z0-9]|$)|[a-z0-9](?:ID|Id|No|Key)$")


def _fallback_user(prof: dict[str, _Profile], taken: set[str], n: int) -> str | None:
    """A user id we could not name: an identifier-like column (``ID``, ``client_no``, ``memberKey``), the most
    distinct first."""
    found = []
    for col, p in prof.items():
        if col in taken or p.nn.empty or not p.whole or p.dt_share > 0.8:
            continue
        if p.k <= 10 and p.k < 0.5 * len(p.nn):  # a few values repeated (zip_code: Urban, Rural): not an id
            continue
        if norm(col) == "id" or _ID_NAME.search(str(col).strip()) or _ID_NAME.search(str(col).strip().lower()):
            found.append((p.k, col))
    return max(found)[1] if found else None


def infer_schema(df: pd.DataFrame, overrides: dict | None = None) -> Schema:
    """Infer the table's kind and column roles; ``overrides`` (role -> column, plus ``kind``, ``attributes``,
    ``label_positive``, ``purchase_values``) win over inference. A role overridden with None has no column. For a
    user table, ``id_columns`` (the columns to leave out as identifiers) replaces the inferred ones, and
    ``keep_columns`` puts inferred ones back as features."""
    overrides = dict(overrides or {})
    _check_overrides(df, overrides)
    sample = df if len(df) <= 200_000 else df.sample(200_000, random_state=0).sort_index()
    prof = {col: _Profile(sample[col]) for col in df.columns}
    roles = _assign_roles(prof, overrides, len(sample))
    notes: list[str] = []
    kind = overrides.get("kind") or _kind(df, roles, notes)
    if kind == "events":
        roles["label"] = overrides.get("label") if "label" in overrides else None
        if roles["amount"] is None and roles["price"] is not None and roles["quantity"] is not None:
            notes.append(f"Revenue is {roles['quantity']} x {roles['price']}.")
    else:
        # A user table has a user id, a label, features and attributes: other columns are features
        # (a date column is turned into an age) unless the analyst says otherwise.
        for r in ROLES:
            if r not in ("user_id", "label") and r not in overrides:
                roles[r] = None
    attributes = overrides.get("attributes")
    if attributes is None:
        attributes = _attributes({c for c in roles.values() if c}, roles["user_id"], kind, sample, prof)
    else:
        attributes = list(attributes)
        missing = [a for a in attributes if a not in df.columns]
        if missing:
            raise ConfigError(f"Attribute column(s) not in the data: {', '.join(map(str, missing))}. "
                              f"Columns are: {', '.join(map(str, df.columns[:20]))}.")
    label_positive = overrides.get("label_positive")
    if kind == "users" and roles["label"] is not None and label_positive is None:
        label_positive = _label_positive(df[roles["label"]], roles["label"])
    purchase_values = overrides.get("purchase_values")
    if kind == "events" and roles["event_type"] is not None and purchase_values is None:
        purchase_values = _purchase_values(sample[roles["event_type"]], roles["event_type"], notes)
    elif purchase_values is not None:
        purchase_values = [str(v) for v in purchase_values]
    ids, kept = chosen_ids(df, roles, overrides) if kind == "users" else ({}, [])
    return Schema(kind=kind, roles=roles, attributes=list(attributes), label_positive=_plain(label_positive),
                  purchase_values=purchase_values, notes=notes, id_columns=ids, kept_columns=kept)


def _check_overrides(df: pd.DataFrame, overrides: dict) -> None:
    for role, col in overrides.items():
        if role in ROLES and col is not None and col not in df.columns:
            raise ConfigError(f"The column {col!r} chosen as {ROLE_LABELS[role].lower()} is not in the data. "
                              f"Columns are: {', '.join(map(str, df.columns[:20]))}.", field=role, value=col)
    for key, what in (("id_columns", "leave out"), ("keep_columns", "put back")):
        absent = [c for c in overrides.get(key) or [] if c not in df.columns]
        if absent:
            raise ConfigError(f"Column(s) to {what} not in the data: {', '.join(map(repr, absent))}. Columns are: "
                              f"{', '.join(map(str, df.columns[:20]))}.", field=key, value=absent[0])
    kind = overrides.get("kind")
    if kind is not None and kind not in ("events", "users"):
        raise ConfigError(f"Table kind must be 'events' or 'users', got {kind!r}.", field="kind", value=kind)


#: The order roles are inferred in: a column taken by an earlier role is not offered to a later one.
INFERENCE_ORDER = ["user_id", "timestamp", "order_id", "event_type", "amount", "quantity", "price", "product",
                   "category", "rating", "label", "description"]


def _assign_roles(prof: dict, overrides: dict, n_sample: int) -> dict[str, str | None]:
    """Each role's column: the analyst's choice, else the best candidate not taken by an earlier role."""
    roles: dict[str, str | None] = {r: None for r in ROLES}
    taken: set[str] = set()
    for role, col in overrides.items():
        if role in ROLES and col:
            roles[role] = col
            taken.add(col)
    for role in INFERENCE_ORDER:
        if role in overrides:
            continue
        for _, col in _candidates(role, prof):
            if col not in taken:
                roles[role] = col
                taken.add(col)
                break
    if roles["user_id"] is None and "user_id" not in overrides:
        col = _fallback_user(prof, taken, n_sample)
        if col is not None:
            roles["user_id"] = col
    return roles


def _kind(df: pd.DataFrame, roles: dict, notes: list[str]) -> str:
    """An event log when there are timestamps and several rows per user, else a user table."""
    user = roles["user_id"]
    kind = "users"
    if user is not None and roles["timestamp"] is not None:
        ratio = len(df) / max(df[user].nunique(dropna=True), 1)
        kind = "events" if ratio >= 1.2 else "users"
    notes.append("Detected an event log (several rows per user with timestamps)." if kind == "events"
                 else "Detected a user table (one row per user).")
    return kind


def _purchase_values(event_types: pd.Series, col: str, notes: list[str]) -> list[str]:
    values = [str(v) for v in pd.unique(event_types.dropna())]
    found = [v for v in values if PURCHASE_WORDS.search(v) and not RETURN_WORDS.search(v)
             and not CANCEL_WORDS.search(v)]
    if not found:
        notes.append(f"No event type in {col!r} looks like a purchase ({', '.join(values[:8])}); "
                     "choose which values count as a purchase.")
    return found


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def require_roles(schema: Schema, *roles: str) -> None:
    """ConfigError (its ``roles`` naming the missing ones) unless every role has a column."""
    missing = [r for r in roles if not schema.roles.get(r)]
    if missing:
        names = ", ".join(ROLE_LABELS[r].lower() for r in missing)
        raise ConfigError(f"No column was recognised as the {names}. Choose it in the column mapping.", roles=missing)


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
