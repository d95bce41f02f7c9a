"""The command-line contract of DESIGN.md: inspect, build-dataset, train, score; exit codes and error lines."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"


def cli(*args, cwd=ROOT):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, "-m", "retention_core", *map(str, args)], capture_output=True, text=True,
                       cwd=cwd, env=env, timeout=600)
    return p.returncode, p.stdout, p.stderr


@pytest.fixture(scope="module")
def small_log(tmp_path_factory) -> Path:
    from assets.generator import generate_events, write_events

    path = tmp_path_factory.mktemp("cli") / "shop.csv"
    write_events(generate_events(400, seed=11, days=500), path)
    return path


def test_inspect_json_on_the_sample():
    from assets.generator import sample_path

    rc, out, err = cli("inspect", sample_path(), "--json")
    assert rc == 0, err
    j = json.loads(out)
    assert j["kind"] == "events" and j["rows"] > 1000
    assert j["roles"]["user_id"] == "customer_id" and j["roles"]["timestamp"] == "event_time"
    assert {"kind", "rows", "roles", "columns", "issues"} <= set(j)
    assert all(i["severity"] in ("error", "warning", "info") for i in j["issues"])


def test_inspect_text_output(small_log):
    rc, out, err = cli("inspect", small_log)
    assert rc == 0, err
    assert "event log" in out and "customer_id" in out


@pytest.mark.parametrize("name,data,needle", [
    ("empty.csv", b"", "empty"),
    ("header.csv", b"user,date,amount\n", "no rows"),
    ("binary.csv", bytes(range(256)) * 20, "binary"),
    ("page.csv", b"<!DOCTYPE html><html><body>hi</body></html>", "web page"),
    ("dups.csv", b"a,a,b\n1,2,3\n4,5,6\n", "duplicate column"),
])
def test_bad_input_exits_2_with_one_error_line(tmp_path, name, data, needle):
    f = tmp_path / name
    f.write_bytes(data)
    rc, out, err = cli("inspect", f)
    assert rc == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0].lower()
    assert "Traceback" not in err


def test_usage_errors_exit_2(tmp_path):
    rc, out, err = cli("inspect")
    assert rc == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1
    rc, out, err = cli("inspect", tmp_path / "missing.csv")
    assert rc == 2 and "not found" in err
    rc, out, err = cli("frobnicate")
    assert rc == 2 and err.startswith("error: ")


def test_build_dataset_writes_labelled_snapshots(small_log, tmp_path):
    out = tmp_path / "ds.csv"
    rc, so, err = cli("build-dataset", small_log, "--out", out, "--horizon", 60, "--snapshots", 3, "--step", 30)
    assert rc == 0, err
    d = pd.read_csv(out)
    assert list(d.columns[:3]) == ["user_id", "snapshot_date", "churned"]
    assert d["snapshot_date"].nunique() == 3 and set(d["churned"].unique()) <= {0, 1}
    rc, so, err = cli("build-dataset", small_log, "--out", tmp_path / "x.csv", "--cutoff", "1990-01-01")
    assert rc == 2 and err.startswith("error: ")
    rc, so, err = cli("build-dataset", small_log, "--out", tmp_path / "x.csv", "--user-col", "nope")
    assert rc == 2 and "'nope'" in err


def test_train_and_score_contract(small_log, tmp_path):
    run = tmp_path / "run"
    rc, out, err = cli("train", small_log, "--out", run, "--horizon", 60, "--models", "recency,logreg")
    assert rc == 0, err
    m = json.loads((run / "metrics.json").read_text())
    assert m["best_model"] in ("recency", "logreg") and "validation" in m
    for key in ("recency", "logreg"):
        assert {"roc_auc", "pr_auc", "accuracy", "precision", "recall", "f1", "threshold"} <= set(m["models"][key])
    scores = tmp_path / "scores.csv"
    rc, out, err = cli("score", run, small_log, "--out", scores, "--top", 50)
    assert rc == 0, err
    s = pd.read_csv(scores)
    assert list(s.columns[:4]) == ["user_id", "churn_probability", "risk_decile", "rank"]
    assert len(s) == 50 and s["rank"].tolist() == list(range(1, 51))
    assert s["churn_probability"].between(0, 1).all() and s["churn_probability"].is_monotonic_decreasing
    rc, out, err = cli("score", run, small_log, "--out", scores, "--threshold", 1.5)
    assert rc == 2 and "between 0 and 1" in err and err.startswith("error: --threshold: ")
    rc, out, err = cli("score", run, small_log, "--out", scores, "--top", 0)
    assert rc == 2 and err.startswith("error: --top: ")
    rc, out, err = cli("train", small_log, "--out", run, "--models", "nosuchmodel")
    assert rc == 2 and "nosuchmodel" in err
    assert json.loads((run / "metrics.json").read_text()) == m  # the failed call left the saved run alone


def test_score_with_any_model_of_the_run_and_no_refit(small_log, tmp_path):
    """`score --model KEY` scores with that model (its own threshold in the export); `train --no-refit` saves the
    models exactly as validated, the default records what they were refitted on."""
    from retention_core.bundle import load_run
    from retention_core.io import read_table
    from retention_core.scoring import score

    run = tmp_path / "run"
    rc, out, err = cli("train", small_log, "--out", run, "--horizon", 60, "--models", "recency,logreg")
    assert rc == 0, err
    assert "refitted on" in out
    saved = load_run(run)
    assert saved.info["refit"]["rows"] > 0 and saved.info["train_config"]["refit"] is True
    other = "logreg" if saved.best == "recency" else "recency"
    scores = tmp_path / "scores.csv"
    rc, out, err = cli("score", run, small_log, "--out", scores, "--model", other)
    assert rc == 0, err
    s = pd.read_csv(scores, dtype={"user_id": str})
    assert set(s["model"]) == {other}
    assert s["threshold"].iloc[0] == pytest.approx(saved.info["thresholds"][other])
    direct, _, _ = score(saved, read_table(small_log), model=other)
    merged = s.merge(direct, on="user_id", suffixes=("", "_direct"))
    assert len(merged) == len(s)
    # the scores file keeps exact probabilities (the figures the service answers) ...
    np.testing.assert_allclose(merged["churn_probability"], merged["churn_probability_direct"], atol=1e-12)
    assert (s["churn_probability"] != s["churn_probability"].round(4)).any()
    # ... and --readable rounds them to 4 decimals after ranking: the ranks are those of the exact figures
    rc, out, err = cli("score", run, small_log, "--out", scores, "--model", other, "--readable", "--no-record")
    assert rc == 0, err
    r = pd.read_csv(scores, dtype={"user_id": str}).merge(direct, on="user_id", suffixes=("", "_direct"))
    np.testing.assert_allclose(r["churn_probability"], r["churn_probability_direct"], atol=5e-5 + 1e-12)
    assert (r["churn_probability"] == r["churn_probability"].round(4)).all()
    assert (r["rank"] == r["rank_direct"]).all()
    assert list(r.columns[:4]) == ["user_id", "churn_probability", "risk_decile", "rank"]
    rc, out, err = cli("score", run, small_log, "--out", scores, "--model", "gbm")
    assert rc == 2 and "no model 'gbm'" in err and "logreg" in err
    rc, out, err = cli("train", small_log, "--out", tmp_path / "plain", "--horizon", 60, "--models", "logreg",
                       "--no-refit")
    assert rc == 0, err
    assert load_run(tmp_path / "plain").info["refit"] == {} and "not refitted" in out


def test_the_command_line_words_library_errors_in_its_options(tmp_path):
    """Library errors carry the field or the roles at fault; the command line names its own options for them."""
    f = tmp_path / "no_time.csv"
    f.write_text("customer,spend\n" + "\n".join(f"c{i},{i}" for i in range(30)) + "\n")
    rc, out, err = cli("build-dataset", f, "--out", tmp_path / "x.csv", "--kind", "events")
    assert rc == 2 and err.count("\n") == 1 and "--time-col COLUMN" in err and "Traceback" not in err
    rc, out, err = cli("score", tmp_path / "nowhere", f, "--out", tmp_path / "s.csv", "--reasons", "-1")
    assert rc == 2 and err.startswith("error: ")


def test_score_refuses_a_tampered_run(small_log, tmp_path):
    run = tmp_path / "run"
    rc, out, err = cli("train", small_log, "--out", run, "--horizon", 60, "--models", "recency")
    assert rc == 0, err
    f = run / "run.json"
    f.write_text(f.read_text().replace('"recency"', '"recency" ', 1))
    rc, out, err = cli("score", run, small_log, "--out", tmp_path / "s.csv")
    assert rc == 2 and "changed" in err and "Traceback" not in err


@pytest.mark.skipif(not DATA.exists(), reason="real data folder ../shared/data is absent")
def test_inspect_real_user_table():
    rc, out, err = cli("inspect", DATA / "telco_customer_churn.csv", "--json")
    assert rc == 0, err
    j = json.loads(out)
    assert j["kind"] == "users" and j["roles"]["label"] == "Churn" and j["label_positive"] == "Yes"
