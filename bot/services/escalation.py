"""Escalation: page a policy's levels in turn until someone acknowledges, exactly once each.

Deadlines live in the `escalations` table. `sweep()` (run every second by the scheduler, on
every replica) locks the due rows with SKIP LOCKED, pages the next step and moves the
deadline, all in one transaction with the pages' outbox rows. A page is a unique row per
(incident, cycle, level, step, target): a retried or concurrent step cannot page twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.config import EscalationPolicyConfig, PulseOpsConfig
from bot.config.directory import directory_of
from bot.delivery.kinds import OutboxKind
from bot.domain.escalation import FIRST, Policy, Step, deadline_after, next_step
from bot.domain.incident import Severity, Status
from bot.domain.records import Incident
from bot.domain.routing import route
from bot.errors import UserError
from bot.metrics import Metrics
from bot.services.notifications import NotificationPlanner
from bot.services.oncall import OnCallLookup
from bot.services.transactions import in_write
from bot.services.workflows import WorkflowService
from store.incidents import IncidentRepository, TimelineRepository
from store.oncall import EscalationRepository, PageRepository
from store.session import Database
from store.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Target:
    """Someone to page: a user (DM) or a user group (mentioned in the incident channel)."""

    id: str
    kind: str  # user | user_group
    via: str  # how they were chosen: "schedule:<id>", "user", "user_group"
    note: str = ""  # e.g. "override of <@U…>"


def policy_model(policy: EscalationPolicyConfig) -> Policy:
    return Policy(delays=tuple(level.delay for level in policy.levels), repeat=policy.repeat)


class EscalationService:
    def __init__(
        self,
        *,
        db: Database,
        config: PulseOpsConfig,
        clock: Clock,
        metrics: Metrics,
        on_commit: Callable[[], None] = lambda: None,
        notifications: NotificationPlanner | None = None,
        workflows: WorkflowService | None = None,
    ) -> None:
        self.db = db
        self.notifications = notifications
        self.config = config
        self.clock = clock
        self.metrics = metrics
        self.on_commit = on_commit
        self.oncall = OnCallLookup(config)
        self.directory = directory_of(config)
        self.workflows: WorkflowService | None = workflows

    def policy_for(self, incident: Incident) -> EscalationPolicyConfig | None:
        """The incident's escalation policy: its service's, else its team's, else none."""
        owner = route(
            self.directory,
            service_id=incident.service_id,
            team_id=incident.team_id,
            severity=incident.severity,
        )
        return self.config.escalation_policy(owner.policy_id) if owner.policy_id else None

    # ---- hooks inside the incident's own transaction -----------------------------------

    async def start(self, uow: UnitOfWork, incident: Incident, now: datetime) -> None:
        """Page the first level of the incident's policy (if it has one)."""
        policy = self.policy_for(incident)
        if policy is None:
            return
        session = uow.session
        repo = EscalationRepository(session)
        if await repo.get(incident_id=incident.id) is None:
            await repo.create(incident_id=incident.id, policy_id=policy.id, now=now)
            await self._page(uow, incident, policy, FIRST, scheduled_at=now, now=now)
        else:  # reopened: start over from the first level
            step = 1 + await PageRepository(session).last_step(
                incident_id=incident.id, cycle=FIRST.cycle, level=FIRST.level
            )
            await self._page(uow, incident, policy, FIRST, scheduled_at=now, now=now, step=step)

    async def severity_raised(
        self, uow: UnitOfWork, incident: Incident, before: Severity, now: datetime
    ) -> None:
        """The severity rose: if the new severity has another escalation policy and nobody has
        acknowledged yet, escalate by that policy from its first level, now. With the same
        policy the escalation goes on as it was (nobody is paged twice for one rise)."""
        if incident.status is not Status.TRIGGERED:
            return
        policy = self.policy_for(incident)
        if policy is None:
            return
        repo = EscalationRepository(uow.session)
        state = await repo.get(incident_id=incident.id)
        if state is not None and state.policy_id == policy.id:
            return
        if state is None:
            await repo.create(incident_id=incident.id, policy_id=policy.id, now=now)
            step = 0
        else:
            await repo.switch_policy(incident_id=incident.id, policy_id=policy.id, now=now)
            step = 1 + await PageRepository(uow.session).last_step(
                incident_id=incident.id, cycle=FIRST.cycle, level=FIRST.level
            )
        await TimelineRepository(uow.session).add(
            incident_id=incident.id,
            at=now,
            kind="escalation_policy_changed",
            actor="pulseops",
            text=(
                f"Escalating by {policy.id}, the policy for {incident.severity.value} "
                f"(was {state.policy_id if state else 'none'} for {before.value})"
            ),
            data={"policy": policy.id, "severity": incident.severity.value},
        )
        await self._page(uow, incident, policy, FIRST, scheduled_at=now, now=now, step=step)

    async def stop(self, uow: UnitOfWork, incident_id: int, now: datetime) -> None:
        """Acknowledged or resolved: no further automatic pages, e-mails, SMS or calls."""
        await EscalationRepository(uow.session).stop(incident_id=incident_id, now=now)
        if self.notifications is not None:
            await self.notifications.cancel(uow, incident_id, now)

    # ---- the sweep and manual escalation ------------------------------------------------

    async def sweep(self) -> int:
        """Page every step whose deadline has passed; return how many steps were paged."""
        now = self.clock.now()

        async def work(uow: UnitOfWork) -> int:
            paged = 0
            repo = EscalationRepository(uow.session)
            for state in await repo.due(now=now, limit=100):
                policy = self.config.escalation_policy(state.policy_id)
                step = (
                    next_step(policy_model(policy), Step(state.level, state.cycle))
                    if policy
                    else None
                )
                if policy is None or step is None or state.next_at is None:
                    await repo.advance(
                        incident_id=state.incident_id,
                        level=state.level,
                        cycle=state.cycle,
                        status="exhausted",
                        next_at=None,
                        now=now,
                    )
                    continue
                incident = await IncidentRepository(uow.session).get(incident_id=state.incident_id)
                lateness = (now - state.next_at).total_seconds()
                uow.after_commit(partial(self.metrics.escalation_lateness.observe, lateness))
                await self._page(uow, incident, policy, step, scheduled_at=state.next_at, now=now)
                paged += 1
                if self.workflows is not None:
                    await self.workflows.fire(
                        uow,
                        incident,
                        "escalated",
                        by="pulseops",
                        now=now,
                        key=f"escalated@{step.cycle}.{step.level}.0",
                        data={"level": step.level + 1, "cycle": step.cycle, "by_hand": False},
                    )
            if paged:
                uow.after_commit(self.metrics.escalation_steps.labels(trigger="timeout").inc)
            return paged

        return await in_write(self.db, work, on_commit=self.on_commit)

    async def escalate_now(self, *, incident_id: int, by: str) -> str:
        """Page the next level now (the Escalate button, `/incident escalate`)."""
        now = self.clock.now()
        return await in_write(
            self.db,
            lambda uow: self.escalate_in(uow, incident_id=incident_id, by=by, now=now),
            on_commit=self.on_commit,
        )

    async def escalate_in(
        self, uow: UnitOfWork, *, incident_id: int, by: str, now: datetime
    ) -> str:
        """Page the next level now, in the caller's transaction (raises UserError when there
        is nobody to page)."""
        session = uow.session
        incident = await IncidentRepository(session).get(incident_id=incident_id)
        if not incident.is_open:
            raise UserError(f"{incident.number} is resolved: there is nobody left to page.")
        policy = self.policy_for(incident)
        if policy is None:
            raise UserError(
                f"{incident.number} has no escalation policy (set `escalation_policy` on "
                "its service or team in pulseops.yml)."
            )
        repo = EscalationRepository(session)
        state = await repo.get(incident_id=incident_id, lock=True)
        if state is None:
            await repo.create(incident_id=incident_id, policy_id=policy.id, now=now)
            step, extra = FIRST, 0
        else:
            following = next_step(policy_model(policy), Step(state.level, state.cycle))
            if following is None:  # past the last level: page the last one again
                following = Step(state.level, state.cycle)
            step = following
            extra = 1 + await PageRepository(session).last_step(
                incident_id=incident_id, cycle=step.cycle, level=step.level
            )
        await TimelineRepository(session).add(
            incident_id=incident_id,
            at=now,
            kind="escalated",
            actor=by,
            text=f"Escalated by hand to level {step.level + 1}",
            data={"level": step.level + 1, "cycle": step.cycle},
        )
        await self._page(
            uow,
            incident,
            policy,
            step,
            scheduled_at=now,
            now=now,
            step=extra,
            keep_status=state is not None and state.status != "active",
        )
        uow.after_commit(self.metrics.escalation_steps.labels(trigger="manual").inc)
        if self.workflows is not None:
            fresh = await IncidentRepository(session).get(incident_id=incident_id)
            await self.workflows.fire(
                uow,
                fresh,
                "escalated",
                by=by,
                now=now,
                key=f"escalated@{step.cycle}.{step.level}.{extra}",
                data={"level": step.level + 1, "cycle": step.cycle, "by_hand": True},
            )
        return f"Paged level {step.level + 1} of {policy.id} for {incident.number}."

    async def page_targets(
        self,
        uow: UnitOfWork,
        incident: Incident,
        targets: Sequence[object],
        *,
        cycle: int,
        step: int,
        by: str,
        now: datetime,
    ) -> list[str]:
        """Page `targets` (schedule, user or user group entries) outside any policy, once per
        (cycle, step, target); return who was paged. Workflows page with a negative cycle,
        which escalation never uses."""
        paged: list[str] = []
        for target in await self._targets(uow.session, targets, now):
            page_id = await PageRepository(uow.session).record(
                incident_id=incident.id,
                cycle=cycle,
                level=0,
                step=step,
                target=target.id,
                kind=target.kind,
                via=target.via,
                paged_at=now,
                scheduled_at=now,
                dm_version=0,
            )
            if page_id is None:
                continue
            who = f"<@{target.id}>" if target.kind == "user" else f"<!subteam^{target.id}>"
            await TimelineRepository(uow.session).add(
                incident_id=incident.id,
                at=now,
                kind="paged",
                actor=by,
                text=f"Paged {who} (via {target.via}, by {by})",
                data={
                    "target": target.id,
                    "kind": target.kind,
                    "via": target.via,
                    "page_id": page_id,
                },
            )
            await uow.enqueue(
                kind=OutboxKind.PAGE, incident_id=incident.id, now=now, payload={"page_id": page_id}
            )
            uow.after_commit(self.metrics.pages_sent.labels(kind=target.kind).inc)
            paged.append(who)
        return paged

    # ---- paging -------------------------------------------------------------------------

    async def _page(
        self,
        uow: UnitOfWork,
        incident: Incident,
        policy: EscalationPolicyConfig,
        at: Step,
        *,
        scheduled_at: datetime,
        now: datetime,
        step: int = 0,
        keep_status: bool = False,
    ) -> None:
        level = policy.levels[at.level]
        session = uow.session
        pages = PageRepository(session)
        timeline = TimelineRepository(session)
        for target in await self._targets(session, level.targets, now):
            page_id = await pages.record(
                incident_id=incident.id,
                cycle=at.cycle,
                level=at.level,
                step=step,
                target=target.id,
                kind=target.kind,
                via=target.via,
                paged_at=now,
                scheduled_at=scheduled_at,
                dm_version=0,
            )
            if page_id is None:
                continue  # this step already paged this target
            who = f"<@{target.id}>" if target.kind == "user" else f"<!subteam^{target.id}>"
            repeat = f", repeat {at.cycle}" if at.cycle else ""
            note = f"; {target.note}" if target.note else ""
            await timeline.add(
                incident_id=incident.id,
                at=now,
                kind="paged",
                actor="pulseops",
                text=f"Paged {who} (level {at.level + 1}{repeat}, via {target.via}{note})",
                data={
                    "target": target.id,
                    "kind": target.kind,
                    "level": at.level + 1,
                    "cycle": at.cycle,
                    "via": target.via,
                    "page_id": page_id,
                    "late_seconds": round((now - scheduled_at).total_seconds(), 3),
                },
            )
            await uow.enqueue(
                kind=OutboxKind.PAGE, incident_id=incident.id, now=now, payload={"page_id": page_id}
            )
            uow.after_commit(self.metrics.pages_sent.labels(kind=target.kind).inc)
            if target.kind == "user" and self.notifications is not None:
                await self.notifications.plan(
                    uow, incident, page_id=page_id, user=target.id, now=now
                )
        model = policy_model(policy)
        deadline = deadline_after(model, at, scheduled_at)
        if keep_status:
            status, deadline = "stopped", None
        else:
            status = "active" if deadline is not None else "exhausted"
        await EscalationRepository(session).advance(
            incident_id=incident.id,
            level=at.level,
            cycle=at.cycle,
            status=status,
            next_at=deadline,
            now=now,
        )

    async def _targets(self, session: AsyncSession, targets: object, now: datetime) -> list[Target]:
        found: list[Target] = []
        for target in targets:  # type: ignore[attr-defined]
            if target.schedule:
                oncall = await self.oncall.at(session, schedule_id=target.schedule, instant=now)
                shift = oncall.current
                note = ""
                if shift.override is not None:
                    note = f"override #{shift.override.id} in place of the rotation"
                found.append(Target(shift.user, "user", f"schedule {target.schedule}", note))
            elif target.user:
                found.append(Target(target.user, "user", "user"))
            elif target.user_group:
                found.append(Target(target.user_group, "user_group", "user group"))
        unique: dict[str, Target] = {}
        for t in found:
            unique.setdefault(t.id, t)
        return list(unique.values())
