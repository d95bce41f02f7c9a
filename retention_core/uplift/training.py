"""Training uplift learners on an experiment, judged on held-out customers, and the saved uplift run.

The experiment's customers are split once (``holdout`` of them, stratified by arm and outcome, seeded): every learner
learns from the rest and is judged on the held-out customers by the Qini curve and its area, uplift by decile and the
observed uplift among the first 10% and 30% it ranks, beside random targeting and response targeting (ranking by
P(outcome | treated), from a logistic regression of the treated arm). The best learner is the one with the largest
Qini area. After validation each learner is refitted on every customer (``refit``), as the churn models are; the
figures stay those measured before the refit.

The run is a signed folder like any other (:mod:`retention_core.bundle`) with ``"task": "uplift"`` in ``run.json``;
``metrics.json`` holds, besides ``best_model`` and ``validation``, the experiment and, per learner, ``qini_area,
qini_coefficient, uplift_top10, uplift_top30`` with the same figures for ``comparison.random`` and
``comparison.response``; ``validation.parquet`` holds each held-out customer's arm, outcome and every learner's
``uplift:<key>``, ``p_treated:<key>`` and ``p_control:<key>`` (and ``response``), from which the app draws the Qini
chart.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import train_test_split

from ..bundle import save_folder, save_model, versions
from ..errors import ConfigError, ModelError
from ..training import Progress, TrainProgress
from .data import Experiment, ExperimentData, experiment_data
from .learners import LEARNERS, TwoModelUplift, learner_keys
from .metrics import COMPARISON_LABELS, RESPONSE, comparison_figures, ranking_figures, uplift_by_decile

FIGURES = ("qini_area", "qini_coefficient", "uplift_top10", "uplift_top30")
FORMAT_VERSION = 1


@dataclass
class UpliftConfig:
    learners: list[str] | str = "auto"
    holdout: float = 0.3
    seed: int = 0
    refit: bool = True

    def keys(self) -> list[str]:
        if not 0.05 <= float(self.holdout) <= 0.5:
            raise ConfigError(f"The held-out share must be between 0.05 and 0.5, got {self.holdout}.",
                              field="holdout", value=self.holdout)
        return learner_keys(self.learners)


@dataclass
class UpliftResult:
    """A trained uplift run before it is saved: the leaderboard (learners, then the comparison rows), the best
    learner, the fitted learners (refitted on every customer unless ``refit`` is off), the held-out customers with
    every learner's predictions, the experiment and how it was validated."""

    leaderboard: pd.DataFrame
    best: str
    models: dict
    validation: pd.DataFrame
    data: ExperimentData
    scheme: str
    deciles: dict[str, pd.DataFrame] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    refit: dict = field(default_factory=dict)

    def figures(self, key: str) -> dict:
        row = self.leaderboard.set_index("model").loc[key]
        return {k: float(row[k]) for k in FIGURES}


def _split(data: ExperimentData, cfg: UpliftConfig) -> tuple[np.ndarray, np.ndarray]:
    strata = (2 * data.w + data.y).astype(int)
    if np.bincount(strata, minlength=4).min() < 2:
        strata = data.w.astype(int)  # an arm where nobody (or everybody) responded: stratify by arm only
    train, held = train_test_split(np.arange(len(data.y)), test_size=float(cfg.holdout), stratify=strata,
                                   random_state=int(cfg.seed))
    for name, rows in (("training", train), ("held-out", held)):
        w = data.w[rows]
        if w.all() or not w.any():
            raise ModelError(f"The {name} customers hold a single arm; give more customers or a larger held-out share.")
    return np.sort(train), np.sort(held)


def _validation_frame(data: ExperimentData, held: np.ndarray) -> pd.DataFrame:
    v = data.frame.iloc[held].reset_index(drop=True)
    v.insert(1, "treated", data.w[held].astype(int))
    v.insert(2, "outcome", data.y[held].astype(int))
    return v


def _fit_each(keys, data, train, held, cfg, progress) -> tuple[list, dict, dict, dict]:
    X = data.frame[data.features]
    X_tr, X_ho = X.iloc[train].reset_index(drop=True), X.iloc[held].reset_index(drop=True)
    y_tr, w_tr = data.y[train], data.w[train]
    rows, preds, fitted, errors = [], {}, {}, {}
    for i, key in enumerate(keys):
        spec = LEARNERS[key]
        progress(TrainProgress(i / (len(keys) + 1), f"{spec.label}: training", key))
        t0 = time.perf_counter()
        try:
            learner = spec.build(data.numeric, data.categorical, cfg.seed).fit(X_tr, y_tr, w_tr)
            p_t, p_c = learner.predict_arms(X_ho)
        except Exception as exc:  # one learner failing must not lose the others
            errors[key] = str(exc) if isinstance(exc, (ConfigError, ModelError)) else f"{type(exc).__name__}: {exc}"
            progress(TrainProgress((i + 1) / (len(keys) + 1), f"{spec.label}: failed", key, "failed"))
            continue
        seconds = time.perf_counter() - t0
        preds[key], fitted[key] = (p_t, p_c), learner
        rows.append({"model": key, "label": spec.label, "kind": spec.kind,
                     **ranking_figures(data.y[held], p_t - p_c, data.w[held]), "fit_seconds": seconds})
        progress(TrainProgress((i + 0.95) / (len(keys) + 1), f"{spec.label}: done ({seconds:.1f} s)", key, "done"))
    return rows, preds, fitted, errors


def _response(fitted: dict, data: ExperimentData, train, held, seed: int) -> np.ndarray:
    """P(outcome | treated) of the held-out customers: the two-model learner's treated arm, or the same model."""
    X = data.frame[data.features]
    learner = fitted.get("two_model")
    if learner is None:
        learner = TwoModelUplift(data.numeric, data.categorical, seed=seed).fit(
            X.iloc[train].reset_index(drop=True), data.y[train], data.w[train])
    return learner.predict_arms(X.iloc[held].reset_index(drop=True))[0]


def train_uplift(df: pd.DataFrame, experiment: Experiment, cfg: UpliftConfig | None = None, *,
                 user_col: str | None = None, exclude=(), progress: Progress | None = None) -> UpliftResult:
    """Train the chosen uplift learners on an experiment table, judge them on held-out customers and refit them."""
    cfg = cfg or UpliftConfig()
    keys = cfg.keys()
    progress = progress or (lambda event: None)
    data = experiment_data(df, experiment, user_col=user_col, exclude=list(exclude))
    train, held = _split(data, cfg)
    rows, preds, fitted, errors = _fit_each(keys, data, train, held, cfg, progress)
    if not rows:
        raise ModelError("No uplift learner could be trained. " + "; ".join(f"{k}: {v}" for k, v in errors.items()))
    y_ho, w_ho = data.y[held], data.w[held]
    response = _response(fitted, data, train, held, cfg.seed)
    board = pd.DataFrame(rows).sort_values("qini_area", ascending=False, kind="stable").reset_index(drop=True)
    best = str(board.iloc[0]["model"])
    compare = comparison_figures(y_ho, w_ho, response)
    board = pd.concat([board, pd.DataFrame([{"model": k, "label": COMPARISON_LABELS[k], "kind": "comparison", **v}
                                            for k, v in compare.items()])], ignore_index=True)
    validation = _validation_frame(data, held)
    for key, (p_t, p_c) in preds.items():
        validation[f"uplift:{key}"], validation[f"p_treated:{key}"], validation[f"p_control:{key}"] = p_t - p_c, p_t, p_c
    validation[RESPONSE] = response
    deciles = {k: uplift_by_decile(y_ho, p_t - p_c, w_ho) for k, (p_t, p_c) in preds.items()}
    deciles[RESPONSE] = uplift_by_decile(y_ho, response, w_ho)
    scheme = (f"held-out split: {len(held):,} of {len(data.y):,} customers ({cfg.holdout:.0%}, stratified by arm and "
              f"outcome, seed {cfg.seed}); {data.arms_text()}")
    refit = _refit(fitted, data, errors, progress) if cfg.refit else {}
    progress(TrainProgress(1.0, "done", None, "done"))
    return UpliftResult(board, best, fitted, validation, data, scheme, deciles, errors, refit)


def _refit(fitted: dict, data: ExperimentData, errors: dict, progress: Progress) -> dict:
    """Every validated learner fitted again, with the same settings, on every customer (a failure keeps the
    validated learner, with a warning)."""
    X = data.frame[data.features]
    for i, key in enumerate(list(fitted)):
        progress(TrainProgress(0.9 + 0.09 * i / max(1, len(fitted)), f"{LEARNERS[key].label}: refitting on "
                               f"{len(X):,} customers", key, "refit"))
        try:
            fitted[key] = clone(fitted[key]).fit(X, data.y, data.w)
        except Exception as exc:  # noqa: BLE001 - keep the validated learner
            errors[f"{key} (refit)"] = f"{type(exc).__name__}: {exc}"
    return {"rows": int(len(X)), "carried": {}}


def refit_text(refit: dict) -> str:
    if not refit:
        return "The saved learners are the ones validated (not refitted)."
    return (f"Figures were measured on the held-out customers before the refit; the saved learners were then "
            f"refitted on all {refit['rows']:,} customers.")


# ------------------------------------------------------------------------------------------------ the saved run
def _metrics(result: UpliftResult) -> dict:
    board = result.leaderboard.set_index("model")
    learners = {k: {"label": str(r["label"]), "kind": str(r["kind"]), "fit_seconds": float(r["fit_seconds"]),
                    **{f: float(r[f]) for f in FIGURES}} for k, r in board.iterrows() if r["kind"] != "comparison"}
    compare = {k: {"label": str(r["label"]), **{f: float(r[f]) for f in FIGURES}} for k, r in board.iterrows()
               if r["kind"] == "comparison"}
    return {"task": "uplift", "best_model": result.best, "validation": result.scheme,
            "outcome": f"{result.data.experiment.outcome} = {result.data.positive}",
            "experiment": result.data.describe(), "models": learners, "comparison": compare,
            "deciles": {k: d.to_dict(orient="records") for k, d in result.deciles.items()},
            "refit": result.refit}


def save_uplift_run(out, result: UpliftResult, *, config: UpliftConfig, data_digest: str = "",
                    name: str | None = None) -> Path:
    """Save an uplift run (signed, atomic; see :mod:`retention_core.bundle`)."""
    data = result.data
    target = Path(out).resolve()

    def fill(folder: Path) -> None:
        info = {k: save_model(m, k, folder / "models" / k) for k, m in result.models.items()}
        run = {"format": FORMAT_VERSION, "task": "uplift", "name": name or target.name,
               "created": pd.Timestamp.now().isoformat(), "kind": "users", "schema": data.schema.to_dict(),
               "user_spec": data.spec, "numeric": data.numeric, "categorical": data.categorical,
               "experiment": data.describe(), "best_model": result.best, "threshold": 0.0,
               "thresholds": {k: 0.0 for k in info}, "models": info, "data_digest": data_digest,
               "versions": versions(), "train_config": vars(config), "errors": result.errors, "refit": result.refit,
               "snapshot": {}, "sequence_weeks": None}
        (folder / "run.json").write_text(json.dumps(run, indent=1, default=str))
        (folder / "metrics.json").write_text(json.dumps(_metrics(result), indent=1, default=str))
        result.leaderboard.to_csv(folder / "leaderboard.csv", index=False)
        result.validation.to_parquet(folder / "validation.parquet", index=False)

    return save_folder(target, fill)


def train_uplift_and_save(out, df: pd.DataFrame, experiment: Experiment, cfg: UpliftConfig | None = None, *,
                          user_col: str | None = None, exclude=(), digest: str = "", name: str | None = None,
                          progress: Progress | None = None) -> tuple[UpliftResult, Path]:
    """Train, validate, refit and save an uplift run: what the command line and the app's Train page both do."""
    cfg = cfg or UpliftConfig()
    result = train_uplift(df, experiment, cfg, user_col=user_col, exclude=exclude, progress=progress)
    if progress is not None:
        progress(TrainProgress(0.99, "saving the run", None, "saving"))
    return result, save_uplift_run(out, result, config=cfg, data_digest=digest, name=name)
