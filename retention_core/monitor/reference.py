"""What monitoring compares against: a run's training reference (for drift) and validation figures (for the realised
metrics), read from the run folder, or from the history once the folder is gone.

Runs saved since monitoring exists carry ``reference.json``: bins and shares of every feature and of each model's churn
probability over the rows the saved models learned from (see :mod:`retention_core.drift_reference`). Older runs fall back
to their validation rows (``validation.parquet``: features and each model's validation predictions).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import BundleError
from ..drift_reference import training_reference

REFERENCE_FILE = "reference.json"
#: Validation figures kept per model (metrics.json names) and the names the monitor reports them under.
FIGURES = {"roc_auc": "roc_auc", "pr_auc": "pr_auc", "brier": "brier", "recall_top10": "recall_at_10pct"}


def run_reference(run) -> dict:
    """The run's drift reference: its saved training reference, else one built from its validation rows."""
    if isinstance(run, RecordedRun):
        return run.info.get("reference") or {}
    f = Path(run.path) / REFERENCE_FILE
    if f.exists():
        return json.loads(f.read_text())
    v = run.validation()
    scores = {c[2:]: v[c].to_numpy(dtype=float) for c in v.columns if str(c).startswith("p:")}
    return training_reference(v, run.info.get("numeric", []), run.info.get("categorical", []), scores,
                              source="validation rows (this run was saved without a training reference)")


def validation_figures(run) -> dict:
    """Per model: the validation ROC-AUC, PR-AUC, Brier score and recall in the top 10%, the validation churn rate
    and mean churn probability (what the realised figures are compared with)."""
    if isinstance(run, RecordedRun):
        return run.info.get("validation") or {}
    out = {}
    for key, m in (run.metrics.get("models") or {}).items():
        out[key] = {name: m.get(k) for k, name in FIGURES.items()}
    try:
        v = run.validation()
    except (OSError, ValueError):
        return out
    rate = float(v["churned"].mean()) if "churned" in v and len(v) else None
    for key in out:
        out[key]["churn_rate"] = rate
        col = f"p:{key}"
        out[key]["predicted_rate"] = float(v[col].mean()) if col in v and len(v) else None
        out[key]["users"] = int(len(v))
    return out


@dataclass
class RecordedRun:
    """A run known only from the history (its folder was deleted): what scoring it recorded, without its models."""

    run_id: str
    name: str
    path: Path
    info: dict
    metrics: dict = field(default_factory=dict)

    @property
    def best(self) -> str:
        return self.info.get("best_model")

    def model(self, key=None):
        raise BundleError(f"Run {self.name!r} was deleted: its models are gone, its recorded scorings remain.")


def recorded(record: dict) -> RecordedRun:
    return RecordedRun(record["run_id"], record["run_name"], Path(record["run_path"] or record["run_name"]),
                       record["info"])


def has_models(run) -> bool:
    return not isinstance(run, RecordedRun)


def _finite(v) -> float | None:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return v if np.isfinite(v) else None


def figures_for(validation: dict, model: str) -> dict:
    """The validation figures of one model, as plain floats (None when unknown)."""
    return {k: _finite(v) for k, v in (validation.get(model) or {}).items()}


def latest_model(history: pd.DataFrame, run) -> str:
    """The model of the latest recorded scoring (the run's best when none)."""
    if len(history):
        return str(history.sort_values("recorded_at").iloc[-1]["model"])
    return run.best
