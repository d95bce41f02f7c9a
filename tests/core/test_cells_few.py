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
