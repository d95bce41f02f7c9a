"""Short text columns (a scoring request's cells) are typed in Python; the answer must be the Arrow path's, cell for
cell and type for type, or scoring a request would differ from scoring the same rows in a file."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from retention_core.cells import FEW_CELLS, _coerce_arrow, _coerce_few, coerce_types

# Cells built to reach every branch of the number rules: plain and signed integers, leading zeros, 64-bit limits,
# decimals, exponents, thousands separators both ways, currency signs, padding, empty and missing cells, words.
NUMBERY = st.sampled_from([
    "0", "7", "-3", "+5", "0042", "-0", "12.5", ".5", "5.", "1e3", "1E-2", "+1.5e+3", "1,234", "1,234.50", "1.234,50",
    "12,50", "1.234", "$12", "12 $", "$ 1,200.00", "-$5", "9223372036854775807", "9223372036854775808",
    "-9223372036854775808", "-9223372036854775809", "1e999", "1,2,3", "1.2.3", "", "  ", " 17 ", "abc", "A12",
    "12A", "C536379", "2011-06-30", "30/06/2011 10:00", "N/A", "e5", "1e", "-", "+", ".", ",", "$", "0.0", "00",
    "123456789012345678901234567890", "3.14159265358979323846", "1_000"])
ASCII = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=12)
CELL = st.one_of(NUMBERY, ASCII, st.none())


def _same(s: pd.Series) -> None:
    few = _coerce_few(s)
    assert few is not None
    pd.testing.assert_series_equal(few, _coerce_arrow(s), check_names=True)
    assert type(few.array) is type(_coerce_arrow(s).array)


@settings(max_examples=300, deadline=None)
@given(st.lists(CELL, min_size=1, max_size=12), st.booleans())
def test_python_typing_of_few_cells_equals_the_arrow_path(cells, as_text):
    s = pd.Series(cells, dtype="str" if as_text else object, name="c")
    _same(s)


@pytest.mark.parametrize("cells", [
    ["1", "2", "3"], ["1", None, "3"], ["01", "02"], ["1.5", "2"], ["1,234.50", "2,000"], ["1.234,50", "12,50"],
    ["$1", "$2.50"], ["x", "y"], [None, None], ["", " "], ["9223372036854775808"], ["2.0", "3.0"], ["1e3", "2e3"],
    [" 12 ", "13"], ["-0", "5"]])
def test_python_typing_of_known_columns(cells):
    _same(pd.Series(cells, dtype="str", name="c"))
    _same(pd.Series(cells, dtype=object, name="c"))


def test_other_text_takes_the_arrow_path():
    # Unicode spaces and letters, tabs, line ends: Python's and Arrow's rules differ there, so never typed in Python
    for cells in (["\u00a012"], ["12\t"], ["a\nb"], ["caf\u00e9"], ["\u0661\u0662"]):
        assert _coerce_few(pd.Series(cells, dtype="str")) is None
    assert _coerce_few(pd.Series([1, "2"], dtype=object)) is None  # not text: the object rules decide


def test_coerce_types_is_the_same_for_short_and_long_tables():
    rng = np.random.default_rng(0)
    pool = ["1", "2", "0042", "12.5", "1,234.50", "x", "", None, " 7 ", "$3"]
    for _ in range(40):
        cols = {f"c{i}": [pool[k] for k in rng.integers(0, len(pool), 6)] for i in range(4)}
        short = pd.DataFrame(cols, dtype="str")
        # the same cells with enough repeats to pass FEW_CELLS: typed by Arrow; the first rows must be identical
        long = pd.DataFrame({c: v * (FEW_CELLS // 6 + 1) for c, v in cols.items()}, dtype="str")
        a, b = coerce_types(short), coerce_types(long).iloc[:6]
        pd.testing.assert_frame_equal(a, b)


# ------------------------------------------------------------------------------------------- dates and duplicates
from retention_core import cells  # noqa: E402
from retention_core.cells import _few_iso_dates, parse_datetime  # noqa: E402
from retention_core.events import _few_duplicates, exact_duplicates  # noqa: E402

DATES = st.one_of(
    st.datetimes(min_value=pd.Timestamp("1990-01-01").to_pydatetime(),
                 max_value=pd.Timestamp("2030-12-31").to_pydatetime()).flatmap(lambda d: st.sampled_from([
                     d.strftime("%Y-%m-%d"), d.strftime("%Y-%m-%d %H:%M"), d.strftime("%Y-%m-%d %H:%M:%S"),
                     d.strftime("%Y-%m-%dT%H:%M:%S"), d.strftime("%Y-%m-%d %H:%M:%S.%f"),
                     d.strftime(" %Y-%m-%d %H:%M "), d.strftime("%d/%m/%Y"), d.strftime("%Y-%m-%d %H:%M:%SZ")])),
    st.sampled_from(["2011-02-30", "2011-13-01", "", "  ", "not a date", "20110630"]), st.none())


def _general_dates(s: pd.Series) -> pd.Series:
    saved, cells.FEW_CELLS = cells.FEW_CELLS, 0
    try:
        return parse_datetime(s)
    finally:
        cells.FEW_CELLS = saved


@settings(max_examples=300, deadline=None)
@given(st.lists(DATES, min_size=1, max_size=10))
def test_python_reading_of_few_iso_dates_equals_the_general_path(values):
    s = pd.Series(values, dtype="str", name="when")
    few = _few_iso_dates(s)
    if few is not None:
        pd.testing.assert_series_equal(few, _general_dates(s))
    pd.testing.assert_series_equal(parse_datetime(s), _general_dates(s))


def test_iso_dates_are_read_in_python_and_others_are_not():
    assert _few_iso_dates(pd.Series(["2011-06-30 10:05:00", None, "2011-01-02"], dtype="str")) is not None
    for other in (["30/06/2011"], ["2011-06-30 10:00:00+02:00"], ["2011-02-30"], [None, ""], ["20110630"]):
        assert _few_iso_dates(pd.Series(other, dtype="str")) is None


FRAME_CELLS = st.one_of(st.none(), st.sampled_from(["a", "b", " a", "1"]), st.integers(0, 2), st.sampled_from([
    0.0, -0.0, 1.0, 1.5, float("nan")]))


@settings(max_examples=300, deadline=None)
@given(st.integers(2, 4).flatmap(lambda k: st.lists(st.lists(FRAME_CELLS, min_size=k, max_size=k), min_size=1,
                                                        max_size=12)), st.booleans())
def test_duplicates_of_few_rows_equal_pandas(rows, typed):
    df = pd.DataFrame(rows, columns=[f"c{i}" for i in range(len(rows[0]))])
    if typed:
        from retention_core.cells import coerce_types
        df = coerce_types(df.astype(str).replace({"None": None, "nan": None}))
    few = _few_duplicates(df)
    assert few is not None
    assert _few_duplicates(df[["c0"]]) is None  # one column: pandas' own rule
    np.testing.assert_array_equal(few.to_numpy(), df.duplicated().to_numpy())
    np.testing.assert_array_equal(exact_duplicates(df).to_numpy(), df.duplicated().to_numpy())
