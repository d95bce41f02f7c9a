"""Recording a scoring: the one call the command line and the app make after scoring a file."""
from __future__ import annotations

import pandas as pd

from ..dataset import to_cutoff
from ..errors import DataError
from ..scoring import ScoredFile, scoring_date
from .store import Recorded, write_scoring


def record_scoring(run, scored, *, model: str | None = None, as_of=None, frame: pd.DataFrame | None = None,
                   threshold: float | None = None, source: str = "app", data_name: str | None = None,
                   control: pd.DataFrame | None = None, workspace=None, lock_timeout: float | None = None) -> Recorded:
    """Keep a scoring of ``run`` in the workspace's history (``RETENTION_WORKSPACE/history.duckdb``).

    ``scored`` is a :class:`~retention_core.scoring.ScoredFile` (what ``score_file`` returns: every user scored, the
    model, the feature rows), the ``(scores, feature rows, sequences)`` of :func:`~retention_core.scoring.score`, or a
    scores table (``user_id, churn_probability`` and optionally ``risk_decile, rank``) with ``model`` and ``frame`` or
    ``as_of`` given. The as-of date is the feature rows' snapshot date unless given; the threshold is the model's
    saved one unless given; segment columns (the run's attributes) are read from the feature rows. Pseudonymised lists
    are not what is recorded: the history keeps the ids of the data scored, so outcomes can be matched later.
    ``lock_timeout`` bounds the wait for another scoring's write (:class:`~.store.HistoryBusy` past it).
    ``control`` is the campaign's list with a control group drawn (:func:`retention_core.control.assign_control`):
    its users' groups, the share, the seed and the strata are kept with the scoring, for the campaign's results.
    """
    if isinstance(scored, ScoredFile):
        scores, frame, model = scored.scores, scored.frame if frame is None else frame, model or scored.model
    elif isinstance(scored, tuple):
        scores, frame = scored[0], scored[1] if frame is None else frame
    elif isinstance(scored, pd.DataFrame):
        scores = scored
    else:
        raise DataError(f"Cannot record {type(scored).__name__}: give the result of scoring a file.")
    model = model or run.best
    if model not in run.info.get("models", {}):
        raise DataError(f"Run {run.path.name!r} has no model {model!r}.", field="model", value=model)
    if as_of is None and frame is not None and "snapshot_date" in frame.columns and len(frame):
        as_of = scoring_date(frame)
    if as_of is None and run.info.get("kind") == "events":
        raise DataError("Give the as-of date of the scoring (or its feature rows): outcomes are matched from it.",
                        field="as_of")
    if run.info.get("kind") == "events":
        as_of = to_cutoff(as_of).strftime("%Y-%m-%d")  # a day boundary, as the snapshot reads it
    else:
        as_of = pd.Timestamp(as_of if as_of is not None else pd.Timestamp.now()).strftime("%Y-%m-%d")
    if threshold is None:
        threshold = float(run.info.get("thresholds", {}).get(model, run.info.get("threshold", 0.5)))
    return write_scoring(run, scores, model=model, as_of=as_of, frame=frame, threshold=threshold, source=source,
                         data_name=data_name, control=control, workspace=workspace, lock_timeout=lock_timeout)
