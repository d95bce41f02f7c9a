"""At-risk lists and safe export: selection methods, budget math, value at risk, segment filters, formula-safe CSV,
streaming export and pseudonymised ids."""
from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from retention_core.errors import ConfigError
from retention_core.campaign import budget_contacts
from retention_core.scoring import at_risk_list, attach_reasons, list_summary
from retention_core.export import (export_csv, export_csv_bytes, pseudonymise, pseudonymise_list, readable_list,
                                   value_unit, write_table)
from retention_core.segments import risk_deciles

RISKY = ["=1+1", "+cmd", "-2+3", "@SUM(A1)", "\tTAB", "\rCR"]


def _scored(n: int = 100, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    p = rng.random(n)
    order = np.argsort(-p, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(1, n + 1)
    scores = pd.DataFrame({"user_id": [f"u{i:04d}" for i in range(n)], "churn_probability": p,
                           "risk_decile": risk_deciles(p), "rank": rank})
    frame = pd.DataFrame({"user_id": scores["user_id"], "snapshot_date": pd.Timestamp("2024-03-31"),
                          "country": rng.choice(["DE", "FR", "UK"], n), "channel": rng.choice(["web", "app"], n),
                          "revenue_365d": rng.gamma(2.0, 50.0, n), "orders_365d": rng.integers(0, 10, n),
                          "recency_days": rng.integers(0, 300, n)})
    return scores, frame


# ----------------------------------------------------------------------------------------------- selection
def test_threshold_selects_everyone_at_or_above_it():
    scores, frame = _scored()
    out = at_risk_list(scores, frame, method="threshold", threshold=0.7, model="logreg")
    assert len(out) == int((scores["churn_probability"] >= 0.7).sum())
    assert out["churn_probability"].min() >= 0.7
    assert out["rank"].tolist() == sorted(out["rank"])
    assert list(out.columns[:4]) == ["user_id", "churn_probability", "risk_decile", "rank"]
    assert {"country", "channel", "value", "value_at_risk", "threshold", "model", "scoring_date"} <= set(out.columns)
    assert (out["threshold"] == 0.7).all() and (out["model"] == "logreg").all()
    assert (out["scoring_date"] == "2024-03-31").all()


@pytest.mark.parametrize("k", [1, 7, 100, 250])
def test_top_k_selects_exactly_k_users_most_at_risk(k):
    scores, frame = _scored()
    out = at_risk_list(scores, frame, method="top_k", k=k)
    assert len(out) == min(k, len(scores))
    assert out["rank"].tolist() == list(range(1, len(out) + 1))
    assert out["churn_probability"].is_monotonic_decreasing


def test_budget_pays_for_floor_of_budget_over_cost():
    assert budget_contacts(100, 2.5) == 40
    assert budget_contacts(0.3, 0.1) == 3  # exact for amounts typed in decimals
    assert budget_contacts(99.99, 10) == 9
    assert budget_contacts(0, 1) == 0
    scores, frame = _scored()
    out = at_risk_list(scores, frame, method="budget", budget=55, cost_per_contact=2)
    assert len(out) == 27 and out["rank"].tolist() == list(range(1, 28))
    assert len(at_risk_list(scores, frame, method="budget", budget=1, cost_per_contact=2)) == 0
    assert len(at_risk_list(scores, frame, method="budget", budget=1e6, cost_per_contact=1)) == len(scores)
    for budget, cost in [(-1, 1), (10, 0), (10, -2)]:
        with pytest.raises(ConfigError):
            at_risk_list(scores, frame, method="budget", budget=budget, cost_per_contact=cost)
    with pytest.raises(ConfigError):
        at_risk_list(scores, frame, method="budget", budget=10)


def test_value_at_risk_orders_by_probability_times_revenue():
    scores, frame = _scored()
    out = at_risk_list(scores, frame, method="value", k=10)
    assert out.attrs["value_basis"] == "revenue_365d"
    var = scores["churn_probability"] * frame["revenue_365d"]
    assert len(out) == 10
    assert out["value_at_risk"].is_monotonic_decreasing
    assert out["value_at_risk"].tolist() == pytest.approx(sorted(var, reverse=True)[:10])
    assert out["value_at_risk"].tolist() == pytest.approx((out["churn_probability"] * out["value"]).tolist())
    # a small, valuable user outranks a likely churner of little value
    s = pd.DataFrame({"user_id": ["a", "b"], "churn_probability": [0.9, 0.3], "risk_decile": [1, 6], "rank": [1, 2]})
    f = pd.DataFrame({"user_id": ["a", "b"], "revenue_total": [10.0, 1000.0]})
    assert at_risk_list(s, f, method="value")["user_id"].tolist() == ["b", "a"]
    # without revenue: past orders stand for the purchases a churner takes away; without either: one per user
    f2 = f.drop(columns="revenue_total").assign(orders_365d=[1, 5])
    assert at_risk_list(s, f2, method="value").attrs["value_basis"] == "orders_365d"
    plain = at_risk_list(s, None, method="value")
    assert plain.attrs["value_basis"] is None and plain["user_id"].tolist() == ["a", "b"]
    # value with a budget or a threshold
    assert len(at_risk_list(scores, frame, method="value", budget=30, cost_per_contact=3)) == 10
    above = at_risk_list(scores, frame, method="value", threshold=0.5)
    assert len(above) == int((scores["churn_probability"] >= 0.5).sum())
    assert above["value_at_risk"].is_monotonic_decreasing
    explicit = at_risk_list(scores, frame, method="value", k=5, value_col="orders_365d")
    assert explicit.attrs["value_basis"] == "orders_365d"
    with pytest.raises(ConfigError, match="nope"):
        at_risk_list(scores, frame, method="value", value_col="nope")


def test_segment_filter_by_attribute_and_risk_decile():
    scores, frame = _scored(200)
    out = at_risk_list(scores, frame, method="threshold", threshold=0.0, segment_filter={"country": ["DE", "FR"]})
    assert set(out["country"]) <= {"DE", "FR"} and len(out) == int(frame["country"].isin(["DE", "FR"]).sum())
    top = at_risk_list(scores, frame, method="top_k", k=5, segment_filter={"country": "UK", "risk_decile": [1, 2]})
    assert len(top) == 5 and (top["country"] == "UK").all() and top["risk_decile"].isin([1, 2]).all()
    uk = scores.loc[(frame["country"] == "UK") & scores["risk_decile"].isin([1, 2])].sort_values("rank")
    assert top["user_id"].tolist() == uk["user_id"].head(5).tolist()  # the riskiest within the segment
    assert len(at_risk_list(scores, frame, method="top_k", k=5, segment_filter={"country": []})) == 5  # no filter
    with pytest.raises(ConfigError, match="plan"):
        at_risk_list(scores, frame, method="top_k", k=5, segment_filter={"plan": ["gold"]})


def test_reasons_and_summary():
    scores, frame = _scored(20)
    reasons = [[f"r1-{i}" for i in range(20)], [f"r2-{i}" for i in range(20)], [""] * 20]
    out = at_risk_list(scores, frame, method="top_k", k=3, reasons=reasons)
    cols = list(out.columns)
    assert cols.index("reason_1") > cols.index("channel") and cols.index("reason_3") < cols.index("value")
    first = scores.sort_values("rank").index[:3]
    assert out["reason_1"].tolist() == [f"r1-{i}" for i in first]
    plain = at_risk_list(scores, frame, method="top_k", k=3)
    again = attach_reasons(plain, [["a", "b", "c"], ["d", "e", "f"]])
    assert again["reason_2"].tolist() == ["d", "e", "f"] and list(again.columns).index("reason_2") < \
        list(again.columns).index("value")
    s = list_summary(plain)
    assert s["users"] == 3 and s["expected_churners"] == pytest.approx(plain["churn_probability"].sum())
    assert s["value_at_risk"] == pytest.approx(plain["value_at_risk"].sum())


def test_bad_settings_are_refused_with_a_message():
    scores, frame = _scored(10)
    with pytest.raises(ConfigError, match="between 0 and 1"):
        at_risk_list(scores, frame, method="threshold", threshold=1.5)
    with pytest.raises(ConfigError, match="at least 1"):
        at_risk_list(scores, frame, method="top_k", k=0)
    with pytest.raises(ConfigError, match="Unknown selection"):
        at_risk_list(scores, frame, method="random")
    with pytest.raises(ConfigError):
        at_risk_list(scores, frame.iloc[:5], method="top_k", k=1)


# ----------------------------------------------------------------------------------------------- export
def _hostile() -> pd.DataFrame:
    n = len(RISKY)
    return pd.DataFrame({"user_id": RISKY, "churn_probability": np.linspace(0.9, 0.4, n),
                         "risk_decile": np.arange(1, n + 1), "rank": np.arange(1, n + 1),
                         "country": RISKY[::-1], "reason_1": [f"{r} plus text" for r in RISKY],
                         "value": [-5.0, -2.5, 0.0, 3.0, -1e6, 7.25], "delta": [-1, -2, 3, -4, 5, -6],
                         "model": "logreg", "scoring_date": "2024-03-31"})


def test_csv_neutralises_formula_cells_and_keeps_numbers_numeric():
    df = _hostile()
    data = export_csv_bytes(df)
    back = pd.read_csv(io.BytesIO(data), dtype={"user_id": str, "country": str, "reason_1": str},
                       keep_default_na=False)
    for col in ("user_id", "country", "reason_1"):
        assert all(v.startswith("'") for v in back[col]), (col, back[col].tolist())
        assert [v[1:] for v in back[col]] == df[col].tolist()  # the text itself survives, only prefixed
    for col in ("churn_probability", "value", "delta", "risk_decile", "rank"):
        assert pd.api.types.is_numeric_dtype(back[col]), col
        assert back[col].tolist() == pytest.approx(df[col].tolist())
    raw = data.decode("utf-8")
    assert ",-5.0," in raw and ",-1000000.0," in raw  # negative numbers are written as numbers, unquoted
    assert "\n=" not in raw and ",=" not in raw and ",+" not in raw and ",@" not in raw and "\n@" not in raw
    assert ",-2+3" not in raw and ",\t" not in raw and ",\r" not in raw and "\n\r" not in raw
    assert df["user_id"].tolist() == RISKY  # the list itself is left alone


def test_formula_like_column_names_are_neutralised():
    df = pd.DataFrame({"=HYPERLINK()": ["x"], "ok": [1]})
    header = export_csv_bytes(df).decode().splitlines()[0]
    assert header == "'=HYPERLINK(),ok"


def test_streaming_export_matches_the_in_memory_export(tmp_path):
    rng = np.random.default_rng(3)
    n = 2_537
    df = pd.DataFrame({"user_id": [("=" if i % 97 == 0 else "u") + str(i) for i in range(n)],
                       "churn_probability": rng.random(n), "rank": np.arange(1, n + 1),
                       "reason_1": rng.choice(["-no order", "few visits", "+cmd", ""], n),
                       "value": rng.normal(0, 100, n), "scoring_date": pd.Timestamp("2024-03-31")})
    whole = export_csv_bytes(df, chunk_rows=10 ** 7)
    for chunk in (1, 100, 1_000, 2_537):
        assert export_csv_bytes(df, chunk_rows=chunk) == whole
    path = tmp_path / "out" / "list.csv"
    assert export_csv(df, path, chunk_rows=300) == n
    assert path.read_bytes() == whole
    text = io.StringIO()
    export_csv(df, text, chunk_rows=512)
    assert text.getvalue().encode() == whole
    write_table(df, tmp_path / "same.csv", chunk_rows=700)  # the CLI writer produces the same bytes
    assert (tmp_path / "same.csv").read_bytes() == whole
    assert not [p for p in path.parent.iterdir() if p.name != "list.csv"], "no temporary file left behind"
    assert "2024-03-31" in whole.decode().splitlines()[1]


def test_empty_list_exports_a_header():
    df = _hostile().iloc[:0]
    lines = export_csv_bytes(df).decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("user_id,churn_probability")


def test_pseudonymise_is_stable_per_key_and_key_dependent():
    ids = pd.Series(["u1", "u2", "u1", 42], index=[10, 11, 12, 13])
    a = pseudonymise(ids, "secret-key")
    assert list(a.index) == [10, 11, 12, 13]
    assert a.iloc[0] == a.iloc[2] and a.iloc[0] != a.iloc[1]
    assert all(len(v) == 16 and int(v, 16) >= 0 for v in a)
    assert pseudonymise(ids, "secret-key").tolist() == a.tolist()  # stable
    assert pseudonymise(["u1"], b"secret-key") == [a.iloc[0]]
    b = pseudonymise(ids, "another-key")
    assert not set(a) & set(b)  # key-dependent
    assert pseudonymise(["42"], "secret-key") == [a.iloc[3]]  # the id's text is what counts
    assert len(pseudonymise(["u1"], "k" * 8, length=32)[0]) == 32
    with pytest.raises(ConfigError):
        pseudonymise(ids, "")
    scores, frame = _scored(5)
    out = pseudonymise_list(at_risk_list(scores, frame, method="top_k", k=5), "secret-key")
    assert not set(out["user_id"]) & set(scores["user_id"])


# ----------------------------------------------------------------------------------------------- what people read
def test_exported_list_rounds_probabilities_and_amounts_and_names_the_unit():
    """Probabilities to 4 decimals, amounts to 2 with the unit in the column name; rounding after ranking, so the
    ranks and the order are those of the exact figures, and the first columns keep their names."""
    scores, frame = _scored()
    scores.loc[0, "churn_probability"] = 0.8490112847743372
    frame.loc[0, "revenue_365d"] = 200.10000000000002
    out = at_risk_list(scores, frame, method="top_k", k=100)
    back = pd.read_csv(io.BytesIO(export_csv_bytes(readable_list(out))), dtype={"user_id": str})
    assert list(back.columns[:4]) == ["user_id", "churn_probability", "risk_decile", "rank"]
    assert "value (currency of the log)" in back.columns and "value_at_risk (currency of the log)" in back.columns
    assert "value" not in back.columns
    text = export_csv_bytes(readable_list(out)).decode()
    assert "0.8490112847743372" not in text and "200.10000000000002" not in text
    assert "0.849" in text and "200.1" in text
    for c in ("churn_probability",):
        assert (back[c] == back[c].round(4)).all()
    for c in ("value (currency of the log)", "value_at_risk (currency of the log)"):
        assert (back[c] == back[c].round(2)).all()
    assert back["user_id"].tolist() == out["user_id"].tolist() and back["rank"].tolist() == out["rank"].tolist()


@pytest.mark.parametrize("basis, unit", [("revenue_365d", "currency of the log"), ("orders_365d", "orders"),
                                         (None, "customers"), ("one per user", "customers"),
                                         ("points", "units of points")])
def test_value_unit_follows_what_the_value_is_based_on(basis, unit):
    assert value_unit(basis) == unit
