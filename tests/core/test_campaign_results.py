"""Campaign results on a log with a planted effect: a run scores a generated shop as of a date with half the list held
out, then the horizon after it is written so that the contacted come back with a known, higher probability than the
control group (and much higher in one channel). The monitor's figures equal the ones computed by hand from what was
planted, the interval covers the planted effect, and the JSON has the shape of DESIGN.md. Also: the scoring history
keeps each user's group, the share and the seed, and a history file of the format before control groups is migrated
in place and keeps working."""
from __future__ import annotations

import json
import os

import duckdb
import pandas as pd
import pytest

from assets.planted import history_log, plant_outcomes
from retention_core import bundle, control, monitor
from retention_core.dataset import SnapshotConfig, build_dataset, training_cutoffs
from retention_core.errors import DataError
from retention_core.events import canonical_events
from retention_core.monitor import campaigns, store
from retention_core.roles import infer_schema
from retention_core.scoring import score_file
from retention_core.training import TrainConfig, train_and_save

AS_OF, HORIZON = "2023-12-01", 60
CONTACT_RATE, CONTROL_RATE = 0.45, 0.25
EMAIL = (0.70, 0.20)  # the e-mail channel's customers respond much more


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """A logistic regression trained on the shop's log up to AS_OF, its scoring as of AS_OF with half the list held
    out (seed 7) recorded in a workspace, and the log with the planted horizon appended."""
    base = tmp_path_factory.mktemp("planted")
    os.environ["RETENTION_HOME"] = str(base / "home")
    hist = history_log(800, seed=11, as_of=AS_OF)
    schema = infer_schema(hist)
    ev = canonical_events(hist, schema)
    cfg = SnapshotConfig(horizon_days=HORIZON)
    ds = build_dataset(ev, cfg, cutoffs=training_cutoffs(ev, cfg))
    ws = base / "ws"
    _, path = train_and_save(bundle.run_path("planted", ws), ds, schema, TrainConfig(models=["logreg"]),
                             snapshot=cfg.as_dict(), digest="", name="planted")
    run = bundle.load_run(path)
    scored = score_file(run, hist, as_of=AS_OF)
    listed = control.assign_control(scored.chosen, 0.5, seed=7)
    rec = monitor.record_scoring(run, scored, source="cli", control=listed, workspace=ws)
    full, truth = plant_outcomes(hist, listed, as_of=AS_OF, horizon_days=HORIZON, contact_rate=CONTACT_RATE,
                                 control_rate=CONTROL_RATE, segment_rates={"channel": {"email": EMAIL}}, seed=3)
    report = monitor.monitor_report(run, full, workspace=ws, cost_per_contact=2.0)
    return {"run": run, "ws": ws, "hist": hist, "full": full, "truth": truth, "listed": listed, "scored": scored,
            "rec": rec, "report": report}


def _hand(truth: pd.DataFrame) -> dict:
    """The campaign's figures computed by hand from what was planted."""
    c, k = truth[truth["group"] == "contact"], truth[truth["group"] == "control"]
    n1, r1, n0, r0 = len(c), int(c["returned"].sum()), len(k), int(k["returned"].sum())
    rev = c["revenue"].mean() - k["revenue"].mean()
    return {"n1": n1, "r1": r1, "n0": n0, "r0": r0, "uplift": r1 / n1 - r0 / n0, "revenue_per_user": rev,
            "incremental_revenue": rev * n1, "planted": c["rate"].mean() - k["rate"].mean()}


def test_the_history_keeps_each_users_group_the_share_and_the_seed(planted):
    ws, listed = planted["ws"], planted["listed"]
    h = monitor.scorings(workspace=ws)
    assert len(h) == 1 and h.loc[0, "control_share"] == 0.5 and h.loc[0, "control_seed"] == 7
    assert h.loc[0, "control_strata"] == ["risk_decile", "stage"]  # every scored list carries its stage
    users = monitor.scores_of([planted["rec"].scoring_id], workspace=ws)
    got = users.set_index("user_id")["group"]
    assert got.reindex(listed["user_id"]).tolist() == listed["group"].tolist()
    assert (got == "control").sum() == (listed["group"] == "control").sum() == 400


def test_the_monitor_measures_the_planted_effect(planted):
    report, hand = planted["report"], _hand(planted["truth"])
    assert len(report.campaigns) == 1
    r = report.campaigns.iloc[0]
    assert r["as_of"] == AS_OF and r["control_share"] == 0.5 and r["control_seed"] == 7
    assert (r["contact_users"], r["contact_retained"], r["control_users"], r["control_retained"]) == \
        (hand["n1"], hand["r1"], hand["n0"], hand["r0"])
    assert r["uplift"] == pytest.approx(hand["uplift"], abs=1e-12)
    assert (r["ci_low"], r["ci_high"]) == pytest.approx(
        campaigns.newcombe(hand["r1"], hand["n1"], hand["r0"], hand["n0"])[1:], abs=1e-12)
    # the planted effect (0.20, 0.50 in e-mail: about 0.23 over the list) is inside the interval, and the estimate
    # is within the interval's half width of it
    assert r["ci_low"] <= hand["planted"] <= r["ci_high"] and r["ci_low"] > 0 and r["significant"]
    assert abs(r["uplift"] - hand["planted"]) <= (r["ci_high"] - r["ci_low"]) / 2
    assert r["incremental_customers"] == pytest.approx(hand["uplift"] * hand["n1"])
    assert r["revenue_uplift_per_user"] == pytest.approx(hand["revenue_per_user"], abs=1e-3)
    assert r["incremental_revenue"] == pytest.approx(hand["incremental_revenue"], rel=1e-6)
    assert r["revenue_ci_low"] < r["revenue_uplift_per_user"] < r["revenue_ci_high"]
    camp, _ = report.campaign_table()
    c = camp.iloc[0]
    assert c["cost"] == 2.0 * hand["n1"] and c["net"] == pytest.approx(hand["incremental_revenue"] - c["cost"])
    assert c["roi"] == pytest.approx(c["net"] / c["cost"])
    # another cost per contact without recomputing the report
    assert report.campaign_table(0.5)[0].iloc[0]["cost"] == 0.5 * hand["n1"]


def test_the_same_per_segment(planted):
    report, truth = planted["report"], planted["truth"]
    segs = report.campaign_segments
    assert {"country", "channel", "device", "risk_decile"} <= set(segs["column"])
    channel = segs[segs["column"] == "channel"].set_index("segment")
    for value, part in truth.groupby("channel"):
        hand = _hand(part)
        row = channel.loc[value]
        assert (row["contact_users"], row["contact_retained"], row["control_users"], row["control_retained"]) == \
            (hand["n1"], hand["r1"], hand["n0"], hand["r0"])
        planted_rate = EMAIL[0] - EMAIL[1] if value == "email" else CONTACT_RATE - CONTROL_RATE
        assert row["ci_low"] <= planted_rate <= row["ci_high"], (value, row[["uplift", "ci_low", "ci_high"]])
    assert channel.loc["email", "uplift"] > channel.loc["organic", "uplift"] + 0.15  # the planted difference shows
    deciles = segs[segs["column"] == "risk_decile"]
    assert deciles["segment"].tolist() == [str(d) for d in range(1, 11)]
    assert deciles["contact_users"].sum() == 400 and deciles["control_users"].sum() == 400
    assert (deciles["contact_users"] == deciles["control_users"]).all()  # stratified: 40 and 40 in each decile
    small = (deciles[["contact_users", "control_users"]].min(axis=1) < campaigns.MIN_GROUP).to_numpy()
    assert (deciles["reliable"].to_numpy() == ~small).all()


def test_the_json_has_the_campaigns_of_design_md(planted):
    j = json.loads(planted["report"].to_json())
    assert len(j["campaigns"]) == 1
    c = j["campaigns"][0]
    assert {"as_of", "contact", "control", "uplift", "ci"} <= set(c)
    assert set(c["contact"]) >= {"users", "retained"} and set(c["control"]) >= {"users", "retained"}
    assert c["as_of"] == AS_OF and len(c["ci"]) == 2 and c["ci"][0] < c["uplift"] < c["ci"][1]
    assert {"incremental_customers", "incremental_revenue", "cost_per_contact", "roi", "ci_method",
            "segments"} <= set(c)
    assert c["cost_per_contact"] == 2.0 and "Newcombe" in c["ci_method"]
    seg = c["segments"][0]
    assert {"column", "segment", "contact", "control", "uplift", "ci", "reliable"} <= set(seg)
    assert j["scorings"][0]["control_share"] == 0.5
    assert c["summary"].startswith(f"Campaign as of {AS_OF}: retention ")


def test_scorings_without_a_control_group_or_not_observed_yet_are_not_campaigns(planted, tmp_path):
    run, scored, full = planted["run"], planted["scored"], planted["full"]
    monitor.record_scoring(run, scored, source="cli", workspace=tmp_path)  # no control group
    later = score_file(run, full, as_of="2024-01-15")
    monitor.record_scoring(run, later, source="cli", workspace=tmp_path,
                           control=control.assign_control(later.chosen, 0.2, seed=1))  # horizon not passed
    report = monitor.monitor_report(run, full, workspace=tmp_path)
    assert report.campaigns.empty and report.to_dict()["campaigns"] == []
    s = report.scorings.set_index("as_of")
    assert pd.isna(s.loc[AS_OF, "control_share"]) and s.loc["2024-01-15", "control_share"] == 0.2
    assert s.loc["2024-01-15", "status"] == "waiting"


def test_a_control_group_drawn_after_the_scoring_was_kept_is_attached_to_it(planted, tmp_path):
    run, scored, listed = planted["run"], planted["scored"], planted["listed"]
    rec = monitor.record_scoring(run, scored, source="app", workspace=tmp_path)
    assert monitor.scores_of([rec.scoring_id], workspace=tmp_path)["group"].isna().all()
    top = listed.head(300).drop(columns="group")
    drawn = control.assign_control(top, 0.1, seed=9)
    assert store.set_control(rec.scoring_id, drawn, workspace=tmp_path) == 300
    users = monitor.scores_of([rec.scoring_id], workspace=tmp_path).set_index("user_id")["group"]
    assert users.reindex(drawn["user_id"]).tolist() == drawn["group"].tolist()
    assert users.isna().sum() == len(users) - 300  # users outside the list have no group
    h = monitor.scorings(workspace=tmp_path)
    assert h.loc[0, "control_share"] == 0.1 and h.loc[0, "control_seed"] == 9
    with pytest.raises(DataError, match="no control group"):
        store.set_control(rec.scoring_id, top, workspace=tmp_path)


# ------------------------------------------------------------------------------------------------ old histories
V1_DDL = [  # the scoring history as the studio wrote it before control groups (schema version 1)
    "CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR)",
    """CREATE TABLE runs (run_id VARCHAR PRIMARY KEY, run_name VARCHAR NOT NULL, run_path VARCHAR, kind VARCHAR,
        created VARCHAR, best_model VARCHAR, info VARCHAR NOT NULL, first_recorded TIMESTAMP NOT NULL)""",
    """CREATE TABLE scorings (scoring_id VARCHAR PRIMARY KEY, run_id VARCHAR NOT NULL, run_name VARCHAR NOT NULL,
        run_path VARCHAR, model VARCHAR NOT NULL, threshold DOUBLE, as_of DATE, horizon_days INTEGER,
        lookback_days INTEGER, recorded_at TIMESTAMP NOT NULL, source VARCHAR, data_name VARCHAR,
        users INTEGER NOT NULL, mean_probability DOUBLE, segment_columns VARCHAR)""",
    """CREATE TABLE scores (scoring_id VARCHAR NOT NULL, user_id VARCHAR NOT NULL, churn_probability DOUBLE NOT NULL,
        risk_decile TINYINT, "rank" BIGINT)""",
    """CREATE TABLE score_segments (scoring_id VARCHAR NOT NULL, "rank" BIGINT NOT NULL, segment VARCHAR NOT NULL,
        value VARCHAR)""",
]


def _v1_history(ws, run, scores: pd.DataFrame, version: str = "1") -> None:
    """A history file in the format of schema version 1 holding one scoring of ``run``, written as that version
    wrote it."""
    ws.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(ws / store.HISTORY_FILE))
    for stmt in V1_DDL:
        con.execute(stmt)
    con.execute("INSERT INTO meta VALUES ('schema_version', ?)", [version])
    rid = bundle.run_id(run)
    con.execute("INSERT INTO runs VALUES (?, ?, ?, 'events', NULL, 'logreg', ?, now())",
                [rid, run.path.name, str(run.path), json.dumps(store.run_record(run), default=str)])
    con.execute("INSERT INTO scorings VALUES ('old-1', ?, ?, ?, 'logreg', 0.4, DATE '2023-12-01', 60, 365, now(), "
                "'cli', 'hist.csv', ?, ?, '[]')", [rid, run.path.name, str(run.path), len(scores),
                                                 float(scores["churn_probability"].mean())])
    con.register("s", scores)
    con.execute('INSERT INTO scores SELECT \'old-1\', user_id, churn_probability, risk_decile, "rank" FROM s')
    con.close()


def test_a_history_file_of_the_format_before_control_groups_keeps_working(planted, tmp_path):
    run, scored, full = planted["run"], planted["scored"], planted["full"]
    ws = tmp_path / "ws"
    _v1_history(ws, run, scored.scores)
    h = monitor.scorings(workspace=ws)  # read: migrated in place
    assert h["scoring_id"].tolist() == ["old-1"] and pd.isna(h.loc[0, "control_share"])
    con = duckdb.connect(str(ws / store.HISTORY_FILE), read_only=True)
    assert con.execute("SELECT value FROM meta").fetchone()[0] == str(store.SCHEMA_VERSION)
    assert {"control_share", "control_seed", "control_strata"} <= {r[0] for r in con.execute(
        "DESCRIBE scorings").fetchall()}
    con.close()
    users = monitor.scores_of(["old-1"], workspace=ws)
    assert len(users) == len(scored.scores) and users["group"].isna().all()
    # the old scoring is monitored as before, and a new scoring with a control group lands beside it
    monitor.record_scoring(run, scored, source="cli", workspace=ws,
                           control=control.assign_control(scored.chosen, 0.5, seed=7))
    report = monitor.monitor_report(run, full, workspace=ws)
    assert len(report.scorings) == 2 and (report.scorings["status"] == "observed").all()
    assert len(report.campaigns) == 1
    assert report.campaigns.iloc[0]["uplift"] == pytest.approx(planted["report"].campaigns.iloc[0]["uplift"])


def test_a_history_file_of_a_newer_version_is_refused_and_left_alone(planted, tmp_path):
    ws = tmp_path / "ws"
    _v1_history(ws, planted["run"], planted["scored"].scores, version=str(store.SCHEMA_VERSION + 1))
    before = (ws / store.HISTORY_FILE).read_bytes()
    with pytest.raises(DataError, match="newer version of the studio"):
        monitor.scorings(workspace=ws)
    assert (ws / store.HISTORY_FILE).read_bytes() == before
