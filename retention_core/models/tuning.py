"""The search of model settings behind ``train --models auto``: Optuna's TPE sampler, seeded, with median pruning
over inner validation folds, within a time budget.

The search runs inside the training part of a run's validation and never sees the rows the leaderboard is measured
on. The caller gives the inner folds (positions of training rows only: :func:`inner_folds`) and a
``score(key, params, train_pos, val_pos) -> ROC-AUC`` function; this module samples settings, scores them fold by
fold (a trial whose running mean falls below the median of earlier trials at the same fold is pruned) and keeps the
best settings only when they beat the model's default settings on the same inner folds. It never decides on the
outer validation.

What is searched is declared once, here, per model key (:data:`SPACES`); every name is a setting of the model in the
registry, and every value drawn is within the registry's range (a test checks both). Optuna is imported on first
use, so the app and the light commands start without it.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd

#: Seconds ``train --models auto`` spends searching by default (all models together). With today's training of
#: about 10 s on a 5,000-row table, the whole run stays within 3 minutes on 2 cores (see ``bench/bench_tuning.py``).
DEFAULT_BUDGET = 90.0
#: The most trials per model (a budget that allows more stops here), and the most training rows a search reads.
MAX_TRIALS = 60
SEARCH_ROWS = 40_000
INNER_FOLDS = 3  # user tables: stratified folds inside the training rows


@dataclass(frozen=True)
class Dim:
    """One searched setting: ``kind`` ``"int"`` or ``"float"`` in ``[low, high]`` (``log``: on a log scale), or
    ``"choice"`` among ``choices``."""

    kind: str
    low: float = 0.0
    high: float = 1.0
    log: bool = False
    choices: tuple = ()

    def suggest(self, trial, name: str) -> Any:
        if self.kind == "choice":
            return trial.suggest_categorical(name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(name, float(self.low), float(self.high), log=self.log)


#: What the search varies per model; the other settings keep the registry's defaults.
SPACES: dict[str, dict[str, Dim]] = {
    "logreg": {
        "C": Dim("float", 1e-3, 100.0, log=True),
        "penalty": Dim("choice", choices=("l2", "l1")),
    },
    "random_forest": {
        "min_samples_leaf": Dim("int", 1, 100, log=True),
        "max_depth": Dim("choice", choices=(None, 6, 12, 24)),
        "max_samples": Dim("float", 0.2, 1.0),
    },
    "gbm": {
        "learning_rate": Dim("float", 0.02, 0.3, log=True),
        "max_leaf_nodes": Dim("int", 7, 127, log=True),
        "min_samples_leaf": Dim("int", 2, 200, log=True),
        "l2_regularization": Dim("float", 1e-3, 10.0, log=True),
    },
}

#: Each model's share of the budget (of what is left when its turn comes): boosting gains the most from a search.
SHARES = {"gbm": 0.45, "random_forest": 0.35, "logreg": 0.2}

#: Settings every trial of a model runs with, recorded nowhere: trials are small fits, one thread each (on two busy
#: cores, a boosting fit of 3,000 rows took 4.6 s with a thread per core against 0.3 s with one).
DURING_SEARCH = {"random_forest": {"n_jobs": 1}}

Score = Callable[[str, dict, np.ndarray, np.ndarray], float]
Report = Callable[[float, str, str], None]  # (fraction of the budget spent, message, model key)


@dataclass
class ModelSearch:
    """One model's search: the inner score of its defaults and of the best trial, the settings chosen (empty: the
    defaults were kept), and every trial (``number, params, score, state, seconds``)."""

    key: str
    default_score: float | None
    best_score: float | None = None
    best_params: dict = field(default_factory=dict)
    kept: bool = False
    trials: list = field(default_factory=list)
    seconds: float = 0.0
    note: str = ""

    @property
    def chosen(self) -> dict:
        return dict(self.best_params) if self.kept else {}


@dataclass
class SearchResult:
    """The whole search of a run: its budget, the inner validation it used and each model's search."""

    budget: float
    validation: str
    models: dict = field(default_factory=dict)  # key -> ModelSearch

    def params(self) -> dict[str, dict]:
        """The settings to train with, per model whose tuned settings beat its defaults."""
        return {k: s.chosen for k, s in self.models.items() if s.kept}

    def as_dict(self) -> dict:
        return {"budget_seconds": self.budget, "validation": self.validation, "metric": "roc_auc",
                "models": {k: asdict(s) for k, s in self.models.items()}}


def searchable(keys: list[str], fixed: dict[str, dict]) -> list[str]:
    """The models of ``keys`` the search tunes: those with a search space whose settings the analyst did not set."""
    return [k for k in keys if k in SPACES and not fixed.get(k)]


def inner_folds(dates: pd.Series | None, y: np.ndarray, train: np.ndarray, *, horizon_days: int, seed: int,
                recent: int = 0, users: pd.Series | None = None) -> tuple[list[tuple[np.ndarray, np.ndarray]], str]:
    """Inner validation folds inside the training rows (``train``: a mask over the labelled rows), as positions, and
    how they were made. The validation rows are never in a fold.

    Snapshots (``dates`` and ``users`` given): the latest training snapshots, each judged after learning from
    snapshots one horizon earlier, as the run's own validation does. When the log does not reach that far, from the
    earlier snapshots of the other half of the customers (two folds, halves drawn with ``seed``): their label windows
    overlap the judged one's, and a customer seen on both sides would reward settings that memorise customers
    (measured on the shared retail log: leaves of 2 to 5 customers won such a search by 0.035 and lost the real
    validation by 0.03). User tables: stratified folds over at most :data:`SEARCH_ROWS` training rows."""
    pos = np.flatnonzero(train)
    if dates is None:
        from sklearn.model_selection import StratifiedKFold

        rng = np.random.default_rng(seed)
        if len(pos) > SEARCH_ROWS:
            pos = np.sort(rng.choice(pos, SEARCH_ROWS, replace=False))
        k = min(INNER_FOLDS, int(np.bincount(y[pos].astype(int)).min()))
        if k < 2:
            return [], "too few users of one class to search"
        split = StratifiedKFold(k, shuffle=True, random_state=seed).split(pos, y[pos])
        return [(pos[a], pos[b]) for a, b in split], f"{k} stratified folds inside the training rows"
    d = pd.to_datetime(dates).to_numpy()
    folds = _time_folds(d, y, pos, horizon_days, recent)
    how = "one horizon earlier"
    if not folds:
        folds, how = _customer_folds(d, y, pos, np.asarray(users), recent, seed), "of the other half of the customers"
    if not folds:
        return [], "no earlier training snapshots to search on"
    return folds, (f"time split{'s' if len(folds) > 1 else ''} inside the training snapshots: judged on "
                   f"{', '.join(sorted({str(pd.Timestamp(d[v[0]]).date()) for _, v in folds}))}, after learning "
                   f"from earlier snapshots {how}")


def _usable(y: np.ndarray, tr: np.ndarray, va: np.ndarray) -> bool:
    return bool(len(tr) and len(va) and len(np.unique(y[tr])) == 2 and len(np.unique(y[va])) == 2)


def _time_folds(d: np.ndarray, y: np.ndarray, pos: np.ndarray, horizon_days: int, recent: int) -> list:
    folds, gap = [], np.timedelta64(int(horizon_days), "D")
    for t in np.sort(np.unique(d[pos]))[::-1][:2]:
        before = np.sort(np.unique(d[pos][d[pos] <= t - gap]))[::-1]
        tr, va = pos[np.isin(d[pos], before[:recent] if recent > 0 else before)], pos[d[pos] == t]
        if _usable(y, tr, va):
            folds.append((tr, va))
    return folds


def _customer_folds(d: np.ndarray, y: np.ndarray, pos: np.ndarray, users: np.ndarray, recent: int,
                    seed: int) -> list:
    t = d[pos].max()
    ids = np.unique(users[pos].astype(str))
    half = set(np.random.default_rng(seed).permutation(ids)[: len(ids) // 2])
    in_half = np.array([u in half for u in users[pos].astype(str)])
    before = np.sort(np.unique(d[pos][d[pos] < t]))[::-1]
    earlier = np.isin(d[pos], before[:recent] if recent > 0 else before)
    folds = []
    for side in (in_half, ~in_half):
        tr, va = pos[earlier & ~side], pos[(d[pos] == t) & side]
        if _usable(y, tr, va):
            folds.append((tr, va))
    return folds


def search(keys: list[str], score: Score, folds: list, *, budget: float, seed: int = 0, max_trials: int = 0,
           report: Report | None = None, validation: str = "") -> SearchResult:
    """Search the settings of each model of ``keys`` (with a space in :data:`SPACES`) on ``folds``, sharing
    ``budget`` seconds by :data:`SHARES` (time a model leaves unused goes to the next); ``max_trials`` caps the trials
    per model (0: :data:`MAX_TRIALS`). Same seed and cap, same result."""
    from threadpoolctl import threadpool_limits

    report = report or (lambda f, m, k: None)
    out = SearchResult(float(budget), validation)
    keys = [k for k in keys if k in SPACES]
    start = time.perf_counter()
    with threadpool_limits(limits=1):
        _search_all(keys, score, folds, budget, seed, max_trials, report, out, start)
    return out


def _search_all(keys, score, folds, budget, seed, max_trials, report, out: SearchResult, start: float) -> None:
    for i, key in enumerate(keys):
        left = budget - (time.perf_counter() - start)
        if left <= 0 or not folds:
            out.models[key] = ModelSearch(key, None, note="no time left in the budget" if folds else out.validation)
            continue
        share = SHARES.get(key, 1.0) / sum(SHARES.get(k, 1.0) for k in keys[i:])
        out.models[key] = _search_one(key, score, folds, left * share, seed, max_trials or MAX_TRIALS,
                                      lambda m, k=key: report(min(1.0, (time.perf_counter() - start) / budget), m, k))


def _mean_score(key: str, params: dict, score: Score, folds: list, trial=None) -> float:
    import optuna

    done, params = [], {**params, **DURING_SEARCH.get(key, {})}
    for step, (tr, va) in enumerate(folds):
        done.append(float(score(key, params, tr, va)))
        if trial is not None:
            trial.report(float(np.mean(done)), step)
            if trial.should_prune():
                raise optuna.TrialPruned()
    return float(np.mean(done))


def _search_one(key: str, score: Score, folds: list, seconds: float, seed: int, max_trials: int,
                say: Callable[[str], None]) -> ModelSearch:
    import optuna

    from . import REGISTRY

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    t0 = time.perf_counter()
    label = REGISTRY[key].label
    say(f"{label}: scoring the default settings")
    try:
        default = _mean_score(key, {}, score, folds)
    except Exception as exc:  # noqa: BLE001 - the model then trains with its defaults, as without a search
        return ModelSearch(key, None, note=f"defaults could not be scored: {exc}")
    result = ModelSearch(key, default)
    space = SPACES[key]

    def objective(trial) -> float:
        return _mean_score(key, {n: d.suggest(trial, n) for n, d in space.items()}, score, folds, trial)

    def each(study, trial) -> None:
        result.trials.append(_trial_row(trial))
        best = max([t["score"] for t in result.trials if t["state"] == "complete"] or [float("nan")])
        say(f"{label}: trial {len(result.trials)}, best {best:.4f} (default {default:.4f})")

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed,
                                n_startup_trials=5), pruner=optuna.pruners.MedianPruner(n_startup_trials=3))
    remaining = max(0.0, seconds - (time.perf_counter() - t0))
    study.optimize(objective, n_trials=max_trials, timeout=remaining, catch=(Exception,), callbacks=[each])
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if done:
        best = max(done, key=lambda t: (t.value, -t.number))
        result.best_score, result.best_params = float(best.value), dict(best.params)
        result.kept = result.best_score > default
    else:
        result.note = "no trial ended within its share of the budget: defaults kept"
    result.seconds = time.perf_counter() - t0
    return result


def _trial_row(trial) -> dict:
    start, end = trial.datetime_start, trial.datetime_complete
    seconds = (end - start).total_seconds() if start and end else None
    steps = trial.intermediate_values  # a pruned trial: its running mean when it stopped
    value = trial.value if trial.value is not None else (steps[max(steps)] if steps else None)
    return {"number": trial.number, "params": dict(trial.params), "score": None if value is None else float(value),
            "state": trial.state.name.lower(), "seconds": seconds}
