"""A corpus file uploaded on the app's Data page through streamlit.testing's AppTest, as an analyst would, and the
way back to the built-in sample: used by the app's bad-input tests and by the report's child process."""
from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from ui.state import Key, widget_key
from ui.tables import UPLOAD_TYPES

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")


def errors(at: AppTest) -> list[str]:
    return [str(e.value) for e in at.error]


def crash(at: AppTest) -> str | None:
    """What went wrong beyond a product message: an uncaught exception or the 'Details' box of a contained one."""
    if at.exception:
        return "; ".join(str(e.value) for e in at.exception)[:300]
    if "Details" in [e.label for e in at.expander]:
        return "unexpected failure: " + " | ".join(errors(at))[:300]
    return None


def upload_name(name: str) -> str:
    """The uploader only takes table extensions; other files (PDF, PNG, JSON...) arrive renamed, as .csv."""
    return name if any(name.lower().endswith("." + t) for t in UPLOAD_TYPES) else name + ".csv"


def upload_outcome(at: AppTest, case) -> tuple[str, str]:
    """Upload one corpus file on the Data page; ('read' | 'error' | 'crash', detail). Leaves the app on the upload."""
    name = upload_name(case.name)
    at.radio(key=widget_key(Key.W_SOURCE)).set_value("upload").run()
    if (bad := crash(at)) is not None:
        return "crash", f"choosing upload: {bad}"
    at.get("file_uploader")[0].set_value((name, case.data, "application/octet-stream"))
    at.run()
    if (bad := crash(at)) is not None:
        return "crash", bad
    table = at.session_state[str(Key.TABLE)] if str(Key.TABLE) in at.session_state else None
    if table is None or not str(table.name).startswith(name):
        errs = errors(at)
        return ("error", errs[0]) if errs else ("crash", "nothing read and no error shown")
    build = next((b for b in at.button if b.label == "Build dataset"), None)
    if build is not None:  # a table that was read goes one step further: the dataset builder
        build.click().run()
        if (bad := crash(at)) is not None:
            return "crash", f"building the dataset: {bad}"
    return "read", f"{table.kind} table, {table.rows} rows"


def back_to_sample(at: AppTest) -> str | None:
    """Switch back to the built-in sample; None when it loads cleanly, else what went wrong."""
    at.radio(key=widget_key(Key.W_SOURCE)).set_value("sample").run()
    if (bad := crash(at)) is not None:
        return bad
    if at.error:
        return "error on the sample: " + errors(at)[0]
    table = at.session_state[str(Key.TABLE)].table_key
    if at.selectbox(key=widget_key(Key.W_ROLE, table, "user_id")).value != "customer_id":
        return "the sample's columns are not recognised any more"
    return None
