"""Workflows: start runs from incident events, clicks and commands; schedule the
`unacknowledged_for` ones.

A run is a unique row per (workflow, incident, trigger key) recorded in the transaction of the
state change that triggered it, with its timeline entry and the outbox row that carries it
out (`bot.delivery.effects.workflows`): exactly once across replicas and restarts. Runs for
`unacknowledged_for` wait in SQL (`status = scheduled`, `due_at`); `sweep()` claims the due
ones with SKIP LOCKED, so one replica starts each.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from bot.clock import Clock
from bot.config import PulseOpsConfig
from bot.config.workflows import WorkflowConfig
from bot.delivery.kinds import OutboxKind
from bot.domain.events import INCIDENT_EVENTS
from bot.domain.incident import Status
from bot.domain.matchers import matches_all
from bot.domain.records import Incident
from bot.domain.workflows import WORKFLOW_ACTOR_PREFIX, match_labels, trigger_key
from bot.errors import NotFound, UserError
from bot.services.events import EventStream
from bot.services.transactions import in_write
from store.incidents import IncidentRepository, TimelineRepository
from store.session import Database
from store.unit_of_work import UnitOfWork
from store.workflows import WorkflowRepository


def labels_of(incident: Incident) -> dict[str, str]:
    """What a workflow's matchers see of an incident."""
    return match_labels(
        service=incident.service_id,
        team=incident.team_id,
        severity=incident.severity.value,
        category=incident.category,
        labels=incident.labels,
    )


def applies(workflow: WorkflowConfig, incident: Incident) -> bool:
    return matches_all(workflow.matchers, labels_of(incident))


def offered(config: PulseOpsConfig, incident: Incident) -> list[WorkflowConfig]:
    """The `run: button` workflows offered on this incident's message (open incidents)."""
    if not incident.is_open:
        return []
    return [w for w in config.workflows if w.run == "button" and applies(w, incident)]


class WorkflowService:
    def __init__(
        self,
        *,
        db: Database,
        config: PulseOpsConfig,
        clock: Clock,
        on_commit: Callable[[], None] = lambda: None,
        events: EventStream | None = None,
    ) -> None:
        self.db = db
        self.config = config
        self.clock = clock
        self.on_commit = on_commit
        self.events = events

    # ---- in the state change's transaction ---------------------------------------------

    async def fire(
        self,
        uow: UnitOfWork,
        incident: Incident,
        trigger: str,
        *,
        by: str,
        now: datetime,
        key: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        """Start the automatic workflows `trigger` fires for `incident` (as it is after the
        change); a triggered incident also schedules its `unacknowledged_for` runs. `key`
        names the event when the incident's version does not (an escalation step).

        Every change is also published to the event sinks (`incident.<trigger>`), whoever
        made it."""
        event = INCIDENT_EVENTS.get(trigger)
        if self.events is not None and event is not None and self.events.wanted(event):
            # the incident as stored after the change (who acknowledged, when), not a sketch
            stored = await IncidentRepository(uow.session).get(incident_id=incident.id)
            await self.events.emit(uow, event, stored, actor=by, now=now, data=data)
        if not self.config.workflows or by.startswith(WORKFLOW_ACTOR_PREFIX):
            return
        key = key or trigger_key(trigger, version=incident.version)
        for workflow in self.config.workflows:
            if workflow.run != "auto" or not applies(workflow, incident):
                continue
            if trigger in workflow.events:
                await self._start(uow, workflow, incident, trigger, key, by=by, now=now)
            if trigger in ("triggered", "reopened"):
                for after in workflow.unacknowledged_for:
                    await self._start(
                        uow,
                        workflow,
                        incident,
                        "unacknowledged_for",
                        f"unacknowledged_for:{int(after.total_seconds())}s@v{incident.version}",
                        by="pulseops",
                        now=now,
                        due_at=now + after,
                    )

    async def _start(
        self,
        uow: UnitOfWork,
        workflow: WorkflowConfig,
        incident: Incident,
        trigger: str,
        key: str,
        *,
        by: str,
        now: datetime,
        due_at: datetime | None = None,
    ) -> int | None:
        run_id = await WorkflowRepository(uow.session).create(
            workflow_id=workflow.id,
            incident_id=incident.id,
            trigger=trigger,
            trigger_key=key,
            started_by=by,
            step_kinds=[step.kind for step in workflow.steps],
            now=now,
            due_at=due_at,
        )
        if run_id is not None and due_at is None:
            await self._begin(uow, workflow, incident.id, run_id, trigger, by=by, now=now)
        return run_id

    async def _begin(
        self,
        uow: UnitOfWork,
        workflow: WorkflowConfig,
        incident_id: int,
        run_id: int,
        trigger: str,
        *,
        by: str,
        now: datetime,
    ) -> None:
        await TimelineRepository(uow.session).add(
            incident_id=incident_id,
            at=now,
            kind="workflow_started",
            actor=by,
            text=f"Workflow {workflow.title} started ({trigger})",
            data={"workflow": workflow.id, "run_id": run_id, "trigger": trigger},
        )
        await uow.enqueue(
            kind=OutboxKind.WORKFLOW_RUN,
            incident_id=incident_id,
            now=now,
            payload={"run_id": run_id},
        )

    # ---- by hand --------------------------------------------------------------------------

    async def run_by_hand(
        self, *, incident_id: int, workflow_id: str, by: str, key: str, trigger: str
    ) -> bool:
        """Start a `run: button` workflow once per click or command (`key`): True when this
        call started it, False when the same click had already.

        Raises UserError (unknown workflow, not offered on this incident) or NotFound.
        """
        workflow = self.config.workflow(workflow_id)
        offered = [w.id for w in self.config.workflows if w.run == "button"]
        if workflow is None or workflow.run != "button":
            known = ", ".join(offered) if offered else "none are configured"
            raise UserError(
                f"No workflow {workflow_id!r} to run by hand ({known}). "
                "Type `/incident run <workflow>`.",
                fields={"workflow": "unknown"},
            )

        async def work(uow: UnitOfWork) -> bool:
            now = self.clock.now()
            incident = await IncidentRepository(uow.session).get(incident_id=incident_id)
            if not incident.is_open:
                raise UserError(f"{incident.number} is resolved: its workflows no longer run.")
            if not applies(workflow, incident):
                raise UserError(
                    f"Workflow {workflow.id} does not apply to {incident.number} "
                    f"(its matchers: {', '.join(str(m) for m in workflow.matchers)})."
                )
            run_id = await self._start(uow, workflow, incident, trigger, key, by=by, now=now)
            return run_id is not None

        return await in_write(self.db, work, on_commit=self.on_commit)

    # ---- unacknowledged_for -------------------------------------------------------------

    async def sweep(self) -> int:
        """Start the scheduled runs that are due and whose incident is still unacknowledged;
        skip the others. Returns how many started."""
        now = self.clock.now()

        async def work(uow: UnitOfWork) -> int:
            repo = WorkflowRepository(uow.session)
            started = 0
            for run in await repo.claim_due(now=now, limit=100):
                workflow = self.config.workflow(run.workflow_id)
                try:
                    incident = await IncidentRepository(uow.session).get(
                        incident_id=run.incident_id
                    )
                except NotFound:
                    continue
                if workflow is None or incident.status is not Status.TRIGGERED:
                    reason = "acknowledged in time" if workflow else "workflow removed"
                    await repo.skip_scheduled(run_id=run.id, now=now, reason=reason)
                    continue
                if await repo.start_scheduled(run_id=run.id):
                    await self._begin(
                        uow, workflow, incident.id, run.id, run.trigger, by="pulseops", now=now
                    )
                    started += 1
            return started

        return await in_write(self.db, work, on_commit=self.on_commit)
