"""Real-time churn scoring over HTTP from a saved run: ``python -m retention_core serve RUN_DIR``.

A shop's site or CRM asks, at the moment a customer logs in or calls support, how likely that customer is to leave
and why. The service verifies and loads a signed run once, warms its model and answers:

- ``GET /v1/health`` -> ``{"status": "ok"}``;
- ``GET /v1/model`` -> the run, its model, horizon, threshold, features with their types, the raw columns an event
  needs, when it was trained and its validation metrics;
- ``POST /v1/score`` with ``{"events": [raw rows of the run's log], "as_of"?: "YYYY-MM-DD", "reasons"?: N}`` or
  ``{"users": [{"user_id": ..., feature: value, ...}]}`` -> ``{"model", "as_of", "scores": [{"user_id",
  "churn_probability", "risk_decile", "at_risk", "reasons"}]}``. OpenAPI pages at ``/docs``.

The same numbers as batch scoring. Raw rows arrive as JSON, often every cell a string as a CSV reader gives it; they
are typed exactly as the file reader types a CSV's text cells (the same missing-value markers, then
:func:`retention_core.cells.coerce_types`) and their features computed by
:func:`retention_core.scoring.features_for_run`, the code ``score`` runs, with the run's saved column roles. Feature
rows go straight to the model in the columns and types batch scoring gives it. One difference, on purpose: BG/NBD
(alone, in the ensemble or calibrated) keeps the parameters it was trained with, where batch scoring refits it on the
whole population scored; a request of a few users is no population.

Risk deciles: one user has no population to be ranked in, so a user's decile places their probability among the
run's validation users scored by the same model (decile 1: fewer than 10% of them score higher; decile 10: 90% or
more do), the batch rule of :func:`retention_core.segments.risk_deciles` with the validation users as the population.

Without an ``as_of`` date, raw events are scored as of now (every event up to the request counts): a request holds one
customer's history, whose last event is not the present. ``score`` on a file defaults to the end of the file instead.

Bad requests get 422 with the field named (``message`` says which, ``detail`` lists each error's location); bodies
over the size limit get 413, checked from ``Content-Length`` and counted as the body arrives, before any parsing;
with a token (``RETENTION_API_TOKEN``), /v1/model and /v1/score answer 401 to a request without
``Authorization: Bearer <token>`` (/v1/health and the OpenAPI pages stay open, for health checks and reading).

Speed: one math-library thread per worker (:mod:`retention_core.threads`), every part of the model predicting on one
thread, one shared in-memory DuckDB database for the feature queries (a cursor per request), and small requests scored
on the event loop without a thread hand-off; big ones go to a thread so health checks keep answering.
"""
from __future__ import annotations

import gc
import hmac
import os
import re
import threading
from datetime import date
from itertools import chain
from operator import itemgetter
from typing import Any, Union

import numpy as np
import orjson
import pandas as pd
from fastapi import FastAPI, HTTPException, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
)

# serve_command (in bundle, so the app shows it without loading the web stack) is part of the service's API too
from .bundle import DEFAULT_HOST, DEFAULT_PORT, load_run, refit_note, serve_command  # noqa: F401
from .cells import coerce_types
from .errors import DataError, RetentionError
from .models import REGISTRY
from .monitor import record_scoring
from .scoring import features_for_run, scoring_date
from .text_tables import NA_SET
from .threads import one_math_thread

#: Largest request body accepted (bytes); ``RETENTION_API_MAX_BODY_MB`` changes it.
MAX_BODY_BYTES = 20_000_000
MAX_BODY_ENV = "RETENTION_API_MAX_BODY_MB"
TOKEN_ENV = "RETENTION_API_TOKEN"
#: The run a worker loads when uvicorn starts several (``app_from_environment``).
RUN_ENV = "RETENTION_SERVE_RUN"
MAX_REASONS = 10
#: Requests with more rows than this are scored on a worker thread, so the event loop keeps answering.
INLINE_ROWS = 2_000
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

Cell = Union[StrictStr, StrictInt, StrictFloat, StrictBool, None]


# ----------------------------------------------------------------------------------------------- request and answer
class ScoreRequest(BaseModel):
    """Either raw ``events`` (the run's log columns) or ``users`` (feature rows, or user-table rows for a run
    trained on a user table)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"events": [{"Invoice": "489434", "StockCode": "85048", "Quantity": "12", "InvoiceDate": "2010-06-01 07:45:00",
                     "Price": "6.95", "Customer ID": "13085", "Country": "United Kingdom"}],
         "as_of": "2010-09-10", "reasons": 3},
        {"users": [{"user_id": "13085", "recency_days": 12.5, "orders_total": 4, "Country": "United Kingdom"}]}]})

    events: list[dict[str, Cell]] | None = Field(
        None, min_length=1, description="Raw rows of the run's event log (GET /v1/model lists its columns), several "
        "users at once if you like; cells as text (as a CSV holds them, '' or 'NA' for missing) or JSON numbers.")
    users: list[dict[str, Cell]] | None = Field(
        None, min_length=1, description="One row per user: 'user_id' and every feature of the run (null when not "
        "known); for a run trained on a user table, the table's own columns.")
    as_of: str | None = Field(None, description="Score as of this date, YYYY-MM-DD: events before it count (raw "
                              "events; default: now).", examples=["2010-09-10"])
    reasons: int = Field(0, ge=0, le=MAX_REASONS, description="Top reasons per user (0 = none).")
    record: bool = Field(False, description="Keep this scoring in the workspace's scoring history (as `score` does), "
                         "so `monitor` can check it once the horizon has passed; recorded after the scores are made.")

    @field_validator("as_of")
    @classmethod
    def _calendar_date(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not _DATE.match(v):
            raise ValueError(f"write the date as YYYY-MM-DD, e.g. 2010-09-10 (got {v[:40]!r})")
        try:
            date.fromisoformat(v)
        except ValueError:
            raise ValueError(f"{v!r} is not a date on the calendar") from None
        return v


class UserScore(BaseModel):
    user_id: str
    churn_probability: float = Field(description="Probability that the user does not come back within the horizon.")
    risk_decile: int = Field(description="1 = among the 10% of the run's validation users most at risk, 10 = least.")
    at_risk: bool = Field(description="churn_probability >= the run's threshold.")
    reasons: list[str] = Field(description="Why, most important first (when asked with 'reasons').")


class ScoreAnswer(BaseModel):
    model: str
    as_of: str | None
    scores: list[UserScore]


class RequestError(DataError):
    """A request that cannot be scored; ``loc`` is where in the body the fault is (``("users", 3, "recency_days")``)."""

    def __init__(self, message: str, loc: tuple = ()):
        super().__init__(message, field=_where(loc) or None)
        self.loc = tuple(loc)


def _where(loc) -> str:
    """A location in the body as text: ``users[3].recency_days``."""
    out = ""
    for part in loc:
        if part == "body" and not out:
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# ----------------------------------------------------------------------------------------------- rows to tables
def events_frame(records: list[dict], field: str = "events") -> pd.DataFrame:
    """JSON rows as the table the file reader would give for the same cells in a CSV: column names trimmed, the
    same missing-value markers ('' 'NA' 'null' ...) missing, then the reader's own typing (:func:`coerce_types`)."""
    columns: dict[str, list] = {}
    n = len(records)
    for i, row in enumerate(records):
        for key, v in row.items():
            col = columns.get(key)
            if col is None:
                col = columns[key] = [None] * n
            col[i] = None if v.__class__ is str and v in NA_SET else v
    names = [str(c).strip() for c in columns]
    if len(set(names)) < len(names):
        dup = next(name for name in names if names.count(name) > 1)
        raise RequestError(f"two columns are both named {dup!r} once trimmed.", (field,))
    return coerce_types(pd.DataFrame(dict(zip(names, columns.values())), index=pd.RangeIndex(n)))


def feature_frame(rows: list[dict], numeric: list[str], categorical: list[str], field: str = "users"
                  ) -> tuple[list[str], pd.DataFrame]:
    """User ids and the model's input table from feature rows: numbers (null: unknown) and category texts, in the
    columns and types batch scoring gives the model (float64; text or None). Unknown, missing or mistyped features
    raise :class:`RequestError` naming the row and feature."""
    known = {"user_id", *numeric, *categorical}
    for i, row in enumerate(rows):
        if len(row) != len(known) or row.keys() != known:
            _check_keys(row, known, i, field)
    ids = [row["user_id"] for row in rows]
    if not set(map(type, ids)) <= {str, int} or "" in ids:
        i = next(i for i, u in enumerate(ids) if type(u) not in (str, int) or u == "")
        raise RequestError("give the user's id as text or a whole number.", (field, i, "user_id"))
    take = itemgetter(*numeric) if len(numeric) > 1 else (lambda row: tuple(row[c] for c in numeric))
    values = [take(row) for row in rows]
    if not set(map(type, chain.from_iterable(values))) <= {int, float, type(None)}:
        for i, vals in enumerate(values):  # find the first cell that is not a number
            for v, c in zip(vals, numeric):
                _number(v, (field, i, c))
    num = np.array(values, dtype="float64").reshape(len(rows), len(numeric))  # null -> NaN
    X = pd.DataFrame(num, columns=numeric, copy=False)
    for c in categorical:
        cells = [row[c] for row in rows]
        if set(map(type, cells)) <= {str, type(None)}:  # the usual case, checked in one pass
            X[c] = np.array([v if v is None else (v.strip() or None) for v in cells], dtype=object)
        else:
            X[c] = np.array([_category(v, (field, i, c)) for i, v in enumerate(cells)], dtype=object)
    return [str(u) for u in ids], X


def _check_keys(row: dict, known: set, i: int, field: str) -> None:
    extra = [k for k in row if k not in known]
    if extra:
        raise RequestError(f"{extra[0]!r} is not a feature of this run (GET /v1/model lists them).",
                           (field, i, extra[0]))
    missing = [k for k in known if k not in row]
    raise RequestError("missing: send every feature of the run, null for a value that is not known.",
                       (field, i, sorted(missing)[0] if "user_id" not in missing else "user_id"))


def _number(v, loc: tuple) -> float:
    if v is None:
        return np.nan
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise RequestError(f"a number or null, got {v!r}.", loc)
    return v


def _category(v, loc: tuple):
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (str, int)):
        raise RequestError(f"a text value or null, got {v!r}.", loc)
    v = str(v).strip()
    return v or None


# ----------------------------------------------------------------------------------------------- the loaded run
def one_thread_model(model: Any, _depth: int = 0, _seen: set | None = None) -> None:
    """Let every part of a loaded model predict on one thread: estimators with ``n_jobs`` (a random forest's -1 means
    a thread per core) and histogram gradient boosting's binning, which keeps the thread count it was trained with."""
    seen = set() if _seen is None else _seen
    if id(model) in seen or _depth > 6 or isinstance(model, (np.ndarray, pd.DataFrame, pd.Series, str, bytes)):
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

    def __init__(self, run_dir: str | os.PathLike, model: str | None = None):
        self.run = load_run(run_dir)  # refuses a run whose files changed or that was not saved here
        info = self.run.info
        self.key = model or self.run.best
        self.model = self.run.model(self.key)  # an unknown key: a message listing the run's models
        one_thread_model(self.model)
        self.kind = info["kind"]
        self.numeric, self.categorical = list(info["numeric"]), list(info["categorical"])
        self.features = self.numeric + self.categorical
        self.threshold = float(info.get("thresholds", {}).get(self.key, self.run.threshold))
        self.needs_sequences = bool(REGISTRY[self.key].needs_sequences) if self.key in REGISTRY else False
        self.schema = self.run.schema()
        self._validation = self.run.validation()
        self.reference, self.reference_source = self._reference()
        self.cancel_ids = self._cancel_convention()
        self._explainer = None
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
        p = np.sort(p[np.isfinite(p)])
        return p, source

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
        m = self.model
        p = m.predict_proba(X, sequences=sequences) if self.needs_sequences else m.predict_proba(X)
        return np.clip(np.asarray(p, dtype="float64"), 0, 1)

    def deciles(self, p: np.ndarray) -> np.ndarray:
        """1 + the tenths of the validation users that score higher than each probability (1 = most at risk)."""
        ref = self.reference
        if not len(ref):
            return np.ones(len(p), dtype=int)
        higher = len(ref) - np.searchsorted(ref, p, side="right")
        return np.minimum(higher * 10 // len(ref) + 1, 10).astype(int)

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
        p = self.predict(X, seq)
        reasons = self.reasons(frame, seq, req.reasons) if req.reasons else None
        rows = self._rows(ids, p, reasons)
        if req.record:
            self._record(rows, frame, as_of)
        return {"model": self.key, "as_of": as_of, "scores": rows}

    def _record(self, rows: list[dict], frame: pd.DataFrame, as_of) -> None:
        """Keep the scoring in the history the monitor reads (the same store as batch scoring), as of its date."""
        scores = pd.DataFrame({"user_id": [r["user_id"] for r in rows],
                               "churn_probability": [r["churn_probability"] for r in rows],
                               "risk_decile": [r["risk_decile"] for r in rows]})
        scores["rank"] = scores["churn_probability"].rank(ascending=False, method="first").astype(int)
        if as_of is None and self.kind == "events":
            raise RequestError("give 'as_of' to record a scoring of feature rows: outcomes are matched from it.",
                               ("as_of",))
        segments = frame if "user_id" in frame.columns else None
        record_scoring(self.run, scores, model=self.key, as_of=as_of, frame=segments, source="service")

    def _table(self, rows: list[dict], field: str) -> pd.DataFrame:
        df = events_frame(rows, field)
        needed = ("user_id", "timestamp") if self.kind == "events" else ("user_id",)
        for role in needed:
            col = self.schema.roles.get(role)
            if col and col not in df.columns:
                raise RequestError(f"each row needs the column {col!r} (the {role.replace('_', ' ')}); "
                                   "GET /v1/model lists the columns this run reads.", (field, 0, col))
        return df

    def _rows(self, ids: list[str], p: np.ndarray, reasons: list[list[str]] | None) -> list[dict]:
        decile = self.deciles(p)
        at_risk = p >= self.threshold
        return [{"user_id": u, "churn_probability": float(p[i]), "risk_decile": int(decile[i]),
                 "at_risk": bool(at_risk[i]), "reasons": reasons[i] if reasons else []} for i, u in enumerate(ids)]

    def reasons(self, frame: pd.DataFrame, seq, n: int) -> list[list[str]]:
        """The top ``n`` reasons of each row (explained against the run's validation users; models that read weekly
        activity against the users of the request, as in batch scoring)."""
        from .explain import top_reasons

        if self.needs_sequences:
            lists = top_reasons(self.run, frame, n, seq, model=self.key)
        else:
            lists = top_reasons(self.explainer(), frame, n)
        return [[lists[k][i] for k in range(len(lists)) if lists[k][i]] for i in range(len(frame))]

    def explainer(self):
        """The run's explainer, built once on first use (SHAP background: a sample of the validation users)."""
        with self._lock:
            if self._explainer is None:
                from .explain import explainer_for_run

                rows = self._validation.drop(columns=[c for c in self._validation.columns
                                                      if str(c).startswith("p:") or c == "churned"])
                self._explainer = explainer_for_run(self.run, rows, model=self.key)
            return self._explainer

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
               "model_label": spec.label if spec else self.key, "kind": self.kind,
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
               "limits": {"max_body_bytes": None, "max_reasons": MAX_REASONS}}
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


# ----------------------------------------------------------------------------------------------- HTTP
def _json_error(status: int, message: str, detail=None, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"message": message, "detail": detail if detail is not None else message}, status_code=status,
                        headers=headers)


async def _validation_error(request, exc: RequestValidationError) -> JSONResponse:
    errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
              for e in exc.errors()]
    first = errors[0] if errors else {"loc": ["body"], "msg": "the request body is not valid", "type": ""}
    if first["type"] == "json_invalid":
        return _json_error(422, f"body: not valid JSON ({first['msg']})", errors)
    where = _where(first["loc"]) or "body"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return _json_error(422, f"{where}: {first['msg']}{more}", errors)


async def _retention_error(request, exc: RetentionError) -> JSONResponse:
    loc = list(getattr(exc, "loc", ()) or ([exc.field] if exc.field else []))
    text = " ".join(str(exc).split())
    where = _where(loc)
    return _json_error(422, f"{where}: {text}" if where else text,
                       [{"loc": ["body", *loc], "msg": text, "type": "value_error"}])


class BodyLimit:
    """ASGI middleware: 413 for a body over ``max_bytes``, from ``Content-Length`` when the client sends it and by
    counting the body as it arrives otherwise; the app then reads the body from memory, never past the limit."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, int(max_bytes)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                return await self._refuse(scope, receive, send)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                return await self._refuse(scope, receive, send)
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body, given = b"".join(chunks), [False]

        async def replay():
            if not given[0]:
                given[0] = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope, receive, send):
        mb = self.max_bytes / 1e6
        response = _json_error(413, f"The request body is over the limit of {mb:g} MB: send fewer rows per request "
                               f"(the limit is set with {MAX_BODY_ENV}).", headers={"Connection": "close"})
        await response(scope, receive, send)


def _bearer_check(token: str | None):
    """A dependency that answers 401 unless the request carries ``Authorization: Bearer <token>`` (compared in
    constant time)."""
    expected = token.encode()
    scheme = HTTPBearer(auto_error=False, description=f"The token set in {TOKEN_ENV} when the service started.")

    async def check(credentials: HTTPAuthorizationCredentials | None = Security(scheme)) -> None:
        given = credentials.credentials.encode() if credentials is not None else b""
        if not hmac.compare_digest(given, expected):
            raise HTTPException(401, "Send the service's token: Authorization: Bearer <token>.",
                                headers={"WWW-Authenticate": "Bearer"})

    return check


def create_app(run_dir: str | os.PathLike, *, token: str | None = None, max_body_bytes: int | None = None,
               model: str | None = None, warm: bool = True) -> FastAPI:
    """The scoring service for a saved run (its best model unless ``model`` is named).

    The run is verified and loaded here, once: a run that was changed, or not saved by this installation, raises
    :class:`~retention_core.errors.BundleError` before anything listens. ``token`` (default: ``RETENTION_API_TOKEN``)
    protects /v1/model and /v1/score; ``max_body_bytes`` (default: ``RETENTION_API_MAX_BODY_MB`` or 20 MB) bounds
    each request. A request with ``"record": true`` is kept in the workspace's scoring history.
    """
    one_math_thread()
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)  # the pools NumPy and scikit-learn already started
    from .features import share_database

    share_database(threads=1)
    scorer = Scorer(run_dir, model=model)
    if warm:
        scorer.warm()
    gc.collect()
    gc.freeze()  # the loaded run never changes: later collections skip it
    token = token if token is not None else (os.environ.get(TOKEN_ENV) or None)
    limit = int(max_body_bytes if max_body_bytes is not None else
                float(os.environ.get(MAX_BODY_ENV) or MAX_BODY_BYTES / 1e6) * 1e6)
    info = scorer.describe()
    info["limits"]["max_body_bytes"] = limit
    app = FastAPI(title="Retention studio scoring service", version="1",
                  description=f"Churn probability, risk decile and reasons per user from run {info['run']!r} "
                              f"(model {scorer.key}).")
    app.add_middleware(BodyLimit, max_bytes=limit)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(RetentionError, _retention_error)
    app.state.scorer = scorer
    guard = [Security(_bearer_check(token))] if token else []
    _routes(app, scorer, info, guard)
    return app


def _routes(app: FastAPI, scorer: Scorer, info: dict, guard: list) -> None:
    @app.get("/v1/health", summary="Is the service up?")
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/v1/model", summary="The run and model being served", dependencies=guard)
    async def model_info() -> dict:
        return info

    body_schema = {"required": True, "content": {"application/json": {"schema": ScoreRequest.model_json_schema()}}}

    @app.post("/v1/score", summary="Churn probability, risk decile and reasons per user", dependencies=guard,
              responses={200: {"model": ScoreAnswer}}, openapi_extra={"requestBody": body_schema})
    async def score(request: Request) -> JSONResponse:
        req = parse_request(await request.body())
        rows = len(req.events or ()) + len(req.users or ())
        if rows > INLINE_ROWS or req.reasons:
            return _json(await run_in_threadpool(scorer.score, req))
        return _json(scorer.score(req))


_DIGITS_AND_POINTS = bytes(ord("9") if chr(i).isdigit() and i < 128 else ord(".") if i == ord(".") else ord(" ")
                           for i in range(256))
_INTEGER_OF_19_DIGITS = b" " + b"9" * 19


def _may_hold_huge_integer(body: bytes) -> bool:
    """Whether the body may hold an integer beyond 64 bits (19 digits or more not after a decimal point), which
    orjson reads as a float where the request model keeps it whole: such bodies go to pydantic. One pass in C (a
    regular expression takes several milliseconds on a 1,000-user body); a long digit run inside a text cell only
    sends the body down the slower path."""
    return _INTEGER_OF_19_DIGITS in body.translate(_DIGITS_AND_POINTS)


_CELL_CLASSES = frozenset({str, int, float, bool, type(None)})


def _plain_rows(rows) -> bool:
    """Whether ``rows`` is what the request's ``events``/``users`` field accepts: absent, or a non-empty list of
    objects whose cells are text, numbers, true/false or null (the check the model's ``Cell`` type makes)."""
    if rows is None:
        return True
    if rows.__class__ is not list or not rows or not all(r.__class__ is dict for r in rows):
        return False
    return set(map(type, chain.from_iterable(r.values() for r in rows))) <= _CELL_CLASSES


def _json(answer: dict) -> Response:
    """The answer as JSON, written by orjson (a 1,000-user answer several times faster than the standard library)."""
    return Response(orjson.dumps(answer), media_type="application/json")


def parse_request(body: bytes) -> ScoreRequest:
    """The request from its JSON text, checked by :class:`ScoreRequest`.

    The body is read by orjson; when its rows are plain (a list of objects of cells), only the rest of the request
    goes through the model's checks and the rows are checked in one pass over their cell types: a 1,000-user body
    in about a quarter of the time pydantic's own parser takes. Anything else (bad JSON, a wrong type anywhere) is
    parsed by pydantic, whose errors name each field at fault.
    """
    try:
        data = None if _may_hold_huge_integer(body) else orjson.loads(body)
    except orjson.JSONDecodeError:  # pydantic says where the JSON breaks
        data = None
    if data.__class__ is dict and _plain_rows(data.get("events")) and _plain_rows(data.get("users")):
        rows = {f: data.pop(f) for f in ("events", "users") if data.get(f) is not None}
        try:
            return ScoreRequest.model_validate(data).model_copy(update=rows)
        except ValidationError:
            pass  # the full parse below reports it as for any request
    try:
        return ScoreRequest.model_validate_json(body)
    except ValidationError as exc:
        errors, seen = [], set()
        for e in exc.errors(include_url=False):
            loc = ("body", *e["loc"])
            if loc[-1] in _CELL_TYPES:  # one error per kind of cell the value is not: say it once
                loc, e = loc[:-1], {**e, "msg": "a cell is text, a number, true/false or null", "type": "cell_type"}
            if loc not in seen:
                seen.add(loc)
                errors.append({**e, "loc": loc})
        raise RequestValidationError(errors) from None


_CELL_TYPES = {"str", "int", "float", "bool", "none"}


def app_from_environment() -> FastAPI:
    """The app for a worker started by uvicorn (``--workers N``): the run named by ``RETENTION_SERVE_RUN``."""
    return create_app(os.environ[RUN_ENV])
