"""App Home: the dashboard's data, who looks at it, and refreshes within Slack's rate limits.

`opened` (app_home_opened) publishes the viewer's Home tab at once. `changed` runs after every
incident commit and is O(1): it bumps a generation and wakes one background loop, which
rebuilds the dashboard at most once per `debounce` seconds and re-renders it for everyone who
opened the tab in the last `viewer_ttl`. A view identical to the one last published is not
sent; each user gets at most one publish per `min_interval` seconds, and every publish takes a
token from a bucket kept under views.publish's Tier 4 limit (~100/min per workspace). A 429
pauses the bucket for its Retry-After; failures are logged and retried later, never raised.

Viewers are remembered in memory, per replica (Slack delivers app_home_opened to one of them);
`poll`, a scheduler job, picks up what other replicas and the outbox changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.clock import Clock
from bot.domain.burn import SloView
from bot.domain.dashboard import Dashboard, ProbeLine, WeekStats, order_open
from bot.domain.incident import Status
from bot.errors import SlackFatal, SlackRetryable
from bot.metrics import Metrics
from bot.services.oncall import OnCallService
from bot.slack.gateway import SlackGateway, backoff_delay
from bot.slack.ratelimit import TokenBucket
from store.home import HomeRepository
from store.incidents import IncidentFilter, IncidentRepository
from store.session import Database
from store.silences import SilenceRepository, SuppressedAlertRepository
from store.stats import StatsRepository, Window

if TYPE_CHECKING:
    from bot.render.home import HomeRenderer

log = logging.getLogger(__name__)

WEEK = timedelta(days=7)
MAX_HOME_SILENCES = 500  # read for the Home tab (it lists 10 and counts the rest)

OPEN = (Status.TRIGGERED, Status.ACKNOWLEDGED)

# A user's Home tab cannot be published: stop refreshing it.
_GONE = frozenset({"user_not_found", "invalid_arguments", "account_inactive", "not_enabled"})


# ---- the service -------------------------------------------------------------------------


@dataclass(slots=True)
class _Viewer:
    opened_at: datetime  # last app_home_opened (domain clock): viewers expire after viewer_ttl
    urgent: bool = True  # opened or notified: publish without debounce or min_interval
    seen: int = -1  # the dashboard generation last rendered for this user
    digest: str | None = None  # hash of the view last published (None: publish regardless)
    slack_hash: str | None = None  # Slack's hash of that view, to notice other publishers
    last_publish: float = float("-inf")  # monotonic
    retry_at: float = 0.0  # monotonic: not before (after a failure)
    failures: int = 0
    notice: str | None = None
    notice_until: float = 0.0


class HomeService:
    """Builds the dashboard, remembers recent viewers and publishes their Home tabs."""

    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        metrics: Metrics,
        gateway: SlackGateway,
        renderer: HomeRenderer,
        oncall: OnCallService,
        viewer_ttl: timedelta = timedelta(hours=12),
        max_viewers: int = 1000,
        debounce: float = 2.0,
        min_interval: float = 10.0,
        publish_per_minute: float = 60.0,
        burst: float = 20.0,
        stats_ttl: float = 60.0,
        notice_ttl: float = 60.0,
        followup: float | None = 5.0,
        open_limit: int = 200,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.clock = clock
        self.metrics = metrics
        self.gateway = gateway
        self.renderer = renderer
        self.oncall = oncall
        # the probes section's lines (set by the app factory when probes are configured)
        self.probe_lines: Callable[[], Awaitable[tuple[ProbeLine, ...]]] | None = None
        # the SLOs section's views (set by the app factory when `slos` are configured)
        self.slo_views: Callable[[], Awaitable[Sequence[SloView]]] | None = None
        self.viewer_ttl = viewer_ttl
        self.max_viewers = max_viewers
        self.debounce = debounce
        self.min_interval = min_interval
        self.stats_ttl = stats_ttl
        self.notice_ttl = notice_ttl
        self.followup = followup
        self.open_limit = open_limit
        self._monotonic = monotonic
        self.bucket = TokenBucket(rate=publish_per_minute / 60.0, burst=burst, monotonic=monotonic)
        self._viewers: dict[str, _Viewer] = {}
        self._generation = 0
        self._batch_started: float | None = None  # first change not yet in a dashboard
        self._followup_at: float | None = None  # one more look after the changes settle
        self._dashboard: Dashboard | None = None
        self._week: tuple[float, WeekStats] | None = None
        self._slos: tuple[float, tuple[SloView, ...]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._closed = False

    # ---- what happens -------------------------------------------------------------------

    def opened(self, *, user_id: str, view_hash: str | None = None) -> None:
        """`user_id` opened the Home tab; `view_hash` is the hash of the view Slack shows them.

        Publishes soon, unless the view we would send is the one they already have.
        """
        viewer = self._viewer(user_id)
        viewer.opened_at = self.clock.now()
        viewer.urgent = True
        if view_hash is None or view_hash != viewer.slack_hash:
            viewer.digest = None  # Slack shows something else (first visit, another replica)
        self._kick()

    def notify(self, *, user_id: str, text: str) -> None:
        """Show `text` (mrkdwn, already escaped) atop the user's Home tab for `notice_ttl` s."""
        viewer = self._viewer(user_id)
        viewer.notice = text
        viewer.notice_until = self._monotonic() + self.notice_ttl
        viewer.urgent = True
        self._kick()

    def acted(self, *, user_id: str) -> None:
        """`user_id` changed something from their Home tab: redraw it now (the refresh limits
        apply to other people's changes, not to one's own click). Call after the commit."""
        viewer = self._viewer(user_id)
        viewer.opened_at = self.clock.now()
        viewer.urgent = True
        self._kick()

    def changed(self) -> None:
        """Incidents changed: refresh the recent viewers soon. Cheap; runs after every commit."""
        self._bump(followup=True)

    async def poll(self) -> None:
        """Scheduler job: forget stale viewers; pick up changes made elsewhere."""
        self._expire()
        self._bump(followup=False)

    def _bump(self, *, followup: bool) -> None:
        self._generation += 1
        now = self._monotonic()
        if self._batch_started is None:
            self._batch_started = now
        if followup and self.followup is not None:
            self._followup_at = now + self.followup
        if self._viewers:
            self._kick()

    @property
    def viewers(self) -> list[str]:
        """Users whose Home tab this replica keeps up to date."""
        return list(self._viewers)

    async def wait_idle(self) -> None:
        """Wait until every pending refresh is done (tests and shutdown)."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    async def close(self) -> None:
        """Stop refreshing (app shutdown)."""
        self._closed = True
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    # ---- viewers ------------------------------------------------------------------------

    def _viewer(self, user_id: str) -> _Viewer:
        viewer = self._viewers.get(user_id)
        if viewer is None:
            viewer = self._viewers[user_id] = _Viewer(opened_at=self.clock.now())
            if len(self._viewers) > self.max_viewers:
                oldest = min(self._viewers, key=lambda u: self._viewers[u].opened_at)
                del self._viewers[oldest]
            self.metrics.home_viewers.set(len(self._viewers))
        return viewer

    def _expire(self) -> None:
        horizon = self.clock.now() - self.viewer_ttl
        for user in [u for u, v in self._viewers.items() if v.opened_at < horizon]:
            del self._viewers[user]
        self.metrics.home_viewers.set(len(self._viewers))

    def _ready_at(self, viewer: _Viewer) -> float | None:
        """When the viewer's tab should be re-rendered (None: it is up to date)."""
        if viewer.urgent:
            return viewer.retry_at
        if viewer.seen >= self._generation:
            return None
        at = max(viewer.retry_at, viewer.last_publish + self.min_interval)
        if self._batch_started is not None:
            at = max(at, self._batch_started + self.debounce)
        return at

    def _next(self) -> tuple[str | None, float | None]:
        """(the user to refresh now, None) or (None, seconds to wait) or (None, None): idle.

        `followup` seconds after the last change everyone is looked at once more: the outbox
        delivers a change's Slack side (the incident channel, say) after its commit, and a
        view rendered in between would miss it until the next change or `poll`.
        """
        now = self._monotonic()
        best: tuple[bool, float, str] | None = None
        soonest: float | None = None
        if self._followup_at is not None:
            if now >= self._followup_at:
                self._followup_at = None
                self._generation += 1  # no debounce: the changes are over
            else:
                soonest = self._followup_at
        for user, viewer in self._viewers.items():
            at = self._ready_at(viewer)
            if at is None:
                continue
            if at <= now:
                key = (not viewer.urgent, viewer.last_publish, user)
                best = key if best is None or key < best else best
            else:
                soonest = at if soonest is None else min(soonest, at)
        if best is not None:
            return best[2], None
        return None, None if soonest is None else soonest - now

    # ---- the refresh loop ---------------------------------------------------------------

    def _kick(self) -> None:
        self._wake.set()
        if self._closed:
            return
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while not self._closed:
            self._expire()
            user, wait = self._next()
            if user is None:
                if wait is None:
                    return
                self._wake.clear()  # no await since _next(): no wake-up can be lost
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=wait)
                continue
            viewer = self._viewers[user]
            try:
                await self._refresh(user, viewer)
                viewer.failures = 0
            except Exception:  # a database hiccup must not stop the Home tabs for good
                viewer.failures += 1
                viewer.retry_at = self._monotonic() + backoff_delay(viewer.failures, cap=60.0)
                log.exception("home tab refresh failed", extra={"user": user})
                self.metrics.home_publishes.labels(result="failed").inc()

    async def _refresh(self, user: str, viewer: _Viewer) -> None:
        dashboard = await self._current()
        urgent, viewer.urgent = viewer.urgent, False
        viewer.seen = dashboard.generation
        now = self._monotonic()
        notice = viewer.notice if viewer.notice_until > now else None
        view = self.renderer.home_view(dashboard, user=user, notice=notice)
        digest = hashlib.sha256(json.dumps(view, sort_keys=True).encode()).hexdigest()
        if digest == viewer.digest:
            self.metrics.home_publishes.labels(result="unchanged").inc()
            return
        wait = self.bucket.wait_time()
        if wait > 0:
            await asyncio.sleep(wait)
        self.bucket.take()
        try:
            response = await self.gateway.call("views.publish", user_id=user, view=view)
        except SlackRetryable as exc:
            delay = exc.retry_after if exc.retry_after is not None else backoff_delay(1)
            if exc.status == 429:
                self.bucket.pause(delay)
            viewer.urgent, viewer.seen = urgent, -1  # try again after the delay
            viewer.retry_at = self._monotonic() + delay
            self.metrics.home_publishes.labels(result=exc.error).inc()
            log.warning("views.publish for %s: %s; retrying in %.1fs", user, exc.error, delay)
            return
        except SlackFatal as exc:
            self.metrics.home_publishes.labels(result=exc.error).inc()
            log.error("views.publish for %s failed: %s", user, exc.error)
            viewer.digest = None
            if exc.error in _GONE:
                self._viewers.pop(user, None)
            return
        viewer.digest = digest
        viewer.slack_hash = str((response.get("view") or {}).get("hash") or "") or None
        viewer.last_publish = self._monotonic()
        self.metrics.home_publishes.labels(result="published").inc()

    # ---- the dashboard ------------------------------------------------------------------

    async def _current(self) -> Dashboard:
        """The dashboard for the current generation, read again only when something changed."""
        dashboard = self._dashboard
        if dashboard is not None and dashboard.generation == self._generation:
            return dashboard
        generation = self._generation
        self._batch_started = None  # changes from here on start a new batch
        dashboard = await self.dashboard(generation=generation)
        self._dashboard = dashboard
        return dashboard

    async def dashboard(self, *, generation: int = 0) -> Dashboard:
        """Read everything the Home tabs show (a few cheap queries)."""
        async with self.db.read() as session:
            incidents, total = await IncidentRepository(session).list(
                filters=IncidentFilter(status=OPEN), limit=self.open_limit
            )
            paged = await HomeRepository(session).paged_users(
                incident_ids=[i.id for i in incidents]
            )
            now = self.clock.now()
            silences = await SilenceRepository(session).current(now=now, limit=MAX_HOME_SILENCES)
            held = await SuppressedAlertRepository(session).held_counts(
                silence_ids=[s.id for s in silences]
            )
        oncall = tuple(await self.oncall.who())
        return Dashboard(
            generation=generation,
            open=order_open(incidents),
            open_total=total,
            paged=paged,
            oncall=oncall,
            week=await self._week_stats(),
            probes=await self.probe_lines() if self.probe_lines is not None else (),
            slos=await self._slo_views(),
            silences=tuple((s, held.get(s.id, 0)) for s in silences),
            read_at=now,
        )

    async def _week_stats(self) -> WeekStats:
        """This week's MTTA/MTTR, read at most once per `stats_ttl` seconds.

        The window and the queries are `/incident stats 7d`'s, so both say the same.
        """
        now = self._monotonic()
        if self._week is not None and now - self._week[0] < self.stats_ttl:
            return self._week[1]
        until = self.clock.now()
        async with self.db.read() as session:
            figures = await StatsRepository(session).overall(
                window=Window(since=until - WEEK, until=until)
            )
        stats = WeekStats.of(figures)
        self._week = (now, stats)
        return stats

    async def _slo_views(self) -> tuple[SloView, ...]:
        """The SLOs as `/incident slos` shows them, read at most once per `stats_ttl` seconds
        (an SLO changes when it is evaluated, every 30 s)."""
        if self.slo_views is None:
            return ()
        now = self._monotonic()
        if self._slos is not None and now - self._slos[0] < self.stats_ttl:
            return self._slos[1]
        views = tuple(await self.slo_views())
        self._slos = (now, views)
        return views


__all__ = ["HomeService"]
