"""Heartbeat pings: `POST /heartbeats/{name}` (bearer token) and Opsgenie's
`GET|POST|PUT|PATCH /v2/heartbeats/{name}/ping` (`GenieKey`), answered as Opsgenie does.

A wrong token and an unknown heartbeat name get the same 401, so names cannot be probed.
"""

from __future__ import annotations

import time
import uuid

from aiohttp import web

from bot.config import HeartbeatConfig
from bot.config.heartbeats import HEARTBEAT_INTEGRATION
from bot.deps import DEPS
from bot.errors import AuthError


def _credential(request: web.Request, scheme: str) -> str:
    """The credential of `Authorization: <scheme> <credential>` ("" for another scheme)."""
    given, _, credential = request.headers.get("Authorization", "").partition(" ")
    return credential.strip() if given.lower() == scheme.lower() else ""


async def ping(request: web.Request) -> web.Response:
    """Record a ping of the heartbeat named in the URL; a missed heartbeat recovers."""
    deps = request.app[DEPS]
    name = request.match_info["name"]
    heartbeat = deps.heartbeats.authenticate(name, _credential(request, "Bearer"))
    if heartbeat is None:
        _refused(request)
        raise AuthError(
            "missing or wrong bearer token in the Authorization header: use the token of "
            "the heartbeat named in the URL"
        )
    pinged = await deps.heartbeats.ping(heartbeat)
    return web.json_response(pinged.to_json())


async def genie_ping(request: web.Request) -> web.Response:
    """Opsgenie's Ping Heartbeat request: 202 with `result`, `took` and `requestId`."""
    started = time.perf_counter()
    deps = request.app[DEPS]
    name = request.match_info["name"]
    heartbeat: HeartbeatConfig | None = deps.heartbeats.authenticate_genie_key(
        name, _credential(request, "GenieKey")
    )
    request_id = str(uuid.uuid4())
    if heartbeat is None:
        _refused(request)
        return web.json_response(
            {"message": "Could not authenticate", "took": _took(started), "requestId": request_id},
            status=401,
        )
    await deps.heartbeats.ping(heartbeat)
    return web.json_response(
        {"result": "PONG - Heartbeat received", "took": _took(started), "requestId": request_id},
        status=202,
    )


def _refused(request: web.Request) -> None:
    """Count a refused ping (one label value, whatever name the URL held)."""
    rejected = request.app[DEPS].metrics.webhooks_rejected
    rejected.labels(integration=HEARTBEAT_INTEGRATION, reason="unauthorized").inc()


def _took(started: float) -> float:
    return round(time.perf_counter() - started, 3)


def register(app: web.Application) -> None:
    """Add the heartbeat ping routes."""
    app.router.add_post("/heartbeats/{name}", ping)
    for method in ("GET", "POST", "PUT", "PATCH"):
        app.router.add_route(method, "/v2/heartbeats/{name}/ping", genie_ping)
