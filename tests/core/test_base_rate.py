"""The share who churn, then and now: a scoring shows the run's validation churn rate beside the mean predicted churn
of the customers scored, and warns in plain words when they differ by more than 5 points (nothing re-weighted)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.generated import generated_shop
from retention_core.base_rate import LIMIT_POINTS, ValidationChurn, base_rate_check, validation_churn
from retention_core.bundle import load_run
from retention_core.scoring import score
from retention_core.training import TrainConfig, train_and_save


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """A tiny run (logistic regression) trained on a generated log with fixed seeds."""
    g = generated_shop(250, seed=8, days=400)
    raw = g.raw
    mp = pytest.MonkeyPatch()
    mp.setenv("RETENTION_HOME", str(tmp_path_factory.mktemp("home")))
    mp.delenv("RETENTION_BUNDLE_KEY", raising=False)
    out = tmp_path_factory.mktemp("runs") / "run"
    train_and_save(out, g.dataset, g.schema, TrainConfig(models=["logreg"]), snapshot=g.cfg.as_dict(), digest="test")
    yield raw, load_run(out)
    mp.undo()


def _probabilities(mean: float, n: int = 300, seed: int = 0) -> np.ndarray:
    """``n`` churn probabilities in (0, 1) whose mean is exactly ``mean``."""
    p = np.random.default_rng(seed).uniform(0.05, 0.95, n)
    return p - p.mean() + mean


def test_the_validation_churn_rate_is_the_share_of_validation_customers_who_churned(shop):
    _, run = shop
    val = run.validation()
    v = validation_churn(run)
    assert v.rate == pytest.approx(val["churned"].mean()) and 0 < v.rate < 1
    assert v.users == len(val)
    assert v.as_of == str(pd.Timestamp(val["snapshot_date"].max()).date())


def test_a_scored_population_far_from_the_validation_rate_is_warned_about_in_plain_words(shop):
    _, run = shop
    v = validation_churn(run)
    high = base_rate_check(run, pd.DataFrame({"churn_probability": _probabilities(v.rate + 0.12)}))
    assert high.beyond and high.difference_points == pytest.approx(12.0, abs=0.05)
    assert high.predicted_rate == pytest.approx(v.rate + 0.12)
    assert high.validation_rate == pytest.approx(v.rate) and high.scored_users == 300
    w = high.warning
    assert f"{100 * (v.rate + 0.12):.1f}%" in w and f"{100 * v.rate:.1f}%" in w and "12.0 points higher than" in w
    assert "not adjusted" in w and "as of" in w
    assert not any(word in w for word in ("validation", "base rate", "churn_probability", "p:"))  # no internal names
    low = base_rate_check(run, _probabilities(v.rate - 0.08))
    assert low.beyond and "8.0 points lower" in low.warning


def test_within_five_points_the_figures_are_shown_without_a_warning(shop):
    _, run = shop
    v = validation_churn(run)
    near = base_rate_check(run, _probabilities(v.rate + 0.03))
    assert not near.beyond and near.warning is None
    assert near.difference_points == pytest.approx(3.0, abs=0.05)
    assert f"{100 * v.rate:.1f}%" in near.summary and "3.0 points higher" in near.summary
    edge = base_rate_check(run, _probabilities(v.rate - LIMIT_POINTS / 100))  # exactly 5 points: not beyond
    assert not edge.beyond


def test_a_real_scoring_is_checked_on_every_customer_scored_and_left_unweighted(shop):
    raw, run = shop
    scores, _, _ = score(run, raw)
    before = scores["churn_probability"].copy()
    check = base_rate_check(run, scores)
    assert check.scored_users == len(scores)
    assert check.predicted_rate == pytest.approx(scores["churn_probability"].mean())
    assert check.difference_points == pytest.approx(round(100 * (check.predicted_rate - check.validation_rate), 1))
    pd.testing.assert_series_equal(scores["churn_probability"], before)  # the probabilities are not re-weighted
    assert set(check.as_dict()) >= {"predicted_rate", "validation_rate", "difference_points", "warning"}


def test_a_run_without_validation_rows_shows_the_predicted_rate_alone():
    class NoRows:
        task = "churn"

        def validation(self):
            raise OSError("gone")

    check = base_rate_check(NoRows(), _probabilities(0.4, n=10))
    assert check.validation_rate is None and check.warning is None and "40.0%" in check.summary


def test_a_gap_the_model_already_had_on_its_validation_customers_is_named_as_the_models_own(shop):
    _, run = shop
    v = validation_churn(run, "logreg")
    assert v.predicted == pytest.approx(run.validation()["p:logreg"].mean())
    off = ValidationChurn(rate=0.66, users=1486, as_of="2024-10-02", predicted=0.587)
    check = base_rate_check(run, _probabilities(0.505), validation=off)
    assert check.difference_points == pytest.approx(-15.5) and check.validation_predicted == pytest.approx(0.587)
    assert "the model's own" in check.warning and "58.7%" in check.warning and "calibration" in check.warning
    assert "2 October 2024" in check.warning and "the model predicted 58.7% for them" in check.summary
    fair = ValidationChurn(rate=0.66, users=1486, as_of="2024-10-02", predicted=0.655)
    moved = base_rate_check(run, _probabilities(0.577), validation=fair)
    assert "the model's own" not in moved.warning and "may have changed since" in moved.warning


def _rows(raw: pd.DataFrame) -> list[dict]:
    """A log's rows as a request sends them: text cells, empty ones null."""
    return [{k: None if pd.isna(v) else str(v) for k, v in r.items()} for r in raw.to_dict("records")]


def test_the_service_answers_the_same_check_over_the_customers_of_a_request(shop):
    from retention_core.serve.schemas import ScoreAnswer, ScoreRequest
    from retention_core.serve.scorer import Scorer

    raw, run = shop
    scorer = Scorer(run.path)
    rows = _rows(raw)
    end = str(pd.Timestamp(raw["event_time"].max()).date())
    answer = scorer.score(ScoreRequest(events=rows, as_of=end))
    ScoreAnswer.model_validate(answer)
    check = answer["churn_check"]
    p = [s["churn_probability"] for s in answer["scores"]]
    assert check["scored_users"] == len(p) >= 30
    assert check["predicted_rate"] == pytest.approx(np.mean(p))
    assert check["validation_rate"] == pytest.approx(validation_churn(run).rate)
    expected = base_rate_check(run, np.asarray(p), model=scorer.key)
    assert check["warning"] == expected.warning and check["summary"] == expected.summary
    few = _rows(raw[raw["customer_id"].isin(raw["customer_id"].unique()[:3])])
    small = scorer.score(ScoreRequest(events=few, as_of=end))["churn_check"]
    assert small["warning"] is None and "Too few customers scored" in small["summary"]
