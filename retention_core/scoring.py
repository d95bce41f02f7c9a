"""Writing what the product hands out: safe, atomic CSV/Parquet files.

Every text cell that a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return) is prefixed with a single quote, so opening an exported list in Excel or Sheets never executes anything.
Numbers stay numbers. Files are written to a temporary name next to the target and renamed into place, so a crash
never leaves a half-written file where a good one was.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import ConfigError

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise_text(s: pd.Series) -> pd.Series:
    """Prefix formula-like text cells with a single quote (numbers and missing values are left alone)."""
    if not (s.dtype == object or pd.api.types.is_string_dtype(s.dtype) or isinstance(s.dtype, pd.CategoricalDtype)):
        return s
    txt = s.astype("string")
    risky = txt.str.startswith(FORMULA_START, na=False)
    if not risky.any():
        return s
    out = txt.astype(object).where(txt.notna(), None)
    out[risky] = "'" + txt[risky]
    return out


def neutralise_frame(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    out.columns = [("'" + c) if isinstance(c, str) and c.startswith(FORMULA_START) else c for c in out.columns]
    for c in out.columns:
        out[c] = neutralise_text(out[c])
    return out


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_table(df: pd.DataFrame, path: str | os.PathLike, *, chunk_rows: int = 200_000) -> Path:
    """Write ``df`` as CSV (formula-safe, in chunks) or Parquet, chosen by the file name, atomically."""
    path = Path(path)
    suffix = "".join(path.suffixes[-2:]).lower() if path.suffix.lower() == ".gz" else path.suffix.lower()
    if suffix not in (".csv", ".parquet", ".csv.gz"):
        raise ConfigError(f"Output file {path.name!r} must end in .csv, .csv.gz or .parquet.")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        if suffix == ".parquet":
            df.to_parquet(tmp, index=False)
        else:
            compression = "gzip" if suffix == ".csv.gz" else None
            mode = "wb" if compression else "w"
            import gzip

            opener = (lambda: gzip.open(tmp, "wt", encoding="utf-8", newline="")) if compression else \
                (lambda: open(tmp, mode, encoding="utf-8", newline=""))
            with opener() as fh:
                for start in range(0, max(len(df), 1), chunk_rows):
                    part = neutralise_frame(df.iloc[start:start + chunk_rows])
                    part.to_csv(fh, index=False, header=start == 0, date_format="%Y-%m-%d", lineterminator="\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def format_dates(df: pd.DataFrame) -> pd.DataFrame:
    """Snapshot dates as plain YYYY-MM-DD text for export."""
    out = df.copy()
    for c in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[c].dtype):
            out[c] = out[c].dt.strftime("%Y-%m-%d")
    return out


def risk_deciles(p: np.ndarray) -> np.ndarray:
    """Risk decile 1 (highest churn probability) to 10 (lowest), by rank so ties split evenly."""
    p = np.asarray(p, dtype=float)
    if len(p) == 0:
        return np.zeros(0, dtype=int)
    order = np.argsort(-p, kind="stable")
    ranks = np.empty(len(p), dtype=np.int64)
    ranks[order] = np.arange(len(p))
    return (ranks * 10 // len(p) + 1).astype(int)


# ----------------------------------------------------------------------------------------------- scoring a run
def features_for_run(run, df: pd.DataFrame, *, as_of=None):
    """The saved run's feature rows for new data, computed with the same code path as training.

    Event logs: features as of ``as_of`` (default: the end of the data) for users who bought in the lookback window.
    User tables: the saved feature specification. The saved column roles are applied by column name; a role whose
    column is missing is inferred again.
    """
    from .errors import DataError
    from .events import SnapshotConfig, canonical_events, scoring_snapshot
    from .features import apply_user_spec
    from .roles import Schema, infer_schema

    saved = Schema.from_dict(run.info["schema"])
    overrides = {r: c for r, c in saved.roles.items() if c and c in df.columns}
    overrides["kind"] = saved.kind
    overrides["attributes"] = [a for a in saved.attributes if a in df.columns]
    if saved.purchase_values:
        overrides["purchase_values"] = saved.purchase_values
    if saved.label_positive is not None:
        overrides["label_positive"] = saved.label_positive
    if saved.kind == "users":
        overrides.pop("label", None)
    schema = infer_schema(df, overrides)
    if saved.kind == "events":
        ev = canonical_events(df, schema)
        snap = {k: v for k, v in run.info["snapshot"].items() if k in SnapshotConfig.__dataclass_fields__}
        snap["cutoff"] = None
        needs_seq = bool(run.info.get("sequence_weeks"))
        ds = scoring_snapshot(ev, SnapshotConfig(**snap), as_of, sequences=needs_seq)
        frame, seq = ds.frame, ds.sequences
    else:
        frame, seq = apply_user_spec(df, schema, run.info["user_spec"]), None
    cols = run.info["numeric"] + run.info["categorical"]
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        for c in missing:  # a feature the new data cannot have (e.g. no ratings column): unknown, not zero
            frame[c] = np.nan
    if len(missing) == len(cols):
        raise DataError("None of the model's features can be computed from this file. Score data of the same kind "
                        "and columns as the training data.")
    return frame, seq


def score(run, df: pd.DataFrame, *, as_of=None, model: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame, object]:
    """Churn probability, risk decile and rank for every user; returns (scores, feature rows, sequences)."""
    from .models import REGISTRY

    key = model or run.best
    frame, seq = features_for_run(run, df, as_of=as_of)
    X = frame[run.info["numeric"] + run.info["categorical"]]
    m = run.model(key)
    p = m.predict_proba(X, sequences=seq) if REGISTRY[key].needs_sequences else m.predict_proba(X)
    p = np.clip(np.asarray(p, dtype=float), 0, 1)
    out = pd.DataFrame({"user_id": frame["user_id"].astype(str).to_numpy(), "churn_probability": p})
    out["risk_decile"] = risk_deciles(p)
    order = np.argsort(-p, kind="stable")
    rank = np.empty(len(p), dtype=np.int64)
    rank[order] = np.arange(1, len(p) + 1)
    out["rank"] = rank
    return out, frame, seq


def select(scores: pd.DataFrame, *, top: int | None = None, threshold: float | None = None) -> pd.Series:
    """Mask of users chosen by top-K or by a probability threshold (all when neither)."""
    if top is not None:
        if top < 1:
            raise ConfigError(f"--top must be at least 1, got {top}.")
        return scores["rank"] <= top
    if threshold is not None:
        if not 0 <= threshold <= 1:
            raise ConfigError(f"--threshold must be a probability between 0 and 1, got {threshold}.")
        return scores["churn_probability"] >= threshold
    return pd.Series(True, index=scores.index)


def score_cli(args) -> int:
    """``python -m retention_core score RUN DATA --out FILE``."""
    import time

    from .bundle import load_run
    from .io import read_table

    t0 = time.perf_counter()
    if args.reasons < 0:
        raise ConfigError(f"--reasons must be 0 or more, got {args.reasons}.")
    run = load_run(args.run)
    df = read_table(args.data, sheet=args.sheet)
    scores, frame, seq = score(run, df, as_of=args.as_of)
    full = scores.copy()
    for a in run.info["categorical"]:
        if a in frame.columns:
            full[a] = frame[a].to_numpy()
    chosen = full.loc[select(scores, top=args.top, threshold=args.threshold)].sort_values("rank")
    out = chosen.reset_index(drop=True)
    if args.reasons:
        from .explain import top_reasons

        idx = chosen.index.to_numpy()
        reasons = top_reasons(run, frame.iloc[idx].reset_index(drop=True), n=args.reasons,
                              sequences=seq[idx] if seq is not None else None)
        for i in range(args.reasons):
            out.insert(4 + i, f"reason_{i + 1}", reasons[i] if i < len(reasons) else "")
    out["model"] = run.best
    out["threshold"] = run.threshold
    out["scoring_date"] = str(pd.Timestamp(frame["snapshot_date"].iloc[0]).date()) if "snapshot_date" in frame and len(frame) \
        else str(pd.Timestamp.now().date())
    write_table(out, args.out)
    print(f"scored {len(scores):,} users with {run.best}; wrote {len(out):,} rows to {args.out} "
          f"in {time.perf_counter() - t0:.1f} s")
    return 0
