"""Section 3: scoring with a saved run and the at-risk CSV export, against plain predict_proba and to_csv."""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from bench.common import size_label
from bench.data import canonical, load_raw
from bench.measures import Job, Rows, find_rows, info, median
from bench.registry import Plan, Section, step

NAME = "scoring"


def _scoring_setup(cache: str, events: int):
    from retention_core.dataset import SnapshotConfig, build_dataset, training_cutoffs
    from retention_core.events import canonical_events
    from retention_core.roles import infer_schema

    raw = load_raw(cache, events)
    schema = infer_schema(raw)
    ev = canonical_events(raw, schema)
    cfg = SnapshotConfig(horizon_days=90)
    ds = build_dataset(ev, cfg, cutoffs=training_cutoffs(ev, cfg))
    return raw, schema, ev, cfg, ds


def _replicate(X, users: int):
    import pandas as pd

    return pd.concat([X] * (users // len(X) + 1), ignore_index=True).iloc[:users]


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


@step("score_product", NAME)
def score_product(cache: str, events: int, users: int) -> dict:
    from retention_core.bundle import load_run, save_run
    from retention_core.dataset import build_dataset
    from retention_core.scoring import score
    from retention_core.training import TrainConfig, train_models

    raw, schema, ev, cfg, ds = _scoring_setup(cache, events)
    res = train_models(ds, TrainConfig(models=["gbm"]), horizon_days=90)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["RETENTION_HOME"] = tmp
        path = save_run(Path(tmp) / "run", res, schema=schema, dataset=ds, snapshot=cfg.as_dict(),
                        data_digest="bench", train_config=TrainConfig(models=["gbm"]))
        t = time.perf_counter()
        run = load_run(path)
        model = run.model()
        load_s = time.perf_counter() - t
        frame = build_dataset(ev, cfg, cutoffs=[ev["ts"].max()]).frame
        big = _replicate(frame[run.info["numeric"] + run.info["categorical"]], users)
        # the first call starts thread pools: throughput is measured after it
        cold_s = _timed(lambda: model.predict_proba(big.iloc[:1000]))
        model_s = _timed(lambda: model.predict_proba(big))
        t = time.perf_counter()
        scores, _, _ = score(run, raw)
        e2e_s = time.perf_counter() - t
    return {"measures": {"model": model_s, "e2e": e2e_s, "load": load_s, "first_1000": cold_s},
            "info": {"users": users, "events": len(raw), "scored_users": len(scores),
                     "trees": getattr(getattr(model, "base_", model), "n_iter_", None),
                     "users_per_second": users / model_s, "e2e_users_per_second": len(scores) / e2e_s}}


@step("score_reference", NAME)
def score_reference(cache: str, events: int, users: int) -> dict:
    from bench.reference import hgb_fit, hgb_predict
    from retention_core.dataset import build_dataset

    raw, schema, ev, cfg, ds = _scoring_setup(cache, events)
    lab = ds.labelled()
    cols = [c for c in lab.numeric + lab.categorical]
    model = hgb_fit(lab.frame[cols], lab.frame["churned"].to_numpy(), lab.categorical)
    frame = build_dataset(ev, cfg, cutoffs=[ev["ts"].max()]).frame
    big = _replicate(frame[cols], users)
    hgb_predict(model, big.iloc[:1000], lab.categorical)  # the same warm-up as the product
    model_s = _timed(lambda: hgb_predict(model, big, lab.categorical))
    t = time.perf_counter()  # by hand: canonical table, features as of the end, predict
    ev2 = canonical(raw)
    f2 = build_dataset(ev2, cfg, cutoffs=[ev2["ts"].max()]).frame
    hgb_predict(model, f2[cols], lab.categorical)
    e2e_s = time.perf_counter() - t
    return {"measures": {"model": model_s, "e2e": e2e_s}, "info": {"users": users, "scored_users": len(f2)}}


def _export_list(users: int):
    from bench.bench_export import synthetic
    from retention_core.scoring import at_risk_list

    scores, frame, reasons = synthetic(users)
    return at_risk_list(scores, frame, method="threshold", threshold=0.0, reasons=reasons, model="gbm")


@step("export_product", NAME)
def export_product(users: int) -> dict:
    from retention_core.export import export_csv

    lst = _export_list(users)
    with tempfile.TemporaryDirectory() as tmp:
        s = _timed(lambda: export_csv(lst, Path(tmp) / "at_risk.csv"))
        mb = (Path(tmp) / "at_risk.csv").stat().st_size / 1e6
    return {"measures": {"export": s}, "info": {"users": users, "csv_mb": mb, "users_per_second": users / s}}


@step("export_reference", NAME)
def export_reference(users: int) -> dict:
    lst = _export_list(users)
    with tempfile.TemporaryDirectory() as tmp:
        s = _timed(lambda: lst.to_csv(Path(tmp) / "at_risk.csv", index=False))
    return {"measures": {"export": s}, "info": {"users": users}}


def plan(cfg: dict, cache: str) -> Plan:
    out = Plan()
    n, u = cfg["score_events"], cfg["score_users"]
    out.events[n] = False
    for v in ("product", "reference"):
        out.jobs.append(Job(NAME, f"scoring/{size_label(u)}/{v}", f"score_{v}",
                            {"cache": cache, "events": n, "users": u}))
    for v in ("product", "reference"):
        out.jobs.append(Job(NAME, f"export/{size_label(cfg['export_users'])}/{v}", f"export_{v}",
                            {"users": cfg["export_users"]}))
    return out


def report(t: Rows) -> None:
    u = size_label(t.cfg["score_users"])
    p, r = t.job(f"scoring/{u}/product"), t.job(f"scoring/{u}/reference")
    if p is not None:
        ups = info(p, "users_per_second")
        t.add(NAME, "Saved gbm bundle: predict_proba", f"{u} users", p, "model", r, "model",
              "plain HistGradientBoosting predict_proba (default, 100 trees)",
              (f"{ups:,.0f} users/s" if ups else "") + (f"; product model: {info(p, 'trees')} trees"
                                                         if info(p, "trees") else "")
              + (f"; both timed after a 1,000-user first call (product's: {median(p, 'first_1000'):.2f} s)"
                 if median(p, "first_1000") is not None else ""))
        e2e = info(p, "e2e_users_per_second")
        t.add(NAME, "score(run, event log): features as of the end + predict",
              f"{size_label(t.cfg['score_events'])} events", p, "e2e", r, "e2e",
              "canonical table + features + plain predict",
              f"{e2e:,.0f} users/s, {info(p, 'scored_users', 0):,} users" if e2e else "")
    eu = size_label(t.cfg["export_users"])
    p, r = t.job(f"export/{eu}/product"), t.job(f"export/{eu}/reference")
    if p is not None:
        t.add(NAME, "At-risk CSV export (formula-safe, streamed)", f"{eu} users", p, "export", r, "export",
              "plain DataFrame.to_csv (not formula-safe)", f"{info(p, 'csv_mb', 0):,.0f} MB CSV")


def targets(t: Rows) -> list[dict]:
    rows, cfg = t.rows, t.cfg
    sc = find_rows(rows, NAME, "Saved gbm bundle")
    if not (sc and sc[0]["seconds"]):
        return []
    ups = cfg["score_users"] / sc[0]["seconds"]
    return [{"target": "Saved gradient-boosting bundle scores at least 200k users/s", "value": f"{ups:,.0f}/s",
             "pass": ups >= 200_000}]


SECTION = Section(NAME, "3. Scoring and export", plan, report, targets)
