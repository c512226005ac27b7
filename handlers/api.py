"""Read-only HTTP API and probes: incidents and statistics as JSON, /healthz, /readyz, /metrics."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from aiohttp import web

from bot.deps import DEPS, Deps
from bot.domain import Status
from bot.domain.records import Incident
from bot.errors import UserError
from handlers.refs import parse_incident_ref
from store.incidents import LIST_DESCRIPTION_CHARS, IncidentFilter
from store.stats import GROUP_BY, GroupBy

MAX_PAGE = 200
STATS_DEFAULT_PERIOD = timedelta(days=7)


def _int(request: web.Request, name: str, default: int, *, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise UserError(f"{name} must be a whole number", fields={name: "not an integer"}) from None
    if not lo <= value <= hi:
        raise UserError(f"{name} must be between {lo} and {hi}", fields={name: "out of range"})
    return value


def _filters(request: web.Request, deps: Deps) -> IncidentFilter:
    statuses: list[Status] = []
    for raw in request.query.getall("status", []):
        for word in raw.split(","):
            if word == "open":
                statuses += [Status.TRIGGERED, Status.ACKNOWLEDGED]
            elif word:
                try:
                    statuses.append(Status(word))
                except ValueError:
                    raise UserError(
                        "status must be triggered, acknowledged, resolved or open",
                        fields={"status": f"unknown status {word!r}"},
                    ) from None
    service = request.query.get("service") or None
    if service and deps.config.service(service) is None:
        raise UserError(f"unknown service {service!r}", fields={"service": "unknown"})
    team = request.query.get("team") or None
    if team and deps.config.team(team) is None:
        raise UserError(f"unknown team {team!r}", fields={"team": "unknown"})
    return IncidentFilter(status=tuple(dict.fromkeys(statuses)), service_id=service, team_id=team)


def _instant(request: web.Request, name: str) -> datetime | None:
    """An ISO 8601 date (midnight UTC) or date-time (no offset: UTC) from the query string."""
    raw = (request.query.get(name) or "").strip()
    if not raw:
        return None
    raw = raw.replace(" ", "+")  # an unencoded "+01:00" arrives as " 01:00"
    try:
        if len(raw) == 10:
            value = datetime.combine(date.fromisoformat(raw), datetime.min.time(), tzinfo=UTC)
        else:
            value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        _ = value - STATS_DEFAULT_PERIOD  # the default window must fit the calendar too
    except ValueError:
        raise UserError(
            f"{name} must be an ISO 8601 date or date-time, e.g. 2026-11-16 or "
            "2026-11-16T09:00:00Z",
            fields={name: "not an ISO 8601 date or date-time"},
        ) from None
    except OverflowError:
        raise UserError(
            f"{name} is out of range once converted to UTC",
            fields={name: "out of range once converted to UTC"},
        ) from None
    return value


def _stats_query(
    request: web.Request, deps: Deps
) -> tuple[datetime, datetime, GroupBy | None, str | None, str | None]:
    until = _instant(request, "until") or deps.clock.now()
    since = _instant(request, "since") or until - STATS_DEFAULT_PERIOD
    if since >= until:
        raise UserError("since must be before until", fields={"since": "not before until"})
    group_by = request.query.get("group_by") or None
    if group_by is not None and group_by not in GROUP_BY:
        raise UserError(
            f"group_by must be one of {', '.join(GROUP_BY)}",
            fields={"group_by": f"unknown grouping {group_by[:40]!r}"},
        )
    filters = _filters(request, deps)
    if request.query.get("status"):
        raise UserError("stats take no status filter", fields={"status": "not supported here"})
    return since, until, group_by, filters.team_id, filters.service_id


def _listed(incident: Incident) -> dict[str, Any]:
    """An incident as a list shows it: a long description cut, `description_truncated` saying
    so (`GET /api/v1/incidents/{id}` has the whole text)."""
    body = incident.to_json()
    truncated = len(incident.description) > LIST_DESCRIPTION_CHARS
    if truncated:
        body["description"] = incident.description[:LIST_DESCRIPTION_CHARS]
    body["description_truncated"] = truncated
    return body


async def list_incidents(request: web.Request) -> web.Response:
    """`GET /api/v1/incidents`: a page of incidents matching the filters, newest first."""
    deps = request.app[DEPS]
    filters = _filters(request, deps)
    limit = _int(request, "limit", 50, lo=1, hi=MAX_PAGE)
    offset = _int(request, "offset", 0, lo=0, hi=10**9)
    incidents, total = await deps.incidents.list_incidents(
        filters=filters, limit=limit, offset=offset
    )
    body = {
        "incidents": [_listed(i) for i in incidents],
        "total": total,
        "limit": limit,
        "offset": offset,
        "next_offset": offset + limit if offset + limit < total else None,
    }
    return web.json_response(body)


async def get_incident(request: web.Request) -> web.Response:
    """`GET /api/v1/incidents/{id}`: one incident with its timeline and alerts."""
    deps = request.app[DEPS]
    incident_id = parse_incident_ref(request.match_info["id"], replies=deps.renderer.replies)
    incident, events, alerts = await deps.incidents.details(incident_id=incident_id)
    body = incident.to_json()
    body["timeline"] = [e.to_json() for e in events]
    body["alerts"] = [a.to_json() for a in alerts]
    return web.json_response(body)


async def get_postmortem(request: web.Request) -> web.Response:
    """`GET /api/v1/incidents/{id}/postmortem.md`: the postmortem draft as it stands now."""
    deps = request.app[DEPS]
    incident_id = parse_incident_ref(request.match_info["id"], replies=deps.renderer.replies)
    document = await deps.postmortems.render(incident_id=incident_id)
    return web.Response(text=document, content_type="text/markdown", charset="utf-8")


async def stats(request: web.Request) -> web.Response:
    """`GET /api/v1/stats`: figures for a period, optionally grouped and filtered."""
    deps = request.app[DEPS]
    since, until, group_by, team_id, service_id = _stats_query(request, deps)
    found = await deps.stats.period(
        since=since, until=until, group_by=group_by, team_id=team_id, service_id=service_id
    )
    return web.json_response(found.to_json())


async def healthz(_: web.Request) -> web.Response:
    """`GET /healthz`: the process answers."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """`GET /readyz`: the database answers, can write and is at the head migration, and nothing
    has fallen behind (outbox, periodic jobs, escalation and handoff deadlines)."""
    readiness = await request.app[DEPS].health.check()
    return web.json_response(
        readiness.body, status=200 if readiness.ok else 503, headers=readiness.headers
    )


async def metrics(request: web.Request) -> web.Response:
    """`GET /metrics`: Prometheus text exposition."""
    deps = request.app[DEPS]
    await deps.outbox.update_gauges()
    await deps.health.update_gauges()
    return web.Response(body=deps.metrics.render(), content_type="text/plain", charset="utf-8")


def register(app: web.Application, deps: Deps) -> None:
    """Add the API and probe routes (they read `deps` from `app[DEPS]`)."""
    app.router.add_get("/api/v1/incidents", list_incidents)
    app.router.add_get("/api/v1/incidents/{id}", get_incident)
    app.router.add_get("/api/v1/incidents/{id}/postmortem.md", get_postmortem)
    app.router.add_get("/api/v1/stats", stats)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
