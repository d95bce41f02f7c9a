"""The monitor command and scoring records on the command line: score records unless --no-record, monitor prints the
report (JSON of DESIGN.md, or text; the features that grow with age apart, as expected ageing), lists and deletes
recorded scorings (--list, --delete ID), and refuses bad input with exit 2 and one error line, losing nothing
recorded."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

ROOT = Path(__file__).resolve().parents[2]
CUT = "2023-12-01"


def cli(*args, ws: Path, home: Path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RETENTION_WORKSPACE": str(ws), "RETENTION_HOME": str(home)}
    env.pop("RETENTION_BUNDLE_KEY", None)
    p = subprocess.run([sys.executable, "-m", "retention_core", *map(str, args)], capture_output=True, text=True,
                       cwd=ROOT, env=env, timeout=600)
    return p.returncode, p.stdout, p.stderr


def one_error_line(rc: int, err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """A generated shop log (full and cut at CUT) and a run trained on the cut log with a 60-day horizon."""
    from assets.generator import generate_events, write_events

    d = tmp_path_factory.mktemp("monitor-cli")
    raw = generate_events(400, seed=11, days=500)
    full = write_events(raw, d / "full.csv")
    early = write_events(raw[raw["event_time"] <= pd.Timestamp(CUT)], d / "early.csv")
    home = d / "home"
    rc, out, err = cli("train", early, "--out", d / "run", "--models", "logreg", "--horizon", 60, ws=d / "ws0",
                       home=home)
    assert rc == 0, err
    return {"dir": d, "full": full, "early": early, "run": d / "run", "home": home, "raw": raw}


def test_score_records_and_monitor_reports_json(shop, tmp_path):
    ws, kw = tmp_path / "ws", {"ws": tmp_path / "ws", "home": shop["home"]}
    rc, out, err = cli("score", shop["run"], shop["early"], "--out", tmp_path / "s.csv", "--as-of", CUT, "--top", 50,
                       **kw)
    assert rc == 0, err
    assert "recorded scoring" in out and f"as of {CUT}" in out and (ws / "history.duckdb").is_file()
    rc, out, err = cli("monitor", shop["run"], shop["full"], "--json", "--out", tmp_path / "report.json", **kw)
    assert rc == 0, err
    j = json.loads(out)
    assert json.loads((tmp_path / "report.json").read_text()) == j
    assert j["run"] == "run" and len(j["scorings"]) == 1
    s = j["scorings"][0]
    assert s["as_of"] == CUT and s["model"] == "logreg" and s["status"] == "observed"
    assert s["horizon_days"] == 60 and s["observable_from"] == "2024-01-30"
    assert s["users"] == s["observed"] > 100  # every user scored is recorded, not only the 50 written
    assert set(s["realised"]) >= {"churn_rate", "predicted_rate", "roc_auc", "pr_auc", "brier", "recall_at_10pct"}
    assert j["drift"]["features"] and {"feature", "psi", "band"} <= set(j["drift"]["features"][0])
    assert isinstance(j["drift"]["score_psi"], float) and j["verdict"].split(":")[0] in ("ok", "watch", "retrain")

    # the realised ROC-AUC equals one computed from the raw log: purchases (quantity and price above 0) in
    # (CUT, CUT + 60 days], the users scored with the probabilities of a --no-record rescoring of everyone
    rc, _, err = cli("score", shop["run"], shop["early"], "--out", tmp_path / "all.csv", "--as-of", CUT,
                     "--no-record", **kw)
    assert rc == 0, err
    scores = pd.read_csv(tmp_path / "all.csv", dtype={"user_id": str})
    raw, T = shop["raw"], pd.Timestamp(CUT)
    buy = (raw["event_type"] == "purchase") & (raw["quantity"] > 0) & (raw["unit_price"] > 0)
    came_back = set(raw.loc[buy & (raw["event_time"] > T) & (raw["event_time"] <= T + pd.Timedelta(days=60)),
                            "customer_id"].astype(str))
    y = (~scores["user_id"].isin(came_back)).astype(int)
    assert s["realised"]["roc_auc"] == pytest.approx(roc_auc_score(y, scores["churn_probability"]), abs=1e-12)
    assert s["realised"]["churn_rate"] == pytest.approx(y.mean(), abs=1e-12)
    assert len(json.loads(cli("monitor", shop["run"], shop["full"], "--json", **kw)[1])["scorings"]) == 1

    rc, out, err = cli("monitor", shop["run"], shop["full"], **kw)  # the text report
    assert rc == 0, err
    assert f"{CUT} logreg" in out and "ROC-AUC" in out and out.strip().splitlines()[-1].split(":")[0] in (
        "ok", "watch", "retrain")
    # the features that grow with the customers' age: apart, as expected ageing, never in the verdict's reasons
    aged = j["drift"]["expected_ageing"]
    assert "tenure_days" in aged and all(r["expected_ageing"] == (r["feature"] in aged) for r in j["drift"]["features"])
    labels = [r["label"] for r in j["drift"]["features"] if r["expected_ageing"]]
    assert not any(label in reason for label in labels for reason in j["verdict_reasons"])
    assert "expected ageing (these grow as customers' histories get longer" in out


def test_list_and_delete_recorded_scorings(shop, tmp_path):
    kw = {"ws": tmp_path / "ws", "home": shop["home"]}
    for day in (CUT, "2023-10-01"):
        assert cli("score", shop["run"], shop["early"], "--out", tmp_path / "s.csv", "--as-of", day, **kw)[0] == 0
    rc, out, err = cli("monitor", shop["run"], "--list", **kw)
    assert rc == 0, err
    rows = json.loads(cli("monitor", shop["run"], "--list", "--json", **kw)[1])
    assert [r["as_of"] for r in rows] == ["2023-10-01", CUT] and all(r["source"] == "cli" for r in rows)
    assert "run run: 2 recorded scoring(s)" in out and all(r["scoring_id"] in out for r in rows)
    assert "--delete ID" in out
    tried = rows[0]["scoring_id"]
    rc, out, err = cli("monitor", shop["run"], "--delete", tried, **kw)
    assert rc == 0, err
    assert out.startswith(f"deleted scoring {tried} (as of 2023-10-01, logreg, ")
    left = json.loads(cli("monitor", shop["run"], "--list", "--json", **kw)[1])
    assert [r["scoring_id"] for r in left] == [rows[1]["scoring_id"]]
    rc, out, err = cli("monitor", shop["run"], shop["full"], "--json", **kw)
    assert rc == 0 and [s["as_of"] for s in json.loads(out)["scorings"]] == [CUT]
    # an unknown id (or one deleted already): exit 2, one error line, nothing deleted
    line = one_error_line(*cli("monitor", shop["run"], "--delete", tried, **kw)[::2])
    assert f"No recorded scoring of run 'run' has the id '{tried}'" in line and "--list" in line
    one_error_line(*cli("monitor", shop["run"], "--delete", "no-such-id", **kw)[::2])
    assert len(json.loads(cli("monitor", shop["run"], "--list", "--json", **kw)[1])) == 1
    # usage: --list and --delete take no DATA and exclude each other; monitoring needs DATA
    assert "takes no DATA" in one_error_line(*cli("monitor", shop["run"], shop["full"], "--delete", "x", **kw)[::2])
    assert "not allowed with" in one_error_line(*cli("monitor", shop["run"], "--list", "--delete", "x", **kw)[::2])
    assert "monitor needs DATA" in one_error_line(*cli("monitor", shop["run"], **kw)[::2])


def test_no_record_keeps_the_history_empty_and_monitor_says_so(shop, tmp_path):
    kw = {"ws": tmp_path / "ws", "home": shop["home"]}
    rc, out, err = cli("score", shop["run"], shop["early"], "--out", tmp_path / "s.csv", "--no-record", **kw)
    assert rc == 0, err
    assert "recorded" not in out
    assert not (tmp_path / "ws" / "history.duckdb").exists()
    rc, out, err = cli("monitor", shop["run"], shop["full"], "--json", **kw)
    line = one_error_line(rc, err)
    assert "No scoring of run 'run' is recorded" in line and "score" in line and out == ""


def test_bad_input_exits_2_and_loses_nothing_recorded(shop, tmp_path):
    ws = tmp_path / "ws"
    kw = {"ws": ws, "home": shop["home"]}
    assert cli("score", shop["run"], shop["early"], "--out", tmp_path / "s.csv", "--as-of", CUT, **kw)[0] == 0
    history = (ws / "history.duckdb").read_bytes()

    no_qty = tmp_path / "no_quantity.csv"
    pd.read_csv(shop["full"]).drop(columns=["quantity"]).to_csv(no_qty, index=False)
    line = one_error_line(*cli("monitor", shop["run"], no_qty, **kw)[::2])
    assert "lacks the run's column(s) 'quantity'" in line

    line = one_error_line(*cli("monitor", shop["run"], shop["early"], "--json", **kw)[::2])
    assert f"as of {CUT}, 60-day horizon) is observed from 2024-01-30" in line

    assert (ws / "history.duckdb").read_bytes() == history  # a refused monitor changes nothing
    rc, out, err = cli("monitor", shop["run"], shop["full"], "--json", **kw)
    assert rc == 0 and len(json.loads(out)["scorings"]) == 1

    broken = tmp_path / "broken"
    broken.mkdir()
    junk = b"this is not a database\n" * 64
    (broken / "history.duckdb").write_bytes(junk)
    bkw = {"ws": broken, "home": shop["home"]}
    line = one_error_line(*cli("monitor", shop["run"], shop["full"], **bkw)[::2])
    assert "scoring history history.duckdb in the workspace cannot be read" in line
    rc, out, err = cli("score", shop["run"], shop["early"], "--out", tmp_path / "kept.csv", **bkw)
    line = one_error_line(rc, err)
    assert "the scores were written to" in line and "--no-record" in line
    assert (tmp_path / "kept.csv").is_file() and (broken / "history.duckdb").read_bytes() == junk


def test_monitor_usage_errors(shop, tmp_path):
    kw = {"ws": tmp_path / "ws", "home": shop["home"]}
    one_error_line(*cli("monitor", shop["run"], **kw)[::2])
    assert "no saved run" in one_error_line(*cli("monitor", tmp_path / "nope", "--list", **kw)[::2])
    line = one_error_line(*cli("monitor", tmp_path / "nope", shop["full"], **kw)[::2])
    assert "no saved run" in line
