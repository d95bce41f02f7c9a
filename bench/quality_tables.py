"""User tables in the quality benchmark: `auto` against a default scikit-learn gradient boosting on the same split.

For each table and each seeded, stratified 80/20 split of its rows, the product learns from the 80% exactly as
`train --models auto` does (its own validation and settings search inside those rows, identifier columns left out by
the data report) and scores the 20% through its saved feature specification, as `score` does. On the same 80%, a
``HistGradientBoostingClassifier()`` with scikit-learn's defaults learns from the same feature columns (text columns
as its native categories) and scores the same 20%. The table reports both ROC-AUCs per split, their mean, and the
seconds each took. The target: `auto` at least the default minus :data:`TABLE_TOLERANCE` on every table.

Tables: the shared Telco table, and a generated table whose label is a checkerboard over two columns (strong
interactions, where the product's fixed settings lose to the defaults; ``assets.generator.checkerboard_table``).
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd

from bench.common import DATA

TABLE_TOLERANCE = 0.002
SPLITS = (0, 1, 2)
DEFAULT_HGB = "default HistGradientBoostingClassifier (same split)"


def _tables() -> dict[str, pd.DataFrame]:
    from assets.generator import checkerboard_table
    from retention_core.io import read_table

    out = {}
    if (DATA / "telco_customer_churn.csv").exists():
        out["telco"] = read_table(DATA / "telco_customer_churn.csv")
    out["generated checkerboard (5,000 rows)"] = checkerboard_table(5000, seed=7)
    return out


def _split(df: pd.DataFrame, label: str, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(df, test_size=0.2, random_state=seed, stratify=df[label].astype(str))
    return train.reset_index(drop=True), test.reset_index(drop=True)


def _product(train: pd.DataFrame, test: pd.DataFrame, models) -> dict:
    from retention_core.dataset import user_dataset
    from retention_core.features import apply_user_spec
    from retention_core.models import churn_probability
    from retention_core.roles import infer_schema, label_series
    from retention_core.training import TrainConfig, train_models
    from retention_core.validation import validate

    t0 = time.perf_counter()
    schema = infer_schema(train)
    rep = validate(train, schema)
    ds = user_dataset(train, schema, rep)
    res = train_models(ds, TrainConfig(models=models), excluded=rep.excluded_features)
    seconds = time.perf_counter() - t0
    cols = res.numeric + res.categorical
    X_test = apply_user_spec(test, infer_schema(test, schema.for_new_data(test.columns)), ds.config["user_spec"])
    p = churn_probability(res.models[res.best], X_test[cols])
    y_test = label_series(test, schema).to_numpy()
    return {"pick": res.best, "p": p, "y": y_test, "seconds": seconds, "X_train": ds.frame[cols],
            "y_train": ds.frame["churned"].to_numpy(), "X_test": X_test[cols], "categorical": res.categorical}


def _default_hgb(run: dict) -> tuple[np.ndarray, float]:
    from sklearn.ensemble import HistGradientBoostingClassifier

    X_train, X_test = run["X_train"].copy(), run["X_test"].copy()
    for c in run["categorical"]:
        cats = pd.Index(X_train[c].astype(str).unique())
        X_train[c] = pd.Categorical(X_train[c].astype(str), categories=cats)
        X_test[c] = pd.Categorical(X_test[c].astype(str), categories=cats)
    t0 = time.perf_counter()
    hgb = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=0)
    hgb.fit(X_train, run["y_train"])
    return hgb.predict_proba(X_test)[:, 1], time.perf_counter() - t0


def table_splits(models="auto", splits=SPLITS) -> list[dict]:
    """One row per table, split and learner (the product's pick and the default gradient boosting)."""
    from retention_core.evaluation import metrics
    from retention_core.roles import infer_schema

    rows = []
    for name, df in _tables().items():
        label = infer_schema(df).roles["label"]
        for seed in splits:
            train, test = _split(df, label, seed)
            run = _product(train, test, models)
            p_hgb, hgb_s = _default_hgb(run)
            base = {"dataset": name, "cutoff": f"80/20 split, seed {seed}", "users": len(test),
                    "churn_rate": float(np.mean(run["y"]))}
            m = metrics(run["y"], run["p"])
            rows.append({**base, "model": f"auto ({run['pick']})", "roc_auc": m["roc_auc"], "pr_auc": m["pr_auc"],
                         "train_seconds": run["seconds"]})
            m = metrics(run["y"], p_hgb)
            rows.append({**base, "model": DEFAULT_HGB, "roc_auc": m["roc_auc"], "pr_auc": m["pr_auc"],
                         "train_seconds": hgb_s})
    return rows


def table_verdicts(rows: list[dict]) -> list[dict]:
    """Per user table: the mean ROC-AUC of `auto` and of the default over the splits, the worst split, the seconds
    each took, and whether `auto` is at least the default minus :data:`TABLE_TOLERANCE`."""
    df = pd.DataFrame([r for r in rows if str(r.get("cutoff", "")).startswith("80/20")])
    out = []
    for name, g in (df.groupby("dataset", sort=False) if not df.empty else []):
        auto = g[g["model"].str.startswith("auto")]
        hgb = g[g["model"] == DEFAULT_HGB]
        a, h = auto["roc_auc"].mean(), hgb["roc_auc"].mean()
        worst = (auto["roc_auc"].to_numpy() - hgb["roc_auc"].to_numpy()).min()
        text = (f"auto {a:.4f} vs default {h:.4f} ({a - h:+.4f}; mean of {len(auto)} splits, worst split "
                f"{worst:+.4f}); auto {auto['train_seconds'].mean():.0f} s per split, default "
                f"{hgb['train_seconds'].mean():.1f} s")
        out.append({"dataset": name, "auto": a, "default": h, "pass": bool(a >= h - TABLE_TOLERANCE), "text": text})
    return out


def table_check(rows: list[dict]) -> list[str]:
    """One line per user table (see :func:`table_verdicts`)."""
    return [f"{'PASS' if v['pass'] else 'MISS'} {v['dataset']}: {v['text']} (target: at least the default - "
            f"{TABLE_TOLERANCE})" for v in table_verdicts(rows)]
