"""Latency and throughput of the scoring service, over real HTTP against the real server: what the benchmark's serve
section measures (``bench/sections/serve.py`` plans and reports it).

    python -m bench.run --quick --only serve        # gradient boosting, 100 requests per measurement
    python -m bench.run --full --only serve         # gradient boosting and a neural network (MLP), 200 requests

For each model: a run trained on a generated shop log (:func:`make_log`, :func:`train`), the real server started with
``python -m retention_core serve RUN`` in a subprocess (one worker, math libraries on one thread), and a keep-alive HTTP
client (httpx, one connection per concurrent client) measuring (:func:`service`):

- one user from feature rows, and one user from 50 raw events (as CSV text cells), at concurrency 1 and 8:
  p50 and p99 latency, and the server's CPU time per request (from /proc: unlike wall time, it hardly moves with
  the load other processes put on the machine);
- batches of 1,000 users from feature rows: users per second;
- beside each, the reference (:func:`bare_model`): the bare model's ``predict_proba`` in one process on the same rows
  (what the service adds is HTTP, JSON, checks, features and deciles); for the neural network also the three ways to
  call Keras for one row (``predict_on_batch``, which the product uses, a direct call of the model, and
  ``model.predict``).

The client runs on the same machine as the server: on 2 cores the figures at concurrency 8 include the client's own
CPU. Request bodies are encoded to JSON before the clock starts, as a load generator sends prepared bytes.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]  # the project root: the server runs from it

EVENTS_PER_REQUEST = 50
BATCH = 1_000


# ----------------------------------------------------------------------------------------------- set-up
def make_log(users: int, folder: Path) -> tuple[Path, str]:
    from assets.generator import generate_events, write_events

    path = write_events(generate_events(users, seed=3, days=600), folder / "shop.csv")
    as_of = str((pd.Timestamp("2023-01-01") + pd.Timedelta(days=540)).date())
    return path, as_of


def train(csv: Path, key: str, out: Path) -> Path:
    from retention_core.dataset import SnapshotConfig, build_dataset, default_config, training_cutoffs
    from retention_core.events import canonical_events
    from retention_core.io import read_table
    from retention_core.roles import infer_schema
    from retention_core.training import TrainConfig, train_and_save

    table = read_table(csv)
    schema = infer_schema(table, {})
    ev = canonical_events(table, schema)
    cfg = SnapshotConfig(**{**default_config(ev).as_dict(), "horizon_days": 90})
    ds = build_dataset(ev, cfg, cutoffs=training_cutoffs(ev, cfg))
    params = {"mlp": {"epochs": 5}} if key == "mlp" else {}
    train_and_save(out, ds, schema, TrainConfig(models=[key], params=params), snapshot=cfg.as_dict(), digest="bench")
    return out


def payloads(csv: Path, run: Path, as_of: str, n: int) -> dict:
    """Request bodies: one user from feature rows, one user from their last 50 raw events, batches of 1,000 users."""
    from retention_core.bundle import load_run
    from retention_core.io import read_table
    from retention_core.scoring import features_for_run

    run_ = load_run(run)
    frame, _ = features_for_run(run_, read_table(csv), as_of=as_of)
    feats = run_.info["numeric"] + run_.info["categorical"]
    rows = [{"user_id": r["user_id"], **{f: (None if pd.isna(r[f]) else r[f]) for f in feats}}
            for r in frame.to_dict("records")]
    raw = pd.read_csv(csv, dtype=str, keep_default_na=False)
    raw = raw[raw["event_time"] < as_of]
    counts = raw.groupby("customer_id").size()
    busy = [u for u in counts.index[counts >= EVENTS_PER_REQUEST] if u in set(frame["user_id"])]
    events = [raw[raw.customer_id == u].tail(EVENTS_PER_REQUEST).to_dict("records") for u in busy[:n]]
    X = frame[feats]
    return {"rows": rows, "events": [{"events": e, "as_of": as_of} for e in events],
            "one": [{"users": [r]} for r in rows[:n]],
            "batch": [{"users": (rows * (BATCH // len(rows) + 1))[i:i + BATCH]} for i in range(0, 5 * 97, 97)],
            "X": X, "feats": feats}


# ----------------------------------------------------------------------------------------------- the server
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(run: Path, env: dict) -> tuple[subprocess.Popen, str]:
    import httpx

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "retention_core", "serve", str(run), "--port", str(port)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        if proc.poll() is not None:
            raise SystemExit(f"the service exited: {proc.stderr.read()[-2000:]}")
        try:
            if httpx.get(base + "/v1/health", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("the service did not start")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


JSON = {"content-type": "application/json"}


def encoded(bodies: list[dict]) -> list[bytes]:
    return [json.dumps(b).encode() for b in bodies]


def measure(base: str, pid: int, bodies: list[dict], requests: int, concurrency: int) -> dict:
    """Latencies of ``requests`` POSTs (bodies taken in turn) from ``concurrency`` keep-alive clients."""
    import httpx

    lat, errors, lock = [], [], threading.Lock()
    per = max(1, requests // concurrency)
    bodies = encoded(bodies)  # a load generator sends prepared bytes: its own JSON encoding is not the service's time

    def client(k: int) -> None:
        with httpx.Client(base_url=base, timeout=120) as c:
            for i in range(3):  # warm this connection
                c.post("/v1/score", content=bodies[(k + i) % len(bodies)], headers=JSON)
            mine = []
            for i in range(per):
                body = bodies[(k * per + i) % len(bodies)]
                t = time.perf_counter()
                r = c.post("/v1/score", content=body, headers=JSON)
                mine.append(time.perf_counter() - t)
                if r.status_code != 200:
                    errors.append(r.text[:200])
            with lock:
                lat.extend(mine)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(concurrency)]
    c0, t0 = cpu_seconds(pid), time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall, cpu = time.perf_counter() - t0, cpu_seconds(pid) - c0
    if errors:
        raise SystemExit(f"{len(errors)} requests failed, e.g. {errors[0]}")
    ms = np.asarray(lat) * 1000
    return {"requests": len(ms), "concurrency": concurrency, "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99)), "server_cpu_ms": cpu * 1000 / len(ms),
            "requests_per_s": len(ms) / wall}


def batches(base: str, pid: int, bodies: list[dict], rounds: int) -> dict:
    import httpx

    bodies = encoded(bodies)
    with httpx.Client(base_url=base, timeout=300) as c:
        c.post("/v1/score", content=bodies[0], headers=JSON)
        c0, t0 = cpu_seconds(pid), time.perf_counter()
        for i in range(rounds):
            r = c.post("/v1/score", content=bodies[i % len(bodies)], headers=JSON)
            assert r.status_code == 200, r.text[:200]
        wall, cpu = time.perf_counter() - t0, cpu_seconds(pid) - c0
    users = rounds * BATCH
    return {"batches": rounds, "users_per_s": users / wall, "users_per_cpu_s": users / cpu,
            "ms_per_batch": wall * 1000 / rounds}


# ----------------------------------------------------------------------------------------------- references
def bare_model(run: Path, key: str, X: pd.DataFrame) -> dict:
    """The model's own predict_proba in this process, one thread: 1 row and 1,000 rows (median of repeats)."""
    from threadpoolctl import threadpool_limits

    from retention_core.bundle import load_run
    from retention_core.serve import one_thread_model

    threadpool_limits(1)
    model = load_run(run).model(key)
    one_thread_model(model)
    X1, Xb = X.iloc[:1], pd.concat([X] * (BATCH // len(X) + 1)).iloc[:BATCH]
    out = {"one_ms": _median_ms(lambda: model.predict_proba(X1), 200),
           "batch_ms": _median_ms(lambda: model.predict_proba(Xb), 20)}
    if hasattr(model, "model_"):  # Keras: the ways to call it for one row
        static = model.model_inputs(X1)[0]
        out["keras_predict_on_batch_ms"] = _median_ms(lambda: model.model_.predict_on_batch(static), 200)
        out["keras_direct_call_ms"] = _median_ms(lambda: np.asarray(model.model_(static, training=False)), 100)
        out["keras_predict_ms"] = _median_ms(lambda: model.model_.predict(static, verbose=0), 20)
    return out


def _median_ms(f, n: int) -> float:
    for _ in range(3):
        f()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1000)


# ----------------------------------------------------------------------------------------------- the service
def use_signing_key() -> None:
    """Runs are signed: the benchmark's own key unless one is set (the server inherits it)."""
    os.environ.setdefault("RETENTION_BUNDLE_KEY", "bench-serve")


def server_env() -> dict:
    """The server's environment: math libraries on one thread, the runs' signing key, no API token."""
    use_signing_key()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env.pop("RETENTION_API_TOKEN", None)
    return env


def peak_mb(pid: int) -> float | None:
    """The peak resident memory of a running process (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


def service(run: Path, p: dict, requests: int, rounds: int) -> dict:
    """Start the real server on ``run`` and measure it with the bodies of :func:`payloads`: one user from feature rows
    and from raw events at concurrency 1 and 8, then batches; with the server's own peak memory."""
    proc, base = start_server(run, server_env())
    try:
        out = {"feature_rows": [measure(base, proc.pid, p["one"], requests, c) for c in (1, 8)],
               "events": [measure(base, proc.pid, p["events"], requests, c) for c in (1, 8)],
               "batch": batches(base, proc.pid, p["batch"], rounds)}
        out["server_peak_mb"] = peak_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return out
