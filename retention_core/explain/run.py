"""Explanations of a saved run's models, for the users being scored: the explainer of a run's model and the top
reasons of each scored user (the ``reason_1..reason_N`` columns of ``score --reasons N`` and of the at-risk list).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..models import REGISTRY
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


def explainer_for_run(run: Any, frame: pd.DataFrame, sequences: Any = None, *, model: str | None = None,
                      background_size: int | None = None, seed: int = 0) -> Explainer:
    """An :class:`Explainer` for a saved run's model (the best one unless ``model`` is named): the SHAP background
    is a small sample of ``frame``; reference values come from the run's validation rows when they hold the
    features and labels, else from ``frame`` itself, where users the model scores below the run's threshold stand
    in for retained ones (the reasons then say "typical for low-risk users")."""
    key = model or run.best
    m = run.model(key)
    numeric, categorical = list(run.info.get("numeric", [])), list(run.info.get("categorical", []))
    ref_X, ref_y, ref_seq, label = None, None, None, None
    needs_seq = REGISTRY[key].needs_sequences if key in REGISTRY else False
    if not needs_seq:  # validation rows carry no weekly activity, so sequence models use the scored users
        ref_X, ref_y = _validation_reference(run, numeric + categorical)
    if ref_X is None:
        ref_X, ref_seq = frame.reset_index(drop=True), sequences
        X_model = frame[[c for c in numeric + categorical if c in frame.columns]]
        p = np.asarray(m.predict_proba(X_model, **({"sequences": sequences} if needs_seq else {})), dtype="float64")
        threshold = float(getattr(run, "threshold", 0.5))
        if (p < threshold).sum() >= MIN_REFERENCE_USERS:
            ref_y, label = (p >= threshold).astype(float), "low-risk users"
    bg = sample_for_explanation(frame, None, n=max(1, background_size or DEFAULT_BACKGROUND), seed=seed)
    ex = make_explainer(m, key, bg.X.reset_index(drop=True), numeric, categorical,
                        sequences_background=None if sequences is None else np.asarray(sequences)[bg.positions],
                        background_size=background_size, seed=seed)
    # the reference set may differ from the background sample
    ex.reference = Reference.from_frame(ex.unit_values(ref_X, ref_seq), ref_y, ex.categorical, label)
    return ex


def top_reasons(run_or_explainer: Any, frame: pd.DataFrame, n: int = 3, sequences: Any = None, *,
                model: str | None = None) -> list[list[str]]:
    """Reasons for each row of ``frame``, as ``n`` lists (reason 1 for every row, then reason 2, ...), each aligned
    with the rows; ``""`` where a user has fewer risk-raising reasons than ``n``. ``run_or_explainer`` is a saved
    run (its model ``model`` is explained, the best one by default) or an :class:`Explainer`."""
    n = int(n)
    if n <= 0:
        return []
    if len(frame) == 0:
        return [[] for _ in range(n)]
    ex = run_or_explainer if isinstance(run_or_explainer, Explainer) else explainer_for_run(run_or_explainer, frame,
                                                                                          sequences, model=model)
    per_user = ex.reasons(frame, sequences if ex.needs_sequences else None, n=n)
    return [[r[i] if i < len(r) else "" for r in per_user] for i in range(n)]
