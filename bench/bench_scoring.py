"""Scoring throughput of a saved run: users per second, model only and end to end from an event log.

    python -m bench.bench_scoring [--events 2000000] [--model gbm] [--repeat 3]

Trains the model on a generated log, saves the run (signed bundle), loads it back as the command line would, then
times (a) the model's predict_proba on the feature rows and (b) the whole `score` path (features as of the end of the
log + prediction). Prints medians with the core count.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd

from assets.generator import generate_for_events
from retention_core.bundle import load_run, save_run
from retention_core.dataset import SnapshotConfig, build_dataset, training_cutoffs
from retention_core.events import canonical_events
from retention_core.roles import infer_schema
from retention_core.scoring import score
from retention_core.training import TrainConfig, train_models


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=2_000_000)
    ap.add_argument("--model", default="gbm")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    raw = generate_for_events(a.events, seed=1)
    schema = infer_schema(raw)
    ev = canonical_events(raw, schema)
    cfg = SnapshotConfig(horizon_days=90)
    ds = build_dataset(ev, cfg, cutoffs=training_cutoffs(ev, cfg))
    t = time.perf_counter()
    res = train_models(ds, TrainConfig(models=[a.model]), horizon_days=90)
    train_s = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("RETENTION_HOME", tmp)
        path = save_run(Path(tmp) / "run", res, schema=schema, dataset=ds, snapshot=cfg.as_dict(), data_digest="bench",
                        train_config=TrainConfig(models=[a.model]))
        run = load_run(path)
        model = run.model()
        frame = build_dataset(ev, cfg, cutoffs=[ev["ts"].max()]).frame
        X = frame[run.info["numeric"] + run.info["categorical"]]
        big = pd.concat([X] * max(1, 200_000 // len(X) + 1), ignore_index=True)
        pred, full = [], []
        for _ in range(a.repeat):
            t = time.perf_counter()
            model.predict_proba(big)
            pred.append(time.perf_counter() - t)
            t = time.perf_counter()
            scores, _, _ = score(run, raw)
            full.append(time.perf_counter() - t)
    p, f = statistics.median(pred), statistics.median(full)
    print(f"cores {os.cpu_count()}; model {a.model}; trained on {len(ds.labelled().frame):,} snapshot rows in {train_s:.1f} s")
    print(f"saved-run model only: {len(big):,} users in {p:.2f} s = {len(big) / p:,.0f} users/s")
    print(f"end to end from the event log ({len(raw):,} events): {len(scores):,} users in {f:.2f} s = "
          f"{len(scores) / f:,.0f} users/s")


if __name__ == "__main__":
    main()
