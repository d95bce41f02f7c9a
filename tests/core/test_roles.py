"""What a table is and what each column means (retention_core.roles), on real files with their own column names,
on the shipped sample, and on small tables built here; analyst overrides always win."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retention_core.errors import ConfigError, DataError
from retention_core.io import read_table
from retention_core.roles import (
    CANCEL_WORDS,
    PURCHASE_WORDS,
    RETURN_WORDS,
    ROLE_LABELS,
    ROLES,
    Schema,
    infer_schema,
    label_series,
    norm,
    require_roles,
)
from tests.conftest import real_path


@pytest.fixture(scope="module")
def online_retail() -> pd.DataFrame:
    return read_table(real_path("online_retail_ii_2009_2010.parquet"))


def _events(n_users: int = 30, per_user: int = 4, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    users = np.repeat([f"U{i:04d}" for i in range(n_users)], per_user)
    n = len(users)
    return pd.DataFrame({
        "client": users,
        "when": pd.date_range("2023-01-01", periods=n, freq="7h").strftime("%Y-%m-%d %H:%M:%S"),
        "basket": [f"B{i // 2:05d}" for i in range(n)],
        "line_value": rng.uniform(1, 50, n).round(2),
        "units": rng.integers(1, 5, n),
        "segment": np.repeat(rng.choice(["gold", "silver"], n_users), per_user),
    })


# ------------------------------------------------------------------------------------------------------ real files
def test_online_retail_roles(online_retail):
    s = infer_schema(online_retail)
    assert s.kind == "events"
    assert s.roles["user_id"] == "Customer ID"
    assert s.roles["timestamp"] == "InvoiceDate"
    assert s.roles["order_id"] == "Invoice"
    assert s.roles["quantity"] == "Quantity" and s.roles["price"] == "Price" and s.roles["amount"] is None
    assert s.roles["product"] == "StockCode"
    assert s.roles["label"] is None and s.roles["event_type"] is None
    assert "Country" in s.attributes and "Description" not in s.attributes
    assert any("Quantity x Price" in n for n in s.notes)


def test_cdnow_master_roles():
    df = read_table(real_path("cdnow_master.txt"))
    s = infer_schema(df)
    assert s.kind == "events"
    assert s.roles["user_id"] == "customer_id"
    assert s.roles["timestamp"] == "date"  # YYYYMMDD integers
    assert s.roles["amount"] == "dollar_value"
    assert s.roles["quantity"] == "number_of_cds"
    assert s.roles["order_id"] is None and s.roles["price"] is None


def test_telco_user_table_with_yes_label():
    df = read_table(real_path("telco_customer_churn.csv"))
    s = infer_schema(df)
    assert s.kind == "users"
    assert s.roles["user_id"] == "customerID"
    assert s.roles["label"] == "Churn" and s.label_positive == "Yes"
    assert {"Contract", "gender", "PaymentMethod"} <= set(s.attributes)
    assert "customerID" not in s.attributes and "Churn" not in s.attributes
    assert [r for r, c in s.roles.items() if c] == ["user_id", "label"]
    y = label_series(df, s)
    assert y.sum() == 1_869 and (y == 0).sum() == 5_174


def test_cdnow_summary_is_a_user_table_without_label():
    df = read_table(real_path("cdnow_customers_summary.csv"))
    s = infer_schema(df)
    assert s.kind == "users"
    assert s.roles["user_id"] == "ID"
    assert s.roles["label"] is None and s.label_positive is None
    assert s.roles["timestamp"] is None  # "T" and "recency" are numbers of weeks, not dates


def test_shipped_sample_event_log(sample_events_path):
    df = read_table(sample_events_path)
    s = infer_schema(df)
    assert s.kind == "events"
    assert s.roles == {"user_id": "customer_id", "timestamp": "event_time", "order_id": "order_id", "amount": None,
                       "quantity": "quantity", "price": "unit_price", "event_type": "event_type",
                       "product": "product_id", "category": "category", "rating": "rating", "label": None,
                       "description": None}
    assert s.purchase_values == ["purchase"]
    assert set(df["event_type"].dropna()) - set(s.purchase_values)  # views, carts ... are not purchases
    assert {"country", "channel", "device"} <= set(s.attributes)
    assert "category" not in s.attributes and "product_id" not in s.attributes


# -------------------------------------------------------------------------------------------------- kinds, overrides
def test_event_log_with_unusual_names():
    s = infer_schema(_events())
    assert s.kind == "events"
    assert s.roles["user_id"] == "client" and s.roles["timestamp"] == "when"
    assert s.roles["order_id"] == "basket" and s.roles["amount"] == "line_value" and s.roles["quantity"] == "units"
    assert s.attributes == ["segment"]


def _generic_frame() -> pd.DataFrame:
    """Columns whose names say nothing, so only overrides can give them roles."""
    n = 40
    return pd.DataFrame({f"c{i}": np.arange(n) + i for i in range(len(ROLES))} | {"txt": ["a", "b"] * (n // 2)})


@pytest.mark.parametrize("role", ROLES)
def test_override_wins_for_every_role(role):
    df = _events()
    df["other"] = df["units"]
    s = infer_schema(df, {role: "other"})
    assert s.roles[role] == "other"
    assert list(s.roles.values()).count("other") == 1
    assert infer_schema(_generic_frame(), {role: "c3", "kind": "events"}).roles[role] == "c3"


@pytest.mark.parametrize("role", ROLES)
def test_override_naming_a_missing_column_is_a_config_error(role):
    with pytest.raises(ConfigError, match="'nope'.*not in the data"):
        infer_schema(_events(), {role: "nope"})


def test_override_none_removes_a_role_and_kind_overrides():
    s = infer_schema(_events(), {"order_id": None})
    assert s.roles["order_id"] is None
    assert infer_schema(_events(), {"kind": "users"}).kind == "users"
    with pytest.raises(ConfigError, match="kind"):
        infer_schema(_events(), {"kind": "table"})
    with pytest.raises(ConfigError, match="Attribute column"):
        infer_schema(_events(), {"attributes": ["segment", "missing"]})
    assert infer_schema(_events(), {"attributes": []}).attributes == []
    s = infer_schema(_events(), {"label_positive": "yes", "purchase_values": ["buy"]})
    assert s.purchase_values == ["buy"]


def test_user_table_roles_and_fallback_identifier():
    n = 60
    df = pd.DataFrame({"ID": np.arange(1, n + 1), "customer_type": ["new", "returning", "vip"] * (n // 3),
                       "amount_paid": np.linspace(1, 99, n),
                       "signup_date": ["2023-01-%02d" % (i % 28 + 1) for i in range(n)],
                       "Exited": [0, 1] * (n // 2)})
    s = infer_schema(df)
    assert s.kind == "users"
    assert s.roles["user_id"] == "ID"  # not the segment column customer_type, not amount_paid
    assert s.roles["label"] == "Exited" and s.label_positive == 1
    assert s.roles["timestamp"] is None and s.roles["amount"] is None  # in a user table these are features
    assert "customer_type" in s.attributes


def test_epoch_seconds_under_a_date_like_name():
    n = 50
    df = pd.DataFrame({"user_id": [f"u{i % 10}" for i in range(n)],
                       "event_timestamp": 1_700_000_000 + np.arange(n) * 3600,
                       "event_type": ["view", "add_to_cart", "purchase", "return", "order_cancelled"] * 10})
    s = infer_schema(df)
    assert s.kind == "events" and s.roles["timestamp"] == "event_timestamp"
    assert s.purchase_values == ["purchase"]  # returns and cancellations are not purchases


def test_event_types_without_a_purchase_leave_a_note():
    df = pd.DataFrame({"user_id": ["a", "a", "b", "b"] * 5, "ts": pd.date_range("2023-01-01", periods=20).astype(str),
                       "event": ["view", "click"] * 10})
    s = infer_schema(df)
    assert s.roles["event_type"] == "event" and s.purchase_values == []
    assert any("looks like a purchase" in n for n in s.notes)


# --------------------------------------------------------------------------------------------------- label polarity
@pytest.mark.parametrize("name, values, positive", [
    ("Churn", ["Yes", "No"], "Yes"),
    ("churned", [0, 1], 1),
    ("is_churn", [0.0, 1.0], 1.0),
    ("Exited", [True, False], True),
    ("label", ["1", "0"], "1"),
    ("attrition", ["Attrited", "Existing"], "Attrited"),
    ("churn", ["Churned", "Stayed"], "Churned"),
    ("retained", ["Yes", "No"], "No"),
    ("is_retained", [True, False], False),
    ("active", [1, 0], 0),
    ("isActive", [1.0, 0.0], 0.0),
    ("active", ["active", "inactive"], "inactive"),  # values that say what happened are taken at their word
    ("retained", ["Retained", "Churned"], "Churned"),
    ("stayed", ["y", "n"], "n"),
])
def test_label_polarity(name, values, positive):
    n = 40
    df = pd.DataFrame({"user_id": [f"u{i}" for i in range(n)], "x": np.arange(n), name: values * (n // 2)})
    s = infer_schema(df)
    assert s.roles["label"] == name
    assert s.label_positive == positive
    assert type(s.label_positive) in (str, int, float, bool)  # plain, JSON-friendly
    y = label_series(df, s)
    assert y.tolist() == [float(v == positive) for v in values * (n // 2)]


def test_label_series_errors_and_missing_values():
    df = pd.DataFrame({"user_id": list("abcde"), "churn": ["yes", "no", None, "yes", "no"]})
    s = infer_schema(df)
    y = label_series(df, s)
    assert y.tolist()[:2] == [1.0, 0.0] and np.isnan(y.iloc[2])
    with pytest.raises(ConfigError, match="which value"):
        label_series(df, Schema(kind="users", roles={"user_id": "user_id", "label": "churn"}, label_positive="maybe"))
    bad = pd.DataFrame({"user_id": list("abc"), "churn": ["a", "b", "c"]})
    with pytest.raises(DataError, match="exactly two values"):
        label_series(bad, Schema(kind="users", roles={"user_id": "user_id", "label": "churn"}, label_positive="a"))
    with pytest.raises(ConfigError, match="No churn label"):
        label_series(df, Schema(kind="users", roles={"user_id": "user_id"}))


# ---------------------------------------------------------------------------------------------------------- helpers
def test_require_roles_names_the_missing_roles():
    """The library says what is missing in the analyst's words and names the roles; each front end words the fix
    (the command line's options are checked in test_cli)."""
    s = Schema(kind="events", roles={r: None for r in ROLES})
    with pytest.raises(ConfigError, match="user id, timestamp.*column mapping") as caught:
        require_roles(s, "user_id", "timestamp")
    assert caught.value.roles == ("user_id", "timestamp") and "--" not in str(caught.value)
    require_roles(Schema(kind="events", roles={"user_id": "u"}), "user_id")


def test_schema_round_trips_through_json():
    df = pd.DataFrame({"user_id": [f"u{i}" for i in range(20)], "churned": np.array([0, 1] * 10, dtype=np.int64)})
    s = infer_schema(df)
    d = json.loads(json.dumps(s.to_dict()))
    back = Schema.from_dict(d)
    assert back == s and back.label_positive == 1


def test_word_patterns_and_norm():
    assert norm("Customer ID") == "customerid" and norm("unit_price") == "unitprice"
    assert PURCHASE_WORDS.search("Order Completed") and not PURCHASE_WORDS.search("page_view")
    assert RETURN_WORDS.search("refund") and CANCEL_WORDS.search("order_cancelled")
    assert set(ROLE_LABELS) == set(ROLES)


# ------------------------------------------------------------------------------------------- property-based tests
_cells = st.one_of(st.none(), st.integers(-5, 5), st.floats(allow_nan=True, allow_infinity=True),
                   st.text(max_size=6), st.sampled_from(["2023-01-01", "yes", "no", "C123", "purchase"]))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(names=st.lists(st.sampled_from(["user_id", "date", "amount", "churn", "qty", "price", "event", "x", "ID",
                                        "active", "order", "category", "rating"]), min_size=1, max_size=6, unique=True),
       rows=st.integers(1, 25), data=st.data())
def test_property_infer_schema_never_crashes(names, rows, data):
    df = pd.DataFrame({n: pd.Series(data.draw(st.lists(_cells, min_size=rows, max_size=rows)), dtype=object)
                       for n in names})
    s = infer_schema(df)
    assert s.kind in ("events", "users")
    assert set(s.roles) == set(ROLES)
    used = [c for c in s.roles.values() if c]
    assert len(used) == len(set(used)) and set(used) <= set(df.columns)
    assert not set(s.attributes) & set(used)
    json.dumps(s.to_dict(), default=str)


def test_frames_built_in_memory_with_categorical_and_datetime_columns():
    from assets.generator import generate_events

    raw = generate_events(200, seed=5, days=200)  # categorical text, datetime64 timestamps, small integer types
    s = infer_schema(raw)
    assert s.kind == "events"
    assert s.roles["user_id"] == "customer_id" and s.roles["timestamp"] == "event_time"
    assert s.roles["event_type"] == "event_type" and s.purchase_values == ["purchase"]
    assert s.roles["order_id"] == "order_id" and s.roles["category"] == "category"
    assert {"country", "channel", "device"} <= set(s.attributes)
