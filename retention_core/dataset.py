"""Labelled snapshots and datasets: the cutoffs, the users each snapshot holds, their features and labels.

Contract (see DESIGN.md and the README's Definitions): a snapshot at cutoff ``T`` uses only events at or before ``T``
for features; a user counted in it made at least one qualifying purchase in the lookback window ``(T - lookback, T]``;
the user is labelled ``churned = 1`` when no qualifying purchase falls in ``(T, T + horizon]``. Cutoffs are day
boundaries: the cutoff ``2010-09-10`` is the instant ``2010-09-10 00:00``; a time of day is rounded up to the next
midnight. A snapshot whose horizon reaches past the end of the data cannot be labelled yet: its label is missing and it
is the one to score. Several snapshots ``T, T - step, ...`` make the training set (:func:`training_cutoffs`).

The canonical event table comes from :mod:`retention_core.events`; the features of each snapshot from
:mod:`retention_core.features` (one place for their definitions); a user table becomes a dataset through its feature
specification (:func:`retention_core.features.user_feature_spec`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from . import features, features_small
from .errors import ConfigError, DataError
from .event_tokens import SequenceInputs, tokenize
from .events import CANONICAL
from .roles import label_series


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
    # (rows, weeks, channels) float32, rows aligned with frame; with event tokens: SequenceInputs (both)
    sequences: np.ndarray | SequenceInputs | None = None
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


def nobody_bought(cfg: SnapshotConfig, dates: list[pd.Timestamp]) -> DataError:
    """The refusal of a log in which no user bought in the lookback window before the cutoff(s): the same words from
    every engine, for datasets and for scoring."""
    return DataError(f"No user made a purchase in the {cfg.lookback_days} days before the cutoff(s) "
                     f"{', '.join(str(d.date()) for d in dates)}. Check the purchase settings or the cutoff.")


def build_dataset(ev: pd.DataFrame, cfg: SnapshotConfig | None = None, *, sequences: bool = False,
                  cutoffs: list | None = None, event_tokens: int = 0) -> Dataset:
    """Features and labels at each cutoff (``cutoffs`` given, or :func:`snapshot_dates` of ``cfg``). ``event_tokens``
    > 0: each row also gets its user's last that many events at or before its cutoff
    (:func:`retention_core.event_tokens.tokenize`), carried with the weekly activity in ``sequences``."""
    cfg = cfg or default_config(ev)
    dates = [to_cutoff(c) for c in cutoffs] if cutoffs is not None else snapshot_dates(ev, cfg)
    if not dates:
        raise ConfigError("No snapshot fits in the data with these settings. Use fewer snapshots, a shorter step or "
                          "a later cutoff.")
    engine = features_small if features_small.fits(ev, cfg) else features  # a few users: NumPy, the same values
    frame, seq = engine.compute(ev, dates, cfg, end=data_end(ev), sequences=sequences or event_tokens > 0)
    if frame.empty:
        raise nobody_bought(cfg, dates)
    if event_tokens > 0:
        seq = SequenceInputs(seq, tokenize(ev, frame, event_tokens))
    numeric, categorical = features.feature_columns(frame, attributes=[c for c in ev.columns if c not in CANONICAL])
    channels = list(features.SEQUENCE_CHANNELS) if seq is not None else []
    conf = cfg.as_dict()
    conf["cutoffs"] = [str(d.date()) for d in dates]
    return Dataset(frame, numeric, categorical, seq, channels, conf, "events")


def scoring_snapshot(ev: pd.DataFrame, cfg: SnapshotConfig, as_of=None, *, sequences: bool = False,
                     event_tokens: int = 0) -> Dataset:
    """The snapshot to score: features as of ``as_of`` (default: the end of the data); labels are not known."""
    T = to_cutoff(as_of) if as_of is not None else data_end(ev)
    ds = build_dataset(ev, cfg, sequences=sequences, cutoffs=[T], event_tokens=event_tokens)
    ds.frame["churned"] = ds.frame["churned"].where(pd.Series(False, index=ds.frame.index))
    return ds


def training_cutoffs(ev, cfg, *, min_history_days: int = 30) -> list[pd.Timestamp]:
    """Cutoffs for training from an event log: the latest labelled one, then back by ``step`` while enough history
    remains, with at least one a full horizon before the latest (for time-aware validation)."""
    start = pd.Timestamp(ev["ts"].min()).floor("D")
    latest = snapshot_dates(ev, type(cfg)(**{**cfg.as_dict(), "n_snapshots": 1}))[0]
    out, step = [], cfg.step_days
    n = max(cfg.n_snapshots, int(np.ceil(cfg.horizon_days / step)) + 3)
    for i in range(n):
        T = latest - pd.Timedelta(days=step * i)
        if T - start < pd.Timedelta(days=min_history_days):
            break
        out.append(T)
    if len(out) < 2 or out[-1] > latest - pd.Timedelta(days=cfg.horizon_days):
        raise ConfigError(f"The log is too short for time-aware validation with a {cfg.horizon_days}-day horizon: it "
                          f"needs about {cfg.horizon_days * 2 + min_history_days} days of history before its end. "
                          "Shorten the horizon or upload a longer log.")
    return out


def user_dataset(df: pd.DataFrame, schema, report=None) -> Dataset:
    """A user table as a :class:`Dataset` (label 1 = churned, missing labels kept as NaN)."""
    excluded = report.excluded_features if report is not None else []
    spec = features.user_feature_spec(df, schema, excluded)
    frame = features.apply_user_spec(df, schema, spec)
    frame.insert(1, "churned", label_series(df, schema).to_numpy() if schema.roles.get("label") else np.nan)
    numeric = spec["numeric"] + [f"{c} (age in days)" for c in spec["dates"]]
    return Dataset(frame.reset_index(drop=True), numeric, list(spec["categorical"]), None, [],
                   {"user_spec": spec}, "users")
