"""The HTTP application: error answers, the three endpoints, and :func:`create_app`, which loads the run once.

Where a request runs: one customer's request is read and scored on the event loop, without a thread hand-off (the
fast path). A body over ``INLINE_BYTES`` is read on a worker thread (its rows counted, then parsed), and a request
of more than ``INLINE_ROWS`` rows, asking for reasons or asking to be recorded is scored on one: recording waits for
the scoring history's lock, which another process may hold, and the event loop keeps answering meanwhile.
"""
from __future__ import annotations

import gc
import logging
import os

import orjson
from fastapi import FastAPI, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from ..errors import RetentionError
from ..threads import one_math_thread
from .auth import TOKEN_ENV, bearer_check
from .limits import BodyLimit, Limits, TooLarge, check_rows, refuse_many_rows
from .parsing import parse_request
from .schemas import ScoreAnswer, ScoreRequest, json_error, where
from .scorer import Scorer

#: The run (and model, when ``serve --model`` named one) a worker loads when uvicorn starts several.
RUN_ENV = "RETENTION_SERVE_RUN"
MODEL_ENV = "RETENTION_SERVE_MODEL"
#: Requests with more rows than this are scored on a worker thread, so the event loop keeps answering.
INLINE_ROWS = 2_000
#: Bodies larger than this (bytes) are read on a worker thread too.
INLINE_BYTES = 1_000_000
log = logging.getLogger("retention_core.serve")


async def _validation_error(request, exc: RequestValidationError) -> JSONResponse:
    errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
              for e in exc.errors()]
    first = errors[0] if errors else {"loc": ["body"], "msg": "the request body is not valid", "type": ""}
    if first["type"] == "json_invalid":
        return json_error(422, f"body: not valid JSON ({first['msg']})", errors)
    at = where(first["loc"]) or "body"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return json_error(422, f"{at}: {first['msg']}{more}", errors)


async def _retention_error(request, exc: RetentionError) -> JSONResponse:
    loc = list(getattr(exc, "loc", ()) or ([exc.field] if exc.field else []))
    text = " ".join(str(exc).split())
    at = where(loc)
    return json_error(422, f"{at}: {text}" if at else text,
                       [{"loc": ["body", *loc], "msg": text, "type": "value_error"}])


async def _too_large(request, exc: TooLarge) -> JSONResponse:
    return json_error(413, exc.message)


def create_app(run_dir: str | os.PathLike, *, token: str | None = None, max_body_bytes: int | None = None,
               model: str | None = None, warm: bool = True, max_events: int | None = None,
               max_users: int | None = None, record_timeout: float | None = None) -> FastAPI:
    """The scoring service for a saved run (its best model unless ``model`` is named).

    The run is verified and loaded here, once: a run that was changed, or not saved by this installation, or a model
    it does not have, raises :class:`~retention_core.errors.BundleError` before anything listens. ``token`` (default:
    ``RETENTION_API_TOKEN``) protects /v1/model and /v1/score. The limits (:mod:`.limits`; each defaults to its
    environment variable, then to the documented default) bound each request: ``max_body_bytes`` (20 MB),
    ``max_events`` (50,000 rows), ``max_users`` (10,000 rows). A request with ``"record": true`` is kept in the
    workspace's scoring history, waiting for it at most ``record_timeout`` seconds (2).
    """
    limits = Limits.from_environment(body_bytes=max_body_bytes, events=max_events, users=max_users,
                                     record_timeout=record_timeout)
    one_math_thread()
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)  # the pools NumPy and scikit-learn already started
    from ..features import share_database

    share_database(threads=1)
    scorer = Scorer(run_dir, model=model, record_timeout=limits.record_timeout)
    if warm:
        scorer.warm()
    gc.collect()
    gc.freeze()  # the loaded run never changes: later collections skip it
    token = token if token is not None else (os.environ.get(TOKEN_ENV) or None)
    info = scorer.describe()
    info["limits"] = limits.describe() | info["limits"]
    app = FastAPI(title="Retention studio scoring service", version="1",
                  description=f"Churn probability, risk decile and reasons per user from run {info['run']!r} "
                              f"(model {scorer.key}).")
    app.add_middleware(BodyLimit, max_bytes=limits.body_bytes)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(RetentionError, _retention_error)
    app.add_exception_handler(TooLarge, _too_large)
    app.state.scorer, app.state.limits = scorer, limits
    guard = [Security(bearer_check(token))] if token else []
    _routes(app, scorer, info, guard, limits)
    return app


def _routes(app: FastAPI, scorer: Scorer, info: dict, guard: list, limits: Limits) -> None:
    @app.get("/v1/health", summary="Is the service up?")
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/v1/model", summary="The run and model being served", dependencies=guard)
    async def model_info() -> dict:
        return info

    body_schema = {"required": True, "content": {"application/json": {"schema": ScoreRequest.model_json_schema()}}}

    @app.post("/v1/score", summary="Churn probability, risk decile and reasons per user", dependencies=guard,
              responses={200: {"model": ScoreAnswer}}, openapi_extra={"requestBody": body_schema})
    async def score(request: Request) -> Response:
        body = await request.body()
        try:
            if len(body) > INLINE_BYTES:
                return _json(await run_in_threadpool(lambda: scorer.score(_read(body, limits))))
            req = _read(body, limits)
            if req.record or req.reasons or len(req.events or ()) + len(req.users or ()) > INLINE_ROWS:
                return _json(await run_in_threadpool(scorer.score, req))
            return _json(scorer.score(req))
        except (RetentionError, RequestValidationError, TooLarge):
            raise  # answered by their handlers: 422, 413
        except Exception:  # an answer, not a dropped connection: the client's next request on it still works
            log.exception("a scoring request failed")
            return json_error(500, "Internal failure while scoring this request; the service keeps running.")


def _read(body: bytes, limits: Limits) -> ScoreRequest:
    """The request from its body, refused (413) when its rows are over the limits: counted on the bytes before the
    body is parsed, and on the parsed request."""
    refuse_many_rows(body, limits)
    req = parse_request(body)
    check_rows(req, limits)
    return req


def _json(answer: dict) -> Response:
    """The answer as JSON, written by orjson (a 1,000-user answer several times faster than the standard library)."""
    return Response(orjson.dumps(answer), media_type="application/json")


def app_from_environment() -> FastAPI:
    """The app for a worker started by uvicorn (``--workers N``): the run named by ``RETENTION_SERVE_RUN`` and the
    model by ``RETENTION_SERVE_MODEL`` (its best when not set)."""
    return create_app(os.environ[RUN_ENV], model=os.environ.get(MODEL_ENV) or None)
