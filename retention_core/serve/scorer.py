"""A saved run loaded once for scoring requests: the model on one thread, features, threshold, deciles against the
validation users, reasons, and the recording of a scoring in the history."""
from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np
import pandas as pd

from ..base_rate import base_rate_check, churn_of_rows
from ..bundle import load_run, refit_note
from ..errors import BundleError, DataError, RetentionError
from ..models import REGISTRY, churn_probability, model_input
from ..monitor import HistoryBusy, record_scoring
from ..lifecycle import shop_gaps, shop_rhythm, stage_values
from ..scoring import above_threshold, features_for_run, scoring_date
from ..segments import decile_reference, deciles_against, ranks
from .limits import RECORD_TIMEOUT
from .parsing import events_frame, feature_frame
from .schemas import MAX_REASONS, RequestError, ScoreRequest


def one_thread_model(model: Any, _depth: int = 0, _seen: set | None = None) -> None:
    """Let every part of a loaded model predict on one thread: estimators with ``n_jobs`` (a random forest's -1 means
    a thread per core) and histogram gradient boosting's binning, which keeps the thread count it was trained with."""
    seen = set() if _seen is None else _seen
    if id(model) in seen or _depth > 12 or isinstance(model, (np.ndarray, pd.DataFrame, pd.Series, str, bytes)):
        return
    seen.add(id(model))
    if isinstance(model, (list, tuple)):
        parts = list(model)
    elif isinstance(model, dict):
        parts = list(model.values())
    else:
        module = type(model).__module__ or ""
        if not module.startswith(("sklearn", "retention_core")):
            return
        if isinstance(getattr(model, "n_jobs", None), int):
            model.n_jobs = 1
        if hasattr(model, "n_threads") and module.startswith("sklearn.ensemble._hist_gradient_boosting"):
            model.n_threads = 1
        parts = list(vars(model).values()) if hasattr(model, "__dict__") else []
    for part in parts:
        one_thread_model(part, _depth + 1, seen)


class Scorer:
    """A saved run loaded once for scoring requests: its model (on one thread), features, threshold and the
    probabilities of its validation users (the reference for risk deciles)."""

    def __init__(self, run_dir: str | os.PathLike, model: str | None = None, *,
                 record_timeout: float = RECORD_TIMEOUT):
        self.run = load_run(run_dir)  # refuses a run whose files changed or that was not saved here
        info = self.run.info
        self.key = served_model(self.run, model)
        self.model = self.run.model(self.key)
        #: Seconds a recording waits for the scoring history's lock before the scores are answered unrecorded.
        self.record_timeout = float(record_timeout)
        one_thread_model(self.model)
        self.kind = info["kind"]
        self.numeric, self.categorical = list(info["numeric"]), list(info["categorical"])
        self.features = self.numeric + self.categorical
        self.threshold = float(info.get("thresholds", {}).get(self.key, self.run.threshold))
        self.needs_sequences = bool(REGISTRY[self.key].needs_sequences) if self.key in REGISTRY else False
        self.schema = self.run.schema()
        self._validation = self.run.validation()
        self.reference, self.reference_source = self._reference()
        self.validation_churn = churn_of_rows(self._validation, self.key)  # read once, for every answer's check
        #: The usual gaps of the run's validation users: each customer's lifecycle stage is measured against the
        #: shop's rhythm as the run learned it, as batch scoring does (retention_core.scoring.stage_reference).
        self.rhythm = shop_rhythm(shop_gaps(self._validation)) if self.kind == "events" else None
        self.cancel_ids = self._cancel_convention()
        self._explanation = None
        self._lock = threading.Lock()

    def _reference(self) -> tuple[np.ndarray, str]:
        """The validation users' probabilities, sorted: scored by the model being served when their rows hold its
        features (it may have been refitted after validation), else as saved with the run."""
        val = self._validation
        if not self.needs_sequences and all(c in val.columns for c in self.features) and len(val):
            p = self.predict(val[self.features], None)
            source = f"the run's {len(p):,} validation users, scored by the served model"
        else:
            p = val[f"p:{self.key}"].to_numpy(dtype="float64")
            source = f"the run's {len(p):,} validation users, as scored at validation"
        return decile_reference(p), source

    def _cancel_convention(self) -> bool | None:
        """Whether order ids 'C' + digit mark cancellations in this shop, as the run's log showed: one customer's
        lines cannot tell (the rule holds when such lines are a minority). Known when the log has no event type, so
        that its cancellations came from order ids alone, and some validation user cancelled; else decided per request
        as batch scoring decides per file."""
        val, roles = self._validation, self.schema.roles
        if self.kind != "events" or not roles.get("order_id") or roles.get("event_type") \
                or "cancels_total" not in val.columns:
            return None
        return True if bool((val["cancels_total"] > 0).any()) else None

    def predict(self, X: pd.DataFrame, sequences) -> np.ndarray:
        """Churn probabilities as ``score`` computes them, without refitting BG/NBD on the request."""
        return np.clip(churn_probability(self.model, model_input(self.key, X, sequences)), 0, 1)

    def deciles(self, p: np.ndarray) -> np.ndarray:
        """The library's decile rule (:func:`retention_core.segments.deciles_against`) against the validation users:
        1 + the tenths of them that score higher than each probability (1 = most at risk)."""
        return deciles_against(p, self.reference)

    # -- requests -----------------------------------------------------------------------------------------------
    def score(self, req: ScoreRequest) -> dict:
        """The answer to one scoring request (``RetentionError`` naming the field at fault for a request that cannot
        be scored)."""
        try:
            return self._score(req)
        except RetentionError as exc:
            if not exc.field and not getattr(exc, "loc", ()):
                exc.field = "events" if req.events is not None else "users"
            if exc.roles:
                cols = [f"{self.schema.roles[r]!r} ({r.replace('_', ' ')})" for r in exc.roles
                        if self.schema.roles.get(r)]
                exc.args = (f"{exc} This run reads {', '.join(cols)}." if cols else str(exc),)
            raise

    def _score(self, req: ScoreRequest) -> dict:
        if (req.events is None) == (req.users is None):
            raise RequestError("send either 'events' (raw rows of the log) or 'users' (feature rows), one of the "
                               "two.", ("users" if req.events is not None else "events",))
        if req.events is not None:
            if self.kind != "events":
                raise RequestError("this run was trained on a user table: send 'users' rows with its columns.",
                                   ("events",))
            df = self._table(req.events, "events")
            frame, seq = features_for_run(self.run, df, as_of=req.as_of or pd.Timestamp.now(),
                                          cancel_ids=self.cancel_ids)
            ids, X, as_of = frame["user_id"].astype(str).tolist(), frame[self.features], scoring_date(frame)
        elif self.kind == "events":
            ids, X = feature_frame(req.users, self.numeric, self.categorical)
            frame, seq, as_of = X, None, req.as_of
        else:
            frame, seq = features_for_run(self.run, self._table(req.users, "users"))
            ids, X, as_of = frame["user_id"].astype(str).tolist(), frame[self.features], req.as_of
        if self.needs_sequences and seq is None:
            raise RequestError(f"model {self.key!r} reads each user's weekly activity: send raw 'events'.",
                               ("users",))
        if req.record and as_of is None and self.kind == "events":
            raise RequestError("give 'as_of' to record a scoring of feature rows: outcomes are matched from it.",
                               ("as_of",))
        p = self.predict(X, seq)
        reasons = self.reasons(frame, seq, req.reasons) if req.reasons else None
        rows = self._rows(ids, p, reasons, frame)
        check = base_rate_check(self.run, p, validation=self.validation_churn) if self.validation_churn else None
        answer = {"model": self.key, "as_of": as_of, "scores": rows,
                  "churn_check": check.as_dict() if check else None}
        if req.record:
            answer["recording"] = self._record(rows, frame, as_of)
        return answer

    def _record(self, rows: list[dict], frame: pd.DataFrame, as_of) -> dict:
        """Keep the scoring in the history the monitor reads (the same store as batch scoring), as of its date,
        waiting for another process's write at most :attr:`record_timeout` seconds. Past that, or when the history
        cannot be written, the scores still stand: the answer says the scoring was skipped, and why. Runs on a worker
        thread (the route sends every request that asks to be recorded there), never on the event loop."""
        scores = pd.DataFrame({"user_id": [r["user_id"] for r in rows],
                               "churn_probability": [r["churn_probability"] for r in rows],
                               "risk_decile": [r["risk_decile"] for r in rows]})
        scores["rank"] = ranks(scores["churn_probability"])
        segments = frame if "user_id" in frame.columns else None
        try:
            done = record_scoring(self.run, scores, model=self.key, as_of=as_of, frame=segments, source="service",
                                  lock_timeout=self.record_timeout)
        except HistoryBusy:
            return {"status": "skipped", "reason": f"the scoring history stayed busy for {self.record_timeout:g} s "
                    "(another scoring or report was using it): these scores were not recorded; send the request "
                    "again to record them."}
        except DataError as exc:  # the history cannot be written (unreadable, from a newer version)
            return {"status": "skipped", "reason": " ".join(str(exc).split())}
        return {"status": "recorded", "scoring_id": done.scoring_id}

    def _table(self, rows: list[dict], field: str) -> pd.DataFrame:
        df = events_frame(rows, field)
        needed = ("user_id", "timestamp") if self.kind == "events" else ("user_id",)
        for role in needed:
            col = self.schema.roles.get(role)
            if col and col not in df.columns:
                raise RequestError(f"each row needs the column {col!r} (the {role.replace('_', ' ')}); "
                                   "GET /v1/model lists the columns this run reads.", (field, 0, col))
        return df

    def _rows(self, ids: list[str], p: np.ndarray, reasons: list[list[str]] | None, frame: pd.DataFrame) -> list[dict]:
        """One answer row per user: probability, decile against the validation users, whether it is at or above the
        threshold (the library's rule for a selection by threshold), the lifecycle stage (the library's rules, against
        the shop's rhythm of the run's validation users) and the reasons."""
        decile = self.deciles(p)
        at_risk = above_threshold(p, self.threshold)
        stage = stage_values(frame, reference=self.rhythm)
        return [{"user_id": u, "churn_probability": float(p[i]), "risk_decile": int(decile[i]),
                 "at_risk": bool(at_risk[i]), "stage": stage[i], "reasons": reasons[i] if reasons else []}
                for i, u in enumerate(ids)]

    def reasons(self, frame: pd.DataFrame, seq, n: int) -> list[list[str]]:
        """The top ``n`` reasons of each row, from the library's one explanation of scored users: the model served,
        as it scored them (a request is never refitted on), against the run's validation users; models that read
        weekly activity against the users of the request, as in batch scoring."""
        from ..explain import ScoringExplanation

        if self.needs_sequences:
            return ScoringExplanation(self.run, self.key, frame, seq).per_user(frame, n, seq)
        return self.explanation().per_user(frame, n)

    def explanation(self):
        """The explanation of the model served, built once on first use (SHAP background: a sample of the
        validation users)."""
        with self._lock:
            if self._explanation is None:
                from ..explain import ScoringExplanation

                self._explanation = ScoringExplanation(self.run, self.key)
            return self._explanation

    def warm(self) -> None:
        """Run each path once (features of a tiny log, the model) so the first request is as fast as the next."""
        if self.kind != "events":
            return
        val, roles = self._validation, self.schema.roles
        end = pd.Timestamp(val["snapshot_date"].max()) if "snapshot_date" in val.columns and len(val) \
            else pd.Timestamp("2020-01-01")
        values = {"user_id": "warm-up", "order_id": "1", "quantity": "1", "price": "1", "amount": "1",
                  "event_type": (self.schema.purchase_values or ["purchase"])[0], "product": "P1", "category": "C1"}
        base = {roles[r]: v for r, v in values.items() if roles.get(r)} | {a: "x" for a in self.schema.attributes}
        rows = [base | {roles["timestamp"]: str(end - pd.Timedelta(days=d))} for d in (40, 1)]
        try:
            frame, seq = features_for_run(self.run, events_frame(rows), as_of=end)
            self.predict(frame[self.features], seq)
        except (RetentionError, KeyError, ValueError):  # a log the warm-up cannot imitate: the first request warms
            pass

    # -- what the run is --------------------------------------------------------------------------------------------
    def describe(self) -> dict:
        """The answer of /v1/model."""
        info, metrics = self.run.info, self.run.metrics
        spec = REGISTRY.get(self.key)
        snap = info.get("snapshot") or {}
        out = {"run": info.get("name") or self.run.path.name, "model": self.key,
               "model_label": spec.label if spec else self.key, "best_model": self.run.best,
               "models": sorted(info.get("models", {})), "kind": self.kind,
               "horizon_days": snap.get("horizon_days"), "lookback_days": snap.get("lookback_days"),
               "threshold": self.threshold,
               "features": [{"name": c, "type": "number"} for c in self.numeric]
               + [{"name": c, "type": "text"} for c in self.categorical],
               "columns": self._columns(), "trained": info.get("created"), "refit": refit_note(info.get("refit")),
               "validation": {"scheme": metrics.get("validation"), "metrics": metrics.get("models", {}).get(self.key)},
               "risk_deciles": f"against {self.reference_source}",
               "population_refit": False,
               "notes": ["BG/NBD (alone, in an ensemble or calibrated) keeps its trained parameters here; batch "
                         "scoring refits it on the whole population scored."] if self._uses_bgnbd() else [],
               "reads_weekly_activity": self.needs_sequences,
               "limits": {"max_reasons": MAX_REASONS}}
        return out

    def _columns(self) -> list[dict]:
        """The raw columns a request row carries: the saved column of each role (required: user id, timestamp)."""
        s = self.schema
        required = {"user_id", "timestamp"} if self.kind == "events" else {"user_id"}
        out = [{"column": c, "role": r, "required": r in required} for r, c in s.roles.items()
               if c and r != "label"]
        out += [{"column": a, "role": "attribute", "required": False} for a in s.attributes]
        if self.kind == "users":
            spec = self.run.info.get("user_spec") or {}
            taken = {c["column"] for c in out}
            out += [{"column": c, "role": "feature", "required": True}
                    for c in spec.get("numeric", []) + spec.get("categorical", []) + list(spec.get("dates", {}))
                    if c not in taken]
        return out

    def _uses_bgnbd(self) -> bool:
        base = getattr(self.model, "base_", self.model)  # a calibrated model wraps its base
        return self.key in ("bgnbd", "ensemble") or type(base).__name__ == "BGNBDModel"


def served_model(run, key: str | None) -> str:
    """The model a service serves: ``key`` (``serve --model``), else the run's best; a key the run does not have
    raises :class:`BundleError` listing the run's models (checked without loading any)."""
    if key is None:
        return run.best
    models = list(run.info.get("models", {}))
    if key not in models:
        raise BundleError(f"Run {run.path.name!r} has no model {key!r}; it has {', '.join(models)}.")
    return key
