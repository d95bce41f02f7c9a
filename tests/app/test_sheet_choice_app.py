"""The Data page opens a workbook on its main table, not on the data dictionary before it, and says why; the
analyst's own choice of sheet wins (streamlit.testing AppTest)."""
from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from bench.badinput.corpus import dictionary_workbook
from ui.state import Key, widget_key

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
TIMEOUT = 120


def _captions(at: AppTest) -> str:
    return "\n".join(str(c.value) for c in at.caption)


def test_a_workbook_opens_on_its_main_table_and_says_why():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.radio(key=widget_key(Key.W_SOURCE)).set_value("upload").run()
    at.get("file_uploader")[0].set_value(("customers.xlsx", dictionary_workbook(), "application/octet-stream"))
    at.run()
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    up = at.session_state[str(Key.UPLOAD)]
    picker = at.selectbox(key=widget_key(Key.W_SHEET, up.digest))
    assert picker.value == "Customers" and picker.options == ["Data dictionary", "Customers"]
    assert "Opened sheet 'Customers': the sheet with the table (300 rows x 20 columns); 'Data dictionary' " \
           "describes its columns rather than holding data." in _captions(at)
    table = at.session_state[str(Key.TABLE)]
    assert table.kind == "users" and table.rows == 300
    key = table.table_key
    assert at.selectbox(key=widget_key(Key.W_ROLE, key, "user_id")).value == "customer_id"
    assert at.selectbox(key=widget_key(Key.W_ROLE, key, "label")).value == "churned"

    picker.set_value("Data dictionary").run()  # the analyst's choice wins, and the default is still explained
    assert not at.exception, at.exception
    assert at.session_state[str(Key.TABLE)].name == "customers.xlsx [Data dictionary]"
    assert "Reading sheet 'Data dictionary', as chosen; by default the studio opens 'Customers'" in _captions(at)
