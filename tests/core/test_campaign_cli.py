"""Control groups and campaign results on the command line: ``score --control-share S [--seed N] [--campaign-days D]``
writes the group
column (exact shares per risk decile, the same groups for the same seed), a list for a campaign tool without the
control rows, and records the groups with the scoring; after a planted horizon, ``monitor --json`` reports the
campaign as DESIGN.md says, with the figures computed by hand; bad values exit 2 with one error line."""
from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pandas as pd
import pytest

from assets.generator import write_events
from assets.planted import history_log, plant_outcomes
from retention_core import monitor
from tests.core.test_monitor_cli import cli, one_error_line  # the command line in a child process, one error line

ROOT = Path(__file__).resolve().parents[2]
AS_OF = "2023-12-01"


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """The shop's log up to AS_OF, a run trained on it (60-day horizon) and its scoring with 30% held out, judged
    over a 60-day window."""
    d = tmp_path_factory.mktemp("campaign-cli")
    hist = history_log(600, seed=21, as_of=AS_OF)
    path = write_events(hist, d / "history.csv")
    kw = {"ws": d / "ws", "home": d / "home"}
    rc, _, err = cli("train", path, "--out", d / "run", "--models", "logreg", "--horizon", 60, **kw)
    assert rc == 0, err
    rc, out, err = cli("score", d / "run", path, "--out", d / "list.csv", "--as-of", AS_OF, "--control-share", 0.3,
                       "--seed", 5, "--contact-out", d / "contact.csv", "--campaign-days", 60, **kw)
    assert rc == 0, err
    return {"dir": d, "hist": hist, "path": path, "run": d / "run", "kw": kw, "out": out,
            "list": pd.read_csv(d / "list.csv", dtype={"user_id": str})}


def test_score_holds_out_an_exact_stratified_share(shop):
    s = shop["list"]
    assert "group" in s.columns and set(s["group"]) == {"contact", "control"}
    assert s.columns[:4].tolist() == ["user_id", "churn_probability", "risk_decile", "rank"]
    n = len(s)
    assert (s["group"] == "control").sum() == int((n * Fraction(3, 10) + Fraction(1, 2)) // 1)
    per = s.groupby(["risk_decile", "stage"])["group"].agg(n="size", control=lambda g: int((g == "control").sum()))
    assert all(c in (int(k * Fraction(3, 10) // 1), int(k * Fraction(3, 10) // 1) + 1)
               for k, c in zip(per["n"], per["control"])), per
    assert f"{(s['group'] == 'control').sum():,} of {n:,} users held out as the control group (30% per risk " \
           "decile and stage, seed 5; judged over 60 days)" in shop["out"]
    contact = pd.read_csv(shop["dir"] / "contact.csv", dtype={"user_id": str})
    assert contact["user_id"].tolist() == s.loc[s["group"] == "contact", "user_id"].tolist()
    # the history keeps each user's group, the share and the seed
    h = monitor.scorings(workspace=shop["kw"]["ws"])
    assert len(h) == 1 and h.loc[0, "control_share"] == 0.3 and h.loc[0, "control_seed"] == 5
    assert h.loc[0, "control_days"] == 60
    users = monitor.scores_of(h["scoring_id"].tolist(), workspace=shop["kw"]["ws"]).set_index("user_id")
    assert users["group"].reindex(s["user_id"]).tolist() == s["group"].tolist()


def test_the_same_seed_draws_the_same_group(shop, tmp_path):
    kw = shop["kw"]
    rc, _, err = cli("score", shop["run"], shop["path"], "--out", tmp_path / "again.csv", "--as-of", AS_OF,
                     "--control-share", 0.3, "--seed", 5, "--no-record", **kw)
    assert rc == 0, err
    again = pd.read_csv(tmp_path / "again.csv", dtype={"user_id": str})
    assert again["group"].tolist() == shop["list"]["group"].tolist()
    rc, out, err = cli("score", shop["run"], shop["path"], "--out", tmp_path / "other.csv", "--as-of", AS_OF,
                       "--control-share", 0.3, "--no-record", **kw)
    assert rc == 0, err
    assert "seed 20231201; judged over 90 days" in out  # the default seed (the scoring date) and window
    other = pd.read_csv(tmp_path / "other.csv", dtype={"user_id": str})
    assert (other["group"] != again["group"]).sum() > 20
    assert len(monitor.scorings(workspace=kw["ws"])) == 1


@pytest.mark.parametrize("args, flag", [(["--control-share", 1.5], "--control-share"),
                                        (["--control-share", 0], "--control-share"),
                                        (["--control-share", "ten"], "--control-share"),
                                        (["--seed", 3], "--seed"),
                                        (["--control-share", 0.1, "--seed", -2], "--seed"),
                                        (["--campaign-days", 30], "--campaign-days"),
                                        (["--control-share", 0.1, "--campaign-days", 0], "--campaign-days"),
                                        (["--control-share", 0.1, "--campaign-days", -30], "--campaign-days"),
                                        (["--control-share", 0.1, "--campaign-days", "ninety"], "--campaign-days")])
def test_a_bad_control_share_seed_or_window_exits_2_with_one_error_line(shop, tmp_path, args, flag):
    rc, _, err = cli("score", shop["run"], shop["path"], "--out", tmp_path / "x.csv", *args, **shop["kw"])
    assert flag in one_error_line(rc, err)
    assert not (tmp_path / "x.csv").exists()


def test_monitor_reports_the_planted_campaign(shop, tmp_path):
    s = shop["list"]
    full, truth = plant_outcomes(shop["hist"], s, as_of=AS_OF, horizon_days=60, contact_rate=0.5,
                                 control_rate=0.3, seed=8)
    data = write_events(full, tmp_path / "later.csv")
    rc, out, err = cli("monitor", shop["run"], data, "--json", "--cost-per-contact", 1.5, **shop["kw"])
    assert rc == 0, err
    j = json.loads(out)
    assert len(j["campaigns"]) == 1
    c = j["campaigns"][0]
    con, ctl = truth[truth["group"] == "contact"], truth[truth["group"] == "control"]
    assert c["as_of"] == AS_OF and c["control_share"] == 0.3 and c["control_seed"] == 5 and c["days"] == 60
    assert c["contact"]["users"] == len(con) and c["contact"]["retained"] == int(con["returned"].sum())
    assert c["control"]["users"] == len(ctl) and c["control"]["retained"] == int(ctl["returned"].sum())
    uplift = con["returned"].mean() - ctl["returned"].mean()
    assert c["uplift"] == pytest.approx(uplift, abs=1e-12)
    assert c["ci"][0] < 0.2 < c["ci"][1]  # the planted 20 points
    rev = (con["revenue"].mean() - ctl["revenue"].mean()) * len(con)
    assert c["incremental_revenue"] == pytest.approx(rev, rel=1e-6)
    assert c["cost"] == pytest.approx(1.5 * len(con)) and c["roi"] == pytest.approx((rev - c["cost"]) / c["cost"],
                                                                                   rel=1e-6)
    assert {seg["column"] for seg in c["segments"]} >= {"channel", "risk_decile"}
    # the text report says it in words
    rc, out, err = cli("monitor", shop["run"], data, "--cost-per-contact", 1.5, **shop["kw"])
    assert rc == 0, err
    assert f"Campaign as of {AS_OF}: retention {con['returned'].mean():.1%} among the {len(con):,} contacted" in out
    assert "held out (purchases within 60 days)" in out
    assert "by channel: " in out and "by risk decile: " in out
    rc, _, err = cli("monitor", shop["run"], data, "--cost-per-contact", -1, **shop["kw"])
    assert "--cost-per-contact" in one_error_line(rc, err)
