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
from retention_core.errors import RetentionError
from retention_core.events import SnapshotConfig
from retention_core.roles import ROLE_LABELS, ROLES, Schema
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
DATA_PAGE = "pages/data.py"
TRAIN_PAGE = "pages/train.py"


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
                             help="The first sheet that holds data is read by default.")
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
    if not cache.has_user_dataset():
        st.info("Turning a user table into a dataset is not available in this version yet. The label balance is in "
                "the data checks above.", icon=":material/info:")
        return
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
        with guard("building the dataset") as g:
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
