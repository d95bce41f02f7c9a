"""The Segments page's custom filter through AppTest, every operator on a text and a numeric column.

A fast run is trained inline on the built-in sample; each case types a condition into the form the way an analyst
does (``DE, FR`` for ``in``, ``3, 6`` or ``6 and 3`` for ``between``), applies it, and checks the two segments'
sizes and the drill-down's users against the same condition computed directly with pandas on the run's validation
users. A bad entry is explained with an error and the page keeps working.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from ui.state import Key, widget_key

from tests.app.helpers import sample_run
from tests.app.helpers import env as _env

RUN = "custom segments run"
IN, REST = "in the filter", "everyone else"
NONE = "(none)"
DRILL_ROWS = 1000  # the drill-down lists at most this many users

Rule = Callable[[pd.DataFrame], pd.Series]

#: (column, operator, what the analyst types, the same condition in pandas). Missing values never match.
CASES: list[tuple[str, str, str, Rule]] = [
    ("country", "==", "DE", lambda v: v["country"] == "DE"),
    ("country", "!=", "US", lambda v: v["country"].notna() & (v["country"] != "US")),
    ("country", "<", "DE", lambda v: v["country"] < "DE"),  # text compares alphabetically
    ("country", "<=", "DE", lambda v: v["country"] <= "DE"),
    ("country", ">", "FR", lambda v: v["country"] > "FR"),
    ("country", ">=", "FR", lambda v: v["country"] >= "FR"),
    ("country", "in", "DE, FR", lambda v: v["country"].isin(["DE", "FR"])),
    ("country", "between", "CA, FR", lambda v: v["country"].between("CA", "FR")),
    ("orders_total", "==", "3", lambda v: v["orders_total"] == 3),
    ("orders_total", "!=", "3", lambda v: v["orders_total"].notna() & (v["orders_total"] != 3)),
    ("orders_total", "<", "3", lambda v: v["orders_total"] < 3),
    ("orders_total", "<=", "3", lambda v: v["orders_total"] <= 3),
    ("orders_total", ">", "10", lambda v: v["orders_total"] > 10),
    ("orders_total", ">=", "10", lambda v: v["orders_total"] >= 10),
    ("orders_total", "in", "2, 5, 8", lambda v: v["orders_total"].isin([2, 5, 8])),
    ("orders_total", "between", "3, 6", lambda v: v["orders_total"].between(3, 6)),
    ("orders_total", "between", "6 and 3", lambda v: v["orders_total"].between(3, 6)),  # bounds in any order
    ("rating_min", "!=", "5", lambda v: v["rating_min"].notna() & (v["rating_min"] != 5)),  # users with no rating
    ("rating_min", "between", "2, 4", lambda v: v["rating_min"].between(2, 4)),
    ("recency_days", "<", "30.5", lambda v: v["recency_days"] < 30.5),
    ("recency_days", "between", "30, 120", lambda v: v["recency_days"].between(30, 120)),
]


def _key(name: str) -> str:
    return widget_key(Key.W_SEGMENTS, RUN, "filter", name)


@pytest.fixture(scope="module")
def custom(tmp_path_factory) -> tuple[AppTest, pd.DataFrame]:
    """A session on the Segments page with "Custom filter" chosen, and the run's validation users."""
    tmp = tmp_path_factory.mktemp("custom-segments")
    with pytest.MonkeyPatch.context() as mp:
        _env(mp, tmp)
        at = sample_run(RUN)
        at.switch_page("pages/segments.py").run()
        assert not at.exception, at.exception
        at.get("button_group")[0].set_value("custom").run()
        assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
        validation = pd.read_parquet(Path(at.session_state[str(Key.RUNS)][RUN].path) / "validation.parquet")
        yield at, validation.reset_index(drop=True)


def _apply(at: AppTest, *rows: tuple[str, str, str]) -> AppTest:
    """Fill the form's rows (the others set to no column) and press "Apply filter"."""
    for i in range(3):
        column, op, text = rows[i] if i < len(rows) else (NONE, "==", "")
        at.selectbox(key=_key(f"col{i}")).set_value(column)
        at.selectbox(key=_key(f"op{i}")).set_value(op)
        at.text_input(key=_key(f"val{i}")).set_value(text)
    next(b for b in at.get("form_submit_button")).click()
    return at.run()


def _check_segments(at: AppTest, validation: pd.DataFrame, expected: pd.Series) -> None:
    """The comparison table and the drill-down agree with ``expected`` (a boolean mask of validation users)."""
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    n_in = int(expected.sum())
    assert 0 < n_in < len(validation), "each case should leave users on both sides"
    table = at.dataframe[0].value.set_index("segment")
    assert table["users"].to_dict() == {IN: n_in, REST: len(validation) - n_in}
    assert at.selectbox(key=widget_key(Key.W_SEGMENTS, RUN, "drill:custom:None")).value == IN
    users = at.dataframe[-1].value
    assert len(users) == min(n_in, DRILL_ROWS)
    assert set(users["user_id"]) <= set(validation.loc[expected.to_numpy(), "user_id"])


def test_the_operators_are_the_libraries(custom):
    from retention_core.segments import OPS

    at, _ = custom
    assert list(at.selectbox(key=_key("op0")).options) == list(OPS)


@pytest.mark.parametrize("column, op, text, rule", CASES, ids=[f"{c} {o} {t}" for c, o, t, _ in CASES])
def test_every_operator_on_text_and_numbers(custom, column, op, text, rule):
    at, validation = custom
    _apply(at, (column, op, text))
    _check_segments(at, validation, rule(validation).fillna(False).astype(bool))


def test_conditions_all_hold(custom):
    at, validation = custom
    _apply(at, ("country", "in", "US, GB"), ("recency_days", "between", "30, 200"), ("channel", "!=", "email"))
    v = validation
    expected = v["country"].isin(["US", "GB"]) & v["recency_days"].between(30, 200) & (v["channel"] != "email")
    _check_segments(at, validation, expected)
    # What was applied comes back in the form as typed, lists joined by commas.
    assert at.text_input(key=_key("val0")).value == "US, GB"
    assert at.text_input(key=_key("val1")).value == "30, 200"


@pytest.mark.parametrize("column, op, text, message", [
    ("recency_days", "between", "30", "two bounds"),
    ("recency_days", "between", "10, 20, 30", "two bounds"),
    ("country", "in", " , ", "at least one value"),
    ("recency_days", ">", "soon", "'soon'"),
    ("recency_days", "in", "5, soon", "'soon'"),
])
def test_a_bad_entry_is_explained_and_the_page_stays_usable(custom, column, op, text, message):
    at, validation = custom
    _apply(at, (column, op, text))
    assert not at.exception, at.exception
    assert at.error and message in at.error[0].value, [e.value for e in at.error]
    _apply(at, ("country", "in", "DE, FR"))  # corrected: the segments are back
    _check_segments(at, validation, validation["country"].isin(["DE", "FR"]))
