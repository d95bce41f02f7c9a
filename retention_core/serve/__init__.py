"""Real-time churn scoring over HTTP from a saved run: ``python -m retention_core serve RUN_DIR [--model KEY]``.

A shop's site or CRM asks, at the moment a customer logs in or calls support, how likely that customer is to leave
and why. The service verifies and loads a signed run once, warms its model (the run's best, or the one ``--model``
names) and answers:

- ``GET /v1/health`` -> ``{"status": "ok"}``;
- ``GET /v1/model`` -> the run, the model served (and the run's best and other models), horizon, threshold, features
  with their types, the raw columns an event needs, when it was trained, its validation metrics and the limits;
- ``POST /v1/score`` with ``{"events": [raw rows of the run's log], "as_of"?: "YYYY-MM-DD", "reasons"?: N,
  "record"?: bool}`` or ``{"users": [{"user_id": ..., feature: value, ...}]}`` -> ``{"model", "as_of", "scores":
  [{"user_id", "churn_probability", "risk_decile", "at_risk", "reasons"}]}`` (+ ``"recording"`` when asked to record).
  OpenAPI pages at ``/docs``.

The same numbers as batch scoring. Raw rows arrive as JSON, often every cell a string as a CSV reader gives it; they
are typed exactly as the file reader types a CSV's text cells (the same missing-value markers, then
:func:`retention_core.cells.coerce_types`) and their features computed by
:func:`retention_core.scoring.features_for_run`, the code ``score`` runs, with the run's saved column roles. Feature
rows go straight to the model in the columns and types batch scoring gives it. One difference, on purpose: BG/NBD
(alone, in the ensemble or calibrated) keeps the parameters it was trained with, where batch scoring refits it on the
whole population scored; a request of a few users is no population.

Risk deciles: one user has no population to be ranked in, so a user's decile places their probability among the
run's validation users scored by the same model (decile 1: fewer than 10% of them score higher; decile 10: 90% or
more do): the library's one rule, :func:`retention_core.segments.deciles_against`, which
:func:`~retention_core.segments.risk_deciles` reads against the users scored; tied probabilities share a decile in both.

Without an ``as_of`` date, raw events are scored as of now (every event up to the request counts): a request holds one
customer's history, whose last event is not the present. ``score`` on a file defaults to the end of the file instead.

Bad requests get 422 with the field named (``message`` says which, ``detail`` lists each error's location): NaN,
Infinity and numbers beyond float range too, never taken as missing; a whole number beyond 64 bits is text in raw
rows (as the file reader reads its digits, so a long id stays whole) and a 422 as a feature beyond float range.
Requests over a limit get 413 naming it and its variable (:mod:`.limits`): the body's size, checked before any
parsing, and the rows of events and users, counted on the bytes before the body is parsed. With a token
(``RETENTION_API_TOKEN``), /v1/model and /v1/score answer 401 to a request without ``Authorization: Bearer <token>``
(/v1/health and the OpenAPI pages stay open, for health checks and reading). An unexpected failure is answered 500
and the connection stays open for the client's next request.

``"record": true`` keeps the scoring in the workspace's scoring history. The request is then scored and recorded on a
worker thread, and waits for the history's lock (another scoring, a monitor report) at most
``RETENTION_API_RECORD_TIMEOUT`` seconds (2): past that the scores are answered anyway, with ``"recording":
{"status": "skipped", "reason": ...}``; the event loop, /v1/health included, never waits for the history.

Speed: one math-library thread per worker (:mod:`retention_core.threads`), every part of the model predicting on one
thread, one shared in-memory DuckDB database for the feature queries (a cursor per request), and small requests scored
on the event loop without a thread hand-off; big ones (and those asking for reasons or to be recorded) go to a thread
so health checks keep answering.

The package, by concern: :mod:`.schemas` (the request and answer), :mod:`.parsing` (bodies to tables),
:mod:`.limits` (how much a request may hold), :mod:`.auth` (the token), :mod:`.scorer` (the loaded run),
:mod:`.routes` (the app and its endpoints).
"""
from __future__ import annotations

# serve_command (in bundle, so the app shows it without loading the web stack) is part of the service's API too
from ..bundle import DEFAULT_HOST, DEFAULT_PORT, serve_command
from .auth import TOKEN_ENV, exposure_warning
from .limits import (
           MAX_BODY_BYTES,
           MAX_BODY_ENV,
           MAX_EVENTS,
           MAX_EVENTS_ENV,
           MAX_USERS,
           MAX_USERS_ENV,
           RECORD_TIMEOUT,
           RECORD_TIMEOUT_ENV,
           BodyLimit,
           Limits,
           rows_in_body,
)
from .parsing import events_frame, feature_frame, parse_request
from .routes import INLINE_BYTES, INLINE_ROWS, MODEL_ENV, RUN_ENV, app_from_environment, create_app
from .schemas import MAX_REASONS, RequestError, ScoreAnswer, ScoreRequest, UserScore
from .scorer import Scorer, one_thread_model, served_model

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "INLINE_BYTES", "INLINE_ROWS", "MAX_BODY_BYTES", "MAX_BODY_ENV",
           "MAX_EVENTS", "MAX_EVENTS_ENV", "MAX_REASONS", "MAX_USERS", "MAX_USERS_ENV", "MODEL_ENV", "RECORD_TIMEOUT",
           "RECORD_TIMEOUT_ENV", "RUN_ENV", "TOKEN_ENV", "BodyLimit", "Limits", "RequestError", "ScoreAnswer",
           "ScoreRequest", "Scorer", "UserScore", "app_from_environment", "create_app", "events_frame",
           "exposure_warning", "feature_frame", "one_thread_model", "parse_request", "rows_in_body", "served_model",
           "serve_command"]
