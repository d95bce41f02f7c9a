"""Explanations of a saved run's models for the users being scored: ONE object, :class:`ScoringExplanation`, that
the command line (``score --reasons N``), the app's at-risk list and the HTTP service all build and ask, so the same
user gets the same reasons through every door.

It explains the model that scored. Models that learn from the population they score (BG/NBD, alone, in the ensemble or
calibrated) are refitted on the users scored exactly as scoring refits them: :func:`retention_core.models.for_population`
hands both the very same fitted object. Its SHAP background and the reference values of its reasons are the run's
validation users (the same in every door, whoever is scored); models that read weekly activity use the scored users
instead, since the saved validation rows carry no weekly activity.
"""
from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pandas as pd

from ..models import REGISTRY, churn_probability, for_population, model_input
from .explainer import Explainer, make_explainer
from .sampling import DEFAULT_BACKGROUND, sample_for_explanation
from .wording import Reference

MIN_REFERENCE_USERS = 5  # fewer labelled (or low-risk) users than this make no reference


def _validation_reference(run: Any, columns: list[str]) -> tuple[pd.DataFrame | None, np.ndarray | None]:
    """The run's labelled validation rows and their labels, when they hold every feature."""
    try:
        val = run.validation()
    except Exception:  # an older run without validation rows
        return None, None
    if val is None or "churned" not in val.columns or not all(c in val.columns for c in columns):
        return None, None
    ok = val["churned"].notna().to_numpy()
    if ok.sum() < MIN_REFERENCE_USERS:
        return None, None
    return val.loc[ok].reset_index(drop=True), val.loc[ok, "churned"].to_numpy()


def _needs_sequences(key: str) -> bool:
    return bool(REGISTRY[key].needs_sequences) if key in REGISTRY else False


def depends_on_population(run: Any, model: str | None = None) -> bool:
    """Whether the explanation of ``model`` depends on who is scored: a model that reads weekly activity (explained
    against the scored users) or one refitted on the population it scores (BG/NBD). Every other model has one
    explanation per run, which front ends may build once and share."""
    key = model or run.best
    return _needs_sequences(key) or callable(getattr(run.model(key), "for_population", None))


def explainer_for_run(run: Any, frame: pd.DataFrame | None = None, sequences: Any = None, *,
                      model: str | None = None, background_size: int | None = None, seed: int = 0) -> Explainer:
    """An :class:`Explainer` for the model of a saved run (the best one unless ``model`` is named) that scored the
    users of ``frame`` (None: the model as saved, e.g. for one user of a request or the run's own validation users).

    The SHAP background is a small sample of the run's validation users, and the reference values come from those of
    them with a label; for models that read weekly activity, or a run without usable validation rows, both come from
    ``frame`` itself, where users the model scores below the run's threshold stand in for retained ones (the reasons
    then say "typical for low-risk users")."""
    key = model or run.best
    numeric, categorical = list(run.info.get("numeric", [])), list(run.info.get("categorical", []))
    cols = numeric + categorical
    m = run.model(key)
    if frame is not None and len(frame):
        m = for_population(m, frame[[c for c in cols if c in frame.columns]])  # the model that scored these users
    needs_seq = _needs_sequences(key)
    ref_X, ref_y, ref_seq, label = None, None, None, None
    if not needs_seq:  # validation rows carry no weekly activity, so sequence models use the scored users
        ref_X, ref_y = _validation_reference(run, cols)
    if ref_X is not None:
        bg_X, bg_seq = ref_X, None
    else:
        if frame is None or not len(frame):
            from ..errors import ModelError

            raise ModelError("This model is explained against the users scored with it: score users first.")
        ref_X, ref_seq = frame.reset_index(drop=True), sequences
        bg_X, bg_seq = ref_X, sequences
        X_model = ref_X[[c for c in cols if c in ref_X.columns]]
        p = churn_probability(m, model_input(key, X_model, sequences))
        threshold = float(getattr(run, "threshold", 0.5))
        if (p < threshold).sum() >= MIN_REFERENCE_USERS:
            ref_y, label = (p >= threshold).astype(float), "low-risk users"
    bg = sample_for_explanation(bg_X, None, n=max(1, background_size or DEFAULT_BACKGROUND), seed=seed)
    ex = make_explainer(m, key, bg.X.reset_index(drop=True), numeric, categorical,
                        sequences_background=None if bg_seq is None else _rows(bg_seq, bg.positions),
                        background_size=background_size, seed=seed)
    # the reference set may differ from the background sample
    ex.reference = Reference.from_frame(ex.unit_values(ref_X, ref_seq), ref_y, ex.categorical, label)
    return ex


def _rows(sequences: Any, idx: Any) -> Any:
    """Rows of the weekly activity, or of sequence inputs that also carry event tokens (kept whole)."""
    return sequences[idx] if hasattr(sequences, "tokens") else np.asarray(sequences)[idx]


class ScoringExplanation:
    """Why each user scored by one model of a run got their score: built once per scoring (or once per run when
    :func:`depends_on_population` is False) and asked for the reasons of any of the scored users.

    ``population``: the feature rows of every user scored (None: the model as saved, as for a single request);
    ``sequences``: their weekly activity, for models that read it. The explainer is built on first use."""

    def __init__(self, run: Any, model: str | None = None, population: pd.DataFrame | None = None,
                 sequences: Any = None, *, seed: int = 0):
        self.run, self.key = run, model or run.best
        self.population, self.sequences, self.seed = population, sequences, seed
        self._explainer: Explainer | None = None
        self._lock = threading.Lock()

    @property
    def needs_sequences(self) -> bool:
        return _needs_sequences(self.key)

    def explainer(self) -> Explainer:
        with self._lock:
            if self._explainer is None:
                self._explainer = explainer_for_run(self.run, self.population, self.sequences, model=self.key,
                                                    seed=self.seed)
            return self._explainer

    @property
    def model(self) -> Any:
        """The model explained: the one that scored the population."""
        return self.explainer().model

    def columns(self, rows: pd.DataFrame, n: int = 3, sequences: Any = None) -> list[list[str]]:
        """The top ``n`` reasons of each row of ``rows`` (users of the population), as ``n`` lists (reason 1 of every
        row, then reason 2, ...), ``""`` where a user has fewer risk-raising reasons than ``n``."""
        n = int(n)
        if n <= 0:
            return []
        if len(rows) == 0:
            return [[] for _ in range(n)]
        ex = self.explainer()
        per_user = ex.reasons(rows, sequences if ex.needs_sequences else None, n=n)
        return [[r[i] if i < len(r) else "" for r in per_user] for i in range(n)]

    def at(self, positions, n: int = 3) -> list[list[str]]:
        """:meth:`columns` for the users at ``positions`` of the population."""
        idx = [int(i) for i in positions]
        rows = self.population.iloc[idx].reset_index(drop=True)
        seq = None if self.sequences is None else _rows(self.sequences, idx)
        return self.columns(rows, n, seq)

    def per_user(self, rows: pd.DataFrame, n: int = 3, sequences: Any = None) -> list[list[str]]:
        """The reasons of each row as one list per user (empty reasons dropped)."""
        lists = self.columns(rows, n, sequences)
        return [[lists[k][i] for k in range(len(lists)) if lists[k][i]] for i in range(len(rows))]


def top_reasons(run_or_explainer: Any, frame: pd.DataFrame, n: int = 3, sequences: Any = None, *,
                model: str | None = None) -> list[list[str]]:
    """Reasons for each row of ``frame``, as ``n`` lists (reason 1 for every row, then reason 2, ...), each aligned
    with the rows; ``""`` where a user has fewer risk-raising reasons than ``n``. ``run_or_explainer`` is an
    :class:`Explainer`, or a saved run whose model ``model`` (the best one by default) scored exactly the users of
    ``frame``."""
    n = int(n)
    if n <= 0:
        return []
    if len(frame) == 0:
        return [[] for _ in range(n)]
    if isinstance(run_or_explainer, Explainer):
        per_user = run_or_explainer.reasons(frame, sequences if run_or_explainer.needs_sequences else None, n=n)
        return [[r[i] if i < len(r) else "" for r in per_user] for i in range(n)]
    return ScoringExplanation(run_or_explainer, model, frame, sequences).columns(frame, n, sequences)
