"""Changes people make, through the API or Slack: declare with an Idempotency-Key, status,
severity, roles, notes (timeline + channel), each in one transaction."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.clock import Clock
from bot.config import IntegrationConfig, PulseOpsConfig
from bot.delivery.kinds import OutboxKind
from bot.domain import Acknowledge, Resolve, Severity, Status
from bot.domain.incident import InvalidTransition, Role, moves_from
from bot.domain.records import Incident, NewIncident
from bot.errors import Conflict
from bot.services.incidents import IncidentService
from store.incidents import IncidentFilter, IncidentRepository, TimelineRepository
from store.outbox import IdempotencyRepository
from store.unit_of_work import UnitOfWork

COMMAND_FOR_STATUS: dict[Status, type[Acknowledge] | type[Resolve]] = {
    Status.ACKNOWLEDGED: Acknowledge,
    Status.RESOLVED: Resolve,
}
"""The statuses a client may ask for, and the state-machine command that moves there."""


@dataclass(frozen=True, slots=True)
class Declared:
    """What a declare answered: 201 for a new incident, 200 for one its dedup key found."""

    status: int
    body: dict[str, Any]
    replayed: bool = False


def body_digest(body: object) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


class IncidentChanges:
    """Declare, status, severity and notes for API callers (`by` is `api:<token name>`)."""

    def __init__(self, *, incidents: IncidentService, config: PulseOpsConfig, clock: Clock) -> None:
        self.incidents = incidents
        self.config = config
        self.clock = clock

    async def declare(
        self,
        *,
        new: NewIncident,
        namespace: str,
        idempotency_key: str | None,
        body_sha256: str,
    ) -> Declared:
        """Open `new` (or find the open incident with its dedup key) and record the answer
        under the Idempotency-Key in the same transaction; a repeated key replays it.

        Raises Conflict when the key was used with a different body.
        """

        async def work(uow: UnitOfWork) -> Declared:
            now = self.clock.now()
            keys = IdempotencyRepository(uow.session)
            if idempotency_key is not None:
                seen = await keys.get(integration=namespace, key=idempotency_key, now=now)
                if seen is not None:
                    if seen.body_sha256 != body_sha256:
                        raise Conflict(
                            "Idempotency-Key was already used with a different body",
                            fields={"Idempotency-Key": "reused with a different body"},
                        )
                    return Declared(status=seen.status, body=seen.body, replayed=True)
            existing = None
            if new.dedup_key is not None:
                existing = await IncidentRepository(uow.session).get_open_by_dedup_key(
                    dedup_key=new.dedup_key
                )
            if existing is not None:
                answer = Declared(status=200, body=existing.to_json())
            else:
                opened = await self.incidents.open(uow, new, now=now)
                answer = Declared(status=201, body=opened.to_json())
            if idempotency_key is not None:
                await keys.put(
                    integration=namespace,
                    key=idempotency_key,
                    body_sha256=body_sha256,
                    status_code=answer.status,
                    response=answer.body,
                    now=now,
                    expires_at=now + self.config.incidents.idempotency_ttl,
                )
            return answer

        return await self.incidents.write(work)

    async def change(
        self, *, incident_id: int, status: Status | None, severity: Severity | None, by: str
    ) -> Incident:
        """Move the incident to `status` and/or `severity`; the status first, so a refused
        move (InvalidTransition) leaves the severity unchanged too."""
        if status is not None:
            current = await self.incidents.get(incident_id=incident_id)
            if current.status is not status:
                await self.incidents.transition(
                    incident_id=incident_id, command=COMMAND_FOR_STATUS[status](by=by)
                )
        if severity is not None:
            await self.change_severity(incident_id=incident_id, severity=severity, by=by)
        return await self.incidents.get(incident_id=incident_id)

    async def change_severity(
        self, *, incident_id: int, severity: Severity, by: str
    ) -> Severity | None:
        """Change the severity (see `IncidentService.change_severity`) in a transaction of
        its own; the old one, or None when it was `severity` already."""
        return await self.incidents.write(
            lambda uow: self.incidents.change_severity(
                uow, incident_id=incident_id, severity=severity, by=by, now=self.clock.now()
            )
        )

    async def set_severity(
        self, uow: UnitOfWork, *, incident_id: int, severity: Severity, by: str, now: datetime
    ) -> bool:
        """Change the severity in the caller's transaction (a workflow step); False when it
        already was."""
        before = await self.incidents.change_severity(
            uow, incident_id=incident_id, severity=severity, by=by, now=now
        )
        return before is not None

    async def set_role(self, *, incident_id: int, role: Role, user: str, by: str) -> bool:
        """Give `role` to `user`; False when they hold it already (nothing changes)."""
        return await self.incidents.write(
            lambda uow: self.incidents.assign_role(
                uow, incident_id=incident_id, role=role, user=user, by=by, now=self.clock.now()
            )
        )

    async def add_note(self, *, incident_id: int, text: str, by: str) -> dict[str, Any]:
        """Add a note to the timeline and have the outbox post it in the incident channel."""

        async def work(uow: UnitOfWork) -> dict[str, Any]:
            now = self.clock.now()
            incident = await IncidentRepository(uow.session).get(incident_id=incident_id)
            await TimelineRepository(uow.session).add(
                incident_id=incident_id, at=now, kind="note", actor=by, text=text
            )
            events = self.incidents.workflows.events if self.incidents.workflows else None
            if events is not None:
                await events.emit(
                    uow, "incident.note_added", incident, actor=by, now=now, data={"text": text}
                )
            await uow.enqueue(
                kind=OutboxKind.NOTE,
                incident_id=incident_id,
                now=now,
                payload={"actor": by, "text": text},
            )
            return {
                "incident_id": incident_id,
                "kind": "note",
                "actor": by,
                "text": text,
                "at": now.isoformat().replace("+00:00", "Z"),
            }

        return await self.incidents.write(work)

    async def record_change(
        self, *, integration: IntegrationConfig, summary: str, data: dict[str, Any]
    ) -> list[int]:
        """A change (a deploy, a config push) on the timeline of every open incident of the
        integration's service (or, without one, of the incidents the integration opened), and
        posted in their channels. Returns the incident ids."""

        async def work(uow: UnitOfWork) -> list[int]:
            now = self.clock.now()
            filters = IncidentFilter(
                status=(Status.TRIGGERED, Status.ACKNOWLEDGED),
                service_id=integration.service,
                integration=None if integration.service else integration.name,
            )
            incidents, _ = await IncidentRepository(uow.session).list(
                filters=filters, limit=MAX_CHANGE_TARGETS
            )
            actor = f"monitor:{integration.name}"
            text = f"Change: {summary}"
            for incident in incidents:
                await TimelineRepository(uow.session).add(
                    incident_id=incident.id,
                    at=now,
                    kind="change",
                    actor=actor,
                    text=text,
                    data=data,
                )
                await uow.enqueue(
                    kind=OutboxKind.NOTE,
                    incident_id=incident.id,
                    now=now,
                    payload={"actor": actor, "text": text},
                )
            return [incident.id for incident in incidents]

        return await self.incidents.write(work)


MAX_CHANGE_TARGETS = 100  # open incidents one change event is recorded on, newest first


def refusal(incident: Incident, error: InvalidTransition) -> Conflict:
    """A 409 naming the statuses the incident may move to from where it is."""
    allowed = [
        to.value
        for command, to in moves_from(error.status).items()
        if to in COMMAND_FOR_STATUS and COMMAND_FOR_STATUS[to] is command
    ]
    named = ", ".join(allowed) if allowed else "none"
    return Conflict(
        f"cannot {error.command.verb} {incident.number}: it is {error.status.value}; "
        f"allowed status changes from {error.status.value}: {named}",
        fields={"status": f"allowed from {error.status.value}: {named}"},
    )
