"""How long ``train --models auto`` takes with its settings search, against the fixed defaults (``--tune-budget 0``).

    python -m bench.bench_tuning [--budgets 0,default] [--only telco,cdnow,retail]

The target: a 5,000-row user table or a log of 5,000 customers trained within 3 minutes on a 2-core machine with the
default budget. Each run is the command line in a fresh process, timed end to end (reading, dataset, search,
validation, refit, saving): a 5,000-row sample of the Telco table, the logs of 5,000 CDNOW customers, and the Online
Retail II log (4,383 customers). Prints one line per run: seconds, best model, its validation ROC-AUC, and per searched
model the trials run and whether the tuned settings were kept. Reads ../shared/data.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench.common import DATA


def _telco(tmp: Path) -> tuple[Path, list[str]]:
    d = pd.read_csv(DATA / "telco_customer_churn.csv").sample(5000, random_state=0)
    path = tmp / "telco_5000.csv"
    d.to_csv(path, index=False)
    return path, ["--label", "Churn", "--positive", "Yes"]


def _cdnow(tmp: Path) -> tuple[Path, list[str]]:
    d = pd.read_csv(DATA / "cdnow_master.txt", sep=r"\s+", dtype={"customer_id": str})
    keep = np.random.default_rng(0).choice(d["customer_id"].unique(), 5000, replace=False)
    path = tmp / "cdnow_5000.csv"
    d[d["customer_id"].isin(keep)].to_csv(path, index=False)
    return path, ["--user-col", "customer_id", "--time-col", "date", "--amount-col", "dollar_value"]


def _retail(tmp: Path) -> tuple[Path, list[str]]:
    return DATA / "online_retail_ii_2009_2010.parquet", []


TABLES = {"telco": _telco, "cdnow": _cdnow, "retail": _retail}


def run(name: str, data: Path, extra: list[str], budget: str, tmp: Path) -> str:
    out = tmp / f"run_{name}_{budget}"
    cmd = [sys.executable, "-m", "retention_core", "train", str(data), "--out", str(out), "--models", "auto", *extra]
    cmd += [] if budget == "default" else ["--tune-budget", budget]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    secs = time.perf_counter() - t0
    if p.returncode != 0:
        return f"| {name} | {budget} | failed: {p.stderr.strip()[-160:]} |"
    m = json.loads((out / "metrics.json").read_text())
    best = m["best_model"]
    searched = "; ".join(f"{k} {len(v['trials'])} trials, {'tuned' if v['kept'] else 'defaults'}"
                         for k, v in (m.get("tuning") or {}).get("models", {}).items()) or "-"
    return f"| {name} | {budget} | {secs:.0f} s | {best} | {m['models'][best]['roc_auc']:.4f} | {searched} |"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budgets", default="0,default", help="comma-separated --tune-budget values ('default': none)")
    p.add_argument("--only", default=",".join(TABLES), help="tables to run: " + ", ".join(TABLES))
    args = p.parse_args()
    print(f"cores: {os.cpu_count()}; the target: within 180 s with the default budget")
    print("| data | budget | train | best | ROC-AUC | search |\n|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        for name in args.only.split(","):
            data, extra = TABLES[name](tmp)
            for budget in args.budgets.split(","):
                print(run(name, data, extra, budget, tmp), flush=True)


if __name__ == "__main__":
    main()
