"""The scoring history as the monitor reads it: the service's one-user recordings of one run, model and as-of date
are one scoring (its distinct customers, each once, ranked again); a recorded scoring can be deleted, whole, under
the writers' lock, and an unknown id is refused."""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from retention_core import bundle, monitor
from retention_core.errors import DataError
from retention_core.monitor import store


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """The monitoring demo's run (trained on the sample's early months) and its scores as of 2024-08-02."""
    from retention_core.io import read_table
    from retention_core.scoring import score

    os.environ["RETENTION_HOME"] = str(tmp_path_factory.getbasetemp() / "home")
    from assets.generator import sample_path

    ws = tmp_path_factory.mktemp("ws")
    events = read_table(sample_path())
    monitor.demo_on_sample(ws, events=events, scorings=1)
    run = bundle.load_run(bundle.run_path(monitor.demo.DEMO_RUN, ws))
    scores, frame, _ = score(run, events, as_of="2024-08-02")
    return run, events, scores, frame


def _service(run, scores, frame, rows, ws, as_of="2024-08-02", p=None):
    """One service request scoring the users at ``rows`` (as the service records: user id, probability, decile)."""
    s = scores.iloc[rows][["user_id", "churn_probability", "risk_decile"]].reset_index(drop=True)
    if p is not None:
        s["churn_probability"] = p
    return monitor.record_scoring(run, s, as_of=as_of, frame=frame.iloc[rows].reset_index(drop=True),
                                  source="service", workspace=ws)


def test_the_services_one_user_recordings_of_a_day_are_one_scoring(shop, tmp_path):
    run, events, scores, frame = shop
    ws = tmp_path / "ws"
    batch = monitor.record_scoring(run, (scores, frame), source="cli", data_name="all.csv", workspace=ws)
    firsts = [_service(run, scores, frame, [i], ws) for i in range(40)]
    _service(run, scores, frame, [3], ws, p=0.987)  # the same customer again later that day: the latest counts
    _service(run, scores, frame, [0, 1], ws, as_of="2024-06-03")  # another date: another scoring
    h = monitor.scorings(run, workspace=ws)
    assert len(h) == 3, h[["scoring_id", "as_of", "source", "users"]]
    day = h[(h["source"] == "service") & (h["as_of"] == "2024-08-02")].iloc[0]
    assert day["scoring_id"] == firsts[0].scoring_id and day["recordings"] == 41 and day["users"] == 40
    assert day["data_name"] == "41 service requests"
    want = scores["churn_probability"].iloc[:40].to_numpy().copy()
    want[3] = 0.987
    assert day["mean_probability"] == pytest.approx(want.mean(), abs=1e-12)
    assert h.set_index("scoring_id").loc[batch.scoring_id, "users"] == len(scores)  # not grouped: not the service
    users = monitor.scores_of([day["scoring_id"]], workspace=ws)
    assert len(users) == 40 and users["user_id"].is_unique and (users["scoring_id"] == day["scoring_id"]).all()
    assert users["rank"].tolist() == list(range(1, 41)) and users["churn_probability"].is_monotonic_decreasing
    got = users.set_index("user_id")
    assert got.loc[scores["user_id"].iloc[3], "churn_probability"] == 0.987
    assert set(got.columns) >= {"country", "channel", "device"} and got["country"].notna().all()
    # the monitor sees one scoring of 40 customers, as of that day, and weighs it with the others by its users
    report = monitor.monitor_report(run, events, workspace=ws)
    r = report.scorings.set_index("scoring_id").loc[day["scoring_id"]]
    assert r["users"] == 40 and r["observed"] == 40 and r["status"] == "observed"
    assert "only 1 users" not in report.verdict.text and "too few" not in report.verdict.text
    assert "weighed over" in report.verdict.text


def test_a_one_user_service_scoring_does_not_decide_the_verdict(shop, tmp_path):
    """The latest recording is a single customer scored by the service (the old verdict read only the latest: "watch:
    only 1 users observed"); weighed by users, the large scoring recorded before decides."""
    run, events, scores, frame = shop
    ws = tmp_path / "ws"
    monitor.record_scoring(run, (scores, frame), source="cli", workspace=ws)
    _service(run, scores, frame, [int(scores["churn_probability"].argmin())], ws, as_of="2024-09-01")
    report = monitor.monitor_report(run, events, workspace=ws)
    assert report.scorings["observed"].tolist() == [len(scores), 1]
    assert "too few" not in report.verdict.text and "only 1 users observed" not in report.verdict.text, \
        report.verdict.text
    assert f"weighed over 2 scorings ({len(scores) + 1:,} users observed)" in report.verdict.text


def _counts(ws, ids: list[str]) -> tuple[int, int, int]:
    import duckdb

    con = duckdb.connect(str(store.history_path(ws)), read_only=True)
    try:
        marks = ", ".join("?" * len(ids))
        return tuple(con.execute(f"SELECT count(*) FROM {t} WHERE scoring_id IN ({marks})", ids).fetchone()[0]
                     for t in ("scorings", "scores", "score_segments"))
    finally:
        con.close()


def test_a_recorded_scoring_is_deleted_whole_and_an_unknown_id_is_refused(shop, tmp_path):
    run, _, scores, frame = shop
    ws = tmp_path / "ws"
    keep = monitor.record_scoring(run, (scores, frame), source="cli", workspace=ws)
    tried = monitor.record_scoring(run, (scores.iloc[:500], frame.iloc[:500]), as_of="2024-07-01", source="app",
                                   workspace=ws)
    day = [_service(run, scores, frame, [i], ws).scoring_id for i in range(5)]
    assert _counts(ws, [tried.scoring_id])[1] == 500
    gone = monitor.delete_scoring(tried.scoring_id, run, workspace=ws)
    assert gone["scoring_id"] == tried.scoring_id and gone["as_of"] == "2024-07-01" and gone["users"] == 500
    assert _counts(ws, [tried.scoring_id]) == (0, 0, 0)  # its users and their segments too
    left = monitor.scorings(run, workspace=ws)
    assert set(left["scoring_id"]) == {keep.scoring_id, day[0]}
    assert _counts(ws, [keep.scoring_id])[1] == len(scores)  # the others untouched
    # the service's scoring of a day goes as a whole
    monitor.delete_scoring(day[0], workspace=ws)
    assert _counts(ws, day) == (0, 0, 0)
    assert monitor.scorings(run, workspace=ws)["scoring_id"].tolist() == [keep.scoring_id]
    # unknown ids, and an id of another run's scoring, are refused and delete nothing
    with pytest.raises(DataError, match=r"No recorded scoring of run 'monitor-demo' has the id 'nope'.*--list"):
        monitor.delete_scoring("nope", run, workspace=ws)
    with pytest.raises(DataError, match="has the id"):
        monitor.delete_scoring(keep.scoring_id, "another-run", workspace=ws)
    with pytest.raises(DataError, match="has the id"):
        monitor.delete_scoring(tried.scoring_id, workspace=ws)  # deleted already
    assert monitor.scorings(workspace=ws)["scoring_id"].tolist() == [keep.scoring_id]


def test_deleting_waits_for_the_writers_lock(shop, tmp_path, monkeypatch):
    """A deletion takes the same lock as a scoring being written: while another writer holds it, the deletion waits
    and, past the history's timeout, gives up with a clear message, deleting nothing."""
    run, _, scores, frame = shop
    ws = tmp_path / "ws"
    rec = monitor.record_scoring(run, (scores, frame), source="cli", workspace=ws)
    monkeypatch.setenv("RETENTION_HISTORY_TIMEOUT", "0.2")
    path = store.history_path(ws)
    with store._file_lock(path):  # another writer at work (flock: a second open of the lock file waits)
        with pytest.raises(DataError, match="is busy"):
            store.delete_scoring(rec.scoring_id, workspace=ws)
    assert monitor.scorings(workspace=ws)["scoring_id"].tolist() == [rec.scoring_id]
    monitor.delete_scoring(rec.scoring_id, workspace=ws)
    assert not len(monitor.scorings(workspace=ws))


def test_a_scoring_whose_users_are_not_in_the_data_is_reported_not_crashed(shop, tmp_path):
    """A customer scored by the service who bought nothing in the lookback before the recorded as-of date has no
    outcome there: that scoring is "not in data", beside the others (segments included)."""
    run, events, scores, frame = shop
    ws = tmp_path / "ws"
    monitor.record_scoring(run, (scores, frame), source="cli", workspace=ws)
    gone = int(frame["recency_days"].to_numpy().argmax())  # no purchase in the 365 days before 2024-09-01
    assert frame["recency_days"].iloc[gone] > 365 - 30
    _service(run, scores, frame, [gone], ws, as_of="2024-09-01")
    report = monitor.monitor_report(run, events, workspace=ws)
    assert report.scorings["status"].tolist() == ["observed", "not in data"]


def test_grouping_leaves_other_sources_and_models_apart(shop, tmp_path):
    run, _, scores, frame = shop
    ws = tmp_path / "ws"
    for i in range(3):  # the app scoring one user three times the same day: three scorings, as recorded
        monitor.record_scoring(run, (scores.iloc[[i]], frame.iloc[[i]]), source="app", workspace=ws)
    _service(run, scores, frame, [0], ws)
    h = monitor.scorings(run, workspace=ws)
    assert h["source"].tolist().count("app") == 3 and h["recordings"].eq(1).all()
    users = monitor.scores_of(h["scoring_id"].tolist(), workspace=ws)
    assert users.groupby("scoring_id").size().eq(1).all()
    assert np.isfinite(h["mean_probability"]).all()
