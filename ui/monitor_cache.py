"""What the Monitor page reads: the scoring history (reading it never creates a workspace), the run to monitor (a
saved run, or one deleted since it scored, known from the history alone), the report cached per run version, table
and number of scorings, and the demo on the sample, run in a workspace of its own.

Kept apart from :mod:`ui.cache` so that module stays small; the same rules hold: a cached report is keyed by the
run version's digest and the table's content key, and the run and the table themselves are not hashed.
"""
from __future__ import annotations

import tempfile
from collections.abc import Callable

import pandas as pd
import streamlit as st

from retention_core import bundle, monitor
from retention_core.monitor import store
from retention_core.monitor.reference import has_models

from . import cache, run_picker

DEMO_FOLDER = "demo"  # under the workspace: each demo gets a temporary folder there, removed once it is shown
RUN_COLUMNS = ["run", "scorings", "last_scored", "last_recorded", "saved"]


def has_history() -> bool:
    return monitor.history_path(create=False).is_file()


def history(run=None) -> pd.DataFrame:
    """The recorded scorings (of one run, or all), oldest first; empty when nothing was ever recorded."""
    if not has_history():
        return pd.DataFrame(columns=store.SCORING_COLUMNS + ["observable_from", "run_exists"])
    return monitor.scorings(run)


def runs_in_history(h: pd.DataFrame) -> pd.DataFrame:
    """One row per run name in the history: scorings, the latest as-of and recording dates, whether it is saved."""
    if not len(h):
        return pd.DataFrame(columns=RUN_COLUMNS)
    saved = set(run_picker.saved_names())
    g = h.groupby("run_name", sort=False)
    out = pd.DataFrame({"scorings": g.size(), "last_scored": g["as_of"].max(), "last_recorded": g["recorded_at"].max()})
    out = out.rename_axis("run").reset_index()
    out["saved"] = out["run"].isin(saved)
    return out.sort_values("last_recorded", ascending=False, ignore_index=True)[RUN_COLUMNS]


def monitored_run(name: str, saved: bool):
    """The run to monitor: a saved run opened in the session (signature checked), else the run as the history
    keeps it (its models are gone; realised outcomes and feature drift still work)."""
    return run_picker.open_run(name) if saved else monitor.resolve_run(name)


def run_key(run) -> str:
    """One saved version of a run (:func:`retention_core.bundle.run_id`), marked apart when the run is known only from
    the history (its models are gone, so its report differs)."""
    rid = bundle.run_id(run)
    return rid if has_models(run) else f"recorded:{rid}"


def history_key(mine: pd.DataFrame) -> str:
    """What a report depends on in the history: every scoring's id and users (a scoring recorded or deleted, or a
    customer added to the service's scoring of the day, makes another key)."""
    return ",".join(f"{i}:{int(u)}" for i, u in zip(mine["scoring_id"], mine["users"]))


@st.cache_data(max_entries=16, show_spinner="Comparing the recorded scorings with what happened...")
def report(key: str, data_key: str, scorings: int, history: str, _run=None, _df: pd.DataFrame | None = None):
    """The monitoring report of a run version against a table, once per state of its recorded scorings
    (:func:`history_key`)."""
    return monitor.monitor_report(_run, _df, require_observed=False)


def run_demo(progress: Callable[[str], None]) -> monitor.MonitorReport:
    """The demo on the sample: a logistic regression trained on its early months, three early dates scored and
    checked against its later months, in a temporary workspace under the workspace's ``demo`` folder (never the real
    history), removed once the report is made."""
    root = bundle.workspace(create=False) / DEMO_FOLDER
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="demo-", dir=root) as ws:
        return monitor.demo_on_sample(ws, events=cache.sample_table(), progress=progress)
