"""The HTTP application: error answers, the three endpoints, and :func:`create_app`, which loads the run once."""
from __future__ import annotations

import gc
import os

import orjson
from fastapi import FastAPI, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from ..errors import RetentionError
from ..threads import one_math_thread
from .auth import TOKEN_ENV, bearer_check
from .limits import MAX_BODY_BYTES, MAX_BODY_ENV, BodyLimit
from .parsing import parse_request
from .schemas import ScoreAnswer, ScoreRequest, json_error, where
from .scorer import Scorer

#: The run a worker loads when uvicorn starts several (``app_from_environment``).
RUN_ENV = "RETENTION_SERVE_RUN"
#: Requests with more rows than this are scored on a worker thread, so the event loop keeps answering.
INLINE_ROWS = 2_000


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
    from ..features import share_database

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
    guard = [Security(bearer_check(token))] if token else []
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


def _json(answer: dict) -> Response:
    """The answer as JSON, written by orjson (a 1,000-user answer several times faster than the standard library)."""
    return Response(orjson.dumps(answer), media_type="application/json")


def app_from_environment() -> FastAPI:
    """The app for a worker started by uvicorn (``--workers N``): the run named by ``RETENTION_SERVE_RUN``."""
    return create_app(os.environ[RUN_ENV])
