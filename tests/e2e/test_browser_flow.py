"""The whole product in a real browser, the way an analyst uses it, in one Streamlit session.

Open the app, upload an order export (one formula-like user id in it), confirm the detected column roles, build the
dataset, train a fast model and a Keras model, move the threshold on Evaluate, look at Explain and Segments, download
the at-risk list and check it (the download records its scoring), score the same file with the saved run on Models,
and find that scoring (recorded once) on the Monitor page. The export is a slice of the real CDNOW log when
``../shared/data`` is present, otherwise a shop made by the sample generator in ``assets/``, written in CDNOW's
layout: the whole flow runs on a fresh clone.
Neither has a product column, so the At-risk page says offers need one; the last step goes back to the built-in sample
(which has products), trains a fast run on it and downloads a campaign ranked by expected net value with
``offer_1..offer_3``. Every page is screenshotted to test-artifacts/screenshots/ and must show no exception box.

The steps are ordered tests sharing one browser tab; when one fails or is skipped (or cannot set up), the later ones
are skipped (they need its result).
"""
from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from assets.generator import generate_events
from bench.browser import main_area, sidebar_link, wait_settled
from retention_core.recommend import NO_PRODUCT
from tests.conftest import DATA_DIR

_sync_api = pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright Python package "
                                "(pip install -r requirements-dev.txt)")
expect, PlaywrightTimeoutError = _sync_api.expect, _sync_api.TimeoutError

pytestmark = pytest.mark.e2e

RUN = "e2e run"
SAMPLE_RUN = "e2e sample run"
FORMULA_ID = "=1+1"
N_CUSTOMERS = 8000
GENERATED_CUSTOMERS = 3000
TRAIN_TIMEOUT_MS = 240_000
WORK_TIMEOUT_MS = 60_000
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

_flow: dict = {}


def _not_passed(item: pytest.Item) -> str | None:
    """Why a step did not pass (None when it did): failed, skipped, or stopped before its body ran."""
    rep = getattr(item, "rep_call", None)
    if rep is None:
        return "did not run (skipped or failed while setting up)"
    return None if rep.passed else ("skipped" if rep.skipped else "failed")


@pytest.fixture(autouse=True)
def _in_order(request):
    """Skip a step when an earlier one did not pass: each step starts where the previous one left the session.

    The previous step is judged here, before this one starts, rather than after it: a module-scoped fixture that
    skips or fails (the file to upload) does so before a function-scoped fixture like this one is set up."""
    items = request.session.items
    i = items.index(request.node)
    prev = items[i - 1] if i > 0 and items[i - 1].module is request.node.module else None
    why = _not_passed(prev) if prev is not None else None
    if why and not _flow.get("blocked"):
        _flow["blocked"] = f"{prev.name}: {why}"
    if _flow.get("blocked"):
        pytest.skip(f"an earlier step did not complete ({_flow['blocked']}), so this one cannot start")
    yield


def _cdnow_orders(src: Path) -> pd.DataFrame:
    """The first customers of the real CDNOW log, as read (customer id and YYYYMMDD date as text)."""
    df = pd.read_csv(src, sep=r"\s+", dtype={"customer_id": str, "date": str})
    keep = sorted(df["customer_id"].unique())[:N_CUSTOMERS]
    return df[df["customer_id"].isin(keep)].copy()


def _generated_orders() -> pd.DataFrame:
    """A shop made by the sample generator (other customers than the built-in sample), one row per order in CDNOW's
    layout: ``customer_id, date (YYYYMMDD), number_of_cds (units), dollar_value (order value)``."""
    ev = generate_events(GENERATED_CUSTOMERS, start="2022-03-01", days=700, seed=21)
    buys = ev[ev["event_type"] == "purchase"].assign(
        value=lambda d: d["quantity"].astype("float64") * d["unit_price"].astype("float64"))
    orders = buys.groupby("order_id", observed=True).agg(
        customer_id=("customer_id", "first"), time=("event_time", "first"), number_of_cds=("quantity", "sum"),
        dollar_value=("value", "sum"))
    orders = orders.sort_values(["time", "customer_id"], kind="stable").reset_index(drop=True)
    return pd.DataFrame({"customer_id": orders["customer_id"].astype(str),
                         "date": orders["time"].dt.strftime("%Y%m%d"),
                         "number_of_cds": orders["number_of_cds"].astype("int64"),
                         "dollar_value": orders["dollar_value"].round(2)})


@pytest.fixture(scope="module")
def events_csv(tmp_path_factory) -> Path:
    """The order export to upload, as a comma CSV: the first customers of CDNOW when the real data is present, else
    the generated shop (same columns); the busiest buyer of the last 120 days gets the formula-like id ``=1+1``."""
    src = DATA_DIR / "cdnow_master.txt"
    df, name = ((_cdnow_orders(src), "cdnow_first_customers.csv") if src.is_file()
                else (_generated_orders(), "generated_shop_orders.csv"))
    last = pd.to_datetime(df["date"], format="%Y%m%d").max()
    recent = df.loc[df["date"] >= f"{last - pd.Timedelta(days=120):%Y%m%d}", "customer_id"].value_counts()
    df.loc[df["customer_id"] == recent.index[0], "customer_id"] = FORMULA_ID
    path = tmp_path_factory.mktemp("e2e-data") / name
    df.to_csv(path, index=False)
    print(f"\nthe browser flow uploads {name}: {len(df):,} orders of {df['customer_id'].nunique():,} customers")
    return path


# ------------------------------------------------------------------------------------------------ helpers
def settle(page, quiet_s: float = 0.6, timeout_s: float = 60) -> None:
    """Wait until the app has finished its rerun: no stale elements and no 'running' indicator for a short while."""
    wait_settled(page, quiet_s=quiet_s, timeout_s=timeout_s)


def no_exception(page, where: str) -> None:
    """No Streamlit exception box and no error alert on the page."""
    exc = page.get_by_test_id("stException")
    assert exc.count() == 0, f"{where}: exception shown: {exc.first.inner_text()[:2000]}"
    err = page.get_by_test_id("stAlertContentError")
    assert err.count() == 0, f"{where}: error shown: {err.first.inner_text()[:2000]}"


def go(page, name: str) -> None:
    """Move to a page the way a person does: the sidebar link (navigating by URL would start a new session)."""
    sidebar_link(page, name).click()
    page.get_by_test_id("stHeading").filter(has_text=name).first.wait_for()
    settle(page)


def widget(page, testid: str, label: str):
    """The widget of a kind (stSelectbox, stMultiSelect, stRadio, ...) with this exact label."""
    lab = page.get_by_test_id("stWidgetLabel").filter(has_text=re.compile(rf"^\s*{re.escape(label)}\s*$"))
    return page.get_by_test_id(testid).filter(has=lab)


def combo(page, label: str):
    """The text box of a selectbox or multiselect (a combobox named by its label)."""
    return page.get_by_role("combobox", name=label, exact=True).first


def choose(page, label: str, option: str) -> None:
    """Pick an option in a selectbox or multiselect by typing it and clicking it in the list."""
    box = combo(page, label)
    box.click()
    box.press_sequentially(option[:12])
    page.get_by_role("option", name=option).first.click()
    page.keyboard.press("Escape")
    settle(page)


def segment(page, label: str, option: str) -> None:
    """Click one option of a segmented control (a group of toggle buttons)."""
    group = page.get_by_test_id("stButtonGroup").filter(has=page.get_by_text(option, exact=True)).first
    group.get_by_text(option, exact=True).click()


def metric_values(page) -> list[str]:
    return page.get_by_test_id("stMetricValue").all_inner_texts()


def shot(page, screenshot, name: str) -> None:
    settle(page)
    screenshot(page, name)


# ------------------------------------------------------------------------------------------------ the flow
def test_01_first_render(app_page, screenshot, timings):
    """The Data page renders with the built-in sample; the time to first render is recorded."""
    server = app_page.app_server
    t0 = time.monotonic()
    app_page.goto(server.url)
    app_page.get_by_text("What we understood").wait_for(timeout=90_000)
    first = time.monotonic() - t0
    timings["first_render_s"] = round(first, 2)
    timings["server_start_to_first_render_s"] = round(server.elapsed(), 2)
    print(f"\nfirst render of the Data page: {first:.1f} s after opening the app")
    settle(app_page)
    no_exception(app_page, "Data page (sample)")
    shot(app_page, screenshot, "01_data_sample")


def test_02_upload_and_roles(app_page, events_csv, screenshot):
    page = app_page
    page.get_by_test_id("stRadio").filter(has_text="Data source").get_by_text("Upload a file").click()
    page.get_by_text("Upload a file to begin").wait_for()
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(events_csv))
    page.get_by_text("What we understood").wait_for(timeout=WORK_TIMEOUT_MS)
    page.get_by_text(events_csv.name).first.wait_for(timeout=WORK_TIMEOUT_MS)
    expect(combo(page, "Timestamp")).to_have_value("date", timeout=WORK_TIMEOUT_MS)
    settle(page)
    assert combo(page, "User id").input_value() == "customer_id"
    assert combo(page, "Timestamp").input_value() == "date"
    assert combo(page, "Amount (line or order value)").input_value() == "dollar_value"
    assert combo(page, "Quantity").input_value() == "number_of_cds"
    assert "Event log" in widget(page, "stRadio", "This table is").inner_text()
    no_exception(page, "Data page (upload)")
    shot(page, screenshot, "02_data_upload")


def test_03_build_dataset(app_page, screenshot):
    page = app_page
    page.get_by_role("button", name="Build dataset").click()
    page.get_by_text("Dataset ready:").wait_for(timeout=WORK_TIMEOUT_MS)
    settle(page)
    no_exception(page, "Data page (dataset)")
    shot(page, screenshot, "03_data_dataset")


def test_04_train_fast_and_keras(app_page, screenshot, timings):
    page = app_page
    go(page, "Train")
    rebuild = page.get_by_role("button", name="Rebuild the dataset for training")
    if rebuild.count():
        rebuild.click()
        settle(page)
    page.get_by_role("button", name="Fast").click()
    settle(page)
    choose(page, "Models to compare", "Neural network (MLP) (neural, slower)")
    models = widget(page, "stMultiSelect", "Models to compare").inner_text()
    assert "Logistic regression" in models and "MLP" in models, models
    page.get_by_role("tab", name="Neural network (MLP)").click()
    epochs = page.get_by_label("epochs", exact=True)
    epochs.fill("2")
    epochs.press("Tab")
    name = page.get_by_label("Run name", exact=True)
    name.fill(RUN)
    name.press("Tab")
    shot(page, screenshot, "04_train_settings")
    t0 = time.monotonic()
    page.get_by_role("button", name="Train models").click()
    page.get_by_text(f"Leaderboard of '{RUN}'").wait_for(timeout=TRAIN_TIMEOUT_MS)
    timings["train_logreg_recency_mlp_s"] = round(time.monotonic() - t0, 2)
    settle(page)
    page.get_by_text(f"Run '{RUN}' trained in").wait_for()
    no_exception(page, "Train page")
    failed = page.get_by_test_id("stAlertContentWarning").filter(has_text="failed")
    assert failed.count() == 0, failed.first.inner_text()
    chart = page.get_by_test_id("stPlotlyChart").first.inner_text()
    assert "Logistic regression" in chart and "MLP" in chart, chart[:500]
    saved = json.loads((page.app_server.workspace / "runs" / RUN / "run.json").read_text(encoding="utf-8"))
    assert saved["train_config"]["params"].get("mlp", {}).get("epochs") == 2, saved["train_config"]
    shot(page, screenshot, "05_train_leaderboard")


def test_05_evaluate_threshold(app_page, screenshot):
    page = app_page
    go(page, "Evaluate")
    page.get_by_text("Flag users whose churn probability is at least").wait_for(timeout=WORK_TIMEOUT_MS)
    choose(page, "Model", "Logistic regression")
    expect(combo(page, "Model")).to_have_value(re.compile("^Logistic regression"))
    page.get_by_test_id("stMetricValue").first.wait_for()
    before = metric_values(page)
    assert len(before) == 6, before
    segment(page, "Choose the threshold", "Top K users")
    k_input = page.get_by_label("Users to contact (K)", exact=True)
    k_input.wait_for()
    k_input.fill("5")
    k_input.press("Enter")
    page.get_by_text(re.compile(r"flags 5 of [\d,]+ validation users")).wait_for(timeout=WORK_TIMEOUT_MS)
    settle(page)
    after = metric_values(page)
    assert len(after) == 6, after
    assert after != before, f"the metric cards did not change with the threshold: {before} -> {after}"
    # ROC-AUC and PR-AUC do not depend on the threshold; precision, recall and F1 do.
    assert after[:2] == before[:2] and after[2:] != before[2:], (before, after)
    no_exception(page, "Evaluate page")
    shot(page, screenshot, "06_evaluate")


def test_06_explain(app_page, screenshot):
    page = app_page
    go(page, "Explain")
    page.get_by_text(re.compile(r"Explanations of .* ready")).wait_for(timeout=WORK_TIMEOUT_MS)
    page.get_by_text("What drives churn per segment").wait_for()
    widget(page, "stRadio", "Segments").get_by_text("RFM group").click()
    settle(page, timeout_s=WORK_TIMEOUT_MS / 1000)
    page.get_by_text("Each cell: the feature's mean effect").wait_for(timeout=WORK_TIMEOUT_MS)
    no_exception(page, "Explain page")
    shot(page, screenshot, "07_explain")


def test_07_segments(app_page, screenshot):
    page = app_page
    go(page, "Segments")
    segment(page, "Split users by", "Risk tier")
    page.get_by_text("Tiers by the chosen model's churn probability").wait_for(timeout=WORK_TIMEOUT_MS)
    settle(page, timeout_s=WORK_TIMEOUT_MS / 1000)
    assert page.get_by_test_id("stPlotlyChart").count() >= 1
    no_exception(page, "Segments page")
    shot(page, screenshot, "08_segments")


def test_08_at_risk_download(app_page, screenshot, tmp_path):
    page = app_page
    go(page, "At-risk")
    scored = page.get_by_text(re.compile(r"[\d,]+ users scored; as of"))
    scored.wait_for(timeout=WORK_TIMEOUT_MS)
    n_scored = int(re.search(r"([\d,]+) users scored", scored.inner_text()).group(1).replace(",", ""))
    _flow["n_scored"] = n_scored
    # Scoring (and trying dates) keeps nothing for monitoring; downloading the list below records it.
    page.get_by_text("Not kept for monitoring yet").wait_for(timeout=WORK_TIMEOUT_MS)
    # The page opens on the customers who can still be saved, with a budget of the top 10% ranked by expected net
    # value; the lapsed are a win-back audience of their own.
    main_area(page).get_by_text(re.compile(r"^Can still be saved \([\d,]+\)$")).wait_for(timeout=WORK_TIMEOUT_MS)
    main_area(page).get_by_text(re.compile(r"^Win-back \(lapsed\) \([\d,]+\)$")).wait_for()
    page.get_by_test_id("stMetricValue").first.filter(has_text=f"{math.ceil(0.1 * n_scored):,}").wait_for(
        timeout=WORK_TIMEOUT_MS)
    # Everyone with a churn probability at least 0: the whole scored population, the formula-like id included.
    main_area(page).get_by_text(re.compile(r"^Everyone \([\d,]+\)$")).click()
    settle(page, timeout_s=WORK_TIMEOUT_MS / 1000)
    segment(page, "Choose users", "Above the threshold")
    settle(page, timeout_s=WORK_TIMEOUT_MS / 1000)
    slider = widget(page, "stSlider", "Churn probability at least").get_by_role("slider")
    slider.focus()
    slider.press("Home")
    page.get_by_test_id("stMetricValue").first.filter(has_text=f"{n_scored:,}").wait_for(timeout=WORK_TIMEOUT_MS)
    settle(page, timeout_s=WORK_TIMEOUT_MS / 1000)
    # An order export has no product column: the page says so in one line and the list works as before.
    main_area(page).get_by_text(NO_PRODUCT).wait_for()
    no_exception(page, "At-risk page")
    shot(page, screenshot, "09_at_risk")
    with page.expect_download(timeout=WORK_TIMEOUT_MS) as info:
        page.get_by_role("button", name="Download the list (CSV)").click()
    path = tmp_path / "at_risk.csv"
    info.value.save_as(path)
    page.get_by_text("Recorded in the scoring history: come back after").wait_for(timeout=WORK_TIMEOUT_MS)

    df = pd.read_csv(path, dtype={"user_id": str}, keep_default_na=False, na_values=[""])
    assert len(df) > 0
    assert list(df.columns[:4]) == ["user_id", "churn_probability", "risk_decile", "rank"], list(df.columns)
    assert len(df) == n_scored, (len(df), n_scored)
    assert set(df["stage"]) <= {"new", "active", "slipping", "lapsed"} and df["stage"].notna().all()
    p = df["churn_probability"].to_numpy(float)
    assert np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()
    assert sorted(df["rank"].astype(int)) == list(range(1, len(df) + 1))
    assert df["risk_decile"].between(1, 10).all()
    assert any(c.startswith("reason_") for c in df.columns), "the list carries the top reasons by default"
    # Formula-safe: a text cell a spreadsheet would run starts with a quote. Text columns are pandas' str (not
    # object) under pandas 3; the ids and the reasons must be among those checked, so the loop cannot check nothing.
    text_cols = [c for c in df.columns if pd.api.types.is_string_dtype(df[c].dtype)]
    assert "user_id" in text_cols and any(c.startswith("reason_") for c in text_cols), (text_cols, df.dtypes)
    for col in text_cols:
        raw = df[col].dropna().astype(str)
        bad = raw[raw.str.startswith(FORMULA_START)]
        assert bad.empty, f"column {col!r} holds cells a spreadsheet would run: {bad.head().tolist()}"
    assert ("'" + FORMULA_ID) in set(df["user_id"]), "the formula-like user id comes out quoted"
    assert FORMULA_ID not in set(df["user_id"])
    assert not any(c.startswith("offer_") for c in df.columns), "no offers without a product column"


def test_09_models_score_file(app_page, events_csv, screenshot):
    page = app_page
    go(page, "Models")
    page.get_by_text("Saved runs").wait_for(timeout=WORK_TIMEOUT_MS)
    page.get_by_role("tab", name="Score a file").click()
    assert combo(page, "With run").input_value() == RUN
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(events_csv))
    cards = page.get_by_test_id("stMetric").filter(has_text="Users scored")
    cards.wait_for(timeout=WORK_TIMEOUT_MS)
    settle(page, timeout_s=WORK_TIMEOUT_MS / 1000)
    n = int(cards.get_by_test_id("stMetricValue").inner_text().replace(",", ""))
    assert n > 0
    if "n_scored" in _flow:
        assert n == _flow["n_scored"], "the saved run scores the same file as the At-risk page did"
    assert page.get_by_role("button", name="Download the scores (CSV)").count() == 1
    assert page.get_by_test_id("stDataFrame").count() >= 1
    no_exception(page, "Models page")
    shot(page, screenshot, "10_models_score")


def test_10_monitor_sees_the_recorded_scoring(app_page, screenshot):
    """The scoring made on At-risk (and the same file scored again on Models: the same scoring) is on the Monitor
    page once, waiting for its horizon: the uploaded export ends on the day it was scored."""
    page = app_page
    go(page, "Monitor")
    page.get_by_text(re.compile(r"1 scoring recorded, as of")).wait_for(timeout=WORK_TIMEOUT_MS)
    assert combo(page, "Run").input_value().startswith(RUN)
    page.get_by_text(re.compile(r"1 scoring waiting for its horizon; the next can be checked from "
                                r"\d{4}-\d{2}-\d{2}")).wait_for(timeout=WORK_TIMEOUT_MS)
    page.get_by_text(re.compile(r"No scoring can be checked with .* yet")).wait_for()
    settle(page, timeout_s=WORK_TIMEOUT_MS / 1000)
    assert page.get_by_test_id("stException").count() == 0
    # the one red box allowed is a verdict that says to retrain (drift alone can call for it); its icon's name is
    # part of the box's text
    for text in page.get_by_test_id("stAlertContentError").all_inner_texts():
        assert "Retrain:" in text, text
    assert page.get_by_test_id("stPlotlyChart").count() >= 1
    shot(page, screenshot, "11_monitor")


def _download_csv(page, tmp_path: Path, label: str = "Download the list (CSV)") -> pd.DataFrame:
    try:
        with page.expect_download(timeout=WORK_TIMEOUT_MS) as info:
            page.get_by_role("button", name=label).click()
    except PlaywrightTimeoutError:
        errors = page.get_by_test_id("stDownloadButtonError").all_inner_texts()
        raise AssertionError(f"no download after clicking {label!r}; the button's errors: {errors}") from None
    path = tmp_path / "download.csv"
    info.value.save_as(path)
    return pd.read_csv(path, dtype={"user_id": str}, keep_default_na=False, na_values=[""])


def _train_fast_on_the_sample(page, timings) -> None:
    """Back to the built-in sample (it has a product column) on the Data page, its dataset built, a fast run trained."""
    if not page.url.startswith("http"):  # this step run alone
        page.goto(page.app_server.url)
        main_area(page).get_by_text("What we understood").wait_for(timeout=90_000)
    go(page, "Data")
    page.get_by_test_id("stRadio").filter(has_text="Data source").get_by_text("Built-in sample").click()
    main_area(page).get_by_text("What we understood").wait_for(timeout=WORK_TIMEOUT_MS)
    settle(page)
    page.get_by_role("button", name="Build dataset").click()
    page.get_by_text("Dataset ready:").wait_for(timeout=WORK_TIMEOUT_MS)
    settle(page)
    go(page, "Train")
    rebuild = page.get_by_role("button", name="Rebuild the dataset for training")
    if rebuild.count():
        rebuild.click()
        settle(page)
    page.get_by_role("button", name="Fast").click()
    settle(page)
    name = page.get_by_label("Run name", exact=True)
    name.fill(SAMPLE_RUN)
    name.press("Tab")
    t0 = time.monotonic()
    page.get_by_role("button", name="Train models").click()
    page.get_by_text(f"Leaderboard of '{SAMPLE_RUN}'").wait_for(timeout=TRAIN_TIMEOUT_MS)
    timings["train_fast_sample_s"] = round(time.monotonic() - t0, 2)
    settle(page)
    no_exception(page, "Train page (sample)")


def test_11_offers_and_campaign_on_the_sample(app_page, screenshot, timings, tmp_path):
    """On the built-in sample: users ranked by expected net value, the best point shown, each with three offers and
    their reasons; the downloaded CSV carries offer_1..offer_3 and the assumptions in every row, formula-safe."""
    page = app_page
    _train_fast_on_the_sample(page, timings)
    go(page, "At-risk")
    page.get_by_text(re.compile(r"[\d,]+ users scored; as of")).wait_for(timeout=WORK_TIMEOUT_MS)
    main_area(page).get_by_text("What to offer", exact=True).wait_for(timeout=WORK_TIMEOUT_MS)
    segment(page, "Choose users", "Expected net value")
    best = main_area(page).get_by_text(re.compile(r"Best point: contact [\d,]+ of [\d,]+ users"))
    best.wait_for(timeout=WORK_TIMEOUT_MS)
    settle(page, timeout_s=WORK_TIMEOUT_MS / 1000)
    n_best = int(re.search(r"contact ([\d,]+) of", best.inner_text()).group(1).replace(",", ""))
    page.get_by_role("tab", name="How good are the offers?").click()
    page.get_by_role("button", name="Evaluate the offers").click()
    page.get_by_text("Each customer's own products come first").last.wait_for(timeout=WORK_TIMEOUT_MS)
    settle(page, timeout_s=WORK_TIMEOUT_MS / 1000)
    no_exception(page, "At-risk page (sample, expected net value, offers)")
    shot(page, screenshot, "12_at_risk_offers_campaign")

    df = _download_csv(page, tmp_path)
    assert len(df) == n_best > 0, (len(df), n_best)
    offers = [c for c in df.columns if c.startswith("offer_")]
    assert offers == ["offer_1", "offer_2", "offer_3"], list(df.columns)
    assert df["offer_1"].notna().mean() > 0.9, "almost every listed user has an offer"
    amount = {c.split(" (")[0]: c for c in df.columns if " (" in c}  # amounts carry their unit in the name
    env = df[amount["expected_net_value"]].to_numpy(float)
    assert (env > 0).all() and (np.diff(env) <= 1e-9).all(), "ranked by expected net value, all worth contacting"
    assert (df["save_rate"] == 0.1).all() and (df[amount["cost_per_contact"]] == 1.0).all()
    assert df["value_basis"].notna().all()
    text_cols = [c for c in df.columns if pd.api.types.is_string_dtype(df[c].dtype)]
    assert set(offers) <= set(text_cols), (text_cols, df.dtypes)
    for col in text_cols:
        raw = df[col].dropna().astype(str)
        bad = raw[raw.str.startswith(FORMULA_START)]
        assert bad.empty, f"column {col!r} holds cells a spreadsheet would run: {bad.head().tolist()}"
