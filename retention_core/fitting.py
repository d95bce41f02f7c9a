"""What fitting one model of a training run takes, shared by the training (:mod:`retention_core.training`) and the
settings search around it (:mod:`retention_core.tuned_run`): the progress events of a training, one model fitted
with its settings on its training rows only, and its churn probabilities."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .models import churn_probability, make_model, model_input


@dataclass(frozen=True)
class TrainProgress:
    """One step of a training, for a progress display: ``fraction`` of the whole training, the ``model`` it is about
    (None: the run as a whole) and its ``stage``: ``"training"`` (fitting or an epoch), ``"done"`` (validated),
    ``"failed"``, ``"refit"`` or ``"saving"``, or, before those, ``"search"`` (a trial of the settings search of
    ``auto``: ``search`` is the share of its time budget spent; ``fraction`` stays 0) and ``"searched"`` (a model's
    search ended); ``message`` is a line for the screen."""

    fraction: float
    message: str
    model: str | None = None
    stage: str = "training"
    search: float | None = None


Progress = Callable[[TrainProgress], None]


def fit_one(key: str, params: dict, num, cat, horizon, X, y, seq, calibrate, progress):
    """One model fitted on the rows given and nothing else: early stopping (boosting, the Keras models) watches a
    share of these rows, never the rows the model is then measured on, so the leaderboard's figures stay honest.
    ``seq``: the rows' weekly activity, read by the sequence models (it travels inside their input)."""
    model = make_model(key, numeric=num, categorical=cat, horizon_days=horizon, calibrate=calibrate, **params)
    model.fit(model_input(key, X, seq), y, progress=progress)
    return model


def predict(model, key: str, X, seq) -> np.ndarray:
    """The churn probability of each row of ``X`` (with its weekly activity ``seq`` for the sequence models)."""
    return churn_probability(model, model_input(key, X, seq))
