"""The dataset: built on the Data page (snapshot settings for an event log, the label for a user table), shown with
its label balance and features, and prepared for training on the Train page (rebuilt at the cutoffs time-aware
validation needs, or with the weekly activity neural models read)."""
from __future__ import annotations

import json
import pandas as pd
import streamlit as st

from retention_core import plots
from retention_core.dataset import SnapshotConfig
from retention_core.errors import ConfigError, RetentionError
from retention_core.explain import feature_label
from retention_core.roles import Schema
from retention_core.validation import ValidationReport, validate_dataset

from . import cache, state, tables
from .state import Key, widget_key
from .tables import LoadedTable
from .widgets import guard


# ------------------------------------------------------------------------------------------------ building
def _snapshot_form(table: LoadedTable, d: dict, saved: dict | None) -> SnapshotConfig | None:
    """The snapshot settings (the analyst's last ones for this table, else the defaults); the config when the form
    is submitted."""
    defaults = d["config"]
    value = lambda name: (saved or {}).get(name, defaults[name])  # noqa: E731
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
        lookback = c[1].number_input("Lookback (days)", 1, 3650, int(value("lookback_days")), key=fk("lookback"),
                                     help="Customers counted bought at least once in this window.")
        horizon = c[2].number_input("Horizon (days)", 1, 3650, int(value("horizon_days")), key=fk("horizon"),
                                    help="No purchase within this many days after the cutoff means churned.")
        n_snap = c[3].number_input("Snapshots", 1, 60, int(value("n_snapshots")), key=fk("snapshots"))
        step = c[4].number_input("Step (days)", 1, 365, int(value("step_days")), key=fk("step"),
                                 help="Days between consecutive snapshots.")
        submitted = st.form_submit_button("Build dataset", type="primary", icon=":material/play_arrow:")
    if not submitted:
        return None
    return SnapshotConfig(horizon_days=int(horizon), lookback_days=int(lookback), n_snapshots=int(n_snap),
                          step_days=int(step), cutoff=None if auto else str(cutoff))


def event_dataset_builder(table: LoadedTable, sj: str, report: ValidationReport) -> None:
    """The snapshot settings form for an event log; on submit the dataset is built (cached) and kept in state."""
    st.subheader("Build the dataset", anchor=False)
    st.caption("Each snapshot looks at the customers who bought in the *lookback* window before a *cutoff* date and "
               "labels as churned those who do not buy again within the *horizon* after it. Several snapshots, one "
               "*step* apart, make a bigger training set; the latest is used for validation.")
    if not report.ok:
        st.warning("Fix the errors in the data checks above before building the dataset.", icon=":material/block:")
        return
    with guard("preparing the snapshot settings") as g:
        d = cache.snapshot_defaults(table.table_key, sj, table.df)
    if g.failed:
        return
    info = state.get_dataset_info()
    saved = info.config if info is not None and info.table_key == table.table_key and info.kind == "events" else None
    cfg = _snapshot_form(table, d, saved)
    if cfg is not None:
        with guard("building the dataset"):
            ds = cache.build_dataset(table.table_key, sj, json.dumps(cfg.as_dict(), sort_keys=True), table.df)
            state.set_dataset(ds, state.DatasetInfo(table.table_key, table.name, sj, cfg.as_dict(), "events"))
    dataset_results(table.table_key, sj)


def user_dataset_builder(table: LoadedTable, schema: Schema, sj: str, report: ValidationReport) -> None:
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
            ds = cache.user_dataset(table.table_key, sj, table.df)
            state.set_dataset(ds, state.DatasetInfo(table.table_key, table.name, sj, {}, "users"))
    dataset_results(table.table_key, sj)


# ------------------------------------------------------------------------------------------------ the dataset built
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
    _label_balance(ds, key)
    _features(ds, key)


def _label_balance(ds, key: str) -> None:
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


def _features(ds, key: str) -> None:
    st.markdown("**Features**")
    frame = ds.frame
    c = st.columns(2)
    with c[0]:
        if ds.numeric:
            desc = frame[ds.numeric].describe().T
            desc.insert(1, "missing", frame[ds.numeric].isna().sum())
            desc.index = [feature_label(c) for c in desc.index]  # each feature by its label
            st.dataframe(desc.round(3), width="stretch", height=min(360, 40 + 35 * len(desc)),
                         column_config={"count": st.column_config.NumberColumn("count", format="localized")})
        if ds.categorical:
            st.caption("Categorical: " + ", ".join(feature_label(c) for c in ds.categorical))
    with c[1]:
        feats = ds.features
        if feats:
            fkey = widget_key(Key.W_FEATURE, key)
            if state.widget_value(fkey) not in feats:
                state.set_widget(fkey, "recency_days" if "recency_days" in feats else feats[0])
            col = st.selectbox("Feature", feats, key=fkey, format_func=feature_label)
            with guard("drawing the feature"):
                st.plotly_chart(plots.feature_histogram(frame, col), width="stretch",
                                key=widget_key(Key.W_FEATURE, key, "hist"))


# ------------------------------------------------------------------------------------------------ for training
def snapshot_config(ds) -> dict:
    """The snapshot settings the dataset was built with (without the explicit cutoffs of a rebuild)."""
    return {k: v for k, v in (ds.config or {}).items() if k != "cutoffs"}


def time_split_problem(ds) -> str | None:
    """Why time-aware validation cannot run on this event-log dataset (None when it can)."""
    from retention_core.training import time_split

    if ds.kind != "events":
        return None
    try:
        time_split(ds.labelled(), int(ds.config.get("horizon_days", 90)))
    except ConfigError as exc:
        return str(exc)
    return None


def _source_table(info: state.DatasetInfo, why: str) -> pd.DataFrame:
    df = tables.table_by_key(info.table_key)
    if df is None:
        raise ConfigError(f"{why} the table this dataset was built from, which is no longer loaded. Open the Data "
                          "page, load it again and build the dataset.")
    return df


def _tokens(ds) -> int:
    """How many latest events per row the dataset carries as tokens (0: none)."""
    return int(getattr(getattr(ds.sequences, "tokens", None), "max_events", 0))


def _rebuild(ds, info: state.DatasetInfo, *, sequences: bool, training_cutoffs: bool, why: str,
             event_tokens: int = 0):
    """The dataset built again from its table, with the sequences or not, at the cutoffs time-aware validation needs
    (``training_cutoffs``) or at its own; kept in state."""
    df = _source_table(info, why)
    cfg_json = json.dumps(snapshot_config(ds), sort_keys=True, default=str)
    cutoffs = cache.training_cutoffs(info.table_key, info.schema_json, cfg_json, df) if training_cutoffs \
        else ds.config.get("cutoffs")
    new = cache.training_dataset(info.table_key, info.schema_json, cfg_json, json.dumps(cutoffs), sequences, df,
                                 event_tokens)
    state.set_dataset(new, info)
    return new


def rebuild_for_training(ds, info: state.DatasetInfo) -> None:
    """Rebuild the event-log dataset at the cutoffs time-aware validation needs and keep it in state."""
    _rebuild(ds, info, sequences=ds.sequences is not None, training_cutoffs=True, why="Rebuilding it needs",
             event_tokens=_tokens(ds))


def with_sequences(ds, info: state.DatasetInfo, event_tokens: int = 0):
    """The same dataset with the weekly activity sequences that neural sequence models read, and each row's latest
    ``event_tokens`` events when the pre-trained encoder is trained (kept in state)."""
    if ds.kind != "events" or (ds.sequences is not None and _tokens(ds) >= event_tokens):
        return ds
    return _rebuild(ds, info, sequences=True, training_cutoffs=False, why="The sequence models need",
                    event_tokens=event_tokens)


def excluded_features(info: state.DatasetInfo) -> list:
    """The features the data checks leave out (e.g. a column that leaks the label); none when they cannot be read."""
    df = tables.table_by_key(info.table_key)
    if df is None:
        return []
    try:
        return list(cache.validate(info.table_key, info.schema_json, df).excluded_features)
    except RetentionError:
        return []
