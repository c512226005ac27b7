"""The OpenAPI 3.1 document of `/api/v1`, generated from the pydantic models the handlers
validate with (`handlers.api_models`) and one table of operations; served at
`GET /api/v1/openapi.json` without a token."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from bot import __version__
from handlers.api_models import (
    DeclareBody,
    ErrorOut,
    EscalateOut,
    IncidentDetail,
    IncidentList,
    IncidentOut,
    NoteBody,
    NoteOut,
    OnCallOut,
    OverrideBody,
    OverrideList,
    OverrideOut,
    PatchBody,
    ProbeList,
    ProbeResults,
    SilenceBody,
    SilenceList,
    SilenceOut,
    SloList,
    StatsOut,
    SuppressedAlertList,
)
from store.stats import GROUP_BY

ERRORS = {
    400: "Bad input: `fields` names every bad field",
    401: "No valid API token",
    403: "The token lacks the scope this call needs (`fields.scope` names it)",
    404: "No such incident, schedule, team, override, silence or probe",
    408: "The body did not arrive in time",
    409: "Conflicts with the current state (e.g. an illegal status change)",
    413: "The body is too large",
    429: "Over the token's rate limit: retry after `Retry-After` seconds",
    503: "The database cannot write now: retry after `Retry-After` seconds",
}


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    schema: dict[str, Any]
    where: Literal["query", "path", "header"] = "query"
    description: str = ""


ID = Param("id", {"type": "string", "pattern": "^\\S{1,20}$"}, "path", "42, INC-42 or #42")


@dataclass(frozen=True, slots=True)
class Operation:
    method: str
    path: str
    summary: str
    ok: tuple[int, type[BaseModel]]
    body: type[BaseModel] | None = None
    params: tuple[Param, ...] = ()
    extra_ok: tuple[tuple[int, type[BaseModel]], ...] = field(default=())


_TEXT = {"type": "string", "maxLength": 200}
_INCIDENT_FILTERS = (
    Param("service", _TEXT, description="a service id"),
    Param("team", _TEXT, description="a team id"),
)
OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "get",
        "/api/v1/incidents",
        "List incidents, newest first (long descriptions cut)",
        (200, IncidentList),
        params=(
            Param(
                "status",
                _TEXT,
                description="triggered, acknowledged, resolved or open; comma-separated",
            ),
            *_INCIDENT_FILTERS,
            Param("limit", {"type": "integer", "minimum": 1, "maximum": 200}),
            Param("offset", {"type": "integer", "minimum": 0, "maximum": 10**9}),
        ),
    ),
    Operation(
        "post",
        "/api/v1/incidents",
        "Declare an incident (honours Idempotency-Key)",
        (201, IncidentOut),
        body=DeclareBody,
        params=(Param("Idempotency-Key", {"type": "string", "maxLength": 255}, "header"),),
        extra_ok=((200, IncidentOut),),
    ),
    Operation(
        "get",
        "/api/v1/incidents/{id}",
        "One incident with its timeline and alerts",
        (200, IncidentDetail),
        params=(ID,),
    ),
    Operation(
        "patch",
        "/api/v1/incidents/{id}",
        "Change status and/or severity (409 names the allowed status changes)",
        (200, IncidentOut),
        body=PatchBody,
        params=(ID,),
    ),
    Operation(
        "post",
        "/api/v1/incidents/{id}/notes",
        "Add a note: on the timeline and in the incident channel",
        (201, NoteOut),
        body=NoteBody,
        params=(ID,),
    ),
    Operation(
        "post",
        "/api/v1/incidents/{id}/escalate",
        "Page the next escalation level now",
        (200, EscalateOut),
        params=(ID,),
    ),
    Operation(
        "get",
        "/api/v1/stats",
        "Figures for a period: MTTA, MTTR, counts",
        (200, StatsOut),
        params=(
            Param("since", _TEXT, description="ISO 8601 date or date-time"),
            Param("until", _TEXT, description="ISO 8601 date or date-time"),
            Param("group_by", {"type": "string", "enum": list(GROUP_BY)}),
            *_INCIDENT_FILTERS,
        ),
    ),
    Operation(
        "get",
        "/api/v1/oncall",
        "Who is on call now, until when, and who is next",
        (200, OnCallOut),
        params=(Param("team", _TEXT), Param("schedule", _TEXT)),
    ),
    Operation(
        "get",
        "/api/v1/overrides",
        "Overrides not yet over, soonest first",
        (200, OverrideList),
        params=(Param("schedule", _TEXT),),
    ),
    Operation(
        "post", "/api/v1/overrides", "Create an override", (201, OverrideOut), body=OverrideBody
    ),
    Operation(
        "delete",
        "/api/v1/overrides/{id}",
        "Remove an override",
        (200, OverrideOut),
        params=(Param("id", {"type": "string", "pattern": "^\\S{1,20}$"}, "path"),),
    ),
    Operation("get", "/api/v1/probes", "Every probe's state and uptime", (200, ProbeList)),
    Operation(
        "get",
        "/api/v1/slos",
        "Every SLO over an alert source: error budget left and burn rates",
        (200, SloList),
    ),
    Operation(
        "get",
        "/api/v1/probes/{id}/results",
        "A probe's raw results, oldest first (default: the last hour)",
        (200, ProbeResults),
        params=(
            Param("id", {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,99}$"}, "path"),
            Param("since", _TEXT, description="ISO 8601 date or date-time"),
            Param("limit", {"type": "integer", "minimum": 1, "maximum": 5000}),
        ),
    ),
    Operation(
        "get",
        "/api/v1/silences",
        "Silences active or pending, ending soonest first, with the alerts each holds",
        (200, SilenceList),
    ),
    Operation(
        "post",
        "/api/v1/silences",
        "Create a silence: alerts matching every matcher open no incident until ends_at",
        (201, SilenceOut),
        body=SilenceBody,
    ),
    Operation(
        "delete",
        "/api/v1/silences/{id}",
        "Expire a silence now (what it holds and still fires opens its incident)",
        (200, SilenceOut),
        params=(Param("id", {"type": "string", "pattern": "^\\S{1,20}$"}, "path"),),
    ),
    Operation(
        "get",
        "/api/v1/suppressed-alerts",
        "Alerts that opened no incident (muted by a silence or window, or dropped), newest first",
        (200, SuppressedAlertList),
        params=(
            Param("reason", {"type": "string", "enum": ["muted", "dropped"]}),
            Param("silence", _TEXT, description="a silence id"),
            Param("window", _TEXT, description="a maintenance window's name"),
            Param("status", {"type": "string", "enum": ["firing", "resolved"]}),
            Param("limit", {"type": "integer", "minimum": 1, "maximum": 200}),
        ),
    ),
)

_REF = "#/components/schemas/{model}"


def _json(model: type[BaseModel]) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": _REF.format(model=model.__name__)}}}


def _operation(op: Operation) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, model in (op.ok, *op.extra_ok):
        responses[str(status)] = {"description": "OK", "content": _json(model)}
    for status, what in ERRORS.items():
        responses[str(status)] = {"description": what, "content": _json(ErrorOut)}
    answer: dict[str, Any] = {
        "summary": op.summary,
        "operationId": f"{op.method}_{op.path.removeprefix('/api/v1/')}".replace("/", "_")
        .replace("{", "")
        .replace("}", ""),
        "responses": responses,
    }
    if op.params:
        answer["parameters"] = [
            {
                "name": p.name,
                "in": p.where,
                "required": p.where == "path",
                "schema": p.schema,
                **({"description": p.description} if p.description else {}),
            }
            for p in op.params
        ]
    if op.body is not None:
        answer["requestBody"] = {"required": True, "content": _json(op.body)}
    return answer


def _postmortem_operation() -> dict[str, Any]:
    """The one route that answers Markdown rather than JSON."""
    op = _operation(
        Operation(
            "get",
            "/api/v1/incidents/{id}/postmortem.md",
            "The incident's postmortem draft (Markdown, from the configured template)",
            (200, ErrorOut),  # replaced below
            params=(ID,),
        )
    )
    op["operationId"] = "get_incidents_id_postmortem"
    op["responses"]["200"] = {
        "description": "OK",
        "content": {"text/markdown": {"schema": {"type": "string"}}},
    }
    return op


@cache
def openapi_document() -> dict[str, Any]:
    """The whole document (built once: it depends only on the code)."""
    bodies = {op.body for op in OPERATIONS if op.body is not None}
    answers = {m for op in OPERATIONS for _, m in (op.ok, *op.extra_ok)} | {ErrorOut}
    keyed = [(m, "validation") for m in sorted(bodies, key=lambda m: m.__name__)] + [
        (m, "serialization") for m in sorted(answers, key=lambda m: m.__name__)
    ]
    _, schemas = models_json_schema(keyed, ref_template=_REF)  # type: ignore[arg-type]
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op)
    paths["/api/v1/incidents/{id}/postmortem.md"] = {"get": _postmortem_operation()}
    paths["/api/v1/openapi.json"] = {
        "get": {
            "summary": "This document",
            "operationId": "get_openapi",
            "security": [],
            "responses": {
                "200": {
                    "description": "OK",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            },
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "PulseOps API",
            "version": __version__,
            "description": "Incidents, on-call, overrides, silences, probes and SLOs. Every "
            "route but this document needs `Authorization: Bearer <api token>`: `read` for "
            "GET, `write` for changes.",
        },
        "servers": [{"url": "/"}],
        "components": {
            "schemas": schemas.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": paths,
    }


async def openapi_json(_: web.Request) -> web.Response:
    """`GET /api/v1/openapi.json`: the OpenAPI 3.1 document (no token needed)."""
    return web.json_response(openapi_document())


def register(app: web.Application) -> None:
    app.router.add_get("/api/v1/openapi.json", openapi_json)
