"""Models: the runs saved in the workspace: open one, compare them, delete one, score a new file with one."""
from __future__ import annotations

import streamlit as st

from retention_core import bundle, scoring
from retention_core import io as rio
from ui import cache, components, state
from ui.state import Key, widget_key

SUMMARY_METRICS = ["roc_auc", "pr_auc", "accuracy", "precision", "recall", "f1", "threshold"]


def _k(*parts) -> str:
    return widget_key(Key.W_MODELS, *parts)


def _load(name: str):
    """Open a saved run in this session (its signature and files are checked first) and make it active."""
    run = bundle.load_run(bundle.run_path(name, cache.workspace_root()))
    state.add_run(name, run)
    return run


def _runs_table(saved) -> None:
    session, active = state.get_runs(), state.get_active_run_name()
    show = saved.copy()
    show.insert(1, "status", ["active" if r == active else "open" if r in session else "" for r in show["run"]])
    st.dataframe(show, hide_index=True, width="stretch", key=_k("list"), column_config={
        "run": st.column_config.TextColumn("run"),
        "status": st.column_config.TextColumn("in this session"),
        "created": st.column_config.TextColumn("created"),
        "kind": st.column_config.TextColumn("data"),
        "best_model": st.column_config.TextColumn("best model"),
        "roc_auc": st.column_config.NumberColumn("ROC-AUC", format="%.3f"),
        "models": st.column_config.NumberColumn("models")})


def _open(names: list[str]) -> None:
    st.subheader("Open a run", anchor=False)
    c = st.columns([3, 1], vertical_alignment="bottom")
    active = state.get_active_run_name()
    name = c[0].selectbox("Run", names, index=names.index(active) if active in names else 0, key=_k("open"))
    if c[1].button("Open", icon=":material/folder_open:", key=_k("open", "go"), type="primary"):
        with components.guard(f"opening run {name!r}") as g:
            _load(name)
        if not g.failed:
            st.success(f"Run {name!r} is open and active: the Evaluate, Explain, Segments and At-risk pages now use "
                       "it.", icon=":material/check_circle:")


def _compare(names: list[str]) -> None:
    from retention_core.evaluation import METRIC_LABELS

    st.subheader("Compare runs", anchor=False)
    default = names[:2]
    chosen = st.multiselect("Runs to compare", names, default=default, key=_k("compare"), max_selections=4)
    if not chosen:
        return
    rows, boards = [], {}
    for name in chosen:
        with components.guard(f"loading run {name!r}") as g:
            path = str(bundle.run_path(name, cache.workspace_root()))
            data = cache.run_data(path, cache.run_stamp(path))
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
    st.dataframe(rows, hide_index=True, width="stretch", key=_k("compare", "summary"))
    cols = st.columns(len(boards))
    for col, (name, board) in zip(cols, boards.items()):
        with col:
            st.markdown(f"**{name}**")
            components.leaderboard_table(board)


def _delete(names: list[str]) -> None:
    st.subheader("Delete a run", anchor=False)
    c = st.columns([3, 2, 1], vertical_alignment="bottom")
    name = c[0].selectbox("Run", names, index=None, placeholder="Choose a run to delete", key=_k("delete"))
    sure = c[1].checkbox("Yes, delete it for good", key=_k("delete", "confirm", name), disabled=name is None,
                         help="The run folder and its models are removed from the workspace.")
    if c[2].button("Delete", icon=":material/delete:", key=_k("delete", "go"), disabled=not (name and sure)):
        with components.guard(f"deleting run {name!r}") as g:
            bundle.delete_run(name, cache.workspace_root())
            state.remove_run(name)
        if not g.failed:
            st.success(f"Run {name!r} was deleted.", icon=":material/check_circle:")


def _score_file(names: list[str]) -> None:
    st.subheader("Score a new file", anchor=False)
    st.caption("Upload an event log or a user table with the same columns as the run's training data; every user "
               "gets a churn probability, a risk decile and a rank.")
    active = state.get_active_run_name()
    name = st.selectbox("With run", names, index=names.index(active) if active in names else 0, key=_k("score"))
    up = st.file_uploader("File to score", type=components.UPLOAD_TYPES, key=_k("score", "file"))
    if up is None:
        return
    with components.guard("scoring the file") as g:
        run = state.get_runs().get(name) or _load(name)
        path = str(run.path)
        model = components.scoring_model(name, run)
        threshold = components.scoring_threshold(name, run, model)
        raw = up.getvalue()
        key = cache.table_key(rio.digest(raw))
        df = cache.read_table(key, up.name, None, raw)
        scores, frame, _ = cache.score_users(path, cache.run_stamp(path), key, None, model, run, df)
        scored = scoring.at_risk_list(scores, frame, method="top_k", k=max(len(scores), 1), threshold=threshold,
                                      model=model)
    if g.failed:
        return
    flagged = int((scored["churn_probability"] >= threshold).sum())
    c = st.columns(3)
    c[0].metric("Users scored", f"{len(scored):,}")
    c[1].metric("At risk", f"{flagged:,}", help=f"Churn probability at least {threshold:.3f} (the run's threshold).")
    c[2].metric("Expected churners", f"{scoring.list_summary(scored)['expected_churners']:,.0f}")
    components.at_risk_table(scored, _k("score", "table"))
    components.list_download(scored, f"scores_{name.replace(' ', '_')}_{scoring.scoring_date(frame)}.csv",
                             _k("score", "download"), label="Download the scores (CSV)")


def main() -> None:
    components.page_header("Models", ":material/inventory_2:",
                           "Open, compare and delete the runs saved in the workspace; score a new file with one.")
    listing = st.container()
    saved = cache.workspace_runs()
    names = [str(n) for n in saved["run"]]
    if not names:
        with listing:
            components.model_status()
            components.coming_next([
                "see every run saved in the workspace and open one for the analysis pages",
                "compare the runs' leaderboards side by side, and delete the ones you no longer need",
                "score a newly uploaded file with a saved run and download the scores",
            ])
        return
    tabs = st.tabs(["Open", "Compare", "Score a file", "Delete"])
    with tabs[0]:
        _open(names)
    with tabs[1]:
        _compare(names)
    with tabs[2]:
        _score_file(names)
    with tabs[3]:
        _delete(names)
    saved = cache.workspace_runs()  # after a deletion the list shows what is left
    with listing:
        st.subheader("Saved runs", anchor=False)
        if len(saved):
            _runs_table(saved)
        else:
            st.info("No run saved in the workspace any more: train one on the Train page.", icon=":material/info:")


main()
