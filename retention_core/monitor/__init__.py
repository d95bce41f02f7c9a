"""Monitoring: the scoring history, realised outcomes once the horizon has passed, drift, and a verdict.

An at-risk list is used and forgotten; monitoring closes the loop. A scoring is recorded in the workspace
(:func:`record_scoring`, ``RETENTION_WORKSPACE/history.duckdb``, see :mod:`.store`) by the ``score`` command, by the
app when a list is downloaded or the analyst asks, and by the service on request; one can be deleted
(:func:`delete_scoring`). :func:`monitor_report` compares each recorded scoring with what happened in new data (labels exactly as training makes them, :mod:`.realised`),
measures the drift of the latest population against the run's training rows (PSI, :mod:`.drift`), words a verdict
(:mod:`.verdict`) and, for scorings with a control group, measures what the campaign changed (:mod:`.campaigns`). :mod:`.plots` draws the report; :func:`demo_on_sample` fills it from the built-in sample.
"""
from __future__ import annotations

from .demo import demo_on_sample
from ..drift_reference import feature_reference, training_reference
from .drift import band, compare, drift_table, psi, psi_from_shares
from .realised import calibration_by_decile, realised_metrics, segment_outcomes
from .recording import record_scoring
from .report import MonitorReport, monitor_report, resolve_run, what_next
from .store import (
           HISTORY_FILE,
           HistoryBusy,
           Recorded,
           delete_scoring,
           history_path,
           recorded_run,
           scores_of,
           scorings,
           set_control,
)
from .verdict import Verdict, verdict

__all__ = ["HISTORY_FILE", "HistoryBusy", "MonitorReport", "Recorded", "Verdict", "band", "calibration_by_decile",
           "compare", "delete_scoring", "demo_on_sample", "drift_table", "feature_reference", "history_path",
           "monitor_report", "psi", "psi_from_shares", "realised_metrics", "record_scoring", "recorded_run",
           "resolve_run", "scores_of",
           "scorings", "set_control", "segment_outcomes", "training_reference", "verdict", "what_next"]
