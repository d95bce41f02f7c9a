"""Cohort retention on a tiny hand-made log with known answers, and the heatmap built from it."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from retention_core import events, plots, roles, segments
from retention_core.errors import ConfigError


def _ev(rows):
    df = pd.DataFrame(rows, columns=["user_id", "ts", "is_purchase"])
    df["ts"] = pd.to_datetime(df["ts"], format="mixed")
    return df


@pytest.fixture
def log() -> pd.DataFrame:
    # January cohort: A, B, C. February cohort: D. E only browses and is in no cohort.
    return _ev([
        ("A", "2024-01-05 10:00", True), ("A", "2024-01-20", True),  # two purchases in month 0 count once
        ("A", "2024-02-03", True), ("A", "2024-03-30 23:59", True),
        ("B", "2024-01-31 23:00", True), ("B", "2024-03-01", True),
        ("C", "2024-01-10", True), ("C", "2024-02-10", False),  # a view is not a return purchase
        ("D", "2024-02-14", True), ("D", "2024-03-02", True),
        ("E", "2024-01-02", False), ("E", "2024-03-15", False),
    ])


def test_monthly_matrix_has_the_known_answers(log):
    m = segments.cohort_retention(log, max_periods=3)
    assert list(m.columns) == ["cohort_size", 0, 1, 2, 3]
    assert list(m.index) == [pd.Timestamp("2024-01-01"), pd.Timestamp("2024-02-01")]
    assert m.index.name == "cohort"
    assert m["cohort_size"].tolist() == [3, 1]
    jan, feb = m.iloc[0], m.iloc[1]
    assert jan[0] == 1.0 and jan[1] == pytest.approx(1 / 3) and jan[2] == pytest.approx(2 / 3)
    assert np.isnan(jan[3])  # April is after the end of the data: unknown, not zero
    assert feb[0] == 1.0 and feb[1] == 1.0
    assert np.isnan(feb[2]) and np.isnan(feb[3])
    assert m.attrs["period"] == "M"


def test_observed_zero_stays_zero(log):
    more = pd.concat([log, _ev([("E", "2024-05-01", False)])], ignore_index=True)  # data now ends in May
    m = segments.cohort_retention(more, max_periods=4)
    assert m.loc["2024-02-01", 2] == 0.0  # D did not buy in April, which is observed
    assert m.loc["2024-01-01", 3] == 0.0
    assert np.isnan(m.loc["2024-02-01", 4])


def test_quarter_and_week_periods(log):
    q = segments.cohort_retention(log, period="Q", max_periods=2)
    assert q["cohort_size"].tolist() == [4]
    assert q.iloc[0][0] == 1.0 and np.isnan(q.iloc[0][1])
    w = segments.cohort_retention(log, period="W", max_periods=2)
    assert w["cohort_size"].sum() == 4
    assert (w[0] == 1.0).all()
    assert all(ts.dayofweek == 0 for ts in w.index)  # weeks start on Monday


def test_max_cohorts_and_bad_settings(log):
    assert len(segments.cohort_retention(log, max_cohorts=1)) == 1
    with pytest.raises(ConfigError):
        segments.cohort_retention(log, period="D")
    with pytest.raises(ConfigError):
        segments.cohort_retention(log, max_periods=-1)
    with pytest.raises(ConfigError):
        segments.cohort_retention(log.drop(columns=["is_purchase"]))


def test_no_purchases_gives_an_empty_matrix(log):
    m = segments.cohort_retention(log.assign(is_purchase=False))
    assert m.empty and "cohort_size" in m.columns
    assert isinstance(plots.cohort_heatmap(m), go.Figure)


def test_from_a_raw_log_through_canonical_events():
    raw = pd.DataFrame({
        "customer": ["A", "A", "A", "B", "B", "C"] * 5,
        "date": ["2024-01-03", "2024-02-05", "2024-02-06", "2024-01-10", "2024-03-11", "2024-02-20"] * 5,
        "type": ["purchase", "purchase", "view", "purchase", "purchase", "purchase"] * 5,
    })
    raw["customer"] = raw["customer"] + raw.index.map(lambda i: str(i // 6))
    schema = roles.infer_schema(raw, {"user_id": "customer", "timestamp": "date", "event_type": "type",
                                      "kind": "events"})
    ev = events.canonical_events(raw, schema)
    m = segments.cohort_retention(ev, max_periods=2)
    assert m["cohort_size"].tolist() == [10, 5]
    assert m.loc["2024-01-01", 1] == pytest.approx(0.5)  # the A users came back in February
    assert m.loc["2024-01-01", 2] == pytest.approx(0.5)  # the B users in March


def test_heatmap_shows_percentages_and_cohort_sizes(log):
    m = segments.cohort_retention(log, max_periods=3)
    fig = plots.cohort_heatmap(m)
    assert isinstance(fig, go.Figure)
    hm = fig.data[0]
    assert hm.type == "heatmap"
    assert list(hm.y) == ["2024-01  ·  3 users  ◂ log starts", "2024-02  ·  1 users"]
    assert list(hm.x) == ["Month 0", "Month 1", "Month 2", "Month 3"]
    assert hm.text[0][0] == "100%" and hm.text[0][1] == "33.3%" and hm.text[1][3] == ""
    assert hm.zmin == 0 and hm.zmax == pytest.approx(100.0)  # fitted to months 1+ (here Feb cohort's 100%)
    assert fig.layout.yaxis.autorange == "reversed"


def test_label_balance_and_histogram_figures():
    summary = pd.DataFrame({"snapshot_date": pd.to_datetime(["2024-01-01", "2024-02-01"]), "users": [10, 12],
                            "labelled": [10, 8], "churned": [4.0, 2.0], "churn_rate": [0.4, 0.25]})
    fig = plots.label_balance(summary)
    names = [t.name for t in fig.data]
    assert names == ["Retained", "Churned", "Not labelled yet"]
    assert list(fig.data[0].y) == [6, 6] and list(fig.data[2].y) == [0, 4]
    frame = pd.DataFrame({"churned": [0, 1, 1, np.nan] * 50, "x": np.arange(200.0), "plan": ["a", "b"] * 100})
    h = plots.feature_histogram(frame, "x")
    assert [t.name.split(" (")[0] for t in h.data] == ["Retained", "Churned", "Not labelled yet"]
    assert "not shown" in h.layout.xaxis.title.text
    c = plots.feature_histogram(frame, "plan")
    assert c.data[0].type == "bar"
    with pytest.raises(KeyError):
        plots.feature_histogram(frame, "missing")


def test_heatmap_marks_the_partial_last_period_and_the_customers_already_there(log):
    """The log ends on 30 March (March is partial) and begins in January (the January cohort also holds customers who
    bought before the log): the cells of March and the January row are marked, and a note under the chart says why."""
    m = segments.cohort_retention(log, max_periods=3)
    assert m.attrs["partial_last"] is True and m.attrs["log_end"] == pd.Timestamp("2024-03-30")
    assert m.attrs["earlier_customers_cohort"] == pd.Timestamp("2024-01-01")
    hm = plots.cohort_heatmap(m).data[0]
    assert hm.text[0][2] == "66.7%" + plots.PARTIAL_MARK  # January cohort, two months later: March
    assert hm.text[1][1] == "100%" + plots.PARTIAL_MARK  # February cohort, one month later: March
    assert not hm.text[0][1].endswith(plots.PARTIAL_MARK) and hm.text[0][3] == ""
    assert hm.y[0].endswith(plots.EARLIER_MARK) and plots.EARLIER_MARK not in hm.y[1]
    notes = " ".join(a.text for a in plots.cohort_heatmap(m).layout.annotations)
    assert "partial month" in notes and "30 Mar 2024" in notes and "bought before" in notes
    # a log that ends on the last day of its month has no partial period
    full = segments.cohort_retention(pd.concat([log, _ev([("A", "2024-03-31 12:00", False)])]), max_periods=3)
    assert full.attrs["partial_last"] is False
    assert not any(str(t).endswith(plots.PARTIAL_MARK) for row in plots.cohort_heatmap(full).data[0].text for t in row)
    # a cohort that starts after the log began holds only new customers
    later = segments.cohort_retention(log[log["user_id"].isin(["D", "E"])], max_periods=3)  # log starts in Jan
    assert later.attrs["earlier_customers_cohort"] is None
