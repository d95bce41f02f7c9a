"""`score` prints the churn rate of the customers the model was checked on beside the mean predicted churn of every
customer scored, and a warning line when they differ by more than 5 points."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retention_core.base_rate import validation_churn
from retention_core.bundle import load_run

from tests.core.test_cli import cli


@pytest.fixture(scope="module")
def table_run(tmp_path_factory):
    """A user table (churn driven by complaints and tenure, fixed seed), a logistic regression trained on it, and the
    riskiest customers of the table alone (those with many complaints)."""
    tmp = tmp_path_factory.mktemp("rate")
    rng = np.random.default_rng(3)
    n = 800
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    p = 1 / (1 + np.exp(-(0.2 + 1.5 * x1 - 0.8 * x2)))
    df = pd.DataFrame({"customer": [f"c{i}" for i in range(n)], "tenure": (24 + 10 * x2).round(1),
                       "complaints": (3 + 2 * x1).round(1), "churn": np.where(rng.uniform(size=n) < p, "Yes", "No")})
    df.to_csv(tmp / "table.csv", index=False)
    df[df["complaints"] > 4].to_csv(tmp / "risky.csv", index=False)
    rc, out, err = cli("train", tmp / "table.csv", "--out", tmp / "run", "--label", "churn", "--positive", "Yes",
                       "--models", "logreg")
    assert rc == 0, err
    return tmp


def _line(out: str, start: str) -> list[str]:
    return [ln for ln in out.splitlines() if ln.startswith(start)]


def test_score_prints_both_churn_rates_and_no_warning_on_the_population_it_learned_from(table_run):
    rc, out, err = cli("score", table_run / "run", table_run / "table.csv", "--out", table_run / "all.csv",
                       "--top", 10, "--no-record")
    assert rc == 0, err
    (churn,) = _line(out, "churn: ")
    rate = f"{100 * validation_churn(load_run(table_run / 'run')).rate:.1f}%"
    assert "800 customers scored" in churn and rate in churn and "checked on" in churn  # all scored, not the top 10
    assert not _line(out, "warning: ")


def test_score_warns_when_the_customers_scored_churn_far_from_the_validation_rate(table_run):
    rc, out, err = cli("score", table_run / "run", table_run / "risky.csv", "--out", table_run / "risky_s.csv",
                       "--no-record")
    assert rc == 0, err
    (churn,) = _line(out, "churn: ")
    (warning,) = _line(out, "warning: ")
    scored = pd.read_csv(table_run / "risky_s.csv")
    predicted = f"{100 * scored['churn_probability'].mean():.1f}%"
    assert predicted in churn and predicted in warning and "points higher" in warning
    assert "not adjusted" in warning and "Traceback" not in err
