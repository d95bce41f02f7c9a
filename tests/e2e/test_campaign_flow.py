"""A retention campaign in a real browser, in one Streamlit session, on the built-in sample log (2023-01-01 to
2024-12-30, 2,000 customers): train, score as of 2024-10-01, read the customers by lifecycle stage and risk, pick the
audience, hold out a control group and download the list (which records the scoring), download the contacted only
for a campaign tool, then read the campaign's results on the Monitor page once its 60-day window has passed in the
loaded log.

Screenshots go to test-artifacts/screenshots/campaign_*.png.
"""
from __future__ import annotations

import re

import pytest

from tests.e2e.test_browser_flow import (WORK_TIMEOUT_MS, _download_csv, _train_fast_on_the_sample, go, main_area,
                                         no_exception, segment, settle, shot, widget)

pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright Python package "
                    "(pip install -r requirements-dev.txt)")

pytestmark = pytest.mark.e2e
AS_OF = "2024/10/01"
SHARE, WINDOW = 30, 60


def _set_number(page, label: str, value: int) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Enter")
    settle(page, timeout_s=WORK_TIMEOUT_MS / 1000)


def test_stage_audience_control_group_and_campaign_results(app_page, screenshot, timings, tmp_path):
    page = app_page
    _train_fast_on_the_sample(page, timings)

    # At-risk, as of a day whose campaign window the log covers
    go(page, "At-risk")
    page.get_by_text(re.compile(r"[\d,]+ users scored; as of")).wait_for(timeout=WORK_TIMEOUT_MS)
    # the date field is a group of segments (year, month, day): type into the first, the focus moves on by itself
    day = page.get_by_label("Score as of", exact=True)
    day.get_by_role("spinbutton").first.click()
    page.keyboard.type(AS_OF.replace("/", ""))
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")
    page.get_by_text(re.compile(r"[\d,]+ users scored; as of 2024-10-01")).wait_for(timeout=WORK_TIMEOUT_MS)
    settle(page, timeout_s=WORK_TIMEOUT_MS / 1000)

    # lifecycle stages: the rules, a chart of customers by stage and risk, and the audiences they make
    assert main_area(page).get_by_text(re.compile(r"lifecycle stage", re.I)).count() >= 1
    assert page.get_by_test_id("stPlotlyChart").count() >= 1
    saveable = main_area(page).get_by_text(re.compile(r"^Can still be saved \([\d,]+\)$"))
    saveable.wait_for(timeout=WORK_TIMEOUT_MS)
    main_area(page).get_by_text(re.compile(r"^Win-back \(lapsed\) \([\d,]+\)$")).wait_for()
    n_saveable = int(re.search(r"\(([\d,]+)\)", saveable.inner_text()).group(1).replace(",", ""))
    assert n_saveable > 0
    # everyone who can still be saved: the threshold at 0
    segment(page, "Choose users", "Above the threshold")
    slider = widget(page, "stSlider", "Churn probability at least").get_by_role("slider")
    slider.focus()
    slider.press("Home")
    page.get_by_test_id("stMetricValue").first.filter(has_text=f"{n_saveable:,}").wait_for(timeout=WORK_TIMEOUT_MS)
    settle(page, timeout_s=WORK_TIMEOUT_MS / 1000)

    # a control group of 30%, judged on the 60 days after the scoring date
    page.get_by_text("Hold out a control group").click()
    page.get_by_label("Control group (% of the list)", exact=True).wait_for(timeout=WORK_TIMEOUT_MS)
    _set_number(page, "Control group (% of the list)", SHARE)
    _set_number(page, "Campaign window (days)", WINDOW)
    note = main_area(page).get_by_text(re.compile(r"control", re.I)).filter(has_text="not contacted")
    assert note.count() >= 1
    no_exception(page, "At-risk page (control group)")
    shot(page, screenshot, "campaign_01_at_risk_control_group")
    df = _download_csv(page, tmp_path)
    page.get_by_text(re.compile(r"Recorded in the scoring history")).wait_for(timeout=WORK_TIMEOUT_MS)
    assert len(df) == n_saveable
    assert set(df["group"]) == {"contact", "control"}
    control = int((df["group"] == "control").sum())
    assert abs(control - round(SHARE / 100 * len(df))) <= 1, (control, len(df))
    assert "lapsed" not in set(df["stage"]) and set(df["stage"]) <= {"new", "active", "slipping"}
    assert (df["churn_probability"] == df["churn_probability"].round(4)).all()

    # the same list for a campaign tool: the contacted only
    page.get_by_text("For a campaign tool: the contacted only (control rows left out)").click()
    settle(page, timeout_s=WORK_TIMEOUT_MS / 1000)
    sent = _download_csv(page, tmp_path, "Download the contacted only (CSV)")
    assert len(sent) == len(df) - control
    assert set(sent["user_id"]) == set(df.loc[df["group"] == "contact", "user_id"])

    # Monitor: the campaign's results come first, with the two groups and the uplift's interval
    go(page, "Monitor")
    page.get_by_text(re.compile(r"1 scoring recorded, as of 2024-10-01")).wait_for(timeout=WORK_TIMEOUT_MS)
    tab = page.get_by_role("tab", name="Campaign results")
    tab.wait_for(timeout=WORK_TIMEOUT_MS)
    assert page.get_by_role("tab").first.inner_text().strip() == "Campaign results"
    settle(page, timeout_s=WORK_TIMEOUT_MS / 1000)
    panel = page.get_by_role("tabpanel").first
    panel.get_by_label("Cost per contact", exact=True).wait_for(timeout=WORK_TIMEOUT_MS)
    cards = panel.get_by_test_id("stMetric")
    assert cards.count() >= 3
    text = panel.inner_text()
    assert re.search(r"contact", text, re.I) and re.search(r"control", text, re.I)
    assert re.search(r"95%", text), text[:600]
    assert panel.get_by_test_id("stPlotlyChart").count() >= 2
    no_exception(page, "Monitor page (campaign results)")
    shot(page, screenshot, "campaign_02_monitor_results")
