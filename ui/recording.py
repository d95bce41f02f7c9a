"""Recording the app's scorings in the workspace's scoring history, so the Monitor page can later compare them with
what happened.

A scoring is recorded only when the analyst uses it: when they download the list (or the scores) made from it, or
press "Record this scoring for monitoring". Trying as-of dates, models, methods or segments records nothing, so the
history holds the scorings that were acted on, not every date tried. A scoring is one run version (its manifest
digest), one table (its content key), one as-of date and one model, recorded once: downloading twice, reruns, or
the same scoring recorded by an earlier session or by the score command (same run version, model, as-of date, users
and mean probability) do not add a copy. Scoring a run's own validation users is not a scoring of new data and is
never offered.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import pandas as pd
import streamlit as st

from retention_core import bundle, monitor, scoring
from retention_core.errors import RetentionError

from . import state

MONITOR_PAGE = "pages/monitor.py"


def scoring_key(run, data_key: str, as_of: str, model: str) -> str:
    return "|".join([bundle.run_id(run.path), data_key, as_of, model])


def come_back_note(run, as_of: str) -> str:
    """When the outcome of a scoring as of ``as_of`` can be known: as-of + horizon (event logs), or later labels."""
    horizon = (run.info.get("snapshot") or {}).get("horizon_days") if run.info.get("kind") == "events" else None
    if not horizon:
        return "come back with the users' later labels to see how it did"
    due = (pd.Timestamp(as_of) + pd.Timedelta(days=int(horizon))).date()
    return f"come back after {due} (as of {as_of} + {int(horizon)}-day horizon) to see how it did"


def _kept_id(run, scores: pd.DataFrame, as_of: str, model: str) -> str | None:
    """The id of this very scoring in the history, if it holds it (same run version, model, as-of date, users scored
    and mean probability: recorded by an earlier session, or by the score command, whatever the file was called)."""
    if not monitor.history_path(create=False).is_file():
        return None
    h = monitor.scorings(run)
    if not len(h):
        return None
    mean = float(pd.to_numeric(scores["churn_probability"], errors="coerce").mean())
    same = h[(h["model"] == model) & (h["as_of"] == as_of) & (h["users"] == len(scores))]
    hits = [i for i, m in zip(same["scoring_id"], same["mean_probability"])
            if math.isclose(float(m), mean, rel_tol=0, abs_tol=1e-9)]
    return hits[-1] if hits else None


def _already_kept(run, scores: pd.DataFrame, as_of: str, model: str) -> bool:
    return _kept_id(run, scores, as_of, model) is not None


def _known(run, scores: pd.DataFrame, frame: pd.DataFrame, model: str, data_key: str) -> tuple[str, str, str | None]:
    """(the scoring's key, its as-of date, what to say when it is in the history already, else None)."""
    as_of = scoring.scoring_date(frame)
    key = scoring_key(run, data_key, as_of, model)
    note = state.recorded(key)
    if note is None and _already_kept(run, scores, as_of, model):
        note = f"Already in the scoring history: {come_back_note(run, as_of)}."
        state.set_recorded(key, note)
    return key, as_of, note


def record(run, scores: pd.DataFrame, frame: pd.DataFrame, *, model: str, data_key: str, data_name: str,
           control: pd.DataFrame | None = None) -> bool:
    """Keep this scoring of new data (every user scored) in the scoring history, once; False when it could not be
    (a warning: the scores and the download are unaffected). ``control``: the list downloaded with a control group
    held out, kept with the scoring (attached to it when the scoring was kept before; the latest draw counts)."""
    try:
        key, as_of, note = _known(run, scores, frame, model, data_key)
        held = 0 if control is None else control.attrs["control"]["control"]
        with_group = f" with its control group ({held:,} customers held out)" if control is not None else ""
        if note is None:
            monitor.record_scoring(run, (scores, frame), model=model, source="app", data_name=data_name,
                                   control=control)
        elif control is not None:
            monitor.set_control(_kept_id(run, scores, as_of, model), control)
        if note is None or control is not None:
            state.set_recorded(key, f"Recorded in the scoring history{with_group}: {come_back_note(run, as_of)}.")
        return True
    except (RetentionError, OSError) as exc:
        st.warning(f"This scoring could not be kept in the scoring history, so the Monitor page will not see it "
                   f"({exc}). The scores are not affected.", icon=":material/warning:")
        return False


def on_download(run, scores: pd.DataFrame, frame: pd.DataFrame, *, model: str, data_key: str,
                data_name: str, control: pd.DataFrame | None = None) -> Callable[[], None]:
    """The callback of a download of a list made from this scoring: downloading it records the scoring (once), with
    the list's control group when one is held out."""
    def _record() -> None:
        record(run, scores, frame, model=model, data_key=data_key, data_name=data_name, control=control)
    return _record


def record_panel(run, scores: pd.DataFrame, frame: pd.DataFrame, *, model: str, data_key: str, data_name: str,
                 key: str) -> None:
    """Under the scores: whether the scoring is kept for monitoring, and a button to keep it when it is not."""
    try:
        _, _, note = _known(run, scores, frame, model, data_key)
    except (RetentionError, OSError):
        note = None  # the history cannot be read: recording says why, if the analyst asks
    if note is not None:
        c = st.columns([4, 1], vertical_alignment="center")
        c[0].caption(f":material/history: {note}")
        c[1].page_link(MONITOR_PAGE, label="Open Monitor", icon=":material/monitor_heart:")
        return
    c = st.columns([3, 2], vertical_alignment="center")
    c[0].caption(":material/history: Not kept for monitoring yet (trying dates or lists records nothing). "
                 f"Downloading a list made from this scoring keeps it, all {len(scores):,} users scored, so the "
                 "Monitor page can check it once its horizon has passed.")
    if c[1].button("Record this scoring for monitoring", icon=":material/bookmark_add:", key=key):
        if record(run, scores, frame, model=model, data_key=data_key, data_name=data_name):
            st.rerun()
