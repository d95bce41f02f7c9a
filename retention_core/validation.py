"""Every quirk found in a table, with counts, a few examples and what the product does about it.

:func:`validate` returns a :class:`ValidationReport`: a list of :class:`Finding` (severity ``error`` / ``warning`` /
``info``, a stable ``code``, a message, a count, examples and the action taken). Errors stop the dataset from being
built; warnings and infos are shown and handled as their ``action`` says.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from .errors import ConfigError, RetentionError
from .events import canonical_events, cancelled_orders, exact_duplicates, fee_only_customers, non_product_lines
from .cells import datetime_share, parse_datetime
from .roles import CANCEL_WORDS, RETURN_WORDS, ROLE_LABELS, Schema, label_series

MIN_USERS = 20
MIN_CLASS = 10
LEAK_AUC = 0.98
SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


@dataclass
class Finding:
    severity: str  # error | warning | info
    code: str
    message: str
    count: int = 0
    examples: list = field(default_factory=list)
    action: str = ""
    role: str | None = None  # the column role a missing-column finding is about (each front end words the fix)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["examples"] = [_plain(x) for x in self.examples]
        return d


def _plain(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, pd.Timestamp):
        return str(x)
    return x if isinstance(x, (int, float, str, type(None))) else str(x)


@dataclass
class ValidationReport:
    findings: list[Finding] = field(default_factory=list)

    def add(self, severity: str, code: str, message: str, count: int = 0, examples=None, action: str = "",
            role: str | None = None) -> None:
        if severity not in SEVERITY_ORDER:
            raise ValueError(f"severity must be one of {', '.join(SEVERITY_ORDER)}, got {severity!r}")
        self.findings.append(Finding(severity, code, message, int(count), [_plain(x) for x in list(examples or [])[:5]],
                                     action, role))

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def codes(self) -> set[str]:
        return {f.code for f in self.findings}

    def get(self, code: str) -> Finding | None:
        return next((f for f in self.findings if f.code == code), None)

    def sorted(self) -> list[Finding]:
        return sorted(self.findings, key=lambda f: SEVERITY_ORDER[f.severity])

    def to_frame(self) -> pd.DataFrame:
        rows = [{"severity": f.severity, "issue": f.message, "count": f.count,
                 "examples": ", ".join(str(_plain(x)) for x in f.examples), "what we do": f.action, "code": f.code}
                for f in self.sorted()]
        return pd.DataFrame(rows, columns=["severity", "issue", "count", "examples", "what we do", "code"])

    def as_list(self) -> list[dict]:
        return [f.as_dict() for f in self.sorted()]

    @property
    def excluded_features(self) -> list[str]:
        """Columns the product leaves out of the features (identifiers, constants, leaks, empty columns)."""
        out = []
        for f in self.findings:
            if f.code in ("identifier_feature", "constant_column", "label_leak", "empty_column"):
                out += [e for e in f.examples if isinstance(e, str)]
        return out


def _rows(mask: pd.Series, n: int = 5) -> list[int]:
    """1-based data row numbers as a spreadsheet would show them (header is row 1)."""
    return [int(i) + 2 for i in np.flatnonzero(mask.to_numpy())[:n]]


def _is_text(s: pd.Series) -> bool:
    """Text, including categorical columns (as frames built in memory often have)."""
    return s.dtype == object or pd.api.types.is_string_dtype(s.dtype) or isinstance(s.dtype, pd.CategoricalDtype)


def _nunique(s: pd.Series) -> int:
    try:
        return int(s.nunique(dropna=True))
    except TypeError:  # unhashable cells (lists, dicts)
        return int(s.dropna().astype(str).nunique())


def _short(v, n: int = 40) -> str:
    t = str(v)
    return t if len(t) <= n else t[: n - 1] + "\u2026"


def _feature_columns(df: pd.DataFrame, schema: Schema) -> list:
    """Columns that can become model features: for a user table everything but the user id and the label; an event
    log's features are computed from its roles, so none of its raw columns is a feature."""
    if schema.kind != "users":
        return []
    skip = {schema.roles.get("user_id"), schema.roles.get("label")}
    return [c for c in df.columns if c not in skip]


def _mostly_numeric(col, nn: pd.Series, rep: "ValidationReport") -> None:
    """A text column whose cells are numbers but for a few (``inf``, ``n.a.``, ``12,5%``) was read as text: say so,
    since it then cannot be an amount, a price or a numeric feature."""
    if not (nn.dtype == object or pd.api.types.is_string_dtype(nn.dtype)) or len(nn) < 5:
        return
    sample = nn.iloc[:20_000].astype(str).str.strip()
    num = pd.to_numeric(sample, errors="coerce")
    bad = num.isna()
    finite = num.notna() & np.isfinite(num.fillna(0))
    share = finite.mean()
    if 0.9 <= share < 1.0 or (share >= 0.9 and (~np.isfinite(num.dropna())).any()):
        odd = sample[bad | ~np.isfinite(num.fillna(0))]
        rep.add("warning", "mostly_numeric_text", f"Column {col!r} holds numbers except for {len(odd):,} cell(s) in "
                f"the first {len(sample):,}", len(odd), [str(v) for v in odd.head(5)],
                "read as text, so it cannot be an amount, price or numeric feature: fix or clear those cells")


def validate(df: pd.DataFrame, schema: Schema, *, now: pd.Timestamp | None = None) -> ValidationReport:
    """Check ``df`` read as ``schema`` says; every quirk becomes a finding with a count, examples and an action."""
    rep = ValidationReport()
    roles = schema.roles
    missing = {r: c for r, c in roles.items() if c and c not in df.columns}
    if missing:
        shown = ", ".join(f"{ROLE_LABELS.get(r, r).lower()} {c!r}" for r, c in missing.items())
        raise ConfigError(f"Column(s) chosen in the column mapping are not in the data: {shown}.")
    now = pd.Timestamp(now) if now is not None else pd.Timestamp.now().normalize() + pd.Timedelta(days=1)
    n = len(df)
    if n == 0:
        rep.add("error", "no_rows", "The table has no rows", 0, [], "upload a table with data")
        return rep

    dup = exact_duplicates(df)
    if dup.any():
        rep.add("warning", "duplicate_rows", f"{int(dup.sum()):,} exact duplicate rows", int(dup.sum()), _rows(dup),
                "dropped (only the first copy is kept)" if schema.kind == "events"
                else "kept: each copy counts as a user; remove them from the file if they are export errors")

    role_cols = {c for c in roles.values() if c}
    for col in df.columns:
        s = df[col]
        nn = s.dropna()
        if nn.empty:
            rep.add("warning", "empty_column", f"Column {col!r} is empty", n, [col], "ignored")
        elif n > 1 and col not in role_cols and _nunique(nn) == 1:
            rep.add("info", "constant_column", f"Column {col!r} has one value ({_short(nn.iloc[0])!r}) in every row",
                    n, [col], "not used as a feature")
        elif col not in role_cols:
            _mostly_numeric(col, nn, rep)

    user = roles.get("user_id")
    if user:
        miss = df[user].isna()
        if miss.any():
            rep.add("warning" if miss.mean() < 0.5 else "error", "missing_user_id",
                    f"{int(miss.sum()):,} rows ({miss.mean():.1%}) have no user id in {user!r}", int(miss.sum()),
                    _rows(miss), "rows dropped: events without a user cannot be attributed" if schema.kind == "events"
                    else "kept for training; these users have no id in exported lists")
        n_users = _nunique(df[user])
        if n_users < MIN_USERS:
            rep.add("error", "too_few_users", f"Only {n_users} distinct users; at least {MIN_USERS} are needed to train "
                    "a model", n_users, [], "cannot train: upload more users")
        elif n_users < 200:
            rep.add("warning", "few_users", f"Only {n_users} distinct users: models will be unstable", n_users, [],
                    "kept; treat the metrics with caution")
        if schema.kind == "users" and n_users < n - int(miss.sum()):
            extra = df[user].astype("string").duplicated(keep="first") & ~miss
            rep.add("warning", "repeated_user_id", f"{int(extra.sum()):,} rows repeat a user id of {user!r} in a user "
                    "table", int(extra.sum()), [str(v) for v in df[user][extra].unique()[:5]],
                    "each row is treated as its own user; if each row is an event, switch the kind to event log")
    elif schema.kind == "users":  # one row per customer: the row number identifies it (1 = the first data row)
        rep.add("warning", "no_user_id", "No user id column was found: each row is a customer, identified by its row "
                "number (1 = the first data row)", 0, [], "choose an id column in the column mapping to keep your "
                "own ids", role="user_id")
    else:
        rep.add("error", "no_user_id", "No user id column was found", 0, [], "choose it in the column mapping",
                role="user_id")

    if schema.kind == "events":
        _validate_events(df, schema, rep, now)
    else:
        _validate_users(df, schema, rep)
    _identifier_features(df, schema, rep)
    return rep


def _validate_events(df: pd.DataFrame, schema: Schema, rep: ValidationReport, now: pd.Timestamp) -> None:
    """The event log's checks, one per column role, in the order the report lists them."""
    r = schema.roles
    _check_timestamps(df, r.get("timestamp"), rep, now)
    if r.get("order_id"):
        _check_order_ids(df[r["order_id"]].astype("string"), rep)
    if r.get("event_type"):
        _check_event_types(df, r["event_type"], schema.purchase_values, rep)
    for role in ("quantity", "amount"):
        if r.get(role):
            _check_quantity_or_amount(df[r[role]], role, r[role], rep)
    if r.get("price"):
        _check_prices(df[r["price"]], r["price"], rep)
    if r.get("product"):
        codes = df[r["product"]].astype("string").str.strip()
        nonprod = non_product_lines(codes)
        if nonprod.any():
            rep.add("info", "non_product_lines", f"{int(nonprod.sum()):,} non-product lines (postage, fees, manual "
                    "adjustments)", int(nonprod.sum()), list(codes[nonprod].value_counts().index[:5]),
                    "the order still counts; excluded from revenue and product counts")
            _check_fee_only(df, schema, nonprod, rep)
    _check_text_nan(df, rep)


def _check_fee_only(df: pd.DataFrame, schema: Schema, nonprod: pd.Series, rep: ValidationReport) -> None:
    """Customers whose purchases are all postage or fees (:func:`retention_core.events.fee_only_customers`), read
    from the rows of the users with a non-product line (the others bought a product or nothing), with the log's
    convention for cancelled order ids."""
    r = schema.roles
    if not (r.get("user_id") and r.get("timestamp")):
        return
    users = df[r["user_id"]]
    cand = users.isin(users[nonprod.to_numpy(dtype=bool)].dropna().unique())
    cancel_ids = bool(cancelled_orders(df[r["order_id"]].astype("string")).any()) if r.get("order_id") else None
    try:
        fees = fee_only_customers(canonical_events(df.loc[cand.to_numpy(dtype=bool)], schema, cancel_ids=cancel_ids))
    except RetentionError:
        return
    if len(fees):
        rep.add("info", "fee_only_customers", f"{len(fees):,} customers bought only postage, fees or adjustments "
                "(no product)", len(fees), [f"{u} ({c})" for u, c in zip(fees["user_id"], fees["codes"])],
                "not scored as customers: left out of datasets, scores and at-risk lists")


def _check_timestamps(df: pd.DataFrame, ts_col: str | None, rep: ValidationReport, now: pd.Timestamp) -> None:
    if not ts_col:
        rep.add("error", "no_timestamp", "No timestamp column was found", 0, [], "choose it in the column mapping",
                role="timestamp")
        return
    raw = df[ts_col]
    ts = parse_datetime(raw)
    miss = raw.isna()
    if _is_text(raw):
        miss = miss | (raw.astype("string").str.strip() == "").fillna(False)
    bad = ts.isna() & ~miss
    if bad.any():
        share = bad.mean()
        rep.add("error" if share > 0.5 else "warning", "bad_timestamp",
                f"{int(bad.sum()):,} timestamps in {ts_col!r} cannot be read as dates", int(bad.sum()),
                [str(v) for v in raw[bad].unique()[:5]],
                "rows dropped" if share <= 0.5 else "choose another timestamp column or fix the date format")
    if miss.any():
        rep.add("warning" if miss.mean() < 0.5 else "error", "missing_timestamp",
                f"{int(miss.sum()):,} rows have no timestamp in {ts_col!r}", int(miss.sum()), _rows(miss),
                "rows dropped: an event needs a date")
    fut = ts > now
    if fut.any():
        rep.add("warning", "future_timestamp", f"{int(fut.sum()):,} timestamps are in the future", int(fut.sum()),
                [str(v) for v in ts[fut].head(5)], "kept; check the date format (day/month order) and time zone")
    if ts.notna().any():
        rep.add("info", "time_span", f"Events from {ts.min():%Y-%m-%d} to {ts.max():%Y-%m-%d} "
                f"({(ts.max() - ts.min()).days} days)", int(ts.notna().sum()), [], "")


def _check_order_ids(oid: pd.Series, rep: ValidationReport) -> None:
    c = cancelled_orders(oid)
    if c.any():
        rep.add("info", "cancellations", f"{int(c.sum()):,} cancellation lines (order ids starting with 'C')",
                int(c.sum()), list(oid[c].unique()[:5]), "not counted as purchases; used for the cancellation rate")
    adj = oid.str.match(r"^[Aa]\d", na=False).astype(bool)
    if 0 < adj.mean() < 0.5:
        rep.add("info", "adjustments", f"{int(adj.sum()):,} adjustment lines (order ids starting with 'A')",
                int(adj.sum()), list(oid[adj].unique()[:5]), "not counted as purchases")


def _check_event_types(df: pd.DataFrame, et: str, purchase_values, rep: ValidationReport) -> None:
    v = df[et].astype("string")
    canc = v.str.contains(CANCEL_WORDS, na=False).astype(bool)
    if canc.any():
        rep.add("info", "cancellations", f"{int(canc.sum()):,} cancellation events", int(canc.sum()),
                list(v[canc].unique()[:5]), "not counted as purchases")
    values = [str(x) for x in v.dropna().unique()[:50]]
    if not purchase_values:
        rep.add("error", "no_purchase_type", f"No value of {et!r} is recognised as a purchase ({', '.join(values[:8])})",
                0, values[:5], "choose which event types count as a purchase")
    else:
        rep.add("info", "purchase_types", f"Purchases are events of type {', '.join(purchase_values)}",
                int(v.isin(purchase_values).sum()), purchase_values, "")
    ret = v.str.contains(RETURN_WORDS, na=False).astype(bool)
    if ret.any():
        rep.add("info", "returns", f"{int(ret.sum()):,} return events", int(ret.sum()), list(v[ret].unique()[:5]),
                "treated as returns, not purchases")


def _check_quantity_or_amount(raw: pd.Series, role: str, col: str, rep: ValidationReport) -> None:
    x = _numbers(raw)
    neg = x < 0
    if neg.any():
        rep.add("info", f"negative_{role}", f"{int(neg.sum()):,} rows with a negative {role} in {col!r}",
                int(neg.sum()), _rows(neg), "treated as returns, not purchases")
    if role == "amount":
        zero = x == 0
        if zero.any():
            rep.add("warning", "zero_amount", f"{int(zero.sum()):,} rows with a zero amount in {col!r}",
                    int(zero.sum()), _rows(zero), "not counted as purchases")
    bad = x.isna() & raw.notna()
    if bad.any():
        rep.add("warning", f"bad_{role}", f"{int(bad.sum()):,} values in {col!r} are not numbers",
                int(bad.sum()), [str(v) for v in raw[bad].unique()[:5]], "treated as missing")


def _check_prices(raw: pd.Series, price: str, rep: ValidationReport) -> None:
    p = _numbers(raw)
    zero = p == 0
    if zero.any():
        rep.add("warning", "zero_price", f"{int(zero.sum()):,} lines with a zero price in {price!r}", int(zero.sum()),
                _rows(zero), "not counted as purchases (free items, samples or corrections)")
    neg = p < 0
    if neg.any():
        rep.add("warning", "negative_price", f"{int(neg.sum()):,} lines with a negative price in {price!r}",
                int(neg.sum()), _rows(neg), "not counted as purchases (bad-debt or accounting adjustments)")


def _check_text_nan(df: pd.DataFrame, rep: ValidationReport) -> None:
    for c in df.columns:
        if not _is_text(df[c]):
            continue
        is_nan = df[c].astype("string").str.lower().eq("nan").fillna(False).astype(bool)
        k = int(is_nan.sum())
        if k:
            rep.add("info", "text_nan", f"{k:,} cells in {c!r} hold the text 'nan'", k, _rows(is_nan),
                    "kept as written; if it means unknown, clear those cells in the source file")


def _numbers(s: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(s.dtype):
        return pd.Series(np.nan, index=s.index, dtype="float64")
    return pd.to_numeric(s, errors="coerce").astype("float64")


def _validate_users(df: pd.DataFrame, schema: Schema, rep: ValidationReport) -> None:
    label = schema.roles.get("label")
    features = _feature_columns(df, schema)
    for col in features:
        s = df[col]
        if _is_text(s) and datetime_share(s) > 0.9:
            rep.add("info", "date_feature", f"Column {col!r} holds dates", int(s.notna().sum()), [col],
                    "turned into an age in days")
    if not label:
        rep.add("warning", "no_label", "No churn label column was found", 0, [],
                "choose the label column to train; without one the table can only be scored")
        return
    counts = df[label].value_counts(dropna=True)
    if len(counts) != 2:
        shown = [f"{_short(v)} ({c:,})" for v, c in counts.head(5).items()]
        if len(counts) == 0:
            msg = f"The label {label!r} is empty"
        elif len(counts) == 1:
            msg = (f"The label {label!r} has only one value ({_short(counts.index[0])!r}): either every user churned "
                   "or none did, so there is nothing to learn")
        else:
            msg = f"The label {label!r} has {len(counts):,} distinct values, not 2 (churned or not)"
        rep.add("error", "label_not_binary", msg, len(counts), shown,
                "map it to churned / not churned or choose another column")
        return
    try:
        y = label_series(df, schema)
    except RetentionError as exc:
        rep.add("error", "label_value", str(exc), 0, [str(v) for v in counts.index],
                "choose which value of the label means churned")
        return
    miss = y.isna()
    if miss.any():
        rep.add("warning", "missing_label", f"{int(miss.sum()):,} rows have no label", int(miss.sum()), _rows(miss),
                "left out of training; they can still be scored")
    pos, neg = int((y == 1).sum()), int((y == 0).sum())
    rep.add("info", "label_balance", f"{pos:,} churned and {neg:,} retained users ({pos / max(pos + neg, 1):.1%} churn; "
            f"churned means {label} = {schema.label_positive!r})", pos + neg, [], "")
    if min(pos, neg) < MIN_CLASS:
        which = "churned" if pos <= neg else "retained"
        rep.add("error", "too_few_churners", f"Only {min(pos, neg)} {which} users; at least {MIN_CLASS} churned and "
                f"{MIN_CLASS} retained users are needed to train", min(pos, neg), [],
                "cannot train: upload more users or choose another label")
    else:
        keep = ~miss.to_numpy()
        check_leaks(df.loc[keep, features], y[keep], schema, rep)


def _auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC-AUC of ``score`` for 0/1 ``y`` (ties count half), from ranks."""
    pos = y == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return 0.5
    ranks = pd.Series(score).rank(method="average").to_numpy()
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def check_leaks(X: pd.DataFrame, y: pd.Series, schema: Schema, rep: ValidationReport) -> list[str]:
    """Flag a feature that almost determines the label by itself (single-feature ROC-AUC of at least 0.98).

    Numbers are scored as they are (dates as their time), categories (at most 50 values and at least 20 rows per value
    on average) by their churn rate, and every column also by whether it is missing: a column filled in only for
    users who left records the outcome.
    """
    leaks: list[str] = []
    yy = pd.to_numeric(pd.Series(y), errors="coerce").to_numpy(dtype="float64")
    keep = ~np.isnan(yy)
    yy = yy[keep]
    if len(np.unique(yy)) < 2:
        return leaks
    skip = {schema.roles.get("user_id"), schema.roles.get("label")} if schema.kind == "users" else \
        {c for c in schema.roles.values() if c}
    n = len(yy)
    for col in X.columns:
        if col in skip:
            continue
        s = X[col][keep]
        scores = []
        isna = s.isna().to_numpy()
        if 0 < isna.sum() < n:
            scores.append(("missing", isna.astype("float64")))
        if pd.api.types.is_datetime64_any_dtype(s.dtype):
            s = pd.Series(np.where(isna, np.nan, s.to_numpy().view("int64").astype("float64")), index=s.index)
        if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
            v = s.astype("float64").to_numpy()
            v = np.where(np.isfinite(v), v, np.nan)
            if (~np.isnan(v)).any():
                scores.append(("value", np.where(np.isnan(v), np.nanmedian(v), v)))
        else:
            k = _nunique(s)
            if 2 <= k <= 50 and k * 20 <= n:
                key = s.astype("string").fillna("(missing)").to_numpy(dtype=object)
                rate = pd.Series(yy).groupby(key).mean()
                scores.append(("value", pd.Series(key).map(rate).to_numpy(dtype="float64")))
        for _, score in scores:
            if np.nanmin(score) == np.nanmax(score):
                continue
            auc = _auc(yy, score)
            if max(auc, 1 - auc) >= LEAK_AUC:
                leaks.append(col)
                rep.add("warning", "label_leak", f"Column {col!r} alone predicts the label almost perfectly "
                        f"(ROC-AUC {max(auc, 1 - auc):.3f}): it probably records the outcome", 1, [col],
                        "left out of the features (keep it only if it is known before the churn happens)")
                break
    return leaks


PUT_BACK = ("left out of the features: if it describes the customer, put it back under 'Identifiers left out' on "
            "the Data page, or with --keep-column on the command line")


def _identifier_features(df: pd.DataFrame, schema: Schema, rep: ValidationReport) -> None:
    """The user table's identifiers (row numbers, ids, names: :mod:`retention_core.identifiers`, chosen once in the
    schema) are never features; each is a note with its reason, and a column the analyst put back says so."""
    if schema.kind != "users":
        return
    for col, why in schema.id_columns.items():
        if col in df.columns:
            rep.add("info", "identifier_feature", f"Column {col!r} identifies customers: {why}",
                    _nunique(df[col]), [col], PUT_BACK)
    for col in schema.kept_columns:
        if col in df.columns and col not in schema.id_columns:
            rep.add("info", "identifier_kept", f"Column {col!r} looks like an identifier but was put back",
                    _nunique(df[col]), [col], "used as a feature, as you chose")


def validate_dataset(frame: pd.DataFrame) -> ValidationReport:
    """Checks on a labelled dataset: enough users and enough of each class to train."""
    rep = ValidationReport()
    lab = frame["churned"].dropna()
    pos, neg = int((lab == 1).sum()), int((lab == 0).sum())
    n_users = int(frame["user_id"].nunique(dropna=True))
    if n_users < MIN_USERS:
        rep.add("error", "too_few_users", f"Only {n_users} users in the dataset; at least {MIN_USERS} are needed",
                n_users, [], "use a longer lookback or an earlier cutoff")
    if pos + neg == 0:
        rep.add("error", "too_few_churners", "No row has a churn label yet, so there is nothing to train on", 0, [],
                "choose the label column (user tables) or an earlier cutoff whose horizon is observed (event logs)")
    elif min(pos, neg) < MIN_CLASS:
        which = "churned" if pos < neg else "retained"
        rep.add("error", "too_few_churners", f"Only {min(pos, neg)} {which} users in the labelled snapshots; at least "
                f"{MIN_CLASS} of each are needed to train", min(pos, neg), [],
                "change the horizon or cutoff, or add snapshots")
    return rep
