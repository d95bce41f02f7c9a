"""Section 6: model quality on real data (time holdouts of Online Retail II and CDNOW, 5-fold CV on Telco, 80/20 splits
of the user tables), with the training time of each model set against a HistGradientBoosting reference. On the logs
`auto` is judged against the baselines, a plain logistic regression, the same-period ceiling and the previous round;
on the user tables against a default gradient boosting on the same split."""
from __future__ import annotations

import time

from bench.common import DATA, DEEP
from bench.data import canonical
from bench.measures import Job, Rows
from bench.registry import Plan, Section, step

NAME = "quality"


def _models(models):
    return "auto" if models == "auto" else list(models)


def _deep_params(models, epochs: int) -> dict:
    return {k: {"epochs": epochs} for k in models if k in DEEP} if models != "auto" else {}


@step("quality_holdout", NAME)
def quality_holdout(name: str, cutoff: str, models, epochs: int) -> dict:
    from bench.bench_quality import holdout

    models = _models(models)
    rows = holdout(name, cutoff, models, params=_deep_params(models, epochs), reference=models == "auto")
    return {"measures": {"train": rows[0]["train_seconds"]}, "info": {}, "rows": rows}


@step("quality_holdout_reference", NAME)
def quality_holdout_reference(name: str, cutoff: str) -> dict:
    import pandas as pd

    from bench.bench_quality import HOLDOUTS
    from bench.reference import rfm_holdout
    from retention_core.dataset import SnapshotConfig, build_dataset, training_cutoffs
    from retention_core.io import read_table

    ev = canonical(read_table(DATA / HOLDOUTS[name][0]))
    C = pd.Timestamp(cutoff)
    cfg = SnapshotConfig(horizon_days=90)
    truth = build_dataset(ev, cfg, cutoffs=[C])
    past = ev[ev["ts"] <= C].reset_index(drop=True)
    train_ds = build_dataset(past, cfg, cutoffs=training_cutoffs(past, cfg))
    score_frame = build_dataset(past, cfg, cutoffs=[C]).frame
    y = truth.frame["churned"].to_numpy()
    r = rfm_holdout(train_ds, score_frame, y)
    r.update(users=len(y), churn_rate=float(y.mean()))
    row = {"dataset": name, "cutoff": cutoff, "model": "reference: HGB on RFM + tenure", **r}
    return {"measures": {"train": r["train_seconds"]}, "info": {}, "rows": [row]}


@step("quality_telco", NAME)
def quality_telco(models, epochs: int) -> dict:
    from bench.bench_quality import telco

    models = _models(models)
    t = time.perf_counter()
    rows = telco(models, params=_deep_params(models, epochs))
    return {"measures": {"train": time.perf_counter() - t}, "info": {}, "rows": rows}


@step("quality_tables", NAME)
def quality_tables(models) -> dict:
    from bench.quality_tables import table_splits

    t = time.perf_counter()
    rows = table_splits(_models(models))
    return {"measures": {"train": time.perf_counter() - t}, "info": {}, "rows": rows}


@step("quality_telco_reference", NAME)
def quality_telco_reference() -> dict:
    from bench.reference import telco_cv
    from retention_core.io import read_table

    r = telco_cv(read_table(DATA / "telco_customer_churn.csv"))
    row = {"dataset": "telco", "cutoff": "5-fold CV", "model": "reference: HGB on all columns", **r,
           "churn_rate": None}
    return {"measures": {"train": r["train_seconds"]}, "info": {}, "rows": [row]}


def plan(cfg: dict, cache: str) -> Plan:
    from bench.bench_quality import HOLDOUTS

    out = Plan()
    model_sets = [("auto", "auto")] + ([("deep", list(DEEP))] if cfg["quality_deep"] else [])
    for name, (_, cutoffs) in HOLDOUTS.items():
        for c in cutoffs[:cfg["quality_cutoffs"]]:
            for label, models in model_sets:
                out.jobs.append(Job(NAME, f"quality/{name}/{c}/{label}", "quality_holdout",
                                    {"name": name, "cutoff": c, "models": models, "epochs": 3}, once=True))
            out.jobs.append(Job(NAME, f"quality/{name}/{c}/reference", "quality_holdout_reference",
                                {"name": name, "cutoff": c}, once=True))
    for label, models in [("auto", "auto")] + ([("deep", ["mlp"])] if cfg["quality_deep"] else []):
        out.jobs.append(Job(NAME, f"quality/telco/{label}", "quality_telco", {"models": models, "epochs": 3},
                            once=True))
    out.jobs.append(Job(NAME, "quality/telco/reference", "quality_telco_reference", {}, once=True))
    out.jobs.append(Job(NAME, "quality/tables/splits", "quality_tables", {"models": "auto"}, once=True))
    return out


def _quality_row(job: Job, q: dict) -> dict:
    qr = {k: q.get(k) for k in ("dataset", "cutoff", "model", "roc_auc", "pr_auc", "users", "churn_rate",
                                "train_seconds")}
    if job.params.get("models", "auto") != "auto" and str(qr["model"]).startswith("auto ("):
        # the pick within another model set (the neural networks) is not the product's `auto`
        qr["model"] = "best neural network on validation " + str(qr["model"])[5:]
    if qr["roc_auc"] is None and q.get("validation_roc_auc") is not None:
        qr["roc_auc"] = q["validation_roc_auc"]  # a model trained without cross-validation
        qr["model"] = f"{qr['model']} (validation holdout, no CV)"
    return qr


def report(t: Rows) -> None:
    for j in t.jobs:
        if j.section != NAME:
            continue
        for res in j.results:
            t.quality.extend(_quality_row(j, q) for q in res.get("rows", []))
            if "error" in res:
                t.quality.append({"dataset": j.key, "model": "ERROR", "error": res["error"]})
        if j.key.endswith("/auto") or j.key.endswith("/reference") or j.key.endswith("/deep"):
            parts = j.key.split("/")
            label = "/".join(parts[1:-1])
            if parts[-1] != "reference":
                ref = t.job("/".join(parts[:-1]) + "/reference")
                t.add(NAME, f"Train {parts[-1]} model set (product validation)", label, j, "train", ref, "train",
                      "HGB reference fit")


def targets(t: Rows) -> list[dict]:
    from bench.bench_quality import CEILING_GAP, MARGIN, judge
    from bench.quality_tables import TABLE_TOLERANCE, table_verdicts

    out = []
    for j in judge(t.quality):
        ds, cut = j["dataset"], j["cutoff"]
        if j["best"] is None:
            continue  # a user table's cross-validated leaderboard: judged on its splits below
        auc = j["auto"][1]
        ceiling = "no ceiling"
        if j["ceiling"] is not None:
            ceiling = f"ceiling {j['ceiling']:.4f} ({auc - j['ceiling']:+.4f})"
        prev = (f"previous round {j['previous']:.4f}{'' if j['not_below_previous'] else ', below it'}"
                if j["previous"] is not None else "no previous figure")
        out.append({"target": f"`auto` at least {MARGIN} above the best rival or within {CEILING_GAP} of the "
                              f"same-period ceiling, and not below the previous round: {ds} {cut}",
                    "value": f"{j['auto'][0]} {auc:.4f} vs {j['best'][0]} {j['best'][1]:.4f} "
                             f"({auc - j['best'][1]:+.4f}); {ceiling}; {prev}",
                    "pass": j["pass"]})
    for v in table_verdicts(t.quality):
        out.append({"target": f"`auto` at least a default HistGradientBoostingClassifier on the same split minus "
                              f"{TABLE_TOLERANCE}: {v['dataset']}",
                    "value": v["text"], "pass": v["pass"]})
    return out


SECTION = Section(NAME, "Training time on real data (section 6)", plan, report, targets)
