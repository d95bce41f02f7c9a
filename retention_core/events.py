"""Event log -> labelled snapshots, without leaking the future.

Contract (see DESIGN.md): a snapshot at cutoff ``T`` uses only events at or before ``T`` for features; a user counted in
it made at least one qualifying purchase in the lookback window ``(T - lookback, T]``; the user is labelled
``churned = 1`` when no qualifying purchase falls in ``(T, T + horizon]``. Cutoffs are day boundaries: the cutoff
``2010-09-10`` is the instant ``2010-09-10 00:00``; a time of day is rounded up to the next midnight. A snapshot whose
horizon reaches past the end of the data cannot be labelled yet: its label is missing and it is the one to score.

A qualifying purchase is a purchase row (any row when there is no event type column) that is not a cancellation, not a
return, and has a positive quantity, price and amount where those columns exist.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from .errors import ConfigError, DataError
from .io import parse_datetime
from .roles import CANCEL_WORDS, RETURN_WORDS, Schema, require_roles

NON_PRODUCT_CODES = {"POST", "DOT", "M", "BANK CHARGES", "AMAZONFEE", "C2", "D", "CRUK", "S", "B", "PADS",
                     "ADJUST", "ADJUST2", "TEST001", "TEST002", "SP1002", "GIFT"}
CANONICAL = ["user_id", "ts", "order_id", "amount", "quantity", "event_type", "product", "category", "rating",
             "is_purchase", "is_return", "is_cancel", "is_nonproduct"]


@dataclass
class SnapshotConfig:
    """How to cut an event log into labelled snapshots (days)."""

    horizon_days: int = 90
    lookback_days: int = 365
    cutoff: str | None = None  # latest labelled snapshot; None = the last date whose horizon is fully observed
    n_snapshots: int = 1
    step_days: int = 30
    windows: tuple[int, ...] = (7, 30, 90, 180, 365)
    sequence_weeks: int = 26

    def __post_init__(self) -> None:
        for name in ("horizon_days", "lookback_days", "n_snapshots", "step_days", "sequence_weeks"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"{name.replace('_', ' ')} must be a whole number of at least 1, got {v!r}.")
        if self.horizon_days > 3650 or self.lookback_days > 3650:
            raise ConfigError("Horizon and lookback must be at most 3650 days.")
        self.windows = tuple(sorted({int(w) for w in self.windows}))
        if self.cutoff is not None:
            to_cutoff(self.cutoff)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["windows"] = list(self.windows)
        return d


def to_cutoff(value) -> pd.Timestamp:
    """A cutoff as a midnight timestamp (a time of day is rounded up to the next midnight)."""
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise ConfigError(f"Cutoff {value!r} is not a date. Use YYYY-MM-DD, e.g. 2010-09-10.") from None
    if ts is pd.NaT or pd.isna(ts):
        raise ConfigError(f"Cutoff {value!r} is not a date. Use YYYY-MM-DD, e.g. 2010-09-10.")
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts.ceil("D")


def _text(s: pd.Series) -> pd.Series:
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


def canonical_events(df: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """The raw log in the product's canonical columns (``CANONICAL`` + user attributes under their own names).

    Rows without a user id or a readable timestamp and exact duplicate rows are dropped (the validation report says so);
    counts are in ``out.attrs["cleaning"]``.
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
    out["user_id"] = _text(df[r["user_id"]])
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
    out["order_id"] = _text(df[r["order_id"]]) if r.get("order_id") else pd.Series(pd.NA, index=df.index, dtype="string")
    out["amount"] = amount.replace([np.inf, -np.inf], np.nan)
    out["quantity"] = q if q is not None else np.nan
    out["event_type"] = _text(df[r["event_type"]]) if r.get("event_type") else pd.Series(pd.NA, index=df.index, dtype="string")
    out["product"] = _text(df[r["product"]]) if r.get("product") else pd.Series(pd.NA, index=df.index, dtype="string")
    out["category"] = _text(df[r["category"]]) if r.get("category") else pd.Series(pd.NA, index=df.index, dtype="string")
    out["rating"] = pd.to_numeric(df[r["rating"]], errors="coerce").astype("float64") if r.get("rating") else np.nan

    et = out["event_type"]
    is_cancel = _per_value(et, lambda t: t.str.contains(CANCEL_WORDS, na=False))
    if r.get("order_id"):
        is_cancel |= cancelled_orders(out["order_id"])
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
        out["is_nonproduct"] = non_product_lines(prod)
    else:
        out["is_nonproduct"] = False
    for a in schema.attributes:
        if a in df.columns and a not in out.columns:
            out[a] = _text(df[a])
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


def cancelled_orders(order_ids: pd.Series) -> pd.Series:
    """Cancellation lines by order id: ``C`` followed by a digit (as in ``C489449``), when that pattern is a minority
    of the ids (so a shop whose every order id starts with ``C`` is not read as all cancellations)."""
    c = _per_value(order_ids, lambda t: t.str.match(r"^[Cc]\d", na=False).fillna(False))
    return c if 0 < c.mean() < 0.5 else pd.Series(False, index=order_ids.index)


def non_product_lines(codes: pd.Series) -> pd.Series:
    """Lines that are not products: postage, fees and manual adjustments (known codes, and codes without a digit when
    almost every product code has one)."""
    known = _per_value(codes, lambda t: t.str.strip().str.upper().isin(NON_PRODUCT_CODES).fillna(False))
    has_digit = _per_value(codes, lambda t: t.str.contains(r"\d", na=False).fillna(False))
    if has_digit.mean() > 0.8:
        return known | (~has_digit & codes.notna().to_numpy())
    return known


def exact_duplicates(df: pd.DataFrame) -> pd.Series:
    """Rows that repeat an earlier row exactly (the first copy is not marked).

    Rows are hashed first and compared cell by cell only where a hash repeats, which is exact and about twice as fast
    as comparing every row on a large log.
    """
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


def data_end(ev: pd.DataFrame) -> pd.Timestamp:
    """The first midnight at or after the last event: everything up to it is observed."""
    return pd.Timestamp(ev["ts"].max()).ceil("D")


def default_config(ev: pd.DataFrame) -> SnapshotConfig:
    """Defaults suited to the log's span: a 90-day horizon and 365-day lookback when the data allows."""
    span = max(int((ev["ts"].max() - ev["ts"].min()).days), 1)
    horizon = 90 if span >= 270 else max(7, span // 3)
    lookback = 365
    step = 30 if horizon >= 60 else max(1, horizon // 2)
    room = span - horizon - 60
    n = max(1, min(6, room // step + 1)) if room > 0 else 1
    return SnapshotConfig(horizon_days=horizon, lookback_days=lookback, n_snapshots=int(n), step_days=step)


def snapshot_dates(ev: pd.DataFrame, cfg: SnapshotConfig) -> list[pd.Timestamp]:
    """The labelled cutoffs ``T, T - step, ...`` (latest first), each inside the data."""
    end, start = data_end(ev), pd.Timestamp(ev["ts"].min()).floor("D")
    last = to_cutoff(cfg.cutoff) if cfg.cutoff is not None else end - pd.Timedelta(days=cfg.horizon_days)
    if last <= start:
        raise ConfigError(f"The log spans {start.date()} to {end.date()}: too short for a {cfg.horizon_days}-day horizon. "
                          "Shorten the horizon or upload a longer history.")
    if last > end:
        raise ConfigError(f"Cutoff {last.date()} is after the end of the data ({end.date()}). Pick an earlier date.")
    dates = [last - pd.Timedelta(days=cfg.step_days * i) for i in range(cfg.n_snapshots)]
    dates = [d for d in dates if d > start]
    return dates


@dataclass
class Dataset:
    """A per-user (and per-snapshot) table ready for modelling."""

    frame: pd.DataFrame  # user_id, snapshot_date, churned (0/1, missing = not labelled yet), features...
    numeric: list[str]
    categorical: list[str]
    sequences: np.ndarray | None = None  # (rows, weeks, channels) float32, rows aligned with frame
    channels: list[str] = field(default_factory=list)
    config: dict = field(default_factory=dict)
    kind: str = "events"

    @property
    def features(self) -> list[str]:
        return self.numeric + self.categorical

    def labelled(self) -> "Dataset":
        return self.subset(self.frame["churned"].notna().to_numpy())

    def subset(self, mask: np.ndarray) -> "Dataset":
        seq = self.sequences[mask] if self.sequences is not None else None
        return Dataset(self.frame.loc[mask].reset_index(drop=True), self.numeric, self.categorical, seq,
                       self.channels, self.config, self.kind)

    def summary(self) -> pd.DataFrame:
        """Label balance per snapshot."""
        f = self.frame
        key = f["snapshot_date"] if "snapshot_date" in f else pd.Series("all", index=f.index)
        g = f.groupby(key, sort=True)
        out = pd.DataFrame({"users": g.size(), "labelled": g["churned"].count(),
                            "churned": g["churned"].sum(min_count=1), "churn_rate": g["churned"].mean()})
        out.index.name = "snapshot_date"
        return out.reset_index()


def build_dataset(ev: pd.DataFrame, cfg: SnapshotConfig | None = None, *, sequences: bool = False,
                  cutoffs: list | None = None, engine: str = "duckdb") -> Dataset:
    """Features and labels at each cutoff (``cutoffs`` given, or :func:`snapshot_dates` of ``cfg``).

    ``engine="spark"`` builds the same Dataset on Spark (:mod:`retention_core.spark`, proven equal column by column).
    """
    from . import features

    if engine != "duckdb":  # --- engine choice ---
        if engine != "spark":
            raise ConfigError(f"engine must be 'duckdb' or 'spark', got {engine!r}.")
        from . import spark

        return spark.build_dataset(ev, cfg, sequences=sequences, cutoffs=cutoffs)

    cfg = cfg or default_config(ev)
    dates = [to_cutoff(c) for c in cutoffs] if cutoffs is not None else snapshot_dates(ev, cfg)
    if not dates:
        raise ConfigError("No snapshot fits in the data with these settings. Use fewer snapshots, a shorter step or "
                          "a later cutoff.")
    frame, seq = features.compute(ev, dates, cfg, end=data_end(ev), sequences=sequences)
    if frame.empty:
        raise DataError(f"No user made a purchase in the {cfg.lookback_days} days before the cutoff(s) "
                        f"{', '.join(str(d.date()) for d in dates)}. Check the purchase settings or the cutoff.")
    numeric, categorical = features.feature_columns(frame, attributes=[c for c in ev.columns if c not in CANONICAL])
    channels = list(features.SEQUENCE_CHANNELS) if sequences else []
    conf = cfg.as_dict()
    conf["cutoffs"] = [str(d.date()) for d in dates]
    return Dataset(frame, numeric, categorical, seq, channels, conf, "events")


def scoring_snapshot(ev: pd.DataFrame, cfg: SnapshotConfig, as_of=None, *, sequences: bool = False,
                     engine: str = "duckdb") -> Dataset:
    """The snapshot to score: features as of ``as_of`` (default: the end of the data); labels are not known."""
    if engine == "spark":  # --- engine choice ---
        from . import spark

        return spark.scoring_snapshot(ev, cfg, as_of, sequences=sequences)
    T = to_cutoff(as_of) if as_of is not None else data_end(ev)
    ds = build_dataset(ev, cfg, sequences=sequences, cutoffs=[T], engine=engine)
    ds.frame["churned"] = ds.frame["churned"].where(pd.Series(False, index=ds.frame.index))
    return ds


_SAFE = re.compile(r"[^0-9a-zA-Z]+")


def slug(value: str) -> str:
    return _SAFE.sub("_", str(value).strip().lower()).strip("_")[:30] or "other"
