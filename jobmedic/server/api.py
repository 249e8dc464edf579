"""The routes of the HTTP JSON action API (`jobmedic serve`): FastAPI over the same actions as
the CLI.

`POST /v1/actions` takes the flat JSON objects of `jobmedic act` and returns the same envelope;
`POST /v1/ask` asks the assistant; `GET /healthz`; `GET /metrics` (Prometheus). Callers are
identified by bearer tokens whose projects become their scope (see server.auth). Bodies are
read under a size and time limit before any work, actions run in worker threads with one
store connection per thread (server.pool), so slow clients and slow actions never block
the event loop, and concurrent writes all land.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import ValidationError

from jobmedic.app import build_tool_context, load_taxonomy
from jobmedic.core.timeutil import parse_time_arg
from jobmedic.knowledge.taxonomy import Taxonomy
from jobmedic.server.ask import (
    AskBody,
    AskSessions,
    AssistantUnavailable,
    default_assistant_factory,
)
from jobmedic.server.auth import AuthError, Caller, TokenAuth, is_loopback
from jobmedic.server.cache import CACHEABLE, ResultCache
from jobmedic.server.guard import HEADER_TIMEOUT_S, MAX_HEADER_BYTES, guarded_protocol
from jobmedic.server.httputil import (
    BodyError,
    action_union_schema,
    check_json_content_type,
    error_body,
    http_status,
    install_openapi,
    parse_json,
    read_body,
)
from jobmedic.server.metrics import Metrics, render_live
from jobmedic.server.pool import StorePool
from jobmedic.settings import Settings
from jobmedic.tools import TOOLS, run_action
from jobmedic.tools.base import ToolContext, validation_error

if TYPE_CHECKING:
    from jobmedic.knowledge.store import Store

log = logging.getLogger("jobmedic.server")


@dataclass
class ServerState:
    """What the routes share: settings, the store pool, auth, metrics, conversations."""

    settings: Settings
    pool: StorePool
    taxonomy: Taxonomy
    auth: TokenAuth
    metrics: Metrics
    asks: AskSessions
    now: int | None = None
    body_timeout_s: float = 30.0
    cache: ResultCache | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def context(self, store: Store, scope: list[str] | None, now: int | None = None) -> ToolContext:
        return build_tool_context(self.settings, store, self.taxonomy,
                                  self.now if now is None else now, scope=scope)


def bind_warning(host: str, auth: TokenAuth) -> str | None:
    """The warning to show when a server without tokens listens beyond this machine."""
    if auth.enabled or is_loopback(host):
        return None
    return (f"no API token is configured and the server listens on {host}: anyone who can reach "
            f"it sees every project. Configure server.tokens (see docs/http-api.md) or bind "
            f"to 127.0.0.1.")


def refuse_unauthenticated(host: str, auth: TokenAuth, insecure_no_auth: bool = False) -> str | None:
    """Why the server must not start (fail closed): no token while listening beyond this
    machine, unless the operator said --insecure-no-auth. None when it may start."""
    warning = bind_warning(host, auth)
    if warning is None or insecure_no_auth:
        return None
    return (f"refusing to serve on {host} without an API token: anyone who can reach it would "
            f"see every project")


def create_app(settings: Settings, *, taxonomy: Taxonomy | None = None,
               assistant_factory: Callable[[ToolContext], Any] | None | str = "default",
               body_timeout_s: float = 30.0, cache_size: int = 512) -> FastAPI:
    """The API application for `settings` (its store, tokens, limits and scope)."""
    taxonomy = taxonomy or load_taxonomy()
    now = parse_time_arg(settings.as_of, "as_of") if settings.as_of else None
    pool = StorePool(settings.db_path, models_dir=settings.models_dir)
    auth = TokenAuth(settings.server.tokens, settings.allowed_projects)
    if assistant_factory == "default":
        try:
            a = settings.agent
            assistant_factory = default_assistant_factory(a.model, a.base_url, a.timeout_s)
        except AssistantUnavailable as exc:
            log.warning("%s; POST /v1/ask will answer 503", exc)
            assistant_factory = None
    st = ServerState(settings, pool, taxonomy, auth, Metrics(), None, now, body_timeout_s)  # type: ignore[arg-type]
    st.cache = ResultCache(str(settings.db_path), cache_size) if cache_size > 0 else None
    st.asks = AskSessions(lambda scope: st.context(pool.get(), scope), assistant_factory)  # type: ignore[arg-type]

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        pool.close()

    app = FastAPI(title="jobmedic", version="0.1.0", lifespan=lifespan,
                  description="The jobmedic JSON action API: the same actions and envelope as "
                              "`jobmedic act`, and the assistant.")
    app.state.jm = st
    request_schema, _ = action_union_schema(TOOLS)
    _routes(app, st, request_schema)
    install_openapi(app, TOOLS)

    return app


def _routes(app: FastAPI, st: ServerState, request_schema: dict[str, Any]) -> None:
    limit = st.settings.server.max_body_bytes
    known = ", ".join(t.name for t in TOOLS)

    def authorise(request: Request) -> Caller:
        try:
            return st.auth.caller(request.headers.get("authorization"))
        except AuthError as exc:
            raise BodyError(401, "unauthorized", exc.message,
                            "send 'Authorization: Bearer <token>' with a configured token") from None

    @app.post("/v1/actions", summary="Run one action",
              description="One flat JSON object with an `action` field (" + known + "), as "
                          "`jobmedic act` takes; returns the action envelope.",
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": request_schema}}}},
              responses={200: {"description": "The envelope (status ok or no_data)"},
                         400: {"description": "Invalid JSON or unknown action"},
                         401: {"description": "Missing or wrong bearer token"},
                         413: {"description": "Body over server.max_body_bytes"},
                         415: {"description": "Not application/json"},
                         422: {"description": "A field is invalid (error.field names it)"}})
    async def actions(request: Request) -> JSONResponse:
        t0 = time.perf_counter()
        action = "?"
        try:
            caller = authorise(request)
            check_json_content_type(request)
            body = await read_body(request, limit, st.body_timeout_s)
            payload = parse_json(body)
        except BodyError as exc:
            return _fail(st, "/v1/actions", action, exc, t0)
        cached = _cache_key(st, body, payload, caller)
        if cached is not None:
            action, key = cached
            hit = st.cache.peek(key)  # type: ignore[union-attr]
            if hit is None:
                hit = await run_in_threadpool(st.cache.get_or_compute, key,  # type: ignore[union-attr]
                                              lambda: _computed(st, payload, caller, key[-1]))
            etype = json.loads(hit[1])["error"]["type"] if hit[0] != 200 else None
            st.metrics.observe("/v1/actions", action, hit[0], time.perf_counter() - t0, etype)
            return Response(hit[1], status_code=hit[0], media_type="application/json")
        result = await run_in_threadpool(_run_action, st, payload, caller)
        code = http_status(result)
        action = result.action if result.action in {t.name for t in TOOLS} else "?"
        st.metrics.observe("/v1/actions", action, code, time.perf_counter() - t0,
                           result.error.type if result.error else None)
        return JSONResponse(result.model_dump(mode="json"), status_code=code)

    @app.post("/v1/ask", summary="Ask the assistant",
              description="`{\"question\": ..., \"session\": ...}` -> `{\"answer\", \"calls\"}` "
                          "(the shape of `jobmedic ask --json`).",
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": AskBody.model_json_schema()}}}})
    async def ask(request: Request) -> JSONResponse:
        t0 = time.perf_counter()
        try:
            caller = authorise(request)
            check_json_content_type(request)
            raw = await read_body(request, limit, st.body_timeout_s)
            body = AskBody.model_validate_json(raw)
        except BodyError as exc:
            return _fail(st, "/v1/ask", "ask", exc, t0)
        except ValidationError as exc:
            return _invalid(st, exc, t0)
        try:
            session = st.asks.session_name(caller.name, body.session, st.auth.enabled)
            answer = await run_in_threadpool(st.asks.ask, session, caller.scope, body.question)
        except AssistantUnavailable as exc:
            return _fail(st, "/v1/ask", "ask", BodyError(503, "unavailable", str(exc)), t0)
        except Exception as exc:
            log.exception("ask failed")
            return _fail(st, "/v1/ask", "ask", BodyError(
                500, "internal_error", f"ask failed: {type(exc).__name__}: {exc}"), t0)
        st.metrics.observe("/v1/ask", "ask", 200, time.perf_counter() - t0)
        return JSONResponse(answer)

    @app.get("/healthz", summary="Liveness and store check")
    async def healthz() -> JSONResponse:
        def check() -> dict[str, Any]:
            store = st.pool.get()
            return {"status": "ok", "schema_version": store.schema_version,
                    "auth": "token" if st.auth.enabled else "local"}
        try:
            return JSONResponse(await run_in_threadpool(check))
        except Exception as exc:  # noqa: BLE001
            return JSONResponse({"status": "error", "message": str(exc)}, status_code=503)

    @app.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
    async def metrics(request: Request) -> PlainTextResponse:
        try:
            caller = authorise(request)
        except BodyError as exc:
            return _fail(st, "/metrics", "metrics", exc, time.perf_counter())
        # Store-wide row counts are for an unscoped caller only: a token limited to some
        # projects sees the service's own metrics and nothing about other projects' data.
        rows = st.pool.get().table_counts if caller.scope is None else None
        text = await run_in_threadpool(lambda: st.metrics.render(rows))
        if caller.scope is None:  # alerts and failure rates span projects: unscoped only
            now = st.now if st.now is not None else int(time.time())
            snap = await run_in_threadpool(lambda: st.pool.get().live.live_metrics(now))
            text += render_live(snap)
        if st.cache is not None:
            text += ("# HELP jobmedic_cache_requests_total Cached actions served (hit) or computed "
                     "(miss).\n# TYPE jobmedic_cache_requests_total counter\n"
                     f'jobmedic_cache_requests_total{{result="hit"}} {st.cache.hits}\n'
                     f'jobmedic_cache_requests_total{{result="miss"}} {st.cache.misses}\n')
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:  # pragma: no cover
        log.exception("unhandled error on %s", request.url.path)
        return error_body(500, "internal_error", f"{type(exc).__name__}: {exc}",
                          "this is a bug in jobmedic; the server log has the details")


def _run_action(st: ServerState, payload: Any, caller: Caller, now: int | None = None):
    """Runs in a worker thread: this thread's store, the caller's scope."""
    return run_action(payload, st.context(st.pool.get(), caller.scope, now))


def _cache_key(st: ServerState, body: bytes, payload: Any,
               caller: Caller) -> tuple[str, tuple] | None:
    """(action, key) when the request is a read-only action whose answer may be cached: the
    exact body, the caller's scope and "now" to the second (fixed by --as-of, else the clock)."""
    if st.cache is None or len(body) > 8192 or not isinstance(payload, dict):
        return None
    action = payload.get("action")
    if not isinstance(action, str) or action not in CACHEABLE:
        return None
    now = st.now if st.now is not None else int(time.time())
    scope = None if caller.scope is None else tuple(caller.scope)
    return action, (body, scope, now)


def _computed(st: ServerState, payload: Any, caller: Caller, now: int) -> tuple[int, bytes, bool]:
    result = _run_action(st, payload, caller, now)
    return (http_status(result), result.model_dump_json().encode(),
            result.status in ("ok", "no_data"))


def _fail(st: ServerState, path: str, action: str, exc: BodyError, t0: float) -> JSONResponse:
    st.metrics.observe(path, action, exc.status, time.perf_counter() - t0, exc.type)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return error_body(exc.status, exc.type, exc.message, exc.hint, action, headers=headers)


def _invalid(st: ServerState, exc: ValidationError, t0: float) -> JSONResponse:
    if any(e.get("type") == "json_invalid" for e in exc.errors()):
        return _fail(st, "/v1/ask", "ask", BodyError(
            400, "invalid_json", "the request is not valid JSON",
            'send {"question": "...", "session": "default"}'), t0)
    res = validation_error("ask", exc)
    st.metrics.observe("/v1/ask", "ask", 422, time.perf_counter() - t0, "invalid_field")
    return JSONResponse(res.model_dump(mode="json"), status_code=422)


def serve(settings: Settings, host: str, port: int, log_level: str = "info",
          body_timeout_s: float = 30.0, insecure_no_auth: bool = False,
          header_timeout_s: float = HEADER_TIMEOUT_S) -> None:
    """Run the API with uvicorn until interrupted. Refuses (ConfigError) to listen beyond
    this machine without a token unless `insecure_no_auth`."""
    import uvicorn

    from jobmedic.settings import ConfigError

    app = create_app(settings, body_timeout_s=body_timeout_s)
    refusal = refuse_unauthenticated(host, app.state.jm.auth, insecure_no_auth)
    if refusal:
        raise ConfigError(refusal, hint="configure server.tokens (docs/http-api.md), bind to "
                                        "127.0.0.1, or pass --insecure-no-auth")
    warning = bind_warning(host, app.state.jm.auth)
    if warning:
        log.warning(warning)
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level,
                            http=guarded_protocol(header_timeout_s), timeout_keep_alive=5,
                            access_log=False, h11_max_incomplete_event_size=MAX_HEADER_BYTES)
    uvicorn.Server(config).run()
