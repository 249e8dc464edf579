"""HTTP plumbing of the API server: reading bodies under a size and time limit, content-type
checks, JSON error bodies, the status code of an envelope, and the OpenAPI request schema.

Kept apart from `server/api.py` so the routes read as what they do.
"""
from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Annotated, Any, Union

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import Field, TypeAdapter

from jobmedic.core import jsonsafe
from jobmedic.knowledge.errors import status_by_kind
from jobmedic.tools.base import Tool, ToolResult

#: Error types of the transport and of the envelope itself (not raised as JobmedicError
#: subclasses): body and header problems, request parsing, and `error`, a bare JobmedicError
#: by which an action refuses a request (e.g. an outcome for a job that did not fail).
TRANSPORT_STATUS = {
    "invalid_json": 400, "invalid_request": 422, "invalid_field": 422, "unknown_action": 400,
    "payload_too_large": 413, "unsupported_media_type": 415, "unauthorized": 401,
    "request_timeout": 408, "headers_too_large": 431, "too_deep": 400, "not_implemented": 501,
    "unavailable": 503, "internal_error": 500, "error": 400,
}


def status_by_error() -> dict[str, int]:
    """Envelope error type -> HTTP status: each error class's own declaration
    (jobmedic.knowledge.errors.status_by_kind) plus the transport-level types."""
    return {**status_by_kind(), **TRANSPORT_STATUS}


#: envelope error type -> HTTP status (as built at import; http_status also sees error classes
#: defined later). Anything not listed is a client error (400).
STATUS_BY_ERROR = status_by_error()


class BodyError(Exception):
    """The body could not be read: too large, too slow, or the client went away."""

    def __init__(self, status: int, type_: str, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.status, self.type, self.message, self.hint = status, type_, message, hint


def http_status(result: ToolResult) -> int:
    if result.status != "error" or result.error is None:
        return 200
    if result.error.type == "invalid_request" and result.action == "?":
        return 400  # not a JSON object at all: malformed rather than invalid
    status = STATUS_BY_ERROR.get(result.error.type)
    return status if status is not None else status_by_error().get(result.error.type, 400)


def error_body(status: int, type_: str, message: str, hint: str = "", action: str = "?",
               field: str | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    """A JSON error in the envelope's shape, so clients parse one format for every failure."""
    body = {"status": "error", "action": action, "data": {},
            "text": f"**Error:** {message}" + (f"\n\n{hint}" if hint else ""),
            "invocation": {"window": None, "filters": {}, "scope": None},
            "error": {"type": type_, "message": message, "hint": hint, "field": field}}
    return JSONResponse(body, status_code=status, headers=headers)


def check_json_content_type(request: Request) -> None:
    """Accept application/json (and +json types); anything else is a 415."""
    ctype = request.headers.get("content-type", "")
    media = ctype.split(";", 1)[0].strip().lower()
    if media == "application/json" or (media.startswith("application/") and media.endswith("+json")):
        return
    raise BodyError(415, "unsupported_media_type",
                    f"content type {media or '(none)'!r} is not supported",
                    "send the request as JSON with 'Content-Type: application/json'")


async def read_body(request: Request, limit: int, timeout_s: float) -> bytes:
    """The request body, refused once it passes `limit` bytes (with or without a
    Content-Length) or when the client takes longer than `timeout_s` to send it."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise _too_large(limit)
        except ValueError:
            raise BodyError(400, "invalid_request", "Content-Length is not a number") from None

    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
                chunks.append(chunk)
    except TimeoutError:
        raise BodyError(408, "request_timeout",
                        f"the request body did not arrive within {timeout_s:g} s",
                        "send the whole body promptly") from None
    return b"".join(chunks)


def parse_json(body: bytes) -> Any:
    """The request body as JSON, within the nesting limit (jobmedic.core.jsonsafe); a body
    that cannot be read is a 400 (invalid_json or too_deep), never an internal error."""
    try:
        return jsonsafe.loads(body)
    except jsonsafe.BadJson as exc:
        raise BodyError(400, exc.kind, exc.message,
                        'send one flat JSON object, e.g. {"action": "stats", '
                        '"lookback_days": 7}') from None


def _too_large(limit: int) -> BodyError:
    return BodyError(413, "payload_too_large", f"the request body is larger than {limit:,} bytes",
                     "send a smaller request (server.max_body_bytes sets the limit)")


def action_union_schema(tools: Sequence[Tool]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The OpenAPI schema of an action request (a union discriminated by `action`, built from
    the request models) and the component schemas it refers to."""
    models = tuple(t.request_model for t in tools)
    union = Annotated[Union[models], Field(discriminator="action")]  # type: ignore[valid-type] # noqa: UP007
    schema = TypeAdapter(union).json_schema(ref_template="#/components/schemas/{model}")
    defs = schema.pop("$defs", {})
    return schema, defs


def install_openapi(app: Any, tools: Sequence[Tool]) -> None:
    """Make the generated OpenAPI document carry the action request models as components."""
    from fastapi.openapi.utils import get_openapi

    _, defs = action_union_schema(tools)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version,
                              description=app.description, routes=app.routes)
            doc.setdefault("components", {}).setdefault("schemas", {}).update(defs)
            doc["components"].setdefault("securitySchemes", {})["bearer"] = {
                "type": "http", "scheme": "bearer"}
            doc["security"] = [{"bearer": []}, {}]
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi
