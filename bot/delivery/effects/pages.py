"""Page DMs: each person's DM opened once and remembered; waiting pages go out as one bundle.

A person paged for many incidents at once (a storm) gets one DM listing them, each with its
own buttons, instead of one DM each: Slack allows about one message a second per channel,
and one `conversations.open` per page would spend a Tier 3 budget the whole workspace shares.
One sender at a time posts or edits a person's page DMs (an asyncio lock in this process, a
lease in `dm_channels` across replicas), so pages waiting together are sent together and a
bundle is always edited from the newest state of all its incidents.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.clock import Clock
from bot.delivery.effects.base import LeaseBusy
from bot.domain.records import Incident
from bot.errors import NotFound, SlackError, SlackFatal, SlackRetryable
from bot.render import Message, Renderer
from bot.render.renderer import MAX_BUNDLED_PAGES
from bot.slack.gateway import SlackGateway
from bot.slack.lookup import PageMark
from bot.slack.ratelimit import TokenBucket
from store.incidents import IncidentRepository
from store.oncall import DmChannel, DmChannelRepository, Page, PageRepository
from store.session import Database

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

log = logging.getLogger(__name__)

# a page older than an outbox row can wait for delivery has no DM coming: never bundled
WAITING_WINDOW = timedelta(hours=24)
LEASE = timedelta(seconds=30)
# another replica is sending to the same person: wait this long for it before giving up
LEASE_POLL_SECONDS = 0.1
LEASE_POLLS = 30
# DMs one turn sends while more pages keep waiting (each shows MAX_BUNDLED_PAGES), and how
# long a turn that bundled pages looks for more before it ends
MAX_BUNDLES_PER_TURN = 10
LINGER_POLLS = 5
LINGER_POLL_SECONDS = 0.1
# chat.postMessage allows about one message a second per channel, in short bursts; paced a
# little slower, so Slack's count (which starts when a call arrives) is never behind ours
DM_POSTS_PER_SECOND = 0.9
DM_POST_BURST = 3
# what Slack answers when a remembered DM channel no longer exists for the bot
CHANNEL_GONE = frozenset({"channel_not_found", "is_archived"})


Write = Callable[["AsyncSession"], Awaitable[object]]


@dataclass
class _Turn:
    """One sender's turn at a person's DMs: the DM channel, what was sent, what to record."""

    dm: DmChannel
    channel: str | None
    writes: list[Write] = field(default_factory=list)
    sent: set[int] = field(default_factory=set)  # page ids


def _release(user: str) -> Write:
    return lambda session: DmChannelRepository(session).release_lease(user=user)


class PageDMs:
    """Sends and edits the DMs of pages."""

    def __init__(
        self,
        *,
        db: Database,
        gateway: SlackGateway,
        renderer: Renderer,
        clock: Clock,
    ) -> None:
        self.db = db
        self.gateway = gateway
        self.renderer = renderer
        self.clock = clock
        # per person: until when, and why, sending them a page last failed retryably
        self._failing: dict[str, tuple[datetime, SlackRetryable]] = {}
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._covered: set[int] = set()  # pages whose DM this process sent and recorded
        self._pace: dict[str, TokenBucket] = {}  # per person: posts to their DM

    async def send(self, page: Page, *, unsure: bool = False) -> None:
        """Post `page`'s DM unless it has one, with every other page of the same person
        still waiting for its DM: oldest first, as many as one message shows in full, and
        further messages while more are waiting or, after a bundle, keep arriving (up to
        MAX_BUNDLES_PER_TURN messages).

        `unsure`: an earlier delivery of this page may have posted its DM without recording
        it (it died, or Slack's answer was lost); the DM is then looked for by its mark first.

        Raises SlackRetryable / SlackFatal as the gateway does, LeaseBusy when another
        replica keeps sending to the same person. What was sent before a failure is recorded.
        """
        async with self._turn(page.target, page_id=page.id) as turn:
            if turn is None:
                return  # a bundle sent meanwhile covered this page
            pace = self._pace.get(page.target)
            if pace is None:
                pace = self._pace[page.target] = TokenBucket(
                    rate=DM_POSTS_PER_SECOND, burst=DM_POST_BURST, monotonic=time.monotonic
                )
            bundles = lingered = 0
            while bundles < MAX_BUNDLES_PER_TURN:
                # wait for Slack's budget before looking: what arrives meanwhile goes too
                await asyncio.sleep(pace.wait_time())
                found = await self._waiting(page, turn)
                if found is None:
                    return  # sent by another replica while we waited for the lease
                waiting, incidents = found
                if not waiting:
                    # pages bundled: a storm, whose next pages are a moment away; keeping the
                    # turn spares them a claim and a lease each
                    if len(turn.sent) < 2 or lingered >= LINGER_POLLS:
                        return
                    lingered += 1
                    await asyncio.sleep(LINGER_POLL_SECONDS)
                    continue
                bundles, lingered = bundles + 1, 0
                pace.take()
                if not turn.sent:
                    if not await self._post_bundle(turn, page, waiting, incidents, unsure):
                        return
                    continue
                # this page is out: a failure now belongs to the pages still waiting, whose
                # own deliveries retry them
                try:
                    if not await self._post_bundle(turn, waiting[0], waiting, incidents):
                        return
                except SlackError as exc:
                    if isinstance(exc, SlackRetryable):
                        self._note_failure(page.target, exc)
                    log.warning(
                        "further bundled page postponed",
                        extra={"incident_id": waiting[0].incident_id, "error": exc.error},
                    )
                    return

    async def _waiting(
        self, page: Page, turn: _Turn
    ) -> tuple[list[Page], dict[int, Incident]] | None:
        """The next bundle: the person's pages waiting for a DM (`page` first in a turn's
        first bundle) and their incidents; None when `page` already has its DM."""
        now = self.clock.now()
        async with self.db.read() as session:
            pages = PageRepository(session)
            if not turn.sent and (await pages.get(page_id=page.id)).dm_ts:
                return None
            found = await pages.waiting_for_dm(
                target=page.target,
                since=now - WAITING_WINDOW,
                limit=MAX_BUNDLED_PAGES + len(turn.sent),
            )
            # pages sent in this turn are recorded when it ends
            waiting = [p for p in found if p.id not in turn.sent][:MAX_BUNDLED_PAGES]
            if not turn.sent and all(p.id != page.id for p in waiting):
                waiting = [page, *waiting[: MAX_BUNDLED_PAGES - 1]]
            return waiting, await _incidents(IncidentRepository(session), waiting)

    async def _post_bundle(
        self,
        turn: _Turn,
        lead: Page,
        bundle: list[Page],
        incidents: dict[int, Incident],
        unsure: bool = False,
    ) -> bool:
        """Post one DM for `bundle` (or `lead` alone if Slack refuses the bundle); False when
        it went alone. The DM channel is opened if not remembered, and again if it is gone."""
        remembered = turn.channel
        channel = remembered or await self._open(turn)
        whole = True
        try:
            channel, ts = await self._post(channel, bundle, incidents, unsure=unsure)
        except SlackFatal as exc:
            if exc.error in CHANNEL_GONE and remembered:
                log.warning("remembered DM channel is gone; opening it again")
                turn.writes.append(
                    lambda session: DmChannelRepository(session).forget(
                        user=lead.target, channel_id=remembered
                    )
                )
                channel = await self._open(turn)
                channel, ts = await self._post(channel, bundle, incidents)
            elif len(bundle) > 1:
                # one page the bundle carries may be what Slack refuses: this page alone
                log.warning(
                    "bundled page refused; sending the page alone",
                    extra={"incident_id": lead.incident_id, "error": exc.error},
                )
                bundle, whole = [lead], False
                channel, ts = await self._post(channel, bundle, incidents)
            else:
                raise
        turn.channel = channel
        versions = {p.id: incidents[p.incident_id].version for p in bundle}

        async def record(session: AsyncSession) -> None:
            repo = PageRepository(session)
            for page_id, version in versions.items():
                await repo.set_dm(page_id=page_id, channel=channel, ts=ts, version=version)

        turn.writes.append(record)
        turn.sent.update(versions)
        return whole

    async def refresh(self, page: Page, incident: Incident) -> None:
        """Edit `page`'s DM to show `incident` now, or, for a bundle, all its incidents now."""
        assert page.dm_channel is not None and page.dm_ts is not None
        channel, ts = page.dm_channel, page.dm_ts
        async with self.db.read() as session:
            shown = await PageRepository(session).sharing_dm(
                target=page.target, channel=channel, ts=ts
            )
        if len({p.incident_id for p in shown}) <= 1:
            message = self.renderer.page_message(incident, level=page.level + 1)
            await self.gateway.update_message(channel, ts, text=message.text, blocks=message.blocks)
            return
        # a bundle: one editor at a time, each rendering every incident's state read after
        # the previous edit, so the last edit shows the newest state of all of them
        async with self._turn(page.target) as turn:
            assert turn is not None
            async with self.db.read() as session:
                shown = await PageRepository(session).sharing_dm(
                    target=page.target, channel=channel, ts=ts
                )
                incidents = await _incidents(IncidentRepository(session), shown)
            message = self._message(shown, incidents)
            await self.gateway.update_message(channel, ts, text=message.text, blocks=message.blocks)

            async def record(session: AsyncSession) -> None:
                repo = PageRepository(session)
                for p in shown:
                    version = incidents[p.incident_id].version
                    await repo.mark_dm_rendered(page_id=p.id, version=version)

            turn.writes.append(record)

    # ---- helpers ------------------------------------------------------------------------

    @asynccontextmanager
    async def _turn(self, user: str, *, page_id: int | None = None) -> AsyncIterator[_Turn | None]:
        """Be the one sender to `user`: this process's lock, then the replicas' lease.

        With `page_id` (sending a page), yields None instead once that page has its DM
        (sent by whoever had the turn before), and fails fast while the last send to the
        person failed retryably. The turn's writes commit with the lease's release.
        """
        lock = self._locks.get(user)
        if lock is None:
            lock = self._locks[user] = asyncio.Lock()
        async with lock:
            dm: DmChannel | None = None
            for _ in range(LEASE_POLLS):
                if page_id is not None and (
                    page_id in self._covered or await self._has_dm(page_id)
                ):
                    yield None
                    return
                failing = self._failing.get(user) if page_id is not None else None
                if failing is not None and failing[0] > self.clock.now():
                    # the turn before ours just failed: the pages queued behind it go back to
                    # the outbox at once instead of each retrying in turn
                    until, last = failing
                    raise SlackRetryable(
                        last.method,
                        last.error,
                        status=last.status,
                        retry_after=(until - self.clock.now()).total_seconds(),
                    )
                now = self.clock.now()
                async with self.db.write() as session:
                    dm = await DmChannelRepository(session).take_lease(
                        user=user, now=now, until=now + LEASE
                    )
                if dm is not None:
                    break
                await asyncio.sleep(LEASE_POLL_SECONDS)
            if dm is None:
                raise LeaseBusy()
            turn = _Turn(dm=dm, channel=dm.channel_id)
            if dm.abandoned is not None:
                await self._adopt(turn, since=dm.abandoned - LEASE)
            try:
                if page_id is not None and page_id in self._covered:
                    yield None  # posted by the turn that died
                    return
                yield turn
            except SlackRetryable as exc:
                if page_id is not None:
                    self._note_failure(user, exc)
                raise
            finally:
                # only what succeeded was added to `writes`: recorded even if a later step
                # failed, so nothing sent is sent again
                writes = [*turn.writes, _release(user)]

                async def finish(session: AsyncSession) -> None:
                    for write in writes:
                        await write(session)

                await self.db.write_grouped(finish)
                if len(self._covered) > 10_000:
                    self._covered.clear()
                self._covered.update(turn.sent)

    async def _adopt(self, turn: _Turn, *, since: datetime) -> None:
        """The last sender to this person died mid-turn: record the page DMs it posted but
        could not record (found by their marks), so none is posted again.

        If Slack cannot be asked now, the lease is given up still marked as left to expire,
        so the next sender looks again.
        """
        user = turn.dm.user
        try:
            channel = turn.channel or await self._open(turn)
            posted = await self.gateway.find_page_posts(channel, since=since)
            async with self.db.write() as session:
                pages = PageRepository(session)
                adopted = []
                for page_id, ts in posted.items():
                    try:
                        page = await pages.get(page_id=page_id)
                    except NotFound:  # its incident was deleted since
                        continue
                    if page.target == user and page.dm_ts is None:
                        # version 0: the next sync edits it to the incident's state now
                        await pages.set_dm(page_id=page_id, channel=channel, ts=ts, version=0)
                        adopted.append(page_id)
                for write in turn.writes:  # the channel, if it was opened just now
                    await write(session)
            turn.writes.clear()
        except BaseException:
            now = self.clock.now()
            await self.db.write_grouped(
                lambda session: DmChannelRepository(session).abandon_lease(user=user, now=now)
            )
            raise
        if adopted:
            log.warning(
                "adopted page DMs a sender that died had posted",
                extra={"user": user, "pages": adopted},
            )
        self._covered.update(adopted)

    def _note_failure(self, user: str, exc: SlackRetryable) -> None:
        wait = exc.retry_after if exc.retry_after is not None else 1.0
        self._failing[user] = (self.clock.now() + timedelta(seconds=wait), exc)

    async def _has_dm(self, page_id: int) -> bool:
        async with self.db.read() as session:
            return (await PageRepository(session).get(page_id=page_id)).dm_ts is not None

    async def _open(self, turn: _Turn) -> str:
        """conversations.open, once per person: the channel is remembered for every replica
        when the turn ends, even if the post that follows fails."""
        user = turn.dm.user
        channel = await self.gateway.open_dm(user)
        now = self.clock.now()
        turn.writes.append(
            lambda session: DmChannelRepository(session).remember(
                user=user, channel_id=channel, now=now
            )
        )
        turn.channel = channel
        return channel

    async def _post(
        self,
        channel: str,
        pages: Sequence[Page],
        incidents: dict[int, Incident],
        *,
        unsure: bool = False,
    ) -> tuple[str, str]:
        """Post the DM of `pages` (the first one leads), marked with the pages it carries, so
        a post whose answer was lost is found and adopted rather than repeated."""
        message = self._message(pages, incidents)
        lead = pages[0]
        mark = PageMark(
            outbox_id=0,
            step="page",
            since=lead.paged_at,
            incident_id=lead.incident_id,
            page_id=lead.id,
            pages=tuple(p.id for p in pages),
        )
        return await self.gateway.post_message(
            channel, text=message.text, blocks=message.blocks, mark=mark, look_first=unsure
        )

    def _message(self, pages: Sequence[Page], incidents: dict[int, Incident]) -> Message:
        """One incident: the page as it always looks; several: the bundle."""
        if len({p.incident_id for p in pages}) == 1:
            page = max(pages, key=lambda p: p.level)
            return self.renderer.page_message(incidents[page.incident_id], level=page.level + 1)
        return self.renderer.page_bundle([(incidents[p.incident_id], p.level + 1) for p in pages])


async def _incidents(repo: IncidentRepository, pages: Sequence[Page]) -> dict[int, Incident]:
    found: dict[int, Incident] = {}
    for page in pages:
        if page.incident_id not in found:
            found[page.incident_id] = await repo.get(incident_id=page.incident_id)
    return found
