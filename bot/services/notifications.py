"""Notifications beyond Slack planned with each page of a person (one row and one delayed
outbox row per method, in the page's transaction), and cancelled when the incident is
acknowledged or resolved."""

from __future__ import annotations

from datetime import datetime

from bot.config import PulseOpsConfig
from bot.delivery.kinds import OutboxKind
from bot.domain.contacts import TYPE_LABELS, mask, plan
from bot.domain.durations import format_duration
from bot.domain.records import Incident
from bot.services.contacts import methods_and_rules
from store.incidents import TimelineRepository
from store.notifications import Notification, NotificationRepository
from store.unit_of_work import UnitOfWork


def described(n: Notification) -> str:
    """How timelines, Slack and logs name a notification: `SMS to +49••••••••678`."""
    return f"{TYPE_LABELS[n.method_type]} to {mask(n.method_type, n.destination)}"


class NotificationPlanner:
    """Hooks inside the incident's own transaction: plan a page's notifications, cancel them."""

    def __init__(self, *, config: PulseOpsConfig) -> None:
        self.config = config

    async def plan(
        self, uow: UnitOfWork, incident: Incident, *, page_id: int, user: str, now: datetime
    ) -> int:
        """Record the notifications of one page of `user`; return how many."""
        methods, rules = await methods_and_rules(uow.session, self.config, user)
        planned = plan(methods, rules, paged_at=now)
        if not planned:
            return 0
        repo = NotificationRepository(uow.session)
        parts: list[str] = []
        for item in planned:
            notification_id = await repo.add(
                incident_id=incident.id,
                page_id=page_id,
                user=user,
                method_id=item.method.id,
                method_type=item.method.type,
                destination=item.method.destination,
                due_at=item.due_at,
                now=now,
            )
            await uow.enqueue(
                kind=OutboxKind.NOTIFY,
                incident_id=incident.id,
                now=now,
                due_at=item.due_at,
                payload={"notification_id": notification_id},
            )
            delay = item.due_at - now
            when = "now" if not delay else f"after {format_duration(delay)}"
            label = TYPE_LABELS[item.method.type]
            parts.append(f"{label} to {mask(item.method.type, item.method.destination)} {when}")
        await TimelineRepository(uow.session).add(
            incident_id=incident.id,
            at=now,
            kind="notifications_planned",
            actor="pulseops",
            text=f"Notifying <@{user}> unless acknowledged: " + "; ".join(parts),
            data={"user": user, "page_id": page_id, "count": len(planned)},
        )
        return len(planned)

    async def cancel(self, uow: UnitOfWork, incident_id: int, now: datetime) -> None:
        """Acknowledged or resolved: every notification not yet sent is cancelled."""
        cancelled = await NotificationRepository(uow.session).cancel_open(
            incident_id=incident_id, now=now
        )
        if not cancelled:
            return
        await TimelineRepository(uow.session).add(
            incident_id=incident_id,
            at=now,
            kind="notifications_cancelled",
            actor="pulseops",
            text="Cancelled pending notifications: " + ", ".join(described(n) for n in cancelled),
            data={"notification_ids": [n.id for n in cancelled]},
        )
