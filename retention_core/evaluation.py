"""Metrics, curves, thresholds, lift and profit: pure functions from (y, p) to numbers and DataFrames.

``y`` is 1 for churned users, ``p`` the churn probability. The positive class everywhere is churn.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from .errors import ConfigError

METRICS = ["roc_auc", "pr_auc", "accuracy", "precision", "recall", "f1", "log_loss", "brier", "lift_top10",
           "recall_top10"]
HIGHER_IS_BETTER = {"roc_auc": True, "pr_auc": True, "accuracy": True, "precision": True, "recall": True, "f1": True,
                    "log_loss": False, "brier": False, "lift_top10": True, "recall_top10": True}
METRIC_LABELS = {"roc_auc": "ROC-AUC", "pr_auc": "PR-AUC", "accuracy": "Accuracy", "precision": "Precision",
                 "recall": "Recall", "f1": "F1", "log_loss": "Log loss", "brier": "Brier", "lift_top10": "Lift @10%",
                 "recall_top10": "Recall @10%"}


def _arrays(y, p) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=float).ravel()
    p = np.asarray(p, dtype=float).ravel()
    if len(y) != len(p):
        raise ConfigError(f"Labels and probabilities differ in length ({len(y)} vs {len(p)}).")
    keep = ~np.isnan(y) & ~np.isnan(p)
    return y[keep].astype(int), np.clip(p[keep], 0.0, 1.0)


def top_share_mask(p: np.ndarray, share: float) -> np.ndarray:
    """The ``share`` of users with the highest probabilities (ties broken by order, exactly ceil(share * n) users)."""
    k = int(np.ceil(share * len(p)))
    mask = np.zeros(len(p), dtype=bool)
    if k:
        mask[np.argsort(-p, kind="stable")[:k]] = True
    return mask


def metrics(y, p, threshold: float = 0.5) -> dict[str, float]:
    """All leaderboard metrics at a threshold (ranking metrics do not depend on it)."""
    y, p = _arrays(y, p)
    out: dict[str, float] = {m: float("nan") for m in METRICS}
    if len(y) == 0:
        return out
    pred = (p >= threshold).astype(int)
    out["accuracy"] = float(skm.accuracy_score(y, pred))
    out["precision"] = float(skm.precision_score(y, pred, zero_division=0))
    out["recall"] = float(skm.recall_score(y, pred, zero_division=0))
    out["f1"] = float(skm.f1_score(y, pred, zero_division=0))
    out["brier"] = float(skm.brier_score_loss(y, p, pos_label=1)) if len(np.unique(y)) else float("nan")
    eps = 1e-7
    pc = np.clip(p, eps, 1 - eps)
    out["log_loss"] = float(-np.mean(y * np.log(pc) + (1 - y) * np.log(1 - pc)))
    if len(np.unique(y)) == 2:
        out["roc_auc"] = float(skm.roc_auc_score(y, p))
        out["pr_auc"] = float(skm.average_precision_score(y, p))
        top = top_share_mask(p, 0.10)
        base = y.mean()
        out["lift_top10"] = float(y[top].mean() / base) if base > 0 else float("nan")
        out["recall_top10"] = float(y[top].sum() / y.sum()) if y.sum() else float("nan")
    out["threshold"] = float(threshold)
    return out


def best_f1_threshold(y, p) -> float:
    """The threshold that maximises F1 (the default operating point until the analyst picks one)."""
    y, p = _arrays(y, p)
    if len(np.unique(y)) < 2:
        return 0.5
    prec, rec, thr = skm.precision_recall_curve(y, p)
    f1 = 2 * prec[:-1] * rec[:-1] / np.maximum(prec[:-1] + rec[:-1], 1e-12)
    return float(thr[int(np.nanargmax(f1))]) if len(thr) else 0.5


def roc_frame(y, p) -> pd.DataFrame:
    y, p = _arrays(y, p)
    fpr, tpr, thr = skm.roc_curve(y, p)
    return pd.DataFrame({"fpr": fpr, "tpr": tpr, "threshold": np.clip(thr, 0, 1)})


def pr_frame(y, p) -> pd.DataFrame:
    y, p = _arrays(y, p)
    prec, rec, thr = skm.precision_recall_curve(y, p)
    return pd.DataFrame({"recall": rec, "precision": prec, "threshold": np.append(thr, 1.0)})


def calibration_frame(y, p, bins: int = 10) -> pd.DataFrame:
    """Mean predicted vs observed churn per quantile bin of the prediction."""
    y, p = _arrays(y, p)
    q = pd.qcut(p, q=min(bins, max(len(np.unique(p)), 1)), duplicates="drop")
    df = pd.DataFrame({"y": y, "p": p, "bin": q})
    g = df.groupby("bin", observed=True)
    return pd.DataFrame({"predicted": g["p"].mean(), "observed": g["y"].mean(), "users": g.size()}).reset_index(drop=True)


def lift_frame(y, p, bins: int = 10) -> pd.DataFrame:
    """Per decile of risk (1 = highest): churn rate, lift over the base rate and cumulative share of churners found."""
    y, p = _arrays(y, p)
    order = np.argsort(-p, kind="stable")
    ys = y[order]
    n = len(ys)
    edges = np.linspace(0, n, bins + 1).round().astype(int)
    base = ys.mean() if n else float("nan")
    rows = []
    for i in range(bins):
        part = ys[edges[i]:edges[i + 1]]
        cum = ys[:edges[i + 1]]
        rows.append({"decile": i + 1, "users": len(part), "churn_rate": part.mean() if len(part) else np.nan,
                     "lift": (part.mean() / base) if len(part) and base else np.nan,
                     "cumulative_share_of_users": edges[i + 1] / n if n else np.nan,
                     "cumulative_gain": cum.sum() / ys.sum() if ys.sum() else np.nan})
    return pd.DataFrame(rows)


def threshold_frame(y, p, points: int = 101) -> pd.DataFrame:
    """Precision, recall, F1 and share flagged for thresholds from 0 to 1."""
    y, p = _arrays(y, p)
    thr = np.linspace(0, 1, points)
    pos = y.sum()
    rows = []
    for t in thr:
        pred = p >= t
        tp = int((pred & (y == 1)).sum())
        fp = int((pred & (y == 0)).sum())
        prec = tp / (tp + fp) if tp + fp else np.nan
        rec = tp / pos if pos else np.nan
        f1 = 2 * prec * rec / (prec + rec) if prec and rec and not np.isnan(prec) else 0.0
        rows.append({"threshold": t, "precision": prec, "recall": rec, "f1": f1, "flagged_share": pred.mean()})
    return pd.DataFrame(rows)


def confusion(y, p, threshold: float) -> pd.DataFrame:
    y, p = _arrays(y, p)
    pred = (p >= threshold).astype(int)
    m = skm.confusion_matrix(y, pred, labels=[0, 1])
    return pd.DataFrame(m, index=["actual retained", "actual churned"], columns=["predicted retained", "predicted churned"])


def threshold_for_top_k(p, k: int) -> float:
    """The threshold that flags the ``k`` users most at risk."""
    p = np.sort(np.asarray(p, dtype=float))[::-1]
    if k <= 0:
        return 1.0 + 1e-9
    return float(p[min(k, len(p)) - 1]) if len(p) else 0.5


def threshold_for_share(p, share: float) -> float:
    if not 0 < share <= 1:
        raise ConfigError(f"The share to contact must be between 0 and 1, got {share!r}.")
    return threshold_for_top_k(p, int(np.ceil(share * len(p))))


def profit_frame(y, p, *, cost_per_contact: float, value_retained: float, save_rate: float,
                 points: int = 101) -> pd.DataFrame:
    """Expected profit of contacting everyone above each threshold.

    Contacting a churner saves ``save_rate`` of them, each worth ``value_retained``; every contact costs
    ``cost_per_contact``. Profit = churners contacted x save_rate x value - contacts x cost.
    """
    if cost_per_contact < 0 or value_retained < 0 or not 0 <= save_rate <= 1:
        raise ConfigError("Costs and values must be non-negative and the save rate between 0 and 1.")
    y, p = _arrays(y, p)
    rows = []
    for t in np.linspace(0, 1, points):
        pred = p >= t
        contacted = int(pred.sum())
        churners = int((pred & (y == 1)).sum())
        profit = churners * save_rate * value_retained - contacted * cost_per_contact
        rows.append({"threshold": t, "contacted": contacted, "churners_reached": churners, "profit": profit})
    return pd.DataFrame(rows)


def best_profit_threshold(y, p, **kw) -> float:
    f = profit_frame(y, p, **kw)
    return float(f.loc[f["profit"].idxmax(), "threshold"])


def segment_metrics(y, p, segments: pd.Series, *, min_users: int = 30, min_class: int = 5) -> pd.DataFrame:
    """Model quality per segment: size, churn rate, mean predicted risk, ROC-AUC and recall in the top 10%.

    Segments too small to judge are kept and marked (``reliable`` False), never hidden.
    """
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    seg = pd.Series(segments).astype("string").fillna("(missing)").to_numpy()
    rows = []
    for name in pd.unique(seg):
        m = seg == name
        yy, pp = y[m], p[m]
        ok = ~np.isnan(yy)
        yy, pp = yy[ok], pp[ok]
        pos = int(yy.sum())
        reliable = len(yy) >= min_users and min(pos, len(yy) - pos) >= min_class
        auc = float(skm.roc_auc_score(yy, pp)) if len(np.unique(yy)) == 2 else np.nan
        top = top_share_mask(pp, 0.10)
        rows.append({"segment": name, "users": int(m.sum()), "churn_rate": yy.mean() if len(yy) else np.nan,
                     "mean_predicted": pp.mean() if len(pp) else np.nan, "roc_auc": auc,
                     "recall_top10": yy[top].sum() / pos if pos else np.nan, "reliable": reliable})
    return pd.DataFrame(rows).sort_values("users", ascending=False).reset_index(drop=True)
