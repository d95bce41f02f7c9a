"""The list download: a download that records the scoring (it reruns the page) hands its bytes to the button, made
once per list; a download that does not rerun the page makes its file on the click."""
from __future__ import annotations

from streamlit.testing.v1 import AppTest


def _script():
    import pandas as pd
    import streamlit as st

    from retention_core import export
    from ui import widgets

    made = st.session_state.setdefault("made", [])
    real = export.export_csv_bytes

    def counted(df, **kw):
        made.append(len(df))
        return real(df, **kw)

    export.export_csv_bytes = counted
    try:
        n = st.session_state.get("rows", 2)
        df = pd.DataFrame({"user_id": [f"u{i}" for i in range(n)], "churn_probability": [0.123456789] * n})
        widgets.list_download(df, "recorded.csv", "rec", label="Recording", on_download=lambda: None)
        widgets.list_download(df, "plain.csv", "plain", label="Plain")
    finally:
        export.export_csv_bytes = real


def _buttons(at: AppTest) -> dict:
    return {b.proto.label: b.proto for b in at.get("download_button")}


def test_a_download_that_reruns_the_page_is_not_made_on_the_click():
    at = AppTest.from_function(_script, default_timeout=60).run()
    assert not at.exception, at.exception
    got = _buttons(at)
    # recording reruns the page: a file made on the click could be dropped by that rerun before the browser fetched it
    assert got["Recording"].url and not got["Recording"].deferred_file_id
    assert got["Plain"].deferred_file_id and not got["Plain"].url  # nothing reruns: made on the click
    assert at.session_state["made"] == [2], "the recorded list's CSV is made once, the plain one not before a click"
    at.run()
    assert at.session_state["made"] == [2], "a rerun with the same list does not write its CSV again"
    first = _buttons(at)["Recording"].url
    at.session_state["rows"] = 3
    at.run()
    assert at.session_state["made"] == [2, 3], "another list is written again"
    assert _buttons(at)["Recording"].url != first
