"""The monitoring report of a run: every recorded scoring against what happened, drift, and a verdict.

:func:`monitor_report` is the one call behind the ``monitor`` command and the Monitor page. Its JSON form
(:meth:`MonitorReport.to_dict`) is the contract of DESIGN.md::

    {"run", "scorings": [{"as_of", "model", "users", "observed",
                          "realised": {"churn_rate", "predicted_rate", "roc_auc", "pr_auc", "brier", "recall_at_10pct"}}],
     "drift": {"features": [{"feature", "psi", "band"}], "score_psi"}, "verdict"}

with more keys beside them (status and the date a waiting scoring becomes observable, validation figures, calibration
by decile, per-segment figures, sample sizes). ``users`` counts the users scored, ``observed`` those whose outcome the
data shows. Each feature's drift row also has its ``label`` in plain words and ``expected_ageing``: true for a feature
of an event log that grows with the customers' age (tenure, lifetime totals), whose drift is reported apart
(``drift.expected_ageing`` lists them) and never drives the verdict.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..bundle import load_run, run_id
from ..dataset import data_end
from ..errors import BundleError, DataError
from ..explain.wording import feature_label, grows_with_age
from . import store
from .campaigns import (
    FRONT,
    as_records,
    campaign_result,
    check_cost,
    horizon_revenue,
    segment_lines,
    summary,
    with_cost,
)
from .drift import drift_table, score_drift
from .realised import (
    METRIC_KEYS,
    evaluate,
    event_labels,
    observable_from,
    run_events,
    table_labels,
)
from .reference import (
    figures_for,
    has_models,
    latest_model,
    recorded,
    run_reference,
    validation_figures,
)
from .verdict import Verdict, verdict

SCORING_COLUMNS = ["scoring_id", "as_of", "model", "threshold", "horizon_days", "recorded_at", "source", "data_name",
                   "users", "observed", "churners", "status", "observable_from", "control_share", "campaign_days",
                   "campaign_from", "campaign_status"] + METRIC_KEYS
AGEING_NOTE = ("These features grow as customers' histories get longer (days since the first purchase, lifetime "
               "totals, the longest gap): their drift is expected ageing, not a change in the customers, and is "
               "never a reason to watch or retrain.")
VALIDATION_KEYS = ["roc_auc", "pr_auc", "brier", "recall_at_10pct", "churn_rate", "predicted_rate"]


@dataclass
class MonitorReport:
    """Realised outcomes of a run's recorded scorings, drift of the latest population and the verdict."""

    run: str
    run_id: str
    data_end: str | None
    scorings: pd.DataFrame  # one row per scoring: SCORING_COLUMNS + validation_<figure>
    calibration: pd.DataFrame  # scoring_id, as_of, risk_decile, users, predicted, realised, ...
    segments: pd.DataFrame  # scoring_id, as_of, column, segment, users, churn_rate, predicted_rate, roc_auc, ...
    drift: pd.DataFrame  # feature, kind, psi, band, n_reference, n_current, missing_reference, missing_current
    score_drift: dict | None  # model, psi, band, n_reference, n_current (None: no model to score with)
    drift_info: dict  # as_of, users, reference (what it was built from), reference_rows, model
    validation: dict  # model -> validation figures
    verdict: Verdict
    notes: list[str] = field(default_factory=list)
    campaigns: pd.DataFrame = field(default_factory=pd.DataFrame)  # one row per observed campaign (campaigns.FIGURES)
    campaign_segments: pd.DataFrame = field(default_factory=pd.DataFrame)  # scoring_id, as_of, column, segment, ...
    cost_per_contact: float | None = None  # the analyst's, for the return on the campaigns' cost

    def campaign_table(self, cost_per_contact: float | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The campaigns and their segment rows with the cost columns (``cost_per_contact`` when given, else the
        report's own)."""
        c = self.cost_per_contact if cost_per_contact is None else cost_per_contact
        return with_cost(self.campaigns, c), with_cost(self.campaign_segments, c)

    @property
    def observed(self) -> pd.DataFrame:
        return self.scorings[self.scorings["status"] == "observed"]

    def campaign_lines(self) -> list[str]:
        """The campaigns in words: each observed one's summary and its uplift per segment (indented), then those
        still waiting for their window."""
        campaigns, segments = self.campaign_table()
        out = []
        for _, r in campaigns.iterrows():
            out.append(summary(r))
            out += [f"  {line}" for line in segment_lines(segments[segments["scoring_id"] == r["scoring_id"]])]
        for _, r in waiting_campaigns(self.scorings).iterrows():
            out.append(f"Campaign as of {r['as_of']}: its control group can be compared from {r['campaign_from']} "
                       f"(as-of + its {int(r['campaign_days'])}-day window).")
        return out

    def to_dict(self) -> dict:
        rows = []
        for _, r in self.scorings.iterrows():
            sid = r["scoring_id"]
            realised = {k: r[k] for k in METRIC_KEYS} if r["status"] == "observed" else None
            rows.append({**{k: r[k] for k in SCORING_COLUMNS if k not in METRIC_KEYS}, "realised": realised,
                         "validation": {k: r.get(f"validation_{k}") for k in VALIDATION_KEYS},
                         "calibration": _records(self.calibration, sid), "segments": _records(self.segments, sid)})
        score = self.score_drift or {}
        ageing = self.drift[self.drift["expected_ageing"]] if "expected_ageing" in self.drift else self.drift[:0]
        drift = {**self.drift_info, "features": self.drift.to_dict("records"), "score_psi": score.get("psi"),
                 "score_band": score.get("band"), "score_users": score.get("n_current"),
                 "expected_ageing": ageing["feature"].tolist(), "expected_ageing_note": AGEING_NOTE}
        out = {"run": self.run, "run_id": self.run_id, "data_end": self.data_end, "scorings": rows, "drift": drift,
               "verdict": self.verdict.text, "verdict_level": self.verdict.level,
               "verdict_reasons": self.verdict.reasons, "notes": self.notes,
               "campaigns": as_records(*self.campaign_table()) if len(self.campaigns) else []}
        return _clean(out)

    def to_json(self, indent: int | None = 1) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)


def waiting_campaigns(scorings: pd.DataFrame) -> pd.DataFrame:
    """The scorings with a control group whose campaign window the data does not reach yet."""
    if "campaign_status" not in scorings:
        return scorings[:0]
    return scorings[scorings["control_share"].notna() & (scorings["campaign_status"] == "waiting")]


def _records(frame: pd.DataFrame, sid: str) -> list[dict]:
    if not len(frame):
        return []
    part = frame[frame["scoring_id"] == sid].drop(columns=["scoring_id", "as_of"])
    return part.to_dict("records")


def _clean(obj):
    """JSON-ready: numpy numbers as Python numbers, NaN and NA as null, timestamps as text."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return None if not math.isfinite(float(obj)) else float(obj)
    if obj is None or obj is pd.NA or obj is pd.NaT:
        return None
    if isinstance(obj, pd.Timestamp):
        return obj.isoformat()
    return obj


# ----------------------------------------------------------------------------------------------- the run
def resolve_run(run, *, workspace=None):
    """A loaded run, a run folder, or the name or folder of a run known only from the history (deleted since)."""
    if hasattr(run, "info") and hasattr(run, "path"):
        return run
    p = Path(str(run))
    if p.is_dir():
        return load_run(p)
    history = store.scorings(run, workspace=workspace)
    if not len(history):
        raise BundleError(f"There is no saved run at {str(run)!r} and the scoring history knows no run by that name "
                          "or folder. Give a run folder (train one first).")
    rec = store.recorded_run(str(history.iloc[-1]["run_id"]), workspace=workspace)
    return recorded(rec)


def _history(run, workspace) -> pd.DataFrame:
    history = store.scorings(run, workspace=workspace)
    if not len(history):
        where = store.history_path(workspace)
        raise DataError(f"No scoring of run {Path(run.path).name!r} is recorded in the scoring history ({where}). "
                        "Score a file with this run (the score command records it; in the app, download the list "
                        "or record the scoring), then monitor it once its horizon has passed.")
    return history


# ----------------------------------------------------------------------------------------------- outcomes
def _outcomes(run, data: pd.DataFrame, history: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, str | None,
                                                                         pd.DataFrame | None]:
    """(the scorings with status and observable date, and those of their campaign's window, realised labels
    ``as_of, user_id, churned``, data end, the canonical events of an event log)."""
    h = history.copy()
    if "campaign_days" not in h:
        h["campaign_days"] = pd.Series(pd.NA, index=h.index, dtype="Int64")
    if run.info.get("kind") == "users":  # a user table's outcome is its later label: no window
        labels = table_labels(run, data)
        h["observable_from"] = h["campaign_from"] = None
        h["status"] = "observed"
        h["campaign_days"] = pd.Series(pd.NA, index=h.index, dtype="Int64")
        h["campaign_status"] = np.where(h["control_share"].notna(), "observed", None)
        return h, labels.assign(as_of=None), None, None
    ev = run_events(run, data)
    end = data_end(ev)
    for prefix, days in (("", h["horizon_days"]), ("campaign_", h["campaign_days"])):
        due = [observable_from(a, d) for a, d in zip(h["as_of"], days)]
        h[prefix + ("from" if prefix else "observable_from")] = [d.strftime("%Y-%m-%d") if d is not None else None
                                                                 for d in due]
        h[prefix + "status"] = ["observed" if d is not None and d <= end else "waiting" for d in due]
    h["campaign_status"] = h["campaign_status"].where(h["control_share"].notna(), None)
    dates = sorted({a for a, s in zip(h["as_of"], h["status"]) if s == "observed"})
    return h, event_labels(run, ev, dates), end.strftime("%Y-%m-%d"), ev


def _campaigns(run, h: pd.DataFrame, labels: pd.DataFrame, users: pd.DataFrame,
               ev: pd.DataFrame | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The results of every scoring with a control group whose campaign window the data observes (:mod:`.campaigns`):
    retention = a qualifying purchase in ``(as-of, as-of + window]``, labelled as training labels but over the
    campaign's window (its scoring's labels when the window is the horizon); and the same per segment."""
    rows, segs = [], []
    for _, r in h.iterrows():
        if r.get("campaign_status") != "observed":
            continue
        days = None if pd.isna(r["campaign_days"]) else int(r["campaign_days"])
        if run.info.get("kind") == "users":
            lab = labels
        elif r["status"] == "observed" and days == int(r["horizon_days"]):
            lab = labels[labels["as_of"] == r["as_of"]]
        else:
            lab = event_labels(run, ev, [r["as_of"]], days)
        u = users[users["scoring_id"] == r["scoring_id"]].reset_index(drop=True)
        revenue = horizon_revenue(ev, r["as_of"], days) if ev is not None else None
        figures, per_segment = campaign_result(u, lab, revenue, list(r["segment_columns"]))
        front = {**{k: r.get(k) for k in FRONT}, "days": days}
        if figures["contact_users"] + figures["control_users"]:
            rows.append({**front, **figures})
            segs.append(per_segment.assign(scoring_id=r["scoring_id"], as_of=r["as_of"]))
    camp = pd.DataFrame(rows)
    seg = pd.concat(segs, ignore_index=True) if segs else pd.DataFrame()
    return camp, seg[["scoring_id", "as_of"] + [c for c in seg.columns if c not in ("scoring_id", "as_of")]] \
        if len(seg) else seg


def _evaluate_all(run, h: pd.DataFrame, labels: pd.DataFrame, users: pd.DataFrame) -> tuple[pd.DataFrame,
                                                                                            pd.DataFrame,
                                                                                            pd.DataFrame]:
    rows, calib, segs = [], [], []
    validation = validation_figures(run)
    for _, r in h.iterrows():
        row = {k: r.get(k) for k in SCORING_COLUMNS if k in r}
        row.update({"observed": 0, "churners": 0, **{k: None for k in METRIC_KEYS}})
        val = figures_for(validation, r["model"])
        row.update({f"validation_{k}": val.get(k) for k in VALIDATION_KEYS})
        if r["status"] == "observed":
            lab = labels if run.info.get("kind") == "users" else labels[labels["as_of"] == r["as_of"]]
            u = users[users["scoring_id"] == r["scoring_id"]].reset_index(drop=True)
            figures, c, s = evaluate(u, lab, list(r["segment_columns"]))
            row.update({"observed": figures["users"], "churners": figures["churners"],
                        **{k: figures[k] for k in METRIC_KEYS}})
            if not figures["users"]:
                row["status"] = "not in data"
            calib.append(c.assign(scoring_id=r["scoring_id"], as_of=r["as_of"]))
            segs.append(s.assign(scoring_id=r["scoring_id"], as_of=r["as_of"]))
        rows.append(row)
    front = ["scoring_id", "as_of"]
    calib_df = pd.concat(calib, ignore_index=True) if calib else pd.DataFrame(columns=front + ["risk_decile"])
    segs_df = pd.concat(segs, ignore_index=True) if segs else pd.DataFrame(columns=front + ["column", "segment"])
    return (pd.DataFrame(rows), calib_df[front + [c for c in calib_df.columns if c not in front]],
            segs_df[front + [c for c in segs_df.columns if c not in front]])


def _require_observed(run, scorings: pd.DataFrame, end: str | None) -> None:
    name = Path(run.path).name
    if (scorings["status"] == "observed").any():
        return
    if (scorings["status"] == "not in data").any():
        raise DataError(f"None of the users scored by run {name!r} appear in the data at their scoring dates. Monitor "
                        "with the full log: it must hold the lookback before each scoring date and the horizon after.")
    first = scorings.sort_values("observable_from").iloc[0]
    raise DataError(f"No recorded scoring of run {name!r} can be checked yet: the data ends on {end}, and the "
                    f"earliest scoring (as of {first['as_of']}, {int(first['horizon_days'])}-day horizon) is observed "
                    f"from {first['observable_from']} (as-of + horizon). Monitor with data that reaches that date.")


# ----------------------------------------------------------------------------------------------- drift
def _drift(run, data: pd.DataFrame, history: pd.DataFrame) -> tuple[pd.DataFrame, dict | None, dict, list[str]]:
    """Drift of the latest population in the data (features as of its end) against the run's training reference."""
    from ..scoring import features_for_run, score

    reference = run_reference(run)
    notes = []
    model = latest_model(history, run)
    if model not in (run.info.get("models") or {}):  # a dict in a run, a list in the history
        model = run.best
    p = None
    if has_models(run):
        scores, frame, _ = score(run, data, model=model)
        p = scores["churn_probability"].to_numpy(dtype=float)
    else:
        frame, _ = features_for_run(run, data)
        notes.append(f"Run {run.name!r} was deleted: the score's drift needs its model and is left out.")
    table = _ageing(drift_table(reference, frame), run.info.get("kind") == "events")
    info = {"as_of": _as_of(frame), "users": int(len(frame)), "reference": reference.get("source"),
            "reference_rows": reference.get("rows"), "model": model if p is not None else None}
    return table, score_drift(reference, model, p), info, notes


def _ageing(table: pd.DataFrame, events: bool) -> pd.DataFrame:
    """Each feature's label in plain words, and whether its drift is expected ageing: a feature of an event log that
    grows with the customers' age (:func:`~retention_core.explain.wording.grows_with_age`) moves as the log gets
    longer even when nothing changed, so it is reported apart and never drives the verdict."""
    table.insert(1, "label", [feature_label(f) for f in table["feature"]])
    table["expected_ageing"] = [bool(events and grows_with_age(f)) for f in table["feature"]]
    return table


def _as_of(frame: pd.DataFrame) -> str | None:
    if "snapshot_date" in frame.columns and len(frame):
        return pd.Timestamp(frame["snapshot_date"].iloc[0]).strftime("%Y-%m-%d")
    return None


def monitor_report(run, data: pd.DataFrame, *, workspace=None, require_observed: bool = True,
                   cost_per_contact: float | None = None) -> MonitorReport:
    """Monitor ``run`` (a loaded run, a run folder, or the name of a run deleted since it scored) with new ``data``.

    For every recorded scoring of the run: the realised outcome of the users scored once its horizon is observed in
    ``data`` (labels as training makes them), against the same model's validation figures; calibration by decile
    and per segment. Drift: PSI of every feature and of the churn probability of the latest population in ``data``
    against the run's training rows. Campaigns: for every observed scoring with a control group, retention of the
    contacted against the control group, the uplift with its 95% interval, incremental customers and revenue, and
    (given ``cost_per_contact``) the return on the contacts' cost, overall and per segment (:mod:`.campaigns`).
    Raises a :class:`DataError` when no scoring is recorded, the data lacks the run's columns, or (with
    ``require_observed``) no scoring's horizon and no campaign's window is observed yet, saying from when it will be.
    """
    cost_per_contact = check_cost(cost_per_contact)
    run = resolve_run(run, workspace=workspace)
    history = _history(run, workspace)
    h, labels, end, ev = _outcomes(run, data, history)
    ready = (h["status"] == "observed") | (h["campaign_status"] == "observed")
    users = store.scores_of(h.loc[ready, "scoring_id"].tolist(), workspace=workspace)
    rows, calib, segs = _evaluate_all(run, h, labels, users)
    campaigns, campaign_segments = _campaigns(run, h, labels, users, ev)
    if require_observed and campaigns.empty:  # a campaign's window may pass before the scoring's horizon
        _require_observed(run, rows, end)
    drift, score, info, notes = _drift(run, data, history)
    rid = run_id(run)
    if has_models(run):
        older = store.scorings(str(run.path), workspace=workspace)
        older = int((older["run_id"] != rid).sum())
        if older:
            notes.append(f"{older} scoring(s) by an earlier version of this run (retrained in the same folder) are "
                         "left out: they scored with other models.")
    return MonitorReport(Path(run.path).name, rid, end, rows, calib, segs, drift, score, info,
                         validation_figures(run), verdict(rows, drift, score), notes, campaigns, campaign_segments,
                         cost_per_contact)


def what_next(run, *, workspace=None, today=None) -> str:
    """One line for a Monitor page with nothing to show yet: score a file, or come back once a horizon has passed
    (from the history alone, without data)."""
    name = Path(str(getattr(run, "path", run))).name
    history = store.scorings(run, workspace=workspace)
    if not len(history):
        return (f"No scoring of run {name!r} is recorded yet. Score a file with it and keep the scoring: download "
                "the list on the At-risk page (or record the scoring there), or use the score command. Once its "
                "horizon has passed, come back with the newer data to see how the predictions turned out.")
    today = pd.Timestamp(today or pd.Timestamp.now()).normalize()
    due = history.dropna(subset=["observable_from"]).sort_values("observable_from")
    ready = due[pd.to_datetime(due["observable_from"]) <= today]
    if len(ready):
        r = ready.iloc[-1]
        return (f"{len(history)} scoring(s) recorded. The one as of {r['as_of']} can be checked now: give data that "
                f"reaches {r['observable_from']} (its as-of date + {int(r['horizon_days'])} days).")
    if len(due):
        r = due.iloc[0]
        return (f"{len(history)} scoring(s) recorded; the first, as of {r['as_of']}, can be checked from "
                f"{r['observable_from']} (as-of + {int(r['horizon_days'])}-day horizon). Come back then with the "
                "newer data.")
    return f"{len(history)} scoring(s) recorded. Give a table with the users' later labels to compare."
