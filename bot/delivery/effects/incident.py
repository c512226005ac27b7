"""Incident effects: the announcement, the incident channel, message syncs and pages.

Two messages follow each incident (the announcement and the channel message), plus the DM of
each page; `_sync` brings them up to the incident's version under a lease, so edits from
several replicas never go backwards.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

from bot.delivery.effects.base import Effects, Handler, LeaseBusy, outcome_unknown, post_mark
from bot.delivery.effects.pages import PageDMs
from bot.delivery.kinds import OutboxKind
from bot.domain.naming import channel_name_candidates
from bot.domain.records import Incident
from bot.errors import SlackFatal
from store.incidents import IncidentRepository
from store.oncall import Page, PageRepository
from store.outbox import OutboxItem

log = logging.getLogger(__name__)

# An editor's hold on an incident's messages: short, renewed while it edits (see _sync)
SYNC_LEASE = timedelta(seconds=9)


class IncidentEffects(Effects):
    """Delivers what an incident's state changes need in Slack."""

    @cached_property
    def _dms(self) -> PageDMs:
        return PageDMs(db=self.db, gateway=self.gateway, renderer=self.renderer, clock=self.clock)

    def handlers(self) -> dict[str, Handler]:
        return {
            OutboxKind.ANNOUNCE: self._announce,
            OutboxKind.OPEN_CHANNEL: self._open_channel,
            OutboxKind.SYNC_MESSAGES: self._sync_messages,
            OutboxKind.PAGE: self._page,
        }

    async def _announce(self, item: OutboxItem) -> None:
        """Post the announcement in the incidents channel (once), then keep it current."""
        assert item.incident_id is not None
        incident = await self._incident(item.incident_id)
        if incident.announcement_ts:
            await self._sync(incident.id)
            return
        message = self.renderer.incident_message(incident, announcement=True)
        channel, ts = await self.gateway.post_message(
            self.config.slack.incidents_channel,
            text=message.text,
            blocks=message.blocks,
            mark=post_mark(item, "announcement"),
            look_first=outcome_unknown(item),
        )
        await self._write(
            lambda repo: repo.set_announcement(
                incident_id=incident.id, channel=channel, ts=ts, version=incident.version
            )
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
            channel = await self._create_channel(incident, maybe_ours=outcome_unknown(item))
            await self._write(
                lambda repo: repo.set_channel(
                    incident_id=incident.id, channel_id=channel["id"], channel_name=channel["name"]
                )
            )
            incident = await self._incident(incident.id)
        channel_id = incident.channel_id
        assert channel_id is not None
        if not progress.get("invited"):
            async with self.db.read() as session:
                pages = await PageRepository(session).for_incident(incident_id=incident.id)
            users = self._invitees(incident, item.payload.get("invite", []), pages)
            progress["invited"] = await self._optional(
                self._invite(channel_id, users, incident.id), incident.id
            )
        if not progress.get("topic"):
            progress["topic"] = await self._optional(
                self.gateway.set_topic(channel_id, self.renderer.topic(incident)), incident.id
            )
        if not incident.message_ts:
            message = self.renderer.incident_message(incident)
            _, ts = await self.gateway.post_message(
                channel_id,
                text=message.text,
                blocks=message.blocks,
                mark=post_mark(item, "message"),
                look_first=outcome_unknown(item),
            )
            await self._write(
                lambda repo: repo.set_message(
                    incident_id=incident.id, ts=ts, version=incident.version
                )
            )
            incident = await self._incident(incident.id)
        if not progress.get("pinned"):
            assert incident.message_ts is not None
            progress["pinned"] = await self._optional(
                self.gateway.pin(channel_id, incident.message_ts), incident.id
            )
        tell = item.payload.get("tell")
        if tell and not progress.get("told"):
            progress["told"] = await self._tell_declarer(incident, tell)
        # the announcement now links to the channel; both messages catch up with the state
        await self._sync(incident.id, force_announcement=True)

    async def _tell_declarer(self, incident: Incident, tell: dict[str, Any]) -> dict[str, Any]:
        """The person who declared the incident gets its channel's link: ephemerally where
        they declared it, or by DM when that is not possible (App Home, a channel they left)."""
        assert incident.channel_id is not None
        user = str(tell["user"])
        text = str(
            self.renderer.replies.declared_link(
                number=incident.number, channel_id=incident.channel_id
            )
        )
        if tell.get("channel"):
            told = await self._optional(
                self.gateway.post_ephemeral(str(tell["channel"]), user, text=text), incident.id
            )
            if told["done"]:
                return told

        async def by_dm() -> None:
            await self.gateway.post_message(await self.gateway.open_dm(user), text=text)

        return await self._optional(by_dm(), incident.id)

    async def page_dm(self, item: OutboxItem) -> None:
        """A page's DM, sent before the incident's other effects take their turn (the worker
        runs this first): with the person's other waiting pages, as one bundle."""
        async with self.db.read() as session:
            page = await PageRepository(session).get(page_id=int(item.payload["page_id"]))
        if page.kind == "user" and not page.dm_ts:
            await self._dms.send(page, unsure=outcome_unknown(item))

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
            # normally sent already by page_dm
            await self._dms.send(page, unsure=outcome_unknown(item))
        channel = incident.channel_id
        if page.kind == "user" and channel and not progress.get("invited"):
            progress["invited"] = await self._optional(
                self._invite(channel, [page.target], incident.id), incident.id
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

    async def _create_channel(self, incident: Incident, *, maybe_ours: bool) -> dict[str, Any]:
        """Create the incident's channel under the first candidate name that is free.

        When an earlier delivery may have created it (`maybe_ours`), the bot's own channel
        under any candidate name is looked for first and adopted.
        """
        names = list(
            channel_name_candidates(self.config.slack.channel_prefix, incident.id, incident.title)
        )
        private = self.config.slack.private_channels
        if maybe_ours:
            found = await self.gateway.find_channel(names, private=private)
            if found is not None:
                return found
        last: SlackFatal | None = None
        for name in names:
            try:
                return await self.gateway.create_channel(
                    name, private=private, maybe_ours=maybe_ours
                )
            except SlackFatal as exc:
                if exc.error != "name_taken":
                    raise
                last = exc
        raise SlackFatal("conversations.create", f"every candidate name is taken ({last})")

    async def _invite(
        self, channel: str, users: list[str], incident_id: int
    ) -> list[dict[str, Any]]:
        """Invite those of `users` who are not in `channel` yet; return Slack's per-user errors.

        Membership is asked of Slack rather than remembered: people join and leave incident
        channels by themselves, and a row redelivered after a crash sees who is in by now.
        """
        try:
            members = await self.gateway.channel_members(channel)
        except SlackFatal as exc:
            # e.g. an app installed before it asked for channels:read / groups:read: invite
            # everyone as before (Slack answers already_in_channel, which is harmless)
            log.warning(
                "cannot list the incident channel's members",
                extra={"incident_id": incident_id, "method": exc.method, "error": exc.error},
            )
            members = set()
        return await self.gateway.invite(channel, [u for u in users if u not in members])

    def _invitees(self, incident: Incident, extra: list[str], pages: list[Page]) -> list[str]:
        team = self.config.team(incident.team_id) if incident.team_id else None
        users = list(team.members) if team else []
        for user in [*extra, *(p.target for p in pages if p.kind == "user")]:
            if user not in users and user.startswith(("U", "W")):
                users.append(user)
        return users

    async def _sync_messages(self, item: OutboxItem) -> None:
        """Bring the incident's messages up to its current state."""
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
                incident_id=incident_id, now=now, until=now + SYNC_LEASE
            ):
                raise LeaseBusy()
        keeper = _LeaseKeeper(self, incident_id, held=now + SYNC_LEASE)
        released = False
        try:
            for _ in range(5):
                stale = _stale(incident, pages, force_announcement)
                force_announcement = False
                for column, channel, ts, is_announcement in stale:
                    if column.startswith("page:"):
                        page = next(p for p in pages if f"page:{p.id}" == column)
                        await self._dms.refresh(page, incident)  # a bundle shows its others too
                        continue
                    message = self.renderer.incident_message(incident, announcement=is_announcement)
                    await self.gateway.update_message(
                        channel, ts, text=message.text, blocks=message.blocks
                    )
                await keeper.stop()  # no renewal may land after the release below
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
                keeper.start()
        finally:
            await keeper.stop()
            if not released:
                async with self.db.write() as session:
                    await IncidentRepository(session).release_sync_lease(incident_id=incident_id)

    # ---- helpers ------------------------------------------------------------------------

    async def _incident_and_pages(self, incident_id: int) -> tuple[Incident, list[Page]]:
        async with self.db.read() as session:
            incident = await IncidentRepository(session).get(incident_id=incident_id)
            pages = await PageRepository(session).for_incident(incident_id=incident_id)
        return incident, pages

    async def _incident(self, incident_id: int) -> Incident:
        async with self.db.read() as session:
            return await IncidentRepository(session).get(incident_id=incident_id)

    async def _write(self, write: Callable[[IncidentRepository], Awaitable[None]]) -> None:
        """Record what Slack answered, grouped with other deliveries' small writes."""
        await self.db.write_grouped(lambda session: write(IncidentRepository(session)))


class _LeaseKeeper:
    """Extends an incident's sync lease every third of SYNC_LEASE while its editor works.

    Short and renewed, so the lease of a process that died frees within seconds while a slow
    Slack never lets it lapse under a live editor. `take_sync_lease` takes a lease that ends
    before `now`: asked with just after the end we hold, it extends the lease only if nobody
    has taken it since. Stopped between writes, never in the middle of one.
    """

    def __init__(self, effects: IncidentEffects, incident_id: int, *, held: datetime) -> None:
        self.effects = effects
        self.incident_id = incident_id
        self.held = held
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.start()

    def start(self) -> None:
        self._stopping = asyncio.Event()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def _run(self) -> None:
        period = SYNC_LEASE.total_seconds() / 3
        while not self._stopping.is_set():
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=period)
                return
            except TimeoutError:
                pass
            until = self.effects.clock.now() + SYNC_LEASE
            try:
                async with self.effects.db.write() as session:
                    kept = await IncidentRepository(session).take_sync_lease(
                        incident_id=self.incident_id,
                        now=self.held + timedelta(microseconds=1),
                        until=until,
                    )
            except Exception:  # try again next period; the lease has two thirds left
                log.warning("could not renew a sync lease", exc_info=True)
                continue
            if not kept:
                log.warning("sync lease lost", extra={"incident_id": self.incident_id})
                return
            self.held = until


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
