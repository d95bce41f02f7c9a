"""Audiences and the default choice of users (``retention_core.scoring.select``, the one selection of the command
line, the app and the lists): the customers who can still be saved or the lapsed, a budget of contacts (the top 10%
or a count) ranked by expected net value, or by uplift when the scores carry it; the threshold as a choice. Then the
``score`` command's CSV: every row carries its stage, and the command chooses with the same function."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from retention_core.campaign import expected_net_value
from retention_core.errors import ConfigError
from retention_core.scoring import DEFAULT_SHARE, at_risk_list, contacts_for, file_choice, select
from retention_core.segments import risk_deciles

STAGES = ["new", "active", "slipping", "lapsed"]


def _scored(n: int = 200, seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    p = rng.random(n)
    rank = np.empty(n, dtype=np.int64)
    rank[np.argsort(-p, kind="stable")] = np.arange(1, n + 1)
    scores = pd.DataFrame({"user_id": [f"u{i:04d}" for i in range(n)], "churn_probability": p,
                           "risk_decile": risk_deciles(p), "rank": rank,
                           "stage": pd.Categorical(rng.choice(STAGES, n, p=[0.1, 0.4, 0.2, 0.3]), categories=STAGES)})
    frame = pd.DataFrame({"user_id": scores["user_id"], "snapshot_date": pd.Timestamp("2024-03-31"),
                          "country": rng.choice(["DE", "FR", "UK"], n), "revenue_365d": rng.gamma(2.0, 80.0, n)})
    return scores, frame


def test_the_default_is_a_budget_of_the_top_ten_percent_ranked_by_expected_net_value():
    scores, frame = _scored()
    out = at_risk_list(scores, frame)
    assert out.attrs["method"] == "contacts" and out.attrs["ranked_by"] == "expected_net_value"
    assert len(out) == math.ceil(DEFAULT_SHARE * len(scores)) == 20
    env = expected_net_value(scores["churn_probability"], frame["revenue_365d"])
    assert out["expected_net_value"].tolist() == sorted(env, reverse=True)[:20]  # the 20 most worth a contact
    assert out["expected_net_value"].is_monotonic_decreasing and {"save_rate", "cost_per_contact"} <= set(out)
    assert list(out.columns[:5]) == ["user_id", "churn_probability", "risk_decile", "rank", "stage"]
    assert len(at_risk_list(scores, frame, k=7)) == 7  # a count the analyst sets
    assert len(at_risk_list(scores, frame, share=0.25)) == 50


def test_audiences_keep_the_savable_or_the_lapsed():
    scores, frame = _scored()
    lapsed = set(scores.loc[scores["stage"] == "lapsed", "user_id"])
    save = at_risk_list(scores, frame, audience="saveable")
    assert len(save) == 20 and not set(save["user_id"]) & lapsed and save.attrs["audience"] == "saveable"
    assert save.attrs["eligible"] == len(scores) - len(lapsed)
    back = at_risk_list(scores, frame, audience="winback", method="everyone")
    assert set(back["user_id"]) == lapsed and back["rank"].is_monotonic_increasing
    every = at_risk_list(scores, frame, audience="all", method="top_k", k=len(scores))
    assert len(every) == len(scores)
    with pytest.raises(ConfigError, match="audience"):
        at_risk_list(scores, frame, audience="lost")


def test_the_threshold_stays_a_choice():
    scores, frame = _scored()
    out = at_risk_list(scores, frame, method="threshold", threshold=0.6, audience="saveable")
    keep = (scores["churn_probability"] >= 0.6) & (scores["stage"] != "lapsed")
    assert set(out["user_id"]) == set(scores.loc[keep, "user_id"]) and out["rank"].is_monotonic_increasing


def test_a_run_with_uplift_ranks_by_uplift():
    """The hook for uplift runs: scores with an ``uplift`` column are ranked by it (persuadables first)."""
    scores, frame = _scored()
    scores["uplift"] = np.random.default_rng(0).normal(0, 0.05, len(scores))
    out = at_risk_list(scores, frame, audience="saveable")
    assert out.attrs["ranked_by"] == "uplift" and "expected_net_value" not in out.columns
    want = scores[scores["stage"] != "lapsed"].sort_values("uplift", ascending=False)["user_id"].head(20)
    assert out["user_id"].tolist() == want.tolist() and "uplift" in out.columns
    pick = select(scores, frame, audience="saveable")
    assert scores["user_id"].to_numpy()[pick.positions].tolist() == want.tolist()


@pytest.mark.parametrize("choice, app", [({"top": 15}, {"method": "top_k", "k": 15}),
                                         ({"threshold": 0.7}, {"method": "threshold", "threshold": 0.7}),
                                         ({"contacts": 9}, {"method": "contacts", "k": 9}),
                                         ({}, {"method": "everyone"})])
@pytest.mark.parametrize("audience", [None, "saveable", "winback"])
def test_the_file_list_and_the_apps_list_choose_the_same_users(choice, app, audience):
    """The command line's list (``scored_list``, the CSV of ``score``) and the app's (``at_risk_list``) are the same
    choice (``select``) on the same scores, for every way of choosing and every audience."""
    from types import SimpleNamespace

    from retention_core.scoring import scored_list

    scores, frame = _scored()
    run = SimpleNamespace(info={"categorical": []}, threshold=0.5)
    cli = scored_list(run, "m", scores, frame, None, audience=audience, **choice).chosen
    mine = at_risk_list(scores, frame, audience=audience, **app)
    assert cli["user_id"].tolist() == mine["user_id"].tolist()


def test_contacts_and_choices_are_checked():
    assert contacts_for(3362) == 337 and contacts_for(5) == 1 and contacts_for(0) == 0 and contacts_for(9, k=4) == 4
    with pytest.raises(ConfigError):
        contacts_for(100, share=0)
    with pytest.raises(ConfigError):
        contacts_for(100, share=1.5)
    assert file_choice() == {"method": "everyone"}
    assert file_choice(share=0.1)["method"] == "contacts"
    with pytest.raises(ConfigError, match="one way"):
        file_choice(top=5, share=0.1)
    with pytest.raises(ConfigError) as e:
        file_choice(contacts=0)
    assert e.value.field == "contacts"


# ----------------------------------------------------------------------------------------------- the score command
@pytest.fixture(scope="module")
def scored_run(tmp_path_factory):
    """A small generated shop, a run trained on it by the command line, and its full score CSV."""
    from assets.generator import generate_events, write_events
    from retention_core.cli import main

    d = tmp_path_factory.mktemp("stages")
    log = write_events(generate_events(400, seed=11, days=500), d / "shop.csv")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RETENTION_HOME", str(d / "home"))
        mp.setenv("RETENTION_WORKSPACE", str(d / "ws"))
        assert main(["train", str(log), "--out", str(d / "run"), "--horizon", "60", "--models", "recency,logreg"]) == 0
        assert main(["score", str(d / "run"), str(log), "--out", str(d / "all.csv"), "--no-record"]) == 0
        yield d, log, pd.read_csv(d / "all.csv", dtype={"user_id": str})


def _score(d, log, out: str, *options) -> pd.DataFrame:
    from retention_core.cli import main

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RETENTION_HOME", str(d / "home"))
        assert main(["score", str(d / "run"), str(log), "--out", str(d / out), "--no-record", *options]) == 0
    return pd.read_csv(d / out, dtype={"user_id": str})


def test_every_score_csv_carries_the_stage(scored_run, capsys):
    d, log, every = scored_run
    assert list(every.columns[:5]) == ["user_id", "churn_probability", "risk_decile", "rank", "stage"]
    assert set(every["stage"]) <= set(STAGES) and every["stage"].notna().all()
    assert {"active", "lapsed"} <= set(every["stage"])  # a real mix, not one label for everyone
    top = _score(d, log, "top.csv", "--top", "20", "--reasons", "2")
    assert list(top.columns[:7]) == ["user_id", "churn_probability", "risk_decile", "rank", "reason_1", "reason_2",
                                     "stage"]
    assert top.set_index("user_id")["stage"].to_dict() == every.set_index("user_id").loc[top["user_id"], "stage"] \
        .to_dict()
    assert "stages: new" in capsys.readouterr().out


def test_the_score_command_chooses_audiences_and_contacts_like_the_app(scored_run):
    from retention_core.bundle import load_run
    from retention_core.io import read_table
    from retention_core.scoring import score

    d, log, every = scored_run
    back = _score(d, log, "winback.csv", "--audience", "winback")
    assert set(back["user_id"]) == set(every.loc[every["stage"] == "lapsed", "user_id"])
    budget = _score(d, log, "budget.csv", "--audience", "saveable", "--contacts", "10%")
    assert len(budget) == math.ceil(0.1 * len(every)) and (budget["stage"] != "lapsed").all()
    env = [c for c in budget.columns if c.startswith("expected_net_value")]
    assert env == ["expected_net_value (currency of the log)"], list(budget.columns)  # the amount names its unit
    assert budget[env[0]].is_monotonic_decreasing and (budget["save_rate"] == 0.1).all()
    # the same users as the library's list on the same scores (what the app shows)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RETENTION_HOME", str(d / "home"))
        scores, frame, _ = score(load_run(d / "run"), read_table(log))
    app = at_risk_list(scores, frame, audience="saveable")
    assert app["user_id"].tolist() == budget["user_id"].tolist()
    assert len(_score(d, log, "n.csv", "--contacts", "12")) == 12
