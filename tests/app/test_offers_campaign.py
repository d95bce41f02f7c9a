"""The At-risk page's campaign and offers through AppTest: users ranked by expected net value with the assumptions in
every row and the best point shown; each listed user's offers with reasons, ``offer_1..N`` in the list the download
writes, the top offers per segment and the recommenders' evaluation, on a fast run trained on the built-in sample.
A user table, a log without a product column and the run's validation users say why there are no offers, and the rest
of the page keeps working.

AppTest cannot read a download's bytes: the list frame the page shows is the one its download writes (the table draws
its first rows), so the tests export that frame with the library call the download makes.
"""
from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from retention_core import campaign
from retention_core.export import FORMULA_START, export_csv_bytes
from retention_core.recommend import CANDIDATES, NO_PRODUCT, offers_available
from retention_core.roles import Schema
from ui.offers_panels import VALIDATION_NOTE
from ui.state import Key, widget_key

from tests.app.helpers import APP, ROOT, TIMEOUT, button, no_exception, sample_run_in, texts, train_fast
from tests.app.helpers import at_risk_list as _list, env as _env, table as _table
from tests.app.test_data_page import user_table_csv

RUN = "offers run"
FORMULA_PRODUCT = "=HYPERLINK(1)"


def _k(*parts) -> str:
    return widget_key(Key.W_AT_RISK, *parts)


def _ok(at: AppTest) -> AppTest:
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    return at


def _at_risk(at: AppTest) -> tuple[AppTest, str]:
    at.switch_page("pages/at_risk.py").run()
    _ok(at)
    run = at.session_state[str(Key.RUNS)][at.session_state[str(Key.ACTIVE_RUN)]]
    return at, run.best


def _upload(at: AppTest, name: str, data: bytes) -> AppTest:
    at.switch_page("pages/data.py").run()
    at.radio(key=widget_key(Key.W_SOURCE)).set_value("upload").run()
    at.get("file_uploader")[0].set_value((name, data, "application/octet-stream"))
    at.run()
    return _ok(at)


def _formula_safe(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The frame written as the download writes it and read back: no text cell a spreadsheet would run."""
    back = pd.read_csv(io.BytesIO(export_csv_bytes(frame)), dtype=str, keep_default_na=False)
    for c in columns:
        bad = back[c][back[c].str.startswith(FORMULA_START)]
        assert bad.empty, f"{c}: {bad.head().tolist()}"
    return back


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    with sample_run_in(tmp_path_factory, "offers", RUN) as (at, _):
        yield at


# ------------------------------------------------------------------------------------------------ campaign
def test_expected_value_ranks_users_and_marks_the_best_point(trained):
    at, model = _at_risk(trained)
    at.segmented_control(key=_k(RUN, model, "method")).set_value("expected_value").run()
    _ok(at)
    listed = _list(at)
    assert {"expected_net_value", "save_rate", "cost_per_contact", "value_basis"} <= set(listed.columns)
    env = listed["expected_net_value"].to_numpy(float)
    assert len(listed) > 0 and (np.diff(env) <= 1e-12).all(), "ranked by expected net value"
    assert (env > 0).all(), "by default everyone worth contacting: the curve's best point"
    assert (listed["save_rate"] == campaign.DEFAULT_SAVE_RATE).all()
    assert (listed["cost_per_contact"] == campaign.DEFAULT_COST).all()
    assert listed["value_basis"].nunique() == 1 and listed["value_basis"].iloc[0] != ""
    assert at.get("plotly_chart"), "the campaign curve"
    shown = texts(at)
    assert f"Best point: contact {len(listed):,} of" in shown, shown[-2000:]
    assert campaign.EXPLANATION in shown

    # other assumptions: the list and every row follow them
    at.number_input(key=_k(RUN, model, "ev_save_rate")).set_value(25.0).run()
    at.number_input(key=_k(RUN, model, "ev_cost")).set_value(3.0).run()
    _ok(at)
    more = _list(at)
    assert (more["save_rate"] == 0.25).all() and (more["cost_per_contact"] == 3.0).all()
    p, v = more["churn_probability"].to_numpy(float), more["value"].to_numpy(float)
    assert more["expected_net_value"].to_numpy(float) == pytest.approx(p * v * 0.25 - 3.0)

    # the top K by expected net value
    at.radio(key=_k(RUN, model, "ev_how")).set_value("top_k").run()
    at.number_input(key=_k(RUN, model, "ev_k")).set_value(12).run()
    _ok(at)
    top = _list(at)
    assert len(top) == 12 and top["expected_net_value"].is_monotonic_decreasing
    assert top["user_id"].tolist() == more["user_id"].head(12).tolist()

    # the download: the assumptions in every row, formula-safe
    back = pd.read_csv(io.BytesIO(campaign.campaign_export(top)))
    cost = next(c for c in back.columns if c.startswith("cost_per_contact ("))  # amounts carry their unit
    assert len(back) == 12 and (back["save_rate"] == 0.25).all() and (back[cost] == 3.0).all()
    assert back["value_basis"].notna().all()
    at.segmented_control(key=_k(RUN, model, "method")).set_value("threshold").run()
    _ok(at)


# ------------------------------------------------------------------------------------------------ offers
def test_listed_users_get_offers_with_reasons_in_the_list_and_per_segment(trained):
    at, _ = _at_risk(trained)
    listed = _list(at)
    assert [c for c in listed.columns if c.startswith("offer_")] == ["offer_1", "offer_2", "offer_3"]
    assert listed["offer_1"].astype(str).str.len().gt(0).mean() > 0.9, "almost every listed user has an offer"
    per_user = _table(at, "reason")
    assert set(per_user["user_id"].astype(str)) <= set(listed["user_id"].astype(str))
    assert per_user["reason"].astype(str).str.len().gt(0).all()
    assert per_user["reason"].str.contains("bought").any(), per_user["reason"].head().tolist()
    assert per_user["rank"].max() == 3
    first = per_user.groupby("user_id", sort=False).first()
    ids = listed.set_index("user_id")
    assert all(str(first.loc[u, "product"]) in str(ids.loc[u, "offer_1"]) for u in first.index[:50])
    _formula_safe(listed, ["user_id", "offer_1", "offer_2", "offer_3"])

    # another number of offers: the list the download writes follows
    at.number_input(key=_k(RUN, "offers", "n")).set_value(5).run()
    _ok(at)
    assert [c for c in _list(at).columns if c.startswith("offer_")] == [f"offer_{i}" for i in range(1, 6)]

    # the top offers per segment
    at.selectbox(key=_k(RUN, "offers", "segment")).set_value("country").run()
    _ok(at)
    seg = _table(at, "share")
    assert {"segment", "rank", "product", "users", "share"} <= set(seg.columns)
    assert set(seg["segment"]) <= set(listed["country"].astype(str)) and seg["rank"].max() <= 5
    assert seg["share"].between(0, 1).all()


def test_the_evaluation_judges_every_recommender_and_the_blend(trained):
    at, _ = _at_risk(trained)
    assert not any("precision" in d.value.columns for d in at.dataframe), "computed on demand only"
    button(at, "Evaluate the offers").click().run()
    _ok(at)
    table = _table(at, "precision")
    assert set(table["label"]) == set(CANDIDATES.values())
    assert {"recall", "ndcg", "hit_rate", "novelty", "users", "coverage"} <= set(table.columns)
    assert table["precision"].between(0, 1).all() and (table["users"] > 0).all()
    assert "Each customer's own products come first" in texts(at)
    at.run()  # a rerun keeps the evaluation on screen (cached)
    _ok(at)
    assert len(_table(at, "precision")) == len(CANDIDATES)


def test_validation_users_get_no_offers_and_the_list_still_works(trained):
    at, _ = _at_risk(trained)
    at.radio(key=_k(RUN, "source")).set_value("validation").run()
    _ok(at)
    assert VALIDATION_NOTE in [i.value for i in at.info]
    assert len(_list(at)) > 0 and not any(c.startswith("offer_") for c in _list(at).columns)
    at.radio(key=_k(RUN, "source")).set_value("table").run()
    _ok(at)


def test_a_log_without_a_product_column_says_offers_need_one(trained):
    """The analyst unmaps the product on the Data page: the At-risk page says offers need a product column."""
    at = trained
    at.switch_page("pages/data.py").run()
    key = at.session_state[str(Key.TABLE)].table_key
    at.selectbox(key=widget_key(Key.W_ROLE, key, "product")).set_value("(none)").run()
    no_exception(at)
    at, _ = _at_risk(at)
    assert NO_PRODUCT in [i.value for i in at.info]
    listed = _list(at)
    assert len(listed) > 0 and not any(c.startswith("offer_") for c in listed.columns)


# ------------------------------------------------------------------------------------------------ other tables
def test_a_user_table_says_offers_need_an_event_log(tmp_path, monkeypatch):
    _env(monkeypatch, tmp_path)
    at = _upload(AppTest.from_file(APP, default_timeout=TIMEOUT), "customers.csv", user_table_csv())
    button(at, "Build dataset").click().run()
    _ok(at)
    train_fast(at, "users run")
    at, model = _at_risk(at)
    _, why = offers_available(Schema("users", {}))
    assert why in [i.value for i in at.info]
    assert len(_list(at)) > 0
    at.segmented_control(key=_k("users run", model, "method")).set_value("expected_value").run()
    _ok(at)
    listed = _list(at)
    assert "expected_net_value" in listed.columns and (listed["save_rate"] == campaign.DEFAULT_SAVE_RATE).all()
    assert not any(c.startswith("offer_") for c in listed.columns)


def _sample_with_a_formula_product() -> bytes:
    """The built-in sample with its best-selling product renamed to a formula a spreadsheet would run."""
    df = pd.read_csv(ROOT / "assets" / "sample_events.csv.gz", dtype=str, keep_default_na=False)
    top = df.loc[df["event_type"] == "purchase", "product_id"].value_counts().index[0]
    df.loc[df["product_id"] == top, "product_id"] = FORMULA_PRODUCT
    return df.to_csv(index=False).encode()


def test_formula_like_products_are_quoted_in_the_download(tmp_path, monkeypatch):
    _env(monkeypatch, tmp_path)
    at = _upload(AppTest.from_file(APP, default_timeout=TIMEOUT), "shop.csv", _sample_with_a_formula_product())
    button(at, "Build dataset").click().run()
    _ok(at)
    train_fast(at, "formula run")
    at, _ = _at_risk(at)
    listed = _list(at)
    offers = [c for c in listed.columns if c.startswith("offer_")]
    assert (listed[offers] == FORMULA_PRODUCT).any(axis=None), "the renamed best seller is offered"
    back = _formula_safe(listed, ["user_id"] + offers)
    assert (back[offers] == "'" + FORMULA_PRODUCT).any(axis=None), "it comes out quoted"
