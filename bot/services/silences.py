"""Silences: create, list and expire them; release the alerts they (and maintenance windows)
held once they end.

The Mute stage of the alert pipeline holds alerts; this service owns the silences themselves
and the release. Deadlines live in SQL: each held alert carries `held_until` (its silence's or
window's end; an early expiry moves it to now). `sweep()` (every second, on every replica) locks
the due ones with SKIP LOCKED and passes each through the pipeline's decision path again, so
routing, grouping and paging apply, and claims it in the same transaction: exactly once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.clock import Clock
from bot.config import IntegrationConfig, PulseOpsConfig
from bot.domain.matchers import Matcher, MatchOp
from bot.domain.silences import MAX_COMMENT, MAX_MATCHERS, Silence, selective
from bot.errors import Conflict, UserError
from bot.ingest.decisions import Muted
from bot.ingest.pipeline import Pipeline
from bot.ingest.stages import IngestRequest
from bot.metrics import Metrics
from bot.services.heartbeats import HEARTBEAT_SOURCE
from bot.services.incidents import IncidentService
from store.incidents import TimelineRepository
from store.session import Database
from store.silences import SilenceRepository, SuppressedAlert, SuppressedAlertRepository
from store.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

MAX_SILENCE = timedelta(days=366)
RELEASE_BATCH = 100


@dataclass(frozen=True, slots=True)
class SilenceView:
    """A silence and how many alerts it holds now."""

    silence: Silence
    held: int


class SilenceService:
    """Creates, lists and expires silences; releases held alerts when their hold ends."""

    def __init__(
        self,
        *,
        db: Database,
        config: PulseOpsConfig,
        clock: Clock,
        metrics: Metrics,
        pipeline: Pipeline,
        incidents: IncidentService,
        changed: Callable[[], None] = lambda: None,
    ) -> None:
        self.db = db
        self.config = config
        self.clock = clock
        self.metrics = metrics
        self.pipeline = pipeline
        self.incidents = incidents
        self.changed = changed

    # ---- people and the API -------------------------------------------------------------

    def check(
        self,
        *,
        matchers: Sequence[Matcher],
        starts_at: datetime | None,
        ends_at: datetime,
        comment: str,
        now: datetime,
    ) -> dict[str, str]:
        """What is wrong with a silence to be (field -> problem); empty when nothing is."""
        problems: dict[str, str] = {}
        if not matchers:
            problems["matchers"] = 'give at least one matcher, e.g. service="payment-api"'
        elif len(matchers) > MAX_MATCHERS:
            problems["matchers"] = f"at most {MAX_MATCHERS} matchers"
        elif not selective(matchers):
            problems["matchers"] = (
                "at least one matcher must not match an empty label (a silence that matches "
                'every alert would mute everything), e.g. service="payment-api"'
            )
        start = starts_at or now
        if ends_at <= now:
            problems["ends_at"] = "is in the past: a silence must end in the future"
        elif ends_at <= start:
            problems["ends_at"] = "must be after starts_at"
        elif ends_at - start > MAX_SILENCE:
            problems["ends_at"] = "a silence lasts at most 366 days"
        if not comment.strip():
            problems["comment"] = "say why, e.g. “deploy of payments”"
        elif len(comment) > MAX_COMMENT:
            problems["comment"] = f"at most {MAX_COMMENT} characters"
        return problems

    async def create(
        self,
        *,
        matchers: Sequence[Matcher],
        starts_at: datetime | None,
        ends_at: datetime,
        comment: str,
        by: str,
    ) -> Silence:
        """Create a silence; UserError naming the bad fields (nothing is written then)."""
        now = self.clock.now()
        problems = self.check(
            matchers=matchers, starts_at=starts_at, ends_at=ends_at, comment=comment, now=now
        )
        if problems:
            raise UserError(
                "; ".join(f"{field} {why}" for field, why in problems.items()), fields=problems
            )

        async def work(uow: UnitOfWork) -> Silence:
            return await SilenceRepository(uow.session).add(
                matchers=matchers,
                starts_at=starts_at or now,
                ends_at=ends_at,
                comment=comment.strip(),
                created_by=by,
                now=now,
            )

        silence = await self.incidents.write(work)
        log.info("silence created", extra={"silence": silence.id, "by": by})
        self.changed()
        return silence

    async def expire(self, *, silence_id: int, by: str) -> Silence:
        """Expire a silence now; what it held and still fires is released by the next sweep.

        Raises SilenceNotFound, or Conflict when it already ended.
        """
        now = self.clock.now()

        async def work(uow: UnitOfWork) -> Silence:
            silences = SilenceRepository(uow.session)
            silence = await silences.get(silence_id=silence_id, lock=True)
            if not await silences.expire(silence_id=silence_id, by=by, now=now):
                ended = silence.expired_at or silence.ends_at
                raise Conflict(
                    f"silence #{silence_id} already ended ({ended:%Y-%m-%d %H:%M} UTC)",
                    fields={"id": "already ended"},
                )
            await SuppressedAlertRepository(uow.session).end_hold(silence_id=silence_id, now=now)
            return await silences.get(silence_id=silence_id)

        silence = await self.incidents.write(work)
        log.info("silence expired", extra={"silence": silence_id, "by": by})
        self.changed()
        return silence

    async def get(self, *, silence_id: int) -> Silence:
        async with self.db.read() as session:
            return await SilenceRepository(session).get(silence_id=silence_id)

    async def current(self) -> list[SilenceView]:
        """Silences active or pending, ending soonest first, with the alerts each holds."""
        now = self.clock.now()
        async with self.db.read() as session:
            found = await SilenceRepository(session).current(now=now)
            held = await SuppressedAlertRepository(session).held_counts(
                silence_ids=[s.id for s in found]
            )
        return [SilenceView(s, held.get(s.id, 0)) for s in found]

    async def suppressed(
        self,
        *,
        reason: str | None,
        silence_id: int | None,
        window: str | None,
        status: str | None,
        limit: int,
    ) -> list[SuppressedAlert]:
        """Alerts that opened no incident (muted or dropped), the most recently seen first."""
        async with self.db.read() as session:
            return await SuppressedAlertRepository(session).list(
                reason=reason, silence_id=silence_id, window=window, status=status, limit=limit
            )

    def team_of(self, matchers: Sequence[Matcher]) -> str | None:
        """The team concerned by a silence: the owner of the service it names (`service="x"`)."""
        for matcher in matchers:
            if matcher.name == "service" and matcher.op is MatchOp.EQ:
                team = self.config.team_for_service(matcher.value)
                if team is not None:
                    return team.id
        return None

    # ---- the release sweep --------------------------------------------------------------

    async def sweep(self) -> int:
        """Release every held alert whose silence or window has ended; return how many."""
        now = self.clock.now()

        async def work(uow: UnitOfWork) -> int:
            held = SuppressedAlertRepository(uow.session)
            released = 0
            for alert in await held.due(now=now, limit=RELEASE_BATCH):
                released += await self._release(uow, held, alert, now)
            await uow.flush_repeats()
            return released

        released = await self.incidents.write(work)
        if released:
            self.changed()
        return released

    def _integration(self, name: str) -> IntegrationConfig | None:
        """The integration an alert came through: a configured one, or heartbeats' own."""
        if name == HEARTBEAT_SOURCE.name:
            return HEARTBEAT_SOURCE
        return self.config.integration(name)

    async def _release(
        self,
        uow: UnitOfWork,
        held: SuppressedAlertRepository,
        suppressed: SuppressedAlert,
        now: datetime,
    ) -> int:
        integration = self._integration(suppressed.integration)
        if integration is None:  # no longer configured: nothing to open an incident for
            await held.mark_released(suppressed_id=suppressed.id, incident_id=None, now=now)
            return 0
        alert = suppressed.alert
        request = IngestRequest(integration, (alert,), None, "")
        decision = await self.pipeline.decide_for(uow, request, alert, now)
        if isinstance(decision, Muted) and decision.hold is not None:
            # another silence or window holds it now: wait for that one instead
            await held.rehold(suppressed_id=suppressed.id, hold=decision.hold)
            return 0
        outcome = await self.incidents.apply(uow, integration, decision, now)
        if not await held.mark_released(
            suppressed_id=suppressed.id, incident_id=outcome.incident_id, now=now
        ):
            return 0
        if outcome.incident_id is not None:
            await TimelineRepository(uow.session).add(
                incident_id=outcome.incident_id,
                at=now,
                kind="alert_unmuted",
                actor=f"monitor:{integration.name}",
                text=(
                    f"Alert held by {suppressed.by} since "
                    f"{suppressed.first_seen_at:%Y-%m-%d %H:%M} UTC "
                    f"({_notifications(suppressed.occurrences)}); still firing when it ended: "
                    f"{alert.title}"
                ),
                data={
                    "fingerprint": alert.fingerprint,
                    "silence_id": suppressed.silence_id,
                    "window": suppressed.window,
                    "occurrences": suppressed.occurrences,
                },
            )
        kind, name = (
            ("silence", str(suppressed.silence_id))
            if suppressed.silence_id is not None
            else ("maintenance_window", str(suppressed.window))
        )
        uow.after_commit(self.metrics.alerts_released.labels(kind=kind, name=name).inc)
        return 1


def _notifications(count: int) -> str:
    return "1 notification" if count == 1 else f"{count} notifications"
