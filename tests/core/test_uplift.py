"""Uplift: the Qini curve and area against hand computations, learners on a table with a planted effect, the
experiment's checks, the saved run and the command line (train --treatment, score), and Hillstrom when present."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from retention_core.errors import ConfigError, DataError, ModelError
from retention_core.uplift.data import Experiment, experiment_data, outcome_columns
from retention_core.uplift.learners import LEARNERS, arms_around, make_learner
from retention_core.uplift.metrics import (
    comparison_figures,
    qini_area,
    qini_coefficient,
    qini_curve,
    uplift_by_decile,
)
from tests.conftest import REPO_ROOT, real_path

# ------------------------------------------------------------------------------------------------ hand computations
# Six customers; two share the score 0.8, so the curve has no point between them.
SCORE = [0.9, 0.8, 0.8, 0.5, 0.3, 0.1]
TREATED = [1, 0, 1, 1, 0, 0]
Y = [1, 0, 1, 0, 1, 0]


def test_qini_curve_by_hand():
    c = qini_curve(Y, SCORE, TREATED)
    # k=1: 1 treated responder; k=3: 2 treated responders, no control responder; k=5: 2 - 1 * 3/2; k=6: 2 - 1 * 3/3
    assert c["targeted"].tolist() == [0, 1, 3, 4, 5, 6]
    assert np.allclose(c["incremental"], [0, 1, 2, 2, 0.5, 1])
    assert np.allclose(c["random"], np.array([0, 1, 3, 4, 5, 6]) / 6)


def test_qini_area_and_coefficient_by_hand():
    # gaps above random per customer at k = 0,1,3,4,5,6: 0, 5/36, 9/36, 8/36, -2/36, 0; trapezoids: 54/432
    assert qini_area(Y, SCORE, TREATED) == pytest.approx(54 / 432)
    # the oracle (treated responders first, control responders last): 78/432
    assert qini_coefficient(Y, SCORE, TREATED) == pytest.approx(54 / 78)
    assert qini_coefficient(Y, np.array(Y) * np.array(TREATED) - np.array(Y) * (1 - np.array(TREATED)),
                            TREATED) == pytest.approx(1.0)
    # the reversed ranking loses what this one gains, relative to the same random line
    assert qini_area(Y, -np.array(SCORE), TREATED) < 0


def test_uplift_by_decile_by_hand():
    d = uplift_by_decile(Y, SCORE, TREATED, bins=2)
    assert d["customers"].tolist() == [3, 3]
    assert d["treated"].tolist() == [2, 1]
    assert np.allclose(d["uplift"], [1.0, -0.5])  # first half: 2/2 treated vs 0/1 control; then 0/1 vs 1/2


def test_random_and_response_comparison():
    rows = comparison_figures(Y, TREATED, SCORE)
    assert rows["random"]["qini_area"] == 0.0
    assert rows["random"]["uplift_top10"] == pytest.approx(2 / 3 - 1 / 3)
    assert rows["response"]["qini_area"] == pytest.approx(54 / 432)


def test_metrics_refuse_bad_input():
    with pytest.raises(ConfigError):
        qini_area([0, 1, 2], [0.1, 0.2, 0.3], [0, 1, 0])
    with pytest.raises(ConfigError):
        qini_area([0, 1], [0.1, 0.2, 0.3], [0, 1, 0])


# ------------------------------------------------------------------------------------------------ a planted effect
def planted(n: int = 4000, seed: int = 0) -> pd.DataFrame:
    """Customers randomised 50/50 to an e-mail; the e-mail lifts the chance of a visit by 30 points for plan
    'gold', 10 for 'silver' and lowers it by 10 for 'basic', plus 10 points per unit of ``engagement``, less 15 per
    unit of ``tenure``. The baseline visit rate rises steeply with ``tenure`` (loyal customers visit anyway), so
    response targeting, which ranks by the visit rate when e-mailed, is misled."""
    rng = np.random.default_rng(seed)
    plan = rng.choice(["gold", "silver", "basic"], n)
    engagement = rng.uniform(0, 1, n)
    tenure = rng.uniform(0, 1, n)
    arm = rng.choice(["email", "none"], n)
    base = 0.15 + 0.5 * tenure
    effect = pd.Series(plan).map({"gold": 0.3, "silver": 0.1, "basic": -0.1}).to_numpy() + 0.1 * engagement \
        - 0.15 * tenure
    p = np.clip(base + (arm == "email") * effect, 0, 1)
    visit = (rng.uniform(size=n) < p).astype(int)
    return pd.DataFrame({"customer_id": [f"c{i:05d}" for i in range(n)], "plan": plan, "engagement": engagement,
                         "tenure": tenure, "noise": rng.normal(size=n), "arm": arm, "visit": visit,
                         "true_uplift": effect})


EXP = Experiment("arm", "none", "visit", 1)


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return planted()


@pytest.mark.parametrize("key", list(LEARNERS))
def test_learners_recover_the_planted_ranking(table, key):
    data = experiment_data(table.drop(columns="true_uplift"), EXP)
    X = data.frame[data.features]
    learner = make_learner(key, data.numeric, data.categorical, seed=0).fit(X, data.y, data.w)
    u = learner.predict_uplift(X)
    by_plan = pd.Series(u).groupby(table["plan"].to_numpy()).mean()
    assert by_plan["gold"] > by_plan["silver"] > by_plan["basic"]
    assert np.corrcoef(u, table["true_uplift"])[0, 1] > 0.6
    p_t, p_c = learner.predict_arms(X)
    assert np.allclose(p_t - p_c, u)
    assert ((p_t >= 0) & (p_t <= 1) & (p_c >= 0) & (p_c <= 1)).all()


def test_arms_around_keeps_the_difference_inside_zero_one():
    p_t, p_c = arms_around(np.array([0.02, 0.5, 0.97]), np.array([0.3, -0.2, 0.2]), 0.5)
    assert np.allclose(p_t - p_c, [0.3, -0.2, 0.2])
    assert (p_c >= 0).all() and (p_t <= 1).all()
    assert np.allclose(0.5 * p_t[1] + 0.5 * p_c[1], 0.5)  # inside [0, 1]: the mix is the centre


def test_experiment_data_reads_arms_outcome_and_ids(table):
    data = experiment_data(table, EXP, exclude=["true_uplift"])
    assert data.id_column == "customer_id"
    assert data.treated_values == ["email"] and not data.pooled
    assert set(data.features) == {"plan", "engagement", "tenure", "noise"}
    assert data.outcome_columns == {}
    three = table.assign(arm=np.where(table.index % 3 == 0, "sms", table["arm"]))
    pooled = experiment_data(three, EXP, exclude=["true_uplift"])
    assert pooled.pooled and pooled.treated_values == ["email", "sms"]
    one = experiment_data(three, Experiment("arm", "none", "visit", 1, treated="sms"), exclude=["true_uplift"])
    assert one.treated_values == ["sms"] and one.left_out["another arm"] == int((three["arm"] == "email").sum())
    gaps = table.drop(columns="customer_id").assign(arm=lambda t: t["arm"].where(t.index >= 10))
    no_ids = experiment_data(gaps, EXP, exclude=["true_uplift"])
    assert no_ids.left_out == {"no arm": 10}
    assert no_ids.id_column is None and no_ids.frame["user_id"].iloc[0] == "11"  # row numbers of the whole table


def test_columns_recording_the_outcome_are_left_out(table):
    rng = np.random.default_rng(1)
    t = table.assign(spend=np.where(table["visit"] == 1, rng.gamma(2, 20, len(table)).round(2), 0.0),
                     bought=table["visit"] * (rng.uniform(size=len(table)) < 0.3))
    data = experiment_data(t, EXP, exclude=["true_uplift"])
    assert set(data.outcome_columns) == {"spend", "bought"}
    assert "spend" not in data.features and "bought" not in data.features and "tenure" in data.features
    assert outcome_columns(t, t["visit"].to_numpy(float), ["tenure", "plan", "noise"]) == {}


@pytest.mark.parametrize("exp, kw, error, needle", [
    (Experiment("group", "none", "visit", 1), {}, ConfigError, "no treatment column 'group'"),
    (Experiment("arm", "holdout", "visit", 1), {}, ConfigError, "control value 'holdout' is not in column 'arm'"),
    (Experiment("arm", "none", "visit", 1, treated="sms"), {}, ConfigError, "treated value 'sms'"),
    (Experiment("arm", "none", "engagement", 1), {}, DataError, "exactly two values"),
    (Experiment("arm", "none", "visit", 7), {}, ConfigError, "value 7 is not in the outcome"),
])
def test_experiment_errors(table, exp, kw, error, needle):
    with pytest.raises(error, match=needle):
        experiment_data(table, exp, **kw)


def test_a_single_arm_is_refused(table):
    with pytest.raises(ConfigError, match="single arm"):
        experiment_data(table[table["arm"] == "none"], EXP)
    with pytest.raises(ModelError, match="both arms"):
        make_learner("two_model", ["tenure"], []).fit(table[["tenure"]], table["visit"], np.ones(len(table)))


# ------------------------------------------------------------------------------------------------ training and the run
@pytest.fixture(scope="module")
def trained(table, tmp_path_factory):
    from retention_core.uplift.training import UpliftConfig, train_uplift_and_save

    out = tmp_path_factory.mktemp("uplift") / "run"
    return train_uplift_and_save(out, table.drop(columns="true_uplift"), EXP, UpliftConfig(seed=0), name="planted")


def test_the_direct_learners_beat_response_targeting_on_held_out_customers(trained):
    result, _ = trained
    board = result.leaderboard.set_index("model")
    assert set(board.index) == set(LEARNERS) | {"random", "response"}
    for key in ("dr_learner", "x_learner", "class_transformation"):  # measured: about 0.020 against 0.016
        assert board.loc[key, "qini_area"] > board.loc["response", "qini_area"] + 0.003
        assert board.loc[key, "uplift_top10"] > board.loc["response", "uplift_top10"] + 0.1
    assert board.loc[result.best, "qini_area"] == board["qini_area"].max()
    assert board.loc["random", "qini_area"] == 0
    assert len(result.validation) == 1200 and result.refit["rows"] == 4000


def test_the_saved_run_carries_the_learners_and_their_figures(trained, table):
    from retention_core.bundle import load_run
    from retention_core.uplift.scoring import score_uplift, validation_uplift

    result, path = trained
    run = load_run(path)
    assert run.task == "uplift" and set(run.info["models"]) == set(LEARNERS)
    m = run.metrics
    assert m["task"] == "uplift" and m["best_model"] == result.best and m["outcome"] == "visit = 1"
    assert set(m["models"]) == set(LEARNERS) and set(m["comparison"]) == {"random", "response"}
    assert m["models"]["dr_learner"]["qini_area"] == pytest.approx(result.figures("dr_learner")["qini_area"])
    assert m["experiment"]["control"] == "none" and m["experiment"]["treated_values"] == ["email"]
    assert len(m["deciles"]["dr_learner"]) == 10
    scores, frame = score_uplift(run, table.head(50))
    assert list(scores.columns) == ["user_id", "uplift", "p_treated", "p_control", "uplift_decile", "rank"]
    assert scores["user_id"].iloc[0] == "c00000"
    assert np.allclose(scores["uplift"], scores["p_treated"] - scores["p_control"])
    held, _ = validation_uplift(run.validation(), result.best)
    assert len(held) == 1200


# ------------------------------------------------------------------------------------------------ command line
def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "retention_core", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd or REPO_ROOT, timeout=600)


@pytest.fixture(scope="module")
def csv(table, tmp_path_factory) -> str:
    f = tmp_path_factory.mktemp("uplift_cli") / "test.csv"
    table.drop(columns=["true_uplift", "customer_id"]).to_csv(f, index=False)
    return str(f)


def test_cli_train_and_score_round_trip(csv, tmp_path):
    run = tmp_path / "run"
    p = cli("train", csv, "--out", run, "--treatment", "arm", "--control-value", "none", "--label", "visit",
            "--positive", "1", "--models", "two_model,dr_learner", "--seed", "3")
    assert p.returncode == 0, p.stderr
    assert "ids: row numbers" in p.stdout and "response" in p.stdout and "best learner:" in p.stdout
    m = json.loads((run / "metrics.json").read_text())
    assert set(m["models"]) == {"two_model", "dr_learner"}
    assert {"qini_area", "qini_coefficient"} <= set(m["comparison"]["response"])
    out = tmp_path / "scores.csv"
    p = cli("score", run, csv, "--out", out, "--top", "100", "--no-record")
    assert p.returncode == 0, p.stderr
    s = pd.read_csv(out)
    assert list(s.columns[:6]) == ["user_id", "uplift", "p_treated", "p_control", "uplift_decile", "rank"]
    assert "churn_probability" not in s.columns and (s["outcome"] == "visit = 1").all()
    assert len(s) == 100 and s["uplift"].is_monotonic_decreasing and s["rank"].tolist() == list(range(1, 101))
    assert np.allclose(s["uplift"], s["p_treated"] - s["p_control"], atol=1e-9)
    p = cli("score", run, csv, "--out", out, "--threshold", "0")
    assert p.returncode == 0 and (pd.read_csv(out)["uplift"] >= 0).all()


@pytest.mark.parametrize("args, needle", [
    (["--treatment", "group", "--control-value", "none", "--label", "visit"], "--treatment: There is no treatment"),
    (["--treatment", "arm", "--control-value", "holdout", "--label", "visit"], "--control-value: The control value"),
    (["--treatment", "arm", "--control-value", "email", "--treatment-value", "email", "--label", "visit"],
     "--treatment-value"),
    (["--treatment", "arm", "--control-value", "none", "--label", "tenure"], "--label: The outcome 'tenure' must have"),
    (["--treatment", "arm", "--label", "visit"], "--treatment needs --control-value"),
    (["--treatment", "arm", "--control-value", "none"], "--treatment needs --label"),
    (["--control-value", "none"], "go with --treatment"),
])
def test_cli_uplift_errors_exit_2_with_one_line(csv, tmp_path, args, needle):
    p = cli("train", csv, "--out", tmp_path / "run", *args)
    assert p.returncode == 2, p.stdout + p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], p.stderr


def test_cli_single_arm_exits_2(table, tmp_path):
    f = tmp_path / "one.csv"
    table[table["arm"] == "none"].drop(columns="true_uplift").to_csv(f, index=False)
    p = cli("train", f, "--out", tmp_path / "run", "--treatment", "arm", "--control-value", "none", "--label", "visit")
    assert p.returncode == 2 and "single arm" in p.stderr and len(p.stderr.strip().splitlines()) == 1


# ------------------------------------------------------------------------------------------------ Hillstrom
def test_hillstrom_pooled_arms_outcomes_left_out_and_a_positive_qini():
    from retention_core.uplift.training import UpliftConfig, train_uplift

    df = pd.read_csv(real_path("hillstrom.csv")).sample(12_000, random_state=0).reset_index(drop=True)
    result = train_uplift(df, Experiment("segment", "No E-Mail", "visit", 1),
                          UpliftConfig(learners=["two_model", "dr_learner"], refit=False))
    data = result.data
    assert data.pooled and data.treated_values == ["Mens E-Mail", "Womens E-Mail"]
    assert set(data.outcome_columns) == {"conversion", "spend"} and data.id_column is None
    assert set(data.categorical) == {"history_segment", "zip_code", "channel"}
    # the e-mails raised visits by about 6 points (pooled); the held-out customers show it
    assert 0.03 < result.leaderboard.set_index("model").loc["random", "uplift_top10"] < 0.09
    assert result.leaderboard.set_index("model").loc[result.best, "qini_area"] > 0


def test_hillstrom_has_no_id_column_and_rows_are_customers():
    from retention_core.io import read_table
    from retention_core.roles import infer_schema
    from retention_core.validation import validate

    df = read_table(real_path("hillstrom.csv"))
    schema = infer_schema(df)
    assert schema.kind == "users" and schema.roles["user_id"] is None  # zip_code (3 values) is no id
    finding = validate(df, schema).get("no_user_id")
    assert finding.severity == "warning" and "row number" in finding.message


def test_churn_commands_refuse_an_uplift_run_in_one_line(trained, csv):
    from retention_core.bundle import load_run
    from retention_core.scoring import score

    _, path = trained
    with pytest.raises(ConfigError, match="uplift learners"):
        score(load_run(path), pd.read_csv(csv))
    for args in (["serve", path, "--port", "8799"], ["monitor", path, csv]):
        p = cli(*args)
        assert p.returncode == 2 and "uplift learners" in p.stderr and len(p.stderr.strip().splitlines()) == 1


def test_an_id_named_customer_is_the_id_and_a_row_index_is_never_learned_from(table):
    t = table.drop(columns=["customer_id", "true_uplift"])
    t.insert(0, "customer", np.arange(100, 100 + len(t)))
    t.insert(1, "Unnamed: 0", np.arange(len(t)))
    data = experiment_data(t, EXP)
    assert data.id_column == "customer" and data.frame["user_id"].iloc[0] == "100"
    assert "Unnamed: 0" not in data.features and "customer" not in data.features
