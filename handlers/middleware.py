"""Cross-cutting work: request ids, access log, errors mapped to answers; Deps for listeners.

HTTP: `UserError` and friends become JSON 4xx bodies naming the field; anything unexpected is
logged with an error id the client can quote, and answered 500. Slack: `provide_deps` puts the
app's `Deps` into every Bolt context (`deps_of` reads it), and one error handler turns a
`UserError` into an ephemeral hint and anything else into an error id.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from slack_bolt.async_app import AsyncApp, AsyncBoltContext, AsyncRespond
from slack_bolt.response import BoltResponse

from bot.deps import Deps
from bot.errors import AuthError, StoreUnavailable, UserError
from bot.logs import AccessLog, new_request_id, request_id_var
from bot.metrics import Metrics
from handlers.listener_runs import mark_failed

log = logging.getLogger("pulseops.http")
access_log = AccessLog(log)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
API_TOKEN_NAME = web.RequestKey("api_token", str)
"""Where the API middleware puts the caller's token name, for the access log (never the secret)."""


def error_body(
    message: str, *, fields: dict[str, str] | None = None, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"error": message, "request_id": request_id_var.get()}
    if fields:
        body["fields"] = fields
    body.update(extra)
    return body


@dataclass(frozen=True, slots=True)
class Guard:
    """A middleware that `http_middleware` runs itself (no layer of its own in aiohttp's
    chain), for the requests it `applies` to only."""

    applies: Callable[[web.Request], bool]
    run: Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]


def http_middleware(metrics: Metrics, guard: Guard | None = None) -> Any:
    latency: dict[tuple[str, str, int], Any] = {}  # each labelled histogram, looked up once

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        request_id = request.headers.get("X-Request-Id", "")[:64] or new_request_id()
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500
        try:
            try:
                if guard is not None and guard.applies(request):
                    response = await guard.run(request, handler)
                else:
                    response = await handler(request)
            except UserError as exc:
                response = web.json_response(
                    error_body(exc.message, fields=exc.fields),
                    status=exc.status,
                    headers=exc.headers,
                )
            except AuthError as exc:
                response = web.json_response(error_body(str(exc)), status=exc.status)
            except StoreUnavailable as exc:  # not the sender's fault: come back shortly
                response = web.json_response(
                    error_body(str(exc)), status=exc.status, headers=exc.headers
                )
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
            key = (route_name, request.method, status)
            histogram = latency.get(key)
            if histogram is None:
                histogram = latency[key] = metrics.http_latency.labels(
                    route=route_name, method=request.method, status=str(status)
                )
            histogram.observe(duration)
            access_log.write(
                request_id=request_id,
                method=request.method,
                # a path holding a token is logged as its route, never with the secret
                path=route_name if "{token}" in route_name else request.path,
                status=status,
                duration_ms=round(duration * 1000, 2),
                api_token=request.get(API_TOKEN_NAME),
            )
            request_id_var.reset(token)

    return middleware


# ---- Slack (Bolt) -----------------------------------------------------------------------

DEPS_CONTEXT_KEY = "deps"
"""Where `provide_deps` puts the app's `Deps` in every Bolt request's context."""

BoltMiddleware = Callable[[AsyncBoltContext, Callable[[], Awaitable[None]]], Awaitable[None]]


def provide_deps(deps: Deps) -> BoltMiddleware:
    """A global Bolt middleware putting `deps` into each request's context for the listeners.

    Listeners are plain functions Bolt calls with keyword arguments by name; they read their
    dependencies with `deps_of(context)`, so a test can call one with a context it built.
    """

    async def deps_middleware(
        context: AsyncBoltContext, next_: Callable[[], Awaitable[None]]
    ) -> None:
        context[DEPS_CONTEXT_KEY] = deps
        await next_()

    return deps_middleware


def deps_of(context: Mapping[str, Any]) -> Deps:
    """The app's dependencies from a Bolt context (set by `provide_deps`).

    Raises:
        RuntimeError: the context holds none (the app did not install `provide_deps`).
    """
    deps = context.get(DEPS_CONTEXT_KEY)
    if not isinstance(deps, Deps):
        raise RuntimeError("no Deps in the Bolt context: install provide_deps(deps) first")
    return deps


async def on_bolt_error(
    error: Exception,
    body: dict[str, Any],
    respond: AsyncRespond,
    response: BoltResponse | None,
    context: AsyncBoltContext,
) -> BoltResponse | None:
    """The one Bolt error handler: a UserError becomes an ephemeral hint, anything else an
    error id the person can quote (logged with the error). A watched event listener's failure
    is recorded, so that its Socket Mode envelope is not acknowledged and Slack retries it."""
    mark_failed(context)
    deps = context.get(DEPS_CONTEXT_KEY)
    if not isinstance(deps, Deps):  # failed in Bolt's own middleware, before ours ran
        log.error("error before a Slack request reached PulseOps", exc_info=error)
        return None
    replies = deps.renderer.replies
    if isinstance(error, UserError):
        text = replies.warning(error.message)
    elif isinstance(error, StoreUnavailable):
        text = replies.store_unavailable()
    else:
        error_id = uuid.uuid4().hex[:12]
        user = (body.get("user") or {}).get("id") or body.get("user_id")
        log.error(
            "unhandled error in a Slack listener",
            exc_info=error,
            extra={"error_id": error_id, "user": user, "type": body.get("type")},
        )
        text = replies.internal_error(error_id)
    if response is not None and response.status == 200:
        # already acknowledged: say it through the response_url
        if body.get("response_url"):
            await respond(text=text, response_type="ephemeral", replace_original=False)
        return None
    # not acknowledged yet: answer Slack's request itself (shown to the user alone)
    return BoltResponse(status=200, body=text)


def register_bolt_errors(app: AsyncApp) -> None:
    """Install the one Bolt error handler."""
    app.error(on_bolt_error)
