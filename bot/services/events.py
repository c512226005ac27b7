"""The event stream: each incident change (and each alert received) becomes one event with a
unique id, recorded as one outbox row per subscribed sink in the change's own transaction, so
every sink gets every event exactly once (consumers and JetStream deduplicate on the id if a
crash makes a delivery repeat)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from bot.config import PulseOpsConfig
from bot.delivery.kinds import OutboxKind
from bot.domain.events import EventType, event_body
from bot.domain.records import Incident
from store.unit_of_work import UnitOfWork


class EventStream:
    def __init__(self, *, config: PulseOpsConfig) -> None:
        self.config = config

    def wanted(self, event_type: EventType) -> bool:
        return any(sink.wants(event_type) for sink in self.config.event_sinks)

    async def emit(
        self,
        uow: UnitOfWork,
        event_type: EventType,
        incident: Incident,
        *,
        actor: str,
        now: datetime,
        data: dict[str, Any] | None = None,
    ) -> str | None:
        """Publish one event to every sink that subscribed to its type; return its id."""
        sinks = [i for i, sink in enumerate(self.config.event_sinks) if sink.wants(event_type)]
        if not sinks:
            return None
        event_id = str(uuid.uuid4())
        body = event_body(
            event_id=event_id,
            event_type=event_type,
            time=now,
            actor=actor,
            incident=incident.to_json(),
            data=data,
        )
        for index in sinks:
            await uow.enqueue(
                kind=OutboxKind.EVENT,
                incident_id=incident.id,
                now=now,
                payload={"sink": index, "url": self.config.event_sinks[index].url, "event": body},
            )
        return event_id
