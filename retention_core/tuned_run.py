"""The settings search of a training run (``train --models auto``), around :mod:`retention_core.models.tuning`: its
inner folds drawn from the run's training rows only (``sp.train`` of the run's split; the validation rows never
enter), the score of one model's settings on one fold, and the leaderboard's columns of tuned against default."""
from __future__ import annotations

import numpy as np

from .evaluation import metrics
from .fitting import Progress, TrainProgress, fit_one, predict
from .models import REGISTRY
from .models import tuning


def run_search(keys, ds, cfg, sp, horizon: int, progress: Progress):
    """The settings search (models.tuning) inside the training rows, or None when there is none to run."""
    budget, names = cfg.search_budget(), tuning.searchable(keys, cfg.params)
    if budget <= 0 or not names:
        return None
    dates = sp.frame["snapshot_date"] if ds.kind == "events" else None
    folds, how = tuning.inner_folds(dates, sp.y, sp.train, horizon_days=horizon, seed=cfg.seed,
                                    recent=cfg.train_snapshots, users=sp.frame["user_id"])

    def score(key, params, tr, va):
        return inner_score(sp, key, params, tr, va, horizon)

    def report(spent, message, key):
        progress(TrainProgress(0.0, message, key, "search", search=spent))
    found = tuning.search(names, score, folds, budget=budget, seed=cfg.seed, max_trials=cfg.tune_trials,
                          report=report, validation=how)
    for key, s in found.models.items():
        verdict = (f"tuned {s.best_score:.4f} against default {s.default_score:.4f}: "
                   f"{'tuned kept' if s.kept else 'defaults kept'}") if s.best_score is not None else s.note
        progress(TrainProgress(0.0, f"{REGISTRY[key].label}: {len(s.trials)} trials in {s.seconds:.0f} s, {verdict}",
                               key, "searched", search=1.0))
    return found


def inner_score(sp, key: str, params: dict, tr: np.ndarray, va: np.ndarray, horizon: int) -> float:
    """ROC-AUC of one model's settings on one inner fold: ``tr`` and ``va`` are positions of training rows."""
    from sklearn.metrics import roc_auc_score

    cols = sp.num + sp.cat
    X, Xv = sp.X.iloc[tr][cols], sp.X.iloc[va][cols]
    model = fit_one(key, params, sp.num, sp.cat, horizon, X, sp.y[tr], None, None, None)
    return float(roc_auc_score(sp.y[va], predict(model, key, Xv, None)))


def versus_default(rows: list, found, sp, cfg, horizon: int) -> None:
    """The search's columns of the leaderboard: whether tuned settings were kept, both inner scores, and the default
    settings' ROC-AUC on the validation rows beside the tuned one (shown only: the choice was made inside)."""
    if found is None:
        return
    X_tr, y_tr, _ = sp.part(sp.train)
    X_va, y_va, _ = sp.part(sp.val)
    for r in rows:
        s = found.models.get(r["model"])
        if s is None:
            continue
        r.update(tuned=s.kept, search_default=s.default_score, search_tuned=s.best_score,
                 default_roc_auc=r["roc_auc"])
        if s.kept:
            try:
                model = fit_one(r["model"], {}, sp.num, sp.cat, horizon, X_tr, y_tr, None, cfg.calibrate, None)
                r["default_roc_auc"] = metrics(y_va, predict(model, r["model"], X_va, None))["roc_auc"]
            except Exception:  # noqa: BLE001 - a figure for display only
                r["default_roc_auc"] = np.nan
