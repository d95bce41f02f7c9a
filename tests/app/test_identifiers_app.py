"""The Data page on a bank churn table: the row number and the surnames are left out of the features with a note in
the data checks, and the analyst puts one back from the list of identifiers."""
from __future__ import annotations

import pandas as pd
from streamlit.testing.v1 import AppTest

from tests.app.helpers import APP, button, no_exception
from tests.bank_table import GENUINE, bank_table
from ui.state import Key, widget_key


def _report(at: AppTest) -> pd.DataFrame:
    return next(d.value for d in at.dataframe if "severity" in getattr(d.value, "columns", []))


def _uploaded(at: AppTest, name: str, data: bytes) -> AppTest:
    at.radio(key=widget_key(Key.W_SOURCE)).set_value("upload").run()
    no_exception(at)
    at.get("file_uploader")[0].set_value((name, data, "application/octet-stream"))
    return no_exception(at.run())


def test_identifiers_are_noted_and_one_is_put_back():
    at = _uploaded(AppTest.from_file(APP, default_timeout=120).run(), "bank.csv",
                   bank_table(600).to_csv(index=False).encode())
    key = at.session_state[str(Key.TABLE)].table_key
    ids = at.multiselect(key=widget_key(Key.W_ATTRIBUTES, key, "ids"))
    assert ids.value == ["RowNumber", "Surname"]
    issues = list(_report(at)["issue"])
    assert "Column 'RowNumber' identifies customers: numbers 1 to 600 in row order (a row number)" in issues
    assert any(i.startswith("Column 'Surname' identifies customers") for i in issues)
    assert any("put it back" in a for a in _report(at)["what we do"])

    ids.set_value(["Surname"]).run()  # the analyst puts the row number back
    no_exception(at)
    assert at.multiselect(key=widget_key(Key.W_ATTRIBUTES, key, "ids")).value == ["Surname"]
    assert "Column 'RowNumber' looks like an identifier but was put back" in list(_report(at)["issue"])
    assert any("Put back as features: RowNumber" in c.value for c in at.caption)
    button(at, "Build dataset").click().run()
    no_exception(at)
    ds = at.session_state[str(Key.DATASET)]
    assert set(ds.numeric) | set(ds.categorical) == set(GENUINE) | {"RowNumber"}
