"""The pre-trained sequence encoder against gradient boosting, in the same run, on the real future of both shared logs.

    python -m bench.bench_encoder [--datasets orii,cdnow] [--cutoffs 3] [--epochs N] [--json FILE] [--markdown FILE]
    python -m bench.bench_encoder --timing     # one pre-training with the default settings on all of Online Retail II

For each log and each of its rolling holdout cutoffs C, the log is cut at C, ``gbm`` and ``encoder`` are trained in one
run of the product's time-aware training on snapshots before C (the encoder is pre-trained on those snapshots' events
only), both score as of C and are compared with what really happened in (C, C + 90 days] in the full log. Per log:
each cutoff's ROC-AUC of both, the mean difference over the cutoffs and its paired bootstrap 95% interval (the same
resampled customers for both models, each cutoff resampled on its own, the differences averaged), and the
pre-training time of each run. Reads ../shared/data.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench.common import DATA
from retention_core.dataset import SnapshotConfig, build_dataset, training_cutoffs
from retention_core.events import canonical_events
from retention_core.io import read_table
from retention_core.models import REGISTRY, churn_probability, model_input
from retention_core.roles import infer_schema
from retention_core.training import TrainConfig, train_models

CUTOFFS = {
    "orii": ("online_retail_ii_2009_2010.parquet", ["2010-09-10", "2010-08-11", "2010-07-12"]),
    "cdnow": ("cdnow_master.txt", ["1998-04-01", "1998-03-02", "1998-01-31"]),
}
GOAL = {"orii": 0.010, "cdnow": -0.002}  # encoder minus gbm ROC-AUC: at least this


def one_cutoff(name: str, cutoff: str, params: dict, horizon: int = 90) -> dict:
    """Both models trained in one run on the log cut at ``cutoff``; their scores as of it and the truth after it."""
    raw = read_table(DATA / CUTOFFS[name][0])
    ev = canonical_events(raw, infer_schema(raw))
    C, cfg = pd.Timestamp(cutoff), SnapshotConfig(horizon_days=horizon)
    truth = build_dataset(ev, cfg, cutoffs=[C])
    past = ev[ev["ts"] <= C].reset_index(drop=True)
    width = REGISTRY["encoder"].needs_events
    train_ds = build_dataset(past, cfg, cutoffs=training_cutoffs(past, cfg), event_tokens=width)
    t0 = time.perf_counter()
    res = train_models(train_ds, TrainConfig(models=["gbm", "encoder"], params={"encoder": params}),
                       horizon_days=horizon)
    train_s = time.perf_counter() - t0
    if "encoder" not in res.models:
        raise RuntimeError(f"the encoder failed: {res.errors}")
    score_ds = build_dataset(past, cfg, cutoffs=[C], event_tokens=width)
    assert (score_ds.frame["user_id"].to_numpy() == truth.frame["user_id"].to_numpy()).all()
    X = score_ds.frame[res.numeric + res.categorical]
    enc = res.models["encoder"]
    p = {k: churn_probability(res.models[k], model_input(k, X, score_ds.sequences)) for k in ("gbm", "encoder")}
    return {"dataset": name, "cutoff": cutoff, "y": truth.frame["churned"].to_numpy(int), "p": p,
            "users": len(X), "events_before_cutoff": len(past), "customers_pretrained": int(enc.n_train_rows_),
            "parameters": int(enc.n_parameters_), "pretrain_seconds": float(enc.pretrain_seconds_),
            "epochs": len(enc.history_), "train_seconds": train_s,
            "validation": res.leaderboard.set_index("model")["roc_auc"].to_dict()}


def paired_bootstrap(runs: list[dict], n: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    """Mean over ``runs`` of ROC-AUC(encoder) - ROC-AUC(gbm) and its paired bootstrap 95% interval."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    point = np.mean([roc_auc_score(r["y"], r["p"]["encoder"]) - roc_auc_score(r["y"], r["p"]["gbm"]) for r in runs])
    draws = np.zeros(n)
    for r in runs:
        y, a, b = r["y"], r["p"]["encoder"], r["p"]["gbm"]
        for i in range(n):
            k = rng.integers(0, len(y), len(y))
            draws[i] += roc_auc_score(y[k], a[k]) - roc_auc_score(y[k], b[k])
    draws /= len(runs)
    return float(point), float(np.quantile(draws, 0.025)), float(np.quantile(draws, 0.975))


def summary(runs: list[dict]) -> tuple[list[dict], list[dict]]:
    from sklearn.metrics import roc_auc_score

    rows = [{k: r[k] for k in ("dataset", "cutoff", "users", "events_before_cutoff", "customers_pretrained",
                               "parameters", "epochs", "pretrain_seconds", "train_seconds")}
            | {"gbm": roc_auc_score(r["y"], r["p"]["gbm"]), "encoder": roc_auc_score(r["y"], r["p"]["encoder"])}
            for r in runs]
    per_log = []
    for name in dict.fromkeys(r["dataset"] for r in runs):
        mine = [r for r in runs if r["dataset"] == name]
        d, lo, hi = paired_bootstrap(mine)
        per_log.append({"dataset": name, "cutoffs": len(mine), "mean_difference": d, "ci_low": lo, "ci_high": hi,
                        "goal": GOAL[name], "reached": bool(d >= GOAL[name])})
    return rows, per_log


def markdown(rows: list[dict], per_log: list[dict], load: str, epochs: int | None) -> str:
    lines = ["| log | cutoff | users | gbm ROC-AUC | encoder ROC-AUC | difference | parameters | pre-training |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['dataset']} | {r['cutoff']} | {r['users']:,} | {r['gbm']:.4f} | {r['encoder']:.4f} | "
                     f"{r['encoder'] - r['gbm']:+.4f} | {r['parameters']:,} | {r['epochs']} epochs, "
                     f"{r['pretrain_seconds']:.0f} s |")
    lines += ["", "| log | cutoffs | mean difference (encoder - gbm) | paired bootstrap 95% CI | goal | reached |",
              "|---|---:|---:|---|---:|---|"]
    for s in per_log:
        lines.append(f"| {s['dataset']} | {s['cutoffs']} | {s['mean_difference']:+.4f} | "
                     f"[{s['ci_low']:+.4f}, {s['ci_high']:+.4f}] | {s['goal']:+.3f} | "
                     f"{'yes' if s['reached'] else 'no'} |")
    lines += ["", f"Machine load (1, 5, 15 min) at the end: {load}. Pre-training epochs per run: "
              f"{epochs if epochs else 'the default'}."]
    return "\n".join(lines) + "\n"


def pretrain_timing() -> dict:
    """One fit of the encoder with its default settings on the whole Online Retail II log (about 525,000 lines): the
    pre-training time, per epoch and in all, and the tokenization."""
    from retention_core.models import make_model

    raw = read_table(DATA / CUTOFFS["orii"][0])
    ev = canonical_events(raw, infer_schema(raw))
    cfg = SnapshotConfig(horizon_days=90)
    t0 = time.perf_counter()
    ds = build_dataset(ev, cfg, cutoffs=training_cutoffs(ev, cfg),
                       event_tokens=REGISTRY["encoder"].needs_events).labelled()
    build_s = time.perf_counter() - t0
    model = make_model("encoder", numeric=ds.numeric, categorical=ds.categorical)
    model.fit(model_input("encoder", ds.frame[ds.numeric + ds.categorical], ds.sequences), ds.frame["churned"],
              progress=lambda f, m: print(f"  {m}", flush=True))
    return {"lines": len(raw), "customers": int(ev["user_id"].nunique()), "rows": len(ds.frame),
            "dataset_seconds": build_s, "pretrain_seconds": model.pretrain_seconds_,
            "epoch_seconds": [h["seconds"] for h in model.history_], "parameters": model.n_parameters_,
            "load": ", ".join(f"{v:.2f}" for v in os.getloadavg())}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", default="orii,cdnow")
    ap.add_argument("--cutoffs", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=None, help="pre-training epochs (default: the model's)")
    ap.add_argument("--json")
    ap.add_argument("--markdown")
    ap.add_argument("--timing", action="store_true", help="only the pre-training time on the whole Online Retail II")
    a = ap.parse_args()
    if a.timing:
        print(json.dumps(pretrain_timing(), indent=1, default=str))
        return
    params = {"epochs": a.epochs} if a.epochs else {}
    runs = []
    for name in a.datasets.split(","):
        for cutoff in CUTOFFS[name][1][:a.cutoffs]:
            runs.append(one_cutoff(name, cutoff, params))
            r = runs[-1]
            print(f"{name} {cutoff}: gbm vs encoder done, pre-training {r['pretrain_seconds']:.0f} s "
                  f"({r['epochs']} epochs, {r['customers_pretrained']:,} rows, {r['parameters']:,} parameters)",
                  flush=True)
            if a.json:  # each cutoff as it is measured: a long run that stops early keeps what it measured
                rows, per_log = summary(runs)
                Path(a.json).write_text(json.dumps({"runs": rows, "logs": per_log, "partial": True}, indent=1,
                                                   default=str))
    rows, per_log = summary(runs)
    pd.set_option("display.width", 200)
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(pd.DataFrame(per_log).to_string(index=False, float_format=lambda v: f"{v:+.4f}"))
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    if a.json:
        Path(a.json).write_text(json.dumps({"runs": rows, "logs": per_log, "load": load}, indent=1, default=str))
    if a.markdown:
        Path(a.markdown).write_text(markdown(rows, per_log, load, a.epochs))


if __name__ == "__main__":
    main()
