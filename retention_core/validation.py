"""Every quirk found in a table, with counts, a few examples and what the product does about it.

:func:`validate` returns a :class:`ValidationReport`: a list of :class:`Finding` (severity ``error`` / ``warning`` /
``info``, a stable ``code``, a message, a count, examples and the action taken). Errors stop the dataset from being
built; warnings and infos are shown and handled as their ``action`` says.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from .io import datetime_share, parse_datetime
from .roles import CANCEL_WORDS, RETURN_WORDS, Schema, label_series, norm

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

    def add(self, severity: str, code: str, message: str, count: int = 0, examples=None, action: str = "") -> None:
        self.findings.append(Finding(severity, code, message, int(count), list(examples or [])[:5], action))

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
    return s.dtype == object or pd.api.types.is_string_dtype(s.dtype)


def validate(df: pd.DataFrame, schema: Schema, *, now: pd.Timestamp | None = None) -> ValidationReport:
    rep = ValidationReport()
    roles = schema.roles
    now = now or pd.Timestamp.now().normalize() + pd.Timedelta(days=1)
    n = len(df)

    dup = df.duplicated()
    if dup.any():
        rep.add("warning", "duplicate_rows", f"{int(dup.sum()):,} exact duplicate rows", int(dup.sum()), _rows(dup),
                "dropped (only the first copy is kept)")

    for col in df.columns:
        s = df[col]
        nn = s.dropna()
        if nn.empty:
            rep.add("warning", "empty_column", f"Column {col!r} is empty", n, [col], "ignored")
        elif nn.nunique() == 1 and n > 1 and col not in roles.values():
            rep.add("info", "constant_column", f"Column {col!r} has one value ({nn.iloc[0]!r}) in every row", n, [col],
                    "not used as a feature")

    user = roles.get("user_id")
    if user:
        miss = df[user].isna()
        if miss.any():
            rep.add("warning" if miss.mean() < 0.5 else "error", "missing_user_id",
                    f"{int(miss.sum()):,} rows ({miss.mean():.1%}) have no user id in {user!r}", int(miss.sum()),
                    _rows(miss), "dropped: events without a user cannot be attributed")
        n_users = df[user].nunique(dropna=True)
        if n_users < MIN_USERS:
            rep.add("error", "too_few_users", f"Only {n_users} distinct users; at least {MIN_USERS} are needed to train "
                    "a model", n_users, [], "cannot train: upload more users")
        elif n_users < 200:
            rep.add("warning", "few_users", f"Only {n_users} distinct users: models will be unstable", n_users, [],
                    "kept; treat the metrics with caution")
    else:
        rep.add("error", "no_user_id", "No user id column was found", 0, [], "choose it in the column mapping")

    if schema.kind == "events":
        _validate_events(df, schema, rep, now)
    else:
        _validate_users(df, schema, rep)
    _identifier_features(df, schema, rep)
    return rep


def _validate_events(df: pd.DataFrame, schema: Schema, rep: ValidationReport, now: pd.Timestamp) -> None:
    r = schema.roles
    ts_col = r.get("timestamp")
    if not ts_col:
        rep.add("error", "no_timestamp", "No timestamp column was found", 0, [], "choose it in the column mapping")
    else:
        raw = df[ts_col]
        ts = parse_datetime(raw)
        bad = ts.isna() & raw.notna()
        miss = raw.isna()
        if bad.any():
            share = bad.mean()
            rep.add("error" if share > 0.5 else "warning", "bad_timestamp",
                    f"{int(bad.sum()):,} timestamps in {ts_col!r} cannot be read as dates", int(bad.sum()),
                    [str(v) for v in raw[bad].head(5)], "dropped" if share <= 0.5 else "check the timestamp column")
        if miss.any():
            rep.add("warning", "missing_timestamp", f"{int(miss.sum()):,} rows have no timestamp", int(miss.sum()),
                    _rows(miss), "dropped")
        fut = ts > now
        if fut.any():
            rep.add("warning", "future_timestamp", f"{int(fut.sum()):,} timestamps are in the future", int(fut.sum()),
                    [str(v) for v in ts[fut].head(5)], "kept; check the date format (day/month order) and time zone")
        if ts.notna().any():
            rep.add("info", "time_span", f"Events from {ts.min():%Y-%m-%d} to {ts.max():%Y-%m-%d} "
                    f"({(ts.max() - ts.min()).days} days)", int(ts.notna().sum()), [], "")
    order = r.get("order_id")
    if order:
        oid = df[order].astype("string")
        c = oid.str.match(r"^[Cc]\d", na=False)
        if 0 < c.mean() < 0.5:
            rep.add("info", "cancellations", f"{int(c.sum()):,} cancellation lines (order ids starting with 'C')",
                    int(c.sum()), list(oid[c].head(5)), "not counted as purchases; used for the cancellation rate")
        adj = oid.str.match(r"^[Aa]\d", na=False)
        if 0 < adj.mean() < 0.5:
            rep.add("info", "adjustments", f"{int(adj.sum()):,} adjustment lines (order ids starting with 'A')",
                    int(adj.sum()), list(oid[adj].head(5)), "not counted as purchases")
    et = r.get("event_type")
    if et:
        v = df[et].astype("string")
        canc = v.str.contains(CANCEL_WORDS, na=False)
        if canc.any():
            rep.add("info", "cancellations", f"{int(canc.sum()):,} cancellation events", int(canc.sum()),
                    list(v[canc].unique()[:5]), "not counted as purchases")
        values = [str(x) for x in v.dropna().unique()[:50]]
        if not schema.purchase_values:
            rep.add("error", "no_purchase_type", f"No value of {et!r} is recognised as a purchase ({', '.join(values[:8])})",
                    0, values[:5], "choose which event types count as a purchase")
        else:
            rep.add("info", "purchase_types", f"Purchases are events of type {', '.join(schema.purchase_values)}",
                    int(v.isin(schema.purchase_values).sum()), schema.purchase_values, "")
        ret = v.str.contains(RETURN_WORDS, na=False)
        if ret.any():
            rep.add("info", "returns", f"{int(ret.sum()):,} return events", int(ret.sum()), [], "treated as returns")
    for role in ("quantity", "amount"):
        col = r.get(role)
        if col:
            x = pd.to_numeric(df[col], errors="coerce")
            neg = x < 0
            if neg.any():
                rep.add("info", f"negative_{role}", f"{int(neg.sum()):,} rows with a negative {role} in {col!r}",
                        int(neg.sum()), [float(v) for v in x[neg].head(5)], "treated as returns, not purchases")
            if role == "amount":
                zero = x == 0
                if zero.any():
                    rep.add("warning", "zero_amount", f"{int(zero.sum()):,} rows with a zero amount in {col!r}",
                            int(zero.sum()), _rows(zero), "not counted as purchases")
            bad = x.isna() & df[col].notna()
            if bad.any():
                rep.add("warning", f"bad_{role}", f"{int(bad.sum()):,} values in {col!r} are not numbers",
                        int(bad.sum()), [str(v) for v in df[col][bad].head(5)], "treated as missing")
    price = r.get("price")
    if price:
        p = pd.to_numeric(df[price], errors="coerce")
        zero = p == 0
        if zero.any():
            rep.add("warning", "zero_price", f"{int(zero.sum()):,} lines with a zero price in {price!r}", int(zero.sum()),
                    _rows(zero), "not counted as purchases (free items, samples or corrections)")
        neg = p < 0
        if neg.any():
            rep.add("warning", "negative_price", f"{int(neg.sum()):,} lines with a negative price in {price!r}",
                    int(neg.sum()), _rows(neg), "not counted as purchases (bad-debt or accounting adjustments)")
    prod = r.get("product")
    if prod:
        from .events import NON_PRODUCT_CODES

        codes = df[prod].astype("string").str.strip()
        has_digit = codes.str.contains(r"\d", na=False)
        nonprod = codes.str.upper().isin(NON_PRODUCT_CODES).fillna(False)
        if has_digit.mean() > 0.8:
            nonprod |= ~has_digit & codes.notna()
        if nonprod.any():
            rep.add("info", "non_product_lines", f"{int(nonprod.sum()):,} non-product lines (postage, fees, manual "
                    "adjustments)", int(nonprod.sum()), list(codes[nonprod].value_counts().index[:5]),
                    "the order still counts; excluded from revenue and product counts")
    text_nan = [c for c in df.columns if _is_text(df[c]) and (df[c].astype("string").str.lower() == "nan").sum() > 0]
    for c in text_nan:
        k = int((df[c].astype("string").str.lower() == "nan").sum())
        rep.add("info", "text_nan", f"{k:,} cells in {c!r} hold the text 'nan'", k, [], "treated as missing")


def _validate_users(df: pd.DataFrame, schema: Schema, rep: ValidationReport) -> None:
    label = schema.roles.get("label")
    if not label:
        rep.add("warning", "no_label", "No churn label column was found", 0, [],
                "choose the label column to train; without one the table can only be scored")
        return
    vals = pd.unique(df[label].dropna())
    if len(vals) != 2:
        rep.add("error", "label_not_binary", f"The label {label!r} has {len(vals)} distinct values, not 2",
                len(vals), [str(v) for v in vals[:5]], "map it to churned / not churned or choose another column")
        return
    y = label_series(df, schema)
    miss = y.isna()
    if miss.any():
        rep.add("warning", "missing_label", f"{int(miss.sum()):,} rows have no label", int(miss.sum()), _rows(miss),
                "left out of training; they can still be scored")
    pos, neg = int((y == 1).sum()), int((y == 0).sum())
    rep.add("info", "label_balance", f"{pos:,} churned and {neg:,} retained users ({pos / max(pos + neg, 1):.1%} churn; "
            f"churned means {label} = {schema.label_positive!r})", pos + neg, [], "")
    if min(pos, neg) < MIN_CLASS:
        rep.add("error", "too_few_churners", f"Only {min(pos, neg)} users in the smaller class; at least {MIN_CLASS} "
                "churned and retained users are needed", min(pos, neg), [], "cannot train: upload more data")
    else:
        check_leaks(df.loc[~miss], y[~miss], schema, rep)
    for col in df.columns:
        if col in schema.roles.values() or not _is_text(df[col]):
            continue
        if datetime_share(df[col]) > 0.9:
            rep.add("info", "date_feature", f"Column {col!r} holds dates", int(df[col].notna().sum()), [col],
                    "turned into an age in days")


def check_leaks(X: pd.DataFrame, y: pd.Series, schema: Schema, rep: ValidationReport) -> list[str]:
    """Flag a feature that almost determines the label by itself (single-feature ROC-AUC over 0.98)."""
    from sklearn.metrics import roc_auc_score

    leaks = []
    yy = y.to_numpy()
    if len(np.unique(yy)) < 2:
        return leaks
    for col in X.columns:
        if col in schema.roles.values():
            continue
        s = X[col]
        if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
            score = s.astype("float64").fillna(s.astype("float64").median())
        elif s.nunique() <= 50:
            score = s.astype("string").fillna("(missing)").map(
                pd.Series(yy).groupby(s.astype("string").fillna("(missing)").to_numpy()).mean()).astype(float)
        else:
            continue
        if score.nunique() < 2:
            continue
        auc = roc_auc_score(yy, score.to_numpy())
        if max(auc, 1 - auc) >= LEAK_AUC:
            leaks.append(col)
            rep.add("warning", "label_leak", f"Column {col!r} alone predicts the label almost perfectly "
                    f"(ROC-AUC {max(auc, 1 - auc):.3f}): it probably records the outcome", 1, [col],
                    "left out of the features (keep it only if it is known before the churn happens)")
    return leaks


def _identifier_features(df: pd.DataFrame, schema: Schema, rep: ValidationReport) -> None:
    """Text columns with (nearly) one value per row look like identifiers and are never features."""
    if schema.kind != "users":
        return
    n = len(df)
    for col in df.columns:
        if col in schema.roles.values() or n < 20:
            continue
        s = df[col]
        k = s.nunique(dropna=True)
        looks_id = norm(col).endswith(("id", "uuid", "key", "email", "phone", "name")) and k > 0.5 * n
        if (_is_text(s) and k >= 0.95 * n and datetime_share(s) < 0.5) or looks_id:
            rep.add("warning", "identifier_feature", f"Column {col!r} looks like an identifier ({k:,} distinct values "
                    f"in {n:,} rows)", k, [col], "not used as a feature")


def validate_dataset(frame: pd.DataFrame) -> ValidationReport:
    """Checks on a labelled dataset: enough users and enough of each class to train."""
    rep = ValidationReport()
    lab = frame["churned"].dropna()
    pos, neg = int((lab == 1).sum()), int((lab == 0).sum())
    if len(frame["user_id"].unique()) < MIN_USERS:
        rep.add("error", "too_few_users", f"Only {frame['user_id'].nunique()} users in the dataset; at least "
                f"{MIN_USERS} are needed", frame["user_id"].nunique(), [], "use a longer lookback or an earlier cutoff")
    if min(pos, neg) < MIN_CLASS:
        which = "churned" if pos < neg else "retained"
        rep.add("error", "too_few_churners", f"Only {min(pos, neg)} {which} users in the labelled snapshots; at least "
                f"{MIN_CLASS} of each are needed to train", min(pos, neg), [],
                "change the horizon or cutoff, or add snapshots")
    return rep
