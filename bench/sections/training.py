"""Section 2: training time per model family on synthetic users, against a default HistGradientBoosting fit."""
from __future__ import annotations

import time

from bench.common import size_label
from bench.data import fit_model, synthetic
from bench.measures import Job, Rows, info
from bench.registry import Plan, Section, step

NAME = "training"


@step("train_model", NAME)
def train_model(key: str, rows: int, epochs: int) -> dict:
    X, y, seq, numeric, categorical = synthetic(rows)
    model, fit_s = fit_model(key, rows, epochs, X, y, seq, numeric, categorical)
    out = {"rows": rows}
    hist = getattr(model, "history_", None)
    if hist is not None:
        n_ep = max(len(hist), 1)
        out.update(epochs=n_ep, seconds_per_epoch=fit_s / n_ep, epochs_per_second=n_ep / fit_s)
    return {"measures": {"fit": fit_s}, "info": out}


@step("train_reference", NAME)
def train_reference(rows: int) -> dict:
    from bench.reference import hgb_fit

    X, y, _, numeric, categorical = synthetic(rows)
    t = time.perf_counter()
    hgb_fit(X[numeric + categorical], y, categorical)
    return {"measures": {"fit": time.perf_counter() - t}, "info": {"rows": rows}}


def plan(cfg: dict, cache: str) -> Plan:
    out = Plan()
    for rows in cfg["train_rows"]:
        s = size_label(rows)
        out.jobs.append(Job(NAME, f"training/{s}/reference", "train_reference", {"rows": rows}))
        for key in cfg["train_models"]:
            out.jobs.append(Job(NAME, f"training/{s}/{key}", "train_model",
                                {"key": key, "rows": rows, "epochs": cfg["epochs"]}))
    return out


def report(t: Rows) -> None:
    for rows_n in t.cfg["train_rows"]:
        s = size_label(rows_n)
        ref = t.job(f"training/{s}/reference")
        for key in t.cfg["train_models"]:
            j = t.job(f"training/{s}/{key}")
            if j is None:
                continue
            note = ""
            if info(j, "epochs_per_second") is not None:
                note = (f"{info(j, 'epochs_per_second'):.2f} epochs/s ({info(j, 'epochs')} epoch(s), "
                        f"{t.meta['cores']} cores)")
            t.add(NAME, f"Train {key}", f"{s} rows", j, "fit", ref, "fit", "default HistGradientBoosting fit", note)


SECTION = Section(NAME, "2. Training time per model family", plan, report)
