"""Saved runs: round trip, tamper refusal, atomic saves, concurrent saves and safe names."""
from __future__ import annotations

import json
import os
import threading

import numpy as np
import pandas as pd
import pytest

from retention_core import bundle
from retention_core.errors import BundleError, ConfigError
from retention_core.events import canonical_events
from retention_core.dataset import SnapshotConfig, build_dataset
from retention_core.roles import infer_schema
from retention_core.training import TrainConfig, train_models
from retention_core.dataset import training_cutoffs


@pytest.fixture(scope="module")
def trained():
    from assets.generator import generate_events

    raw = generate_events(300, seed=5, days=500)
    schema = infer_schema(raw)
    ev = canonical_events(raw, schema)
    cfg = SnapshotConfig(horizon_days=60)
    ds = build_dataset(ev, cfg, cutoffs=training_cutoffs(ev, cfg))
    result = train_models(ds, TrainConfig(models=["recency", "logreg"]), horizon_days=60)
    return dict(result=result, schema=schema, dataset=ds, snapshot=cfg.as_dict(), data_digest="abc",
                train_config=TrainConfig(models=["recency", "logreg"])), ds


@pytest.fixture(autouse=True)
def _key(monkeypatch, tmp_path):
    monkeypatch.setenv("RETENTION_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("RETENTION_BUNDLE_KEY", raising=False)


def test_round_trip_gives_identical_predictions(trained, tmp_path):
    kw, ds = trained
    path = bundle.save_run(tmp_path / "r1", **kw)
    run = bundle.load_run(path)
    X = ds.frame[run.info["numeric"] + run.info["categorical"]]
    for key in ("recency", "logreg"):
        np.testing.assert_allclose(run.model(key).predict_proba(X), kw["result"].models[key].predict_proba(X))
    assert run.best == kw["result"].best
    assert run.metrics["models"][run.best]["roc_auc"] == pytest.approx(kw["result"].leaderboard.iloc[0]["roc_auc"])
    assert {"python", "pandas", "scikit-learn"} <= set(run.info["versions"])
    assert len(run.validation()) == len(kw["result"].y_val)


@pytest.mark.parametrize("how", ["edit", "delete", "add", "resign"])
def test_tampered_runs_are_refused(trained, tmp_path, how):
    kw, _ = trained
    path = bundle.save_run(tmp_path / "r", **kw)
    model_file = path / "models" / "logreg" / "model.joblib"
    if how == "edit":
        model_file.write_bytes(model_file.read_bytes() + b"\x00")
    elif how == "delete":
        model_file.unlink()
    elif how == "add":
        (path / "models" / "evil.joblib").write_bytes(b"x")
    else:  # a forged manifest that matches the files but is not signed with this installation's key
        man = json.loads((path / "manifest.json").read_text())
        model_file.write_bytes(b"forged")
        import hashlib

        man["files"]["models/logreg/model.joblib"] = hashlib.sha256(b"forged").hexdigest()
        (path / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(BundleError):
        bundle.load_run(path)


def test_run_from_another_installation_is_refused(trained, tmp_path, monkeypatch):
    kw, _ = trained
    path = bundle.save_run(tmp_path / "r", **kw)
    monkeypatch.setenv("RETENTION_BUNDLE_KEY", "someone-else")
    with pytest.raises(BundleError, match="not saved by this installation"):
        bundle.load_run(path)


def test_crash_mid_save_leaves_previous_run(trained, tmp_path, monkeypatch):
    kw, _ = trained
    path = bundle.save_run(tmp_path / "r", **kw)
    before = (path / "manifest.json").read_text()
    real_replace = os.replace
    calls = {"n": 0}

    def crash_on_second(src, dst):
        calls["n"] += 1
        if calls["n"] == 2:  # the old run was moved aside, the new one not yet in place
            raise KeyboardInterrupt("killed")
        return real_replace(src, dst)

    monkeypatch.setattr(bundle.os, "replace", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        bundle.save_run(tmp_path / "r", **kw)
    monkeypatch.setattr(bundle.os, "replace", real_replace)
    run = bundle.load_run(path)  # recovered from the backup name
    assert (path / "manifest.json").read_text() == before
    assert run.best == kw["result"].best
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_concurrent_saves_both_end_intact(trained, tmp_path):
    kw, _ = trained
    errors = []

    def save(name):
        try:
            for _ in range(3):
                bundle.save_run(tmp_path / name, **kw)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=save, args=(n,)) for n in ("same", "same", "other")]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors
    for name in ("same", "other"):
        assert bundle.load_run(tmp_path / name).best == kw["result"].best


@pytest.mark.parametrize("name", ["../escape", "a/b", "..", "", " ", ".hidden", "x" * 65, "a\x00b", "/etc"])
def test_unsafe_run_names_are_refused(tmp_path, name):
    with pytest.raises(ConfigError):
        bundle.run_path(name, tmp_path)


def test_workspace_listing_and_delete(trained, tmp_path):
    kw, _ = trained
    p = bundle.run_path("March run", tmp_path)
    bundle.save_run(p, **kw)
    runs = bundle.list_runs(tmp_path)
    assert runs["run"].tolist() == ["March run"] and runs["best_model"].iloc[0] == kw["result"].best
    bundle.delete_run("March run", tmp_path)
    assert bundle.list_runs(tmp_path).empty
    with pytest.raises(BundleError):
        bundle.delete_run("March run", tmp_path)


def test_the_workspace_is_resolved_one_way(tmp_path, monkeypatch):
    """A given folder, else RETENTION_WORKSPACE, else ./workspace; reading (``create=False``) makes no folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RETENTION_WORKSPACE", raising=False)
    assert bundle.workspace(create=False) == tmp_path / "workspace" and not (tmp_path / "workspace").exists()
    monkeypatch.setenv("RETENTION_WORKSPACE", str(tmp_path / "env"))
    assert bundle.workspace(create=False) == tmp_path / "env" and not (tmp_path / "env").exists()
    assert bundle.workspace(tmp_path / "given") == tmp_path / "given" and (tmp_path / "given" / "runs").is_dir()
    assert bundle.run_path("r").parent == tmp_path / "env" / "runs"
    from retention_core.monitor import history_path

    assert history_path(create=False) == tmp_path / "env" / "history.duckdb"


def test_one_rule_reads_the_workspace_folder():
    """Only ``bundle.workspace`` reads RETENTION_WORKSPACE: a second resolver creeping back fails here."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    readers = [str(p.relative_to(root)) for d in ("retention_core", "ui", "bench") for p in (root / d).rglob("*.py")
               if 'environ.get("RETENTION_WORKSPACE"' in p.read_text() or 'getenv("RETENTION_WORKSPACE"' in p.read_text()
               or 'environ["RETENTION_WORKSPACE"]' in p.read_text()]
    assert readers == ["retention_core/bundle.py"]


def test_a_run_version_has_one_identity(trained, tmp_path):
    """``bundle.run_id``: the same for a folder and the run loaded from it, stable across loads, new when the run is
    saved again under the same name; a loaded run keeps the version it loaded."""
    kw, _ = trained
    path = bundle.save_run(tmp_path / "r", **kw)
    first = bundle.load_run(path)
    rid = bundle.run_id(path)
    assert len(rid) == 16 and bundle.run_id(first) == rid == bundle.load_run(path).run_id
    bundle.save_run(tmp_path / "r", **kw)
    assert bundle.run_id(path) != rid and bundle.run_id(bundle.load_run(path)) == bundle.run_id(path)
    assert bundle.run_id(first) == rid  # the version it loaded, not the folder's newer one
    assert bundle.run_id(tmp_path / "nothing") == "missing"


def test_one_function_names_a_run_version():
    """No module but ``bundle`` reads a run's manifest to name its version (the app's caches, the history, the
    service and the command line all call ``bundle.run_id``)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    readers = [str(p.relative_to(root)) for d in ("retention_core", "ui", "bench") for p in (root / d).rglob("*.py")
               if '"manifest.json"' in p.read_text() and p.name != "bundle.py"]
    assert not readers


def test_saved_model_reproduces_the_validation_predictions_without_refit(trained, tmp_path):
    """With --no-refit, what the Evaluate page measured (and the threshold chosen on it) is what the saved model
    scores."""
    kw, ds = trained
    cfg = TrainConfig(models=["recency", "logreg"], refit=False)
    result = train_models(ds, cfg, horizon_days=60)
    run = bundle.load_run(bundle.save_run(tmp_path / "r", **{**kw, "result": result, "train_config": cfg}))
    assert run.info["refit"] == {}
    val = run.validation()
    X = val[run.info["numeric"] + run.info["categorical"]]
    for key in ("recency", "logreg"):
        np.testing.assert_allclose(run.model(key).predict_proba(X)[:, 1], val[f"p:{key}"].to_numpy(), atol=1e-9)


def test_saved_models_are_refitted_on_the_latest_labelled_snapshots(trained, tmp_path):
    """By default the saved models learned from the latest labelled snapshots, the validation one included; the run
    says so and keeps the validation figures measured before the refit."""
    kw, ds = trained
    run = bundle.load_run(bundle.save_run(tmp_path / "r", **kw))
    lab = ds.labelled().frame
    dates = sorted(pd.to_datetime(lab["snapshot_date"]).unique())[-3:]
    refit = run.info["refit"]
    assert refit["rows"] == int(pd.to_datetime(lab["snapshot_date"]).isin(dates).sum())
    assert refit["to"] == str(pd.Timestamp(dates[-1]).date()) and refit["snapshots"] == len(dates)
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert metrics["refit"] == refit
    assert metrics["models"]["logreg"]["roc_auc"] == pytest.approx(
        float(kw["result"].leaderboard.set_index("model").loc["logreg", "roc_auc"]))
    val = run.validation()
    X = val[run.info["numeric"] + run.info["categorical"]]
    assert not np.allclose(run.model("logreg").predict_proba(X)[:, 1], val["p:logreg"].to_numpy(), atol=1e-6)


class _RunsACommand:
    """A pickle that runs a shell command when it is loaded (what a swapped model file could hold)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _evil_pickle(marker) -> bytes:
    import pickle

    return pickle.dumps(_RunsACommand(marker))


def test_a_model_file_swapped_after_loading_the_run_is_refused_and_never_runs(trained, tmp_path):
    kw, _ = trained
    path = bundle.save_run(tmp_path / "r", **kw)
    run = bundle.load_run(path)  # the whole run is checked here
    marker = tmp_path / "command-ran"
    (path / "models" / "logreg" / "model.joblib").write_bytes(_evil_pickle(marker))
    with pytest.raises(BundleError, match=r"models/logreg/model.joblib .* was changed"):
        run.model("logreg")
    assert not marker.exists(), "the swapped pickle was executed"
    assert run.model("recency") is not None  # the untouched model still loads


def test_the_bytes_checked_are_the_bytes_unpickled(trained, tmp_path, monkeypatch):
    """A file swapped between its check and its loading (a race) is not read again: the checked bytes are loaded."""
    kw, ds = trained
    path = bundle.save_run(tmp_path / "r", **kw)
    run = bundle.load_run(path)
    marker = tmp_path / "command-ran"
    checked = bundle._read_checked

    def check_then_swap(target, rel, digest):
        data = checked(target, rel, digest)
        if rel.endswith("model.joblib"):
            (target / rel).write_bytes(_evil_pickle(marker))
        return data

    monkeypatch.setattr(bundle, "_read_checked", check_then_swap)
    model = run.model("logreg")
    assert not marker.exists(), "the file was read again after its check"
    X = ds.frame[run.info["numeric"] + run.info["categorical"]]
    np.testing.assert_allclose(model.predict_proba(X), kw["result"].models["logreg"].predict_proba(X))


def test_a_file_added_to_a_model_folder_after_loading_is_refused(trained, tmp_path):
    kw, _ = trained
    path = bundle.save_run(tmp_path / "r", **kw)
    run = bundle.load_run(path)
    (path / "models" / "logreg" / "extra.joblib").write_bytes(b"x")
    with pytest.raises(BundleError, match="not saved with it"):
        run.model("logreg")


def test_tables_swapped_after_loading_are_refused(trained, tmp_path):
    kw, _ = trained
    path = bundle.save_run(tmp_path / "r", **kw)
    run = bundle.load_run(path)
    pd.DataFrame({"x": [1]}).to_parquet(path / "validation.parquet")
    with pytest.raises(BundleError, match="validation.parquet"):
        run.validation()


def test_a_model_this_version_cannot_read_asks_for_a_new_training():
    """A model pickled by a version of the product whose classes this one no longer has is refused with a message
    that says what to do, not an AttributeError from deep inside the unpickler."""
    import pickle

    text = pickle.dumps(bundle.BundleError("x"), protocol=0).replace(b"BundleError", b"NoSuchModelClass")
    with pytest.raises(bundle.BundleError, match="cannot read .*train the run again"):
        bundle._load_model({"format": "joblib"}, {"model.joblib": text})
