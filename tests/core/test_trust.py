"""Trust: memory guard on reading, pseudonymised ids from the command line, a real kill in the middle of a save."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from retention_core import io
from retention_core.errors import DataError

ROOT = Path(__file__).resolve().parents[2]


def test_a_file_too_large_for_free_memory_gets_a_clear_message(monkeypatch):
    monkeypatch.setattr(io, "available_memory", lambda: 1000)
    with pytest.raises(DataError, match="GB of memory to load"):
        io.read_table(b"a,b\n" + b"1,2\n" * 500, name="big.csv")
    monkeypatch.setattr(io, "available_memory", lambda: None)  # unknown: read as usual
    assert len(io.read_table(b"a,b\n1,2\n3,4\n")) == 2


def test_memory_error_while_parsing_becomes_a_data_error(monkeypatch):
    def boom(*a, **k):
        raise MemoryError

    monkeypatch.setattr(io, "_parse", boom)
    with pytest.raises(DataError, match="too large to load"):
        io.read_table(b"a,b\n1,2\n", name="x.csv")


def _cli(*args, env=None):
    e = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "retention_core", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, env=e, timeout=600)


@pytest.fixture(scope="module")
def run_and_log(tmp_path_factory):
    from assets.generator import generate_events, write_events

    d = tmp_path_factory.mktemp("trust")
    log = d / "shop.csv"
    write_events(generate_events(300, seed=4, days=450), log)
    env = {"RETENTION_HOME": str(d / "home")}
    p = _cli("train", log, "--out", d / "run", "--horizon", 60, "--models", "recency,logreg", env=env)
    assert p.returncode == 0, p.stderr
    return d, log, env


def test_score_can_pseudonymise_ids(run_and_log):
    d, log, env = run_and_log
    plain, pseudo = d / "plain.csv", d / "pseudo.csv"
    assert _cli("score", d / "run", log, "--out", plain, env=env).returncode == 0
    p = _cli("score", d / "run", log, "--out", pseudo, "--pseudonymise-key-env", "SHOP_KEY",
             env={**env, "SHOP_KEY": "s3cret"})
    assert p.returncode == 0, p.stderr
    a, b = pd.read_csv(plain), pd.read_csv(pseudo)
    assert len(a) == len(b) and not set(a["user_id"].astype(str)) & set(b["user_id"].astype(str))
    assert b["user_id"].astype(str).str.fullmatch(r"[0-9a-f]{16}").all()
    assert (a["churn_probability"].to_numpy() == b["churn_probability"].to_numpy()).all()
    p = _cli("score", d / "run", log, "--out", pseudo, "--pseudonymise-key-env", "NO_SUCH_VAR", env=env)
    assert p.returncode == 2 and "NO_SUCH_VAR" in p.stderr


SAVER = """
import sys, time
from pathlib import Path
from retention_core import bundle
from retention_core.events import canonical_events
from retention_core.dataset import SnapshotConfig, build_dataset
from retention_core.roles import infer_schema
from retention_core.training import TrainConfig, train_models
from retention_core.dataset import training_cutoffs
from assets.generator import generate_events
raw = generate_events(200, seed=9, days=450)
schema = infer_schema(raw); ev = canonical_events(raw, schema)
cfg = SnapshotConfig(horizon_days=60)
ds = build_dataset(ev, cfg, cutoffs=training_cutoffs(ev, cfg))
res = train_models(ds, TrainConfig(models=["recency", "logreg"]), horizon_days=60)
print("ready", flush=True)
while True:
    bundle.save_run(Path(sys.argv[1]), res, schema=schema, dataset=ds, snapshot=cfg.as_dict(), data_digest="x",
                    train_config=TrainConfig(models=["recency", "logreg"]))
"""


def test_killing_the_process_mid_save_leaves_a_loadable_run(run_and_log, tmp_path):
    from retention_core import bundle

    d, _, env = run_and_log
    target = tmp_path / "run"
    os.environ["RETENTION_HOME"] = env["RETENTION_HOME"]
    try:
        for delay in (0.05, 0.13, 0.31, 0.47):
            proc = subprocess.Popen([sys.executable, "-c", SAVER, str(target)], cwd=ROOT, stdout=subprocess.PIPE,
                                    env={**os.environ, "PYTHONPATH": str(ROOT), **env})
            assert proc.stdout.readline().strip() == b"ready"
            t0 = time.monotonic()
            while not (target / "manifest.json").exists() and time.monotonic() - t0 < 60:
                time.sleep(0.02)  # the first save must have completed once
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            run = bundle.load_run(target)  # the previous complete save is there, verified
            assert run.best in ("recency", "logreg")
    finally:
        os.environ.pop("RETENTION_HOME", None)
