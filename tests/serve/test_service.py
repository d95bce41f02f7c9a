"""The scoring service as a shop's site or CRM meets it: a real server (``python -m retention_core serve``) in a
subprocess, spoken to over HTTP. One server per module, started with a token and small limits, serving the gradient
boosting model (``--model gbm``) of a run trained here on a generated shop log with a second model (the recency
baseline); its answers are compared with batch scoring of the same users by the same model.
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
TOKEN = "test-token-7f3a"
AS_OF = "2024-03-01"
LIMIT_MB = 3
MAX_EVENTS = 20_000
MAX_USERS = 1_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "RETENTION_API_TOKEN"}
    return {**env, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **extra}


def train_run(table: pd.DataFrame, out: Path, *, models=("gbm",), horizon: int = 60, params=None) -> Path:
    """A run trained as the command line trains one, with small models so the module stays quick."""
    from retention_core.dataset import SnapshotConfig, build_dataset, default_config, training_cutoffs
    from retention_core.events import canonical_events
    from retention_core.roles import infer_schema
    from retention_core.training import TrainConfig, train_and_save

    schema = infer_schema(table, {})
    ev = canonical_events(table, schema)
    cfg = SnapshotConfig(**{**default_config(ev).as_dict(), "horizon_days": horizon, "lookback_days": 365})
    ds = build_dataset(ev, cfg, cutoffs=training_cutoffs(ev, cfg))
    tc = TrainConfig(models=list(models), params=params or {"gbm": {"max_iter": 40}})
    train_and_save(out, ds, schema, tc, snapshot=cfg.as_dict(), digest="test")
    return out


def start(run: Path, port: int, env: dict, *options: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "retention_core", "serve", str(run), "--port", str(port), *options],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_until_up(proc: subprocess.Popen, base: str, timeout: float = 180) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise AssertionError(f"the service exited with {proc.returncode}: {proc.stderr.read()[-2000:]}")
        try:
            if httpx.get(base + "/v1/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.3)
    raise AssertionError("the service did not answer /v1/health in time")


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """A generated shop log (CSV), a gbm run trained on it, and batch scores of every user as of AS_OF."""
    from assets.generator import generate_events, write_events
    from retention_core.bundle import load_run
    from retention_core.io import read_table
    from retention_core.scoring import score

    d = tmp_path_factory.mktemp("serve")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RETENTION_BUNDLE_KEY", "serve-tests-key")
        mp.delenv("RETENTION_API_TOKEN", raising=False)
        path = write_events(generate_events(300, seed=5, days=500), d / "shop.csv")
        table = read_table(path)
        run = train_run(table, d / "run", models=("gbm", "recency"))
        scores, frame, _ = score(load_run(run), table, as_of=AS_OF, model="gbm")
        yield {"dir": d, "csv": path, "run": run, "scores": scores.set_index("user_id"), "frame": frame}


@pytest.fixture(scope="module")
def server(shop):
    """The module's server process (``--model gbm``, a token, small limits; a recording may wait for the history as
    long as a test holds it)."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = _env(RETENTION_BUNDLE_KEY="serve-tests-key", RETENTION_API_TOKEN=TOKEN,
               RETENTION_API_MAX_BODY_MB=str(LIMIT_MB), RETENTION_API_MAX_EVENTS=str(MAX_EVENTS),
               RETENTION_API_MAX_USERS=str(MAX_USERS), RETENTION_API_RECORD_TIMEOUT="600")
    proc = start(shop["run"], port, env, "--model", "gbm")
    try:
        wait_until_up(proc, base)
        yield proc, base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _client(base: str) -> httpx.Client:
    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)


@pytest.fixture(scope="module")
def service(server):
    with _client(server[1]) as client:
        yield client


@pytest.fixture(scope="module")
def raw(shop):
    """The log's rows as a CSV reader gives them: every cell a string, '' for missing."""
    return pd.read_csv(shop["csv"], dtype=str, keep_default_na=False)


def _rows(df: pd.DataFrame) -> list[dict]:
    return df.to_dict("records")


def _error(resp, status: int, field: str) -> str:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert field in body["message"], body
    return body["message"]


# ----------------------------------------------------------------------------------------------- basics
def test_health_is_open(service):
    r = httpx.get(str(service.base_url) + "/v1/health")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def test_model_info_describes_the_run(service, shop):
    from retention_core.bundle import load_run

    info = service.get("/v1/model").json()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RETENTION_BUNDLE_KEY", "serve-tests-key")
        run = load_run(shop["run"])
    assert info["run"] == "run" and info["model"] == "gbm" and info["kind"] == "events"
    assert info["horizon_days"] == 60 and info["threshold"] == pytest.approx(run.info["thresholds"]["gbm"])
    names = {f["name"]: f["type"] for f in info["features"]}
    assert set(names) == set(run.info["numeric"] + run.info["categorical"])
    assert names["recency_days"] == "number" and names["country"] == "text"
    cols = {c["role"]: c for c in info["columns"]}
    assert cols["user_id"]["column"] == "customer_id" and cols["user_id"]["required"]
    assert cols["timestamp"]["column"] == "event_time" and cols["timestamp"]["required"]
    assert info["trained"][:4].isdigit() and 0.5 < info["validation"]["metrics"]["roc_auc"] <= 1
    assert info["population_refit"] is False and "validation users" in info["risk_deciles"]
    assert info["limits"]["max_body_bytes"] == LIMIT_MB * 1_000_000


def test_openapi_documents_the_endpoints(service):
    paths = httpx.get(str(service.base_url) + "/openapi.json").json()["paths"]
    assert {"/v1/health", "/v1/model", "/v1/score"} <= set(paths)
    body = paths["/v1/score"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"events", "users", "as_of", "reasons"} <= set(body["properties"])
    assert httpx.get(str(service.base_url) + "/docs").status_code == 200


# ----------------------------------------------------------------------------------------------- same as score
def test_events_score_like_batch_scoring(service, shop, raw):
    users = list(shop["scores"].index[:60])
    r = service.post("/v1/score", json={"events": _rows(raw[raw.customer_id.isin(users)]), "as_of": AS_OF})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "gbm" and body["as_of"] == AS_OF
    got = {s["user_id"]: s for s in body["scores"]}
    assert set(got) == set(users)
    thr = service.get("/v1/model").json()["threshold"]
    for u in users:
        p = got[u]["churn_probability"]
        assert abs(p - shop["scores"].loc[u, "churn_probability"]) <= 1e-9
        assert got[u]["at_risk"] == (p >= thr) and 1 <= got[u]["risk_decile"] <= 10 and got[u]["reasons"] == []


def test_a_scoring_asked_to_be_recorded_lands_in_the_history(service, shop, raw):
    """`"record": true` keeps the scoring in the workspace's history (the store `monitor` reads), as of its date;
    without it nothing is recorded."""
    from retention_core import monitor

    ws = os.environ["RETENTION_WORKSPACE"]  # the service runs in the tests' workspace

    def service_scorings():
        rec = monitor.scorings("run", workspace=ws)
        return rec[rec["source"] == "service"] if len(rec) else rec

    before = set(service_scorings()["scoring_id"]) if len(service_scorings()) else set()
    users = list(shop["scores"].index[:7])
    body = {"events": _rows(raw[raw["customer_id"].isin(users)]), "as_of": AS_OF}
    assert service.post("/v1/score", json=body).status_code == 200
    assert set(service_scorings()["scoring_id"] if len(service_scorings()) else []) == before
    r = service.post("/v1/score", json={**body, "record": True})
    assert r.status_code == 200, r.text
    rec = service_scorings()
    new = rec[~rec["scoring_id"].isin(before)]
    assert len(new) == 1
    assert new["users"].iloc[0] == 7 and str(new["as_of"].iloc[0])[:10] == AS_OF


def test_one_user_at_a_time_scores_like_batch(service, shop, raw):
    for u in list(shop["scores"].index[::15]):
        r = service.post("/v1/score", json={"events": _rows(raw[raw.customer_id == u]), "as_of": AS_OF})
        assert r.status_code == 200, r.text
        (s,) = r.json()["scores"]
        assert s["user_id"] == u
        assert abs(s["churn_probability"] - shop["scores"].loc[u, "churn_probability"]) <= 1e-9


def test_rows_are_typed_as_the_file_reader_types_the_same_cells(shop, raw, tmp_path):
    """The same text cells give the same table, sent as JSON or read from a CSV file (missing markers, numbers,
    identifiers); Online Retail II's own cells too when the real data is present."""
    from retention_core.io import read_table
    from retention_core.serve import events_frame

    samples = [raw.head(2000)]
    if (DATA / "online_retail_ii_2009_2010.parquet").is_file():
        r = pd.read_parquet(DATA / "online_retail_ii_2009_2010.parquet").head(3000)
        r.to_csv(tmp_path / "or.csv", index=False)
        samples.append(pd.read_csv(tmp_path / "or.csv", dtype=str, keep_default_na=False))
    odd = pd.DataFrame({" id ": ["a", "b", "c", "d"], "n": ["1", "NA", "", "2"], "code": ["007", "12", "x", "-"],
                        "price": ["1,234.50", "2", "", "3.5"]})
    for df in samples + [odd]:
        from_file = read_table(df.to_csv(index=False).encode(), name="rows.csv")
        from_json = events_frame(json.loads(json.dumps(_rows(df))))
        from_file.attrs, from_json.attrs = {}, {}
        pd.testing.assert_frame_equal(from_json, from_file)


def test_counts_of_events_a_user_never_had_are_zero(shop, raw):
    """One customer's events hold no return: the request's table has no return column, and the run's return counts
    are 0 for them (as in batch scoring of the whole log), not unknown."""
    from retention_core.bundle import load_run
    from retention_core.scoring import features_for_run
    from retention_core.serve import events_frame

    counts = raw.groupby("customer_id")["event_type"].apply(lambda t: (t == "return").sum())
    u = next(u for u in shop["scores"].index if counts.get(u, 1) == 0)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RETENTION_BUNDLE_KEY", "serve-tests-key")
        run = load_run(shop["run"])
        frame, _ = features_for_run(run, events_frame(_rows(raw[raw.customer_id == u])), as_of=AS_OF)
    returns = [c for c in run.info["numeric"] if c.startswith("events_return")]
    assert returns and (frame[returns] == 0).all(axis=None)
    batch = shop["frame"].set_index("user_id").loc[u]
    assert (batch[returns] == 0).all()


def test_feature_rows_score_like_batch(service, shop):
    info = service.get("/v1/model").json()
    feats = [f["name"] for f in info["features"]]
    frame = shop["frame"].head(25)
    rows = [{"user_id": r["user_id"], **{f: (None if pd.isna(r[f]) else r[f]) for f in feats}}
            for r in frame.to_dict("records")]
    r = service.post("/v1/score", json={"users": rows})
    assert r.status_code == 200, r.text
    for s in r.json()["scores"]:
        assert abs(s["churn_probability"] - shop["scores"].loc[s["user_id"], "churn_probability"]) <= 1e-9


def test_each_customer_gets_the_stage_batch_scoring_gives(service, shop, raw):
    """The answer carries each customer's lifecycle stage, the same as the ``score`` command's for the same users
    and date: measured against the run's validation users, so one customer sent alone gets the same stage as in a
    batch; from raw events or from feature rows."""
    batch = shop["scores"]["stage"].astype(str)
    assert {"active", "lapsed"} <= set(batch)
    users = list(batch.groupby(batch).head(5).index)  # a few customers of every stage
    r = service.post("/v1/score", json={"events": _rows(raw[raw.customer_id.isin(users)]), "as_of": AS_OF})
    assert r.status_code == 200, r.text
    assert {s["user_id"]: s["stage"] for s in r.json()["scores"]} == batch.loc[users].to_dict()
    for u in users[:: max(1, len(users) // 4)]:  # one customer at a time
        (alone,) = service.post("/v1/score", json={"events": _rows(raw[raw.customer_id == u]),
                                                   "as_of": AS_OF}).json()["scores"]
        assert alone["stage"] == batch[u]
    feats = [f["name"] for f in service.get("/v1/model").json()["features"]]
    rows = [{"user_id": x["user_id"], **{f: (None if pd.isna(x[f]) else x[f]) for f in feats}}
            for x in shop["frame"].set_index("user_id", drop=False).loc[users].to_dict("records")]
    got = service.post("/v1/score", json={"users": rows}).json()["scores"]
    assert {s["user_id"]: s["stage"] for s in got} == batch.loc[users].to_dict()


def test_a_single_users_decile_comes_from_the_validation_users(service, shop):
    """One user alone has no population to be ranked in: the decile places them among the run's validation users
    scored by the same model (1 + the tenths of them that score higher)."""
    from retention_core.bundle import load_run

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RETENTION_BUNDLE_KEY", "serve-tests-key")
        run = load_run(shop["run"])
        val = run.validation()
        ref = run.model("gbm").predict_proba(val[run.info["numeric"] + run.info["categorical"]])[:, 1]
    feats = [f["name"] for f in service.get("/v1/model").json()["features"]]
    frame = shop["frame"].sort_values("recency_days")
    deciles = []
    for i in (0, len(frame) // 2, len(frame) - 1):
        row = frame.iloc[i]
        body = {"users": [{"user_id": row["user_id"], **{f: (None if pd.isna(row[f]) else row[f]) for f in feats}}]}
        (s,) = service.post("/v1/score", json=body).json()["scores"]
        higher = int((ref > s["churn_probability"]).sum())
        assert s["risk_decile"] == min(10, higher * 10 // len(ref) + 1)
        deciles.append(s["risk_decile"])
    assert deciles[0] > deciles[-1]  # the most recent buyer is less at risk than the longest gone


def test_reasons_come_with_each_user(service, shop, raw):
    users = list(shop["scores"].index[:3])
    r = service.post("/v1/score", json={"events": _rows(raw[raw.customer_id.isin(users)]), "as_of": AS_OF,
                                        "reasons": 2})
    assert r.status_code == 200, r.text
    for s in r.json()["scores"]:
        assert 1 <= len(s["reasons"]) <= 2 and all(isinstance(t, str) and t for t in s["reasons"])


def test_reasons_are_the_same_as_the_command_lines(service, shop):
    """The service and ``score --reasons`` ask the same explanation object: the same user, the same reasons."""
    from retention_core.bundle import load_run
    from retention_core.io import read_table
    from retention_core.scoring import score_file

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RETENTION_BUNDLE_KEY", "serve-tests-key")
        listed = score_file(load_run(shop["run"]), read_table(shop["csv"]), as_of=AS_OF, model="gbm", top=12,
                            reasons=3).chosen.set_index("user_id")
    feats = [f["name"] for f in service.get("/v1/model").json()["features"]]
    frame = shop["frame"].set_index("user_id").loc[listed.index].reset_index()
    rows = [{"user_id": r["user_id"], **{f: (None if pd.isna(r[f]) else r[f]) for f in feats}}
            for r in frame.to_dict("records")]
    r = service.post("/v1/score", json={"users": rows, "reasons": 3})
    assert r.status_code == 200, r.text
    got = {s["user_id"]: s["reasons"] for s in r.json()["scores"]}
    assert any(got.values())
    for u, row in listed.iterrows():
        assert got[u] == [t for t in (row["reason_1"], row["reason_2"], row["reason_3"]) if t], u


# ----------------------------------------------------------------------------------------------- bad requests
def test_bad_requests_get_422_naming_the_field(service, raw, shop):
    one = _rows(raw[raw.customer_id == shop["scores"].index[0]])
    feats = [f["name"] for f in service.get("/v1/model").json()["features"]]
    good = {"user_id": "u1", **{f: None for f in feats}}
    cases = [
        ({"events": "nonsense"}, "events"),
        ({"events": []}, "events"),
        ({"events": one, "as_of": "10/09/2010"}, "as_of"),
        ({"events": one, "as_of": "2010-02-30"}, "as_of"),
        ({"events": one, "reasons": 99}, "reasons"),
        ({"events": [{"customer_id": {"nested": 1}}]}, "events[0].customer_id"),
        ({"events": [{k: v for k, v in row.items() if k != "event_time"} for row in one]}, "event_time"),
        ({"users": [{**good, "shoe_size": 42}]}, "users[0].shoe_size"),
        ({"users": [{**good, "recency_days": "soon"}]}, "users[0].recency_days"),
        ({"users": [{k: v for k, v in good.items() if k != "recency_days"}]}, "users[0].recency_days"),
        ({"users": [good], "events": one}, "users"),
        ({}, "events"),
        ({"events": one, "extra": 1}, "extra"),
    ]
    for body, field in cases:
        _error(service.post("/v1/score", json=body), 422, field)
    _error(service.post("/v1/score", content=b"{not json", headers={"Content-Type": "application/json"}), 422,
           "JSON")


def test_bodies_over_the_limit_get_413(service):
    big = {"events": [{"customer_id": "u", "pad": "x" * 1000}] * (LIMIT_MB * 1030)}
    data = json.dumps(big).encode()
    assert len(data) > LIMIT_MB * 1_000_000
    r = service.post("/v1/score", content=data, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "limit" in r.json()["message"]

    def chunks():  # no Content-Length: the body is counted as it arrives
        for i in range(0, len(data), 65536):
            yield data[i:i + 65536]

    r = service.post("/v1/score", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413


def test_the_token_is_required(service, shop, raw):
    base = str(service.base_url)
    body = {"events": _rows(raw[raw.customer_id == shop["scores"].index[0]]), "as_of": AS_OF}
    assert httpx.post(base + "/v1/score", json=body).status_code == 401
    assert httpx.get(base + "/v1/model").status_code == 401
    wrong = {"Authorization": "Bearer not-the-token"}
    assert httpx.post(base + "/v1/score", json=body, headers=wrong).status_code == 401
    assert httpx.post(base + "/v1/score", json=body, headers={"Authorization": TOKEN}).status_code == 401
    assert service.post("/v1/score", json=body).status_code == 200


def _feature_row(service, shop) -> dict:
    feats = [f["name"] for f in service.get("/v1/model").json()["features"]]
    row = shop["frame"].iloc[0]
    return {"user_id": row["user_id"], **{f: (None if pd.isna(row[f]) else row[f]) for f in feats}}


def _with_literal(body: dict, literal: str) -> bytes:
    """The body as JSON text with the cell holding ``"<literal>"`` written as the bare literal (NaN, 1e400...)."""
    return json.dumps(body).replace('"<literal>"', literal).encode()


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1" + "0" * 400 + ".5"])
def test_numbers_that_are_not_finite_get_422_naming_the_field(service, shop, raw, literal):
    """NaN, Infinity and numbers beyond float range are refused where they stand, never read as a missing value."""
    row = _feature_row(service, shop)
    r = service.post("/v1/score", content=_with_literal({"users": [{**row, "recency_days": "<literal>"}]}, literal),
                     headers={"Content-Type": "application/json"})
    assert "finite" in _error(r, 422, "users[0].recency_days")
    events = _rows(raw[raw.customer_id == shop["scores"].index[0]])
    events[1]["unit_price"] = "<literal>"
    r = service.post("/v1/score", content=_with_literal({"events": events, "as_of": AS_OF}, literal),
                     headers={"Content-Type": "application/json"})
    assert "finite" in _error(r, 422, "events[1].unit_price")


def test_huge_integers_never_fail_the_service_nor_its_connection(server, shop, raw):
    """A 400-digit number: as a feature, 422 naming it; as a customer id (in events or feature rows), text, scored.
    One keep-alive connection carries every request, each answered."""
    huge = 10**400
    addresses = []
    with _client(server[1]) as c:
        c.event_hooks["response"] = [lambda r: addresses.append(r.extensions["network_stream"].get_extra_info(
            "client_addr"))]
        row = _feature_row(c, shop)
        _error(c.post("/v1/score", json={"users": [{**row, "recency_days": huge}]}), 422, "users[0].recency_days")
        r = c.post("/v1/score", json={"users": [{**row, "user_id": huge}]})
        assert r.status_code == 200, r.text
        assert r.json()["scores"][0]["user_id"] == str(huge)
        events = [{**e, "customer_id": huge} for e in _rows(raw[raw.customer_id == shop["scores"].index[0]])]
        r = c.post("/v1/score", json={"events": events, "as_of": AS_OF})
        assert r.status_code == 200, r.text
        (s,) = r.json()["scores"]
        assert s["user_id"] == str(huge)
        assert abs(s["churn_probability"] - shop["scores"]["churn_probability"].iloc[0]) <= 1e-9
        assert c.post("/v1/score", json={"users": [row]}).status_code == 200
    assert len(addresses) == 5 and len(set(addresses)) == 1  # one connection throughout


def test_rows_over_the_limit_get_413_naming_the_limit(service):
    """At most RETENTION_API_MAX_EVENTS events and RETENTION_API_MAX_USERS users per request (this server: 20,000
    and 1,000), counted before any table is built; a body whose key the byte count cannot read (written with escapes)
    is counted once parsed."""
    event = {"customer_id": "u1", "event_time": "2024-01-01 10:00:00", "event_type": "purchase", "order_id": "1"}
    message = _error(service.post("/v1/score", json={"events": [event] * (MAX_EVENTS + 1)}), 413, "events")
    assert "RETENTION_API_MAX_EVENTS" in message and f"{MAX_EVENTS:,}" in message
    message = _error(service.post("/v1/score", json={"users": [{"user_id": "u"}] * (MAX_USERS + 1)}), 413, "users")
    assert "RETENTION_API_MAX_USERS" in message and f"{MAX_USERS:,}" in message
    escaped = json.dumps({"events": [event] * (MAX_EVENTS + 1)}).replace('"events"', '"\\u0065vents"', 1)
    _error(service.post("/v1/score", content=escaped.encode(), headers={"Content-Type": "application/json"}), 413,
           "RETENTION_API_MAX_EVENTS")
    assert service.post("/v1/score", json={"users": [{"user_id": "u"}] * MAX_USERS}).status_code == 422  # counted in
    limits = service.get("/v1/model").json()["limits"]
    assert limits["max_events"] == MAX_EVENTS and limits["max_users"] == MAX_USERS


# ----------------------------------------------------------------------------------------------- recording
def _history_lock(workspace) -> Path:
    """The file the scoring history's writers and readers lock (``flock``; see retention_core/monitor/store.py)."""
    from retention_core.monitor import history_path

    path = history_path(workspace)
    return path.with_name(path.name + ".lock")


@contextmanager
def history_held(workspace):
    """The scoring history's lock, held by this process as another scoring or a report holds it."""
    lock = _history_lock(workspace)
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _wait_until_open(pid: int, path: Path) -> None:
    """Until process ``pid`` has ``path`` open: the service has reached the history's lock and waits for it."""
    target = str(path.resolve())
    for _ in range(2400):  # a safety net; what the tests check is the order of events, not how long they take
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd) == target:
                    return
            except OSError:
                continue
        time.sleep(0.05)
    raise AssertionError("the service never reached the scoring history's lock")


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="reads which files the server holds from /proc")
def test_a_recording_waits_off_the_event_loop(server, service, shop, raw):
    """While another process holds the scoring history, a request asking to be recorded waits for it (this server
    waits up to 600 s) and /v1/health still answers at once; released, the request is recorded and answered."""
    proc, base = server
    ws = os.environ["RETENTION_WORKSPACE"]
    users = list(shop["scores"].index[:2])
    body = {"events": _rows(raw[raw.customer_id.isin(users)]), "as_of": AS_OF, "record": True}
    with ThreadPoolExecutor(1) as pool, _client(base) as other:
        with history_held(ws):
            pending = pool.submit(other.post, "/v1/score", json=body)
            _wait_until_open(proc.pid, _history_lock(ws))
            health = service.get("/v1/health")
            assert health.status_code == 200 and health.json() == {"status": "ok"}
            assert service.get("/v1/model").status_code == 200
            assert not pending.done()  # still waiting for the history: nothing but this request waited
        r = pending.result(timeout=300)
    assert r.status_code == 200, r.text
    assert r.json()["recording"]["status"] == "recorded" and len(r.json()["scores"]) == 2


def test_a_recording_the_history_keeps_waiting_is_skipped(shop, raw):
    """Past its wait, the recording is skipped: the scores are answered and the answer says they were not recorded."""
    from retention_core import monitor
    from retention_core.serve import Scorer, ScoreRequest

    ws = os.environ["RETENTION_WORKSPACE"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RETENTION_BUNDLE_KEY", "serve-tests-key")
        scorer = Scorer(shop["run"], model="gbm", record_timeout=0)
    users = list(shop["scores"].index[:3])
    req = ScoreRequest(events=_rows(raw[raw.customer_id.isin(users)]), as_of=AS_OF, record=True)
    before = len(monitor.scorings(workspace=ws))
    with history_held(ws):
        answer = scorer.score(req)
    assert answer["recording"]["status"] == "skipped" and "busy" in answer["recording"]["reason"]
    assert {s["user_id"] for s in answer["scores"]} == set(users)
    assert len(monitor.scorings(workspace=ws)) == before
    assert scorer.score(req)["recording"]["status"] == "recorded"


# ----------------------------------------------------------------------------------------------- start-up
def test_the_model_named_is_served(shop):
    """`serve RUN --model KEY` serves that model, not the run's best; /v1/model says which. Listening on every
    address without a token prints one warning."""
    from retention_core.bundle import load_run

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RETENTION_BUNDLE_KEY", "serve-tests-key")
        run = load_run(shop["run"])
    other = next(k for k in run.info["models"] if k != run.best)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start(shop["run"], port, _env(RETENTION_BUNDLE_KEY="serve-tests-key"), "--host", "0.0.0.0", "--model",
                 other)
    try:
        wait_until_up(proc, base)
        info = httpx.get(base + "/v1/model").json()
        assert info["model"] == other and info["best_model"] == run.best and set(info["models"]) == {"gbm", "recency"}
        assert info["threshold"] == pytest.approx(run.info["thresholds"][other])
        row = {"user_id": "u1", **{f["name"]: None for f in info["features"]}, "recency_days": 3.0}
        r = httpx.post(base + "/v1/score", json={"users": [row]})
        assert r.status_code == 200 and r.json()["model"] == other
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "0.0.0.0" in warnings[0] and "RETENTION_API_TOKEN" in warnings[0], err


def test_an_unknown_model_refuses_to_start(shop):
    proc = start(shop["run"], _free_port(), _env(RETENTION_BUNDLE_KEY="serve-tests-key"), "--model", "nope")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "'nope'" in lines[0] and "gbm, recency" in lines[0]


def test_the_model_info_names_the_model_served(service, shop):
    info = service.get("/v1/model").json()
    assert info["model"] == "gbm" and set(info["models"]) == {"gbm", "recency"}
    assert info["best_model"] in info["models"]


# ----------------------------------------------------------------------------------------------- start-up
def test_a_tampered_run_refuses_to_start(shop, tmp_path):
    bad = tmp_path / "tampered"
    shutil.copytree(shop["run"], bad)
    info = json.loads((bad / "run.json").read_text())
    info["threshold"] = 0.01
    (bad / "run.json").write_text(json.dumps(info))
    for run in (bad, tmp_path / "missing"):
        proc = start(run, _free_port(), _env(RETENTION_BUNDLE_KEY="serve-tests-key"))
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 2, err
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), err


def test_serve_command_names_the_run(tmp_path, monkeypatch):
    from retention_core.serve import serve_command

    monkeypatch.chdir(tmp_path)
    (tmp_path / "workspace" / "runs" / "my shop").mkdir(parents=True)
    assert serve_command(tmp_path / "workspace" / "runs" / "my shop") == \
        "python -m retention_core serve 'workspace/runs/my shop' --port 8000"
    assert serve_command("/srv/runs/a", port=9000, workers=2) == \
        "python -m retention_core serve /srv/runs/a --port 9000 --workers 2"


def test_serve_command_names_the_model():
    from retention_core.serve import serve_command

    assert serve_command("/srv/runs/a", model="recency") == \
        "python -m retention_core serve /srv/runs/a --port 8000 --model recency"


@pytest.mark.skipif(not (DATA / "online_retail_ii_2009_2010.parquet").is_file(),
                    reason="real data not available: ../shared/data/online_retail_ii_2009_2010.parquet not found")
def test_online_retail_users_score_like_batch(tmp_path):
    """Online Retail II customers, sent as the CSV's text cells ('' for missing), get exactly the probabilities
    batch scoring gives them: a run trained on December 2009 to June 2010, scored as of 2010-06-01 (the service's
    scoring code in this process; the HTTP side is the server's above)."""
    from retention_core.bundle import load_run
    from retention_core.io import read_table
    from retention_core.scoring import score
    from retention_core.serve import Scorer, ScoreRequest

    r = pd.read_parquet(DATA / "online_retail_ii_2009_2010.parquet")
    r["InvoiceDate"] = pd.to_datetime(r["InvoiceDate"])
    csv = tmp_path / "cut.csv"
    r[r["InvoiceDate"] <= "2010-06-01"].to_csv(csv, index=False)
    raw = pd.read_csv(csv, dtype=str, keep_default_na=False)
    raw["uid"] = pd.to_numeric(raw["Customer ID"], errors="coerce")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RETENTION_BUNDLE_KEY", "serve-tests-key")
        table = read_table(csv)
        run = train_run(table, tmp_path / "run_or", horizon=60, params={"gbm": {"max_iter": 20}})
        scores = score(load_run(run), table, as_of="2010-06-01")[0]
        scorer = Scorer(run)
    want = {float(u): p for u, p in zip(scores["user_id"], scores["churn_probability"])}
    users = list(want)[:: max(1, len(want) // 40)]
    body = ScoreRequest(events=raw[raw.uid.isin(users)].drop(columns="uid").to_dict("records"), as_of="2010-06-01")
    got = {float(s["user_id"]): s["churn_probability"] for s in scorer.score(body)["scores"]}
    assert set(users) <= set(got)
    assert max(abs(got[u] - want[u]) for u in users) <= 1e-9
    # one customer alone, half or more of whose lines are cancellations ('C' invoices): still cancellations
    share = raw[raw.uid.isin(list(want))].groupby("uid")["Invoice"].apply(lambda s: s.str.startswith("C").mean())
    alone = list(share[share >= 0.5].index[:5])
    assert alone
    for u in alone:
        body = ScoreRequest(events=raw[raw.uid == u].drop(columns="uid").to_dict("records"), as_of="2010-06-01")
        (s,) = scorer.score(body)["scores"]
        assert abs(s["churn_probability"] - want[u]) <= 1e-9


@pytest.mark.skipif(not (DATA / "telco_customer_churn.csv").is_file(),
                    reason="real data not available: ../shared/data/telco_customer_churn.csv not found")
def test_user_table_rows_score_like_batch(tmp_path):
    """A run trained on a user table (IBM Telco) scores the table's own rows, sent as text cells, exactly as batch
    scoring does; raw events are refused for it (the service's scoring code in this process)."""
    from retention_core.bundle import load_run
    from retention_core.dataset import user_dataset
    from retention_core.errors import RetentionError
    from retention_core.io import read_table
    from retention_core.roles import infer_schema
    from retention_core.scoring import score
    from retention_core.serve import Scorer, ScoreRequest
    from retention_core.training import TrainConfig, train_and_save
    from retention_core.validation import validate

    path = DATA / "telco_customer_churn.csv"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RETENTION_BUNDLE_KEY", "serve-tests-key")
        table = read_table(path)
        schema = infer_schema(table, {})
        report = validate(table, schema)
        run = tmp_path / "telco"
        train_and_save(run, user_dataset(table, schema, report), schema, TrainConfig(models=["logreg"]), snapshot={},
                       digest="test", excluded=report.excluded_features)
        want = score(load_run(run), table)[0].set_index("user_id")["churn_probability"]
        scorer = Scorer(run)
    raw = pd.read_csv(path, dtype=str, keep_default_na=False).sample(150, random_state=0)
    got = scorer.score(ScoreRequest(users=raw.to_dict("records")))["scores"]
    assert len(got) == 150
    assert max(abs(s["churn_probability"] - want[s["user_id"]]) for s in got) <= 1e-9
    with pytest.raises(RetentionError, match="user table"):
        scorer.score(ScoreRequest(events=raw.head(2).to_dict("records")))
