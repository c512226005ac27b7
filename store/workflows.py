"""Workflow runs and their steps. Keyword-only queries over one session; the caller owns the
transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.errors import NotFound
from store.models import WorkflowRunRow, WorkflowStepRow
from store.session import insert_or_ignore


@dataclass(frozen=True, slots=True)
class RunStep:
    position: int
    kind: str
    status: str  # pending | done | failed
    attempts: int
    result: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Run:
    id: int
    workflow_id: str
    incident_id: int
    trigger: str
    started_by: str
    status: str  # scheduled | pending | succeeded | failed | skipped
    created_at: datetime
    error: str | None
    steps: tuple[RunStep, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "workflow": self.workflow_id,
            "incident_id": self.incident_id,
            "trigger": self.trigger,
            "started_by": self.started_by,
            "status": self.status,
            "error": self.error,
            "steps": [
                {"position": s.position, "kind": s.kind, "status": s.status, "attempts": s.attempts}
                for s in self.steps
            ],
        }


class WorkflowRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create(
        self,
        *,
        workflow_id: str,
        incident_id: int,
        trigger: str,
        trigger_key: str,
        started_by: str,
        step_kinds: list[str],
        now: datetime,
        due_at: datetime | None = None,
    ) -> int | None:
        """Record a run and its steps; None when this (workflow, incident, key) already ran."""
        run_id = await insert_or_ignore(
            self.session,
            WorkflowRunRow,
            {
                "workflow_id": workflow_id,
                "incident_id": incident_id,
                "trigger": trigger,
                "trigger_key": trigger_key[:255],
                "started_by": started_by,
                "status": "scheduled" if due_at is not None else "pending",
                "due_at": due_at,
                "created_at": now,
            },
        )
        if run_id is None:
            return None
        for position, kind in enumerate(step_kinds):
            self.session.add(
                WorkflowStepRow(
                    run_id=run_id, position=position, kind=kind, status="pending", result={}
                )
            )
        await self.session.flush()
        return int(run_id)

    async def get(self, *, run_id: int) -> Run:
        row = await self.session.get(WorkflowRunRow, run_id, populate_existing=True)
        if row is None:
            raise NotFound(f"no workflow run {run_id}")
        steps = await self.session.scalars(
            select(WorkflowStepRow)
            .where(WorkflowStepRow.run_id == run_id)
            .order_by(WorkflowStepRow.position)
            .execution_options(populate_existing=True)
        )
        return _run(row, steps.all())

    async def for_incident(self, *, incident_id: int) -> list[Run]:
        rows = await self.session.scalars(
            select(WorkflowRunRow)
            .where(WorkflowRunRow.incident_id == incident_id)
            .order_by(WorkflowRunRow.id)
        )
        return [await self.get(run_id=r.id) for r in rows.all()]

    async def step_attempted(self, *, run_id: int, position: int, result: dict[str, Any]) -> int:
        """Count one failed attempt of a step (it will be tried again); return the attempts."""
        row = await self._step(run_id, position)
        row.attempts += 1
        row.result = result
        await self.session.flush()
        return row.attempts

    async def finish_step(
        self, *, run_id: int, position: int, ok: bool, result: dict[str, Any], now: datetime
    ) -> None:
        row = await self._step(run_id, position)
        row.attempts += 1
        row.status = "done" if ok else "failed"
        row.result = result
        row.finished_at = now
        await self.session.flush()

    async def finish(self, *, run_id: int, status: str, now: datetime, error: str | None) -> None:
        await self.session.execute(
            update(WorkflowRunRow)
            .where(WorkflowRunRow.id == run_id)
            .values(status=status, finished_at=now, error=error)
            .execution_options(synchronize_session=False)
        )

    async def claim_due(self, *, now: datetime, limit: int) -> list[Run]:
        """Scheduled runs whose time has come, locked (SKIP LOCKED on PostgreSQL) so that one
        replica takes each; the caller moves them on in the same transaction."""
        ids = await self.session.scalars(
            select(WorkflowRunRow.id)
            .where(WorkflowRunRow.status == "scheduled", WorkflowRunRow.due_at <= now)
            .order_by(WorkflowRunRow.due_at, WorkflowRunRow.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [await self.get(run_id=run_id) for run_id in ids.all()]

    async def start_scheduled(self, *, run_id: int) -> bool:
        """Move a scheduled run to pending; False when another replica already did."""
        result = await self.session.execute(
            update(WorkflowRunRow)
            .where(WorkflowRunRow.id == run_id, WorkflowRunRow.status == "scheduled")
            .values(status="pending")
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount) == 1  # type: ignore[attr-defined]

    async def skip_scheduled(self, *, run_id: int, now: datetime, reason: str) -> bool:
        result = await self.session.execute(
            update(WorkflowRunRow)
            .where(WorkflowRunRow.id == run_id, WorkflowRunRow.status == "scheduled")
            .values(status="skipped", finished_at=now, error=reason)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount) == 1  # type: ignore[attr-defined]

    async def _step(self, run_id: int, position: int) -> WorkflowStepRow:
        row = await self.session.get(WorkflowStepRow, (run_id, position), populate_existing=True)
        if row is None:
            raise NotFound(f"no step {position} in workflow run {run_id}")
        return row


def _run(row: WorkflowRunRow, steps: Any) -> Run:
    return Run(
        id=row.id,
        workflow_id=row.workflow_id,
        incident_id=row.incident_id,
        trigger=row.trigger,
        started_by=row.started_by,
        status=row.status,
        created_at=row.created_at,
        error=row.error,
        steps=tuple(
            RunStep(
                position=s.position,
                kind=s.kind,
                status=s.status,
                attempts=s.attempts,
                result=dict(s.result),
            )
            for s in steps
        ),
    )
