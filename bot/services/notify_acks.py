"""Acknowledgements that arrive from outside Slack: the e-mail's link, a reply to the SMS,
a key pressed on the call; and Twilio's reports of what became of a message."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from bot.clock import Clock
from bot.domain import Acknowledge, Status
from bot.domain.contacts import BadLink, read_link
from bot.domain.records import Incident
from bot.errors import NotFound, UserError
from bot.services.incidents import IncidentService
from bot.services.notifications import described
from bot.services.transactions import in_write
from store.incidents import IncidentRepository, TimelineRepository
from store.notifications import Notification, NotificationRepository
from store.session import Database
from store.unit_of_work import UnitOfWork


class NotificationAcks:
    """Acknowledgements that arrive from outside Slack, each in one transaction with what
    it consumes (the e-mail link's single use)."""

    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        incidents: IncidentService,
        link_secret: bytes | None,
        on_commit: Callable[[], None] = lambda: None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.incidents = incidents
        self.link_secret = link_secret
        self.on_commit = on_commit

    async def link_target(self, token: str) -> tuple[Notification, Incident]:
        """The notification and incident an e-mail link names; raises UserError (bad,
        expired or used link) without changing anything."""
        notification_id = self._read(token)
        async with self.db.read() as session:
            try:
                n = await NotificationRepository(session).get(notification_id=notification_id)
            except NotFound:
                raise UserError("This link is not a PulseOps acknowledge link.") from None
            incident = await IncidentRepository(session).get(incident_id=n.incident_id)
        if n.link_used_at is not None:
            raise UserError("This link was already used.")
        return n, incident

    async def acknowledge_by_link(self, token: str) -> Incident:
        """POST of the e-mail's confirmation page: use the link once, acknowledge."""
        notification_id = self._read(token)

        async def work(uow: UnitOfWork) -> Incident:
            now = self.clock.now()
            repo = NotificationRepository(uow.session)
            n = await repo.get(notification_id=notification_id)
            if not await repo.use_link(notification_id=n.id, now=now):
                raise UserError("This link was already used.")
            return await self._acknowledge(uow, n, "the link in the e-mail", now)

        return await in_write(self.db, work, on_commit=self.on_commit)

    async def acknowledge_by_sms(self, *, from_number: str) -> Incident | None:
        """A reply `ack`: the incident of the last SMS sent to that number; None when no
        SMS went there."""

        async def work(uow: UnitOfWork) -> Incident | None:
            n = await NotificationRepository(uow.session).latest_to(
                method_type="sms", destination=from_number
            )
            if n is None:
                return None
            return await self._acknowledge(uow, n, "replying to the SMS", self.clock.now())

        return await in_write(self.db, work, on_commit=self.on_commit)

    async def acknowledge_by_call(self, *, notification_id: int) -> Incident:
        async def work(uow: UnitOfWork) -> Incident:
            n = await NotificationRepository(uow.session).get(notification_id=notification_id)
            return await self._acknowledge(uow, n, "pressing 1 on the call", self.clock.now())

        return await in_write(self.db, work, on_commit=self.on_commit)

    async def call_target(self, notification_id: int) -> tuple[Notification, Incident]:
        async with self.db.read() as session:
            n = await NotificationRepository(session).get(notification_id=notification_id)
            incident = await IncidentRepository(session).get(incident_id=n.incident_id)
        return n, incident

    async def provider_status(self, *, notification_id: int, status: str, error: str) -> None:
        """Twilio's status callback: delivered, or failed with the provider's reason."""
        final = {"delivered": "delivered", "completed": "delivered", "answered": "delivered"}
        failed = {"failed", "undelivered", "busy", "no-answer", "canceled"}
        if status not in final and status not in failed:
            return

        async def work(uow: UnitOfWork) -> None:
            now = self.clock.now()
            repo = NotificationRepository(uow.session)
            n = await repo.get(notification_id=notification_id)
            if n.status not in ("sent",):
                return
            result = final.get(status, "failed")
            await repo.finish(notification_id=n.id, status=result, now=now, error=error or None)
            why = f": {error}" if error and result == "failed" else ""
            await TimelineRepository(uow.session).add(
                incident_id=n.incident_id,
                at=now,
                kind="notification",
                actor="pulseops",
                text=f"{described(n)} {result} ({status}{why})",
                data={"notification_id": n.id, "result": result, "provider_status": status},
            )

        await in_write(self.db, work, on_commit=self.on_commit)

    def _read(self, token: str) -> int:
        if self.link_secret is None:
            raise UserError("E-mail acknowledge links are not configured here.")
        try:
            return read_link(token, secret=self.link_secret, now=self.clock.now())
        except BadLink as exc:
            raise UserError(str(exc)) from None

    async def _acknowledge(
        self, uow: UnitOfWork, n: Notification, how: str, now: datetime
    ) -> Incident:
        incident = await IncidentRepository(uow.session).get(incident_id=n.incident_id)
        if incident.status is not Status.TRIGGERED:
            return incident  # acknowledged or resolved already: nothing to stop
        await self.incidents.move(uow, incident, Acknowledge(by=n.user), now)
        await TimelineRepository(uow.session).add(
            incident_id=incident.id,
            at=now,
            kind="acknowledged_via",
            actor=n.user,
            text=f"Acknowledged by {how} ({described(n)})",
            data={"notification_id": n.id, "via": n.method_type},
        )
        return await IncidentRepository(uow.session).get(incident_id=incident.id)
