"""Monitoring: PSI and realised metrics against hand computations, the scoring history (schema, two writers at once,
a writer killed mid-write, a deleted run), realised outcomes equal to an independent computation from the raw log
(the sample and Online Retail II), the report's JSON shape and its figures."""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import real_path
from sklearn.metrics import average_precision_score, roc_auc_score

from retention_core import bundle, monitor
from retention_core.errors import DataError
from retention_core.monitor import drift, plots, store
from retention_core.drift_reference import feature_reference, numeric_edges, training_reference
from retention_core.monitor.drift import EPS, band, compare, psi, psi_from_shares
from retention_core.monitor.realised import calibration_by_decile, realised_metrics

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _key(monkeypatch, tmp_path_factory):
    home = tmp_path_factory.getbasetemp() / "home"
    monkeypatch.setenv("RETENTION_HOME", str(home))
    monkeypatch.delenv("RETENTION_BUNDLE_KEY", raising=False)


# ----------------------------------------------------------------------------------------------- PSI by hand
def test_psi_of_shares_by_hand():
    # (0.25 - 0.5) ln(0.25 / 0.5) + (0.75 - 0.5) ln(0.75 / 0.5)
    assert psi_from_shares([0.5, 0.5], [0.25, 0.75]) == pytest.approx(0.25 * math.log(2) + 0.25 * math.log(1.5))
    assert psi_from_shares([0.2, 0.3, 0.5], [0.2, 0.3, 0.5]) == 0
    # an empty bin counts as EPS = 0.0001: (0.9 - 1) ln 0.9 + (0.1 - 0.0001) ln(0.1 / 0.0001)
    assert EPS == 1e-4
    assert psi_from_shares([1.0, 0.0], [0.9, 0.1]) == pytest.approx(-0.1 * math.log(0.9) + 0.0999 * math.log(1000))
    assert psi_from_shares([0.0, 1.0], [0.0, 1.0]) == 0  # empty on both sides: nothing


def test_bands():
    assert [band(v) for v in (0.0, 0.0999, 0.1, 0.25, 0.2501, 3.0)] == ["stable", "stable", "moderate", "moderate",
                                                                         "act", "act"]
    assert band(float("nan")) is None and band(None) is None


def test_numeric_bins_come_from_reference_deciles_and_ties_make_one_bin():
    ref = feature_reference(np.arange(1, 11, dtype=float))
    # deciles (lower) of 1..10 are 1..9, plus a cut just below the minimum
    assert ref["edges"][1:] == [float(v) for v in range(1, 10)] and ref["edges"][0] < 1
    assert ref["shares"] == pytest.approx([0] + [0.1] * 10) and ref["missing"] == 0 and ref["n"] == 10
    ties = feature_reference(np.array([0, 0, 0, 0, 0, 0, 1, 2, 3, 4], dtype=float))
    assert ties["edges"][1:] == [0, 1, 2, 3]  # six deciles fall on 0: one bin
    assert ties["shares"] == pytest.approx([0, 0.6, 0.1, 0.1, 0.1, 0.1])


def test_psi_numeric_by_hand():
    ref = np.arange(1, 11, dtype=float)
    cur = np.array([1, 1, 1, 1, 1, 2, 3, 4, 5, 11], dtype=float)
    # bins: {1} 0.1 -> 0.5, {2}..{5} unchanged, {6}..{9} 0.1 -> empty (EPS), above 9: 0.1 -> 0.1
    want = 0.4 * math.log(5) + 4 * (EPS - 0.1) * math.log(EPS / 0.1)
    assert psi(ref, cur) == pytest.approx(want)
    assert psi(ref, ref) == 0


def test_psi_missing_values_are_a_bin_of_their_own():
    ref = [1.0, 2.0, None, None]
    cur = [None, None, None, 5.0]
    # bins (below 1, at 1, above 1, missing): reference 0, .25, .25, .5; current 0, 0, .25, .75
    want = (EPS - 0.25) * math.log(EPS / 0.25) + 0.25 * math.log(0.75 / 0.5)
    r = compare(feature_reference(pd.Series(ref, dtype=float)), pd.Series(cur, dtype=float))
    assert r["psi"] == pytest.approx(want)
    assert r["missing_reference"] == 0.5 and r["missing_current"] == 0.75
    assert r["n_reference"] == 4 and r["n_current"] == 4


def test_psi_constant_feature_below_at_and_above():
    assert numeric_edges([5.0] * 10)[1:] == [5.0]
    want = 2 * (0.25 - EPS) * math.log(0.25 / EPS) + (0.5 - 1) * math.log(0.5)
    assert psi([5.0] * 10, [4.0, 5.0, 5.0, 6.0]) == pytest.approx(want)


def test_psi_categorical_by_category_share():
    ref = pd.Series(["a"] * 5 + ["b"] * 3 + [None] * 2, dtype="string")
    cur = pd.Series(["a", "a", "c", "c", None], dtype="string")
    r = feature_reference(ref)
    assert r["kind"] == "categorical" and r["categories"] == ["a", "b"]
    assert r["shares"] == pytest.approx([0.5, 0.3]) and r["other"] == 0 and r["missing"] == pytest.approx(0.2)
    # a .5 -> .4; b .3 -> empty; a new category c lands in (other): empty -> .4; missing .2 -> .2
    want = (0.4 - 0.5) * math.log(0.4 / 0.5) + (EPS - 0.3) * math.log(EPS / 0.3) + (0.4 - EPS) * math.log(0.4 / EPS)
    assert psi(ref, cur) == pytest.approx(want)


def test_training_reference_is_compact_json_and_drift_table_sorts():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x": rng.normal(size=500), "y": rng.normal(size=500),
                      "c": pd.Series(rng.choice(["u", "v"], 500), dtype="string")})
    ref = training_reference(X, ["x", "y"], ["c"], {"m": rng.random(500)})
    assert json.loads(json.dumps(ref)) == ref and ref["rows"] == 500
    cur = X.assign(x=X["x"] + 2)
    t = drift.drift_table(ref, cur)
    assert t["feature"].tolist()[0] == "x" and t.loc[0, "band"] == "act"
    assert set(t.loc[t["feature"] != "x", "band"]) == {"stable"}
    assert list(t.columns) == drift.DRIFT_COLUMNS


def test_runs_keep_a_training_reference_and_older_runs_fall_back_to_validation_rows(tmp_path):
    from assets.generator import generate_events
    from retention_core.dataset import SnapshotConfig, build_dataset, training_cutoffs
    from retention_core.events import canonical_events
    from retention_core.monitor.reference import run_reference
    from retention_core.roles import infer_schema
    from retention_core.training import TrainConfig, train_models

    raw = generate_events(300, seed=5, days=500)
    schema = infer_schema(raw)
    ev = canonical_events(raw, schema)
    cfg = SnapshotConfig(horizon_days=60)
    ds = build_dataset(ev, cfg, cutoffs=training_cutoffs(ev, cfg))
    result = train_models(ds, TrainConfig(models=["recency", "logreg"]), horizon_days=60)
    ref = result.reference
    assert ref["source"] == "training rows" and set(ref["scores"]) == {"recency", "logreg"}
    assert set(ref["features"]) == set(result.numeric + result.categorical)
    assert ref["rows"] == result.refit["rows"]  # the rows the saved (refitted) models learned from
    kw = dict(schema=schema, dataset=ds, snapshot=cfg.as_dict(), data_digest="", train_config=TrainConfig())
    new = bundle.load_run(bundle.save_run(tmp_path / "new", result, **kw))  # reference.json is in the manifest
    assert run_reference(new) == ref
    result.reference = {}  # a run saved before monitoring existed
    old = bundle.load_run(bundle.save_run(tmp_path / "old", result, **kw))
    assert not (old.path / "reference.json").exists()
    fallback = run_reference(old)
    assert fallback["source"].startswith("validation rows") and fallback["rows"] == len(old.validation())
    assert set(fallback["scores"]) == {"recency", "logreg"} and set(fallback["features"]) == set(ref["features"])


# ----------------------------------------------------------------------------------------------- metrics by hand
def test_realised_metrics_by_hand():
    y = [1, 0, 1, 0, 0, 1, 0, 0, 0, 0]
    p = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05]
    m = realised_metrics(y, p)
    assert m["users"] == 10 and m["churners"] == 3
    assert m["churn_rate"] == pytest.approx(0.3) and m["predicted_rate"] == pytest.approx(0.455)
    assert m["brier"] == pytest.approx(1.8525 / 10)
    assert m["roc_auc"] == pytest.approx(17 / 21)  # 7 + 6 + 4 of 3 x 7 pairs ranked right
    assert m["pr_auc"] == pytest.approx((1 + 2 / 3 + 3 / 6) / 3)  # precision at each churner found
    assert m["recall_at_10pct"] == pytest.approx(1 / 3) and m["precision_at_10pct"] == 1.0  # ceil(10%) = 1 user
    one = realised_metrics([1, 1], [0.2, 0.9])
    assert one["roc_auc"] is None and one["recall_at_10pct"] is None and one["churn_rate"] == 1.0


def test_calibration_by_decile_by_hand():
    c = calibration_by_decile([1, 0, 1, 1, 0, 0], [0.9, 0.7, 0.6, 0.5, 0.2, 0.1], [1, 1, 2, 2, 3, 3])
    assert c["risk_decile"].tolist() == [1, 2, 3]
    assert c["users"].tolist() == [2, 2, 2]
    assert c["predicted"].tolist() == pytest.approx([0.8, 0.55, 0.15])
    assert c["realised"].tolist() == pytest.approx([0.5, 1.0, 0.0])


def test_verdict_words_a_fall_in_recall_and_the_drifted_features():
    rows = pd.DataFrame([{"as_of": "2024-01-01", "recorded_at": 1, "status": "observed", "observed": 1000,
                          "churners": 400, "recall_at_10pct": 0.28, "validation_recall_at_10pct": 0.41,
                          "roc_auc": 0.74, "validation_roc_auc": 0.75, "churn_rate": 0.4, "predicted_rate": 0.38}])
    d = pd.DataFrame({"feature": ["a", "b", "c", "d"], "band": ["act", "act", "act", "stable"]})
    v = monitor.verdict(rows, d, {"psi": 0.05, "band": "stable"})
    assert v.level == "retrain"
    assert v.text.startswith("retrain: recall in the top 10% fell from 0.41 to 0.28; 3 features drifted")
    ok = monitor.verdict(rows.assign(recall_at_10pct=0.40), d.assign(band="stable"), None)
    assert ok.level == "ok" and "no feature drifted" in ok.text
    few = monitor.verdict(rows.assign(observed=50, churners=5), d.assign(band="stable"), None)
    assert few.level == "watch" and "too few" in few.text


# ----------------------------------------------------------------------------------------------- the sample, end to end
@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    os.environ["RETENTION_HOME"] = str(tmp_path_factory.getbasetemp() / "home")
    from assets.generator import sample_path
    from retention_core.io import read_table

    ws = tmp_path_factory.mktemp("ws")
    events = read_table(sample_path())
    report = monitor.demo_on_sample(ws, events=events)
    return ws, events, report


def _independent_labels(events: pd.DataFrame, as_of: str, horizon: int = 90) -> pd.Series:
    """churned per user from the raw sample: no purchase (event type purchase, quantity and price above 0) in
    (as_of, as_of + horizon]."""
    ts = pd.to_datetime(events["event_time"])
    buy = (events["event_type"] == "purchase") & (events["quantity"] > 0) & (events["unit_price"] > 0)
    T = pd.Timestamp(as_of)
    back = set(events.loc[buy & (ts > T) & (ts <= T + pd.Timedelta(days=horizon)), "customer_id"].astype(str))
    return back


def test_demo_fills_every_part_of_the_report(demo):
    ws, _, report = demo
    assert len(report.scorings) == 3 and (report.scorings["status"] == "observed").all()
    assert (report.scorings["observed"] == report.scorings["users"]).all()
    assert len(report.calibration) == 30 and set(report.segments["column"]) >= {"country", "channel"}
    assert len(report.drift) > 20 and report.score_drift["n_current"] > 0
    assert report.drift_info["reference"] == "training rows"
    assert report.verdict.level in ("ok", "watch", "retrain")
    assert store.history_path(ws).is_file()
    for fig in (plots.realised_quality(report.scorings), plots.predicted_vs_realised(report.scorings),
                plots.calibration_by_decile(report.calibration), plots.drift_bars(report.drift, report.score_drift),
                plots.segment_outcomes(report.segments, "country")):
        assert len(fig.data) >= 1


def test_realised_metrics_equal_an_independent_computation_on_the_sample(demo):
    ws, events, report = demo
    users = monitor.scores_of(report.scorings["scoring_id"].tolist(), workspace=ws)
    for _, r in report.scorings.iterrows():
        u = users[users["scoring_id"] == r["scoring_id"]]
        back = _independent_labels(events, r["as_of"])
        y = (~u["user_id"].isin(back)).astype(int).to_numpy()
        p = u["churn_probability"].to_numpy()
        assert r["observed"] == len(u)
        assert r["churn_rate"] == pytest.approx(y.mean(), abs=1e-12)
        assert r["predicted_rate"] == pytest.approx(p.mean(), abs=1e-12)
        assert r["roc_auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
        assert r["pr_auc"] == pytest.approx(average_precision_score(y, p), abs=1e-12)
        assert r["brier"] == pytest.approx(np.mean((p - y) ** 2), abs=1e-12)
        top = np.argsort(-p, kind="stable")[:math.ceil(0.1 * len(p))]
        assert r["recall_at_10pct"] == pytest.approx(y[top].sum() / y.sum(), abs=1e-12)
        assert r["precision_at_10pct"] == pytest.approx(y[top].mean(), abs=1e-12)
        cal = report.calibration[report.calibration["scoring_id"] == r["scoring_id"]]
        realised = pd.Series(y).groupby(u["risk_decile"].to_numpy()).mean()
        assert cal.set_index("risk_decile")["realised"].to_numpy() == pytest.approx(realised.to_numpy())


def test_report_json_has_the_contract_shape(demo):
    _, _, report = demo
    j = json.loads(report.to_json())  # strict JSON: no NaN
    assert {"run", "scorings", "drift", "verdict"} <= set(j) and j["run"] == monitor.demo.DEMO_RUN
    s = j["scorings"][0]
    assert {"as_of", "model", "users", "observed", "realised"} <= set(s)
    assert set(s["realised"]) >= {"churn_rate", "predicted_rate", "roc_auc", "pr_auc", "brier", "recall_at_10pct"}
    assert isinstance(s["users"], int) and isinstance(s["observed"], int) and s["as_of"] == "2024-06-03"
    assert {"feature", "psi", "band"} <= set(j["drift"]["features"][0])
    assert isinstance(j["drift"]["score_psi"], float) and isinstance(j["verdict"], str)
    assert j["verdict"].split(":")[0] in ("ok", "watch", "retrain")


def test_history_schema_and_scorings(demo):
    import duckdb

    ws, _, _ = demo
    con = duckdb.connect(str(store.history_path(ws)), read_only=True)
    try:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        counts = con.execute("SELECT s.users, count(*) FROM scorings s JOIN scores USING (scoring_id) "
                             "GROUP BY s.scoring_id, s.users").fetchall()
    finally:
        con.close()
    assert {"meta", "runs", "scorings", "scores", "score_segments"} <= tables
    assert all(users == n for users, n in counts)
    h = monitor.scorings(monitor.demo.DEMO_RUN, workspace=ws)
    assert h["as_of"].tolist() == ["2024-06-03", "2024-08-02", "2024-10-01"]
    assert set(h["model"]) == {"logreg"} and h["horizon_days"].eq(90).all() and h["run_exists"].all()
    assert h["segment_columns"].iloc[0] == ["country", "channel", "device", "stage"]  # every scoring keeps its stage
    assert (h["threshold"] > 0).all() and set(h["source"]) == {"demo"}


def test_a_deleted_run_keeps_its_history_readable(demo, tmp_path):
    _, events, _ = demo
    ws = tmp_path / "ws"
    report = monitor.demo_on_sample(ws, events=events, scorings=1)
    bundle.delete_run(monitor.demo.DEMO_RUN, ws)
    h = monitor.scorings(monitor.demo.DEMO_RUN, workspace=ws)
    assert len(h) == 1 and not h["run_exists"].any()
    again = monitor.monitor_report(monitor.demo.DEMO_RUN, events, workspace=ws)
    cols = ["as_of", "observed", "roc_auc", "recall_at_10pct", "validation_roc_auc"]
    pd.testing.assert_frame_equal(again.scorings[cols], report.scorings[cols])
    pd.testing.assert_frame_equal(again.drift, report.drift)
    assert again.score_drift is None and report.score_drift is not None
    assert any("deleted" in n for n in again.notes)


def test_bad_input_is_refused_with_a_clear_message(demo, tmp_path):
    ws, events, _ = demo
    run = bundle.load_run(bundle.run_path(monitor.demo.DEMO_RUN, ws))
    with pytest.raises(DataError, match="lacks the run's column.*quantity"):
        monitor.monitor_report(run, events.drop(columns=["quantity"]), workspace=ws)
    with pytest.raises(DataError, match="No scoring of run"):
        monitor.monitor_report(run, events, workspace=tmp_path / "empty")
    early = events[pd.to_datetime(events["event_time"]) <= pd.Timestamp("2024-07-01")]
    with pytest.raises(DataError, match=r"as of 2024-06-03, 90-day horizon\) is observed from 2024-09-01"):
        monitor.monitor_report(run, early, workspace=ws)
    waiting = monitor.monitor_report(run, early, workspace=ws, require_observed=False)
    assert set(waiting.scorings["status"]) == {"waiting"} and waiting.verdict.level in ("waiting", "watch", "retrain")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / store.HISTORY_FILE).write_bytes(b"not a database" * 100)
    with pytest.raises(DataError, match="cannot be read"):
        monitor.scorings(workspace=bad)
    with pytest.raises(DataError, match="cannot be read"):
        monitor.record_scoring(run, report_scores(run, events), workspace=bad)
    assert (bad / store.HISTORY_FILE).read_bytes() == b"not a database" * 100  # nothing lost


def report_scores(run, events):
    from retention_core.scoring import score_file

    return score_file(run, events, as_of="2024-06-03")


def test_what_next_guides_an_empty_monitor_page(demo, tmp_path):
    ws, _, _ = demo
    assert "No scoring of run 'monitor-demo' is recorded yet" in monitor.what_next("monitor-demo", workspace=tmp_path)
    early = monitor.what_next("monitor-demo", workspace=ws, today="2024-07-01")
    assert "the first, as of 2024-06-03, can be checked from 2024-09-01" in early
    late = monitor.what_next("monitor-demo", workspace=ws, today="2025-06-01")
    assert "as of 2024-10-01 can be checked now" in late and "reaches 2024-12-30" in late
    assert monitor.scorings("monitor-demo", workspace=ws)["observable_from"].tolist() == [
        "2024-09-01", "2024-10-31", "2024-12-30"]


def test_two_app_sessions_recording_at_once_both_land(demo, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    ws, events, _ = demo
    run = bundle.load_run(bundle.run_path(monitor.demo.DEMO_RUN, ws))
    scored = report_scores(run, events)
    with ThreadPoolExecutor(4) as pool:
        done = list(pool.map(lambda i: monitor.record_scoring(run, scored, data_name=f"t{i}", workspace=tmp_path),
                             range(4)))
    h = monitor.scorings(run, workspace=tmp_path)
    assert sorted(h["data_name"]) == ["t0", "t1", "t2", "t3"] and len({d.scoring_id for d in done}) == 4
    assert (h["users"] == len(scored.scores)).all() and set(h["source"]) == {"app"}


# ----------------------------------------------------------------------------------------------- concurrency
WRITER = textwrap.dedent("""
    import sys, numpy as np, pandas as pd
    from retention_core.bundle import load_run
    from retention_core.monitor import record_scoring
    run, ws, tag, n = load_run(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
    rng = np.random.default_rng(abs(hash(tag)) % 1000)
    scores = pd.DataFrame({"user_id": [f"{tag}{i}" for i in range(n)], "churn_probability": rng.random(n)})
    for k in range(int(sys.argv[5])):
        record_scoring(run, scores, as_of="2024-06-03", data_name=f"{tag}-{k}", workspace=ws)
""")


def _writer(run_dir, ws, tag, n, times):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", WRITER, str(run_dir), str(ws), tag, str(n), str(times)],
                            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_scorings_at_the_same_time_both_land(demo, tmp_path):
    ws, _, _ = demo
    run_dir = bundle.run_path(monitor.demo.DEMO_RUN, ws)
    procs = [_writer(run_dir, tmp_path, tag, 50_000, 2) for tag in ("a", "b")]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    h = monitor.scorings(workspace=tmp_path)
    assert sorted(h["data_name"]) == ["a-0", "a-1", "b-0", "b-1"] and (h["users"] == 50_000).all()
    users = monitor.scores_of(h["scoring_id"].tolist(), workspace=tmp_path)
    assert users.groupby("scoring_id").size().eq(50_000).all()


def test_a_writer_killed_mid_write_leaves_a_readable_history(demo, tmp_path):
    ws, _, _ = demo
    run_dir = bundle.run_path(monitor.demo.DEMO_RUN, ws)
    first = _writer(run_dir, tmp_path, "ok", 1000, 1)
    assert first.wait(timeout=300) == 0
    ready = tmp_path / "ready"
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from retention_core.monitor import store
        with store.connect({str(tmp_path)!r}, write=True) as con:
            con.execute("INSERT INTO scorings (scoring_id, run_id, run_name, model, recorded_at, users) "
                        "VALUES ('half', 'r', 'r', 'm', now(), 200000)")
            con.execute('INSERT INTO scores (scoring_id, user_id, churn_probability, risk_decile, "rank") '
                        "SELECT 'half', CAST(range AS VARCHAR), 0.5, 1, range FROM range(200000)")
            open({str(ready)!r}, "w").write("1")
            time.sleep(300)
    """)], env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT)
    t0 = time.monotonic()
    while not ready.exists():
        assert child.poll() is None and time.monotonic() - t0 < 120
        time.sleep(0.1)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    h = monitor.scorings(workspace=tmp_path)  # the lock died with the writer; the half scoring is not there
    assert h["data_name"].tolist() == ["ok-0"]
    assert len(monitor.scores_of(["half"], workspace=tmp_path)) == 0
    # killed at a random moment of real recordings: every scoring kept is whole
    busy = _writer(run_dir, tmp_path, "k", 100_000, 50)
    t0 = time.monotonic()
    while (monitor.scorings(workspace=tmp_path)["data_name"].str.startswith("k-").sum() < 2
           and time.monotonic() - t0 < 240 and busy.poll() is None):
        time.sleep(0.2)
    busy.send_signal(signal.SIGKILL)  # in the middle of its third scoring or so
    busy.wait()
    h = monitor.scorings(workspace=tmp_path)
    users = monitor.scores_of(h["scoring_id"].tolist(), workspace=tmp_path).groupby("scoring_id").size()
    assert (users.reindex(h["scoring_id"]).to_numpy() == h["users"].to_numpy()).all()
    assert _writer(run_dir, tmp_path, "after", 10, 1).wait(timeout=300) == 0


# ----------------------------------------------------------------------------------------------- Online Retail II
def _truth(r: pd.DataFrame, cutoff: str, horizon: int = 90, lookback: int = 365) -> pd.Series:
    p = r.dropna(subset=["Customer ID"])
    p = p[~p["Invoice"].astype(str).str.startswith("C") & (p["Quantity"] > 0) & (p["Price"] > 0)]
    T = pd.Timestamp(cutoff)
    ts = pd.to_datetime(p["InvoiceDate"])
    hist = set(p.loc[(ts <= T) & (ts > T - pd.Timedelta(days=lookback)), "Customer ID"].astype(int).astype(str))
    fut = set(p.loc[(ts > T) & (ts <= T + pd.Timedelta(days=horizon)), "Customer ID"].astype(int).astype(str))
    code = p["StockCode"].astype(str).str.strip().str.upper()  # postage, fees, adjustments: no product bought
    fees = {"POST", "DOT", "M", "BANK CHARGES", "AMAZONFEE", "C2", "D", "CRUK", "S", "B", "PADS", "ADJUST", "ADJUST2",
            "TEST001", "TEST002", "SP1002", "GIFT"}
    product = code.str.contains(r"\d") & ~code.isin(fees) & (ts <= T)
    hist &= set(p.loc[product, "Customer ID"].astype(int).astype(str))  # customers bought a product
    return pd.Series({u: int(u not in fut) for u in sorted(hist)}, name="churned")


def test_realised_metrics_equal_an_independent_computation_on_online_retail(tmp_path):
    from retention_core.dataset import build_dataset, default_config, training_cutoffs
    from retention_core.events import canonical_events
    from retention_core.io import read_table
    from retention_core.roles import infer_schema
    from retention_core.scoring import score_file
    from retention_core.training import TrainConfig, train_and_save

    full = read_table(real_path("online_retail_ii_2009_2010.parquet"))
    early_at = "2010-07-05"
    early = full[pd.to_datetime(full["InvoiceDate"]) <= pd.Timestamp(early_at)].reset_index(drop=True)
    schema = infer_schema(early)
    ev = canonical_events(early, schema)
    cfg = default_config(ev)
    ds = build_dataset(ev, cfg, cutoffs=training_cutoffs(ev, cfg))
    _, path = train_and_save(tmp_path / "run", ds, schema, TrainConfig(models=["recency"]), snapshot=cfg.as_dict(),
                             digest="")
    run = bundle.load_run(path)
    scored = score_file(run, early, as_of=early_at)
    monitor.record_scoring(run, scored, source="test", workspace=tmp_path / "ws")
    report = monitor.monitor_report(run, full, workspace=tmp_path / "ws")
    r = report.scorings.iloc[0]
    horizon = run.info["snapshot"]["horizon_days"]  # the run's own: 71 days, the default for a 216-day log
    assert r["horizon_days"] == horizon and r["observable_from"] == str((pd.Timestamp(early_at) + pd.Timedelta(
        days=horizon)).date())
    truth = _truth(full, early_at, horizon)
    s = scored.scores.set_index("user_id")
    common = truth.index.intersection(s.index)
    assert len(common) == len(truth) == len(s) == r["observed"]
    y, p = truth.loc[common].to_numpy(), s.loc[common, "churn_probability"].to_numpy()
    assert r["churn_rate"] == pytest.approx(y.mean(), abs=1e-12)
    assert r["roc_auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert r["pr_auc"] == pytest.approx(average_precision_score(y, p), abs=1e-12)
    assert r["brier"] == pytest.approx(np.mean((p - y) ** 2), abs=1e-12)
    assert report.to_dict()["drift"]["features"]
    assert report.drift_info["reference"] == "training rows" and report.score_drift is not None
