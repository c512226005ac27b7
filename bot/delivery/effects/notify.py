"""The notify effect: one e-mail, SMS, call or push of a page, sent when its rule says.

A notification is taken (pending → sending) in a transaction that also checks the incident
is still unacknowledged and the person's throttle; the provider is called outside any
transaction; the result is recorded on the incident's timeline with the destination masked.
A provider outage puts the notification back to pending and the outbox row retries with
backoff (it can still be cancelled meanwhile); after `max_attempts` it fails for good.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.delivery.effects.base import Effects, Handler, outcome_unknown, post_mark
from bot.delivery.kinds import OutboxKind
from bot.domain import Status
from bot.domain.contacts import TYPE_LABELS, mask, sign_link, throttled
from bot.domain.records import Incident
from bot.errors import NotFound, NotifyError, NotifyFatal, NotifyRetryable
from bot.metrics import Metrics
from bot.notify import messages
from bot.notify.guard import check_apprise_url
from bot.notify.providers import Providers
from bot.outgoing import Refused
from bot.render.blocks import escape_mrkdwn
from bot.services.notifications import described
from store.contact_methods import ContactMethodRepository
from store.incidents import IncidentRepository, TimelineRepository
from store.notifications import Notification, NotificationRepository
from store.outbox import OutboxItem

log = logging.getLogger(__name__)

# throttled notifications this old or newer are summarised in the person's next one
SUMMARY_LOOKBACK = timedelta(days=1)


class NotifyEffects(Effects):
    """Delivers `notify` outbox rows."""

    def __init__(self, *, providers: Providers, metrics: Metrics, **deps: Any) -> None:
        super().__init__(**deps)
        self.providers = providers
        self.metrics = metrics

    def handlers(self) -> dict[str, Handler]:
        return {OutboxKind.NOTIFY: self.notify, OutboxKind.NOTIFY_TEST: self.notify_test}

    async def notify_test(self, item: OutboxItem) -> None:
        """The test page of one method: send it once (noted in the row's progress), record the
        result on the person's own method, and tell them in a DM."""
        payload = item.payload
        user, method_type = str(payload["user"]), str(payload["type"])
        destination = str(payload["destination"])
        result = item.progress.get("result")
        if result is None:
            try:
                await self._send_test(method_type, destination)
                result = "sent"
            except NotifyRetryable as exc:
                if item.attempts < 3:
                    raise
                result = f"failed: {exc.reason}"
            except NotifyFatal as exc:
                result = f"failed: {exc.reason}"
            item.progress["result"] = result
            await self._save_progress(item)
            if payload.get("own"):
                now = self.clock.now()
                await self.db.write_grouped(
                    lambda session: ContactMethodRepository(session).tested(
                        user=user, method_id=str(payload["method_id"]), now=now, result=result
                    )
                )
        label = f"{TYPE_LABELS[method_type]} to {mask(method_type, destination)}"
        if result == "sent":
            text = f"Test page sent: {label}. Check that it arrived."
        else:
            text = f"Test page to {label} {escape_mrkdwn(result)}"
        channel = await self.gateway.open_dm(user)
        await self.gateway.post_message(
            channel,
            text=text,
            mark=post_mark(item, "notify_test"),
            look_first=outcome_unknown(item),
        )

    async def _guard(self, url: str) -> None:
        """An Apprise URL set in Slack (not one of the config's) may not reach private hosts."""
        if any(m.destination == url for c in self.config.contacts for m in c.methods):
            return
        try:
            await check_apprise_url(url, self.config.allowed_hosts)
        except Refused as exc:
            raise NotifyFatal(f"refused: {exc}") from None

    async def _send_test(self, method_type: str, destination: str) -> None:
        if method_type == "apprise":
            await self._guard(destination)
            await self.providers.apprise.send(
                url=destination, title="PulseOps test page", body=messages.TEST_TEXT
            )
            return
        if method_type == "email":
            if self.providers.smtp is None:
                raise NotifyFatal("no SMTP server is configured")
            await self.providers.smtp.send(messages.test_mail(destination))
            return
        twilio = self.providers.twilio
        if twilio is None:
            raise NotifyFatal("no Twilio account is configured")
        if method_type == "sms":
            await twilio.send_sms(to=destination, body=messages.TEST_TEXT, status_callback=None)
        else:
            await twilio.call(
                to=destination, url=None, status_callback=None, twiml=messages.TEST_CALL
            )

    async def notify(self, item: OutboxItem) -> None:
        notification_id = int(item.payload["notification_id"])
        now = self.clock.now()
        async with self.db.write() as session:
            taken = await self._take(session, notification_id, now)
        if taken is None:
            return
        n, incident, held_back, interrupted = taken
        try:
            provider_id = None
            if interrupted:  # an earlier try may have sent it without recording it
                provider_id = await self._sent_before(n, incident)
            if provider_id is None:
                provider_id = await self._send(n, incident, held_back)
            else:
                held_back = []
        except NotifyError as exc:
            await self._failed(item, n, exc)
            return
        done = self.clock.now()

        async def record(session: AsyncSession) -> None:
            repo = NotificationRepository(session)
            await repo.finish(
                notification_id=n.id, status="sent", now=done, provider_id=provider_id
            )
            await repo.mark_summarised(notification_ids=[h.id for h in held_back])
            summary = f"; with {len(held_back)} throttled page(s) summarised" if held_back else ""
            await self._timeline(session, n, "sent", f"{described(n)} sent{summary}", done)

        await self.db.write_grouped(record)

    async def _take(
        self, session: AsyncSession, notification_id: int, now: datetime
    ) -> tuple[Notification, Incident, list[Notification], bool] | None:
        repo = NotificationRepository(session)
        try:
            found = await repo.get(notification_id=notification_id)
        except NotFound:
            return None  # its incident was deleted
        interrupted = found.status == "sending"
        await repo.lock_person(user=found.user, method_type=found.method_type)
        n = await repo.start_sending(notification_id=notification_id, now=now)
        if n is None:
            return None  # cancelled or finished meanwhile
        incident = await IncidentRepository(session).get(incident_id=n.incident_id)
        if incident.status is not Status.TRIGGERED:
            await repo.finish(notification_id=n.id, status="cancelled", now=now)
            await self._timeline(
                session, n, "cancelled", f"{described(n)} cancelled: {incident.status.value}", now
            )
            return None
        throttle = self.providers.config.throttle
        since = now - throttle.window
        # this one counts itself (taken above): it may go if the others are under the limit
        sent = await repo.sent_since(user=n.user, method_type=n.method_type, since=since) - 1
        limit = throttle.limit(n.method_type)
        if throttled(sent, limit):
            await repo.finish(notification_id=n.id, status="throttled", now=now)
            await self._timeline(
                session,
                n,
                "throttled",
                f"{described(n)} throttled ({sent} sent in the last "
                f"{int(throttle.window.total_seconds() // 60)} min, limit {limit}); "
                "summarised in the next one",
                now,
            )
            return None
        held_back = await repo.throttled_since(
            user=n.user, method_type=n.method_type, since=now - SUMMARY_LOOKBACK
        )
        return n, incident, held_back, interrupted

    async def _sent_before(self, n: Notification, incident: Incident) -> str | None:
        """The Twilio SID of this SMS or call if an interrupted try made it (found in the
        account's log: to this number since it was due, not recorded for another
        notification, and for an SMS with this incident's text); None otherwise, and None for a
        call when another call to the number may be in flight. E-mail and push cannot be
        looked up: they are sent again."""
        twilio = self.providers.twilio
        if twilio is None or n.method_type not in ("sms", "voice"):
            return None
        resource = "Messages" if n.method_type == "sms" else "Calls"
        found = await twilio.sent_to(resource, to=n.destination, since=n.due_at)
        async with self.db.read() as session:
            repo = NotificationRepository(session)
            unclaimed = []
            for item in found:
                sid = str(item.get("sid", ""))
                if n.method_type == "sms" and f"{incident.number} " not in str(item.get("body")):
                    continue
                if sid and await repo.by_provider_id(provider_id=sid) is None:
                    unclaimed.append(sid)
            # a call says nothing of its incident: another replica's call to this number, in
            # flight and not yet recorded, would look the same. Then it is sent again (a
            # repeated call) rather than taken for this one (a call never made).
            if n.method_type == "voice" and (
                len(unclaimed) > 1 or await repo.others_sending(notification=n)
            ):
                return None
        return unclaimed[0] if unclaimed else None

    async def _send(
        self, n: Notification, incident: Incident, held_back: list[Notification]
    ) -> str | None:
        service = self.config.service(incident.service_id) if incident.service_id else None
        name = service.name if service else None
        public = self.providers.config.public_url
        more = ""
        if held_back:
            numbers = sorted({f"INC-{h.incident_id}" for h in held_back})
            more = f" Also paged meanwhile (throttled): {', '.join(numbers[:10])}."
        if n.method_type == "apprise":
            await self._guard(n.destination)
            title, body = messages.push(incident, name)
            await self.providers.apprise.send(url=n.destination, title=title, body=body + more)
            return None
        if n.method_type == "email":
            smtp, secret = self.providers.smtp, self.providers.link_secret
            if smtp is None or secret is None or public is None:
                raise NotifyFatal("no SMTP server or link secret is configured")
            expires = self.clock.now() + self.providers.config.link_ttl
            token = sign_link(n.id, expires, secret=secret)
            mail = messages.mail(
                incident, name, to=n.destination, ack_url=f"{public}/notify/ack/{token}"
            )
            if more:
                mail = type(mail)(mail.to, mail.subject, mail.text + more, mail.html + more)
            return await smtp.send(mail)
        twilio = self.providers.twilio
        if twilio is None or public is None:
            raise NotifyFatal("no Twilio account is configured")
        status = f"{public}/notify/twilio/status/{n.id}"
        if n.method_type == "sms":
            text = messages.sms_text(incident, name) + more
            return await twilio.send_sms(to=n.destination, body=text, status_callback=status)
        return await twilio.call(
            to=n.destination, url=f"{public}/notify/twilio/voice/{n.id}", status_callback=status
        )

    async def _failed(self, item: OutboxItem, n: Notification, exc: NotifyError) -> None:
        now = self.clock.now()
        attempts = self.providers.config.max_attempts
        retry = isinstance(exc, NotifyRetryable) and item.attempts < attempts
        reason = escape_mrkdwn(exc.reason)  # the provider's words, shown in Slack
        log.warning(
            "notification failed",
            extra={
                "incident_id": n.incident_id,
                "notification": described(n),
                "error": exc.reason,
                "retry": retry,
            },
        )

        async def record(session: AsyncSession) -> None:
            repo = NotificationRepository(session)
            if retry:
                # unsure: it stays `sending`, so the next try looks in Twilio's log first
                if not (isinstance(exc, NotifyRetryable) and exc.unsure):
                    await repo.back_to_pending(notification_id=n.id, error=exc.reason)
                text = f"{described(n)} failed (attempt {item.attempts}), retrying: {reason}"
                await self._timeline(session, n, "retrying", text, now)
            else:
                await repo.finish(notification_id=n.id, status="failed", now=now, error=exc.reason)
                tries = f" after {item.attempts} attempts" if item.attempts > 1 else ""
                text = f"{described(n)} failed{tries}: {reason}"
                await self._timeline(session, n, "failed", text, now)

        await self.db.write_grouped(record)
        if retry:
            assert isinstance(exc, NotifyRetryable)
            raise exc

    async def _timeline(
        self, session: AsyncSession, n: Notification, result: str, text: str, now: datetime
    ) -> None:
        self.metrics.notifications.labels(type=n.method_type, result=result).inc()
        await TimelineRepository(session).add(
            incident_id=n.incident_id,
            at=now,
            kind="notification",
            actor="pulseops",
            text=text,
            data={
                "notification_id": n.id,
                "user": n.user,
                "method": n.method_id,
                "type": n.method_type,
                "result": result,
            },
        )
