"""A campaign's measurement window is the campaign's, not the model's: a run with a 60-day horizon scores a shop with
half the list held out and a 90-day window, then the log gets a planted 60 days (the contacted come back more often)
and, in the 30 days after, late returns of part of the control group. The monitor judges the campaign over its 90
days (the figures computed by hand from what was planted, not those of the first 60), waits for them before, and says
the window in the JSON and in words; the model's realised figures keep the run's horizon. A history file of schema
version 2 (control groups, no window) is migrated in place and its campaigns are judged over their run's horizon."""
from __future__ import annotations

import json
import os

import duckdb
import numpy as np
import pandas as pd
import pytest

from assets.planted import history_log, plant_outcomes
from retention_core import bundle, control, monitor
from retention_core.dataset import SnapshotConfig, build_dataset, training_cutoffs
from retention_core.errors import ConfigError
from retention_core.events import canonical_events
from retention_core.monitor import store
from retention_core.roles import infer_schema
from retention_core.scoring import score_file
from retention_core.training import TrainConfig, train_and_save

AS_OF, HORIZON, WINDOW = "2023-12-01", 60, 90
LATE_DAY, LATE_RATE = 75, 0.5  # half the control group's customers not back in 60 days come back on day 75


def _late(hist: pd.DataFrame, truth: pd.DataFrame, seed: int = 4) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Purchases on day LATE_DAY by part of the control group not back in the first 60 days, and a last event on
    day WINDOW (the log reaches the window's end); the truth with ``returned_90``."""
    rng = np.random.default_rng(seed)
    late = (truth["group"] == "control").to_numpy() & ~truth["returned"].to_numpy() & \
        (rng.random(len(truth)) < LATE_RATE)
    last = hist.sort_values("event_time").drop_duplicates("customer_id", keep="last")
    last = last.assign(customer_id=last["customer_id"].astype(str)).set_index("customer_id")
    rows = last.reindex(truth.loc[late, "user_id"].to_numpy()).rename_axis("customer_id").reset_index()
    T = pd.Timestamp(AS_OF)
    rows = rows.assign(event_time=(T + pd.Timedelta(days=LATE_DAY, hours=12)).to_datetime64().astype("datetime64[s]"),
                       event_type="purchase", order_id=[f"LT{i:07d}" for i in range(len(rows))], quantity=1,
                       unit_price=30.0)
    end = rows.iloc[[0]].assign(event_time=(T + pd.Timedelta(days=WINDOW)).to_datetime64().astype("datetime64[s]"),
                                event_type="view", order_id=pd.NA)
    return pd.concat([rows, end], ignore_index=True), truth.assign(returned_90=truth["returned"].to_numpy() | late)


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    base = tmp_path_factory.mktemp("window")
    os.environ["RETENTION_HOME"] = str(base / "home")
    hist = history_log(600, seed=11, as_of=AS_OF)
    schema = infer_schema(hist)
    ev = canonical_events(hist, schema)
    cfg = SnapshotConfig(horizon_days=HORIZON)
    ds = build_dataset(ev, cfg, cutoffs=training_cutoffs(ev, cfg))
    ws = base / "ws"
    _, path = train_and_save(bundle.run_path("window", ws), ds, schema, TrainConfig(models=["logreg"]),
                             snapshot=cfg.as_dict(), digest="", name="window")
    run = bundle.load_run(path)
    scored = score_file(run, hist, as_of=AS_OF)
    listed = control.assign_control(scored.chosen, 0.5, seed=7, days=WINDOW)
    monitor.record_scoring(run, scored, source="cli", control=listed, workspace=ws)
    sixty, truth = plant_outcomes(hist, listed, as_of=AS_OF, horizon_days=HORIZON, contact_rate=0.45,
                                  control_rate=0.25, seed=3)
    late, truth = _late(hist, truth)
    cols = list(sixty.columns)
    ninety = pd.concat([sixty, late[cols].astype({c: object for c in cols})], ignore_index=True)
    return {"run": run, "ws": ws, "hist": hist, "scored": scored, "listed": listed, "sixty": sixty,
            "ninety": ninety.sort_values("event_time", kind="stable").reset_index(drop=True), "truth": truth}


def _uplift(truth: pd.DataFrame, col: str) -> tuple[float, int, int]:
    c, k = truth[truth["group"] == "contact"], truth[truth["group"] == "control"]
    return c[col].mean() - k[col].mean(), int(c[col].sum()), int(k[col].sum())


def test_the_campaign_is_judged_over_its_window_not_the_models_horizon(shop):
    report = monitor.monitor_report(shop["run"], shop["ninety"], workspace=shop["ws"])
    truth = shop["truth"]
    u90, r1, r0 = _uplift(truth, "returned_90")
    u60, _, _ = _uplift(truth, "returned")
    assert abs(u90 - u60) > 0.05  # the late returns change the answer
    assert len(report.campaigns) == 1
    r = report.campaigns.iloc[0]
    assert r["days"] == WINDOW and (r["contact_retained"], r["control_retained"]) == (r1, r0)
    assert r["uplift"] == pytest.approx(u90, abs=1e-12)
    j = report.to_dict()
    assert j["campaigns"][0]["days"] == WINDOW and j["campaigns"][0]["uplift"] == pytest.approx(u90, abs=1e-12)
    assert f"(purchases within {WINDOW} days)" in j["campaigns"][0]["summary"]
    # the model's realised figures keep the run's horizon: churn over 60 days
    s = report.scorings.iloc[0]
    assert s["horizon_days"] == HORIZON and s["campaign_days"] == WINDOW and s["status"] == "observed"
    assert s["observed"] == len(truth) and s["churners"] == int((~truth["returned"]).sum())


def test_the_campaign_waits_for_its_window(shop):
    report = monitor.monitor_report(shop["run"], shop["sixty"], workspace=shop["ws"])
    assert report.campaigns.empty and report.to_dict()["campaigns"] == []
    s = report.scorings.iloc[0]
    assert s["status"] == "observed" and s["campaign_status"] == "waiting" and s["campaign_from"] == "2024-02-29"
    assert "Campaign as of 2023-12-01: its control group can be compared from 2024-02-29 (as-of + its 90-day " \
           "window)." in report.campaign_lines()


def test_a_window_is_a_whole_number_of_days_above_0(shop):
    for bad in (0, -3, 1.5, "ninety"):
        with pytest.raises(ConfigError, match="whole number of days"):
            control.assign_control(shop["listed"].drop(columns="group"), 0.5, seed=1, days=bad)
    drawn = control.assign_control(shop["listed"].drop(columns="group"), 0.5, seed=1, days=30)
    assert drawn.attrs["control"]["days"] == 30 and "judged over 30 days" in control.control_note(drawn)


# ------------------------------------------------------------------------------------------------ version 2 files
V2_DDL = [  # the scoring history as the studio wrote it with control groups and no window (schema version 2)
    "CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR)",
    """CREATE TABLE runs (run_id VARCHAR PRIMARY KEY, run_name VARCHAR NOT NULL, run_path VARCHAR, kind VARCHAR,
        created VARCHAR, best_model VARCHAR, info VARCHAR NOT NULL, first_recorded TIMESTAMP NOT NULL)""",
    """CREATE TABLE scorings (scoring_id VARCHAR PRIMARY KEY, run_id VARCHAR NOT NULL, run_name VARCHAR NOT NULL,
        run_path VARCHAR, model VARCHAR NOT NULL, threshold DOUBLE, as_of DATE, horizon_days INTEGER,
        lookback_days INTEGER, recorded_at TIMESTAMP NOT NULL, source VARCHAR, data_name VARCHAR,
        users INTEGER NOT NULL, mean_probability DOUBLE, segment_columns VARCHAR, control_share DOUBLE,
        control_seed BIGINT, control_strata VARCHAR)""",
    """CREATE TABLE scores (scoring_id VARCHAR NOT NULL, user_id VARCHAR NOT NULL, churn_probability DOUBLE NOT NULL,
        risk_decile TINYINT, "rank" BIGINT, campaign_group VARCHAR)""",
    """CREATE TABLE score_segments (scoring_id VARCHAR NOT NULL, "rank" BIGINT NOT NULL, segment VARCHAR NOT NULL,
        value VARCHAR)""",
]


def test_a_version_2_history_is_migrated_and_its_campaigns_keep_the_runs_horizon(shop, tmp_path):
    run, scored, listed = shop["run"], shop["scored"], shop["listed"]
    ws = tmp_path / "ws"
    ws.mkdir()
    con = duckdb.connect(str(ws / store.HISTORY_FILE))
    for stmt in V2_DDL:
        con.execute(stmt)
    con.execute("INSERT INTO meta VALUES ('schema_version', '2')")
    rid = bundle.run_id(run)
    con.execute("INSERT INTO runs VALUES (?, ?, ?, 'events', NULL, 'logreg', ?, now())",
                [rid, run.path.name, str(run.path), json.dumps(store.run_record(run), default=str)])
    con.execute("INSERT INTO scorings VALUES ('v2-1', ?, ?, ?, 'logreg', 0.4, DATE '2023-12-01', 60, 365, now(), "
                "'cli', 'hist.csv', ?, ?, '[]', 0.5, 7, '[\"risk_decile\", \"stage\"]')",
                [rid, run.path.name, str(run.path), len(scored.scores),
                 float(scored.scores["churn_probability"].mean())])
    group = scored.scores["user_id"].astype(str).map(listed.set_index(listed["user_id"].astype(str))["group"])
    con.register("s", scored.scores.assign(g=group.to_numpy(dtype=object)))
    con.execute('INSERT INTO scores SELECT \'v2-1\', user_id, churn_probability, risk_decile, "rank", g FROM s')
    con.close()
    h = monitor.scorings(workspace=ws)  # read: migrated in place
    assert pd.isna(h.loc[0, "control_days"]) and h.loc[0, "campaign_days"] == HORIZON
    con = duckdb.connect(str(ws / store.HISTORY_FILE), read_only=True)
    assert con.execute("SELECT value FROM meta").fetchone()[0] == str(store.SCHEMA_VERSION) == "3"
    assert "control_days" in {r[0] for r in con.execute("DESCRIBE scorings").fetchall()}
    con.close()
    report = monitor.monitor_report(run, shop["ninety"], workspace=ws)
    r = report.campaigns.iloc[0]
    assert r["days"] == HORIZON and r["uplift"] == pytest.approx(_uplift(shop["truth"], "returned")[0], abs=1e-12)


def test_a_window_shorter_than_the_horizon_is_reported_before_the_scoring_is_observed(shop, tmp_path):
    run, scored = shop["run"], shop["scored"]
    listed = control.assign_control(scored.chosen, 0.5, seed=7, days=30)
    monitor.record_scoring(run, scored, source="cli", control=listed, workspace=tmp_path)
    T = pd.Timestamp(AS_OF)
    cut = shop["sixty"][shop["sixty"]["event_time"] <= T + pd.Timedelta(days=45)]
    report = monitor.monitor_report(run, cut, workspace=tmp_path)  # the scoring's 60 days are not observed yet
    assert report.scorings.iloc[0]["status"] == "waiting" and len(report.campaigns) == 1
    r = report.campaigns.iloc[0]
    late = cut[(cut["event_time"] > T) & (cut["event_time"] <= T + pd.Timedelta(days=30))
               & (cut["event_type"] == "purchase")]
    back = listed["user_id"].astype(str).isin(set(late["customer_id"].astype(str)))
    c, k = back[listed["group"] == "contact"], back[listed["group"] == "control"]
    assert r["days"] == 30 and (r["contact_retained"], r["control_retained"]) == (int(c.sum()), int(k.sum()))
    assert r["uplift"] == pytest.approx(c.mean() - k.mean(), abs=1e-12)
    assert json.loads(report.to_json())["campaigns"][0]["days"] == 30
    assert "(purchases within 30 days)" in report.campaign_lines()[0]
