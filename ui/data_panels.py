"""The Data page's panels: the data source and upload (with the Excel sheet), what the product understood of the
table, the data checks, a preview, cohort retention and the dataset builder."""
from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from retention_core import plots
from retention_core.roles import ROLE_LABELS, ROLES, Schema
from retention_core.validation import ValidationReport

from . import cache, state, tables
from .state import SAMPLE, UPLOAD, Key, widget_key
from .tables import UPLOAD_TYPES, LoadedTable
from .widgets import NONE, fmt_int, guard

KIND_LABELS = {"events": "Event log (one row per event)", "users": "User table (one row per user)"}
SOURCE_LABELS = {SAMPLE: "Built-in sample", UPLOAD: "Upload a file"}
EVENT_ROLES = [r for r in ROLES if r != "label"]
USER_ROLES = ["user_id", "label", "amount", "category"]
SEVERITY_COLOURS = {"error": "#FDE2E1", "warning": "#FFF4D6", "info": "#EAF2FB"}
PERIOD_NAMES = {"M": "Month", "Q": "Quarter", "W": "Week"}
MAX_PERIODS = {"M": 12, "Q": 8, "W": 12}


# ------------------------------------------------------------------------------------------------ state from widgets
def _commit_override(table_key: str, name: str, wkey: str, kind: str | None = None) -> None:
    value = state.widget_value(wkey)
    if name in ROLES and value == NONE:
        value = None
    if kind is not None and "kind" not in state.get_overrides(table_key):
        state.set_override(table_key, "kind", kind)  # editing columns keeps the kind on screen
    state.set_override(table_key, name, value)
    if name == "label":
        state.drop_override(table_key, "label_positive")  # a new label column has other values


def _commit_source(wkey: str) -> None:
    state.set_source(state.widget_value(wkey) or SAMPLE)


def _commit_sheet(digest: str, wkey: str) -> None:
    state.set_sheet(digest, state.widget_value(wkey))


# ------------------------------------------------------------------------------------------------ source
def choose_table() -> LoadedTable | None:
    """The data source picker (sample or upload, with a sheet picker for Excel); the table read, or None."""
    wkey = widget_key(Key.W_SOURCE)
    state.set_widget(wkey, state.get_source())
    source = st.radio("Data source", [SAMPLE, UPLOAD], format_func=SOURCE_LABELS.get, horizontal=True, key=wkey,
                      on_change=_commit_source, args=(wkey,))
    if source == SAMPLE:
        st.caption("A synthetic online shop: 2,000 customers over two years of views, carts, purchases and returns. "
                   "Switch to *Upload a file* to use your own data.")
        with guard("reading the sample data") as g:
            table = tables.sample()
        return None if g.failed else table

    uploaded = st.file_uploader(
        "Upload an event log or a user table", type=UPLOAD_TYPES, key=str(Key.W_UPLOADER),
        help="CSV, TSV or other delimited text (also gzip or zip compressed), Parquet or Excel (.xlsx). "
             "An event log has one row per event (user, timestamp, ...); a user table one row per user.")
    current = state.get_upload()
    if uploaded is not None and (current is None or current.file_id != uploaded.file_id):
        current = tables.accept_upload(uploaded.name, uploaded.getvalue(), file_id=uploaded.file_id)
    if current is None:
        st.info("Upload a file to begin, or switch back to the built-in sample.", icon=":material/upload_file:")
        return None
    if uploaded is None:
        c1, c2 = st.columns([4, 1], vertical_alignment="center")
        c1.caption(f"Using **{current.name}** ({current.size_mb:,.1f} MB), uploaded earlier in this session. "
                   "Upload another file to replace it.")
        c2.button("Forget this file", icon=":material/delete:", on_click=tables.forget_upload)
    return _upload_with_sheet(current)


def _upload_with_sheet(up: state.Upload) -> LoadedTable | None:
    """The upload read; for a workbook with several sheets, a sheet picker that opens on the library's choice (the
    main table) and says why."""
    with guard(f"reading {up.name}") as g:
        table = tables.read_upload(up)
    if g.failed:
        return None
    info = table.df.attrs.get("read_info", {})
    sheets = info.get("sheets") or []
    if len(sheets) <= 1:
        return table
    auto = info.get("sheet")
    wkey = widget_key(Key.W_SHEET, up.digest)
    chosen = state.get_sheet(up.digest) or auto
    state.set_widget(wkey, chosen if chosen in sheets else auto)
    sheet = st.selectbox("Sheet", sheets, key=wkey, on_change=_commit_sheet, args=(up.digest, wkey),
                         help="The sheet holding the main table is read by default; pick another to read it.")
    why = info.get("sheet_reason")
    st.caption(f"Opened sheet {auto!r}: {why}." if sheet == auto else
               f"Reading sheet {sheet!r}, as chosen; by default the studio opens {auto!r} ({why}).")
    if sheet == auto:
        return table
    with guard(f"reading sheet {sheet!r}") as g:
        table = tables.read_upload(up, sheet)
    return None if g.failed else table


# ------------------------------------------------------------------------------------------------ schema
def understood(df: pd.DataFrame, key: str) -> Schema | None:
    """'What we understood': the table's kind and each column's role, every one with an override that wins."""
    st.subheader("What we understood", anchor=False)
    overrides = state.get_overrides(key)
    with guard("working out what the columns mean") as g:
        schema = cache.infer_schema(key, json.dumps(overrides, sort_keys=True, default=str), df)
    if g.failed:
        st.button("Reset to what was detected", icon=":material/restart_alt:", on_click=state.clear_overrides,
                  args=(key,), key=widget_key(Key.W_ROLE, key, "reset-failed"))
        return None
    top = st.columns([2, 3], vertical_alignment="bottom")
    kkey = widget_key(Key.W_KIND, key)
    state.set_widget(kkey, schema.kind)
    top[0].radio("This table is", ["events", "users"], format_func=KIND_LABELS.get, key=kkey, horizontal=True,
                 on_change=_commit_override, args=(key, "kind", kkey),
                 help="An event log becomes labelled snapshots (churned = no purchase within the horizon); a user "
                      "table needs a label column.")
    with top[1]:
        for note in schema.notes:
            st.caption(note)
        if overrides:
            st.button("Reset to what was detected", icon=":material/restart_alt:", on_click=state.clear_overrides,
                      args=(key,), key=widget_key(Key.W_ROLE, key, "reset"))
    _role_pickers(df, key, schema, overrides)
    return schema


def _role_pickers(df: pd.DataFrame, key: str, schema: Schema, overrides: dict) -> None:
    """One picker per column role, the user attributes, and the purchase events or the label's churn value."""
    columns = [str(c) for c in df.columns]
    visible = EVENT_ROLES if schema.kind == "events" else USER_ROLES
    grid = st.columns(4)
    for i, role in enumerate(visible):
        wkey = widget_key(Key.W_ROLE, key, role)
        current = schema.roles.get(role)
        state.set_widget(wkey, current if current in columns else NONE)
        mark = " (your choice)" if role in overrides else ""
        grid[i % 4].selectbox(ROLE_LABELS[role] + mark, [NONE] + columns, key=wkey, on_change=_commit_override,
                              args=(key, role, wkey, schema.kind))
    used = [c for c in schema.roles.values() if c]
    dup = sorted({c for c in used if used.count(c) > 1})
    if dup:
        st.warning(f"{', '.join(repr(c) for c in dup)} is chosen for more than one role. Each column should have one "
                   "role.", icon=":material/warning:")
    cols = st.columns(2)
    akey = widget_key(Key.W_ATTRIBUTES, key)
    options = [c for c in columns if c not in used or c in schema.attributes]
    state.set_widget(akey, [a for a in schema.attributes if a in options])
    cols[0].multiselect("User attributes (for segments)", options, key=akey, on_change=_commit_override,
                        args=(key, "attributes", akey),
                        help="Columns that describe a user (country, channel, plan...): used as features and to "
                             "compare segments.")
    if schema.kind == "users":
        roles = (schema.roles.get("user_id"), schema.roles.get("label"))
        _id_picker(key, schema, [c for c in columns if c not in roles])
    with cols[1]:
        if schema.kind == "events" and schema.roles.get("event_type"):
            _purchase_picker(df, key, schema)
        elif schema.kind == "users" and schema.roles.get("label"):
            _positive_picker(df, key, schema)
        elif schema.kind == "users":
            st.info("Choose the **Churn label** column: the one that says whether each user churned.",
                    icon=":material/label:")


def _id_picker(key: str, schema: Schema, options: list[str]) -> None:
    """The user table's identifiers (row numbers, ids, names) left out of the features, with why; removing one puts
    it back as a feature, adding one leaves it out."""
    ikey = widget_key(Key.W_ATTRIBUTES, key, "ids")
    state.set_widget(ikey, [str(c) for c in schema.id_columns if str(c) in options])
    why = "; ".join(f"{c}: {r}" for c, r in schema.id_columns.items())
    st.multiselect("Identifiers left out (not features)", options, key=ikey, on_change=_commit_override,
                   args=(key, "id_columns", ikey, schema.kind),
                   help="Columns that name a customer rather than describe one: row numbers, ids, names. Remove one "
                        "to put it back as a feature." + (f" Found: {why}." if why else ""))
    if schema.kept_columns:
        st.caption(f"Put back as features: {', '.join(map(str, schema.kept_columns))}.")


def _purchase_picker(df: pd.DataFrame, key: str, schema: Schema) -> None:
    col = schema.roles["event_type"]
    with guard("listing the event types") as g:
        values = [str(v) for v in cache.column_values(key, col, df)]
    if g.failed:
        return
    current = [str(v) for v in (schema.purchase_values or [])]
    options = values + [v for v in current if v not in values]
    pkey = widget_key(Key.W_PURCHASE, key)
    state.set_widget(pkey, current)
    st.multiselect(f"Event types that count as a purchase ({col})", options, key=pkey,
                   on_change=_commit_override, args=(key, "purchase_values", pkey),
                   help="A user who makes none of these within the horizon is counted as churned.")


def _positive_picker(df: pd.DataFrame, key: str, schema: Schema) -> None:
    col = schema.roles["label"]
    with guard("listing the label values") as g:
        values = cache.column_values(key, col, df, limit=10)
    if g.failed:
        return
    pkey = widget_key(Key.W_POSITIVE, key, col)
    match = [v for v in values if v == schema.label_positive or str(v) == str(schema.label_positive)]
    if match:
        state.set_widget(pkey, match[0])
    st.selectbox(f"Value of {col!r} that means churned", values, key=pkey, index=None if not match else 0,
                 placeholder="Choose the value that means churned", on_change=_commit_override,
                 args=(key, "label_positive", pkey))


# ------------------------------------------------------------------------------------------------ checks and facts
def validation_panel(report: ValidationReport) -> None:
    """The validation report as a table coloured by severity, with a one-line summary."""
    st.subheader("Data checks", anchor=False)
    n = {s: sum(f.severity == s for f in report.findings) for s in ("error", "warning", "info")}
    line = (f"{n['error']} error{'s' * (n['error'] != 1)}, {n['warning']} warning{'s' * (n['warning'] != 1)}, "
            f"{n['info']} note{'s' * (n['info'] != 1)}.")
    if n["error"]:
        st.error(f"{line} Errors must be fixed (in the column choices above or in the file) before a dataset can "
                 "be built.", icon=":material/error:")
    elif n["warning"]:
        st.warning(f"{line} Warnings are handled as the table says.", icon=":material/warning:")
    else:
        st.success(f"{line} The data is ready to use.", icon=":material/check_circle:")
    frame = report.to_frame().drop(columns=["code"])
    if frame.empty:
        return
    styled = frame.style.apply(lambda row: [f"background-color: {SEVERITY_COLOURS.get(row['severity'], '')}"]
                               * len(row), axis=1)
    st.dataframe(styled, hide_index=True, width="stretch", column_config={
        "severity": st.column_config.TextColumn("severity", width=80),
        "issue": st.column_config.TextColumn("issue", width=340),
        "count": st.column_config.NumberColumn("count", format="localized", width=80),
        "examples": st.column_config.TextColumn("examples", width=200,
                                                help="Row numbers as a spreadsheet shows them, or values"),
        "what we do": st.column_config.TextColumn("what we do", width=420),
    })


def _span(facts: dict) -> tuple[str, str | None]:
    start, end = facts.get("start"), facts.get("end")
    if start is None or end is None or pd.isna(start) or pd.isna(end):
        return "-", None
    days = (pd.Timestamp(end) - pd.Timestamp(start)).days
    return f"{days:,} days", f"{pd.Timestamp(start):%Y-%m-%d} to {pd.Timestamp(end):%Y-%m-%d}"


def _read_line(info: dict) -> str:
    delim = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe", r"\s+": "spaces"}
    parts = [f"Read as {info.get('format', '?')}"]
    if info.get("compression"):
        parts.append(f"{info['compression']} compressed")
    if info.get("encoding"):
        parts.append(f"encoding {info['encoding']}")
    if info.get("delimiter"):
        parts.append(f"delimiter {delim.get(info['delimiter'], repr(info['delimiter']))}")
    if info.get("sheet"):
        parts.append(f"sheet {info['sheet']!r} of {len(info.get('sheets') or [])}")
    size = info.get("size_bytes")
    if size:
        parts.append(f"{size / 1e6:,.1f} MB" if size >= 100_000 else f"{size / 1e3:,.1f} KB")
    return ", ".join(parts) + "."


def facts_and_preview(df: pd.DataFrame, schema: Schema | None, facts: dict | None) -> None:
    """Basic facts (rows, users, time span, how the file was read) and the first rows."""
    st.subheader("Preview", anchor=False)
    facts = facts or {"rows": len(df), "columns": len(df.columns), "users": None}
    span, span_dates = _span(facts)
    c = st.columns(4)
    c[0].metric("Rows", fmt_int(facts["rows"]))
    c[1].metric("Users", fmt_int(facts.get("users")))
    c[2].metric("Columns", fmt_int(facts["columns"]))
    if schema is not None and schema.kind == "events":
        c[3].metric("Time span", span, help=span_dates)
    st.caption(_read_line(df.attrs.get("read_info", {})) + (f" Events from {span_dates}." if span_dates else ""))
    st.dataframe(df.head(100), hide_index=True, width="stretch", height=280)


def cohort_panel(df: pd.DataFrame, key: str, sj: str) -> None:
    """Cohort retention heatmap of an event log."""
    st.subheader("Cohort retention", anchor=False)
    head = st.columns([3, 1], vertical_alignment="bottom")
    pkey = widget_key(Key.W_COHORT, key)
    period = head[1].segmented_control("Cohorts by", list(PERIOD_NAMES), format_func=PERIOD_NAMES.get, default="M",
                                       key=pkey) or "M"
    head[0].caption(f"Customers grouped by the {PERIOD_NAMES[period].lower()} of their first purchase. Each cell is "
                    f"the share of the cohort that bought again that many {PERIOD_NAMES[period].lower()}s later; "
                    "empty cells are not observed yet.")
    with guard("computing cohort retention") as g:
        matrix = cache.cohort_retention(key, sj, period, MAX_PERIODS[period], df)
    if g.failed:
        return
    if period == "W" and len(matrix) > 26:
        matrix = matrix.iloc[-26:]
        st.caption("The 26 most recent weekly cohorts are shown.")
    st.plotly_chart(plots.cohort_heatmap(matrix, title=None), width="stretch",
                    key=widget_key(Key.W_COHORT, key, "chart"))
