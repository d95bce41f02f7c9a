"""Uplift: who a contact persuades. Learners of the effect of a contact on an outcome, trained on a randomised
experiment (a treatment column with a control group), judged by the Qini curve on held-out customers, saved as a run
and used to score new customers.

- :mod:`.data`: the experiment table (arms, outcome, ids, the columns measured after the contact left out);
- :mod:`.learners`: the two-model learner and learners of the effect itself (class transformation, DR-learner,
  X-learner), scikit-learn estimators with ``fit(X, y, treatment)``, ``predict_uplift`` and ``predict_arms``;
- :mod:`.metrics`: the Qini curve, its area and coefficient, uplift by decile;
- :mod:`.training`: validation on a held-out split, the leaderboard beside random and response targeting, the run;
- :mod:`.scoring`: ``uplift``, ``p_treated`` and ``p_control`` for each customer, and the list to contact;
- :mod:`.plots`: the Qini chart and uplift by decile.

The names below are loaded on first use (scikit-learn loads with the learners).
"""
from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "Experiment": "data", "ExperimentData": "data", "experiment_data": "data",
    "LEARNERS": "learners", "make_learner": "learners",
    "qini_curve": "metrics", "qini_area": "metrics", "qini_coefficient": "metrics", "uplift_by_decile": "metrics",
    "UpliftConfig": "training", "UpliftResult": "training", "train_uplift": "training",
    "train_uplift_and_save": "training",
    "is_uplift_run": "scoring", "score_uplift": "scoring", "score_uplift_file": "scoring",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
