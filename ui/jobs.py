"""The training job: started from the Train page, run in the background (or inline, for tests and automation) while
the analyst keeps using the app, polled for its progress, and taken into the session once it ends.

The work itself is the library's :func:`retention_core.training.train_and_save` (the same train, validate, refit and
save sequence the command line runs); this module only runs it, draws its progress and opens the saved run.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamlit as st

from retention_core.roles import Schema

from . import state

POLL_SECONDS = 1.0


@dataclass(frozen=True)
class TrainRequest:
    """Everything a training needs, gathered on the page before the work starts (the worker reads no state)."""

    name: str
    root: str
    dataset: Any
    config: Any  # retention_core.training.TrainConfig
    excluded: list
    schema: Schema
    snapshot: dict
    digest: str


@dataclass(frozen=True)
class TrainOutcome:
    """What a finished training leaves behind: the saved run and what went wrong with single models."""

    name: str
    path: str
    errors: dict


def model_label(key: str) -> str:
    """A model's name for the screen; neural models are marked as slower."""
    from retention_core.models import REGISTRY

    spec = REGISTRY.get(key)
    if spec is None:  # an uplift learner, else the key itself
        from retention_core.uplift.learners import LEARNERS

        return LEARNERS[key].label if key in LEARNERS else key
    return f"{spec.label} (neural, slower)" if spec.family == "deep" else spec.label


def _work(req: TrainRequest):
    """The training as a function of its progress callback. Runs in a worker thread, so it never touches Streamlit."""

    def work(report) -> TrainOutcome:
        from retention_core import bundle
        from retention_core.training import train_and_save

        result, path = train_and_save(bundle.run_path(req.name, req.root), req.dataset, req.schema, req.config,
                                      snapshot=req.snapshot, digest=req.digest, excluded=req.excluded, name=req.name,
                                      progress=report)
        return TrainOutcome(req.name, str(path), dict(result.errors))

    return work


def start_training(req: TrainRequest) -> state.TrainJob:
    """Start a training: in the background (the page polls it), or inline when sync training is on."""
    return start_job(req.name, list(req.config.model_keys()), _work(req))


def start_job(name: str, models: list[str], work) -> state.TrainJob:
    """Start ``work(report) -> TrainOutcome`` as the session's training job (churn models or uplift learners): in the
    background (the page polls it), or inline when sync training is on."""
    job = state.TrainJob(name, models)
    state.set_train_job(job)
    if state.sync_training():
        box = st.empty()

        def report(event) -> None:
            job.report(event)
            with box.container():
                progress(job)

        job.run(lambda _report: work(report))
        box.empty()
        finish_training(job)
    else:
        job.start(work)
    return job


def finish_training(job: state.TrainJob) -> None:
    """Take a finished training into the session once: open the saved run and make it the active run."""
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


def progress(job: state.TrainJob) -> None:
    """An overall progress bar, the settings search's (share of its time budget spent, the latest trial), one bar per
    model (epochs for neural models), and the time spent."""
    fraction, message = job.snapshot()
    st.progress(min(max(fraction, 0.0), 1.0), text=f"Training {job.name!r}: {message}")
    if job.search is not None:
        spent, line = job.search
        st.progress(min(max(spent, 0.0), 1.0), text=f":material/tune: Settings search: {line}")
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
    st.caption(f"{job.seconds:,.0f} s elapsed. You can open other pages meanwhile; the results appear here when "
               "training ends.")


@st.fragment(run_every=POLL_SECONDS)
def poll_training() -> None:
    """The progress of the training in the background, redrawn alone every second; the whole page reruns when it
    ends, to show the results."""
    job = state.get_train_job()
    if job is None:
        return
    if job.done:
        st.rerun()
    progress(job)


def training_sidebar() -> None:
    """A line in the sidebar about the training in progress; a finished one is taken into the session."""
    job = state.get_train_job()
    if job is None:
        return
    if job.running:
        fraction, message = job.snapshot()
        st.caption(f":material/model_training: Training {job.name!r}: {fraction:.0%} ({message})")
    elif not job.handled:
        finish_training(job)
