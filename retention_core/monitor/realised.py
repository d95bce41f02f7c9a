"""What really happened to the users a run scored: labels from new data, and the realised metrics.

Labels come from :func:`retention_core.dataset.build_dataset` on the new data read with the run's column roles, at
the scoring's as-of date with the run's horizon and lookback: exactly as training labels its snapshots (the README's
Definitions: churned = no qualifying purchase in ``(as-of, as-of + horizon]``). A scoring is *observed* once the data
reaches ``as-of + horizon``. A scored user whose history before the as-of date is not in the new data has no realised
label (counted as scored, not as observed).

Metrics over the observed users, with ``y`` = 1 for a churned user and ``p`` the recorded churn probability:
churn rate (mean of ``y``), predicted rate (mean of ``p``), ROC-AUC, PR-AUC (average precision), Brier score
(mean of ``(p - y)^2``), and recall and precision in the top 10%: the ``ceil(0.1 n)`` users most at risk (by the
recorded rank) hold that share of the churners, and that churn rate. Calibration by decile groups users by the risk
decile recorded at scoring time.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from ..dataset import SnapshotConfig, build_dataset
from ..errors import DataError
from ..evaluation import segment_metrics, top_share_mask
from ..events import canonical_events
from ..roles import Schema, infer_schema, label_series

METRIC_KEYS = ["churn_rate", "predicted_rate", "roc_auc", "pr_auc", "brier", "recall_at_10pct",
               "precision_at_10pct"]
TOP_SHARE = 0.10


# ----------------------------------------------------------------------------------------------- metrics
def realised_metrics(y, p, *, top_share: float = TOP_SHARE) -> dict:
    """The realised figures of probabilities ``p`` against outcomes ``y`` (rows in rank order: ties at the top-10%
    boundary go to the earlier row). Ranking figures are None when only one outcome occurred."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    ok = np.isfinite(y) & np.isfinite(p)
    y, p = y[ok].astype(int), p[ok]
    n, pos = len(y), int(y.sum())
    out = {"users": int(n), "churners": pos, **{k: None for k in METRIC_KEYS}}
    if not n:
        return out
    out["churn_rate"] = float(y.mean())
    out["predicted_rate"] = float(p.mean())
    out["brier"] = float(np.mean((p - y) ** 2))
    top = top_share_mask(p, top_share)
    out["precision_at_10pct"] = float(y[top].mean()) if top.any() else None
    if 0 < pos < n:
        out["roc_auc"] = float(skm.roc_auc_score(y, p))
        out["pr_auc"] = float(skm.average_precision_score(y, p))
        out["recall_at_10pct"] = float(y[top].sum() / pos)
    return out


def calibration_by_decile(y, p, deciles) -> pd.DataFrame:
    """Per recorded risk decile (1 = most at risk): users, mean churn probability, realised churn rate, expected and
    realised churners."""
    f = pd.DataFrame({"risk_decile": pd.to_numeric(pd.Series(deciles), errors="coerce").to_numpy(),
                      "y": np.asarray(y, dtype=float), "p": np.asarray(p, dtype=float)})
    f = f[np.isfinite(f["y"]) & np.isfinite(f["p"]) & f["risk_decile"].notna()]
    g = f.groupby(f["risk_decile"].astype(int), sort=True)
    out = pd.DataFrame({"users": g.size(), "predicted": g["p"].mean(), "realised": g["y"].mean(),
                        "expected_churners": g["p"].sum(), "churners": g["y"].sum()})
    out.index.name = "risk_decile"
    return out.reset_index()


def segment_outcomes(y, p, segments: pd.DataFrame) -> pd.DataFrame:
    """Realised figures per value of each segment column (small segments kept and marked ``reliable`` False)."""
    parts = []
    for col in segments.columns if len(segments) else []:  # none of the users scored in the data: no segment
        m = segment_metrics(y, p, segments[col].reset_index(drop=True))
        m.insert(0, "column", col)
        parts.append(m.rename(columns={"mean_predicted": "predicted_rate", "recall_top10": "recall_at_10pct"}))
    cols = ["column", "segment", "users", "churn_rate", "predicted_rate", "roc_auc", "recall_at_10pct", "reliable"]
    return pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)


# ----------------------------------------------------------------------------------------------- new data
def schema_for_run(run, df: pd.DataFrame) -> Schema:
    """The run's saved column roles applied to new data by column name (the rules of
    :func:`retention_core.scoring.features_for_run`)."""
    return infer_schema(df, Schema.from_dict(run.info["schema"]).for_new_data(df.columns))


def check_columns(run, df: pd.DataFrame, *, need_label: bool = False) -> None:
    """Refuse data that lacks a column the run was trained with (a role's column; for user tables the label when
    outcomes are wanted), naming them."""
    saved = Schema.from_dict(run.info["schema"])
    roles = {r: c for r, c in saved.roles.items() if c and (r != "label" or need_label)}
    missing = {r: c for r, c in roles.items() if c not in df.columns}
    if missing:
        have = ", ".join(map(str, list(df.columns)[:12]))
        raise DataError(f"The data lacks the run's column(s) {', '.join(map(repr, missing.values()))} "
                        f"({', '.join(r.replace('_', ' ') for r in missing)}); it has {have}. Monitor with data of the "
                        "same layout as the data the run was trained on.")


def run_events(run, df: pd.DataFrame) -> pd.DataFrame:
    """New data as the run reads it: the canonical event table under the run's column roles."""
    check_columns(run, df)
    return canonical_events(df, schema_for_run(run, df))


def snapshot_config(run, horizon_days: int | None = None) -> SnapshotConfig:
    """The run's snapshot settings (``horizon_days`` in place of its horizon when given)."""
    snap = {k: v for k, v in (run.info.get("snapshot") or {}).items() if k in SnapshotConfig.__dataclass_fields__}
    snap["cutoff"] = None
    if horizon_days is not None:
        snap["horizon_days"] = int(horizon_days)
    return SnapshotConfig(**snap)


def event_labels(run, ev: pd.DataFrame, as_ofs: list[str], horizon_days: int | None = None) -> pd.DataFrame:
    """``as_of, user_id, churned`` at each as-of date whose horizon the data fully observes, labelled by
    :func:`build_dataset` with the run's horizon (or ``horizon_days``: a campaign's window) and lookback."""
    cols = ["as_of", "user_id", "churned"]
    if not as_ofs:
        return pd.DataFrame(columns=cols)
    try:
        ds = build_dataset(ev, snapshot_config(run, horizon_days), cutoffs=sorted(set(as_ofs)))
    except DataError:  # no scored date has users in this data
        return pd.DataFrame(columns=cols)
    f = ds.frame
    out = pd.DataFrame({"as_of": pd.to_datetime(f["snapshot_date"]).dt.strftime("%Y-%m-%d").to_numpy(),
                        "user_id": f["user_id"].astype(str).to_numpy(), "churned": f["churned"].to_numpy(float)})
    return out[np.isfinite(out["churned"].to_numpy(float))].reset_index(drop=True)


def table_labels(run, df: pd.DataFrame) -> pd.DataFrame:
    """``user_id, churned`` from a user table's label column (user-table runs: the outcome is the later label)."""
    check_columns(run, df, need_label=True)
    schema = schema_for_run(run, df)
    y = label_series(df, schema)
    out = pd.DataFrame({"user_id": df[schema.roles["user_id"]].astype(str).to_numpy(),
                        "churned": pd.to_numeric(y, errors="coerce").to_numpy(dtype=float, na_value=np.nan)})
    return out[np.isfinite(out["churned"])].drop_duplicates("user_id").reset_index(drop=True)


def observable_from(as_of: str | None, horizon_days) -> pd.Timestamp | None:
    """The first date at which a scoring's horizon is fully observed: as-of + horizon."""
    if as_of is None or horizon_days is None or pd.isna(horizon_days):
        return None
    return pd.Timestamp(as_of) + pd.Timedelta(days=int(horizon_days))


def evaluate(users: pd.DataFrame, labels: pd.DataFrame, segment_cols: list[str]) -> tuple[dict, pd.DataFrame,
                                                                                          pd.DataFrame]:
    """One scoring's realised figures, calibration by decile and per-segment figures: ``users`` are its recorded
    users (rank order), ``labels`` the realised ``user_id, churned``."""
    lab = labels.drop_duplicates("user_id").set_index("user_id")["churned"]
    y = users["user_id"].map(lab).to_numpy(dtype=float, na_value=np.nan)
    seen = np.isfinite(y)
    u = users.loc[seen].reset_index(drop=True)
    yy, pp = y[seen], u["churn_probability"].to_numpy(dtype=float)
    figures = realised_metrics(yy, pp)
    calib = calibration_by_decile(yy, pp, u["risk_decile"])
    segs = segment_outcomes(yy, pp, u[[c for c in segment_cols if c in u.columns]])
    return figures, calib, segs
