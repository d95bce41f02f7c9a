"""The validation report (retention_core.validation): every quirk with a count, examples, a severity and what the
product does about it; exact counts on the real files."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retention_core.errors import ConfigError
from retention_core.io import read_table
from retention_core.roles import ROLES, Schema, infer_schema
from retention_core.validation import (
    MIN_CLASS,
    MIN_USERS,
    SEVERITY_ORDER,
    Finding,
    ValidationReport,
    check_leaks,
    validate,
    validate_dataset,
)
from tests.conftest import real_path

NOW = pd.Timestamp("2024-01-01")


def _events_schema(**roles) -> Schema:
    base = {r: None for r in ROLES}
    base.update(roles)
    return Schema(kind="events", roles=base)


def _log(n_users: int = 250, per_user: int = 2) -> pd.DataFrame:
    users = np.repeat([f"U{i:03d}" for i in range(n_users)], per_user)
    n = len(users)
    return pd.DataFrame({
        "user": users,
        "ts": pd.date_range("2023-01-01", periods=n, freq="13h").strftime("%Y-%m-%d %H:%M"),
        "order": [f"{100000 + i}" for i in range(n)],
        "qty": np.ones(n, dtype=int) * 2,
        "price": np.full(n, 3.5),
        "sku": [f"{20000 + i % 17}A" for i in range(n)],
    })


SCHEMA = _events_schema(user_id="user", timestamp="ts", order_id="order", quantity="qty", price="price", product="sku")


def _check_report(rep: ValidationReport) -> None:
    """Every finding is well formed, and every warning or error says what the product does."""
    for f in rep.findings:
        assert f.severity in SEVERITY_ORDER
        assert isinstance(f.count, int) and f.count >= 0
        assert f.code and f.message and len(f.examples) <= 5
        if f.severity in ("warning", "error"):
            assert f.action, f.code
    json.dumps(rep.as_list())
    assert list(rep.to_frame().columns) == ["severity", "issue", "count", "examples", "what we do", "code"]
    assert [f.severity for f in rep.sorted()] == sorted((f.severity for f in rep.findings), key=SEVERITY_ORDER.get)


# ------------------------------------------------------------------------------------------------------- event logs
def test_clean_log_has_no_warnings():
    rep = validate(_log(), SCHEMA, now=NOW)
    _check_report(rep)
    assert rep.ok and not [f for f in rep.findings if f.severity != "info"], rep.to_frame()
    assert rep.get("time_span").count == 500


def test_event_log_quirks_are_counted():
    df = _log()
    df.loc[[3, 4], "user"] = None
    df.loc[5, "ts"] = "not a date"
    df.loc[6, "ts"] = None
    df.loc[7, "ts"] = "2030-05-01 10:00"
    df.loc[[8, 9, 10], "order"] = ["C100008", "C100009", "C100010"]
    df.loc[11, "order"] = "A100011"
    df.loc[[8, 9, 10, 12], "qty"] = -2
    df.loc[[13, 14], "price"] = 0.0
    df.loc[15, "price"] = -11.0
    df.loc[[16, 17, 18], "sku"] = ["POST", "DOT", "M"]
    df["shop"] = "web"
    df = pd.concat([df, df.iloc[[20, 21]]], ignore_index=True)  # two exact duplicates
    rep = validate(df, SCHEMA, now=NOW)
    _check_report(rep)
    expect = {"missing_user_id": 2, "bad_timestamp": 1, "missing_timestamp": 1, "future_timestamp": 1,
              "cancellations": 3, "adjustments": 1, "negative_quantity": 4, "zero_price": 2, "negative_price": 1,
              "non_product_lines": 3, "duplicate_rows": 2, "constant_column": len(df)}
    for code, count in expect.items():
        assert rep.get(code) is not None, code
        assert rep.get(code).count == count, code
    assert rep.get("duplicate_rows").examples == [502, 503]  # spreadsheet row numbers (header is row 1)
    assert rep.get("bad_timestamp").examples == ["not a date"]
    assert rep.get("cancellations").examples == ["C100008", "C100009", "C100010"]
    assert rep.get("missing_user_id").severity == "warning" and "dropped" in rep.get("missing_user_id").action
    assert rep.get("duplicate_rows").action.startswith("dropped")
    assert "returns" in rep.get("negative_quantity").action
    assert "not counted as purchases" in rep.get("zero_price").action
    assert "shop" in rep.excluded_features
    assert rep.ok


def test_amounts_event_types_and_text_nan():
    df = pd.DataFrame({"user": [f"u{i % 25}" for i in range(100)],
                       "ts": pd.date_range("2023-01-01", periods=100, freq="D").astype(str),
                       "value": [10.0] * 95 + [0.0, 0.0, -5.0, -6.0, 12.0],
                       "event": ["purchase"] * 90 + ["view"] * 5 + ["refund"] * 3 + ["order_cancelled"] * 2,
                       "note": ["nan"] * 4 + ["ok"] * 96})
    schema = _events_schema(user_id="user", timestamp="ts", amount="value", event_type="event")
    schema.purchase_values = ["purchase"]
    rep = validate(df, schema, now=NOW)
    _check_report(rep)
    assert rep.get("zero_amount").count == 2
    assert rep.get("negative_amount").count == 2
    assert rep.get("returns").count == 3 and rep.get("cancellations").count == 2
    assert rep.get("purchase_types").count == 90
    assert rep.get("text_nan").count == 4
    schema.purchase_values = []
    assert validate(df, schema, now=NOW).get("no_purchase_type").severity == "error"


def test_mostly_unreadable_timestamps_and_missing_users_are_errors():
    df = _log()
    df.loc[:300, "ts"] = "garbage"
    df.loc[:310, "user"] = None
    rep = validate(df, SCHEMA, now=NOW)
    _check_report(rep)
    assert rep.get("bad_timestamp").severity == "error" and rep.get("bad_timestamp").count == 301
    assert rep.get("missing_user_id").severity == "error"
    assert not rep.ok


def test_too_few_users_and_no_roles():
    rep = validate(_log(n_users=5), SCHEMA, now=NOW)
    assert rep.get("too_few_users").severity == "error" and rep.get("too_few_users").count == 5
    assert validate(_log(n_users=50), SCHEMA, now=NOW).get("few_users").severity == "warning"
    rep = validate(_log(), _events_schema(), now=NOW)
    assert {"no_user_id", "no_timestamp"} <= rep.codes()
    _check_report(rep)


def test_role_naming_a_missing_column_is_a_config_error():
    with pytest.raises(ConfigError, match="not in the data"):
        validate(_log(), _events_schema(user_id="nope"), now=NOW)


# ------------------------------------------------------------------------------------------------------ user tables
def _users(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"customer_id": [f"C{i:05d}" for i in range(n)],
                         "orders": rng.poisson(3, n), "spend": rng.gamma(2, 30, n).round(2),
                         "plan": rng.choice(["basic", "plus", "pro"], n),
                         "churned": rng.choice(["yes", "no"], n, p=[0.3, 0.7])})


def _user_schema(df: pd.DataFrame, label_positive="yes") -> Schema:
    return Schema(kind="users", roles={"user_id": "customer_id", "label": "churned"}, label_positive=label_positive)


def test_clean_user_table():
    df = _users()
    rep = validate(df, _user_schema(df))
    _check_report(rep)
    assert rep.ok and rep.get("label_balance") is not None
    assert rep.codes() == {"label_balance"}, rep.to_frame()


def test_label_not_binary():
    df = _users()
    df.loc[:10, "churned"] = "maybe"
    rep = validate(df, _user_schema(df))
    f = rep.get("label_not_binary")
    assert f.severity == "error" and f.count == 3 and any("maybe" in str(e) for e in f.examples)
    df["churned"] = "no"
    f = validate(df, _user_schema(df)).get("label_not_binary")
    assert f.severity == "error" and "only one value" in f.message


def test_label_value_not_in_the_data_is_reported_not_raised():
    df = _users()
    rep = validate(df, _user_schema(df, label_positive="churned!"))
    assert rep.get("label_value").severity == "error"
    _check_report(rep)


def test_too_few_churners_and_missing_labels():
    df = _users()
    df["churned"] = "no"
    df.loc[:MIN_CLASS - 2, "churned"] = "yes"
    df.loc[150:159, "churned"] = None
    rep = validate(df, _user_schema(df))
    _check_report(rep)
    f = rep.get("too_few_churners")
    assert f.severity == "error" and f.count == MIN_CLASS - 1 and "churned" in f.message
    assert rep.get("missing_label").count == 10


def test_identifier_like_features():
    df = _users()
    df["email"] = [f"user{i}@example.com" for i in range(len(df))]
    df["memberNo"] = np.arange(len(df)) + 1000
    df["amount_paid"] = np.linspace(1, 500, len(df))  # unique numbers, but an amount: a real feature
    # identifiers are found once, when the schema is inferred (retention_core.identifiers)
    rep = validate(df, infer_schema(df, {"user_id": "customer_id", "label": "churned", "label_positive": "yes"}))
    flagged = [f.examples[0] for f in rep.findings if f.code == "identifier_feature"]
    assert sorted(flagged) == ["email", "memberNo"]
    assert {"email", "memberNo"} <= set(rep.excluded_features)
    assert "customer_id" not in flagged  # the user id is a role, not a feature


def test_leaks_are_flagged_and_noise_is_not():
    df = _users(n=300, seed=1)
    y = (df["churned"] == "yes").astype(int)
    df["days_since_cancellation"] = np.where(y == 1, np.random.default_rng(2).integers(1, 90, len(df)), np.nan)
    df["account_status"] = np.where(y == 1, "closed", "open")
    df["total_refunds"] = y * 100 + np.random.default_rng(3).normal(0, 1, len(df))
    df["noise"] = np.random.default_rng(4).normal(size=len(df))
    df["many_levels"] = [f"L{i % 14}" for i in range(len(df))]
    rep = validate(df, _user_schema(df))
    leaks = sorted(f.examples[0] for f in rep.findings if f.code == "label_leak")
    assert leaks == ["account_status", "days_since_cancellation", "total_refunds"]
    assert all(f.severity == "warning" and "left out of the features" in f.action
               for f in rep.findings if f.code == "label_leak")
    assert set(leaks) <= set(rep.excluded_features)


def test_check_leaks_small_sample_with_many_levels_is_not_a_leak():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"customer_id": range(60), "city": [f"city{i % 30}" for i in range(60)]})
    y = pd.Series(rng.integers(0, 2, 60))
    rep = ValidationReport()
    assert check_leaks(df, y, Schema(kind="users", roles={"user_id": "customer_id"}), rep) == []


def test_validate_dataset():
    frame = pd.DataFrame({"user_id": [f"u{i}" for i in range(30)], "churned": [1] * 5 + [0] * 25})
    rep = validate_dataset(frame)
    assert rep.get("too_few_churners").count == 5 and "churned" in rep.get("too_few_churners").message
    small = validate_dataset(frame.head(10))
    assert small.get("too_few_users").count == 10
    ok = pd.DataFrame({"user_id": [f"u{i}" for i in range(60)], "churned": [1, 0] * 30})
    assert validate_dataset(ok).ok and MIN_USERS <= 60


def test_report_api():
    rep = ValidationReport()
    rep.add("info", "x", "an info", 1)
    rep.add("error", "y", "an error", np.int64(2), [np.int64(3), pd.Timestamp("2023-01-01")], "fix it")
    assert not rep.ok and [f.code for f in rep.sorted()] == ["y", "x"]
    assert rep.get("y").examples == [3, "2023-01-01 00:00:00"]
    json.dumps(rep.as_list())
    with pytest.raises(ValueError):
        rep.add("fatal", "z", "bad severity")
    assert isinstance(rep.findings[0], Finding)


# ------------------------------------------------------------------------------------------------------ real files
@pytest.fixture(scope="module")
def online_retail_report():
    df = read_table(real_path("online_retail_ii_2009_2010.parquet"))
    return validate(df, infer_schema(df))


def test_real_online_retail_counts(online_retail_report):
    rep = online_retail_report
    _check_report(rep)
    expect = {"duplicate_rows": 6_865, "zero_price": 3_687, "cancellations": 10_206, "negative_quantity": 12_326,
              "negative_price": 3, "adjustments": 3, "missing_user_id": 107_927, "text_nan": 2_928}
    for code, count in expect.items():
        assert rep.get(code) is not None and rep.get(code).count == count, code
    assert rep.get("non_product_lines").count > 0
    assert {"POST", "DOT", "M"} <= set(rep.get("non_product_lines").examples)
    assert rep.ok and rep.get("bad_timestamp") is None and rep.get("future_timestamp") is None
    assert "2009-12-01 to 2010-12-09" in rep.get("time_span").message


def test_real_cdnow_counts():
    df = read_table(real_path("cdnow_master.txt"))
    rep = validate(df, infer_schema(df))
    _check_report(rep)
    assert rep.get("duplicate_rows").count == 255
    assert rep.get("zero_amount").count == 80
    assert rep.ok and rep.get("bad_timestamp") is None


def test_real_telco_report():
    df = read_table(real_path("telco_customer_churn.csv"))
    rep = validate(df, infer_schema(df))
    _check_report(rep)
    assert rep.ok
    assert rep.get("label_balance").count == 7_043
    assert rep.get("label_leak") is None and rep.get("identifier_feature") is None
    assert "customerID" not in rep.excluded_features


def test_real_cdnow_summary_without_label():
    df = read_table(real_path("cdnow_customers_summary.csv"))
    rep = validate(df, infer_schema(df))
    assert rep.get("no_label").severity == "warning" and rep.ok


# ------------------------------------------------------------------------------------------- property-based tests
_cells = st.one_of(st.none(), st.integers(-3, 3), st.floats(allow_nan=True, allow_infinity=True, width=32),
                   st.text(max_size=5), st.booleans(),
                   st.sampled_from(["2023-01-01", "31/12/2023 10:00", "C10", "A1", "yes", "no", "POST", "nan"]))


@st.composite
def frames(draw):
    names = draw(st.lists(st.sampled_from(["user_id", "date", "amount", "churn", "qty", "price", "event", "x", "sku",
                                           "order", "email", "active"]), min_size=1, max_size=7, unique=True))
    rows = draw(st.integers(0, 30))
    return pd.DataFrame({n: pd.Series(draw(st.lists(_cells, min_size=rows, max_size=rows)), dtype=object)
                         for n in names})


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(df=frames())
def test_property_validate_with_inferred_schema_never_crashes(df):
    rep = validate(df, infer_schema(df), now=NOW)
    _check_report(rep)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(df=frames(), data=st.data())
def test_property_validate_with_any_role_choice_never_crashes(df, data):
    cols = list(df.columns)
    roles = {r: data.draw(st.sampled_from(cols + [None]), label=r) for r in ROLES}
    kind = data.draw(st.sampled_from(["events", "users"]))
    schema = Schema(kind=kind, roles=roles, label_positive=data.draw(st.sampled_from([None, "yes", 1, True])),
                    purchase_values=data.draw(st.sampled_from([None, [], ["yes"]])))
    rep = validate(df, schema, now=NOW)
    _check_report(rep)


def test_mostly_numeric_text_column_is_reported():
    from retention_core.io import read_table
    from retention_core.roles import infer_schema
    from retention_core.validation import validate

    rows = "".join(f"u{i % 30},2024-01-{1 + i % 28:02d},{10 + i}\n" for i in range(200))
    df = read_table(("customer_id,order_date,amount\n" + rows + "u1,2024-02-01,inf\n").encode(), name="x.csv")
    rep = validate(df, infer_schema(df))
    f = rep.get("mostly_numeric_text")
    assert f is not None and f.severity == "warning" and "amount" in f.message and "inf" in f.examples
    clean = read_table(("customer_id,order_date,amount\n" + rows).encode(), name="y.csv")
    assert validate(clean, infer_schema(clean)).get("mostly_numeric_text") is None
