"""Cached computations of uplift runs for the Train and At-risk pages: the Qini curves and deciles of the held-out
customers, the customers of a table scored by a learner, and the treatment columns a table offers."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from retention_core import bundle

from . import cache


@st.cache_data(max_entries=64, show_spinner=False)
def candidates(table_key: str, _df: pd.DataFrame) -> list[dict]:
    """The columns of a table that look like a randomised treatment (``retention_core.uplift.data``)."""
    from retention_core.uplift.data import treatment_candidates

    return treatment_candidates(_df)


@st.cache_data(max_entries=64, show_spinner=False)
def outcomes(table_key: str, treatment: str, _df: pd.DataFrame) -> list[str]:
    from retention_core.uplift.data import outcome_candidates

    return outcome_candidates(_df, treatment)


@st.cache_data(max_entries=16, show_spinner="Drawing the Qini curves...")
def held_out_figures(path: str, stamp: str) -> dict:
    """Per learner (and ``response``): the Qini curve and the uplift by decile on the run's held-out customers, and
    the average effect there."""
    from retention_core.uplift import metrics

    d = cache.run_data(path, stamp)
    v = d.validation
    y, w = v["outcome"].to_numpy(float), v["treated"].to_numpy(float)
    scores = {k: v[f"uplift:{k}"].to_numpy(float) for k in d.models}
    scores[metrics.RESPONSE] = v[metrics.RESPONSE].to_numpy(float)
    return {"curves": {k: metrics.qini_curve(y, s, w) for k, s in scores.items()},
            "deciles": {k: metrics.uplift_by_decile(y, s, w) for k, s in scores.items()},
            "average": metrics.observed_uplift(y, w)}


@st.cache_data(max_entries=8, show_spinner="Scoring the customers...")
def score_customers(path: str, stamp: str, data_key: str, model: str, _run=None,
                    _df: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Uplift, p_treated and p_control of every customer of a table, once per run version, table and learner."""
    from retention_core.uplift.scoring import score_uplift

    run = _run if _run is not None else bundle.load_run(path)
    return score_uplift(run, _df, model=model)


@st.cache_data(max_entries=16, show_spinner="Reading the held-out customers...")
def held_out_scores(path: str, stamp: str, model: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    from retention_core.uplift.scoring import validation_uplift

    return validation_uplift(cache.run_data(path, stamp).validation, model)
