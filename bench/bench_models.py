"""Time each model family: fit on synthetic users, then scoring throughput and small-batch latency.

Usage (from the repository root)::

    python -m bench.bench_models                          # 100k users x 45 features, sequences 26 x 4, 2 epochs
    python -m bench.bench_models --rows 20000 --models logreg,gbm,gru
    python -m bench.bench_models --batch-size 2048        # neural models with larger batches
    python -m bench.bench_models --models random_forest --set random_forest.max_samples=0.3
    KERAS_BACKEND=torch python -m bench.bench_models --models mlp,cnn,gru,transformer   # another Keras backend

The data is synthetic (40 numeric features, some heavy-tailed, some with missing values; 5 categorical features of
3 to 60 values; weekly activity of 26 weeks x 4 channels) with a real churn signal, so the AUC column is a sanity
check, not a quality benchmark. Neural models train for ``--epochs`` epochs (2 by default, no early stop in that
span) with a stratified 15% of the rows for validation. Scoring is timed on all rows (throughput) and on 100 rows
(latency, the median of 20 calls after one warm-up call). ``size`` is the pickled model in MiB.
"""
from __future__ import annotations

import argparse
import os
import pickle
import sys
import time

import numpy as np
import pandas as pd

ALL = ["recency", "bgnbd", "logreg", "random_forest", "gbm", "mlp", "cnn", "gru", "transformer"]


def synthetic_users(n: int, seed: int = 0, weeks: int = 26) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, list, list]:
    rng = np.random.default_rng(seed)
    tenure = rng.uniform(30, 720, n)
    repeat = rng.poisson(2.0, n).astype(float)
    first_to_last = np.where(repeat > 0, tenure * rng.uniform(0, 1, n), 0.0)
    recency = tenure - first_to_last
    cols: dict[str, np.ndarray] = {
        "recency_days": recency, "tenure_days": tenure, "first_to_last_days": first_to_last,
        "repeat_purchases": repeat,
    }
    for i in range(12):  # heavy-tailed amounts and counts
        cols[f"amount_{i}"] = rng.lognormal(3, 1.3, n) * (repeat + 1)
    for i in range(12):  # roughly normal ratios and trends
        cols[f"trend_{i}"] = rng.normal(0, 1, n)
    for i in range(12):  # counts in windows
        cols[f"count_{i}"] = rng.poisson(1 + i % 4, n).astype(float)
    numeric = list(cols)
    for c in numeric[4:16:3]:
        v = cols[c].copy()
        v[rng.random(n) < 0.1] = np.nan
        cols[c] = v
    X = pd.DataFrame(cols)
    categorical = []
    for i, k in enumerate((3, 5, 12, 30, 60)):
        name = f"attr_{i}"
        X[name] = pd.Series(rng.integers(0, k, n).astype(str), dtype="str")
        categorical.append(name)
    logit = (1.4 * (np.log1p(recency) - np.log1p(150)) - 0.5 * repeat - 0.4 * cols["trend_0"]
             + 0.3 * np.log1p(np.nan_to_num(cols["amount_1"])) - 1.0 + (X["attr_0"] == "1") * 0.7)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    seq = rng.poisson(0.4, (n, weeks, 4)).astype(np.float32)
    churn = y == 1
    seq[churn, -8:, 0] *= rng.random((int(churn.sum()), 8)) < 0.3
    seq[:, :, 1] = np.log1p(seq[:, :, 0] * rng.lognormal(3, 1, (n, weeks)))
    seq[:, :, 2] = np.log1p(rng.poisson(2.0, (n, weeks)) * (1 + seq[:, :, 0]))
    seq[:, :, 3] = (rng.random((n, weeks)) < 0.02).astype(np.float32)
    return X, y, seq, numeric, categorical


def bench(keys: list[str], rows: int, epochs: int, batch_size: int | None,
          settings: dict[str, dict[str, str]] | None = None) -> None:
    from sklearn.metrics import roc_auc_score

    from retention_core.models import REGISTRY, churn_probability, make_model, model_input

    t = time.perf_counter()
    X, y, seq, numeric, categorical = synthetic_users(rows + 20_000)
    Xtr, ytr, str_ = X.iloc[:rows].reset_index(drop=True), y[:rows], seq[:rows]
    Xte, yte, ste = X.iloc[rows:].reset_index(drop=True), y[rows:], seq[rows:]
    print(f"data: {rows:,} training rows x {len(numeric) + len(categorical)} features "
          f"({len(numeric)} numeric, {len(categorical)} categorical), sequences {seq.shape[1]} x {seq.shape[2]}, "
          f"churn rate {ytr.mean():.2f}, built in {time.perf_counter() - t:.1f} s; cpu cores {os.cpu_count()}",
          flush=True)
    print(f"{'model':<14}{'fit s':>8}{'score rows/s':>14}{'100 rows ms':>13}{'AUC':>7}{'size MiB':>10}  notes",
          flush=True)
    for key in keys:
        spec = REGISTRY[key]
        params = {}
        if spec.family == "deep":
            params["epochs"] = epochs
            if batch_size:
                params["batch_size"] = batch_size
        params.update((settings or {}).get(key, {}))
        model = make_model(key, numeric=numeric, categorical=categorical, horizon_days=90, **params)
        train_in, test_in = model_input(key, Xtr, str_), model_input(key, Xte, ste)
        t = time.perf_counter()
        model.fit(train_in, ytr)
        fit_s = time.perf_counter() - t
        t = time.perf_counter()
        p = churn_probability(model, train_in)
        score_s = time.perf_counter() - t
        small = test_in.iloc[:100]
        churn_probability(model, small)
        lat = []
        for _ in range(20):
            t = time.perf_counter()
            churn_probability(model, small)
            lat.append(time.perf_counter() - t)
        auc = roc_auc_score(yte, churn_probability(model, test_in))
        size = len(pickle.dumps(model)) / 2**20
        notes = []
        if hasattr(model, "history_"):
            notes.append(f"{fit_s / max(len(model.history_), 1):.1f} s/epoch (incl. set-up)")
        if key == "gbm":
            notes.append(f"{model.n_iter_} trees")
        print(f"{key:<14}{fit_s:>8.1f}{len(p) / score_s:>14,.0f}{np.median(lat) * 1e3:>13.1f}{auc:>7.3f}"
              f"{size:>10.1f}  {'; '.join(notes)}", flush=True)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--models", default=",".join(ALL))
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=None, help="neural models (default: the model's own, 256)")
    ap.add_argument("--set", action="append", default=[], metavar="MODEL.SETTING=VALUE",
                    help="override a model setting, e.g. --set random_forest.max_samples=0.3 (repeatable)")
    args = ap.parse_args(argv)
    settings: dict[str, dict[str, str]] = {}
    for item in args.set:
        target, sep, value = item.partition("=")
        key, dot, name = target.partition(".")
        if not (sep and dot and key and name):
            ap.error(f"--set expects MODEL.SETTING=VALUE, got {item!r}")
        settings.setdefault(key, {})[name] = value
    keys = [k.strip() for k in args.models.split(",") if k.strip()]
    unknown = [k for k in keys if k not in ALL]
    if unknown:
        ap.error(f"unknown model(s) {unknown}; choose from {ALL}")
    bench(keys, args.rows, args.epochs, args.batch_size, settings)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
