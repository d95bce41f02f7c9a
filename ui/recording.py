"""Recording the app's scorings in the workspace's scoring history, once per scoring, so the Monitor page can later
compare them with what happened.

A scoring is one run version (its manifest digest), one table (its content key), one as-of date and one model. Reruns
of a page, the same file scored again on the Models page, or the page opened again in a new session after a reload do
not add another copy: the session remembers what it recorded, and the history is asked whether the same scoring (same
run version, model, as-of date, users and mean probability) is already in it. Scoring a run's own validation
users is not a scoring of new data and is never recorded.
"""
from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from retention_core import monitor, scoring
from retention_core.errors import RetentionError

from . import cache, state

MONITOR_PAGE = "pages/monitor.py"


def scoring_key(run, data_key: str, as_of: str, model: str) -> str:
    return "|".join([cache.manifest_digest(run.path), data_key, as_of, model])


def come_back_note(run, as_of: str) -> str:
    """When the outcome of a scoring as of ``as_of`` can be known: as-of + horizon (event logs), or later labels."""
    horizon = (run.info.get("snapshot") or {}).get("horizon_days") if run.info.get("kind") == "events" else None
    if not horizon:
        return "come back with the users' later labels to see how it did"
    due = (pd.Timestamp(as_of) + pd.Timedelta(days=int(horizon))).date()
    return f"come back after {due} (as of {as_of} + {int(horizon)}-day horizon) to see how it did"


def _already_kept(run, scores: pd.DataFrame, as_of: str, model: str) -> bool:
    """Whether the history already holds this very scoring (same run version, model, as-of date, users scored and
    mean probability: recorded by an earlier session, or by the score command, whatever the file was called)."""
    if not (cache.workspace_root() / monitor.HISTORY_FILE).is_file():
        return False
    h = monitor.scorings(run)
    if not len(h):
        return False
    mean = float(pd.to_numeric(scores["churn_probability"], errors="coerce").mean())
    same = h[(h["model"] == model) & (h["as_of"] == as_of) & (h["users"] == len(scores))]
    return any(math.isclose(float(m), mean, rel_tol=0, abs_tol=1e-9) for m in same["mean_probability"])


def record_once(run, scores: pd.DataFrame, frame: pd.DataFrame, *, model: str, data_key: str,
                data_name: str) -> None:
    """Keep this scoring of new data in the scoring history (once), and say so under the scores. A history that
    cannot be written is a warning: the scores on screen are unaffected."""
    as_of = scoring.scoring_date(frame)
    key = scoring_key(run, data_key, as_of, model)
    note = state.recorded(key)
    if note is None:
        try:
            if _already_kept(run, scores, as_of, model):
                note = f"Already in the scoring history: {come_back_note(run, as_of)}."
            else:
                monitor.record_scoring(run, (scores, frame), model=model, source="app", data_name=data_name)
                note = f"Recorded in the scoring history: {come_back_note(run, as_of)}."
        except (RetentionError, OSError) as exc:
            st.warning(f"This scoring could not be kept in the scoring history, so the Monitor page will not see it "
                       f"({exc}). The scores below are not affected.", icon=":material/warning:")
            return
        state.set_recorded(key, note)
    c = st.columns([4, 1], vertical_alignment="center")
    c[0].caption(f":material/history: {note}")
    c[1].page_link(MONITOR_PAGE, label="Open Monitor", icon=":material/monitor_heart:")
