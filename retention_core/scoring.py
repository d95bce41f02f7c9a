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
