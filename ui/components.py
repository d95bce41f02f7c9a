"""Reusable widget groups: data source and upload, column mapping, checks, previews, dataset builder, error box.

Pages call these; they read and write state only through :mod:`ui.state` and get every result through :mod:`ui.cache`.
"""
from __future__ import annotations

import json
import traceback
from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st

from retention_core import io as rio
from retention_core import plots
from retention_core.errors import ConfigError as RetentionConfigError
from retention_core.errors import RetentionError
from retention_core.dataset import SnapshotConfig
from retention_core.roles import ROLE_LABELS, ROLES, Schema
from retention_core.bundle import refit_note
from retention_core.validation import ValidationReport, validate_dataset

from . import cache, state
from .state import SAMPLE, UPLOAD, Key, widget_key

NONE = "(none)"
KIND_LABELS = {"events": "Event log (one row per event)", "users": "User table (one row per user)"}
KIND_SHORT = {"events": "Event log", "users": "User table"}
SOURCE_LABELS = {SAMPLE: "Built-in sample", UPLOAD: "Upload a file"}
UPLOAD_TYPES = ["csv", "tsv", "txt", "gz", "zip", "parquet", "xlsx"]
EVENT_ROLES = [r for r in ROLES if r != "label"]
USER_ROLES = ["user_id", "label", "amount", "category"]
SEVERITY_COLOURS = {"error": "#FDE2E1", "warning": "#FFF4D6", "info": "#EAF2FB"}
DATA_PAGE = "app_pages/data.py"
TRAIN_PAGE = "app_pages/train.py"
EVALUATE_PAGE = "app_pages/evaluate.py"


# ================================================================================================ errors
class Guard:
    """``with guard("reading the file") as g: ...``: a product error becomes ``st.error`` with its message, anything
    unexpected a short message with the details in an expander. ``g.failed`` tells the caller to skip what depends
    on the result; the rest of the page and the session carry on."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.failed = False
        self.error: BaseException | None = None

    def __enter__(self) -> "Guard":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is None or not isinstance(exc, Exception):
            return False  # Streamlit's own stop and rerun signals pass through
        self.failed, self.error = True, exc
        show_error(exc, self.what)
        return True


def guard(what: str) -> Guard:
    return Guard(what)


def show_error(exc: BaseException, what: str | None = None) -> None:
    """An error box: the product's message as it is, or a short note plus details for anything unexpected."""
    if isinstance(exc, RetentionError):
        st.error(str(exc), icon=":material/error:")
        return
    st.error(f"Something went wrong while {what or 'working on this'}. Your data and earlier results are kept: "
             "change a setting and try again, or report the details below.", icon=":material/error:")
    with st.expander("Details"):
        st.code("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)), language=None)


# ================================================================================================ small helpers
def _sync(key: str, value: Any) -> None:
    """Show ``value`` in the widget ``key`` drawn next (state is the source of truth, widgets mirror it)."""
    state.set_widget(key, value)


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


def fmt_int(n: Any) -> str:
    return "-" if n is None or (isinstance(n, float) and pd.isna(n)) else f"{int(n):,}"


# ================================================================================================ source
@dataclass(frozen=True)
class LoadedTable:
    df: pd.DataFrame
    table_key: str
    name: str
    source: str


def accept_upload(name: str, data: bytes, file_id: str | None = None) -> state.Upload:
    """Take an uploaded file (name and bytes): keep it in the session and make it the data source.

    Reading happens later, through the cache keyed by the content digest, so a broken file only shows an error.
    """
    data = bytes(data)
    upload = state.Upload(name=str(name), data=data, digest=rio.digest(data), file_id=file_id)
    state.set_upload(upload)
    state.set_source(UPLOAD)
    return upload


def forget_upload() -> None:
    state.set_upload(None)


def choose_table() -> LoadedTable | None:
    """The data source picker (sample or upload, with a sheet picker for Excel); the table read, or None."""
    wkey = widget_key(Key.W_SOURCE)
    _sync(wkey, state.get_source())
    source = st.radio("Data source", [SAMPLE, UPLOAD], format_func=SOURCE_LABELS.get, horizontal=True, key=wkey,
                      on_change=_commit_source, args=(wkey,))
    if source == SAMPLE:
        st.caption("A synthetic online shop: 2,000 customers over two years of views, carts, purchases and returns. "
                   "Switch to *Upload a file* to use your own data.")
        with guard("reading the sample data") as g:
            df = cache.sample_table()
        if g.failed:
            return None
        return LoadedTable(df, df.attrs["digest"], df.attrs["read_info"]["name"], SAMPLE)

    uploaded = st.file_uploader(
        "Upload an event log or a user table", type=UPLOAD_TYPES, key=str(Key.W_UPLOADER),
        help="CSV, TSV or other delimited text (also gzip or zip compressed), Parquet or Excel (.xlsx). "
             "An event log has one row per event (user, timestamp, ...); a user table one row per user.")
    current = state.get_upload()
    if uploaded is not None and (current is None or current.file_id != uploaded.file_id):
        current = accept_upload(uploaded.name, uploaded.getvalue(), file_id=uploaded.file_id)
    if current is None:
        st.info("Upload a file to begin, or switch back to the built-in sample.", icon=":material/upload_file:")
        return None
    if uploaded is None:
        c1, c2 = st.columns([4, 1], vertical_alignment="center")
        c1.caption(f"Using **{current.name}** ({current.size_mb:,.1f} MB), uploaded earlier in this session. "
                   "Upload another file to replace it.")
        c2.button("Forget this file", icon=":material/delete:", on_click=forget_upload)
    return _read_upload(current)


def _read_upload(up: state.Upload) -> LoadedTable | None:
    with guard(f"reading {up.name}") as g:
        df = cache.read_table(cache.table_key(up.digest), up.name, None, up.data)
    if g.failed:
        return None
    info = df.attrs.get("read_info", {})
    sheets = info.get("sheets") or []
    if len(sheets) > 1:
        auto = info.get("sheet")
        wkey = widget_key(Key.W_SHEET, up.digest)
        chosen = state.get_sheet(up.digest) or auto
        _sync(wkey, chosen if chosen in sheets else auto)
        sheet = st.selectbox("Sheet", sheets, key=wkey, on_change=_commit_sheet, args=(up.digest, wkey),
                             help="The sheet holding the main table is read by default; pick another to read it.")
        why = info.get("sheet_reason")
        st.caption(f"Opened sheet {auto!r}: {why}." if sheet == auto else
                   f"Reading sheet {sheet!r}, as chosen; by default the studio opens {auto!r} ({why}).")
        if sheet != auto:
            with guard(f"reading sheet {sheet!r}") as g:
                df = cache.read_table(cache.table_key(up.digest, sheet), up.name, sheet, up.data)
            if g.failed:
                return None
            return LoadedTable(df, cache.table_key(up.digest, sheet), f"{up.name} [{sheet}]", UPLOAD)
    return LoadedTable(df, cache.table_key(up.digest), up.name, UPLOAD)


# ================================================================================================ schema
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
    _sync(kkey, schema.kind)
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

    columns = [str(c) for c in df.columns]
    visible = EVENT_ROLES if schema.kind == "events" else USER_ROLES
    grid = st.columns(4)
    for i, role in enumerate(visible):
        wkey = widget_key(Key.W_ROLE, key, role)
        current = schema.roles.get(role)
        _sync(wkey, current if current in columns else NONE)
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
    _sync(akey, [a for a in schema.attributes if a in options])
    cols[0].multiselect("User attributes (for segments)", options, key=akey, on_change=_commit_override,
                        args=(key, "attributes", akey),
                        help="Columns that describe a user (country, channel, plan...): used as features and to "
                             "compare segments.")

    with cols[1]:
        if schema.kind == "events" and schema.roles.get("event_type"):
            _purchase_picker(df, key, schema)
        elif schema.kind == "users" and schema.roles.get("label"):
            _positive_picker(df, key, schema)
        elif schema.kind == "users":
            st.info("Choose the **Churn label** column: the one that says whether each user churned.",
                    icon=":material/label:")
    return schema


def _purchase_picker(df: pd.DataFrame, key: str, schema: Schema) -> None:
    col = schema.roles["event_type"]
    with guard("listing the event types") as g:
        values = [str(v) for v in cache.column_values(key, col, df)]
    if g.failed:
        return
    current = [str(v) for v in (schema.purchase_values or [])]
    options = values + [v for v in current if v not in values]
    pkey = widget_key(Key.W_PURCHASE, key)
    _sync(pkey, current)
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
        _sync(pkey, match[0])
    st.selectbox(f"Value of {col!r} that means churned", values, key=pkey, index=None if not match else 0,
                 placeholder="Choose the value that means churned", on_change=_commit_override,
                 args=(key, "label_positive", pkey))


# ================================================================================================ checks and facts
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
    events = schema is not None and schema.kind == "events"
    c = st.columns(4)
    c[0].metric("Rows", fmt_int(facts["rows"]))
    c[1].metric("Users", fmt_int(facts.get("users")))
    c[2].metric("Columns", fmt_int(facts["columns"]))
    if events:
        c[3].metric("Time span", span, help=span_dates)
    st.caption(_read_line(df.attrs.get("read_info", {})) + (f" Events from {span_dates}." if span_dates else ""))
    st.dataframe(df.head(100), hide_index=True, width="stretch", height=280)


# ================================================================================================ cohorts
PERIOD_NAMES = {"M": "Month", "Q": "Quarter", "W": "Week"}
MAX_PERIODS = {"M": 12, "Q": 8, "W": 12}


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


# ================================================================================================ datasets
def _cfg_value(saved: dict | None, defaults: dict, name: str) -> Any:
    return (saved or {}).get(name, defaults[name])


def event_dataset_builder(df: pd.DataFrame, table: LoadedTable, schema: Schema, sj: str,
                          report: ValidationReport) -> None:
    """The snapshot settings form for an event log; on submit the dataset is built (cached) and kept in state."""
    st.subheader("Build the dataset", anchor=False)
    st.caption("Each snapshot looks at the customers who bought in the *lookback* window before a *cutoff* date and "
               "labels as churned those who do not buy again within the *horizon* after it. Several snapshots, one "
               "*step* apart, make a bigger training set; the latest is used for validation.")
    if not report.ok:
        st.warning("Fix the errors in the data checks above before building the dataset.", icon=":material/block:")
        return
    with guard("preparing the snapshot settings") as g:
        d = cache.snapshot_defaults(table.table_key, sj, df)
    if g.failed:
        return
    info = state.get_dataset_info()
    saved = info.config if info is not None and info.table_key == table.table_key and info.kind == "events" else None
    defaults = d["config"]
    start, end = d["start"].date(), d["end"].date()
    saved_cutoff = (saved or {}).get("cutoff")
    cutoff_default = pd.Timestamp(saved_cutoff).date() if saved_cutoff else d["cutoff"].date()
    cutoff_default = min(max(cutoff_default, start), end)

    fk = lambda name: widget_key(Key.W_BUILD, table.table_key, name)  # noqa: E731
    with st.form(widget_key(Key.W_BUILD, table.table_key, "form"), border=True):
        c = st.columns([1.4, 1, 1, 1, 1])
        cutoff = c[0].date_input("Cutoff (latest snapshot)", value=cutoff_default, min_value=start, max_value=end,
                                 format="YYYY-MM-DD", key=fk("cutoff"),
                                 help="Features use only events up to this date.")
        auto = c[0].checkbox("Latest fully observed", value=saved_cutoff is None, key=fk("auto"),
                             help="Use the last date whose horizon is fully observed in the data (recomputed from the "
                                  "horizon); untick to use the date above.")
        lookback = c[1].number_input("Lookback (days)", 1, 3650, int(_cfg_value(saved, defaults, "lookback_days")),
                                     key=fk("lookback"), help="Customers counted bought at least once in this window.")
        horizon = c[2].number_input("Horizon (days)", 1, 3650, int(_cfg_value(saved, defaults, "horizon_days")),
                                    key=fk("horizon"), help="No purchase within this many days after the cutoff "
                                                            "means churned.")
        n_snap = c[3].number_input("Snapshots", 1, 60, int(_cfg_value(saved, defaults, "n_snapshots")),
                                   key=fk("snapshots"))
        step = c[4].number_input("Step (days)", 1, 365, int(_cfg_value(saved, defaults, "step_days")), key=fk("step"),
                                 help="Days between consecutive snapshots.")
        submitted = st.form_submit_button("Build dataset", type="primary", icon=":material/play_arrow:")
    if submitted:
        with guard("building the dataset") as g:
            cfg = SnapshotConfig(horizon_days=int(horizon), lookback_days=int(lookback), n_snapshots=int(n_snap),
                                 step_days=int(step), cutoff=None if auto else str(cutoff))
            ds = cache.build_dataset(table.table_key, sj, json.dumps(cfg.as_dict(), sort_keys=True), df)
            state.set_dataset(ds, state.DatasetInfo(table.table_key, table.name, sj, cfg.as_dict(), "events"))
    dataset_results(table.table_key, sj)


def user_dataset_builder(df: pd.DataFrame, table: LoadedTable, schema: Schema, sj: str,
                         report: ValidationReport) -> None:
    """For a user table: once the label is chosen, the dataset (typed features + churned) and its label balance."""
    st.subheader("Build the dataset", anchor=False)
    if not schema.roles.get("label"):
        st.info("Choose the churn label column above to build a dataset for training. Without a label the table "
                "can still be scored by a trained model.", icon=":material/label:")
        return
    if not report.ok:
        st.warning("Fix the errors in the data checks above before building the dataset.", icon=":material/block:")
        return
    st.caption(f"One row per user; churned means {schema.roles['label']} = {schema.label_positive!r}. Identifiers, "
               "constant columns and columns that leak the label are left out of the features; dates become ages.")
    with st.form(widget_key(Key.W_BUILD, table.table_key, "form"), border=False):
        submitted = st.form_submit_button("Build dataset", type="primary", icon=":material/play_arrow:")
    if submitted:
        with guard("building the dataset"):
            ds = cache.user_dataset(table.table_key, sj, df)
            state.set_dataset(ds, state.DatasetInfo(table.table_key, table.name, sj, {}, "users"))
    dataset_results(table.table_key, sj)


def dataset_results(key: str, sj: str) -> None:
    """Label balance per snapshot (table and chart) and feature summaries of the dataset in state."""
    ds, info = state.get_dataset(), state.get_dataset_info()
    if ds is None or info is None:
        return
    if info.table_key != key:
        st.info(f"The dataset in memory was built from {info.name}. Build one to use this table instead.",
                icon=":material/info:")
        return
    if info.schema_json != sj:
        st.warning("This dataset was built with earlier column choices. Build it again to apply your changes.",
                   icon=":material/history:")
    frame = ds.frame
    n_snap = frame["snapshot_date"].nunique() if "snapshot_date" in frame else 1
    st.success(f"Dataset ready: {len(frame):,} rows ({frame['user_id'].nunique():,} users"
               f"{f', {n_snap} snapshots' if 'snapshot_date' in frame else ''}), {len(ds.features)} features. "
               "Continue on the Train page.", icon=":material/check_circle:")
    for f in validate_dataset(frame).sorted():
        (st.error if f.severity == "error" else st.warning)(f"{f.message}: {f.action}.", icon=":material/warning:")

    st.markdown("**Label balance**")
    summary = ds.summary()
    c = st.columns([2, 3])
    cfg = {"users": st.column_config.NumberColumn("users", format="localized"),
           "labelled": st.column_config.NumberColumn("labelled", format="localized"),
           "churned": st.column_config.NumberColumn("churned", format="localized"),
           "churn_rate": st.column_config.NumberColumn("churn rate", format="percent")}
    if pd.api.types.is_datetime64_any_dtype(summary["snapshot_date"]):
        cfg["snapshot_date"] = st.column_config.DateColumn("snapshot", format="YYYY-MM-DD")
    c[0].dataframe(summary, hide_index=True, width="stretch", column_config=cfg)
    c[1].plotly_chart(plots.label_balance(summary, title=None), width="stretch",
                      key=widget_key(Key.W_FEATURE, key, "balance"))

    st.markdown("**Features**")
    c = st.columns(2)
    with c[0]:
        if ds.numeric:
            desc = frame[ds.numeric].describe().T
            desc.insert(1, "missing", frame[ds.numeric].isna().sum())
            st.dataframe(desc.round(3), width="stretch", height=min(360, 40 + 35 * len(desc)),
                         column_config={"count": st.column_config.NumberColumn("count", format="localized")})
        if ds.categorical:
            st.caption("Categorical: " + ", ".join(ds.categorical))
    with c[1]:
        feats = ds.features
        if feats:
            fkey = widget_key(Key.W_FEATURE, key)
            if state.widget_value(fkey) not in feats:
                _sync(fkey, "recency_days" if "recency_days" in feats else feats[0])
            col = st.selectbox("Feature", feats, key=fkey)
            with guard("drawing the feature"):
                st.plotly_chart(plots.feature_histogram(frame, col), width="stretch",
                                key=widget_key(Key.W_FEATURE, key, "hist"))


# ================================================================================================ shell
def sidebar_summary() -> None:
    """Which table is loaded (kind, rows, users), the dataset if one is built, and how the product works."""
    table = state.get_table()
    if table is None:
        st.caption(":material/database: No data loaded yet: open the **Data** page.")
    else:
        kind = KIND_SHORT.get(table.kind or "", "table")
        where = "sample" if table.source == SAMPLE else "upload"
        st.markdown(f":material/database: **{table.name}**  \n{kind} ({where}) · {fmt_int(table.rows)} rows · "
                    f"{fmt_int(table.users)} users")
    ds, info = state.get_dataset(), state.get_dataset_info()
    if ds is not None and info is not None:
        st.markdown(f":material/dataset: Dataset: {len(ds.frame):,} rows, {len(ds.features)} features")
    training_sidebar()
    st.caption("How it works: load data, check what we understood, build a dataset, train and compare models, read "
               "why users churn, then export the users at risk.")


def page_header(title: str, icon: str, purpose: str) -> None:
    st.title(f"{icon} {title}", anchor=False)
    st.caption(purpose)


def dataset_status() -> Any:
    """Whether a dataset is ready: says so and returns it, or points to the Data page and returns None."""
    ds, info = state.get_dataset(), state.get_dataset_info()
    if ds is None or info is None:
        st.info("No dataset yet. Build a dataset on the Data page first.", icon=":material/info:")
        st.page_link(DATA_PAGE, label="Go to the Data page", icon=":material/database:")
        return None
    labelled = ds.frame["churned"].dropna()
    rate = f", churn rate {labelled.mean():.1%}" if len(labelled) else ""
    st.success(f"Dataset ready: {len(ds.frame):,} rows from {info.name}, {len(ds.features)} features{rate}.",
               icon=":material/check_circle:")
    return ds


def model_status() -> dict:
    """The trained runs in this session; when there is none, says what to do first (and whether the dataset is
    ready)."""
    runs = state.get_runs()
    if runs:
        return runs
    if state.get_dataset() is None:
        st.info("Nothing to show yet. Build a dataset on the Data page first, then train a model on the Train page.",
                icon=":material/info:")
        st.page_link(DATA_PAGE, label="Go to the Data page", icon=":material/database:")
    else:
        dataset_status()
        st.info("No model trained yet. Train one on the Train page first.", icon=":material/info:")
        st.page_link(TRAIN_PAGE, label="Go to the Train page", icon=":material/model_training:")
    return runs


def coming_next(items: list[str]) -> None:
    """A short list of what the page will offer."""
    with st.container(border=True):
        st.markdown("**This page will let you**")
        st.markdown("\n".join(f"- {i}" for i in items))


# ================================================================================================ training
CALIBRATION_LABELS = {"none": "None", "isotonic": "Isotonic", "sigmoid": "Sigmoid (Platt)"}
POLL_SECONDS = 1.0


@dataclass(frozen=True)
class TrainOutcome:
    """What a finished training leaves behind: the saved run and what went wrong with single models."""

    name: str
    path: str
    errors: dict
    scheme: str


@dataclass(frozen=True)
class TrainRequest:
    """Everything a training needs, gathered on the page before the work starts (the worker reads no state)."""

    name: str
    root: str
    dataset: Any
    config: Any  # retention_core.training.TrainConfig
    horizon: int | None
    excluded: list
    schema: Schema
    snapshot: dict
    digest: str


def _specs():
    from retention_core.models import REGISTRY

    return REGISTRY


def model_label(key: str) -> str:
    spec = _specs().get(key)
    if spec is None:
        return key
    return f"{spec.label} (neural, slower)" if spec.family == "deep" else spec.label


def unavailable_models(ds) -> dict[str, str]:
    """Models that cannot train on this dataset, with the reason."""
    out = {}
    for key, spec in _specs().items():
        if spec.needs_sequences and ds.kind != "events":
            out[key] = "needs an event log (weekly activity)"
            continue
        missing = spec.missing_columns(ds.frame.columns)
        if missing:
            out[key] = f"needs {', '.join(missing)}"
    return out


def auto_models(ds) -> list[str]:
    from retention_core.models import DEFAULT_AUTO

    blocked = unavailable_models(ds)
    return [k for k in DEFAULT_AUTO if k not in blocked]


def _set_models(wkey: str, keys: list[str]) -> None:
    state.set_widget(wkey, list(keys))


def model_picker(ds) -> list[str]:
    """The models to compare: a multiselect over the registry with an ``auto`` preset; neural models are marked."""
    blocked = unavailable_models(ds)
    options = [k for k in _specs() if k not in blocked]
    wkey = widget_key(Key.W_TRAIN, "models")
    auto = auto_models(ds)
    if not state.has_widget(wkey):
        _sync(wkey, auto)
    else:
        _sync(wkey, [k for k in state.widget_value(wkey, []) if k in options])
    head = st.columns([5, 1, 1], vertical_alignment="bottom")
    chosen = head[0].multiselect("Models to compare", options, format_func=model_label, key=wkey,
                                 help="Auto trains the fast, strong models. Neural models read more of the data and "
                                      "take longer (minutes on a CPU).")
    head[1].button("Auto", icon=":material/auto_awesome:", on_click=_set_models, args=(wkey, auto),
                   help="Recency rule, BG/NBD, logistic regression, random forest and gradient boosting.",
                   width="stretch")
    head[2].button("Fast", icon=":material/bolt:", on_click=_set_models,
                   args=(wkey, [k for k in ("recency", "logreg") if k in options]),
                   help="The recency rule and logistic regression: a first answer in seconds.", width="stretch")
    deep = [k for k in chosen if _specs()[k].family == "deep"]
    if deep:
        st.caption(f":material/hourglass_top: {', '.join(_specs()[k].label for k in deep)}: neural models take "
                   "several minutes on a CPU; you can keep using the other pages meanwhile.")
    if blocked:
        st.caption("Not available for this dataset: " + "; ".join(f"{_specs()[k].label} ({why})"
                                                                   for k, why in blocked.items()) + ".")
    return list(chosen)


def _choice_text(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def _float_step(p) -> float:
    import math

    ref = p.default if isinstance(p.default, (int, float)) and p.default else (p.high or 1.0) / 100
    if p.log and ref > 0:
        return float(10 ** math.floor(math.log10(ref)))
    return 0.01 if (p.high or 1) <= 1 else 0.1


def param_input(model: str, p) -> Any:
    """One setting of one model as a form widget, from its registry description (kind, range, choices)."""
    label = p.name.replace("_", " ")
    key = widget_key(Key.W_TRAIN, model, p.name)
    if p.kind == "bool":
        return st.checkbox(label, value=bool(p.default), key=key, help=p.help)
    if p.kind == "choice":
        choices = list(p.choices)
        i = st.selectbox(label, list(range(len(choices))), index=choices.index(p.default) if p.default in choices
                         else 0, format_func=lambda j: _choice_text(choices[j]), key=key, help=p.help)
        return choices[i]
    if p.kind == "int":
        low = int(p.low) if p.low is not None else None
        high = int(p.high) if p.high is not None else None
        return st.number_input(label, min_value=low, max_value=high, value=p.default, step=1, key=key,
                               help=p.help + (" Leave empty for none." if p.optional else ""),
                               placeholder="none" if p.optional else None)
    low = float(p.low) if p.low is not None else None
    high = float(p.high) if p.high is not None else None
    return st.number_input(label, min_value=low, max_value=high, value=None if p.default is None else float(p.default),
                           step=_float_step(p), format="%g", key=key, help=p.help,
                           placeholder="none" if p.optional else None)


def model_settings(models: list[str]) -> dict[str, dict]:
    """Each chosen model's settings (main ones in view, the rest folded), as entered; checked on submit."""
    specs = _specs()
    params: dict[str, dict] = {}
    with_params = [k for k in models if specs[k].params]
    if not with_params:
        st.caption("The chosen models have no settings to tune.")
        return params
    tabs = st.tabs([specs[k].label for k in with_params])
    for tab, key in zip(tabs, with_params):
        spec = specs[key]
        with tab:
            if spec.description:
                st.caption(spec.description)
            main = [p for p in spec.params.values() if not p.advanced]
            more = [p for p in spec.params.values() if p.advanced]
            values = {}
            cols = st.columns(3)
            for i, prm in enumerate(main):
                with cols[i % 3]:
                    values[prm.name] = param_input(key, prm)
            if more:
                with st.expander("More settings"):
                    cols = st.columns(3)
                    for i, prm in enumerate(more):
                        with cols[i % 3]:
                            values[prm.name] = param_input(key, prm)
            params[key] = values
    return params


def _changed_params(models: list[str], entered: dict[str, dict]) -> dict[str, dict]:
    """Checked settings that differ from the defaults (ConfigError quoting a bad value)."""
    specs = _specs()
    out = {}
    for key in models:
        spec = specs[key]
        values = {k: v for k, v in entered.get(key, {}).items()}
        checked = spec.check_params(values)
        diff = {k: v for k, v in checked.items() if v != spec.params[k].default}
        if diff:
            out[key] = diff
    return out


def default_run_name() -> str:
    return f"run {pd.Timestamp.now():%Y-%m-%d %H.%M.%S}"


def dataset_table(info: state.DatasetInfo) -> pd.DataFrame | None:
    """The table the dataset in state was built from (sample or the upload in this session), or None."""
    digest, _, sheet = info.table_key.partition(":")
    up = state.get_upload()
    if up is not None and up.digest == digest:
        return cache.read_table(info.table_key, up.name, sheet or None, up.data)
    table = state.get_table()
    if table is None or table.source == SAMPLE or up is None:
        df = cache.sample_table()
        if df.attrs.get("digest") == digest:
            return df
    return None


def _snapshot_config(ds) -> dict:
    return {k: v for k, v in (ds.config or {}).items() if k != "cutoffs"}


def time_split_problem(ds) -> str | None:
    """Why time-aware validation cannot run on this event-log dataset (None when it can)."""
    from retention_core.errors import ConfigError
    from retention_core.training import time_split

    if ds.kind != "events":
        return None
    try:
        time_split(ds.labelled(), int(ds.config.get("horizon_days", 90)))
    except ConfigError as exc:
        return str(exc)
    return None


def rebuild_for_training(ds, info: state.DatasetInfo) -> None:
    """Rebuild the event-log dataset at the cutoffs time-aware validation needs and keep it in state."""
    df = dataset_table(info)
    if df is None:
        raise RetentionConfigError("The table this dataset was built from is no longer loaded. Open the Data page, "
                                   "load it again and build the dataset.")
    cfg_json = json.dumps(_snapshot_config(ds), sort_keys=True, default=str)
    cutoffs = cache.training_cutoffs(info.table_key, info.schema_json, cfg_json, df)
    new = cache.training_dataset(info.table_key, info.schema_json, cfg_json, json.dumps(cutoffs),
                                 ds.sequences is not None, df)
    state.set_dataset(new, info)


def _with_sequences(ds, info: state.DatasetInfo):
    """The same dataset with the weekly activity sequences that neural sequence models read."""
    if ds.kind != "events" or ds.sequences is not None:
        return ds
    df = dataset_table(info)
    if df is None:
        raise RetentionConfigError("The sequence models need the table this dataset was built from, which is no "
                                   "longer loaded. Open the Data page, load it again and build the dataset.")
    cfg_json = json.dumps(_snapshot_config(ds), sort_keys=True, default=str)
    cutoffs = ds.config.get("cutoffs")
    new = cache.training_dataset(info.table_key, info.schema_json, cfg_json, json.dumps(cutoffs), True, df)
    state.set_dataset(new, info)
    return new


def _excluded_features(info: state.DatasetInfo) -> list:
    df = dataset_table(info)
    if df is None:
        return []
    try:
        return list(cache.validate(info.table_key, info.schema_json, df).excluded_features)
    except RetentionError:
        return []


def train_form(ds, info: state.DatasetInfo) -> TrainRequest | None:
    """Model choice, settings, validation and run name; the request to train when the analyst submits a valid one."""
    from retention_core import bundle
    from retention_core.evaluation import METRIC_LABELS, METRICS
    from retention_core.training import TrainConfig

    st.subheader("Models", anchor=False)
    models = model_picker(ds)
    fk = lambda name: widget_key(Key.W_TRAIN, name)  # noqa: E731
    with st.form(fk("form"), border=True):
        st.markdown("**Model settings**")
        entered = model_settings(models) if models else {}
        st.markdown("**Validation**")
        c = st.columns(4)
        metric = c[0].selectbox("Pick the best model by", METRICS, index=0, format_func=METRIC_LABELS.get,
                                key=fk("metric"), help="Measured on the validation users only.")
        calibrate = c[1].selectbox("Calibration", list(CALIBRATION_LABELS), format_func=CALIBRATION_LABELS.get,
                                   key=fk("calibrate"),
                                   help="Adjust probabilities so that 30% means 30% of such users churn.")
        if ds.kind == "events":
            backtest = c[2].number_input("Backtest cutoffs", 0, 6, 0, key=fk("backtest"),
                                         help="Also validate at this many earlier snapshots, to see whether the "
                                              "quality holds over time (takes longer).")
            folds, holdout = 5, 0.2
            refit = c[3].checkbox("Refit on the latest data", value=True, key=fk("refit"),
                                  help="After validation, refit the models on the most recent labelled snapshots, "
                                       "the validation one included, so they learn from the latest behaviour (early-"
                                       "stopping counts, calibration and threshold are carried). Evaluate keeps the "
                                       "figures measured before the refit.")
            st.caption("Time-aware validation: models learn from earlier snapshots and are judged on the latest one, "
                       "whose horizon is fully observed; random splits are never used on snapshots.")
        else:
            backtest, refit = 0, True  # user tables: refitted on every labelled row after validation
            holdout = c[2].slider("Holdout share", 0.1, 0.5, 0.2, 0.05, key=fk("holdout"),
                                  help="Users set aside for validation (stratified by the label).")
            folds = c[3].number_input("Cross-validation folds", 0, 10, 5, key=fk("folds"),
                                      help="Folds on the remaining users to see how stable the scores are (0 = "
                                           "none).")
        c = st.columns([3, 1])
        name = c[0].text_input("Run name", value=default_run_name(), key=fk("name"), max_chars=64,
                               help="Letters, digits, spaces, dots, dashes and underscores. The run is saved in the "
                                    "workspace under this name (an existing run with this name is replaced).")
        seed = c[1].number_input("Seed", 0, 2**31 - 1, 0, key=fk("seed"), help="Same seed, same results.")
        submitted = st.form_submit_button("Train models", type="primary", icon=":material/model_training:",
                                          disabled=not models)
    if not models:
        st.info("Choose at least one model to train.", icon=":material/info:")
    if not submitted or not models:
        return None
    with guard("preparing the training") as g:
        params = _changed_params(models, entered)
        run_name = bundle.safe_run_name(name)
        cfg = TrainConfig(models=models, params=params, metric=metric,
                          calibrate=None if calibrate == "none" else calibrate, seed=int(seed),
                          cv_folds=int(folds), holdout=float(holdout), backtest=int(backtest), refit=bool(refit))
        cfg.model_keys()
        if any(_specs()[k].needs_sequences for k in models):
            ds = _with_sequences(ds, info)
        root = str(cache.workspace_root())
        digest = info.table_key.partition(":")[0]
        excluded = _excluded_features(info) if ds.kind == "events" else []
        schema = Schema.from_dict(json.loads(info.schema_json))
        snap = _snapshot_config(ds) if ds.kind == "events" else {}
        horizon = int(snap["horizon_days"]) if snap.get("horizon_days") else None
    if g.failed:
        return None
    return TrainRequest(run_name, root, ds, cfg, horizon, excluded, schema, snap, digest)


def _train_work(req: TrainRequest):
    """The training itself: train, rank, save the run. Runs in a worker thread, so it never touches Streamlit."""

    def work(report) -> TrainOutcome:
        from retention_core import bundle
        from retention_core.training import train_and_save

        result, path = train_and_save(bundle.run_path(req.name, req.root), req.dataset, req.schema, req.config,
                                      snapshot=req.snapshot, digest=req.digest, excluded=req.excluded, name=req.name,
                                      progress=report)
        return TrainOutcome(req.name, str(path), dict(result.errors), result.scheme)

    return work


def start_training(req: TrainRequest) -> state.TrainJob:
    """Start a training: in the background (the page polls it), or inline when sync training is on."""
    job = state.TrainJob(req.name, list(req.config.model_keys()))
    state.set_train_job(job)
    if state.sync_training():
        box = st.empty()

        def report(event) -> None:
            job.report(event)
            with box.container():
                _progress(job)

        job.run(lambda _report: _train_work(req)(report))
        box.empty()
        finish_training(job)
    else:
        job.start(_train_work(req))
    return job


def _progress(job: state.TrainJob) -> None:
    """An overall progress bar, one per model (epochs for neural models), and the latest messages."""
    fraction, message, _ = job.snapshot()
    st.progress(min(max(fraction, 0.0), 1.0), text=f"Training {job.name!r}: {message}")
    n = max(len(job.models), 1)
    current = min(int(fraction * n), n - 1)
    for i, key in enumerate(job.models):
        label = model_label(key)
        if key in job.finished_models or i < current:
            st.progress(1.0, text=f":material/check_circle: {label}")
        elif i == current and job.running:
            part = min(max((fraction * n - i) / 0.9, 0.0), 1.0)
            st.progress(part, text=f":material/progress_activity: {label}")
        else:
            st.progress(0.0, text=f":material/schedule: {label}")
    st.caption(f"{job.seconds:,.0f} s elapsed. You can open other pages meanwhile; the results appear here and on "
               "the Evaluate page when training ends.")


def finish_training(job: state.TrainJob) -> None:
    """Take a finished training into the session once: load the saved run and make it the active run."""
    if not job.done or job.handled:
        return
    job.handled = True
    if job.error is not None or job.result is None:
        return
    from retention_core import bundle

    outcome: TrainOutcome = job.result
    try:
        run = bundle.load_run(outcome.path)
    except Exception as exc:  # shown on the Train page
        job.error = exc
        return
    state.add_run(outcome.name, run)


def training_status() -> None:
    """The training in progress (polled, so other pages stay usable), or how the last one ended."""
    job = state.get_train_job()
    if job is None:
        return
    if job.running:
        _poll_training()
        return
    finish_training(job)
    if job.error is not None:
        show_error(job.error, f"training {job.name!r}")
        st.caption("Your dataset and earlier runs are kept: change the models or settings and train again.")
        return
    outcome: TrainOutcome = job.result
    st.success(f"Run {outcome.name!r} trained in {job.seconds:,.0f} s and saved in the workspace. It is now the "
               "active run.", icon=":material/check_circle:")
    for key, why in outcome.errors.items():
        st.warning(f"{model_label(key.split(' ')[0])} failed: {why}", icon=":material/warning:")


@st.fragment(run_every=POLL_SECONDS)
def _poll_training() -> None:
    job = state.get_train_job()
    if job is None:
        return
    if job.done:
        st.rerun()  # the whole page: show the results
    _progress(job)


def training_sidebar() -> None:
    """A line in the sidebar about the training in progress; a finished one is taken into the session."""
    job = state.get_train_job()
    if job is None:
        return
    if job.running:
        fraction, message, _ = job.snapshot()
        st.caption(f":material/model_training: Training {job.name!r}: {fraction:.0%} ({message})")
    elif not job.handled:
        finish_training(job)


def leaderboard_table(board: pd.DataFrame) -> None:
    """The leaderboard: every model's validation metrics, sortable by any column."""
    from retention_core.evaluation import METRIC_LABELS

    cols = [c for c in ["label", "family", "roc_auc", "pr_auc", "accuracy", "precision", "recall", "f1", "log_loss",
                        "brier", "lift_top10", "recall_top10", "cv_roc_auc_mean", "cv_roc_auc_std", "threshold",
                        "fit_seconds"] if c in board]
    cfg: dict = {"label": st.column_config.TextColumn("model"),
                 "fit_seconds": st.column_config.NumberColumn("fit (s)", format="%.1f"),
                 "cv_roc_auc_mean": st.column_config.NumberColumn("CV ROC-AUC", format="%.3f"),
                 "cv_roc_auc_std": st.column_config.NumberColumn("CV ± sd", format="%.3f"),
                 "threshold": st.column_config.NumberColumn("threshold", format="%.3f",
                                                            help="The threshold that maximises F1.")}
    for m, label in METRIC_LABELS.items():
        cfg.setdefault(m, st.column_config.NumberColumn(label, format="%.3f"))
    st.dataframe(board[cols], hide_index=True, width="stretch", column_config=cfg)


def run_results(name: str, path: str) -> None:
    """A saved run's leaderboard (table and chart), its validation scheme and the models that failed."""
    from retention_core.evaluation import METRIC_LABELS

    with guard("loading the run") as g:
        data = cache.run_data(path, cache.run_stamp(path))
    if g.failed:
        return
    metric = (data.info.get("train_config") or {}).get("metric") or "roc_auc"
    st.subheader(f"Leaderboard of {name!r}", anchor=False)
    st.caption(f":material/rule: Validation: {data.metrics.get('validation', '')}. Best model by "
               f"{METRIC_LABELS.get(metric, metric)}: **{data.labels().get(data.best, data.best)}**. "
               f"{refit_note(data.info.get('refit'))}")
    for key, why in (data.info.get("errors") or {}).items():
        st.warning(f"{model_label(key.split(' ')[0])} failed: {why}", icon=":material/warning:")
    c = st.columns([3, 2])
    with c[0]:
        leaderboard_table(data.leaderboard)
    c[1].plotly_chart(plots.leaderboard_bar(data.leaderboard, metric, best=data.best,
                                            metric_label=METRIC_LABELS.get(metric, metric)),
                      width="stretch", key=widget_key(Key.W_TRAIN, name, "board"))
    st.page_link(EVALUATE_PAGE, label="Evaluate this run", icon=":material/query_stats:")


# ================================================================================================ evaluation
THRESHOLD_HOW = {"value": "By value", "top_k": "Top K users", "top_share": "Top % of users",
                 "profit": "Best expected profit"}
CARD_METRICS = ["roc_auc", "pr_auc", "accuracy", "precision", "recall", "f1"]


def run_names() -> tuple[list[str], dict]:
    """Runs the analyst can open: this session's first, then those saved in the workspace."""
    session = state.get_runs()
    names = list(session)
    try:
        saved = cache.workspace_runs()
        names += [str(n) for n in saved["run"] if str(n) not in session]
    except OSError:
        pass
    return names, session


def _commit_active(wkey: str) -> None:
    state.set_active_run(state.widget_value(wkey))


def _commit_model(run: str, wkey: str) -> None:
    state.set_chosen_model(run, state.widget_value(wkey))


def run_and_model_picker() -> tuple[cache.RunData, str] | None:
    """Pick a run (the active one by default) and one of its models (the chosen one, else the best)."""
    names, session = run_names()
    if not names:
        return None
    wkey = widget_key(Key.W_EVAL, "run")
    active = state.get_active_run_name()
    _sync(wkey, active if active in names else names[0])
    c = st.columns([2, 2, 3], vertical_alignment="bottom")
    name = c[0].selectbox("Run", names, key=wkey, on_change=_commit_active, args=(wkey,),
                          format_func=lambda n: f"{n} (this session)" if n in session else n)
    with guard("loading the run") as g:
        data = _open_run(name)
    if g.failed:
        return None
    models = data.models
    if not models:
        st.warning("This run holds no validation predictions to evaluate.", icon=":material/warning:")
        return None
    labels = data.labels()
    mkey = widget_key(Key.W_EVAL, name, "model")
    current = state.chosen_model(name)
    _sync(mkey, current if current in models else data.best if data.best in models else models[0])
    model = c[1].selectbox("Model", models, key=mkey, on_change=_commit_model, args=(name, mkey),
                           format_func=lambda k: labels.get(k, k) + (" (best)" if k == data.best else ""))
    v = data.validation
    rate = v["churned"].mean() if len(v) else float("nan")
    c[2].caption(f":material/rule: {data.metrics.get('validation', '')}. {len(v):,} validation users, churn rate "
                 f"{rate:.1%}. {refit_note(data.info.get('refit'))}")
    return data, model


def _y_p(data: cache.RunData, model: str) -> tuple[Any, Any]:
    v = data.validation
    return v["churned"].to_numpy(float), v[f"p:{model}"].to_numpy(float)


def current_threshold(data: cache.RunData, model: str) -> float:
    t = state.chosen_threshold(data.name, model)
    return float(t) if t is not None else data.model_threshold(model)


def metric_cards(m: dict, ref: dict | None = None) -> None:
    """Metric cards at the chosen threshold (ranking metrics do not depend on it); deltas against ``ref``."""
    from retention_core.evaluation import METRIC_LABELS

    cols = st.columns(len(CARD_METRICS))
    for col, k in zip(cols, CARD_METRICS):
        v = m.get(k, float("nan"))
        delta = None
        if ref is not None and k not in ("roc_auc", "pr_auc"):
            d = v - ref.get(k, float("nan"))
            delta = f"{d:+.3f}" if pd.notna(d) and abs(d) >= 5e-4 else None
        col.metric(METRIC_LABELS[k], "-" if pd.isna(v) else f"{v:.3f}", delta=delta,
                   help="Against the threshold that maximises F1." if delta else None)


@st.fragment
def threshold_panel(data: cache.RunData, model: str) -> None:
    """Choose the threshold (value, top-K, top share or best profit): cards, confusion matrix and curves follow.
    Runs alone, so moving the threshold redraws only this panel."""
    from retention_core import evaluation as ev

    st.subheader("Threshold", anchor=False)
    y, p = _y_p(data, model)
    n = len(p)
    run = data.name
    stored = current_threshold(data, model)
    choice = state.get_threshold_choice(run)
    hkey = widget_key(Key.W_EVAL, run, model, "how")
    how = st.segmented_control("Choose the threshold", list(THRESHOLD_HOW), format_func=THRESHOLD_HOW.get,
                               default=choice.how if choice is not None and choice.how in THRESHOLD_HOW else "value",
                               key=hkey) or "value"
    k = lambda name: widget_key(Key.W_EVAL, run, model, name)  # noqa: E731
    profit = best = None
    with guard("choosing the threshold") as g:
        if how == "value":
            thr = st.slider("Flag users whose churn probability is at least", 0.0, 1.0, round(stored, 3), 0.001,
                            format="%.3f", key=k("value"))
            if thr == round(stored, 3):
                thr = stored  # the slider shows three decimals; keep the exact threshold until it is moved
        elif how == "top_k":
            kk = st.number_input("Users to contact (K)", 1, max(n, 1), max(1, min(n, round(0.1 * n))), key=k("topk"),
                                 help="The K users most at risk are flagged.")
            thr = ev.threshold_for_top_k(p, int(kk))
        elif how == "top_share":
            share = st.slider("Share of users to contact (%)", 1, 100, 10, key=k("share"),
                              help="The riskiest share of users is flagged (a campaign budget).")
            thr = ev.threshold_for_share(p, share / 100)
        else:
            c = st.columns(3)
            cost = c[0].number_input("Cost per contact", 0.0, 1e6, 2.0, 0.5, key=k("cost"),
                                     help="What one retention contact costs (voucher, call, e-mail).")
            value = c[1].number_input("Value of a retained user", 0.0, 1e9, 50.0, 5.0, key=k("value_retained"),
                                      help="What keeping one customer is worth (e.g. margin over the next year).")
            save = c[2].number_input("Expected save rate (%)", 0.0, 100.0, 20.0, 1.0, key=k("save"),
                                     help="Share of contacted churners the campaign keeps.")
            kw = dict(cost_per_contact=float(cost), value_retained=float(value), save_rate=float(save) / 100)
            profit = ev.profit_frame(y, p, **kw)
            best = ev.best_profit_threshold(y, p, **kw)
            thr = best
    if g.failed:
        return
    thr = float(thr)
    state.set_chosen_threshold(run, model, thr, how)
    flagged = int((p >= thr).sum())
    st.caption(f"Threshold **{thr:.3f}** flags **{flagged:,}** of {n:,} validation users ({flagged / max(n, 1):.1%}). "
               "Scoring and export use this threshold for this run.")
    m = ev.metrics(y, p, thr)
    metric_cards(m, ev.metrics(y, p, data.model_threshold(model)))
    if profit is not None:
        i = int((profit["threshold"] - best).abs().idxmin())
        row = profit.loc[i]
        st.caption(f":material/savings: Best expected profit **{row['profit']:,.0f}** at threshold {best:.3f}: "
                   f"{int(row['contacted']):,} users contacted, {int(row['churners_reached']):,} of them churners.")
        st.plotly_chart(plots.profit_curve(profit, threshold=thr, best=best), width="stretch", key=k("profit_chart"))
    curves = cache.model_curves(data.path, cache.run_stamp(data.path), model)
    c = st.columns([2, 3])
    c[0].plotly_chart(plots.confusion_heatmap(ev.confusion(y, p, thr)), width="stretch", key=k("confusion"))
    c[1].plotly_chart(plots.threshold_plot(curves["threshold"], thr), width="stretch", key=k("threshold_chart"))


def curves_panel(data: cache.RunData, model: str) -> None:
    """ROC and precision-recall curves of every model of the run, calibration, lift and cumulative gains."""
    labels = data.labels()
    stamp = cache.run_stamp(data.path)
    curves = {k: cache.model_curves(data.path, stamp, k) for k in data.models}
    order = [model] + [k for k in data.models if k != model]  # the model in focus first
    named = lambda part: {labels.get(k, k): curves[k][part] for k in order}  # noqa: E731
    b = data.leaderboard.set_index("model")
    aucs = {labels.get(k, k): float(b.loc[k, "roc_auc"]) for k in order if k in b.index and "roc_auc" in b}
    aps = {labels.get(k, k): float(b.loc[k, "pr_auc"]) for k in order if k in b.index and "pr_auc" in b}
    focus = labels.get(model, model)
    st.subheader("Curves", anchor=False)
    st.caption("All models of the run, the one chosen above in bold. ROC and precision-recall do not depend on the "
               "threshold.")
    k = lambda name: widget_key(Key.W_EVAL, data.name, name)  # noqa: E731
    c = st.columns(2)
    c[0].plotly_chart(plots.roc_curves(named("roc"), aucs=aucs, highlight=focus), width="stretch", key=k("roc"))
    base = float(data.validation["churned"].mean())
    c[1].plotly_chart(plots.pr_curves(named("pr"), base_rate=base, aps=aps, highlight=focus), width="stretch",
                      key=k("pr"))
    c = st.columns(3)
    c[0].plotly_chart(plots.calibration_plot({focus: curves[model]["calibration"]}), width="stretch",
                      key=k("calibration"))
    c[1].plotly_chart(plots.lift_chart(curves[model]["lift"], title=f"Lift per risk decile ({focus})"),
                      width="stretch", key=k("lift"))
    c[2].plotly_chart(plots.cumulative_gains(named("lift")), width="stretch", key=k("gains"))


def _open_run(name: str) -> cache.RunData:
    """A run's data for the pickers; a run saved earlier is first opened in this session (its files checked)."""
    from retention_core import bundle

    session = state.get_runs()
    if name not in session:
        state.add_run(name, bundle.load_run(bundle.run_path(name, cache.workspace_root())))
        session = state.get_runs()
    path = str(session[name].path)
    return cache.run_data(path, cache.run_stamp(path))


def segment_panel(data: cache.RunData, model: str) -> None:
    """Model quality per segment of a chosen attribute; segments too small to judge are marked, never hidden."""
    from retention_core import evaluation as ev

    st.subheader("Quality per segment", anchor=False)
    attrs = data.attributes
    if not attrs:
        st.caption("The validation users have no attributes (country, channel, ...) to split by.")
        return
    akey = widget_key(Key.W_EVAL, data.name, "segment")
    if state.widget_value(akey) not in attrs:
        _sync(akey, attrs[0])
    attr = st.selectbox("Split by", attrs, key=akey)
    y, p = _y_p(data, model)
    with guard("computing the metrics per segment") as g:
        seg = ev.segment_metrics(y, p, data.validation[attr])
    if g.failed:
        return
    small = int((~seg["reliable"]).sum())
    if small:
        st.caption(f":material/info: {small} segment(s) are too small to judge (fewer than 30 users or 5 churners or "
                   "retained users): shown in grey, read them with care.")
    c = st.columns([2, 3])
    show = seg.assign(reliable=seg["reliable"].map({True: "yes", False: "too small"}))
    c[0].dataframe(show, hide_index=True, width="stretch", column_config={
        "users": st.column_config.NumberColumn("users", format="localized"),
        "churn_rate": st.column_config.NumberColumn("churn rate", format="percent"),
        "mean_predicted": st.column_config.NumberColumn("mean predicted", format="percent"),
        "roc_auc": st.column_config.NumberColumn("ROC-AUC", format="%.3f"),
        "recall_top10": st.column_config.NumberColumn("recall @10%", format="%.3f"),
        "reliable": st.column_config.TextColumn("reliable")})
    c[1].plotly_chart(plots.segment_bars(seg, "roc_auc", metric_label="ROC-AUC", title=f"ROC-AUC by {attr}"),
                      width="stretch", key=widget_key(Key.W_EVAL, data.name, "segment_chart"))


def backtest_panel(data: cache.RunData) -> None:
    """The metric per validation cutoff, when the run was trained with a backtest."""
    from retention_core.evaluation import METRIC_LABELS

    bt = data.backtest
    if bt is None or not len(bt):
        return
    st.subheader("Quality over time", anchor=False)
    st.caption("Each earlier snapshot validated in turn, with the models trained only on snapshots a full horizon "
               "before it: a stable line means the model keeps working as customers change.")
    options = [m for m in ["roc_auc", "pr_auc", "f1", "recall_top10", "lift_top10", "brier"] if m in bt]
    mkey = widget_key(Key.W_EVAL, data.name, "backtest_metric")
    metric = st.selectbox("Metric", options, format_func=METRIC_LABELS.get, key=mkey) or options[0]
    st.plotly_chart(plots.backtest_lines(bt, metric, labels=data.labels(), metric_label=METRIC_LABELS.get(metric)),
                    width="stretch", key=widget_key(Key.W_EVAL, data.name, "backtest_chart"))


# ================================================================================================ at-risk lists
AT_RISK_PAGE = "app_pages/at_risk.py"
REASON_CHUNK = 250  # users explained per step of the progress bar
SHOW_ROWS = 5_000  # rows drawn in the app; the download always holds the whole list


def loaded_table() -> LoadedTable | None:
    """The table loaded on the Data page (the sample or this session's upload), read through the cache; None when
    nothing is loaded. Draws nothing."""
    table = state.get_table()
    if table is None:
        return None
    if table.source == SAMPLE:
        df = cache.sample_table()
        return LoadedTable(df, table.table_key, table.name, SAMPLE)
    up = state.get_upload()
    digest, _, sheet = table.table_key.partition(":")
    if up is None or up.digest != digest:
        return None
    df = cache.read_table(table.table_key, up.name, sheet or None, up.data)
    return LoadedTable(df, table.table_key, table.name, UPLOAD)


def scoring_threshold(name: str, run, model: str) -> float:
    """The threshold chosen for this run and model on the Evaluate page, else the one saved with the run."""
    t = state.chosen_threshold(name, model)
    if t is not None:
        return float(t)
    saved = (run.info.get("thresholds") or {}).get(model)
    return float(saved) if saved is not None else float(run.threshold)


def scoring_model(name: str, run) -> str:
    """The model chosen for this run on the Evaluate page, else the run's best model."""
    m = state.chosen_model(name)
    return m if m in run.info.get("models", {}) else run.best


def reasons_with_progress(path: str, stamp: str, data_key: str, as_of: str | None, model: str, run, frame, seq,
                          positions, n: int = 3) -> list[list[str]]:
    """The top ``n`` reasons of the users at ``positions`` of the scored rows, computed in steps with a progress bar
    (each step is cached, so a rerun only computes what it has not seen)."""
    positions = [int(i) for i in positions]
    if not positions:
        return [[] for _ in range(n)]
    ex = cache.scoring_explainer(path, stamp, data_key, as_of, model, run, frame, seq)
    out: list[list[str]] = [[] for _ in range(n)]
    total = len(positions)
    bar = st.progress(0.0, text=f"Working out the reasons for {total:,} users...") if total > REASON_CHUNK else None
    for start in range(0, total, REASON_CHUNK):
        part = tuple(positions[start:start + REASON_CHUNK])
        got = cache.reason_chunk(path, stamp, data_key, as_of, model, n, part, ex, frame, seq)
        for i in range(n):
            out[i].extend(got[i] if i < len(got) else [""] * len(part))
        if bar is not None:
            done = min(start + REASON_CHUNK, total)
            bar.progress(done / total, text=f"Working out the reasons: {done:,} of {total:,} users")
    if bar is not None:
        bar.empty()
    return out


def at_risk_table(list_df: pd.DataFrame, key: str) -> None:
    """The at-risk list as a sortable table (the first rows when it is very long)."""
    show = list_df.head(SHOW_ROWS)
    if len(list_df) > SHOW_ROWS:
        st.caption(f":material/info: Showing the first {SHOW_ROWS:,} of {len(list_df):,} users; the download holds "
                   "them all.")
    cfg = {"user_id": st.column_config.TextColumn("user"),
           "churn_probability": st.column_config.ProgressColumn("churn probability", format="percent", min_value=0.0,
                                                                max_value=1.0),
           "risk_decile": st.column_config.NumberColumn("risk decile", help="1 = the 10% of users most at risk"),
           "rank": st.column_config.NumberColumn("rank", format="localized"),
           "value": st.column_config.NumberColumn("value", format="localized"),
           "value_at_risk": st.column_config.NumberColumn("value at risk", format="localized",
                                                          help="Churn probability x the user's value"),
           "threshold": st.column_config.NumberColumn("threshold", format="%.3f")}
    for c in list_df.columns:
        if str(c).startswith("reason_"):
            cfg[c] = st.column_config.TextColumn(str(c).replace("_", " "), width="large")
    st.dataframe(show, hide_index=True, width="stretch", column_config=cfg, key=key)


def list_download(list_df: pd.DataFrame, file_name: str, key: str, label: str = "Download the list (CSV)") -> None:
    """A CSV download of the list (formula-safe: cells a spreadsheet would run are quoted), with the option to
    replace user ids by keyed pseudonyms."""
    from retention_core import scoring

    c = st.columns([2, 3], vertical_alignment="bottom")
    pseudo = c[0].toggle("Pseudonymise user ids", key=f"{key}:pseudo",
                         help="Replace each user id by a keyed pseudonym (HMAC-SHA256). The same key always gives the "
                              "same pseudonym, so lists stay joinable for whoever holds the key.")
    secret = ""
    if pseudo:
        secret = c[1].text_input("Pseudonymisation key", type="password", key=f"{key}:secret",
                                 help="At least 8 characters. Keep it safe: with it, ids can be matched again.")
        if len(secret) < 8:
            st.caption(":material/key: Enter a key of at least 8 characters to download pseudonymised ids.")
    ready = not pseudo or len(secret) >= 8
    frame = list_df

    def data() -> bytes:
        out = scoring.pseudonymise_list(frame, secret) if pseudo else frame
        return scoring.export_csv_bytes(out)

    st.download_button(label, data=data, file_name=file_name, mime="text/csv", icon=":material/download:",
                       key=f"{key}:download", disabled=not ready, on_click="ignore", type="primary")


# ================================================================================== insight (explain, segments)
EXPLAIN_PAGE = "app_pages/explain.py"
SEGMENTS_PAGE = "app_pages/segments.py"
SAMPLE_SIZES = [250, 500, 1000, 2000, 5000]
TOP_USERS = 20


def _commit_insight(run: str, wkey: str, what: str) -> None:
    state.set_insight(run, **{what: state.widget_value(wkey)})


def insight_picker(page: Key) -> tuple[cache.RunData, str, int] | None:
    """Pick a run (the active one by default), a model (the one chosen on the Evaluate page, else the best) and the
    size of the explanation sample. The choice is shared by the Explain and Segments pages and never changes the
    model used for scoring and export."""
    names, session = run_names()
    if not names:
        return None
    wkey = widget_key(page, "run")
    active = state.get_active_run_name()
    _sync(wkey, active if active in names else names[0])
    c = st.columns([2, 2, 1, 3], vertical_alignment="bottom")
    name = c[0].selectbox("Run", names, key=wkey, on_change=_commit_active, args=(wkey,),
                          help="Runs trained in this session and runs saved in the workspace.")
    with guard("loading the run") as g:
        data = _open_run(name)
    if g.failed:
        return None
    models = data.models
    if not models:
        st.warning("This run holds no validation predictions to look at.", icon=":material/warning:")
        return None
    labels = data.labels()
    choice = state.get_insight(name)
    mkey = widget_key(page, name, "model")
    default = next(m for m in (choice.model, state.chosen_model(name), data.best, models[0]) if m in models)
    _sync(mkey, default)
    model = c[1].selectbox("Model", models, key=mkey, on_change=_commit_insight, args=(name, mkey, "model"),
                           format_func=lambda k: labels.get(k, k) + (" (best)" if k == data.best else ""))
    skey = widget_key(page, name, "sample")
    sizes = sorted(set(SAMPLE_SIZES) | {choice.sample})
    _sync(skey, choice.sample)
    sample = c[2].selectbox("Users explained", sizes, key=skey, on_change=_commit_insight, args=(name, skey, "sample"),
                            format_func=lambda n: f"{n:,}", help="SHAP values are computed once on a sample of the "
                            "validation users of this size, stratified by outcome, and kept for this run and model.")
    v = data.validation
    rate = v["churned"].mean() if len(v) else float("nan")
    c[3].caption(f":material/rule: {len(v):,} validation users, churn rate {rate:.1%}.")
    return data, model, int(sample)


def explanation_status(data: cache.RunData, model: str, sample: int) -> cache.Explanation | None:
    """The explanation of this model (computed once per run version, model and sample size; the status shows the
    work when it runs) and what it was computed on."""
    digest = cache.manifest_digest(data.path)
    label = data.labels().get(model, model)
    error = None
    with st.status(f"Explaining {label} on up to {sample:,} validation users (once per run and model)...",
                   expanded=False) as box:
        try:
            e = cache.explanation(data.path, digest, model, int(sample))
        except Exception as exc:  # shown below; the page and the session carry on
            error, e = exc, None
        if e is None:
            box.update(label=f"{label} could not be explained", state="error")
        else:
            st.markdown(f"Method: {e.method_note}")
            box.update(label=f"Explanations of {label} ready: {e.size:,} of {e.n_total:,} users", state="complete")
    if error is not None:
        show_error(error, "explaining the model")
        return None
    st.caption(f":material/science: {e.note} Effects are in percentage points (pts) of churn probability. "
               f"Method: {e.method_note}")
    return e


def explain_overall(data: cache.RunData, e: cache.Explanation) -> None:
    """Global importance (bar) and a beeswarm of each user's effects."""
    from retention_core import explain

    st.subheader("What drives churn overall", anchor=False)
    k = lambda n: widget_key(Key.W_EXPLAIN, data.name, e.model, n)  # noqa: E731
    c = st.columns(2)
    c[0].plotly_chart(plots.importance_bar(e.importance), width="stretch", key=k("importance"))
    bees = explain.beeswarm_data(e.points, e.values, max_features=12)
    c[1].plotly_chart(plots.beeswarm(bees), width="stretch", key=k("beeswarm"))
    top = e.importance.head(3)
    if len(top):
        st.caption("Most important: " + ", ".join(f"**{r.label}** ({r.mean_abs_shap:.1f} pts on average)"
                                                   for r in top.itertuples()) + ".")


def explain_dependence(data: cache.RunData, e: cache.Explanation) -> None:
    """How churn risk moves with one feature, optionally coloured by another."""
    from retention_core import explain

    st.subheader("How one feature moves the risk", anchor=False)
    feats = e.importance["feature"].tolist()
    if not feats:
        return
    labels = dict(zip(e.importance["feature"], e.importance["label"]))
    k = lambda n: widget_key(Key.W_EXPLAIN, data.name, e.model, n)  # noqa: E731
    c = st.columns(2)
    feature = c[0].selectbox("Feature", feats, format_func=lambda f: labels.get(f, f), key=k("dep_feature"))
    others = [NONE] + [f for f in feats if f != feature]
    colour = c[1].selectbox("Colour by", others, format_func=lambda f: labels.get(f, f), key=k("dep_colour"))
    with guard("drawing the dependence plot"):
        dep = explain.dependence(e.points, e.values, feature, None if colour == NONE else colour)
        st.plotly_chart(plots.dependence_plot(dep, labels.get(feature, feature),
                                              color_label=None if colour == NONE else labels.get(colour, colour)),
                        width="stretch", key=k("dependence"))


INSIGHT_SEGMENTATIONS = {"attribute": "Attribute", "rfm": "RFM group"}


def explain_segments(data: cache.RunData, e: cache.Explanation, sample: int) -> None:
    """Importance per segment (an attribute or the RFM groups) against the whole population."""
    st.subheader("What drives churn per segment", anchor=False)
    k = lambda n: widget_key(Key.W_EXPLAIN, data.name, e.model, n)  # noqa: E731
    attrs = cache.segment_attributes(data)
    c = st.columns([1, 2])
    kind = c[0].radio("Segments", list(INSIGHT_SEGMENTATIONS), format_func=INSIGHT_SEGMENTATIONS.get,
                      horizontal=True, key=k("seg_kind")) or "attribute"
    column = None
    if kind == "attribute":
        if not attrs:
            st.caption("The validation users have no attributes to split by.")
            return
        column = c[1].selectbox("Attribute", attrs, key=k("seg_attr"))
    with guard("comparing the segments") as g:
        _, heat = cache.segment_comparison(data.path, cache.run_stamp(data.path), e.model, kind, column, "[]",
                                           cache.manifest_digest(data.path), sample)
    if g.failed or heat is None:
        return
    st.plotly_chart(plots.segment_heatmap(heat.matrix, flags=heat.flags, labels=heat.labels, users=heat.users,
                                          how=heat.how), width="stretch", key=k("seg_heatmap"))
    st.caption("Each cell: the feature's mean effect in the segment minus its mean effect over everyone explained "
               "(pts). ★ marks each segment's biggest departures. Segment sizes count explained users only.")


def _user_options(data: cache.RunData, model: str, query: str) -> pd.DataFrame:
    v = data.validation.reset_index(drop=True)
    ids = v["user_id"].astype("string")
    p = v[f"p:{model}"]
    if query:
        q = query.strip().lower()
        exact = ids.str.lower() == q
        hit = exact if exact.any() else ids.str.lower().str.contains(q, regex=False, na=False)
        found = v.loc[hit.fillna(False).to_numpy()]
    else:
        found = v.loc[p.sort_values(ascending=False, kind="stable").index[:TOP_USERS]]
    return found


def _user_label(row: pd.Series, model: str, dup: bool) -> str:
    when = f" on {pd.Timestamp(row['snapshot_date']):%Y-%m-%d}" if dup and "snapshot_date" in row else ""
    return f"{row['user_id']}{when} · {row[f'p:{model}']:.0%} churn risk"


def explain_user(data: cache.RunData, e: cache.Explanation) -> None:
    """One user: search by user id, the waterfall of their effects and the reasons in plain words."""
    st.subheader("Why one user is at risk", anchor=False)
    model = e.model
    k = lambda n: widget_key(Key.W_EXPLAIN, data.name, model, n)  # noqa: E731
    query = st.text_input("Search a user id", key=k("user_search"), placeholder="e.g. C000123",
                          help="Any validation user; leave empty to pick among the users most at risk.")
    found = _user_options(data, model, query)
    if found.empty:
        st.info(f"No validation user matches {query!r}.", icon=":material/search_off:")
        return
    if len(found) > 200:
        st.caption(f"{len(found):,} users match; showing the first 200. Type more of the id to narrow it down.")
        found = found.head(200)
    dup = bool(data.validation["user_id"].duplicated().any())
    options = [int(i) for i in found.index]
    caption = "Most at risk first." if not query else f"{len(found):,} user(s) match."
    position = st.selectbox(f"User ({caption})", options, key=k(f"user_pick:{query}"),
                            format_func=lambda i: _user_label(found.loc[i], model, dup))
    with guard("explaining this user") as g:
        u = cache.user_explanation(data.path, cache.manifest_digest(data.path), model, int(position))
    if g.failed:
        return
    row = data.validation.reset_index(drop=True).loc[int(position)]
    c = st.columns([2, 3])
    with c[0]:
        m = st.columns(2)
        m[0].metric("Churn probability", f"{u['prediction']:.1f}%",
                    delta=f"{u['prediction'] - u['base']:+.1f} pts vs average", delta_color="inverse")
        outcome = row.get("churned")
        m[1].metric("Outcome", "-" if pd.isna(outcome) else ("churned" if outcome == 1 else "came back"))
        st.markdown("**Reasons the risk is high**")
        if u["reasons"]:
            st.markdown("\n".join(f"{i}. {r}" for i, r in enumerate(u["reasons"], 1)))
        else:
            st.caption("Nothing in this user's behaviour raises the risk above the average user's.")
    labels = dict(zip(e.importance["feature"], e.importance["label"]))
    values = {f: _short_value(v) for f, v in u["values"].items()}
    c[1].plotly_chart(plots.waterfall(u["points"], base=u["base"], prediction=u["prediction"], labels=labels,
                                      values=values, title=f"Why {row['user_id']}'s churn risk is "
                                      f"{u['prediction']:.0f}%"), width="stretch", key=k("waterfall"))


def _short_value(v: Any) -> Any:
    if v is None or (isinstance(v, float) and pd.isna(v)):
        return None
    if isinstance(v, (int, float)):
        return f"{v:,.0f}" if abs(v) >= 100 or float(v).is_integer() else f"{v:,.2f}"
    return str(v)


# ---------------------------------------------------------------------------------------------------------- segments
FILTER_ROWS = 3


def _conditions_form(data: cache.RunData) -> list:
    """A small form to build a custom segment: up to three conditions, all of which must hold. The typed values are
    read by the library's parser (``in``: a comma-separated list, ``between``: two bounds), so the segment's
    conditions are ``(column, op, value)`` with a list for those two operators."""
    from retention_core.segments import OPS, Condition

    name = data.name
    saved = state.get_segment_filter(name)
    columns = [c for c in data.validation.columns if not str(c).startswith("p:") and c != "snapshot_date"]
    k = lambda n: widget_key(Key.W_SEGMENTS, name, "filter", n)  # noqa: E731
    with st.form(k("form"), border=True):
        st.markdown("**Users who meet all of these conditions**")
        rows = []
        for i in range(FILTER_ROWS):
            col, op, val = saved[i] if i < len(saved) else (NONE, "==", "")
            c = st.columns([3, 1, 3])
            opts = [NONE] + columns
            rows.append((c[0].selectbox("Column", opts, index=opts.index(col) if col in opts else 0, key=k(f"col{i}"),
                                        label_visibility="visible" if i == 0 else "collapsed"),
                         c[1].selectbox("Operator", OPS, index=OPS.index(op) if op in OPS
                                        else 0, key=k(f"op{i}"), label_visibility="visible" if i == 0 else "collapsed"),
                         c[2].text_input("Value", value=_value_text(val), key=k(f"val{i}"),
                                         placeholder="30 · DE, FR (in) · 10, 50 (between)",
                                         label_visibility="visible" if i == 0 else "collapsed")))
        if st.form_submit_button("Apply filter", icon=":material/filter_alt:", type="primary"):
            parsed = [Condition.from_text(c, o, v) for c, o, v in rows if c != NONE]
            conds = [(x.column, x.op, x.value) for x in parsed]
            state.set_segment_filter(name, conds)
            saved = conds
    return saved


def _value_text(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return ", ".join(map(str, v))
    return "" if v is None else str(v)


def segment_choice(data: cache.RunData) -> tuple[str, str | None, str] | None:
    """Choose the segmentation: an attribute, RFM groups, risk tiers or deciles, one-time vs repeat buyers or a
    custom filter; returns (kind, column, conditions as JSON)."""
    from retention_core import segments as seg

    k = lambda n: widget_key(Key.W_SEGMENTS, data.name, n)  # noqa: E731
    kind = st.segmented_control("Split users by", list(seg.SEGMENTATIONS), format_func=seg.SEGMENTATIONS.get,
                                default="attribute", key=k("kind")) or "attribute"
    column = None
    conditions = "[]"
    if kind == "attribute":
        attrs = cache.segment_attributes(data)
        if not attrs:
            st.info("The validation users have no attributes to split by.", icon=":material/info:")
            return None
        column = st.selectbox("Attribute", attrs, key=k("attribute"),
                              help="Mapped attributes first; numeric features are cut into five bands.")
    elif kind == "rfm":
        with st.expander("RFM rules", icon=":material/rule:"):
            st.caption("Scores 1-5 by quintile: R from days since the last purchase (5 = most recent), F from orders "
                       "and M from spend in the last 365 days (totals when missing); FM is the rounded mean of F and "
                       "M. The first rule that matches wins.")
            st.dataframe(seg.rfm_rules(), hide_index=True, width="stretch")
    elif kind == "risk_tier":
        st.caption("Tiers by the chosen model's churn probability: **high** = the 20% most at risk (deciles 1-2), "
                   "**medium** = the next 30% (deciles 3-5), **low** = the rest.")
    elif kind == "risk_decile":
        st.caption("Deciles by the chosen model's churn probability: decile 1 holds the 10% most at risk.")
    elif kind == "buyer":
        st.caption("One-time buyers have no repeat purchase day yet (repeat purchases = 0).")
    else:
        conds = _conditions_form(data)
        if not conds:
            st.info("Add a condition and apply the filter to build your segment.", icon=":material/filter_alt:")
            return None
        conditions = json.dumps([list(c) for c in conds], default=str)
    return kind, column, conditions


def segment_comparison_panel(data: cache.RunData, model: str, kind: str, column: str | None, conditions: str,
                             e: cache.Explanation | None, sample: int) -> pd.DataFrame | None:
    """The comparison table (size, churn, predicted risk, ROC-AUC, recall @10%, reliable, drivers), a chart and the
    segment x feature heatmap."""
    digest = cache.manifest_digest(data.path) if e is not None else None
    with guard("comparing the segments") as g:
        table, heat = cache.segment_comparison(data.path, cache.run_stamp(data.path), model, kind, column, conditions,
                                               digest, sample if e is not None else None)
    if g.failed:
        return None
    k = lambda n: widget_key(Key.W_SEGMENTS, data.name, n)  # noqa: E731
    st.subheader("Segments side by side", anchor=False)
    small = int((~table["reliable"]).sum())
    if small:
        st.caption(f":material/info: {small} segment(s) are too small to judge (fewer than 30 users or 5 churners or "
                   "retained users): marked, read them with care.")
    show = table.assign(reliable=table["reliable"].map({True: "yes", False: "too small"}))
    st.dataframe(show, hide_index=True, width="stretch", key=k("table"), column_config={
        "segment": st.column_config.TextColumn("segment"),
        "users": st.column_config.NumberColumn("users", format="localized"),
        "share": st.column_config.NumberColumn("share", format="percent"),
        "churn_rate": st.column_config.NumberColumn("churn rate", format="percent"),
        "mean_predicted": st.column_config.NumberColumn("predicted risk", format="percent"),
        "roc_auc": st.column_config.NumberColumn("ROC-AUC", format="%.3f"),
        "recall_top10": st.column_config.NumberColumn("recall @10%", format="%.3f"),
        "reliable": st.column_config.TextColumn("reliable"),
        "explained_users": st.column_config.NumberColumn("users explained", format="localized"),
        "top_drivers": st.column_config.TextColumn("drivers above everyone")})
    c = st.columns(2)
    c[0].plotly_chart(plots.segment_bars(table, "churn_rate", metric_label="Churn rate", title="Churn rate"),
                      width="stretch", key=k("churn_chart"))
    c[1].plotly_chart(plots.segment_bars(table, "roc_auc", metric_label="ROC-AUC", title="ROC-AUC"),
                      width="stretch", key=k("auc_chart"))
    if heat is not None:
        st.plotly_chart(plots.segment_heatmap(heat.matrix, flags=heat.flags, labels=heat.labels, users=heat.users,
                                              how=heat.how), width="stretch", key=k("heatmap"))
        st.caption(f"Mean effect of each feature in the segment minus over everyone explained (pts); ★ marks each "
                   f"segment's biggest departures. {e.note}")
    return table


def segment_drilldown(data: cache.RunData, model: str, kind: str, column: str | None, conditions: str,
                      table: pd.DataFrame, e: cache.Explanation | None) -> None:
    """One segment: its metrics, its drivers against the population and its users, most at risk first."""
    from retention_core import segments as seg

    st.subheader("One segment in detail", anchor=False)
    k = lambda n: widget_key(Key.W_SEGMENTS, data.name, n)  # noqa: E731
    names = table["segment"].tolist()
    name = st.selectbox("Segment", names, key=k(f"drill:{kind}:{column}"))
    row = table.set_index("segment").loc[name]
    cards = st.columns(5)
    cards[0].metric("Users", f"{int(row['users']):,}", help=f"{row['share']:.1%} of the validation users")
    cards[1].metric("Churn rate", f"{row['churn_rate']:.1%}" if pd.notna(row["churn_rate"]) else "-")
    cards[2].metric("Predicted risk", f"{row['mean_predicted']:.1%}" if pd.notna(row["mean_predicted"]) else "-")
    cards[3].metric("ROC-AUC", f"{row['roc_auc']:.3f}" if pd.notna(row["roc_auc"]) else "-")
    cards[4].metric("Recall @10%", f"{row['recall_top10']:.3f}" if pd.notna(row["recall_top10"]) else "-")
    if not bool(row["reliable"]):
        st.caption(":material/info: Too small to judge the model here; read these numbers with care.")
    labels_all = cache.segment_labels(data.path, cache.run_stamp(data.path), model, kind, column, conditions)
    in_seg = (labels_all.astype("string").fillna(seg.MISSING) == name).to_numpy()
    if e is not None:
        explained = e.points.loc[in_seg[e.points.index.to_numpy()]]
        if len(explained):
            labels = dict(zip(e.importance["feature"], e.importance["label"]))
            st.plotly_chart(plots.segment_drivers(explained.abs().mean(), e.points.abs().mean(), labels=labels,
                                                  segment=str(name)), width="stretch", key=k("drivers"))
            st.caption(f"Drivers from the {len(explained):,} users of this segment among those explained.")
    v = data.validation.reset_index(drop=True)
    attrs = [c for c in cache.segment_attributes(data)[:6] if c in v.columns]
    cols = ["user_id", f"p:{model}", "churned"] + [c for c in attrs if c not in ("user_id", "churned")]
    users = v.loc[in_seg, cols].sort_values(f"p:{model}", ascending=False, kind="stable")
    users = users.rename(columns={f"p:{model}": "churn_probability"})
    st.markdown(f"**Users in {name}** ({len(users):,}, most at risk first)")
    st.dataframe(users.head(1000), hide_index=True, width="stretch", key=k("users"), column_config={
        "churn_probability": st.column_config.ProgressColumn("churn probability", min_value=0.0, max_value=1.0,
                                                            format="percent")})
