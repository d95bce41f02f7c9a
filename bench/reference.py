"""References the benchmarks measure the product against: what a competent analyst would write by hand.

- :func:`pandas_features`: the shared core features with a plain pandas groupby (defined in ``bench_features``).
- :func:`lifetimes_summary`: the per-user frequency / recency / T summary of the ``lifetimes`` package
  (``lifetimes.utils.summary_data_from_transaction_data``); when ``lifetimes`` cannot be imported, the same
  computation as lifetimes documents it, reimplemented here and labelled as such.
- :func:`hgb_fit` / :func:`hgb_predict`: a default scikit-learn ``HistGradientBoostingClassifier`` on a feature table
  (categorical columns as pandas categories), the reference for training and scoring speed.
- :func:`rfm_holdout` / :func:`telco_cv`: the same classifier trained the obvious way for the quality section: on
  recency, frequency, monetary value and tenure only, fitted on the latest labelled snapshot before the holdout
  cutoff (event logs), or with 5-fold stratified cross-validation on every column (the Telco user table).
- :func:`rfm_logistic_holdout`: a plain logistic regression on RFM and trailing windows, fitted on the latest labelled
  snapshot; `auto` must beat it and the baselines by 0.005 ROC-AUC at every holdout.
- :func:`same_period_ceiling`: not a rival but a yardstick: a logistic regression and a gradient-boosting model
  cross-validated on the holdout's own labels (they learn from the very period they are scored on, which no product
  can), to show how much the product's features can separate at all.
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd

from bench.bench_features import pandas_reference as pandas_features  # noqa: F401  (re-exported)

RFM = ["recency_days", "orders_total", "revenue_total", "tenure_days"]

try:  # a bench-only dependency (bench/requirements.txt)
    from lifetimes.utils import summary_data_from_transaction_data as _lifetimes_summary

    LIFETIMES_LABEL = "lifetimes summary_data_from_transaction_data"
except Exception:  # pragma: no cover - depends on the installed pandas
    _lifetimes_summary = None
    LIFETIMES_LABEL = "lifetimes-style summary (reimplemented, lifetimes does not import on this pandas)"


def lifetimes_style_summary(tx: pd.DataFrame, customer_id_col: str, datetime_col: str,
                            observation_period_end: pd.Timestamp) -> pd.DataFrame:
    """lifetimes' documented algorithm with ``freq='D'``: transactions up to the end of the observation period are
    reduced to one per customer and calendar day; ``frequency`` is the number of days with a purchase after the
    first one, ``recency`` the days from the first to the last such day, ``T`` the days from the first to the end."""
    t = tx[tx[datetime_col] <= observation_period_end]
    day = t[datetime_col].dt.floor("D")
    per_day = pd.DataFrame({"c": t[customer_id_col].to_numpy(), "d": day.to_numpy()}).drop_duplicates()
    g = per_day.groupby("c", observed=True)["d"]
    first, last, n = g.min(), g.max(), g.size()
    end = observation_period_end.floor("D")
    out = pd.DataFrame({"frequency": (n - 1).astype(float),
                        "recency": (last - first).dt.days.astype(float),
                        "T": (end - first).dt.days.astype(float)})
    out.index.name = customer_id_col
    return out


def lifetimes_summary(ev: pd.DataFrame, T: pd.Timestamp) -> pd.DataFrame:
    """frequency / recency / T per user from purchases at or before ``T`` (canonical event table)."""
    p = ev.loc[ev["is_purchase"], ["user_id", "ts"]]
    if _lifetimes_summary is not None:
        return _lifetimes_summary(p, "user_id", "ts", observation_period_end=T, freq="D")
    return lifetimes_style_summary(p, "user_id", "ts", T)


def _as_categories(X: pd.DataFrame, categorical: list[str]) -> pd.DataFrame:
    X = X.copy()
    for c in categorical:
        X[c] = X[c].astype("string").astype("category")
    return X


def hgb_fit(X: pd.DataFrame, y: np.ndarray, categorical: list[str] = (), seed: int = 0):
    """A default HistGradientBoostingClassifier, categorical columns handled natively."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    model = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=seed)
    return model.fit(_as_categories(X, list(categorical)), y)


def hgb_predict(model, X: pd.DataFrame, categorical: list[str] = ()) -> np.ndarray:
    return model.predict_proba(_as_categories(X, list(categorical)) if categorical else X)[:, 1]


def rfm_holdout(past_dataset, score_frame: pd.DataFrame, y_true: np.ndarray) -> dict:
    """Fit on the latest labelled snapshot of ``past_dataset`` (RFM + tenure only), score ``score_frame``."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    lab = past_dataset.labelled().frame
    latest = lab[lab["snapshot_date"] == lab["snapshot_date"].max()]
    t = time.perf_counter()
    model = hgb_fit(latest[RFM], latest["churned"].to_numpy())
    fit_s = time.perf_counter() - t
    p = hgb_predict(model, score_frame[RFM])
    return {"roc_auc": float(roc_auc_score(y_true, p)), "pr_auc": float(average_precision_score(y_true, p)),
            "train_seconds": fit_s, "train_rows": len(latest), "snapshot": str(latest["snapshot_date"].max().date())}


#: What an analyst feeds a hand-made logistic regression: recency, frequency, monetary value and trailing windows.
RFM_WINDOWS = ["recency_days", "orders_total", "revenue_total"] + [f"{what}_{d}d" for what in ("orders", "revenue")
                                                                   for d in (30, 90, 180, 365)]


def rfm_logistic_holdout(past_dataset, score_frame: pd.DataFrame, y_true: np.ndarray) -> dict:
    """A plain logistic regression on recency / frequency / monetary value and the trailing 30/90/180/365-day order
    and revenue windows (log1p, standardised, scikit-learn's defaults otherwise), fitted on the latest labelled
    snapshot before the holdout cutoff; scores ``score_frame``. Columns the log lacks are left out."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import average_precision_score, roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    lab = past_dataset.labelled().frame
    latest = lab[lab["snapshot_date"] == lab["snapshot_date"].max()]
    cols = [c for c in RFM_WINDOWS if c in latest.columns]
    t = time.perf_counter()
    model = make_pipeline(FunctionTransformer(lambda X: np.log1p(np.clip(X, 0, None))), StandardScaler(),
                          LogisticRegression(max_iter=5000))
    model.fit(latest[cols].fillna(0), latest["churned"].to_numpy())
    fit_s = time.perf_counter() - t
    p = model.predict_proba(score_frame[cols].fillna(0))[:, 1]
    return {"roc_auc": float(roc_auc_score(y_true, p)), "pr_auc": float(average_precision_score(y_true, p)),
            "train_seconds": fit_s, "train_rows": len(latest), "snapshot": str(latest["snapshot_date"].max().date())}


def same_period_ceiling(score_frame: pd.DataFrame, numeric: list[str], y_true: np.ndarray, folds: int = 5,
                        seed: int = 0) -> dict:
    """5-fold stratified CV on the holdout snapshot itself, with its real labels, over the product's numeric
    features: a logistic regression (signed log, standardised) and a HistGradientBoosting model (learning rate 0.05,
    15 leaves, 100 users per leaf, L2 1.0, early stopping: the product's gradient-boosting defaults when this was
    written); the better of the two. Nothing a deployed model can do: it learns from the period it is judged on, so
    there is no drift between training and scoring. It estimates what the features can separate at all."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import average_precision_score, roc_auc_score
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    X = score_frame[numeric].astype("float64").fillna(0).to_numpy()
    makers = {
        "logistic regression": lambda: make_pipeline(
            FunctionTransformer(lambda a: np.sign(a) * np.log1p(np.abs(a))), StandardScaler(),
            LogisticRegression(max_iter=5000)),
        "gradient boosting": lambda: HistGradientBoostingClassifier(
            learning_rate=0.05, max_leaf_nodes=15, min_samples_leaf=100, l2_regularization=1.0, max_iter=300,
            early_stopping=True, random_state=seed),
    }
    t = time.perf_counter()
    best = None
    for label, make in makers.items():
        p = np.zeros(len(y_true))
        for tr, te in StratifiedKFold(folds, shuffle=True, random_state=seed).split(X, y_true):
            p[te] = make().fit(X[tr], y_true[tr]).predict_proba(X[te])[:, 1]
        r = {"roc_auc": float(roc_auc_score(y_true, p)), "pr_auc": float(average_precision_score(y_true, p)),
             "learner": label}
        if best is None or r["roc_auc"] > best["roc_auc"]:
            best = r
    best["train_seconds"] = time.perf_counter() - t
    return best


def telco_cv(frame: pd.DataFrame, label: str = "Churn", positive: str = "Yes", id_col: str = "customerID",
             folds: int = 5, seed: int = 0) -> dict:
    """5-fold stratified CV of a default HistGradientBoostingClassifier on every Telco column but the id."""
    from sklearn.metrics import average_precision_score, roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    y = (frame[label].astype(str).str.strip() == positive).to_numpy().astype(int)
    X = frame.drop(columns=[c for c in (label, id_col) if c in frame.columns]).copy()
    for c in X.columns:  # numbers stored as text (TotalCharges has blanks) become numbers
        if not pd.api.types.is_numeric_dtype(X[c]):
            num = pd.to_numeric(X[c], errors="coerce")
            if num.notna().mean() > 0.95:
                X[c] = num
    categorical = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
    roc, pr = [], []
    t = time.perf_counter()
    for tr, te in StratifiedKFold(folds, shuffle=True, random_state=seed).split(X, y):
        m = hgb_fit(X.iloc[tr], y[tr], categorical, seed)
        p = hgb_predict(m, X.iloc[te], categorical)
        roc.append(roc_auc_score(y[te], p))
        pr.append(average_precision_score(y[te], p))
    return {"roc_auc": float(np.mean(roc)), "pr_auc": float(np.mean(pr)), "train_seconds": time.perf_counter() - t,
            "users": len(X)}
