"""Train: fit and compare retention models on the dataset built on the Data page."""
from __future__ import annotations

import streamlit as st

from ui import jobs, state, train_panels, uplift_panels
from ui.widgets import coming_next, dataset_status, page_header


def main() -> None:
    page_header("Train", ":material/model_training:",
                "Train several retention models on your dataset and compare them on a leaderboard.")
    found = uplift_panels.experiment_table()  # a table with a treatment column: uplift learners on offer
    if found is not None and uplift_panels.wants_uplift():
        if not _running():
            uplift_panels.train_form(*found)
            _status_and_results()
        return
    ds = dataset_status()
    info = state.get_dataset_info()
    if ds is None or info is None:
        coming_next([
            "pick the models to compare (simple baselines, gradient boosting, neural sequence models) or let the "
            "product choose",
            "train them with a validation that respects time (the latest snapshot) or stratified folds for user "
            "tables",
            "follow the progress and read the leaderboard (ROC-AUC, PR-AUC, F1) to pick the best model",
        ])
        return
    if _running():
        return
    if not train_panels.rebuild_offer(ds, info):
        return
    request = train_panels.train_form(ds, info)
    if request is not None:
        jobs.start_training(request)
        if not state.sync_training():
            st.rerun()
    _status_and_results()


def _running() -> bool:
    """A training in progress: its progress is all the page shows."""
    job = state.get_train_job()
    if job is not None and job.running:
        train_panels.training_status()
        return True
    return False


def _status_and_results() -> None:
    """How the last training ended, then the active run's results (churn models or uplift learners)."""
    train_panels.training_status()
    name = state.get_active_run_name()
    runs = state.get_runs()
    if name in runs:
        st.divider()
        train_panels.run_results(name, str(runs[name].path))


main()
