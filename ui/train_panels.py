"""The Train page's panels: the dataset's readiness for time-aware validation, the models to compare and their
settings, the training form, the training's progress and outcome, and the leaderboard of the run."""
from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd
import streamlit as st

from retention_core import bundle, plots
from retention_core.bundle import refit_note
from retention_core.roles import Schema

from . import cache, dataset_panels, jobs, state, uplift_panels
from .jobs import TrainOutcome, TrainRequest, model_label
from .state import Key, widget_key
from .widgets import EVALUATE_PAGE, guard, leaderboard_table, show_error

CALIBRATION_LABELS = {"none": "None", "isotonic": "Isotonic", "sigmoid": "Sigmoid (Platt)"}


def _k(*parts: Any) -> str:
    return widget_key(Key.W_TRAIN, *parts)


def _specs():
    from retention_core.models import REGISTRY

    return REGISTRY


# ------------------------------------------------------------------------------------------------ the dataset
def rebuild_offer(ds, info: state.DatasetInfo) -> bool:
    """When time-aware validation cannot run on this dataset: why, and a button to rebuild it at the cutoffs it
    needs. True when the dataset can be trained on as it is."""
    problem = dataset_panels.time_split_problem(ds)
    if not problem:
        return True
    st.error(problem, icon=":material/error:")
    st.caption("The product can rebuild the dataset with its snapshot settings at the cutoffs time-aware "
               "validation needs: the latest fully observed one and earlier ones, one step apart.")
    if st.button("Rebuild the dataset for training", type="primary", icon=":material/autorenew:"):
        with guard("rebuilding the dataset") as g:
            dataset_panels.rebuild_for_training(ds, info)
        if not g.failed:
            st.rerun()
    return False


# ------------------------------------------------------------------------------------------------ models
def _set_models(wkey: str, keys: list[str]) -> None:
    state.set_widget(wkey, list(keys))


def model_picker(ds) -> list[str]:
    """The models to compare: a multiselect over the registry with an ``auto`` preset; neural models are marked,
    models this dataset cannot feed are left out (the library's rule) and named with the reason."""
    from retention_core.models import DEFAULT_AUTO
    from retention_core.training import unavailable_models

    blocked = unavailable_models(ds.features, ds.kind)
    options = [k for k in _specs() if k not in blocked]
    wkey = _k("models")
    auto = [k for k in DEFAULT_AUTO if k not in blocked]
    if not state.has_widget(wkey):
        state.set_widget(wkey, auto)
    else:
        state.set_widget(wkey, [k for k in state.widget_value(wkey, []) if k in options])
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
    ref = p.default if isinstance(p.default, (int, float)) and p.default else (p.high or 1.0) / 100
    if p.log and ref > 0:
        return float(10 ** math.floor(math.log10(ref)))
    return 0.01 if (p.high or 1) <= 1 else 0.1


def param_input(model: str, p) -> Any:
    """One setting of one model as a form widget, from its registry description (kind, range, choices)."""
    label = p.name.replace("_", " ")
    key = _k(model, p.name)
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


def _param_grid(key: str, params: list) -> dict:
    values = {}
    cols = st.columns(3)
    for i, prm in enumerate(params):
        with cols[i % 3]:
            values[prm.name] = param_input(key, prm)
    return values


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
            params[key] = _param_grid(key, [p for p in spec.params.values() if not p.advanced])
            more = [p for p in spec.params.values() if p.advanced]
            if more:
                with st.expander("More settings"):
                    params[key].update(_param_grid(key, more))
    return params


def _changed_params(models: list[str], entered: dict[str, dict]) -> dict[str, dict]:
    """Checked settings that differ from the defaults (ConfigError quoting a bad value)."""
    specs = _specs()
    out = {}
    for key in models:
        spec = specs[key]
        checked = spec.check_params(dict(entered.get(key, {})))
        diff = {k: v for k, v in checked.items() if v != spec.params[k].default}
        if diff:
            out[key] = diff
    return out


# ------------------------------------------------------------------------------------------------ the form
def _validation_settings(ds) -> dict:
    """The validation part of the form: the metric, calibration and the scheme's own settings."""
    from retention_core.evaluation import METRIC_LABELS, METRICS

    c = st.columns(4)
    out = {"metric": c[0].selectbox("Pick the best model by", METRICS, index=0, format_func=METRIC_LABELS.get,
                                    key=_k("metric"), help="Measured on the validation users only."),
           "calibrate": c[1].selectbox("Calibration", list(CALIBRATION_LABELS), format_func=CALIBRATION_LABELS.get,
                                       key=_k("calibrate"),
                                       help="Adjust probabilities so that 30% means 30% of such users churn.")}
    if ds.kind == "events":
        out["backtest"] = c[2].number_input("Backtest cutoffs", 0, 6, 0, key=_k("backtest"),
                                            help="Also validate at this many earlier snapshots, to see whether the "
                                                 "quality holds over time (takes longer).")
        out["refit"] = c[3].checkbox("Refit on the latest data", value=True, key=_k("refit"),
                                     help="After validation, refit the models on the most recent labelled snapshots, "
                                          "the validation one included, so they learn from the latest behaviour "
                                          "(early-stopping counts, calibration and threshold are carried). Evaluate "
                                          "keeps the figures measured before the refit.")
        st.caption("Time-aware validation: models learn from earlier snapshots and are judged on the latest one, "
                   "whose horizon is fully observed; random splits are never used on snapshots.")
    else:  # user tables: refitted on every labelled row after validation
        out["holdout"] = c[2].slider("Holdout share", 0.1, 0.5, 0.2, 0.05, key=_k("holdout"),
                                     help="Users set aside for validation (stratified by the label).")
        out["folds"] = c[3].number_input("Cross-validation folds", 0, 10, 5, key=_k("folds"),
                                         help="Folds on the remaining users to see how stable the scores are (0 = "
                                              "none).")
    return out


def default_budget(ds, models: list[str]) -> float:
    """The search budget the form offers: the library's default for the Auto models, none for a hand-picked set."""
    from retention_core.models import DEFAULT_AUTO
    from retention_core.models.tuning import DEFAULT_BUDGET
    from retention_core.training import unavailable_models

    blocked = unavailable_models(ds.features, ds.kind)
    return DEFAULT_BUDGET if list(models) == [k for k in DEFAULT_AUTO if k not in blocked] else 0.0


def search_settings(ds, models: list[str]) -> float:
    """The settings search's time budget (seconds; 0 = the models' fixed defaults)."""
    from retention_core.models.tuning import SPACES

    searched = [model_label(k) for k in models if k in SPACES]
    start = default_budget(ds, models)
    c = st.columns([1, 3], vertical_alignment="bottom")
    budget = c[0].number_input("Settings search (seconds)", 0, 3600, int(start), step=15, key=_k("budget", start),
                               help="Time to search the settings of the models that have a search (0 = their fixed "
                                    "defaults). The search only reads the training rows, never the validation ones.")
    c[1].caption(f":material/tune: Searched: {', '.join(searched)}; tuned settings are kept only when they beat the "
                 "defaults inside the training rows." if searched else "None of the chosen models has settings to "
                 "search.")
    return float(budget)


def _request(ds, info: state.DatasetInfo, models: list[str], entered: dict, v: dict, name: str,
             seed: int) -> TrainRequest:
    """The training request from the form's values (ConfigError for a bad setting or run name)."""
    from retention_core import bundle
    from retention_core.training import TrainConfig

    cfg = TrainConfig(models=models, params=_changed_params(models, entered), metric=v["metric"],
                      calibrate=None if v["calibrate"] == "none" else v["calibrate"], seed=int(seed),
                      cv_folds=int(v.get("folds", 5)), holdout=float(v.get("holdout", 0.2)),
                      backtest=int(v.get("backtest", 0)), refit=bool(v.get("refit", True)),
                      tune_budget=float(v.get("tune_budget", 0.0)))
    run_name = bundle.safe_run_name(name)
    cfg.model_keys()
    if any(_specs()[k].needs_sequences for k in models):
        ds = dataset_panels.with_sequences(ds, info, max(_specs()[k].needs_events for k in models))
    excluded = dataset_panels.excluded_features(info) if ds.kind == "events" else []
    snap = dataset_panels.snapshot_config(ds) if ds.kind == "events" else {}
    return TrainRequest(run_name, str(bundle.workspace(create=False)), ds, cfg, excluded,
                        Schema.from_dict(json.loads(info.schema_json)), snap, info.table_key.partition(":")[0])


def train_form(ds, info: state.DatasetInfo) -> TrainRequest | None:
    """Model choice, settings, validation and run name; the request to train when the analyst submits a valid one."""
    st.subheader("Models", anchor=False)
    models = model_picker(ds)
    with st.form(_k("form"), border=True):
        st.markdown("**Model settings**")
        entered = model_settings(models) if models else {}
        st.markdown("**Validation**")
        settings = _validation_settings(ds)
        settings["tune_budget"] = search_settings(ds, models)
        c = st.columns([3, 1])
        name = c[0].text_input("Run name", value=f"run {pd.Timestamp.now():%Y-%m-%d %H.%M.%S}", key=_k("name"),
                               max_chars=64, help="Letters, digits, spaces, dots, dashes and underscores. The run is "
                               "saved in the workspace under this name (an existing run with this name is replaced).")
        seed = c[1].number_input("Seed", 0, 2**31 - 1, 0, key=_k("seed"), help="Same seed, same results.")
        submitted = st.form_submit_button("Train models", type="primary", icon=":material/model_training:",
                                          disabled=not models)
    if not models:
        st.info("Choose at least one model to train.", icon=":material/info:")
    if not submitted or not models:
        return None
    with guard("preparing the training") as g:
        request = _request(ds, info, models, entered, settings, name, seed)
    return None if g.failed else request


# ------------------------------------------------------------------------------------------------ outcome
def training_status() -> None:
    """The training in progress (polled, so other pages stay usable), or how the last one ended."""
    job = state.get_train_job()
    if job is None:
        return
    if job.running:
        jobs.poll_training()
        return
    jobs.finish_training(job)
    if job.error is not None:
        show_error(job.error, f"training {job.name!r}")
        st.caption("Your dataset and earlier runs are kept: change the models or settings and train again.")
        return
    outcome: TrainOutcome = job.result
    st.success(f"Run {outcome.name!r} trained in {job.seconds:,.0f} s and saved in the workspace. It is now the "
               "active run.", icon=":material/check_circle:")
    for key, why in outcome.errors.items():
        st.warning(f"{model_label(key.split(' ')[0])} failed: {why}", icon=":material/warning:")


def run_results(name: str, path: str) -> None:
    """A saved run's leaderboard (table and chart), its validation scheme and the models that failed."""
    from retention_core.evaluation import METRIC_LABELS

    with guard("loading the run") as g:
        data = cache.run_data(path, bundle.run_id(path))
    if g.failed:
        return
    if data.task == "uplift":  # uplift learners: the Qini chart instead of the leaderboard of churn models
        uplift_panels.run_results(data)
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
