"""Drop-in endpoints: PagerDuty Events API v2 and the Opsgenie Alert API v2, answered the way
those services document, so that a sender switches by changing its base URL.

`POST /v2/enqueue`, `POST /v2/change/enqueue` (PagerDuty; the integration is the body's
`routing_key`), `POST /v2/alerts`, `POST /v2/alerts/{identifier}/close|acknowledge` and
`GET /v2/alerts/{identifier}` (Opsgenie; `Authorization: GenieKey <token>`). Alerts go
through the webhook pipeline (same dedup, idempotency, rate limit); every refusal happens
before anything is written.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from bot.deps import DEPS, Deps
from bot.domain.alerts import AlertStatus
from bot.domain.incident import Status
from bot.errors import AuthError, NotFound, TooManyRequests, UserError
from bot.ingest.dropin import parse_change_event
from bot.ingest.opsgenie import alert_id
from bot.ingest.pipeline import Via
from bot.ingest.stages import Received
from bot.ingest.wire import validation_problems
from bot.logs import request_id_var
from handlers.webhooks import bounded_reader
from store.alert_lookup import newest_alert


def _received(request: web.Request, deps: Deps, **params: str) -> Received:
    return Received(
        name="",
        headers=request.headers,
        read=bounded_reader(request),
        now=deps.clock.now(),
        params=params,
    )


# ---- PagerDuty ------------------------------------------------------------------------------


def _pagerduty_refusal(exc: UserError) -> web.Response:
    """PagerDuty's answers: 429 under the rate limit, else 400 `invalid event` with errors."""
    if isinstance(exc, TooManyRequests):
        return web.json_response(
            {"status": "throttle event", "message": exc.message}, status=429, headers=exc.headers
        )
    errors = [f"{field}: {problem}" for field, problem in exc.fields.items()] or [exc.message]
    return web.json_response(
        {"status": "invalid event", "message": "Event object is invalid", "errors": errors},
        status=400,
    )


async def pagerduty_enqueue(request: web.Request) -> web.Response:
    """An alert event: trigger, acknowledge or resolve by `dedup_key`."""
    deps = request.app[DEPS]
    try:
        accepted = await deps.ingest.pipeline.accept(_received(request, deps), via=Via.PAGERDUTY)
        await deps.ingest.submit(accepted)
    except UserError as exc:
        return _pagerduty_refusal(exc)
    return web.json_response(
        {
            "status": "success",
            "message": "Event processed",
            "dedup_key": accepted.alerts[0].fingerprint,
        },
        status=202,
    )


async def pagerduty_change(request: web.Request) -> web.Response:
    """A change event: recorded on the timelines of the service's open incidents."""
    deps = request.app[DEPS]
    try:
        received = await deps.ingest.pipeline.receive_only(
            _received(request, deps), via=Via.PAGERDUTY_CHANGE
        )
        try:
            event = parse_change_event(received.document)
        except ValidationError as exc:
            raise UserError(
                "body is not a valid change event", fields=validation_problems(exc)
            ) from None
    except UserError as exc:
        return _pagerduty_refusal(exc)
    assert received.integration is not None
    payload = event.payload
    data: dict[str, Any] = {
        "source": payload.source,
        "timestamp": payload.timestamp.isoformat() if payload.timestamp else None,
        "custom_details": payload.custom_details,
        "links": [{"href": link.href, "text": link.text} for link in event.links],
    }
    await deps.ingest.within(
        deps.changes.record_change(
            integration=received.integration, summary=payload.summary, data=data
        )
    )
    return web.json_response({"status": "success", "message": "Change event processed"}, status=202)


# ---- Opsgenie -------------------------------------------------------------------------------


def _opsgenie_body(started: float, **fields: Any) -> dict[str, Any]:
    return {
        **fields,
        "took": round(time.perf_counter() - started, 3),
        "requestId": request_id_var.get(),
    }


def _opsgenie_refusal(started: float, exc: AuthError | UserError) -> web.Response:
    """Opsgenie's answers: 401 for a wrong key; 422 and the errors by field for a request
    it cannot process; 404, 429 as they are."""
    if isinstance(exc, AuthError):
        return web.json_response(_opsgenie_body(started, message=str(exc)), status=401)
    status = 422 if exc.status == UserError.status else exc.status
    body = _opsgenie_body(started, message=exc.message)
    if exc.fields:
        body["errors"] = exc.fields
    return web.json_response(body, status=status, headers=exc.headers)


async def _opsgenie(request: web.Request, via: Via, **params: str) -> web.Response:
    started = time.perf_counter()
    deps = request.app[DEPS]
    try:
        accepted = await deps.ingest.pipeline.accept(_received(request, deps, **params), via=via)
        await deps.ingest.submit(accepted)
    except (AuthError, UserError) as exc:
        return _opsgenie_refusal(started, exc)
    return web.json_response(
        _opsgenie_body(started, result="Request will be processed"), status=202
    )


async def opsgenie_create(request: web.Request) -> web.Response:
    """Create an alert (`alias` is its dedup key)."""
    return await _opsgenie(request, Via.OPSGENIE_CREATE)


def _named(request: web.Request) -> dict[str, str]:
    return {
        "identifier": request.match_info["identifier"],
        "identifierType": request.query.get("identifierType", ""),
    }


async def opsgenie_get(request: web.Request) -> web.Response:
    """Get the alert named by alias or id: its stable `id`, status and counts."""
    started = time.perf_counter()
    deps = request.app[DEPS]
    try:
        received = await deps.ingest.pipeline.receive_only(
            _received(request, deps, **_named(request)), via=Via.OPSGENIE_GET
        )
        assert received.integration is not None
        alias = received.params["alias"]
        async with deps.db.read() as session:
            found = await newest_alert(
                session, integration=received.integration.name, fingerprint=alias
            )
        if found is None:
            raise NotFound("Alert does not exist")
    except (AuthError, UserError) as exc:
        return _opsgenie_refusal(started, exc)
    alert, incident_status = found
    data = {
        "id": alert_id(alias),
        "alias": alias,
        "message": alert.title,
        "status": "closed" if alert.status == AlertStatus.RESOLVED else "open",
        "acknowledged": incident_status == Status.ACKNOWLEDGED
        or alert.status == AlertStatus.ACKNOWLEDGED,
        "count": alert.occurrences,
        "tags": [t for t in alert.labels.get("tags", "").split(",") if t],
        "priority": alert.labels.get("priority", "P3"),
        "createdAt": _iso(alert.first_seen_at),
        "updatedAt": _iso(alert.last_seen_at),
        "lastOccurredAt": _iso(alert.last_seen_at),
        "integration": {"name": received.integration.name, "type": "API"},
    }
    return web.json_response(_opsgenie_body(started, data=data), status=200)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def opsgenie_close(request: web.Request) -> web.Response:
    """Close the alert named by alias or id: resolves it."""
    return await _opsgenie(request, Via.OPSGENIE_CLOSE, **_named(request))


async def opsgenie_acknowledge(request: web.Request) -> web.Response:
    """Acknowledge the alert's incident."""
    return await _opsgenie(request, Via.OPSGENIE_ACKNOWLEDGE, **_named(request))


def register(app: web.Application, deps: Deps) -> None:
    """Add the drop-in routes."""
    app.router.add_post("/v2/enqueue", pagerduty_enqueue)
    app.router.add_post("/v2/change/enqueue", pagerduty_change)
    app.router.add_post("/v2/alerts", opsgenie_create)
    app.router.add_get("/v2/alerts/{identifier}", opsgenie_get)
    app.router.add_post("/v2/alerts/{identifier}/close", opsgenie_close)
    app.router.add_post("/v2/alerts/{identifier}/acknowledge", opsgenie_acknowledge)
