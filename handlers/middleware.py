"""Cross-cutting HTTP work: request ids, one JSON access-log line, errors mapped to answers.

`UserError` and friends become JSON 4xx bodies naming the field; anything unexpected is
logged with an error id the client can quote, and answered 500.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from slack_bolt.async_app import AsyncApp, AsyncRespond
from slack_bolt.response import BoltResponse

from bot.errors import AuthError, UserError
from bot.logs import request_id_var
from bot.metrics import Metrics

log = logging.getLogger("pulseops.http")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_body(
    message: str, *, fields: dict[str, str] | None = None, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"error": message, "request_id": request_id_var.get()}
    if fields:
        body["fields"] = fields
    body.update(extra)
    return body


def http_middleware(metrics: Metrics) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        request_id = request.headers.get("X-Request-Id", "")[:64] or uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500
        try:
            try:
                response = await handler(request)
            except UserError as exc:
                response = web.json_response(
                    error_body(exc.message, fields=exc.fields),
                    status=exc.status,
                    headers=exc.headers,
                )
            except AuthError as exc:
                response = web.json_response(error_body(str(exc)), status=exc.status)
            except web.HTTPException as exc:
                if exc.status < 400:
                    raise
                response = web.json_response(error_body(exc.reason), status=exc.status)
            except Exception:
                error_id = uuid.uuid4().hex[:12]
                log.exception("unhandled error", extra={"error_id": error_id})
                response = web.json_response(
                    error_body(
                        "internal error; quote the error_id when reporting it", error_id=error_id
                    ),
                    status=500,
                )
            status = response.status
            response.headers["X-Request-Id"] = request_id
            return response
        finally:
            duration = time.perf_counter() - started
            route = request.match_info.route.resource
            route_name = route.canonical if route is not None else "unmatched"
            metrics.http_latency.labels(
                route=route_name, method=request.method, status=str(status)
            ).observe(duration)
            log.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": request.method,
                    "path": request.path,
                    "status": status,
                    "duration_ms": round(duration * 1000, 2),
                },
            )
            request_id_var.reset(token)

    return middleware


def register_bolt_errors(app: AsyncApp) -> None:
    """One Bolt error handler: a UserError becomes an ephemeral hint, anything else an error id."""

    @app.error
    async def on_error(
        error: Exception, body: dict[str, Any], respond: AsyncRespond, response: BoltResponse
    ) -> BoltResponse | None:
        if isinstance(error, UserError):
            text = f":warning: {error.message}"
        else:
            error_id = uuid.uuid4().hex[:12]
            user = (body.get("user") or {}).get("id") or body.get("user_id")
            log.error(
                "unhandled error in a Slack listener",
                exc_info=error,
                extra={"error_id": error_id, "user": user, "type": body.get("type")},
            )
            text = (
                f":x: Something went wrong on our side and nothing was changed. "
                f"Quote error id `{error_id}` when you report it."
            )
        if response is not None and response.status == 200:
            # already acknowledged: say it through the response_url
            if body.get("response_url"):
                await respond(text=text, response_type="ephemeral", replace_original=False)
            return None
        # not acknowledged yet: answer Slack's request itself (shown to the user alone)
        return BoltResponse(status=200, body=text)
