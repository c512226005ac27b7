"""The outbox worker: delivers Slack side effects recorded with each state change.

Rows are claimed with a lease (several replicas can run workers), delivered through the
gateway, and completed; a retryable Slack failure reschedules the row, a fatal one marks it
dead. Multi-step effects save their progress after each step, so a retry or a restart
resumes where it stopped and nothing already delivered is sent twice.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
import weakref
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update

from bot.clock import Clock
from bot.config import PulseOpsConfig
from bot.domain.incident import Status
from bot.domain.naming import channel_name_candidates
from bot.domain.records import Incident
from bot.domain.rotation import handoffs_between
from bot.errors import SlackFatal, SlackRetryable
from bot.metrics import Metrics
from bot.render import MAX_HANDOFF_INCIDENTS, Renderer
from bot.services.escalation import PAGE
from bot.services.handoffs import HANDOFF
from bot.services.incidents import ANNOUNCE, OPEN_CHANNEL, SYNC_MESSAGES
from bot.services.oncall import OnCallLookup, rotation_of
from bot.slack.gateway import SlackGateway, backoff_delay
from store.models import OutboxRow
from store.oncall import Page, PageRepository
from store.repositories import IncidentFilter, IncidentRepository, OutboxItem, OutboxRepository
from store.session import Database

log = logging.getLogger(__name__)

Handler = Callable[[OutboxItem], Awaitable[None]]


class _LeaseBusy(Exception):
    """Another worker is editing this incident's messages; try again shortly."""


class OutboxWorker:
    def __init__(
        self,
        *,
        db: Database,
        gateway: SlackGateway,
        renderer: Renderer,
        config: PulseOpsConfig,
        clock: Clock,
        metrics: Metrics,
        concurrency: int = 32,
        lease: timedelta = timedelta(seconds=120),
        max_age: timedelta = timedelta(hours=24),
    ) -> None:
        self.db = db
        self.gateway = gateway
        self.renderer = renderer
        self.config = config
        self.clock = clock
        self.metrics = metrics
        self.lease = lease
        self.max_age = max_age
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.concurrency = concurrency
        self._locks: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()
        self._draining: asyncio.Task[int] | None = None
        self._again = False
        self.handlers: dict[str, Handler] = {
            ANNOUNCE: self._announce,
            OPEN_CHANNEL: self._open_channel,
            SYNC_MESSAGES: self._sync_messages,
            PAGE: self._page,
            HANDOFF: self._handoff,
        }

    # ---- driving ------------------------------------------------------------------------

    async def tick(self) -> None:
        """The periodic sweep: deliver what has become due (retries, rows left by a restart)."""
        self.kick()

    def kick(self) -> None:
        """Deliver soon: start a drain now, or have the running one look for new rows."""
        self._again = True
        if self._draining and not self._draining.done():
            return
        self._draining = asyncio.get_running_loop().create_task(self._drain_loop())

    async def _drain_loop(self) -> int:
        try:
            return await self.drain()
        except Exception:  # the periodic sweep will try again; never lose the task silently
            log.exception("outbox drain failed")
            return 0

    async def drain(self) -> int:
        """Deliver every due row, `concurrency` at a time; return how many were attempted.

        Rows are claimed as slots free up (announcements first), so one slow effect never
        holds back the others.
        """
        attempted = 0
        in_flight: set[asyncio.Task[None]] = set()
        exhausted = False
        while True:
            if self._again:
                self._again, exhausted = False, False
            free = self.concurrency - len(in_flight)
            if free > 0 and not exhausted:
                items = await self._claim(free)
                exhausted = len(items) < free
                attempted += len(items)
                in_flight.update(asyncio.create_task(self._deliver(i)) for i in items)
            if not in_flight:
                break
            _, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
        await self.update_gauges()
        return attempted

    async def _claim(self, limit: int) -> list[OutboxItem]:
        now = self.clock.now()
        async with self.db.write() as session:
            return await OutboxRepository(session).claim(
                now=now,
                lease_until=now + self.lease,
                worker=self.worker_id,
                limit=limit,
                # announcements first: they tell people; channels follow as Slack allows
                first_kinds=(ANNOUNCE,),
            )

    async def wait_idle(self) -> None:
        """Wait for the drain in flight (tests and shutdown)."""
        while self._draining and not self._draining.done():
            await asyncio.shield(self._draining)

    async def update_gauges(self) -> None:
        async with self.db.read() as session:
            depth, oldest = await OutboxRepository(session).depth()
        self.metrics.outbox_depth.set(depth)
        age = (self.clock.now() - oldest).total_seconds() if oldest else 0.0
        self.metrics.outbox_oldest_age.set(max(age, 0.0))

    async def _deliver(self, item: OutboxItem) -> None:
        lock = self._locks.get(item.incident_id or 0)
        if lock is None:
            lock = self._locks[item.incident_id or 0] = asyncio.Lock()
        async with lock:
            try:
                await self.handlers[item.kind](item)
            except SlackRetryable as exc:
                await self._reschedule(item, exc.retry_after, str(exc))
            except _LeaseBusy:
                await self._reschedule(item, 1.0, "incident messages busy in another worker")
            except SlackFatal as exc:
                log.error(
                    "slack effect failed for good",
                    extra={"incident_id": item.incident_id, "kind": item.kind, "error": str(exc)},
                )
                self.metrics.outbox_failed.labels(kind=item.kind).inc()
                async with self.db.write() as session:
                    await OutboxRepository(session).fail(
                        item_id=item.id, now=self.clock.now(), error=str(exc)
                    )
            except Exception as exc:  # a bug or a database blip: keep the row, try later
                log.exception("outbox delivery crashed", extra={"incident_id": item.incident_id})
                await self._reschedule(item, None, f"{type(exc).__name__}: {exc}")
            else:
                self.metrics.outbox_delivered.labels(kind=item.kind).inc()
                async with self.db.write() as session:
                    await OutboxRepository(session).complete(
                        item_id=item.id, now=self.clock.now(), progress=item.progress
                    )

    async def _reschedule(self, item: OutboxItem, after: float | None, error: str) -> None:
        now = self.clock.now()
        delay = max(after or 0.0, backoff_delay(item.attempts, cap=60.0))
        async with self.db.write() as session:
            repo = OutboxRepository(session)
            if now - item.created_at > self.max_age:
                self.metrics.outbox_failed.labels(kind=item.kind).inc()
                await repo.fail(
                    item_id=item.id, now=now, error=f"gave up after {self.max_age}: {error}"
                )
            else:
                await repo.retry_later(
                    item_id=item.id,
                    at=now + timedelta(seconds=delay),
                    error=error,
                    progress=item.progress,
                )
        log.warning(
            "slack effect postponed",
            extra={
                "incident_id": item.incident_id,
                "kind": item.kind,
                "error": error,
                "retry_in": round(delay, 2),
            },
        )

    # ---- helpers ------------------------------------------------------------------------

    async def _incident_and_pages(self, incident_id: int) -> tuple[Incident, list[Page]]:
        async with self.db.read() as session:
            incident = await IncidentRepository(session).get(incident_id=incident_id)
            pages = await PageRepository(session).for_incident(incident_id=incident_id)
        return incident, pages

    async def _incident(self, incident_id: int) -> Incident:
        async with self.db.read() as session:
            return await IncidentRepository(session).get(incident_id=incident_id)

    async def _set(self, incident_id: int, **values: Any) -> None:
        async with self.db.write() as session:
            await IncidentRepository(session).set_slack(incident_id=incident_id, **values)

    # ---- effects ------------------------------------------------------------------------

    async def _announce(self, item: OutboxItem) -> None:
        """Post the announcement in the incidents channel (once), then keep it current."""
        assert item.incident_id is not None
        incident = await self._incident(item.incident_id)
        if incident.announcement_ts:
            await self._sync(incident.id)
            return
        message = self.renderer.incident_message(incident, announcement=True)
        channel, ts = await self.gateway.post_message(
            self.config.slack.incidents_channel, text=message.text, blocks=message.blocks
        )
        await self._set(
            incident.id,
            announcement_channel=channel,
            announcement_ts=ts,
            announcement_version=incident.version,
        )
        await self._sync(incident.id)  # catch up if the incident changed meanwhile

    async def _open_channel(self, item: OutboxItem) -> None:
        """Create the incident channel, invite the team, set the topic, post and pin the message."""
        assert item.incident_id is not None
        # steps done are noted in item.progress, saved when the row completes or is
        # rescheduled; the two that must never repeat (create, post) are saved at once
        progress = item.progress
        incident = await self._incident(item.incident_id)
        if not incident.channel_id:
            channel = await self._create_channel(incident)
            await self._set(incident.id, channel_id=channel["id"], channel_name=channel["name"])
            incident = await self._incident(incident.id)
        channel_id = incident.channel_id
        assert channel_id is not None
        if not progress.get("invited"):
            async with self.db.read() as session:
                pages = await PageRepository(session).for_incident(incident_id=incident.id)
            users = self._invitees(incident, item.payload.get("invite", []), pages)
            progress["invited"] = await self._optional(
                self.gateway.invite(channel_id, users), incident.id
            )
        if not progress.get("topic"):
            progress["topic"] = await self._optional(
                self.gateway.set_topic(channel_id, self.renderer.topic(incident)), incident.id
            )
        if not incident.message_ts:
            message = self.renderer.incident_message(incident)
            _, ts = await self.gateway.post_message(
                channel_id, text=message.text, blocks=message.blocks
            )
            await self._set(incident.id, message_ts=ts, message_version=incident.version)
            incident = await self._incident(incident.id)
        if not progress.get("pinned"):
            assert incident.message_ts is not None
            progress["pinned"] = await self._optional(
                self.gateway.pin(channel_id, incident.message_ts), incident.id
            )
        # the announcement now links to the channel; both messages catch up with the state
        await self._sync(incident.id, force_announcement=True)

    async def _page(self, item: OutboxItem) -> None:
        """Page one person (a DM with the buttons, an invite and a mention in the channel),
        or mention a user group in the incident channel."""
        assert item.incident_id is not None
        progress = item.progress
        async with self.db.read() as session:
            page = await PageRepository(session).get(page_id=int(item.payload["page_id"]))
        incident = await self._incident(item.incident_id)
        level = page.level + 1
        if page.kind == "user" and not page.dm_ts:
            dm_channel = await self.gateway.open_dm(page.target)
            message = self.renderer.page_message(incident, level=level)
            _, ts = await self.gateway.post_message(
                dm_channel, text=message.text, blocks=message.blocks
            )
            async with self.db.write() as session:
                await PageRepository(session).set_dm(
                    page_id=page.id, channel=dm_channel, ts=ts, version=incident.version
                )
        channel = incident.channel_id
        if page.kind == "user" and channel and not progress.get("invited"):
            progress["invited"] = await self._optional(
                self.gateway.invite(channel, [page.target]), incident.id
            )
        # no channel yet (e.g. channel creation rate limited): the DM is the page, and the
        # channel invites everyone paged when it is created
        where = channel if page.kind == "user" else channel or incident.announcement_channel
        if where and not progress.get("mentioned"):
            text = self.renderer.page_mention(
                incident, target=page.target, kind=page.kind, level=level
            )
            progress["mentioned"] = await self._optional(
                self.gateway.post_message(where, text=text), incident.id
            )
        await self._sync(incident.id)  # a DM posted from an older state catches up

    async def _handoff(self, item: OutboxItem) -> None:
        """Announce a rotation handoff: a message in the schedule's handoff channel, a DM to
        the incoming person, and the schedule's user group pointed at them.

        The post and the DM are not idempotent, so each is saved in the row's progress the
        moment it succeeds; a retry (429, outage, restart) skips what is on record. A fatal
        error on the DM or the user group (`paid_teams_only` on a free workspace, an unknown
        group) is noted in progress and does not fail the effect; a fatal error on the channel
        post fails it, after the DM and the user group have been tried.
        """
        progress = item.progress
        payload = item.payload
        schedule = self.config.schedule(str(payload["schedule_id"]))
        if schedule is None:  # removed from the configuration since the handoff was recorded
            progress["skipped"] = "the schedule is no longer configured"
            return
        at = datetime.fromisoformat(str(payload["at"]))
        outgoing, incoming = str(payload["outgoing"]), str(payload["incoming"])
        now = self.clock.now()
        async with self.db.read() as session:
            incidents, total = await IncidentRepository(session).list(
                filters=IncidentFilter(
                    status=(Status.TRIGGERED, Status.ACKNOWLEDGED), team_id=schedule.team
                ),
                limit=MAX_HANDOFF_INCIDENTS,
            )
            oncall = await OnCallLookup(self.config).at(
                session, schedule_id=schedule.id, instant=max(now, at)
            )
        if "posted" not in progress:
            channel = self.config.handoff_channel_for(schedule.id)
            if channel is None:
                progress["posted"] = {"done": False, "skipped": "no handoff channel configured"}
            else:
                message = self.renderer.handoff_message(
                    schedule_id=schedule.id,
                    team_id=schedule.team,
                    outgoing=outgoing,
                    incoming=incoming,
                    at=at,
                    late=bool(payload.get("late")),
                    missed=int(payload.get("missed", 0)),
                    incidents=incidents,
                    total=total,
                    next_shift=oncall.next,
                )
                progress["posted"] = await self._optional(
                    self.gateway.post_message(channel, text=message.text, blocks=message.blocks),
                    None,
                )
            await self._save_progress(item)
        if "dm" not in progress:
            posted = progress["posted"].get("result")
            text = self.renderer.handoff_dm(
                schedule_id=schedule.id,
                team_id=schedule.team,
                outgoing=outgoing,
                total=total,
                channel_id=str(posted[0]) if posted else None,
                next_shift=oncall.next,
            )

            async def direct_message() -> tuple[str, str]:
                return await self.gateway.post_message(
                    await self.gateway.open_dm(incoming), text=text
                )

            progress["dm"] = await self._optional(direct_message(), None)
            await self._save_progress(item)
        if schedule.user_group and "user_group" not in progress:
            newer = handoffs_between(rotation_of(schedule), at, now)
            if newer:  # delivered after the next handoff: that one's effect sets the group
                progress["user_group"] = {
                    "done": False,
                    "skipped": f"superseded by the handoff at {newer[-1].at.isoformat()}",
                }
            else:
                progress["user_group"] = await self._optional(
                    self.gateway.set_usergroup_members(schedule.user_group, [incoming]), None
                )
        error = progress["posted"].get("error")
        if error:  # the DM and the user group were tried; the row fails with the reason
            await self._save_progress(item)
            raise SlackFatal("chat.postMessage", f"handoff message not posted: {error}")

    async def _save_progress(self, item: OutboxItem) -> None:
        """Persist `item.progress` now, in its own transaction, so a step that must not
        repeat stays on record even if the worker dies before the row completes."""
        async with self.db.write() as session:
            await session.execute(
                update(OutboxRow)
                .where(OutboxRow.id == item.id)
                .values(progress=dict(item.progress))
                .execution_options(synchronize_session=False)
            )

    async def _optional(self, step: Awaitable[object], incident_id: int | None) -> dict[str, Any]:
        """Run a step the incident can live without: a fatal Slack error is noted, not raised.

        Retryable errors still propagate, so the step is tried again later.
        """
        try:
            result = await step
        except SlackFatal as exc:
            log.warning(
                "optional slack step failed",
                extra={"incident_id": incident_id, "method": exc.method, "error": exc.error},
            )
            return {"done": False, "error": f"{exc.method}: {exc.error}"}
        return {"done": True, "result": result} if result else {"done": True}

    async def _create_channel(self, incident: Incident) -> dict[str, Any]:
        last: SlackFatal | None = None
        for name in channel_name_candidates(
            self.config.slack.channel_prefix, incident.id, incident.title
        ):
            try:
                return await self.gateway.create_channel(
                    name, private=self.config.slack.private_channels
                )
            except SlackFatal as exc:
                if exc.error != "name_taken":
                    raise
                last = exc
        raise SlackFatal("conversations.create", f"every candidate name is taken ({last})")

    def _invitees(self, incident: Incident, extra: list[str], pages: list[Page]) -> list[str]:
        team = self.config.team(incident.team_id) if incident.team_id else None
        users = list(team.members) if team else []
        for user in [*extra, *(p.target for p in pages if p.kind == "user")]:
            if user not in users and user.startswith(("U", "W")):
                users.append(user)
        return users

    async def _sync_messages(self, item: OutboxItem) -> None:
        assert item.incident_id is not None
        await self._sync(item.incident_id)

    async def _sync(self, incident_id: int, *, force_announcement: bool = False) -> None:
        """Bring both incident messages up to the current state, newest state last.

        A lease on the incident serialises editors across replicas; rendered versions only
        move forward, and the state is re-read after each round so a change made while we
        were editing is rendered too.
        """
        incident, pages = await self._incident_and_pages(incident_id)
        if not _stale(incident, pages, force_announcement):
            return
        now = self.clock.now()
        async with self.db.write() as session:
            if not await IncidentRepository(session).take_sync_lease(
                incident_id=incident_id, now=now, until=now + timedelta(seconds=30)
            ):
                raise _LeaseBusy()
        released = False
        try:
            for _ in range(5):
                stale = _stale(incident, pages, force_announcement)
                force_announcement = False
                for column, channel, ts, is_announcement in stale:
                    if column.startswith("page:"):
                        level = next(p.level for p in pages if f"page:{p.id}" == column) + 1
                        message = self.renderer.page_message(incident, level=level)
                    else:
                        message = self.renderer.incident_message(
                            incident, announcement=is_announcement
                        )
                    await self.gateway.update_message(
                        channel, ts, text=message.text, blocks=message.blocks
                    )
                async with self.db.write() as session:
                    repo = IncidentRepository(session)
                    page_repo = PageRepository(session)
                    for column, *_ in stale:
                        if column.startswith("page:"):
                            await page_repo.mark_dm_rendered(
                                page_id=int(column[5:]), version=incident.version
                            )
                        else:
                            await repo.mark_rendered(
                                incident_id=incident_id, column=column, version=incident.version
                            )
                    incident = await repo.get(incident_id=incident_id)
                    pages = await page_repo.for_incident(incident_id=incident_id)
                    if not _stale(incident, pages, False):
                        await repo.release_sync_lease(incident_id=incident_id)
                        released = True
                        return
        finally:
            if not released:
                async with self.db.write() as session:
                    await IncidentRepository(session).release_sync_lease(incident_id=incident_id)


def _stale(
    incident: Incident, pages: list[Page], force_announcement: bool
) -> list[tuple[str, str, str, bool]]:
    """Messages showing an older version than the incident's: (column, channel, ts, is_ann).

    `column` is the incident column holding the rendered version, or `page:<id>` for a DM.
    """
    stale = []
    for page in pages:
        if page.dm_channel and page.dm_ts and page.dm_version < incident.version:
            stale.append((f"page:{page.id}", page.dm_channel, page.dm_ts, False))
    if incident.message_ts and incident.channel_id and incident.message_version < incident.version:
        stale.append(("message_version", incident.channel_id, incident.message_ts, False))
    if (
        incident.announcement_ts
        and incident.announcement_channel
        and (incident.announcement_version < incident.version or force_announcement)
    ):
        stale.append(
            ("announcement_version", incident.announcement_channel, incident.announcement_ts, True)
        )
    return stale
