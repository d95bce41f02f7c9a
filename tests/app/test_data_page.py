"""The Data page, driven through Streamlit's AppTest: sample, overrides, uploads, broken files, dataset builder."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from ui.state import Key, widget_key

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
TIMEOUT = 120


def _app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    return at


def _texts(at: AppTest) -> str:
    parts = [e.value for e in at.markdown] + [e.value for e in at.caption] + [e.value for e in at.info]
    parts += [e.value for e in at.success] + [e.value for e in at.warning] + [e.value for e in at.error]
    parts += [e.value for e in at.subheader] + [e.value for e in at.title]
    return "\n".join(str(p) for p in parts)


def _table_key(at: AppTest) -> str:
    return at.session_state[str(Key.TABLE)].table_key


def _role(at: AppTest, role: str):
    return at.selectbox(key=widget_key(Key.W_ROLE, _table_key(at), role))


def _frames(at: AppTest) -> list[pd.DataFrame]:
    out = []
    for d in at.dataframe:
        v = d.value
        out.append(v.data if hasattr(v, "data") and not isinstance(v, pd.DataFrame) else v)
    return out


def _plotly_count(at: AppTest) -> int:
    return len(at.get("plotly_chart"))


def _upload(at: AppTest, name: str, data: bytes) -> AppTest:
    at.radio(key=widget_key(Key.W_SOURCE)).set_value("upload").run()
    assert not at.exception, at.exception
    at.get("file_uploader")[0].set_value((name, data, "application/octet-stream"))
    at.run()
    assert not at.exception, at.exception
    return at


def user_table_csv(n: int = 300, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    tickets = rng.poisson(1.0, n)
    orders = rng.poisson(3.0, n)
    risk = 0.8 * tickets - 0.5 * orders + rng.normal(0, 1.5, n)
    df = pd.DataFrame({
        "customer_id": [f"U{i:05d}" for i in range(n)],
        "signup_date": pd.date_range("2022-01-01", periods=n, freq="D").strftime("%Y-%m-%d"),
        "plan": rng.choice(["basic", "plus", "pro"], n),
        "country": rng.choice(["DE", "FR", "UK"], n),
        "monthly_spend": rng.gamma(2.0, 20.0, n).round(2),
        "orders_last_90d": orders,
        "support_tickets": tickets,
        "churn": np.where(risk > np.median(risk), "Yes", "No"),
    })
    return df.to_csv(index=False).encode()


# ------------------------------------------------------------------------------------------------ the sample
def test_opens_on_the_sample_with_everything_shown():
    at = _app()
    assert not at.error
    text = _texts(at)
    assert at.radio(key=widget_key(Key.W_SOURCE)).value == "sample"
    # detected kind and roles
    assert at.radio(key=widget_key(Key.W_KIND, _table_key(at))).value == "events"
    assert _role(at, "user_id").value == "customer_id"
    assert _role(at, "timestamp").value == "event_time"
    assert _role(at, "event_type").value == "event_type"
    assert at.multiselect(key=widget_key(Key.W_PURCHASE, _table_key(at))).value == ["purchase"]
    attributes = at.multiselect(key=widget_key(Key.W_ATTRIBUTES, _table_key(at))).value
    assert set(attributes) == {"country", "channel", "device"}
    # validation report, preview and facts
    frames = _frames(at)
    report = next(f for f in frames if "severity" in f.columns)
    assert {"issue", "count", "examples", "what we do"} <= set(report.columns)
    assert "duplicate" in " ".join(report["issue"])
    assert "0 errors" in text and "1 warning" in text
    preview = next(f for f in frames if "customer_id" in f.columns)
    assert len(preview) == 100
    assert [m.value for m in at.metric][:2] == ["71,787", "2,000"]
    assert "encoding utf-8" in text and "delimiter comma" in text
    # cohort heatmap, and the sidebar says what is loaded
    assert "Cohort retention" in text
    assert _plotly_count(at) == 1
    assert "sample_events.csv.gz" in text and "Event log" in text


def test_building_the_dataset_shows_label_balance():
    at = _app()
    build = next(b for b in at.button if b.label == "Build dataset")
    build.click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    balance = next(f for f in _frames(at) if "churn_rate" in f.columns)
    assert len(balance) == 6
    assert (balance["labelled"] == balance["users"]).all()
    assert balance["churn_rate"].between(0.3, 0.95).all()
    ds = at.session_state[str(Key.DATASET)]
    assert {"user_id", "snapshot_date", "churned", "recency_days"} <= set(ds.frame.columns)
    assert "Dataset ready" in _texts(at)
    assert _plotly_count(at) == 3  # heatmap, label balance, feature histogram
    # another feature in the histogram
    at.selectbox(key=widget_key(Key.W_FEATURE, _table_key(at))).set_value("country").run()
    assert not at.exception, at.exception


def test_overriding_a_role_changes_what_is_shown():
    at = _app()
    _role(at, "timestamp").set_value("(none)").run()
    assert not at.exception, at.exception
    assert _role(at, "timestamp").value == "(none)"
    assert "(your choice)" in _role(at, "timestamp").label
    report = next(f for f in _frames(at) if "severity" in f.columns)
    assert "No timestamp column was found" in " ".join(report["issue"])
    assert at.error and "1 error" in at.error[0].value
    assert not any(b.label == "Build dataset" for b in at.button)
    assert _plotly_count(at) == 0
    # back to what was detected
    next(b for b in at.button if b.label == "Reset to what was detected").click().run()
    assert not at.exception, at.exception
    assert _role(at, "timestamp").value == "event_time"
    assert not at.error


def test_switching_the_kind_to_user_table():
    at = _app()
    at.radio(key=widget_key(Key.W_KIND, _table_key(at))).set_value("users").run()
    assert not at.exception, at.exception
    assert _role(at, "label").value == "(none)"
    assert "Choose the **Churn label** column" in _texts(at)
    assert _plotly_count(at) == 0  # no cohorts for a user table
    at.radio(key=widget_key(Key.W_KIND, _table_key(at))).set_value("events").run()
    assert _plotly_count(at) == 1


def test_purchase_types_override():
    at = _app()
    key = _table_key(at)
    at.multiselect(key=widget_key(Key.W_PURCHASE, key)).set_value(["purchase", "add_to_cart"]).run()
    assert not at.exception, at.exception
    report = next(f for f in _frames(at) if "severity" in f.columns)
    assert any("purchase, add_to_cart" in i or "add_to_cart, purchase" in i for i in report["issue"])


# ------------------------------------------------------------------------------------------------ uploads
def test_upload_of_a_user_table_builds_a_dataset():
    at = _upload(_app(), "customers.csv", user_table_csv())
    assert not at.error, [e.value for e in at.error]
    key = _table_key(at)
    assert at.session_state[str(Key.TABLE)].name == "customers.csv"
    assert at.radio(key=widget_key(Key.W_KIND, key)).value == "users"
    assert _role(at, "label").value == "churn"
    assert at.selectbox(key=widget_key(Key.W_POSITIVE, key, "churn")).value == "Yes"
    assert _plotly_count(at) == 0
    next(b for b in at.button if b.label == "Build dataset").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    balance = next(f for f in _frames(at) if "churn_rate" in f.columns)
    assert int(balance["users"].iloc[0]) == 300
    assert 0.4 < float(balance["churn_rate"].iloc[0]) < 0.6
    assert at.session_state[str(Key.DATASET_INFO)].name == "customers.csv"


def test_changing_the_positive_label_value():
    at = _upload(_app(), "customers.csv", user_table_csv())
    key = _table_key(at)
    at.selectbox(key=widget_key(Key.W_POSITIVE, key, "churn")).set_value("No").run()
    assert not at.exception, at.exception
    report = next(f for f in _frames(at) if "severity" in f.columns)
    assert any("churned means churn = 'No'" in i for i in report["issue"])


def test_upload_of_a_semicolon_event_log(tmp_path):
    from assets.generator import sample_path

    raw = pd.read_csv(sample_path(), dtype=str)
    users = raw["customer_id"].drop_duplicates().iloc[:300]
    small = raw[raw["customer_id"].isin(users)]
    at = _upload(_app(), "events.csv", small.to_csv(index=False, sep=";").encode("cp1252"))
    assert not at.error, [e.value for e in at.error]
    assert at.radio(key=widget_key(Key.W_KIND, _table_key(at))).value == "events"
    assert "delimiter semicolon" in _texts(at)
    assert _plotly_count(at) == 1


def test_excel_upload_has_a_sheet_picker():
    buf = io.BytesIO()
    users = pd.read_csv(io.BytesIO(user_table_csv()))
    with pd.ExcelWriter(buf, engine="openpyxl") as xl:
        pd.DataFrame().to_excel(xl, sheet_name="Cover", index=False)
        users.to_excel(xl, sheet_name="Customers", index=False)
        pd.DataFrame({"note": ["exported from the shop"]}).to_excel(xl, sheet_name="Notes", index=False)
    at = _upload(_app(), "book.xlsx", buf.getvalue())
    assert not at.error, [e.value for e in at.error]
    up = at.session_state[str(Key.UPLOAD)]
    picker = at.selectbox(key=widget_key(Key.W_SHEET, up.digest))
    assert picker.value == "Customers"
    assert _role(at, "label").value == "churn"
    picker.set_value("Notes").run()
    assert not at.exception, at.exception
    assert at.session_state[str(Key.TABLE)].name == "book.xlsx [Notes]"
    picker = at.selectbox(key=widget_key(Key.W_SHEET, up.digest))
    picker.set_value("Cover").run()
    assert not at.exception, at.exception
    assert at.error  # an empty sheet: the message says so, the picker stays
    assert at.selectbox(key=widget_key(Key.W_SHEET, up.digest)).value == "Cover"


@pytest.mark.parametrize("name,data,words", [
    ("empty.csv", b"", "empty"),
    ("blob.csv", bytes(range(256)) * 40, "binary"),
    ("page.csv", b"<html><body>Not a table</body></html>", "web page"),
    ("header.csv", b"customer_id,event_time\n", "no rows"),
])
def test_broken_upload_shows_an_error_and_the_app_stays_usable(name, data, words):
    at = _upload(_app(), name, data)
    assert at.error, "an error message is expected"
    assert words in at.error[0].value
    assert not at.exception
    assert "Details" not in [e.label for e in at.expander]  # a product error, not a crash
    # nothing is marked as loaded, and the rest of the app works
    assert str(Key.TABLE) not in at.session_state
    at.switch_page("pages/train.py").run()
    assert not at.exception, at.exception
    at.switch_page("pages/data.py").run()
    at.radio(key=widget_key(Key.W_SOURCE)).set_value("sample").run()
    assert not at.exception, at.exception
    assert not at.error
    assert _role(at, "user_id").value == "customer_id"


def test_upload_survives_page_changes():
    at = _upload(_app(), "customers.csv", user_table_csv())
    at.switch_page("pages/segments.py").run()
    assert not at.exception, at.exception
    assert at.session_state[str(Key.TABLE)].name == "customers.csv"
    at.switch_page("pages/data.py").run()
    assert not at.exception, at.exception
    assert at.radio(key=widget_key(Key.W_SOURCE)).value == "upload"
    assert _role(at, "label").value == "churn"
    assert "uploaded earlier in this session" in _texts(at)


# ------------------------------------------------------------------------------------------------ helpers
def _accept_script():
    import streamlit as st

    from ui import state, tables

    up = tables.accept_upload("tiny.csv", b"customer_id,churn\nA,1\nB,0\n")
    table = tables.read_upload(up)
    st.write(f"source={state.get_source()} digest={up.digest} rows={len(table.df)}")


def test_accept_upload_keeps_the_file_and_switches_the_source():
    at = AppTest.from_function(_accept_script, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    assert at.markdown[0].value.startswith("source=upload digest=")
    assert at.markdown[0].value.endswith("rows=2")


def _crash_script():
    import streamlit as st

    from ui import widgets

    with widgets.guard("testing") as g:
        raise RuntimeError("boom")
    st.write(f"still here, failed={g.failed}")


def test_an_unexpected_error_is_contained():
    at = AppTest.from_function(_crash_script, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception
    assert "Something went wrong while testing" in at.error[0].value
    assert at.expander[0].label == "Details"
    assert "boom" in at.expander[0].code[0].value
    assert at.markdown[-1].value == "still here, failed=True"
