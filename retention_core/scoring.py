"""Writing what the product hands out: safe, atomic CSV/Parquet files.

Every text cell that a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return) is prefixed with a single quote, so opening an exported list in Excel or Sheets never executes anything.
Numbers stay numbers. Lines end in CRLF (RFC 4180), so a cell holding a line break is always quoted. Files are
written to a temporary name next to the target and renamed into place, so a crash never leaves a half-written file
where a good one was.

Also here: scoring a saved run on new data, and the at-risk list (who to contact: by threshold, top K, budget or
value at risk, within segments) with its streamed, formula-safe export and keyed pseudonyms for user ids.
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
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


@contextmanager
def atomic_target(path: str | os.PathLike):
    """Yield a temporary path next to ``path``; on success it is renamed over ``path``, on failure removed, so a
    crash or an error never leaves a half-written file where a good one was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield tmp
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
    with atomic_target(path) as tmp:
        if suffix == ".parquet":
            df.to_parquet(tmp, index=False)
        elif suffix == ".csv.gz":
            import gzip

            with gzip.open(tmp, "wt", encoding="utf-8", newline="") as fh:
                _write_csv_chunks(df, fh, chunk_rows)
        else:
            with open(tmp, "w", encoding="utf-8", newline="") as fh:
                _write_csv_chunks(df, fh, chunk_rows)
    return path


def _write_csv_chunks(df: pd.DataFrame, fh, chunk_rows: int) -> int:
    """Write ``df`` as formula-safe CSV to the open text handle ``fh``, ``chunk_rows`` rows at a time (only one
    neutralised chunk is held at once). Returns the number of data rows written."""
    chunk_rows = max(int(chunk_rows), 1)
    for start in range(0, max(len(df), 1), chunk_rows):
        part = neutralise_frame(df.iloc[start:start + chunk_rows])
        # CRLF line ends (RFC 4180): the writer then quotes every cell holding a CR or LF, so a stray carriage
        # return inside a text cell can never split a row
        part.to_csv(fh, index=False, header=start == 0, date_format="%Y-%m-%d", lineterminator="\r\n")
        del part
    return len(df)


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


def score(run, df: pd.DataFrame, *, as_of=None, model: str | None = None, engine: str = "duckdb",
          spark_master: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame, object]:
    """Churn probability, risk decile and rank for every user; returns (scores, feature rows, sequences).

    ``engine="spark"`` builds the features on Spark and applies the model to their partitions
    (:func:`retention_core.spark.scoring.score`; ``df`` may then also be the path of a Parquet file or folder).
    """
    from .models import REGISTRY, for_population

    if engine != "duckdb":  # --- engine choice ---
        if engine != "spark":
            raise ConfigError(f"engine must be 'duckdb' or 'spark', got {engine!r}.")
        from .spark.scoring import score as spark_score

        return spark_score(run, df, as_of=as_of, model=model, master=spark_master)

    key = model or run.best
    m = run.model(key)  # an unknown key: a message listing the run's models
    frame, seq = features_for_run(run, df, as_of=as_of)
    X = frame[run.info["numeric"] + run.info["categorical"]]
    m = for_population(m, X)  # BG/NBD learns from all purchases up to the scoring date
    p = m.predict_proba(X, sequences=seq) if REGISTRY[key].needs_sequences else m.predict_proba(X)
    return scores_table(frame["user_id"], p), frame, seq


def scores_table(user_ids, p) -> pd.DataFrame:
    """``user_id, churn_probability, risk_decile, rank`` from ids and churn probabilities (rank 1 = most at risk)."""
    p = np.clip(np.asarray(p, dtype=float), 0, 1)
    out = pd.DataFrame({"user_id": pd.Series(user_ids).astype(str).to_numpy(), "churn_probability": p})
    out["risk_decile"] = risk_deciles(p)
    order = np.argsort(-p, kind="stable")
    rank = np.empty(len(p), dtype=np.int64)
    rank[order] = np.arange(1, len(p) + 1)
    out["rank"] = rank
    return out


def validation_scores(validation: pd.DataFrame, model: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Scores and feature rows of a run's validation users, from the predictions saved with the run."""
    col = f"p:{model}"
    if col not in validation.columns:
        raise ConfigError(f"The run holds no validation predictions of model {model!r}.")
    drop = [c for c in validation.columns if str(c).startswith("p:") or c == "churned"]
    frame = validation.drop(columns=drop).reset_index(drop=True)
    return scores_table(frame["user_id"], validation[col].to_numpy(dtype=float)), frame


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
    key = args.model or run.best
    if getattr(args, "engine", "duckdb") == "spark":  # --- Spark engine: Parquet is read by Spark itself ---
        from .spark.source import is_parquet_source

        data = args.data if is_parquet_source(args.data) else read_table(args.data, sheet=args.sheet)
        scores, frame, seq = score(run, data, as_of=args.as_of, model=key, engine="spark",
                                   spark_master=args.spark_master)
    else:
        df = read_table(args.data, sheet=args.sheet)
        scores, frame, seq = score(run, df, as_of=args.as_of, model=key)
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
                              sequences=seq[idx] if seq is not None else None, model=key)
        for i in range(args.reasons):
            out.insert(4 + i, f"reason_{i + 1}", reasons[i] if i < len(reasons) else "")
    if getattr(args, "pseudonymise_key_env", None):
        key = os.environ.get(args.pseudonymise_key_env, "")
        if not key:
            raise ConfigError(f"Environment variable {args.pseudonymise_key_env} is empty or not set: put the "
                              "pseudonymisation key in it.")
        out = pseudonymise_list(out, key)
    out["model"] = key
    out["threshold"] = float(run.info.get("thresholds", {}).get(key, run.threshold))
    out["scoring_date"] = str(pd.Timestamp(frame["snapshot_date"].iloc[0]).date()) if "snapshot_date" in frame and len(frame) \
        else str(pd.Timestamp.now().date())
    write_table(out, args.out)
    print(f"scored {len(scores):,} users with {key}; wrote {len(out):,} rows to {args.out} "
          f"in {time.perf_counter() - t0:.1f} s")
    return 0


# ----------------------------------------------------------------------------------------------- at-risk lists
METHODS = ("threshold", "top_k", "budget", "value")
#: Columns that hold a user's past revenue, the first present is the user's value.
REVENUE_COLUMNS = ("revenue_365d", "revenue_total")
#: Columns that hold a user's past orders: the expected purchases a churner takes away, when there is no revenue.
PURCHASE_COLUMNS = ("orders_365d", "orders_total", "frequency")
SCORE_COLUMNS = ["user_id", "churn_probability", "risk_decile", "rank"]
_NOT_SEGMENTS = {"user_id", "snapshot_date", "churned", "cutoff"}


def scoring_date(frame: pd.DataFrame | None) -> str:
    """The date the scores describe: the snapshot date of the feature rows, else today (YYYY-MM-DD)."""
    if frame is not None and "snapshot_date" in frame.columns and len(frame):
        d = pd.Timestamp(frame["snapshot_date"].iloc[0])
        if not pd.isna(d):
            return str(d.date())
    return str(pd.Timestamp.now().date())


def segment_columns(frame: pd.DataFrame | None) -> list[str]:
    """Attribute columns of the scored users that make segments (text or categories: country, channel, plan...)."""
    if frame is None:
        return []
    out = []
    for c in frame.columns:
        if c in _NOT_SEGMENTS or str(c).startswith("p:") or str(c).startswith("reason_"):
            continue
        dt = frame[c].dtype
        if dt == object or pd.api.types.is_string_dtype(dt) or isinstance(dt, pd.CategoricalDtype) or \
                pd.api.types.is_bool_dtype(dt):
            out.append(c)
    return out


def segment_values(frame: pd.DataFrame, column: str, limit: int = 200) -> list[str]:
    """The values of a segment column as the filter compares them (text; missing values as ``(missing)``)."""
    s = frame[column]
    txt = s.astype(object).where(s.notna(), "(missing)").astype(str)
    return sorted(txt.unique().tolist())[:limit]


def value_columns(frame: pd.DataFrame | None) -> list[str]:
    """Numeric columns of the scored users that can stand for a user's value (revenue and orders first)."""
    if frame is None:
        return []
    cols = [c for c in frame.columns if c not in _NOT_SEGMENTS and not str(c).startswith("p:")
            and pd.api.types.is_numeric_dtype(frame[c].dtype) and not pd.api.types.is_bool_dtype(frame[c].dtype)]
    first = [c for c in REVENUE_COLUMNS + PURCHASE_COLUMNS if c in cols]
    return first + [c for c in cols if c not in first]


def value_basis(frame: pd.DataFrame | None, value_col: str | None = None) -> str | None:
    """The column a user's value is read from: ``value_col`` when given, else past revenue (``revenue_365d``,
    ``revenue_total``), else past orders (the purchases a churner takes away); None when the rows hold none."""
    if value_col is not None:
        if frame is None or value_col not in frame.columns:
            raise ConfigError(f"The value column {value_col!r} is not among the scored users' columns.")
        if not pd.api.types.is_numeric_dtype(frame[value_col].dtype):
            raise ConfigError(f"The value column {value_col!r} must hold numbers.")
        return value_col
    if frame is None:
        return None
    for c in REVENUE_COLUMNS + PURCHASE_COLUMNS:
        if c in frame.columns and pd.api.types.is_numeric_dtype(frame[c].dtype):
            return c
    return None


def user_value(frame: pd.DataFrame | None, n: int, value_col: str | None = None) -> tuple[np.ndarray, str | None]:
    """Each user's value (missing and negative values count as 0; 1 per user when the rows hold no value)."""
    col = value_basis(frame, value_col)
    if col is None:
        return np.ones(n, dtype=float), None
    v = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return np.clip(np.nan_to_num(v, nan=0.0), 0, None), col


def budget_contacts(budget: float, cost_per_contact: float) -> int:
    """How many users a budget pays for: ``floor(budget / cost_per_contact)``, exact for amounts typed in decimals."""
    from decimal import Decimal, InvalidOperation

    try:
        b, c = Decimal(str(budget)), Decimal(str(cost_per_contact))
    except (InvalidOperation, ValueError):
        raise ConfigError(f"Budget and cost per contact must be numbers, got {budget!r} and "
                          f"{cost_per_contact!r}.") from None
    if not b.is_finite() or b < 0:
        raise ConfigError(f"The budget must be 0 or more, got {budget!r}.")
    if not c.is_finite() or c <= 0:
        raise ConfigError(f"The cost per contact must be more than 0, got {cost_per_contact!r}.")
    return int(b // c)


def _segment_mask(table: pd.DataFrame, segment_filter: dict | None) -> np.ndarray:
    mask = np.ones(len(table), dtype=bool)
    for col, allowed in (segment_filter or {}).items():
        if allowed is None:
            continue
        if col not in table.columns:
            raise ConfigError(f"Cannot filter by {col!r}: the scored users have no such column "
                              f"(they have {', '.join(map(str, table.columns[:12]))}).")
        values = list(allowed) if isinstance(allowed, (list, tuple, set, frozenset, np.ndarray, pd.Series)) \
            else [allowed]
        if not values:
            continue
        s = table[col]
        wanted = {str(v) for v in values}
        txt = s.astype(object).where(s.notna(), "(missing)").astype(str)
        mask &= txt.isin(wanted).to_numpy()
    return mask


def _reason_frame(reasons, n: int) -> pd.DataFrame | None:
    if reasons is None:
        return None
    if isinstance(reasons, pd.DataFrame):
        if len(reasons) != n:
            raise ConfigError(f"Reasons are given for {len(reasons):,} users but {n:,} were scored.")
        return reasons.reset_index(drop=True)
    lists = list(reasons)
    for r in lists:
        if len(r) != n:
            raise ConfigError(f"Reasons are given for {len(r):,} users but {n:,} were scored.")
    return pd.DataFrame({f"reason_{i + 1}": list(r) for i, r in enumerate(lists)})


def at_risk_list(scores: pd.DataFrame, frame: pd.DataFrame | None = None, *, method: str = "threshold",
                 threshold: float | None = None, k: int | None = None, budget: float | None = None,
                 cost_per_contact: float | None = None, value_col: str | None = None,
                 segment_filter: dict | None = None, segment_cols: list[str] | None = None, reasons=None,
                 model: str | None = None, date: str | None = None) -> pd.DataFrame:
    """The users to contact, most at risk first.

    ``scores`` comes from :func:`score` and ``frame`` is its feature rows (same rows, same order). Users are first
    narrowed by ``segment_filter`` (column -> allowed value or values; attributes of ``frame`` and ``risk_decile``),
    then chosen by ``method``:

    - ``"threshold"``: everyone whose churn probability is at least ``threshold``;
    - ``"top_k"``: the ``k`` users most at risk;
    - ``"budget"``: as many of the users most at risk as ``budget / cost_per_contact`` pays for;
    - ``"value"``: ranked by value at risk (churn probability x the user's value), keeping the top ``k``, or what
      the budget pays for, or everyone above ``threshold`` (whichever is given, in that order), else everyone.

    A user's value is ``value_col`` when given, else past revenue (``revenue_365d``, ``revenue_total``), else past
    orders (the purchases a churner takes away), else 1. ``reasons`` (optional) are per-user reason texts aligned
    with ``scores``: ``n`` lists or a DataFrame of ``reason_1..N``. ``model`` and ``date`` fill the ``model`` and
    ``scoring_date`` columns (``date`` defaults to the snapshot date of ``frame``). ``threshold`` filters only for the
    ``"threshold"`` method (and ``"value"`` without a K or a budget); otherwise it is reported as the model's decision
    threshold.

    Columns: ``user_id, churn_probability, risk_decile, rank``, the segment columns, ``reason_1..N`` when given,
    ``value, value_at_risk, threshold, model, scoring_date``. ``rank`` is always the rank by churn probability among
    all scored users. ``attrs["value_basis"]`` names the value column (None: one per user).
    """
    if method not in METHODS:
        raise ConfigError(f"Unknown selection method {method!r}: use one of {', '.join(METHODS)}.")
    missing = [c for c in SCORE_COLUMNS if c not in scores.columns]
    if missing:
        raise ConfigError(f"The scores lack the columns {', '.join(missing)}; score the users first.")
    n = len(scores)
    if frame is not None and len(frame) != n:
        raise ConfigError(f"The scores ({n:,} users) and the feature rows ({len(frame):,}) do not match.")
    if threshold is not None and not 0 <= float(threshold) <= 1:
        raise ConfigError(f"The threshold must be a probability between 0 and 1, got {threshold}.")
    if k is not None and int(k) < 1:
        raise ConfigError(f"The number of users to contact must be at least 1, got {k}.")

    base = scores[SCORE_COLUMNS].reset_index(drop=True)
    fr = frame.reset_index(drop=True) if frame is not None else None
    segs = list(segment_cols) if segment_cols is not None else segment_columns(fr)
    if fr is not None:
        for c in segs:
            if c not in fr.columns:
                raise ConfigError(f"Segment column {c!r} is not among the scored users' columns.")
        for c in (segment_filter or {}):
            if c not in segs and c in fr.columns and c not in base.columns:
                segs.append(c)
    elif segs:
        raise ConfigError("Segment columns need the scored users' feature rows.")
    lookup = pd.concat([base, fr[[c for c in segs if c not in base.columns]]], axis=1) if segs else base

    p = base["churn_probability"].to_numpy(dtype=float)
    value, basis = user_value(fr, n, value_col)
    var = p * value
    keep = np.flatnonzero(_segment_mask(lookup, segment_filter))
    by_rank = keep[np.argsort(base["rank"].to_numpy()[keep], kind="stable")]

    if method == "threshold":
        if threshold is None:
            raise ConfigError("Choose a churn-probability threshold to select users by threshold.")
        chosen = by_rank[p[by_rank] >= float(threshold)]
    elif method == "top_k":
        if k is None:
            raise ConfigError("Choose how many users to contact (K).")
        chosen = by_rank[:int(k)]
    elif method == "budget":
        if budget is None or cost_per_contact is None:
            raise ConfigError("Give both the campaign budget and the cost per contact.")
        chosen = by_rank[:budget_contacts(budget, cost_per_contact)]
    else:
        by_value = by_rank[np.argsort(-var[by_rank], kind="stable")]
        if k is not None:
            chosen = by_value[:int(k)]
        elif budget is not None or cost_per_contact is not None:
            if budget is None or cost_per_contact is None:
                raise ConfigError("Give both the campaign budget and the cost per contact.")
            chosen = by_value[:budget_contacts(budget, cost_per_contact)]
        elif threshold is not None:
            chosen = by_value[p[by_value] >= float(threshold)]
        else:
            chosen = by_value

    out = lookup.iloc[chosen].reset_index(drop=True)
    out = out[SCORE_COLUMNS + [c for c in segs if c not in SCORE_COLUMNS]]
    rf = _reason_frame(reasons, n)
    if rf is not None:
        part = rf.iloc[chosen].reset_index(drop=True)
        for c in part.columns:
            out[c] = part[c].fillna("").to_numpy()
    out["value"] = value[chosen]
    out["value_at_risk"] = var[chosen]
    out["threshold"] = float(threshold) if threshold is not None else np.nan
    out["model"] = model if model is not None else ""
    out["scoring_date"] = date or scoring_date(fr)
    out.attrs["value_basis"] = basis
    out.attrs["method"] = method
    out.attrs["eligible"] = int(len(keep))
    return out


def attach_reasons(list_df: pd.DataFrame, reasons) -> pd.DataFrame:
    """``list_df`` with ``reason_1..N`` (``n`` lists aligned with its rows) placed before ``value`` (a copy)."""
    rf = _reason_frame(reasons, len(list_df))
    out = list_df.drop(columns=[c for c in list_df.columns if str(c).startswith("reason_")])
    at = out.columns.get_loc("value") if "value" in out.columns else len(out.columns)
    for i, c in enumerate(rf.columns if rf is not None else []):
        out.insert(at + i, c, rf[c].fillna("").to_numpy())
    out.attrs.update(list_df.attrs)
    return out


def list_positions(scores: pd.DataFrame, list_df: pd.DataFrame) -> np.ndarray:
    """The rows of ``scores`` (and of its feature rows) that the users of ``list_df`` came from, in list order."""
    ids = pd.Index(scores["user_id"].astype(str))
    if not ids.is_unique:
        raise ConfigError("Some users appear more than once in the scored data; give one row per user.")
    pos = ids.get_indexer(list_df["user_id"].astype(str))
    if (pos < 0).any():
        raise ConfigError("The list holds users that were not scored; score the data again.")
    return pos


def list_summary(list_df: pd.DataFrame) -> dict:
    """Users selected, expected churners among them (sum of churn probabilities) and value at risk."""
    p = list_df["churn_probability"].to_numpy(dtype=float) if len(list_df) else np.zeros(0)
    var = list_df["value_at_risk"].to_numpy(dtype=float) if "value_at_risk" in list_df and len(list_df) \
        else np.zeros(0)
    return {"users": int(len(list_df)), "expected_churners": float(p.sum()), "value_at_risk": float(var.sum()),
            "mean_probability": float(p.mean()) if len(p) else float("nan")}


# ----------------------------------------------------------------------------------------------- export
def export_csv(df: pd.DataFrame, path_or_buffer, *, chunk_rows: int = 100_000) -> int:
    """Write ``df`` as formula-safe UTF-8 CSV, ``chunk_rows`` rows at a time: only one neutralised chunk is in memory
    besides ``df`` itself, so a list of a million users exports without several full copies.

    ``path_or_buffer`` is a file path (written to a temporary name next to it and renamed into place, so a failed
    export never leaves a half-written file) or an open text or binary file object. Returns the rows written.
    """
    import io

    if isinstance(path_or_buffer, (str, os.PathLike)):
        with atomic_target(path_or_buffer) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
            return _write_csv_chunks(df, fh, chunk_rows)
    if isinstance(path_or_buffer, io.TextIOBase):
        return _write_csv_chunks(df, path_or_buffer, chunk_rows)
    text = io.TextIOWrapper(path_or_buffer, encoding="utf-8", newline="", write_through=True)
    try:
        rows = _write_csv_chunks(df, text, chunk_rows)
        text.flush()
    finally:
        text.detach()  # leave the caller's file object open
    return rows


def export_csv_bytes(df: pd.DataFrame, *, chunk_rows: int = 100_000) -> bytes:
    """The formula-safe CSV of ``df`` as bytes (for a download button); the same content :func:`export_csv`
    writes."""
    import io

    buf = io.BytesIO()
    export_csv(df, buf, chunk_rows=chunk_rows)
    return buf.getvalue()


def pseudonymise(ids, key: str | bytes, *, length: int = 16):
    """Keyed pseudonyms for user ids: HMAC-SHA256 of the id's text under ``key``, as ``length`` hex characters.

    The same id and key always give the same pseudonym (lists exported on different days can be joined), a different
    key gives unrelated ones, and without the key the ids cannot be recovered by hashing guesses. Returns a Series
    (same index) for a Series, else a list.
    """
    import hashlib
    import hmac

    if isinstance(key, str):
        key = key.encode("utf-8")
    if not key:
        raise ConfigError("Give a key to pseudonymise the user ids.")
    if not 8 <= int(length) <= 64:
        raise ConfigError(f"The pseudonym length must be between 8 and 64 hex characters, got {length}.")
    proto = hmac.new(key, digestmod=hashlib.sha256)

    def one(v) -> str | None:
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
            return None
        h = proto.copy()
        h.update(str(v).encode("utf-8"))
        return h.hexdigest()[:length]

    if isinstance(ids, pd.Series):
        return pd.Series([one(v) for v in ids.astype(object)], index=ids.index, dtype=object, name=ids.name)
    return [one(v) for v in ids]


def pseudonymise_list(list_df: pd.DataFrame, key: str | bytes, *, column: str = "user_id") -> pd.DataFrame:
    """``list_df`` with its user ids replaced by keyed pseudonyms (a copy)."""
    out = list_df.copy()
    out[column] = pseudonymise(out[column], key)
    return out
