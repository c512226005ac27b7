"""The API's write routes and on-call reads: declare, status/severity, notes, escalate,
who is on call, overrides, silences. Each validates its body with a model of
`handlers.api_models` and calls the same service a Slack click does, as the actor
`api:<token name>`."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from bot.deps import DEPS
from bot.domain import Status
from bot.domain.incident import InvalidTransition
from bot.domain.matchers import parse_matcher
from bot.domain.oncall import StoredOverride
from bot.domain.records import NewIncident
from bot.domain.rotation import Shift
from bot.domain.silences import Silence
from bot.errors import NotFound, UserError
from bot.services.incident_changes import body_digest, refusal
from bot.services.oncall import OverrideEnd
from handlers.api_auth import identity_of
from handlers.api_models import DeclareBody, NoteBody, OverrideBody, PatchBody, SilenceBody
from handlers.refs import ascii_number, parse_incident_ref
from store.silences import SuppressedAlert

M = TypeVar("M", bound=BaseModel)
MAX_IDEMPOTENCY_KEY = 255


async def parse_body(request: web.Request, model: type[M]) -> M:
    """The JSON body as `model`; UserError naming every bad field otherwise."""
    try:
        raw = await request.json()
    except ValueError:
        raise UserError("the body must be a JSON object", fields={"body": "not JSON"}) from None
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        fields = {
            ".".join(str(part) for part in error["loc"]) or "body": error["msg"].removeprefix(
                "Value error, "
            )
            for error in exc.errors()
        }
        raise UserError(f"invalid {', '.join(fields)}", fields=fields) from None


def _incident_id(request: web.Request) -> int:
    deps = request.app[DEPS]
    return parse_incident_ref(request.match_info["id"], replies=deps.renderer.replies)


async def declare(request: web.Request) -> web.Response:
    """`POST /api/v1/incidents`: declare; `Idempotency-Key` makes a retry safe."""
    deps, caller = request.app[DEPS], identity_of(request)
    body = await parse_body(request, DeclareBody)
    if deps.config.service(body.service) is None:
        known = ", ".join(s.id for s in deps.config.services) or "none configured"
        raise UserError(f"unknown service {body.service!r}", fields={"service": f"known: {known}"})
    key = request.headers.get("Idempotency-Key")
    if key is not None and not 0 < len(key) <= MAX_IDEMPOTENCY_KEY:
        raise UserError(
            "Idempotency-Key must be 1 to 255 characters",
            fields={"Idempotency-Key": "empty or too long"},
        )
    new = NewIncident(
        title=body.title,
        severity=body.severity,
        service_id=body.service,
        description=body.description,
        source="api",
        actor=caller.actor,
        created_by=caller.actor,
        text=f"Declared: {body.title}",
        dedup_key=f"api:{body.dedup_key}" if body.dedup_key else None,
    )
    answer = await deps.changes.declare(
        new=new,
        namespace=caller.actor,
        idempotency_key=key,
        body_sha256=body_digest(body.model_dump(mode="json")),
    )
    headers = {"Idempotent-Replayed": "true"} if answer.replayed else None
    return web.json_response(answer.body, status=answer.status, headers=headers)


async def patch_incident(request: web.Request) -> web.Response:
    """`PATCH /api/v1/incidents/{id}`: status and/or severity; 409 names the allowed moves."""
    deps, caller = request.app[DEPS], identity_of(request)
    incident_id = _incident_id(request)
    body = await parse_body(request, PatchBody)
    try:
        incident = await deps.changes.change(
            incident_id=incident_id,
            status=Status(body.status) if body.status else None,
            severity=body.severity,
            by=caller.actor,
        )
    except InvalidTransition as exc:
        raise refusal(await deps.incidents.get(incident_id=incident_id), exc) from None
    return web.json_response(incident.to_json())


async def add_note(request: web.Request) -> web.Response:
    """`POST /api/v1/incidents/{id}/notes`: on the timeline and in the incident channel."""
    deps, caller = request.app[DEPS], identity_of(request)
    incident_id = _incident_id(request)
    body = await parse_body(request, NoteBody)
    note = await deps.changes.add_note(incident_id=incident_id, text=body.text, by=caller.actor)
    return web.json_response(note, status=201)


async def escalate(request: web.Request) -> web.Response:
    """`POST /api/v1/incidents/{id}/escalate`: page the next level now."""
    deps, caller = request.app[DEPS], identity_of(request)
    incident_id = _incident_id(request)
    message = await deps.escalations.escalate_now(incident_id=incident_id, by=caller.actor)
    return web.json_response({"incident_id": incident_id, "message": message})


def _shift(shift: Shift) -> dict[str, Any]:
    return {
        "user": shift.user,
        "start": _iso(shift.start),
        "end": _iso(shift.end),
        "override_id": shift.override.id if shift.override else None,
    }


def _iso(value: Any) -> str:
    return str(value.isoformat().replace("+00:00", "Z"))


async def oncall(request: web.Request) -> web.Response:
    """`GET /api/v1/oncall?team=ID` or `?schedule=ID` (neither: every team)."""
    deps = request.app[DEPS]
    team, schedule = request.query.get("team") or None, request.query.get("schedule") or None
    if team and schedule:
        raise UserError("give team or schedule, not both", fields={"schedule": "with team"})
    if team and deps.config.team(team) is None:
        raise NotFound(f"no team {team!r}", fields={"team": "unknown"})
    if schedule and deps.config.schedule(schedule) is None:
        raise NotFound(f"no schedule {schedule!r}", fields={"schedule": "unknown"})
    found = await deps.oncall.who(selector=team or schedule)
    body = {
        "teams": [
            {
                "team": t.team.id,
                "name": t.team.name,
                "schedules": [
                    {
                        "schedule": s.schedule.id,
                        "current": _shift(s.current),
                        "next": _shift(s.next) if s.next else None,
                    }
                    for s in t.schedules
                ],
            }
            for t in found
        ]
    }
    return web.json_response(body)


def _override(o: StoredOverride) -> dict[str, Any]:
    return {
        "id": o.id,
        "schedule": o.schedule_id,
        "user": o.user,
        "start": _iso(o.start),
        "end": _iso(o.end),
        "created_at": _iso(o.created_at),
        "created_by": o.created_by,
    }


async def list_overrides(request: web.Request) -> web.Response:
    """`GET /api/v1/overrides[?schedule=ID]`: overrides not yet over, soonest first."""
    deps = request.app[DEPS]
    schedule = request.query.get("schedule") or None
    found = await deps.oncall.overrides(schedule_id=schedule)
    return web.json_response({"overrides": [_override(o) for o in found]})


async def create_override(request: web.Request) -> web.Response:
    """`POST /api/v1/overrides`: `user` on call for `schedule` over [start, end)."""
    deps, caller = request.app[DEPS], identity_of(request)
    body = await parse_body(request, OverrideBody)
    added = await deps.oncall.add_override(
        schedule_id=body.schedule,
        user=body.user,
        start=body.start,
        end=OverrideEnd(instant=body.end),
        by=caller.actor,
    )
    return web.json_response(_override(added.override), status=201)


async def delete_override(request: web.Request) -> web.Response:
    """`DELETE /api/v1/overrides/{id}`: remove an override; answers what was removed."""
    deps, caller = request.app[DEPS], identity_of(request)
    override_id = ascii_number(request.match_info["id"])
    if override_id is None:
        raise UserError("the override id must be a whole number", fields={"id": "not an id"})
    removed = await deps.oncall.remove_override(override_id=override_id, by=caller.actor)
    return web.json_response(_override(removed))


def _silence(silence: Silence, now: datetime, held: int | None = None) -> dict[str, Any]:
    return {
        "id": silence.id,
        "matchers": [str(m) for m in silence.matchers],
        "starts_at": _iso(silence.starts_at),
        "ends_at": _iso(silence.ends_at),
        "comment": silence.comment,
        "created_by": silence.created_by,
        "created_at": _iso(silence.created_at),
        "status": silence.state(now).value,
        "expired_at": _iso(silence.expired_at) if silence.expired_at else None,
        "expired_by": silence.expired_by,
        "held_alerts": held,
    }


async def list_silences(request: web.Request) -> web.Response:
    """`GET /api/v1/silences`: silences active or pending, ending soonest first."""
    deps = request.app[DEPS]
    found = await deps.silences.current()
    now = deps.clock.now()
    return web.json_response({"silences": [_silence(v.silence, now, v.held) for v in found]})


async def create_silence(request: web.Request) -> web.Response:
    """`POST /api/v1/silences`: mute matching alerts until `ends_at`."""
    deps, caller = request.app[DEPS], identity_of(request)
    body = await parse_body(request, SilenceBody)
    silence = await deps.silences.create(
        matchers=[parse_matcher(text) for text in body.matchers],
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        comment=body.comment,
        by=caller.actor,
    )
    return web.json_response(_silence(silence, deps.clock.now()), status=201)


async def delete_silence(request: web.Request) -> web.Response:
    """`DELETE /api/v1/silences/{id}`: expire a silence now; answers it as expired."""
    deps, caller = request.app[DEPS], identity_of(request)
    silence_id = ascii_number(request.match_info["id"].removeprefix("#"))
    if silence_id is None:
        raise UserError("the silence id must be a whole number", fields={"id": "not an id"})
    expired = await deps.silences.expire(silence_id=silence_id, by=caller.actor)
    return web.json_response(_silence(expired, deps.clock.now()))


MAX_SUPPRESSED = 200


def _suppressed(alert: SuppressedAlert) -> dict[str, Any]:
    return {
        "integration": alert.integration,
        "fingerprint": alert.fingerprint,
        "title": alert.alert.title,
        "labels": dict(alert.alert.labels),
        "reason": alert.reason,
        "by": alert.by,
        "silence_id": alert.silence_id,
        "window": alert.window,
        "status": alert.status,
        "occurrences": alert.occurrences,
        "first_seen_at": _iso(alert.first_seen_at),
        "last_seen_at": _iso(alert.last_seen_at),
        "held_until": _iso(alert.held_until) if alert.held_until else None,
        "released_at": _iso(alert.released_at) if alert.released_at else None,
        "released_incident_id": alert.released_incident_id,
    }


def _choice(request: web.Request, name: str, allowed: tuple[str, ...]) -> str | None:
    value = request.query.get(name) or None
    if value is not None and value not in allowed:
        raise UserError(
            f"{name} must be one of {', '.join(allowed)}", fields={name: "unknown value"}
        )
    return value


async def list_suppressed(request: web.Request) -> web.Response:
    """`GET /api/v1/suppressed-alerts`: alerts that opened no incident, newest first;
    `?reason=muted|dropped`, `?silence=ID`, `?window=NAME`, `?status=firing|resolved`."""
    deps = request.app[DEPS]
    reason = _choice(request, "reason", ("muted", "dropped"))
    status = _choice(request, "status", ("firing", "resolved"))
    raw_silence = request.query.get("silence") or None
    silence_id = ascii_number(raw_silence.removeprefix("#")) if raw_silence else None
    if raw_silence and silence_id is None:
        raise UserError("silence must be a silence id", fields={"silence": "not an id"})
    raw_limit = request.query.get("limit") or "100"
    limit = ascii_number(raw_limit)
    if limit is None or not 1 <= limit <= MAX_SUPPRESSED:
        raise UserError(
            f"limit must be a whole number from 1 to {MAX_SUPPRESSED}",
            fields={"limit": "out of range"},
        )
    found = await deps.silences.suppressed(
        reason=reason,
        silence_id=silence_id,
        window=request.query.get("window") or None,
        status=status,
        limit=limit,
    )
    return web.json_response({"alerts": [_suppressed(a) for a in found]})


def register(app: web.Application) -> None:
    """Add the write and on-call routes (they read `deps` from `app[DEPS]`)."""
    app.router.add_post("/api/v1/incidents", declare)
    app.router.add_patch("/api/v1/incidents/{id}", patch_incident)
    app.router.add_post("/api/v1/incidents/{id}/notes", add_note)
    app.router.add_post("/api/v1/incidents/{id}/escalate", escalate)
    app.router.add_get("/api/v1/oncall", oncall)
    app.router.add_get("/api/v1/overrides", list_overrides)
    app.router.add_post("/api/v1/overrides", create_override)
    app.router.add_delete("/api/v1/overrides/{id}", delete_override)
    app.router.add_get("/api/v1/silences", list_silences)
    app.router.add_post("/api/v1/silences", create_silence)
    app.router.add_delete("/api/v1/silences/{id}", delete_silence)
    app.router.add_get("/api/v1/suppressed-alerts", list_suppressed)
