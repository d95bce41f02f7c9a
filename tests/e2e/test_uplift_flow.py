"""Uplift in a real browser, in one Streamlit session: upload an e-mail experiment, train uplift learners on the
Train page (in the background, as an analyst does), read the Qini chart, then rank the customers by uplift on the
At-risk page and download the persuadables.

The experiment is a sample of Hillstrom's (``../shared/data/hillstrom.csv``) when present, else a generated
test with a planted effect (the one the unit tests use). Screenshots go to test-artifacts/screenshots/uplift_*.png.
"""
from __future__ import annotations

import io

import pandas as pd
import pytest

from tests.conftest import DATA_DIR
from tests.core.test_uplift import planted
from tests.e2e.test_browser_flow import go, no_exception, segment, settle, shot

expect = pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright Python package "
                             "(pip install -r requirements-dev.txt)").expect

pytestmark = pytest.mark.e2e
TRAIN_TIMEOUT_MS = 420_000
HILLSTROM_ROWS = 16_000


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    """The file to upload: 16,000 of Hillstrom's customers (every learner trains in a minute or two on 2 cores), else
    the generated test; with its treatment column, control value and outcome."""
    folder = tmp_path_factory.mktemp("uplift-e2e")
    src = DATA_DIR / "hillstrom.csv"
    if src.is_file():
        path = folder / "hillstrom_16k.csv"
        pd.read_csv(src).sample(HILLSTROM_ROWS, random_state=0).to_csv(path, index=False)
        return path, "segment", "No E-Mail", "visit"
    path = folder / "email_test.csv"
    planted(4000, seed=5).drop(columns=["true_uplift", "customer_id"]).to_csv(path, index=False)
    return path, "arm", "none", "visit"


def test_uplift_train_qini_and_at_risk(app_page, experiment, screenshot):
    page = app_page
    path, treatment, control, outcome = experiment
    page.goto(page.app_server.url)
    page.get_by_text("What we understood").wait_for(timeout=90_000)
    page.get_by_test_id("stRadio").filter(has_text="Data source").get_by_text("Upload a file").click()
    page.get_by_text("Upload a file to begin").wait_for()
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(path))
    page.get_by_text(path.name).first.wait_for(timeout=60_000)
    settle(page)
    shot(page, screenshot, "uplift_01_data")

    go(page, "Train")
    page.get_by_text("Uplift models (treatment and control)").first.wait_for()
    page.get_by_role("button", name="Train uplift models").wait_for()
    assert page.get_by_role("combobox", name="Treatment column").first.input_value() == treatment
    assert page.get_by_role("combobox", name="Control group (not contacted)").first.input_value() == control
    assert page.get_by_role("combobox", name="Outcome").first.input_value() == outcome
    no_exception(page, "Train page (uplift form)")
    shot(page, screenshot, "uplift_02_train_form")
    page.get_by_role("button", name="Train uplift models").click()
    page.get_by_text("Uplift learners of").first.wait_for(timeout=TRAIN_TIMEOUT_MS)
    settle(page)
    no_exception(page, "Train page (uplift results)")
    chart = page.get_by_test_id("stPlotlyChart").first
    expect(chart).to_contain_text("Random targeting", timeout=60_000)
    expect(chart).to_contain_text("Response targeting")
    shot(page, screenshot, "uplift_03_train_results")

    go(page, "At-risk")
    page.get_by_text("Persuadables (uplift > 0)").first.wait_for(timeout=60_000)
    no_exception(page, "At-risk page (uplift)")
    shot(page, screenshot, "uplift_04_at_risk")
    segment(page, "Rank by", "Response if contacted")
    settle(page)
    no_exception(page, "At-risk page (ranked by response)")
    with page.expect_download() as dl:
        page.get_by_role("button", name="Download the list (CSV)").click()
    got = pd.read_csv(io.BytesIO(open(dl.value.path(), "rb").read()))
    assert list(got.columns[:4]) == ["user_id", "uplift", "p_treated", "p_control"]
    assert "churn_probability" not in got.columns and got["p_treated"].is_monotonic_decreasing
