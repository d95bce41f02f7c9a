"""The At-risk page (and a file scored on the Models page) shows the churn rate of the customers the model was checked
on beside the predicted churn of every customer scored: a warning beyond 5 points, a caption otherwise."""
from __future__ import annotations

import pytest

from retention_core.base_rate import base_rate_check
from retention_core.io import read_table
from retention_core.scoring import score
from ui.state import Key, widget_key

from tests.app.helpers import ROOT, no_exception, sample_run_in, texts

SAMPLE = ROOT / "assets" / "sample_events.csv.gz"
RUN = "rate run"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    with sample_run_in(tmp_path_factory, "rate", RUN) as (at, _):
        yield at


def _warnings(at) -> list[str]:
    return [w.value for w in at.warning if "predicted to churn at" in w.value]


def test_at_risk_warns_when_the_customers_scored_churn_far_from_the_validation_rate(trained):
    at = trained
    at.switch_page("pages/at_risk.py").run()
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    run = at.session_state[str(Key.RUNS)][RUN]
    model = run.best  # the page's scoring, done again by the library for the expected figures
    own, _, _ = score(run, read_table(SAMPLE), model=model)
    expected = base_rate_check(run, own, model=model)
    assert expected.beyond, expected.summary  # the sample's customers now churn far from the validation rate
    (warning,) = _warnings(at)
    assert warning == expected.warning
    assert f"{100 * expected.predicted_rate:.1f}%" in warning and f"{100 * expected.validation_rate:.1f}%" in warning
    assert "not adjusted" in warning and "p:" not in warning

    # the run's own validation users: no comparison of them with themselves
    at.radio(key=widget_key(Key.W_AT_RISK, RUN, "source")).set_value("validation").run()
    no_exception(at)
    assert not _warnings(at) and "customers the model was checked on" not in texts(at)

    # a file scored on the Models page says the same under its figures
    at.switch_page("pages/models.py").run()
    at.file_uploader(key=widget_key(Key.W_MODELS, "score", "file")).set_value(
        ("new_events.csv.gz", SAMPLE.read_bytes(), "application/gzip"))
    at.run()
    no_exception(at)
    assert _warnings(at) == [expected.warning]
