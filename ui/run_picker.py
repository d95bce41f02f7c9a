"""Saved runs: listing them, opening one in the session (the one way to open a run: its signature and files are
checked), the run and model pickers of the analysis pages, and the model and threshold the analyst chose for a run.

Evaluate, Explain, Segments, At-risk and Models all open runs through :func:`open_run`.
"""
from __future__ import annotations

from typing import Any

import streamlit as st

from retention_core import bundle
from retention_core.bundle import refit_note

from . import cache, state
from .state import Key, widget_key
from .widgets import guard

SAMPLE_SIZES = [250, 500, 1000, 2000, 5000]


# ------------------------------------------------------------------------------------------------ runs
def saved_names() -> list[str]:
    """Runs saved in the workspace, newest first (reading it never creates one)."""
    return [str(n) for n in cache.workspace_runs()["run"]]


def run_names() -> tuple[list[str], dict]:
    """Runs the analyst can open: this session's first, then those saved in the workspace."""
    session = state.get_runs()
    names = list(session)
    try:
        names += [n for n in saved_names() if n not in session]
    except OSError:
        pass
    return names, session


def open_run(name: str, *, reload: bool = False) -> bundle.Run:
    """A run of this session; a run saved earlier (or any run, with ``reload``) is first loaded from the workspace,
    its signature and file hashes checked (BundleError when it was changed), and made the active run."""
    run = state.get_runs().get(name)
    if run is None or reload:
        run = bundle.load_run(bundle.run_path(name))
        state.add_run(name, run)
    return run


def run_data(name: str) -> cache.RunData:
    """What the analysis pages read from a run (opened in the session first)."""
    path = str(open_run(name).path)
    return cache.run_data(path, bundle.run_id(path))


def peek_run(name: str) -> cache.RunData:
    """What a saved run holds, without opening it in the session (to compare runs)."""
    path = str(bundle.run_path(name))
    return cache.run_data(path, bundle.run_id(path))


def delete_run(name: str) -> None:
    """Remove a saved run from the workspace and forget it in this session."""
    bundle.delete_run(name)
    state.remove_run(name)


# ------------------------------------------------------------------------------------------------ chosen model
def chosen_model(name: str, info: dict) -> str:
    """The model chosen for this run on the Evaluate page, else the run's best model."""
    m = state.chosen_model(name)
    return m if m in info.get("models", {}) else str(info["best_model"])


def threshold_for(name: str, info: dict, model: str) -> float:
    """The threshold chosen for this run and model on the Evaluate page, else the one saved with the run for that
    model, else the run's own."""
    t = state.chosen_threshold(name, model)
    if t is None:
        t = (info.get("thresholds") or {}).get(model)
    return float(t) if t is not None else float(info["threshold"])


# ------------------------------------------------------------------------------------------------ pickers
def _commit_active(wkey: str) -> None:
    state.set_active_run(state.widget_value(wkey))


def _commit_model(run: str, wkey: str) -> None:
    state.set_chosen_model(run, state.widget_value(wkey))


def _commit_insight(run: str, wkey: str, what: str) -> None:
    state.set_insight(run, **{what: state.widget_value(wkey)})


def _pick_run(box, wkey: str, names: list[str], purpose: str, uplift: bool = False, **kw: Any) -> cache.RunData | None:
    """The run selectbox (the active run by default) in ``box``; the chosen run opened, or None (error shown). A run
    of uplift learners is only returned to a page that reads them (``uplift``); others say where to look at it."""
    active = state.get_active_run_name()
    state.set_widget(wkey, active if active in names else names[0])
    name = box.selectbox("Run", names, key=wkey, on_change=_commit_active, args=(wkey,), **kw)
    with guard("loading the run") as g:
        data = run_data(name)
    if g.failed:
        return None
    if data.task == "uplift" and not uplift:
        st.info(f"Run {name!r} holds uplift learners (who a contact persuades), not churn models: its Qini chart is "
                "on the Train page and the At-risk page ranks its customers by uplift. Pick a churn run here.",
                icon=":material/info:")
        return None
    if not data.models:
        st.warning(f"This run holds no validation predictions to {purpose}.",
                   icon=":material/warning:")
        return None
    return data


def _model_label(data: cache.RunData):
    labels = data.labels()
    return lambda k: labels.get(k, k) + (" (best)" if k == data.best else "")


def run_and_model_picker(uplift: bool = False) -> tuple[cache.RunData, str] | None:
    """Pick a run (the active one by default) and one of its models (the chosen one, else the best): the model and
    threshold chosen here are the ones scoring and export use. ``uplift``: runs of uplift learners are offered too
    (the At-risk page ranks their customers by uplift)."""
    names, session = run_names()
    if not names:
        return None
    c = st.columns([2, 2, 3], vertical_alignment="bottom")
    data = _pick_run(c[0], widget_key(Key.W_EVAL, "run"), names, "evaluate", uplift,
                     format_func=lambda n: f"{n} (this session)" if n in session else n)
    if data is None:
        return None
    models, name = data.models, data.name
    mkey = widget_key(Key.W_EVAL, name, "model")
    current = state.chosen_model(name)
    state.set_widget(mkey, current if current in models else data.best if data.best in models else models[0])
    model = c[1].selectbox("Model", models, key=mkey, on_change=_commit_model, args=(name, mkey),
                           format_func=_model_label(data))
    v = data.validation
    if data.task == "uplift":
        c[2].caption(f":material/rule: {data.metrics.get('validation', '')}.")
        return data, model
    rate = v["churned"].mean() if len(v) else float("nan")
    c[2].caption(f":material/rule: {data.metrics.get('validation', '')}. {len(v):,} validation users, churn rate "
                 f"{rate:.1%}. {refit_note(data.info.get('refit'))}")
    return data, model


def insight_picker(page: Key) -> tuple[cache.RunData, str, int] | None:
    """Pick a run (the active one by default), a model (the one chosen on the Evaluate page, else the best) and the
    size of the explanation sample. The choice is shared by the Explain and Segments pages and never changes the
    model used for scoring and export."""
    names, _ = run_names()
    if not names:
        return None
    c = st.columns([2, 2, 1, 3], vertical_alignment="bottom")
    data = _pick_run(c[0], widget_key(page, "run"), names, "look at",
                     help="Runs trained in this session and runs saved in the workspace.")
    if data is None:
        return None
    models, name = data.models, data.name
    choice = state.get_insight(name)
    mkey = widget_key(page, name, "model")
    state.set_widget(mkey, next(m for m in (choice.model, state.chosen_model(name), data.best, models[0])
                                if m in models))
    model = c[1].selectbox("Model", models, key=mkey, on_change=_commit_insight, args=(name, mkey, "model"),
                           format_func=_model_label(data))
    skey = widget_key(page, name, "sample")
    sizes = sorted(set(SAMPLE_SIZES) | {choice.sample})
    state.set_widget(skey, choice.sample)
    sample = c[2].selectbox("Users explained", sizes, key=skey, on_change=_commit_insight, args=(name, skey, "sample"),
                            format_func=lambda n: f"{n:,}", help="SHAP values are computed once on a sample of the "
                            "validation users of this size, stratified by outcome, and kept for this run and model.")
    v = data.validation
    rate = v["churned"].mean() if len(v) else float("nan")
    c[3].caption(f":material/rule: {len(v):,} validation users, churn rate {rate:.1%}.")
    return data, model, int(sample)
