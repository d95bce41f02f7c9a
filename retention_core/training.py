"""Validation that does not flatter, a leaderboard over every model, and the choice of the best one.

Event-log datasets (snapshots) are split by time: the latest labelled snapshot is the validation set and the models
train only on snapshots whose whole horizon ends at or before it (``T + horizon <= T_val``), so no label window overlaps
the validation period. Random splits are never used on snapshots. User tables use a stratified holdout plus
stratified K-fold cross-validation on the rest. ``auto`` picks the best model by a chosen metric on validation only.

After validation every kept model is refitted (``refit=True``, the default) on the most recent labelled data, the
validation snapshot included (user tables: every labelled row), so the model that scores has learned from the latest
behaviour. What validation learned is carried: the boosting iterations and neural epochs early stopping found (trees
scaled with the rows), the calibration map and the threshold. The leaderboard keeps the validation figures measured
before the refit; :attr:`TrainResult.refit` says on what the saved models were refitted.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .bundle import refit_note, save_run
from .drift_reference import REFERENCE_ROWS, training_reference
from .errors import ConfigError, ModelError
from .evaluation import HIGHER_IS_BETTER, METRICS, best_f1_threshold, metrics
from .models import DEFAULT_AUTO, REGISTRY, make_model
from .fitting import Progress, TrainProgress, fit_one, predict  # noqa: F401 - TrainProgress: the front ends' import
from .models.base import with_sequences
from .models.calibration import CalibratedModel
from .models.ensemble import DEFAULT_MEMBERS, EnsembleModel
from .tuned_run import run_search, versus_default




@dataclass
class TrainConfig:
    models: list[str] | str = "auto"
    params: dict[str, dict] = field(default_factory=dict)
    metric: str = "roc_auc"
    calibrate: str | None = None  # None | "isotonic" | "sigmoid"
    seed: int = 0
    cv_folds: int = 5
    holdout: float = 0.2
    backtest: int = 0  # extra earlier validation cutoffs (event logs)
    refit: bool = True  # refit the kept models on the latest labelled data after validation
    train_snapshots: int = 3  # event logs: the most recent snapshots a model learns from (0 = all)
    # seconds to search the settings of the tree models and the logistic regression (0: their fixed defaults, no
    # search; None: models.tuning.DEFAULT_BUDGET for ``auto``, 0 for models named one by one)
    tune_budget: float | None = None
    tune_trials: int = 0  # the most trials per model (0: models.tuning.MAX_TRIALS); tests cap it to be repeatable

    def search_budget(self) -> float:
        """Seconds the settings search may take."""
        from .models.tuning import DEFAULT_BUDGET

        if self.tune_budget is None:
            return DEFAULT_BUDGET if self.models in ("auto", None, ["auto"]) else 0.0
        return float(self.tune_budget)

    def model_keys(self) -> list[str]:
        keys = list(DEFAULT_AUTO) if self.models in ("auto", None, ["auto"]) else list(self.models)
        unknown = [k for k in keys if k not in REGISTRY]
        if unknown:
            raise ConfigError(f"Unknown model(s) {', '.join(map(repr, unknown))}. Choose from {', '.join(REGISTRY)} "
                              "or 'auto'.")
        if not keys:
            raise ConfigError("Choose at least one model to train.")
        if self.metric not in METRICS:
            raise ConfigError(f"Unknown metric {self.metric!r}. Choose from {', '.join(METRICS)}.")
        if self.tune_budget is not None and not float(self.tune_budget) >= 0:
            raise ConfigError(f"The search budget must be 0 or more seconds, got {self.tune_budget!r}.")
        if self.calibrate not in (None, "none", "isotonic", "sigmoid"):
            raise ConfigError(f"Calibration must be isotonic, sigmoid or none, got {self.calibrate!r}.")
        return keys


@dataclass
class TrainResult:
    leaderboard: pd.DataFrame
    best: str
    models: dict  # key -> fitted model (final)
    val_predictions: dict[str, np.ndarray]
    y_val: np.ndarray
    val_frame: pd.DataFrame  # user_id, snapshot_date and categorical attributes of the validation rows
    thresholds: dict[str, float]
    scheme: str
    numeric: list[str]
    categorical: list[str]
    backtest: pd.DataFrame = field(default_factory=pd.DataFrame)
    cv: pd.DataFrame = field(default_factory=pd.DataFrame)
    errors: dict[str, str] = field(default_factory=dict)
    # what the saved models learned from after validation: {"rows", "snapshots", "from", "to", "carried": {key: {..}}}
    # (empty when they were not refitted: they are then exactly the models validated)
    refit: dict = field(default_factory=dict)
    # the distribution of the rows the saved models learned from (bins and shares per feature and of each model's
    # churn probability), saved with the run for drift monitoring (retention_core.drift_reference); {} when unknown
    reference: dict = field(default_factory=dict)
    # the settings search (models.tuning.SearchResult.as_dict()): budget, inner validation, per model the defaults'
    # and the best trial's inner scores, the settings kept and every trial; {} when nothing was searched
    tuning: dict = field(default_factory=dict)

    @property
    def refit_note(self) -> str:
        """One line for the leaderboard: what the figures measure and what the saved models learned from."""
        return refit_note(self.refit)


def recent_snapshots(dates: pd.Series, mask: np.ndarray, k: int) -> np.ndarray:
    """``mask`` restricted to its ``k`` most recent snapshot dates (all when k <= 0).

    Recent snapshots resemble the one to score: in a log that starts recently, early snapshots see a short history and
    their lifetime totals mean something else, so learning from them hurts more than it helps.
    """
    if k <= 0 or not mask.any():
        return mask
    keep = np.sort(pd.to_datetime(dates[mask]).unique())[::-1][:k]
    return mask & pd.to_datetime(dates).isin(keep).to_numpy()


def time_split(ds, horizon_days: int, train_snapshots: int = 0) -> tuple[np.ndarray, np.ndarray, pd.Timestamp]:
    """(train mask, validation mask, validation cutoff) over the labelled rows of a snapshot dataset; training uses the
    ``train_snapshots`` most recent snapshots a full horizon before validation (all when 0)."""
    f = ds.frame
    dates = pd.to_datetime(f["snapshot_date"])
    labelled = f["churned"].notna().to_numpy()
    if not labelled.any():
        raise ConfigError("No snapshot is labelled yet: choose an earlier cutoff so the horizon is observed.")
    t_val = dates[labelled].max()
    val = labelled & (dates == t_val).to_numpy()
    train = labelled & (dates <= t_val - pd.Timedelta(days=horizon_days)).to_numpy()
    if not train.any():
        raise ConfigError(f"Time-aware validation needs training snapshots at least {horizon_days} days (one horizon) "
                          f"before the validation snapshot {t_val.date()}. Build more snapshots (e.g. 4 or more, "
                          "30 days apart) or shorten the horizon.")
    return recent_snapshots(dates, train, train_snapshots), val, t_val


def _check_classes(y: np.ndarray, what: str) -> None:
    k = np.unique(y)
    if len(k) < 2:
        raise ConfigError(f"The {what} set has only {'churned' if k.size and k[0] == 1 else 'retained'} users; both "
                          "classes are needed. Change the horizon, the cutoff or the number of snapshots.")


def _usable_features(X: pd.DataFrame, numeric: list[str], categorical: list[str]) -> tuple[list[str], list[str]]:
    num = [c for c in numeric if X[c].nunique(dropna=True) > 1]
    cat = [c for c in categorical if X[c].nunique(dropna=True) > 1]
    return num, cat




@dataclass
class _Split:
    """The rows a training learns from and is judged on, with how they were chosen."""

    frame: pd.DataFrame  # the labelled rows
    X: pd.DataFrame
    y: np.ndarray
    seq: np.ndarray | None
    train: np.ndarray
    val: np.ndarray
    scheme: str
    num: list[str]
    cat: list[str]

    def part(self, mask: np.ndarray):
        return (self.X.loc[mask, self.num + self.cat], self.y[mask],
                self.seq[mask] if self.seq is not None else None)


def _split(ds, cfg: TrainConfig, horizon: int, excluded) -> tuple[_Split, object]:
    lab = ds.labelled()
    frame = lab.frame
    numeric = [c for c in ds.numeric if c not in (excluded or [])]
    categorical = [c for c in ds.categorical if c not in (excluded or [])]
    X_all = frame[numeric + categorical]
    y_all = frame["churned"].to_numpy(dtype=float)
    if ds.kind == "events":
        tr, va, t_val = time_split(lab, horizon, cfg.train_snapshots)
        scheme = (f"time split: trained on {frame.loc[tr, 'snapshot_date'].nunique()} snapshot(s) up to "
                  f"{pd.Timestamp(frame.loc[tr, 'snapshot_date'].max()).date()}, validated on {t_val.date()}")
    else:
        from sklearn.model_selection import train_test_split  # scikit-learn loads in about a second: on first use

        _check_classes(y_all, "labelled")
        tr_idx, _ = train_test_split(np.arange(len(frame)), test_size=cfg.holdout, stratify=y_all,
                                     random_state=cfg.seed)
        tr = np.zeros(len(frame), bool)
        tr[tr_idx] = True
        va = ~tr
        scheme = f"stratified holdout of {cfg.holdout:.0%} plus {cfg.cv_folds}-fold cross-validation on the rest"
    _check_classes(y_all[tr], "training")
    _check_classes(y_all[va], "validation")
    num, cat = _usable_features(X_all.loc[tr], numeric, categorical)
    return _Split(frame, X_all, y_all, lab.sequences, tr, va, scheme, num, cat), lab


def _validate_each(keys, ds, cfg, sp: _Split, horizon, progress) -> tuple[list, dict, dict, dict, dict, list]:
    """Fit each model on the training rows and measure it on the validation rows (the ensemble last, from the
    members already fitted); a model that fails is reported and the others go on."""
    X_tr, y_tr, s_tr = sp.part(sp.train)
    X_va, y_va, s_va = sp.part(sp.val)
    rows, preds, thresholds, fitted, errors, cv_rows = [], {}, {}, {}, {}, []
    order = [k for k in keys if k != "ensemble"] + (["ensemble"] if "ensemble" in keys else [])
    n = len(order)
    for i, key in enumerate(order):
        spec, params = REGISTRY[key], dict(cfg.params.get(key, {}))

        def sub(f, m, i=i, key=key):
            progress(TrainProgress((i + 0.9 * min(max(f, 0), 1)) / n, f"{REGISTRY[key].label}: {m}", key))
        sub(0.0, "training")
        t0 = time.perf_counter()
        try:
            if key == "ensemble":
                model = _assemble_ensemble(fitted, sp.num, sp.cat, horizon, X_tr, y_tr)
            else:
                model = fit_one(key, params, sp.num, sp.cat, horizon, X_tr, y_tr, s_tr, cfg.calibrate, sub)
            fit_s = time.perf_counter() - t0
            p = predict(model, key, X_va, s_va)
        except Exception as exc:  # one model failing must not lose the others
            errors[key] = str(exc) if isinstance(exc, (ConfigError, ModelError)) else f"{type(exc).__name__}: {exc}"
            progress(TrainProgress((i + 1) / n, f"{spec.label}: failed", key, "failed"))
            continue
        thr = best_f1_threshold(y_va, p)
        m = metrics(y_va, p, thr)
        rows.append({"model": key, "label": spec.label, "family": spec.family, **{k: m[k] for k in METRICS},
                     "threshold": thr, "fit_seconds": fit_s})
        preds[key], thresholds[key], fitted[key] = p, thr, model
        if ds.kind == "users" and cfg.cv_folds >= 2 and spec.family not in ("deep", "ensemble"):
            cv_rows.append({"model": key, **_cross_validate(key, params, sp.num, sp.cat, horizon, X_tr, y_tr, cfg)})
        progress(TrainProgress((i + 0.9) / n, f"{spec.label}: done ({fit_s:.1f} s)", key, "done"))
    return rows, preds, thresholds, fitted, errors, cv_rows


def _leaderboard(rows: list, cv_rows: list, metric: str) -> pd.DataFrame:
    board = pd.DataFrame(rows)
    board = board.sort_values(metric, ascending=not HIGHER_IS_BETTER[metric], na_position="last")
    board = board.reset_index(drop=True)
    cv = pd.DataFrame(cv_rows)
    return board.merge(cv, on="model", how="left") if len(cv) else board


def unavailable_models(features, kind: str) -> dict[str, str]:
    """The models a dataset cannot feed, with the reason: those that read weekly activity when the data is not an
    event log, and those missing a column they need (``features``: the dataset's feature columns; ``kind``:
    ``"events"`` or ``"users"``). ``auto`` training leaves them out, and the app does not offer them."""
    out = {}
    for key, spec in REGISTRY.items():
        if spec.needs_sequences and kind != "events":
            out[key] = "needs an event log (weekly activity)"
        elif missing := spec.missing_columns(features):
            out[key] = f"needs {', '.join(missing)}"
    return out


def train_models(ds, cfg: TrainConfig, *, horizon_days: int | None = None, progress: Progress | None = None,
                 excluded: list[str] | None = None) -> TrainResult:
    """Train every requested model, validate, rank and refit. Failures of one model are reported, not fatal."""
    keys = cfg.model_keys()
    if cfg.models in ("auto", None, ["auto"]):  # auto leaves out models this data cannot feed
        blocked = unavailable_models(ds.features, ds.kind)
        keys = [k for k in keys if k not in blocked]
    horizon = int(horizon_days or ds.config.get("horizon_days", 90))
    progress = progress or (lambda event: None)
    sp, lab = _split(ds, cfg, horizon, excluded)
    found = run_search(keys, ds, cfg, sp, horizon, progress)
    cfg = dataclasses.replace(cfg, params={**cfg.params, **found.params()}) if found else cfg
    rows, preds, thresholds, fitted, errors, cv_rows = _validate_each(keys, ds, cfg, sp, horizon, progress)
    versus_default(rows, found, sp, cfg, horizon)
    if not rows:
        detail = "; ".join(f"{k}: {v}" for k, v in errors.items())
        raise ModelError(f"No model could be trained. {detail}")
    board = _leaderboard(rows, cv_rows, cfg.metric)
    best = str(board.iloc[0]["model"])
    backtest = _backtest(lab, keys, cfg, sp.num, sp.cat, horizon, fitted) if ds.kind == "events" and cfg.backtest \
        else pd.DataFrame()
    refit, learned = {}, sp.train  # learned: the rows the saved models learned from
    if cfg.refit:
        final = np.ones(len(sp.frame), bool)
        if ds.kind == "events":
            final = recent_snapshots(sp.frame["snapshot_date"], final, cfg.train_snapshots)
        X_f, y_f, s_f = sp.part(final)
        refit = _refit_all(fitted, X_f, y_f, s_f, int(sp.train.sum()), errors, progress)
        refit.update(_span(sp.frame.loc[final]) if ds.kind == "events" else {})
        if "ensemble" in fitted:
            fitted["ensemble"] = _assemble_ensemble(fitted, sp.num, sp.cat, horizon, X_f, y_f)
        learned = final
    val_cols = ["user_id"] + (["snapshot_date"] if "snapshot_date" in sp.frame else []) + sp.num + sp.cat
    progress(TrainProgress(1.0, "done", None, "done"))
    X_va, y_va, _ = sp.part(sp.val)
    return TrainResult(board, best, fitted, preds, y_va, sp.frame.loc[sp.val, val_cols].reset_index(drop=True),
                       thresholds, sp.scheme, sp.num, sp.cat, backtest, pd.DataFrame(cv_rows), errors, refit,
                       reference=_drift_reference(fitted, sp, learned, cfg.seed),
                       tuning=found.as_dict() if found else {})




def _drift_reference(fitted: dict, sp: _Split, rows: np.ndarray, seed: int) -> dict:
    """The compact training reference for drift monitoring, from a seeded sample of the rows the saved models learned
    from; a model that cannot predict is left out, and nothing here can fail a training."""
    keep = np.flatnonzero(rows)
    if len(keep) > REFERENCE_ROWS:
        keep = np.sort(np.random.default_rng(seed).choice(keep, REFERENCE_ROWS, replace=False))
    X = sp.X.iloc[keep][sp.num + sp.cat]
    seq = sp.seq[keep] if sp.seq is not None else None
    scores = {}
    for key, model in fitted.items():
        try:
            scores[key] = predict(model, key, X, seq)
        except Exception:  # noqa: BLE001 - the reference is optional
            continue
    try:
        return training_reference(X, sp.num, sp.cat, scores, rows=int(rows.sum()))
    except Exception:  # noqa: BLE001 - monitoring falls back to the validation rows
        return {}


def _span(rows: pd.DataFrame) -> dict:
    dates = pd.to_datetime(rows["snapshot_date"])
    return {"snapshots": int(dates.nunique()), "from": str(dates.min().date()), "to": str(dates.max().date())}


def refit_model(model, X: pd.DataFrame, y: np.ndarray, seq, scale: float = 1.0):
    """A clone of the model (same kind and settings) fitted on ``X, y`` (with their weekly activity ``seq`` for a
    sequence model), carrying what validation learned (the model's ``refit_settings``: trees or epochs early stopping
    kept); a calibrated model keeps the calibration map it learned during validation around its refitted base."""
    from sklearn.base import clone

    if isinstance(model, CalibratedModel):
        out = model.with_base(refit_model(model.base_, X, y, seq, scale))
        out.calibration_source_ = f"{model.calibration_source_} (kept through the refit)"
        return out
    new = clone(model)
    if hasattr(model, "refit_settings"):
        new.set_params(**model.refit_settings(scale))
    return new.fit(with_sequences(X, seq) if getattr(new, "needs_sequences", False) else X, y)


def _refit_all(fitted: dict, X: pd.DataFrame, y: np.ndarray, seq, n_validated: int, errors: dict,
               progress: Progress) -> dict:
    """Refit every validated model (the ensemble is reassembled by the caller) on the latest labelled rows; a model
    whose refit fails keeps its validated version, with a warning."""
    scale = len(X) / max(1, n_validated)
    carried = {}
    keys = [k for k in fitted if REGISTRY[k].family != "ensemble"]
    for i, key in enumerate(keys):
        progress(TrainProgress(0.9 + 0.09 * i / max(1, len(keys)), f"{REGISTRY[key].label}: refitting on {len(X):,} "
                               "rows", key, "refit"))
        try:
            model = refit_model(fitted[key], X, y, seq if REGISTRY[key].needs_sequences else None, scale)
        except Exception as exc:  # keep the validated model if the refit fails
            errors[f"{key} (refit)"] = f"{type(exc).__name__}: {exc}"
            continue
        base = getattr(fitted[key], "base_", fitted[key])
        carried[key] = base.refit_settings(scale) if hasattr(base, "refit_settings") else {}
        fitted[key] = model
    return {"rows": int(len(X)), "carried": carried}


def _assemble_ensemble(fitted: dict, num, cat, horizon, X: pd.DataFrame, y: np.ndarray) -> EnsembleModel:
    """The averaging ensemble of the members already fitted in this run on ``X, y``; when fewer than two of them are
    there, its members are fitted on ``X, y`` here (a member that cannot train on this data is left out)."""
    have = {k: fitted[k] for k in DEFAULT_MEMBERS if k in fitted}
    if len(have) < 2:
        have = {}
        for key in DEFAULT_MEMBERS:
            try:
                have[key] = fit_one(key, {}, num, cat, horizon, X, y, None, None, None)
            except ModelError:
                continue
    return EnsembleModel.from_fitted(have, X, y)


def _cross_validate(key, params, num, cat, horizon, X, y, cfg) -> dict:
    """ROC-AUC of stratified K-fold cross-validation (scikit-learn's ``cross_validate``) on the training rows."""
    from sklearn.metrics import make_scorer, roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_validate

    model = make_model(key, numeric=num, categorical=cat, horizon_days=horizon, calibrate=cfg.calibrate, **params)
    folds = StratifiedKFold(cfg.cv_folds, shuffle=True, random_state=cfg.seed)
    aucs = cross_validate(model, X, np.asarray(y).astype(int), cv=folds, error_score="raise",
                          scoring=make_scorer(roc_auc_score, response_method="predict_proba"))["test_score"]
    return {"cv_roc_auc_mean": float(np.mean(aucs)), "cv_roc_auc_std": float(np.std(aucs))}


def _backtest(lab, keys, cfg, num, cat, horizon, fitted) -> pd.DataFrame:
    """Validation at earlier cutoffs too: for each, train on snapshots one horizon before it."""
    dates = sorted(pd.to_datetime(lab.frame["snapshot_date"]).unique())[::-1]
    rows = []
    for t_val in dates[1:1 + cfg.backtest]:
        d = pd.to_datetime(lab.frame["snapshot_date"])
        va = (d == t_val).to_numpy()
        tr = (d <= t_val - pd.Timedelta(days=horizon)).to_numpy()
        y = lab.frame["churned"].to_numpy(float)
        if not tr.any() or len(np.unique(y[tr])) < 2 or len(np.unique(y[va])) < 2:
            continue
        X = lab.frame[num + cat]
        seq = lab.sequences
        for key in keys:
            if key not in fitted or REGISTRY[key].family == "deep":
                continue
            try:
                m = fit_one(key, dict(cfg.params.get(key, {})), num, cat, horizon, X[tr], y[tr],
                             seq[tr] if seq is not None else None, cfg.calibrate, None)
                p = predict(m, key, X[va], seq[va] if seq is not None else None)
            except Exception:
                continue
            rows.append({"cutoff": pd.Timestamp(t_val), "model": key, **metrics(y[va], p)})
    return pd.DataFrame(rows)


def train_and_save(out, ds, schema, cfg: TrainConfig, *, snapshot: dict, digest: str, excluded: list | None = None,
                   name: str | None = None, progress: Progress | None = None) -> tuple[TrainResult, Path]:
    """Train, validate, refit and save a run in ``out`` (atomically): what the app's Train page and the command line
    both do. Returns the result and the saved run's folder."""
    progress = progress or (lambda event: None)
    result = train_models(ds, cfg, horizon_days=snapshot.get("horizon_days"), progress=progress, excluded=excluded)
    progress(TrainProgress(0.99, "saving the run", None, "saving"))
    path = save_run(out, result, schema=schema, dataset=ds, snapshot=snapshot, data_digest=digest, train_config=cfg,
                    name=name)
    return result, path
