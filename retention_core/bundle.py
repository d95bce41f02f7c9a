"""Saved runs: everything needed to score new data tomorrow, written atomically and checked when read back.

A run folder holds ``manifest.json`` (the SHA-256 of every other file, signed with this installation's key),
``run.json`` (column roles, snapshot and feature configuration, chosen threshold, data digest, library versions),
``metrics.json`` (the contract of DESIGN.md), ``leaderboard.csv``, ``validation.parquet`` (validation predictions) and
``models/<key>/`` for each model. Loading refuses a run whose files changed or whose manifest was not signed here, so a
file handed over by someone else is never unpickled. Saving writes a temporary folder and renames it into place under
a lock: a crash mid-save leaves the previous run intact, and two sessions saving at once both end with intact runs.
"""
from __future__ import annotations

import hashlib
import hmac
import importlib
import io
import json
import os
import platform
import re
import secrets
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from . import __version__
from .errors import BundleError, ConfigError
from .locking import exclusive
from .roles import Schema

FORMAT_VERSION = 1
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$")


def workspace(path: str | os.PathLike | None = None, *, create: bool = True) -> Path:
    """The workspace: the folder where runs (``runs/``) and the scoring history are kept. ``path`` when given, else
    ``RETENTION_WORKSPACE``, else ``./workspace``: the one rule every front end resolves it by (the app, the command
    line, the service, the monitor). ``create`` makes its ``runs`` folder; the app only reads (``create=False``), so
    opening a page never creates a workspace."""
    root = Path(path or os.environ.get("RETENTION_WORKSPACE") or Path.cwd() / "workspace")
    if create:
        (root / "runs").mkdir(parents=True, exist_ok=True)
    return root


def safe_run_name(name: str) -> str:
    """A run name usable as a folder name: letters, digits, space, dot, dash, underscore; no path tricks."""
    name = str(name).strip()
    if not _NAME.match(name) or name in (".", "..") or ".." in name:
        raise ConfigError(f"Run name {name!r} is not allowed: use up to 64 letters, digits, spaces, dots, dashes or "
                          "underscores, starting with a letter or digit.")
    return name


def run_path(name: str, root: str | os.PathLike | None = None) -> Path:
    base = (workspace(root) / "runs").resolve()
    p = (base / safe_run_name(name)).resolve()
    if p.parent != base:
        raise ConfigError(f"Run name {name!r} points outside the workspace.")
    return p


def _key() -> bytes:
    env = os.environ.get("RETENTION_BUNDLE_KEY")
    if env:
        return env.encode()
    home = Path(os.environ.get("RETENTION_HOME") or Path.home() / ".retention-studio")
    home.mkdir(parents=True, exist_ok=True)
    f = home / "bundle.key"
    if not f.exists():
        tmp = home / f".bundle.key.{os.getpid()}.{secrets.token_hex(4)}"
        tmp.write_text(secrets.token_hex(32))
        os.chmod(tmp, 0o600)
        try:
            os.link(tmp, f)  # atomic: the first writer wins
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    return f.read_text().strip().encode()


def _sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _sign(files: dict) -> str:
    payload = json.dumps(files, sort_keys=True).encode()
    return hmac.new(_key(), payload, hashlib.sha256).hexdigest()


def versions() -> dict:
    import sklearn

    out = {"python": platform.python_version(), "pandas": pd.__version__, "numpy": np.__version__,
           "scikit-learn": sklearn.__version__, "retention_core": _own_version()}
    if "keras" in sys.modules:
        out["keras"] = sys.modules["keras"].__version__
    return out


def _own_version() -> str:
    return __version__


def _lock(target: Path, timeout: float = 120.0):
    """The lock of one run's folder (:func:`retention_core.locking.exclusive` on ``.<run>.lock`` beside it), held
    while the run is renamed into place or deleted."""
    return exclusive(target.parent / f".{target.name}.lock", timeout, lambda _: BundleError(
        f"Run {target.name!r} is being saved by another session; try again shortly."))


def _save_model(model, key: str, folder: Path) -> dict:
    import joblib

    folder.mkdir(parents=True, exist_ok=True)
    if hasattr(model, "save") and hasattr(type(model), "load") and getattr(model, "is_keras", False):
        model.save(folder)
        return {"format": "keras", "class": f"{type(model).__module__}.{type(model).__name__}"}
    joblib.dump(model, folder / "model.joblib")
    return {"format": "joblib"}


def _load_model(info: dict, files: dict[str, bytes]):
    """A model from its files' bytes (already checked against the signed manifest): never read again from disk, so a
    file swapped after the check is never unpickled."""
    if info["format"] == "keras":
        mod, cls = info["class"].rsplit(".", 1)
        if not mod.startswith("retention_core."):
            raise BundleError("This run refers to code outside the product; it was not saved here.")
        loader = getattr(importlib.import_module(mod), cls).load
        with tempfile.TemporaryDirectory(prefix="retention-model-") as private:  # readable by this user only
            for name, data in files.items():
                f = Path(private) / name
                f.parent.mkdir(parents=True, exist_ok=True)
                f.write_bytes(data)
            return loader(private)
    import joblib

    if "model.joblib" not in files:
        raise BundleError("The saved model has no model.joblib; the run is damaged. Retrain it.")
    try:
        model = joblib.load(io.BytesIO(files["model.joblib"]))
    except (AttributeError, ImportError, TypeError, KeyError) as exc:  # a class or module of another version
        raise BundleError(f"This run's model was saved by a version of the product that this one cannot read "
                          f"({type(exc).__name__}: {exc}); train the run again to score with it.") from None
    return model


def save_run(out: str | os.PathLike, result, *, schema, dataset, snapshot: dict, data_digest: str, train_config,
             threshold: float | None = None, name: str | None = None) -> Path:
    """Write a trained run to ``out`` atomically (temporary folder, then rename)."""
    target = Path(out).resolve()
    tmp = target.parent / f".{target.name}.tmp-{secrets.token_hex(4)}"
    tmp.mkdir(parents=True)
    try:
        model_info = {}
        for key, model in result.models.items():
            model_info[key] = _save_model(model, key, tmp / "models" / key)
        best = result.best
        thr = float(threshold if threshold is not None else result.thresholds[best])
        board = result.leaderboard
        refit = getattr(result, "refit", {}) or {}
        metrics = {"best_model": best, "validation": result.scheme, "threshold": thr, "refit": refit, "models": {}}
        if getattr(result, "tuning", None):  # the settings search: chosen settings and every trial
            metrics["tuning"] = result.tuning
        for _, r in board.iterrows():
            metrics["models"][r["model"]] = {k: _num(r[k]) for k in
                                             ["roc_auc", "pr_auc", "accuracy", "precision", "recall", "f1", "log_loss",
                                              "brier", "lift_top10", "recall_top10", "threshold", "fit_seconds",
                                              "tuned", "default_roc_auc"]
                                             if k in r}
        run = {"format": FORMAT_VERSION, "name": name or target.name, "created": pd.Timestamp.now().isoformat(),
               "kind": dataset.kind, "schema": schema.to_dict(), "snapshot": snapshot,
               "numeric": result.numeric, "categorical": result.categorical, "user_spec": dataset.config.get("user_spec"),
               "sequence_weeks": snapshot.get("sequence_weeks") if dataset.sequences is not None else None,
               "event_tokens": getattr(getattr(dataset.sequences, "tokens", None), "max_events", 0),
               "best_model": best, "threshold": thr, "thresholds": result.thresholds, "models": model_info,
               "data_digest": data_digest, "versions": versions(),
               "train_config": {k: v for k, v in vars(train_config).items()}, "errors": result.errors,
               "refit": refit}
        (tmp / "run.json").write_text(json.dumps(run, indent=1, default=str))
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=1, default=str))
        board.to_csv(tmp / "leaderboard.csv", index=False)
        val = result.val_frame.copy()
        val["churned"] = result.y_val
        for key, p in result.val_predictions.items():
            val[f"p:{key}"] = p
        val.to_parquet(tmp / "validation.parquet", index=False)
        if getattr(result, "reference", None):  # the training distribution, for drift monitoring
            (tmp / "reference.json").write_text(json.dumps(result.reference))
        if len(result.backtest):
            result.backtest.to_csv(tmp / "backtest.csv", index=False)
        _seal_and_place(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _seal_and_place(tmp: Path, target: Path) -> None:
    """Sign the manifest of the folder written in ``tmp`` and rename it into place under the lock (the previous run
    of that name, if any, is removed only once the new one is in place)."""
    files = {str(p.relative_to(tmp)): _sha(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
    manifest = {"format": FORMAT_VERSION, "files": files, "signature": _sign(files)}
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
    _fsync_tree(tmp)
    with _lock(target):
        old = None
        if target.exists():
            old = target.parent / f".{target.name}.old-{secrets.token_hex(4)}"
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def save_folder(out: str | os.PathLike, fill) -> Path:
    """Write a run of another kind than :func:`save_run` (uplift runs: :mod:`retention_core.uplift.training`) with the
    same guarantees: ``fill(folder)`` writes its files (``run.json`` and ``metrics.json`` among them) into a temporary
    folder, which is then signed and renamed into place atomically under the lock."""
    target = Path(out).resolve()
    tmp = target.parent / f".{target.name}.tmp-{secrets.token_hex(4)}"
    tmp.mkdir(parents=True)
    try:
        fill(tmp)
        _seal_and_place(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def save_model(model, key: str, folder: Path) -> dict:
    """Save one fitted model in ``folder`` (joblib, or Keras' own format); returns what :class:`Run` needs to load it."""
    return _save_model(model, key, folder)


def refit_note(refit: dict | None) -> str:
    if not refit:
        return "The saved models are the ones validated (not refitted)."
    span = f" ({refit['snapshots']} snapshot(s), {refit['from']} to {refit['to']})" if refit.get("snapshots") else ""
    return (f"Validation figures were measured before the refit; the saved models were then refitted on "
            f"{refit['rows']:,} labelled rows{span}, the validation rows included.")


def _num(v):
    try:
        return None if pd.isna(v) else float(v)
    except (TypeError, ValueError):
        return v


def _fsync_tree(root: Path) -> None:
    for p in root.rglob("*"):
        if p.is_file():
            with open(p, "rb") as fh:
                os.fsync(fh.fileno())


def _recover(target: Path) -> None:
    """A crash between the two renames of a save leaves the previous run under a backup name: put it back."""
    if target.exists():
        return
    olds = sorted(target.parent.glob(f".{target.name}.old-*"), key=lambda p: p.stat().st_mtime)
    if olds:
        os.replace(olds[-1], target)


def _signed_files(target: Path) -> dict[str, str]:
    """The manifest's file digests, after checking its signature."""
    man = target / "manifest.json"
    if not target.is_dir() or not man.exists():
        raise BundleError(f"{target.name} is not a saved run (no manifest). Train and save a run first.")
    try:
        manifest = json.loads(man.read_text())
        files = dict(manifest["files"])
    except (ValueError, KeyError, TypeError):
        raise BundleError(f"The manifest of run {target.name!r} is damaged; the run cannot be trusted.") from None
    if not hmac.compare_digest(str(manifest.get("signature", "")), _sign(files)):
        raise BundleError(f"Run {target.name!r} was not saved by this installation or its manifest was changed; "
                          "it will not be loaded. Retrain it here.")
    return files


def _changed(target: Path, rel: str) -> BundleError:
    return BundleError(f"File {rel} of run {target.name!r} was changed or removed since the run was saved; "
                       "it will not be loaded. Retrain or restore the run.")


def _read_checked(target: Path, rel: str, digest: str) -> bytes:
    """The bytes of one file of a run, read once and checked against its signed digest: callers use these bytes,
    never the file again."""
    try:
        data = (target / rel).read_bytes()
    except OSError:
        raise _changed(target, rel) from None
    if not hmac.compare_digest(hashlib.sha256(data).hexdigest(), digest):
        raise _changed(target, rel)
    return data


def _verify(target: Path) -> tuple[dict, dict[str, str]]:
    _recover(target)
    files = _signed_files(target)
    present = {str(p.relative_to(target)) for p in target.rglob("*") if p.is_file() and p.name != "manifest.json"}
    extra = present - set(files)
    if extra:
        raise BundleError(f"Run {target.name!r} holds files that were not saved with it ({', '.join(sorted(extra)[:3])}); "
                          "it will not be loaded.")
    for rel, digest in files.items():
        f = target / rel
        if not f.exists() or _sha(f) != digest:
            raise _changed(target, rel)
    if "run.json" not in files:
        raise _changed(target, "run.json")
    return json.loads(_read_checked(target, "run.json", files["run.json"])), files


def run_id(run) -> str:
    """The identity of one saved version of a run: the first 16 hex digits of the SHA-256 of its signed manifest
    (which holds the digest of every file), so a run saved again under the same name is another version. ``run`` is a
    run's folder or a loaded run (then the version it loaded, whatever the folder holds since) or anything with a
    ``run_id``; ``"missing"`` for a folder without a manifest. The one identity the app's caches, the scoring
    history, the service and the command line name a run version by."""
    if not isinstance(run, (str, os.PathLike)):
        known = getattr(run, "run_id", None)
        if isinstance(known, str):
            return known
        run = run.path
    try:
        return hashlib.sha256((Path(run) / "manifest.json").read_bytes()).hexdigest()[:16]
    except OSError:
        return "missing"


def verify_run(path: str | os.PathLike) -> dict:
    """Check the manifest signature and every file hash; return run.json. Raises BundleError when anything is off."""
    return _verify(Path(path).resolve())[0]


class Run:
    """A loaded run: its configuration, metrics and models. Every file is checked against the signed manifest when
    the run is opened, and again, from the very bytes that are then read, each time a model or table is loaded: a
    file swapped on disk after opening is refused and nothing in it runs."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path).resolve()
        self.info, self._files = _verify(self.path)
        #: The version loaded (:func:`run_id`), kept: a run saved again in the same folder later is another one.
        self.run_id = run_id(self.path)
        self.metrics = json.loads(self.read_bytes("metrics.json"))
        self._models: dict = {}

    def read_bytes(self, rel: str) -> bytes:
        """The bytes of one of the run's files, checked against the manifest signed when it was saved."""
        if rel not in self._files:
            raise BundleError(f"Run {self.path.name!r} has no file {rel}.")
        return _read_checked(self.path, rel, self._files[rel])

    def has_file(self, rel: str) -> bool:
        return rel in self._files

    @property
    def best(self) -> str:
        return self.info["best_model"]

    @property
    def task(self) -> str:
        """What the run's models predict: ``"churn"`` (churn models) or ``"uplift"`` (the effect of a contact)."""
        return str(self.info.get("task") or "churn")

    @property
    def threshold(self) -> float:
        return float(self.info["threshold"])

    def model(self, key: str | None = None):
        key = key or self.best
        if key not in self.info["models"]:
            raise BundleError(f"Run {self.path.name!r} has no model {key!r}; it has {', '.join(self.info['models'])}.")
        if key not in self._models:
            prefix = f"models/{key}/"
            on_disk = {str(p.relative_to(self.path)) for p in (self.path / "models" / key).rglob("*") if p.is_file()}
            extra = on_disk - set(self._files)
            if extra:
                raise BundleError(f"Run {self.path.name!r} holds files that were not saved with it "
                                  f"({', '.join(sorted(extra)[:3])}); model {key!r} will not be loaded.")
            files = {rel[len(prefix):]: self.read_bytes(rel) for rel in sorted(self._files) if rel.startswith(prefix)}
            model = _load_model(self.info["models"][key], files)
            if self.task == "churn" and not hasattr(model, "classes_"):
                raise BundleError(f"Model {key!r} of run {self.path.name!r} was saved by a version of the product "
                                  "whose models this one cannot score with; train the run again.")
            self._models[key] = model
        return self._models[key]

    def leaderboard(self) -> pd.DataFrame:
        return pd.read_csv(io.BytesIO(self.read_bytes("leaderboard.csv")))

    def validation(self) -> pd.DataFrame:
        return pd.read_parquet(io.BytesIO(self.read_bytes("validation.parquet")))

    def schema(self) -> Schema:
        return Schema.from_dict(self.info["schema"])


def load_run(path: str | os.PathLike) -> Run:
    return Run(path)


def list_runs(root: str | os.PathLike | None = None) -> pd.DataFrame:
    base = workspace(root) / "runs"
    rows = []
    for p in sorted(base.iterdir()) if base.exists() else []:
        if not p.is_dir() or p.name.startswith("."):
            continue
        try:
            info = json.loads((p / "run.json").read_text())
            m = json.loads((p / "metrics.json").read_text())
            best = info["best_model"]
            rows.append({"run": p.name, "created": info.get("created"), "kind": info.get("kind"), "best_model": best,
                         "roc_auc": m["models"].get(best, {}).get("roc_auc"), "models": len(info.get("models", {}))})
        except (OSError, ValueError, KeyError):
            rows.append({"run": p.name, "created": None, "kind": None, "best_model": "(damaged)", "roc_auc": None,
                         "models": 0})
    return pd.DataFrame(rows, columns=["run", "created", "kind", "best_model", "roc_auc", "models"])


def delete_run(name: str, root: str | os.PathLike | None = None) -> None:
    p = run_path(name, root)
    if not p.exists():
        raise BundleError(f"There is no run named {name!r}.")
    with _lock(p):
        trash = p.parent / f".{p.name}.del-{secrets.token_hex(4)}"
        os.replace(p, trash)
        shutil.rmtree(trash, ignore_errors=True)


#: Where the scoring service listens unless told otherwise (``python -m retention_core serve``).
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8000


def serve_command(run_dir: str | os.PathLike, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                  workers: int = 1, model: str | None = None) -> str:
    """The command that serves a run over HTTP (shown on the Models page), e.g.
    ``python -m retention_core serve workspace/runs/shop --port 8000``; the run's path is relative to the working
    folder when it lies inside it; ``model`` adds ``--model KEY`` (a model other than the run's best)."""
    path = Path(run_dir)
    try:
        path = path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        pass
    parts = ["python", "-m", "retention_core", "serve", shlex.quote(str(path))]
    if host != DEFAULT_HOST:
        parts += ["--host", shlex.quote(str(host))]
    parts += ["--port", str(int(port))]
    if workers != 1:
        parts += ["--workers", str(int(workers))]
    if model:
        parts += ["--model", shlex.quote(str(model))]
    return " ".join(parts)
