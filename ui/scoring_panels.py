"""Scoring panels: the At-risk page (score the loaded table or the run's validation users, choose who to contact,
add the reasons, download the list) and the Models page (the saved runs: open, compare, score a new file, delete)."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import pandas as pd
import streamlit as st

from retention_core import io as rio
from retention_core import base_rate, bundle, campaign, export, scoring

from . import cache, campaign_panels, control_panels, recording, run_picker, stage_panels, state, tables
from .state import Key, widget_key
from .tables import UPLOAD_TYPES, LoadedTable
from .widgets import EVALUATE_PAGE, at_risk_table, guard, leaderboard_table, list_download

METHODS = {"contacts": "Number of contacts", "threshold": "Above the threshold", "top_k": "Top K by risk",
           "budget": "Money budget", "value": "Most value at risk", "expected_value": "Expected net value"}
SOURCES = {"table": "The data loaded on the Data page", "validation": "The run's validation users"}
MAX_FILTER_COLUMNS = 4
REASON_CHUNK = 250  # users explained per step of the progress bar
SUMMARY_METRICS = ["roc_auc", "pr_auc", "accuracy", "precision", "recall", "f1", "threshold"]


def _k(*parts: Any) -> str:
    return widget_key(Key.W_AT_RISK, *parts)


def _m(*parts: Any) -> str:
    return widget_key(Key.W_MODELS, *parts)


@dataclass(frozen=True)
class Scored:
    """The users scored on the At-risk page: scores, feature rows, activity sequences (sequence models), what they
    were scored on (the table's key or ``validation``, the as-of date), with which model, and the table's name."""

    scores: pd.DataFrame
    frame: pd.DataFrame
    seq: Any
    data_key: str
    as_of: str | None
    model: str = ""
    data_name: str | None = None


# ================================================================================================ at-risk
def scoring_note(data: cache.RunData, model: str) -> float:
    """Which model and threshold score the users (those chosen on the Evaluate page); returns the threshold."""
    threshold = run_picker.threshold_for(data.name, data.info, model)
    st.caption(f":material/tune: Scoring with **{data.labels().get(model, model)}**; its threshold "
               f"**{threshold:.3f}** is the one chosen on the Evaluate page (or saved with the run).")
    st.page_link(EVALUATE_PAGE, label="Change the model or the threshold", icon=":material/query_stats:")
    return threshold


def _source(run_name: str) -> tuple[str, LoadedTable | None]:
    """Which users to score: the table loaded on the Data page (when there is one) or the run's validation users."""
    with guard("reading the loaded data") as g:
        table = tables.loaded_table()
    if g.failed:
        table = None
    options = ["table", "validation"] if table is not None else ["validation"]
    labels = dict(SOURCES)
    if table is not None:
        labels["table"] = f"{SOURCES['table']} ({table.name})"
    source = st.radio("Users to score", options, format_func=labels.get, horizontal=True, key=_k(run_name, "source"))
    if table is None:
        st.caption(":material/info: Load a table on the Data page to score its users; meanwhile the run's "
                   "validation users are listed.")
    return source or options[0], table


def score_panel(data: cache.RunData, model: str) -> Scored | None:
    """Score the chosen users (as of a day, for an event log); None when nothing could be scored."""
    source, table = _source(data.name)
    stamp = bundle.run_id(data.path)
    with guard("scoring the users") as g:
        if source == "table" and table is not None:
            as_of = None
            if data.info.get("kind") == "events":
                day = st.date_input("Score as of", value=None, key=_k(data.name, "as_of"),
                                    help="Features use the events up to this day. Empty: the last day in the data.")
                as_of = str(day) if day else None
            run = run_picker.open_run(data.name)
            scores, frame, seq = cache.score_users(data.path, stamp, table.table_key, as_of, model, run, table.df)
            scored = Scored(scores, frame, seq, table.table_key, as_of, model, table.name)
        else:
            scores, frame = cache.validation_scores(data.path, stamp, model)
            scored = Scored(scores, frame, None, "validation", None, model)
        scored = replace(scored, scores=stage_panels.with_stages(data, scored.scores, scored.frame))
    if g.failed:
        return None
    if not len(scored.scores):
        st.warning("No users to score: the data holds no users active in the lookback window.",
                   icon=":material/warning:")
        return None
    st.caption(f"{len(scored.scores):,} users scored; as of {scoring.scoring_date(scored.frame)}.")
    if scored.data_key != "validation":
        base_rate_note(data, scored.scores, model)
    # -- monitoring: a scoring of new data is kept when its list is downloaded or on request (never the validation
    # users; trying dates records nothing)
    if scored.data_key != "validation" and table is not None:
        recording.record_panel(run_picker.open_run(data.name), scored.scores, scored.frame, model=model,
                               data_key=scored.data_key, data_name=table.name, key=_k(data.name, "record"))
    # -- end monitoring
    return scored


def base_rate_note(data: cache.RunData, scores: pd.DataFrame, model: str) -> None:
    """The predicted churn of every customer scored (before the audience and the choice of contacts) beside the churn
    rate of the customers the model was checked on: a warning beyond 5 points, a caption otherwise. The
    probabilities are shown as the model gives them, never re-weighted."""
    if data.task != "churn":
        return
    check = base_rate.base_rate_check(None, scores, validation=base_rate.churn_of_rows(data.validation, model))
    if check.warning:
        st.warning(check.warning, icon=":material/warning:")
    else:
        st.caption(f":material/balance: {check.summary}")


def _contact_inputs(scores: pd.DataFrame, k) -> dict:
    """A number of contacts (default: the top 10% of the customers scored), ranked by uplift when the run has it,
    else by expected net value under the save rate and cost per contact given here."""
    n = len(scores)
    default = scoring.contacts_for(n)
    c = st.columns(3)
    kw: dict = {"k": int(c[0].number_input("Customers to contact", 1, max(n, 1), max(1, min(default, n)),
                                           key=k("contacts"), help=f"Starts at {scoring.DEFAULT_SHARE:.0%} of the "
                                           f"{n:,} customers scored: the campaign's budget in contacts."))}
    if "uplift" in scores.columns:
        st.caption("Ranked by uplift: the customers a contact is most expected to keep come first.")
        return kw
    kw["save_rate"] = float(c[1].number_input("Save rate (%)", 0.1, 100.0, campaign.DEFAULT_SAVE_RATE * 100, 1.0,
                                              format="%.1f", key=k("contacts_save"), help=campaign.EXPLANATION)) / 100
    kw["cost_per_contact"] = float(c[2].number_input("Cost per contact", 0.0, 1e9, campaign.DEFAULT_COST, 0.5,
                                                     key=k("contacts_cost")))
    st.caption("Ranked by the expected net value of a contact: churn probability x value at stake x save rate - cost "
               "per contact, so the customers most worth a contact come first.")
    return kw


def _method_inputs(method: str, scores: pd.DataFrame, threshold: float, frame, k) -> dict:
    """The inputs of one way of choosing users; returns the keyword arguments of ``at_risk_list``."""
    kw: dict = {"method": method, "threshold": threshold}
    n = len(scores)
    top_default = max(1, min(n, 100))
    if method == "contacts":
        kw.update(_contact_inputs(scores, k))
    elif method == "threshold":
        kw["threshold"] = float(st.slider("Churn probability at least", 0.0, 1.0, round(threshold, 3), 0.001,
                                          format="%.3f", key=k("threshold"),
                                          help="Starts at the threshold chosen on the Evaluate page."))
        if kw["threshold"] == round(threshold, 3):
            kw["threshold"] = threshold  # keep the exact chosen threshold until the slider is moved
    elif method == "top_k":
        kw["k"] = int(st.number_input("Users to contact (K)", 1, max(n, 1), top_default, key=k("top_k")))
    elif method == "expected_value":  # campaigns ranked by expected net value: ui/campaign_panels.py
        kw.update(campaign_panels.campaign_inputs(frame, n, k))
    elif method == "budget":
        c = st.columns(2)
        kw["budget"] = float(c[0].number_input("Campaign budget", 0.0, 1e12, 1000.0, 100.0, key=k("budget")))
        kw["cost_per_contact"] = float(c[1].number_input("Cost per contact", 0.01, 1e9, 2.0, 0.5, key=k("cost"),
                                                         help="What one retention contact costs (voucher, call)."))
        with guard("working out the budget") as g:
            paid = campaign.budget_contacts(kw["budget"], kw["cost_per_contact"])
        if not g.failed:
            st.caption(f"The budget pays for **{paid:,}** contacts, given to the users most at risk.")
    else:
        c = st.columns(2)
        col = c[0].selectbox("User value", ["(automatic)"] + campaign.value_columns(frame), key=k("value_col"),
                             help="Past revenue by default (last 365 days, else in total), else past orders.")
        kw["value_col"] = None if col == "(automatic)" else col
        kw["k"] = int(c[1].number_input("Users to contact (K)", 1, max(n, 1), top_default, key=k("value_k")))
        basis = kw["value_col"] or campaign.value_basis(frame)
        st.caption(f"Value at risk = churn probability x **{basis or 'one per user'}**; users ranked by it."
                   if basis else "The data holds no revenue or orders: every user counts as 1.")
    return kw


def _segment_filter(run_name: str, frame) -> dict:
    """Narrow the list to segments: attribute values and risk deciles."""
    seg_cols = scoring.segment_columns(frame)[:MAX_FILTER_COLUMNS]
    chosen: dict = {}
    with st.expander("Filter by segment", icon=":material/filter_alt:"):
        cols = st.columns(len(seg_cols) + 1)
        for col, box in zip(seg_cols, cols):
            picked = box.multiselect(str(col), scoring.segment_values(frame, col), key=_k(run_name, "segment", col),
                                     placeholder="All")
            if picked:
                chosen[col] = picked
        deciles = cols[-1].multiselect("Risk decile", list(range(1, 11)), key=_k(run_name, "segment", "decile"),
                                       placeholder="All", help="1 = the 10% of users most at risk.")
        if deciles:
            chosen["risk_decile"] = deciles
    return chosen


def reasons_with_progress(data: cache.RunData, model: str, scored: Scored, positions, n: int = 3) -> list[list[str]]:
    """The top ``n`` reasons of the users at ``positions`` of the scored rows, computed in steps with a progress bar
    (each step is cached, so a rerun only computes what it has not seen)."""
    positions = [int(i) for i in positions]
    out: list[list[str]] = [[] for _ in range(n)]
    if not positions:
        return out
    stamp, run = bundle.run_id(data.path), run_picker.open_run(data.name)
    key = (data.path, stamp, scored.data_key, scored.as_of, model)
    ex = cache.scoring_explanation(*key, run, scored.frame, scored.seq)
    total = len(positions)
    bar = st.progress(0.0, text=f"Working out the reasons for {total:,} users...") if total > REASON_CHUNK else None
    for start in range(0, total, REASON_CHUNK):
        part = tuple(positions[start:start + REASON_CHUNK])
        got = cache.reason_chunk(*key, n, part, ex, scored.frame, scored.seq)
        for i in range(n):
            out[i].extend(got[i] if i < len(got) else [""] * len(part))
        if bar is not None:
            done = min(start + REASON_CHUNK, total)
            bar.progress(done / total, text=f"Working out the reasons: {done:,} of {total:,} users")
    if bar is not None:
        bar.empty()
    return out


def who_to_contact(data: cache.RunData, model: str, scored: Scored, threshold: float) -> pd.DataFrame | None:
    """The way to choose users, the segments to keep and the reasons: the at-risk list, or None on an error."""
    st.subheader("Who to contact", anchor=False)
    k = lambda name: _k(data.name, model, name)  # noqa: E731
    stage_panels.rules_panel(data, _k(data.name, "stage_rules"))
    stage_panels.stage_chart(scored.scores, k("stage_chart"))
    audience = stage_panels.audience_choice(scored.scores, _k(data.name, "audience"))
    method = st.segmented_control("Choose users", list(METHODS), format_func=METHODS.get, default="contacts",
                                  key=k("method")) or "contacts"
    kw = _method_inputs(method, scored.scores, threshold, scored.frame, k)
    segment_filter = _segment_filter(data.name, scored.frame)
    with guard("choosing the users") as g:
        list_df = scoring.at_risk_list(scored.scores, scored.frame, segment_filter=segment_filter, model=model,
                                       audience=audience, **kw)
    if g.failed:
        return None
    if method == "expected_value":
        campaign_panels.campaign_panel(scored.scores, scored.frame, list_df, {**kw, "audience": audience},
                                       segment_filter, k("ev_chart"))
    want_reasons = st.toggle("Add the top 3 reasons for each user", value=len(list_df) <= 10_000, key=k("reasons"),
                             help="Worked out for the users in the list only.")
    if want_reasons and len(list_df):
        with guard("working out the reasons"):
            positions = scoring.list_positions(scored.scores, list_df)
            reasons = reasons_with_progress(data, model, scored, positions, n=3)
            list_df = scoring.attach_reasons(list_df, reasons)
    return list_df


def list_panel(data: cache.RunData, scored: Scored, list_df: pd.DataFrame) -> None:
    """What the list holds (users, expected churners, value at risk), the list itself and its download."""
    s = scoring.list_summary(list_df)
    eligible, basis = list_df.attrs.get("eligible", len(scored.scores)), list_df.attrs.get("value_basis")
    c = st.columns(3)
    c[0].metric("Users selected", f"{s['users']:,}", help=f"Out of {eligible:,} users in the audience and segments.")
    c[1].metric("Expected churners among them", f"{s['expected_churners']:,.0f}",
                help="The sum of their churn probabilities.")
    c[2].metric(f"Value at risk ({export.value_unit(basis)})", f"{s['value_at_risk']:,.0f}",
                help=f"Sum of churn probability x {basis or 'one per user'}.")
    at_risk_table(list_df, _k(data.name, "table"))
    day = scoring.scoring_date(scored.frame)
    name, keep = f"at_risk_{data.name.replace(' ', '_')}_{day}.csv", None
    sent = list_df
    if scored.data_key != "validation":  # a control group, and the download records the scoring (ui/control_panels)
        list_df, sent, name = control_panels.export_choice(list_df, name, _k(data.name, "control"), day)
        keep = recording.on_download(run_picker.open_run(data.name), scored.scores, scored.frame, model=scored.model,
                                     data_key=scored.data_key, data_name=scored.data_name or "",
                                     control=control_panels.held_out(list_df))
    list_download(sent, name, _k(data.name, "download"), control_panels.download_label(sent, list_df),
                  on_download=keep)


# ================================================================================================ models page
def runs_table(saved: pd.DataFrame) -> None:
    """The runs saved in the workspace, and which are open or active in this session."""
    st.subheader("Saved runs", anchor=False)
    if not len(saved):
        st.info("No run saved in the workspace any more: train one on the Train page.", icon=":material/info:")
        return
    session, active = state.get_runs(), state.get_active_run_name()
    show = saved.copy()
    show.insert(1, "status", ["active" if r == active else "open" if r in session else "" for r in show["run"]])
    st.dataframe(show, hide_index=True, width="stretch", key=_m("list"), column_config={
        "run": st.column_config.TextColumn("run"),
        "status": st.column_config.TextColumn("in this session"),
        "created": st.column_config.TextColumn("created"),
        "kind": st.column_config.TextColumn("data"),
        "best_model": st.column_config.TextColumn("best model"),
        "roc_auc": st.column_config.NumberColumn("ROC-AUC", format="%.3f"),
        "models": st.column_config.NumberColumn("models")})


def _run_box(names: list[str], label: str, key: str):
    active = state.get_active_run_name()
    return st.selectbox(label, names, index=names.index(active) if active in names else 0, key=key)


def open_panel(names: list[str]) -> None:
    st.subheader("Open a run", anchor=False)
    c = st.columns([3, 1], vertical_alignment="bottom")
    with c[0]:
        name = _run_box(names, "Run", _m("open"))
    if c[1].button("Open", icon=":material/folder_open:", key=_m("open", "go"), type="primary"):
        with guard(f"opening run {name!r}") as g:
            run_picker.open_run(name, reload=True)
        if not g.failed:
            st.success(f"Run {name!r} is open and active: the Evaluate, Explain, Segments and At-risk pages now use "
                       "it.", icon=":material/check_circle:")


def serve_panel(names: list[str]) -> None:
    """The command that serves a saved run over HTTP, for a shop's site or CRM to ask one customer's risk."""
    st.subheader("Serve a run in real time", anchor=False)
    st.caption("A shop's site or CRM can ask how likely a customer is to leave, and why, at the moment they log in "
               "or call: run this where the workspace is, then POST raw events or feature rows to /v1/score "
               "(API documentation at /docs; set RETENTION_API_TOKEN to require a bearer token).")
    name = _run_box(names, "Run", _m("serve"))
    with guard("finding the run") as g:
        run = run_picker.open_run(name)
    if not g.failed:
        from retention_core.models import REGISTRY

        keys = list(run.info["models"])
        label = lambda k: (REGISTRY[k].label if k in REGISTRY else k) + (" (best)" if k == run.best else "")  # noqa: E731
        key = st.selectbox("Model to serve", keys, index=keys.index(run.best) if run.best in keys else 0,
                           format_func=label, key=_m("serve_model"))
        st.code(bundle.serve_command(run.path, model=None if key == run.best else key), language="bash")


def compare_panel(names: list[str]) -> None:
    from retention_core.evaluation import METRIC_LABELS

    st.subheader("Compare runs", anchor=False)
    chosen = st.multiselect("Runs to compare", names, default=names[:2], key=_m("compare"), max_selections=4)
    rows, boards = [], {}
    for name in chosen:
        with guard(f"loading run {name!r}") as g:
            data = run_picker.peek_run(name)
        if g.failed:
            continue
        best = data.metrics.get("models", {}).get(data.best, {})
        row = {"run": name, "best model": data.labels().get(data.best, data.best),
               "validation": data.metrics.get("validation", ""), "users": len(data.validation)}
        row.update({METRIC_LABELS.get(m, m): best.get(m) for m in SUMMARY_METRICS})
        rows.append(row)
        boards[name] = data.leaderboard
    if not rows:
        return
    st.caption("The best model of each run, on its own validation users.")
    st.dataframe(rows, hide_index=True, width="stretch", key=_m("compare", "summary"))
    for col, (name, board) in zip(st.columns(len(boards)), boards.items()):
        with col:
            st.markdown(f"**{name}**")
            leaderboard_table(board)


def delete_panel(names: list[str]) -> None:
    st.subheader("Delete a run", anchor=False)
    c = st.columns([3, 2, 1], vertical_alignment="bottom")
    name = c[0].selectbox("Run", names, index=None, placeholder="Choose a run to delete", key=_m("delete"))
    sure = c[1].checkbox("Yes, delete it for good", key=_m("delete", "confirm", name), disabled=name is None,
                         help="The run folder and its models are removed from the workspace.")
    if c[2].button("Delete", icon=":material/delete:", key=_m("delete", "go"), disabled=not (name and sure)):
        with guard(f"deleting run {name!r}") as g:
            run_picker.delete_run(name)
        if not g.failed:
            st.success(f"Run {name!r} was deleted.", icon=":material/check_circle:")


def score_file_panel(names: list[str]) -> None:
    """Score an uploaded file with a saved run (its chosen model and threshold): every user with a churn
    probability, a risk decile and a rank, ready to download."""
    st.subheader("Score a new file", anchor=False)
    st.caption("Upload an event log or a user table with the same columns as the run's training data; every user "
               "gets a churn probability, a risk decile and a rank.")
    name = _run_box(names, "With run", _m("score"))
    up = st.file_uploader("File to score", type=UPLOAD_TYPES, key=_m("score", "file"))
    if up is None:
        return
    with guard("scoring the file") as g:
        run = run_picker.open_run(name)
        path = str(run.path)
        model = run_picker.chosen_model(name, run.info)
        threshold = run_picker.threshold_for(name, run.info, model)
        raw = up.getvalue()
        table = tables.read_upload(state.Upload(up.name, raw, rio.digest(raw)))
        scores, frame, _ = cache.score_users(path, bundle.run_id(path), table.table_key, None, model, run, table.df)
        scored = scoring.at_risk_list(scores, frame, method="top_k", k=max(len(scores), 1), threshold=threshold,
                                      model=model)
    if g.failed:
        return
    flagged = int(scoring.above_threshold(scored["churn_probability"], threshold).sum())  # the service's at_risk
    c = st.columns(3)
    c[0].metric("Users scored", f"{len(scored):,}")
    c[1].metric("At risk", f"{flagged:,}", help=f"Churn probability at least {threshold:.3f} (the run's threshold).")
    c[2].metric("Expected churners", f"{scoring.list_summary(scored)['expected_churners']:,.0f}")
    base_rate_note(cache.run_data(path, bundle.run_id(path)), scores, model)
    # -- monitoring: the scoring of the file is kept when its scores are downloaded or on request
    kept = {"model": model, "data_key": table.table_key, "data_name": table.name}
    recording.record_panel(run, scores, frame, key=_m("score", "record"), **kept)
    # -- end monitoring
    at_risk_table(scored, _m("score", "table"))
    list_download(scored, f"scores_{name.replace(' ', '_')}_{scoring.scoring_date(frame)}.csv",
                  _m("score", "download"), label="Download the scores (CSV)",
                  on_download=recording.on_download(run, scores, frame, **kept))
