"""Train: fit and compare retention models on the dataset built on the Data page."""
from __future__ import annotations

import streamlit as st

from ui import components, state


def main() -> None:
    components.page_header("Train", ":material/model_training:",
                           "Train several retention models on your dataset and compare them on a leaderboard.")
    ds = components.dataset_status()
    info = state.get_dataset_info()
    if ds is None or info is None:
        components.coming_next([
            "pick the models to compare (simple baselines, gradient boosting, neural sequence models) or let the "
            "product choose",
            "train them with a validation that respects time (the latest snapshot) or stratified folds for user "
            "tables",
            "follow the progress and read the leaderboard (ROC-AUC, PR-AUC, F1) to pick the best model",
        ])
        return
    job = state.get_train_job()
    if job is not None and job.running:
        components.training_status()
        return
    problem = components.time_split_problem(ds)
    if problem:
        st.error(problem, icon=":material/error:")
        st.caption("The product can rebuild the dataset with its snapshot settings at the cutoffs time-aware "
                   "validation needs: the latest fully observed one and earlier ones, one step apart.")
        if st.button("Rebuild the dataset for training", type="primary", icon=":material/autorenew:"):
            with components.guard("rebuilding the dataset") as g:
                components.rebuild_for_training(ds, info)
            if not g.failed:
                st.rerun()
        return
    request = components.train_form(ds, info)
    if request is not None:
        components.start_training(request)
        if not state.sync_training():
            st.rerun()
    components.training_status()
    name = state.get_active_run_name()
    runs = state.get_runs()
    if name in runs:
        st.divider()
        components.run_results(name, str(runs[name].path))


main()
