"""Whether this replica is healthy: the database answers, can write and is migrated, and
nothing has fallen behind (the outbox, the periodic jobs, escalation and handoff deadlines).

`/readyz` answers with `check()`; the watchdog pings only while it passes. The lags are
exported as metrics too (`update_gauges`, on every check and every `/metrics` scrape).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.clock import Clock
from bot.config.health import HealthConfig
from bot.errors import StoreUnavailable
from bot.jobs import Jobs
from bot.metrics import Metrics
from bot.services.handoffs import HandoffService
from store import migrate
from store.health import probe_write
from store.oncall import EscalationRepository
from store.outbox import OutboxRepository
from store.session import Database

DEADLINE_KINDS = ("escalation", "handoff")


@dataclass(frozen=True, slots=True)
class Readiness:
    """The outcome of one check: `body` says what is wrong (or that all is well)."""

    ok: bool
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Lags:
    """Seconds each kind of work is behind now (0: nothing due is waiting)."""

    outbox: float
    deadlines: dict[str, float]


def _seconds(now: datetime, since: datetime | None) -> float:
    return max((now - since).total_seconds(), 0.0) if since is not None else 0.0


def _limit(value: timedelta) -> float:
    return value.total_seconds()


class HealthService:
    """Runs the readiness checks of this replica."""

    def __init__(
        self,
        *,
        db: Database,
        config: HealthConfig,
        clock: Clock,
        metrics: Metrics,
        handoffs: HandoffService,
        jobs: Jobs,
    ) -> None:
        self.db = db
        self.config = config
        self.clock = clock
        self.metrics = metrics
        self.handoffs = handoffs
        self.jobs = jobs

    async def check(self) -> Readiness:
        """All checks, answered within `health.commit_timeout` (a database that does not
        answer in time is reported as such)."""
        seconds = self.config.commit_timeout.total_seconds()
        try:
            async with asyncio.timeout(seconds):
                return await self._check()
        except TimeoutError:
            return Readiness(
                False,
                {"status": "unavailable", "database": f"no answer within {seconds:g} s"},
                headers=StoreUnavailable("").headers,
            )

    async def _check(self) -> Readiness:
        try:
            await self.db.ping()
            current = await migrate.current_revision(self.db)
        except Exception as exc:  # unreachable database: not ready, say why
            return Readiness(
                False, {"status": "unavailable", "database": f"unreachable: {type(exc).__name__}"}
            )
        if self.db.unwritable:  # writes have been failing: ready again once a probe write commits
            try:
                await probe_write(self.db, now=self.clock.now())
            except StoreUnavailable as exc:
                return Readiness(
                    False, {"status": "unavailable", "database": str(exc)}, headers=exc.headers
                )
        head = migrate.head_revision()
        if current != head:
            return Readiness(
                False,
                {
                    "status": "unavailable",
                    "database": "ok",
                    "migrations": {"current": current, "head": head},
                },
            )
        body: dict[str, Any] = {
            "status": "ok",
            "database": "ok",
            "migrations": {"current": current},
        }
        behind = await self.behind()
        if behind:
            body.update(status="behind", behind=behind)
        return Readiness(not behind, body)

    async def behind(self) -> dict[str, Any]:
        """What has fallen behind beyond its threshold, by area (empty: nothing)."""
        lags = await self.update_gauges()
        found: dict[str, Any] = {}
        outbox_limit = _limit(self.config.outbox_lag)
        if lags.outbox > outbox_limit:
            found["outbox"] = {"lag_seconds": round(lags.outbox, 1), "limit_seconds": outbox_limit}
        deadline_limit = _limit(self.config.deadline_lag)
        late = {
            kind: {"lag_seconds": round(lag, 1), "limit_seconds": deadline_limit}
            for kind, lag in lags.deadlines.items()
            if lag > deadline_limit
        }
        if late:
            found["deadlines"] = late
        jobs = self.jobs.behind(
            at_least=self.config.job_lag, intervals=self.config.job_lag_intervals
        )
        if jobs:
            found["jobs"] = {
                job_id: {
                    "last_success": last.isoformat() if last is not None else None,
                    "limit_seconds": _limit(limit),
                }
                for job_id, (last, limit) in sorted(jobs.items())
            }
        return found

    async def lags(self) -> Lags:
        """How far the outbox and the escalation and handoff deadlines are behind now."""
        now = self.clock.now()
        async with self.db.read() as session:
            outbox_due = await OutboxRepository(session).oldest_due(now=now)
            escalation_due = await EscalationRepository(session).oldest_due(now=now)
        handoff_due = await self.handoffs.oldest_unrecorded(now)
        return Lags(
            outbox=_seconds(now, outbox_due),
            deadlines={
                "escalation": _seconds(now, escalation_due),
                "handoff": _seconds(now, handoff_due),
            },
        )

    async def update_gauges(self) -> Lags:
        """Set the lag gauges and each job's last-success time; return the lags."""
        lags = await self.lags()
        self.metrics.outbox_lag.set(lags.outbox)
        for kind, lag in lags.deadlines.items():
            self.metrics.deadline_lag.labels(kind=kind).set(lag)
        for job_id, at in self.jobs.last_success.items():
            self.metrics.job_last_success.labels(job=job_id).set(at.timestamp())
        return lags
