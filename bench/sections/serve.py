"""Section 9: the HTTP scoring service, measured over real HTTP against the real server (latency p50 and p99 for one
user from feature rows and from raw events, batches of 1,000 users), with the bare model's ``predict_proba`` in one
process beside it (measured by ``bench/bench_serve.py``)."""
from __future__ import annotations

import shutil
from pathlib import Path

from bench.measures import Job, Rows, info, load_text, median
from bench.registry import Plan, Section, step

NAME = "serve"
SOURCES = (("rows", "feature rows"), ("events", "50 raw events"))
TARGET_P99 = {"rows": 0.010, "events": 0.030}  # seconds at concurrency 1, on 2 cores
TARGET_USERS_PER_S = 20_000


def _paths(cache: str, key: str, users: int) -> tuple[Path, str, Path]:
    folder = Path(cache) / f"serve_{users}"
    return folder / "shop.csv", (folder / "as_of.txt").read_text().strip(), folder / f"run_{key}"


@step("serve_run", "prep")
def serve_run(cache: str, key: str, users: int) -> dict:
    """The generated shop log (kept) and a run of model ``key`` trained on it (trained afresh every time, so the server
    loads what today's code saves)."""
    from bench.bench_serve import make_log, train, use_signing_key

    use_signing_key()
    folder = Path(cache) / f"serve_{users}"
    if not (folder / "as_of.txt").exists():
        folder.mkdir(parents=True, exist_ok=True)
        _, as_of = make_log(users, folder)
        (folder / "as_of.txt").write_text(as_of)
    csv, _, run = _paths(cache, key, users)
    shutil.rmtree(run, ignore_errors=True)
    train(csv, key, run)
    return {"measures": {}, "info": {"log_mb": csv.stat().st_size / 1e6}}


@step("serve_service", NAME)
def serve_service(cache: str, key: str, users: int, requests: int, batches: int) -> dict:
    from bench.bench_serve import BATCH, payloads, service, use_signing_key

    use_signing_key()
    csv, as_of, run = _paths(cache, key, users)
    r = service(run, payloads(csv, run, as_of, max(20, requests)), requests, batches)
    measures = {}
    for src, (name, _) in zip(("feature_rows", "events"), SOURCES):
        for m in r[src]:
            k = f"{name}_c{m['concurrency']}"
            measures.update({f"{k}_p50": m["p50_ms"] / 1000, f"{k}_p99": m["p99_ms"] / 1000,
                             f"{k}_cpu": m["server_cpu_ms"] / 1000})
    measures.update(batch=r["batch"]["ms_per_batch"] / 1000, batch_cpu=BATCH / r["batch"]["users_per_cpu_s"])
    return {"measures": measures, "info": {"requests": requests, "batches": batches, "batch_users": BATCH,
                                           "server_peak_mb": r["server_peak_mb"]}}


@step("serve_bare", NAME)
def serve_bare(cache: str, key: str, users: int) -> dict:
    from bench.bench_serve import bare_model, payloads, use_signing_key

    use_signing_key()
    csv, as_of, run = _paths(cache, key, users)
    ms = bare_model(run, key, payloads(csv, run, as_of, 20)["X"])
    return {"measures": {k.removesuffix("_ms"): v / 1000 for k, v in ms.items()}, "info": {}}


def plan(cfg: dict, cache: str) -> Plan:
    out = Plan()
    users = cfg["serve_users"]
    for key in cfg["serve_models"]:
        out.prep.append(Job("prep", f"serve/{key}/run", "serve_run", {"cache": cache, "key": key, "users": users}))
        out.jobs.append(Job(NAME, f"serve/{key}/service", "serve_service",
                            {"cache": cache, "key": key, "users": users, "requests": cfg["serve_requests"],
                             "batches": cfg["serve_batches"]}))
        out.jobs.append(Job(NAME, f"serve/{key}/bare", "serve_bare", {"cache": cache, "key": key, "users": users}))
    return out


def _ms(job: Job | None, measure: str, digits: int = 1) -> str:
    v = median(job, measure)
    return "—" if v is None else f"{v * 1000:.{digits}f}"


def _tables(pairs: list[tuple[str, Job, Job | None]]) -> list[str]:
    lines = ["Latency of one user per request (milliseconds, medians over runs; the server's CPU time per request "
             "hardly moves with the machine's load):", "",
             "| model | one user from | concurrency | p50 ms | p99 ms | server CPU ms / request | bare model ms |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for key, s, b in pairs:
        for name, label in SOURCES:
            for c in (1, 8):
                k = f"{name}_c{c}"
                lines.append(f"| {key} | {label} | {c} | {_ms(s, k + '_p50')} | {_ms(s, k + '_p99')} | "
                             f"{_ms(s, k + '_cpu')} | {_ms(b, 'one', 2)} |")
    lines += ["", "| model | batches of 1,000 users (feature rows) | users/s | users per server CPU second | "
              "bare model ms per batch |", "|---|---:|---:|---:|---:|"]
    for key, s, b in pairs:
        batch, cpu, n = median(s, "batch"), median(s, "batch_cpu"), info(s, "batch_users", 1000)
        lines.append(f"| {key} | {_ms(s, 'batch', 0)} ms per batch | {n / batch if batch else 0:,.0f} | "
                     f"{n / cpu if cpu else 0:,.0f} | {_ms(b, 'batch')} |")
    for key, s, b in pairs:
        if median(b, "keras_predict") is not None:
            lines.append(f"\n{key}, one row in process: predict_on_batch {_ms(b, 'keras_predict_on_batch', 2)} ms "
                         f"(what the product calls), direct call of the model {_ms(b, 'keras_direct_call', 2)} ms, "
                         f"model.predict {_ms(b, 'keras_predict')} ms.")
    return lines


def report(t: Rows) -> None:
    pairs = []
    for s in t.section_jobs(NAME):
        if s.step != "serve_service":
            continue
        key = s.params["key"]
        b = t.job(f"serve/{key}/bare")
        pairs.append((key, s, b))
        for name, label in SOURCES:
            t.add(NAME, f"Service, one user from {label}: p99 (concurrency 1)", key, s, f"{name}_c1_p99", b, "one",
                  "bare model predict_proba, one row, in process",
                  f"p50 {_ms(s, name + '_c1_p50')} ms; server CPU {_ms(s, name + '_c1_cpu')} ms per request; "
                  f"load {load_text(s)}")
        batch, n = median(s, "batch"), info(s, "batch_users", 1000)
        server = info(s, "server_peak_mb")
        t.add(NAME, f"Service, a batch of {n:,} users from feature rows", key, s, "batch", b, "batch",
              f"bare model predict_proba, {n:,} rows, in process",
              (f"{n / batch:,.0f} users/s" if batch else "") + (f"; server peak {server:,.0f} MB" if server else ""))
    if pairs:
        t.tables[NAME] = _tables(pairs)
    t.details[NAME] = {"models": [key for key, _, _ in pairs]}


def targets(t: Rows) -> list[dict]:
    out = []
    on = f" (this machine: {t.meta.get('cores')} cores)" if t.meta.get("cores") != 2 else ""
    for key in (t.details.get(NAME) or {}).get("models", []):
        s = t.job(f"serve/{key}/service")
        for name, label in SOURCES:
            v, limit = median(s, f"{name}_c1_p99"), TARGET_P99[name]
            out.append({"target": f"Service p99 at most {limit * 1000:.0f} ms, one user from {label}, {key}, "
                                  f"concurrency 1, on 2 cores{on}",
                        "value": f"{_ms(s, name + '_c1_p99')} ms (server CPU {_ms(s, name + '_c1_cpu')} ms per "
                                 "request)", "pass": v is not None and v <= limit})
        batch, cpu, n = median(s, "batch"), median(s, "batch_cpu"), info(s, "batch_users", 1000)
        out.append({"target": f"Service batches of {n:,} at least {TARGET_USERS_PER_S:,} users/s, {key}, on 2 cores{on}",
                    "value": f"{n / batch if batch else 0:,.0f} users/s ({n / cpu if cpu else 0:,.0f} per server "
                             "CPU second)", "pass": bool(batch) and n / batch >= TARGET_USERS_PER_S})
    return out


SECTION = Section(NAME, "9. Scoring service over HTTP", plan, report, targets)
