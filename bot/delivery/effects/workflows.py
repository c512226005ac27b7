"""The workflow effect: carry out a run's steps in order, each once.

A step's outcome is recorded in SQL (with its timeline entry, and for pages, severity and
escalation with the change itself, in one transaction) before the next step starts, so a
redelivered run resumes at the first unfinished step and never repeats a finished one. A
webhook that fails is retried with backoff by rescheduling the outbox row (the attempt is on
record first, so a crash between a failure and its retry neither loses nor adds a retry);
each call carries `X-PulseOps-Delivery` so a receiver can drop the repeat of a call whose
answer was lost in a crash. A failed run says so in the incident channel.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import aiohttp

from bot.clock import Clock
from bot.config import PulseOpsConfig
from bot.config.workflows import WebhookStep, WorkflowConfig, WorkflowStep
from bot.delivery.effects.base import (
    Effects,
    Handler,
    LeaseBusy,
    Postpone,
    outcome_unknown,
    post_mark,
)
from bot.delivery.kinds import OutboxKind
from bot.domain import Severity
from bot.domain.records import Incident
from bot.domain.workflows import WORKFLOW_ACTOR_PREFIX, retry_delay, signature
from bot.errors import SlackFatal, UserError
from bot.metrics import Metrics
from bot.outgoing import Refused, request
from bot.render import Renderer
from bot.render.blocks import clip, escape_mrkdwn
from bot.services.escalation import EscalationService
from bot.services.incident_changes import IncidentChanges
from bot.services.transactions import in_write
from bot.slack.gateway import SlackGateway
from bot.templating import TemplateProblem, render_json, render_message
from store.incidents import IncidentRepository, TimelineRepository
from store.outbox import OutboxItem
from store.session import Database
from store.unit_of_work import UnitOfWork
from store.workflows import Run, WorkflowRepository

log = logging.getLogger(__name__)

EXCERPT = 300  # characters of an answer kept on the timeline
MAX_BACKOFF = timedelta(hours=1)
CHANNEL_WAIT = 5.0  # seconds a message step waits for the incident channel before retrying


@dataclass(frozen=True, slots=True)
class Done:
    summary: str
    result: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Failed:
    error: str
    result: dict[str, Any] = field(default_factory=dict)
    retryable: bool = False


StepWork = Callable[[UnitOfWork], Awaitable[Done | Failed]]


class WorkflowEffects(Effects):
    """Delivers `workflow_run` rows recorded by `bot.services.workflows`."""

    def __init__(
        self,
        *,
        db: Database,
        gateway: SlackGateway,
        renderer: Renderer,
        config: PulseOpsConfig,
        clock: Clock,
        escalations: EscalationService,
        changes: IncidentChanges,
        environ: Mapping[str, str],
        on_commit: Callable[[], None],
        metrics: Metrics,
    ) -> None:
        super().__init__(db=db, gateway=gateway, renderer=renderer, config=config, clock=clock)
        self.metrics = metrics
        self.escalations = escalations
        self.changes = changes
        self.environ = environ
        self.on_commit = on_commit

    def handlers(self) -> dict[str, Handler]:
        return {OutboxKind.WORKFLOW_RUN: self._run}

    async def _run(self, item: OutboxItem) -> None:
        run_id = int(item.payload["run_id"])
        run, incident = await self._read(run_id)
        workflow = self.config.workflow(run.workflow_id)
        if run.status == "pending" and workflow is None:
            await self._fail_run(run, "the workflow is no longer in the configuration")
            run, incident = await self._read(run_id)
        if run.status == "failed":
            await self._say_failed(item, run, incident)
            return
        if run.status != "pending" or workflow is None:
            return
        for step in run.steps:
            if step.status == "done":
                continue
            config = workflow.steps[step.position]
            outcome = await self._step(item, run, workflow, config, step.position, step.attempts)
            if isinstance(outcome, Failed) and outcome.retryable:
                await self._retry(item, run, workflow, config, step.position, outcome)
            if isinstance(outcome, Failed):
                run, incident = await self._read(run_id)
                await self._say_failed(item, run, incident)
                return
        await self._write(lambda uow: self._succeeded(uow, run, workflow))

    async def _read(self, run_id: int) -> tuple[Run, Incident]:
        async with self.db.read() as session:
            run = await WorkflowRepository(session).get(run_id=run_id)
            incident = await IncidentRepository(session).get(incident_id=run.incident_id)
        return run, incident

    async def _write(self, work: Callable[[UnitOfWork], Awaitable[Any]]) -> Any:
        return await in_write(self.db, work, on_commit=self.on_commit)

    # ---- one step -----------------------------------------------------------------------

    async def _step(
        self,
        item: OutboxItem,
        run: Run,
        workflow: WorkflowConfig,
        config: WorkflowStep,
        position: int,
        attempts: int,
    ) -> Done | Failed:
        """Carry out one step and record its outcome (unless it is to be retried)."""
        by = f"{WORKFLOW_ACTOR_PREFIX}{workflow.id}"
        outcome: Done | Failed
        if config.webhook is not None:
            outcome = await self._webhook(run, workflow, config.webhook, position, attempts)
            if isinstance(outcome, Failed) and outcome.retryable:
                if attempts < config.webhook.retries:
                    return outcome
                outcome = Failed(
                    f"{outcome.error} (gave up after {attempts + 1} attempts)", outcome.result
                )
            await self._write(
                lambda uow: self._finish(uow, run, workflow, config, position, outcome)
            )
            return outcome
        if config.message is not None or config.invite is not None:
            if config.message is not None:
                outcome = await self._message(item, run, workflow, config.message, position)
            else:
                outcome = await self._invite(run, config.invite or ())
            await self._write(
                lambda uow: self._finish(uow, run, workflow, config, position, outcome)
            )
            return outcome

        async def change(uow: UnitOfWork) -> Done | Failed:
            # the change and the step's outcome commit together: a crash repeats neither
            try:
                async with uow.savepoint():
                    done = await self._change(uow, run, config, position, by)
            except UserError as exc:
                failed = Failed(exc.message)
                await self._finish(uow, run, workflow, config, position, failed)
                return failed
            await self._finish(uow, run, workflow, config, position, done)
            return done

        result: Done | Failed = await self._write(change)
        return result

    async def _change(
        self, uow: UnitOfWork, run: Run, config: WorkflowStep, position: int, by: str
    ) -> Done:
        now = self.clock.now()
        incident = await IncidentRepository(uow.session).get(incident_id=run.incident_id)
        if config.page is not None:
            paged = await self.escalations.page_targets(
                uow, incident, [config.page], cycle=-run.id, step=position, by=by, now=now
            )
            return Done(f"paged {', '.join(paged)}" if paged else "already paged")
        if config.set_severity is not None:
            severity = Severity(config.set_severity)
            changed = await self.changes.set_severity(
                uow, incident_id=incident.id, severity=severity, by=by, now=now
            )
            return Done(f"severity {'set to' if changed else 'already'} {severity.value}")
        said = await self.escalations.escalate_in(uow, incident_id=incident.id, by=by, now=now)
        return Done(said)

    async def _webhook(
        self,
        run: Run,
        workflow: WorkflowConfig,
        hook: WebhookStep,
        position: int,
        attempts: int,
    ) -> Done | Failed:
        async with self.db.read() as session:
            incident = await IncidentRepository(session).get(incident_id=run.incident_id)
        context = _context(incident, run, workflow)
        try:
            payload: Any = context if hook.body is None else render_json(hook.body, context)
        except TemplateProblem as exc:
            return Failed(str(exc))
        body = json.dumps(payload, separators=(",", ":"), default=str).encode()
        now = self.clock.now()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "PulseOps",
            "X-PulseOps-Timestamp": str(int(now.timestamp())),
            "X-PulseOps-Delivery": f"run-{run.id}-step-{position}",
            "X-PulseOps-Workflow": workflow.id,
        }
        secret = self._secret(hook)
        if secret:
            headers["X-PulseOps-Signature"] = signature(secret, body)
        attempt = {"attempt": attempts + 1}
        try:
            answer = await request(
                hook.method,
                hook.url,
                body=body,
                headers=headers,
                seconds=hook.timeout.total_seconds(),
                allowed_hosts=self.config.allowed_hosts,
            )
        except Refused as exc:
            return Failed(f"refused: {exc}", attempt)
        except TimeoutError:
            return Failed(f"timed out after {hook.timeout.total_seconds():g}s", attempt, True)
        except aiohttp.ClientError as exc:
            return Failed(f"{type(exc).__name__}: {exc}", attempt, True)
        text = answer.body.decode("utf-8", "replace")
        excerpt = clip(text, EXCERPT)
        result = {**attempt, "status": answer.status, "answer": excerpt}
        if 200 <= answer.status < 300:
            return Done(
                f"HTTP {answer.status}: {excerpt}" if excerpt else f"HTTP {answer.status}", result
            )
        retryable = answer.status >= 500 or answer.status in (408, 425, 429)
        return Failed(f"HTTP {answer.status}: {excerpt}", result, retryable)

    def _secret(self, hook: WebhookStep) -> str | None:
        if hook.secret is not None:
            return hook.secret.get_secret_value()
        if hook.secret_env:
            return self.environ.get(hook.secret_env) or None
        return None

    async def _message(
        self, item: OutboxItem, run: Run, workflow: WorkflowConfig, template: str, position: int
    ) -> Done | Failed:
        async with self.db.read() as session:
            incident = await IncidentRepository(session).get(incident_id=run.incident_id)
        try:
            text = render_message(template, _context(incident, run, workflow))
        except TemplateProblem as exc:
            return Failed(str(exc))
        channel_id = await self._channel(incident)
        try:
            channel, ts = await self.gateway.post_message(
                channel_id,
                text=clip(text, 3000),
                mark=post_mark(item, f"workflow-step-{position}"),
                look_first=outcome_unknown(item),
            )
        except SlackFatal as exc:
            return Failed(f"Slack refused the message: {exc.method}: {exc.error}")
        return Done("posted in the incident channel", {"channel": channel, "ts": ts})

    async def _channel(self, incident: Incident) -> str:
        """The incident's channel; a run that starts with the incident waits briefly for the
        outbox to create it, then tries again later (LeaseBusy)."""
        waited = 0.0
        while incident.channel_id is None and waited < CHANNEL_WAIT:
            await asyncio.sleep(0.05)
            waited += 0.05
            async with self.db.read() as session:
                incident = await IncidentRepository(session).get(incident_id=incident.id)
        if incident.channel_id is None:
            raise LeaseBusy(f"{incident.number} has no channel yet")
        return incident.channel_id

    async def _invite(self, run: Run, users: tuple[str, ...]) -> Done | Failed:
        """Invite people to the incident channel (repeatable: Slack answers
        already_in_channel, which counts as done)."""
        async with self.db.read() as session:
            incident = await IncidentRepository(session).get(incident_id=run.incident_id)
        channel_id = await self._channel(incident)
        try:
            problems = await self.gateway.invite(channel_id, users)
        except SlackFatal as exc:
            return Failed(f"Slack refused the invitation: {exc.method}: {exc.error}")
        who = ", ".join(f"<@{u}>" for u in users)
        errors = sorted(
            {str(p.get("error")) for p in problems} - {"already_in_channel", "cant_invite_self"}
        )
        if errors:
            return Failed(f"could not invite {who}: {', '.join(errors)}")
        return Done(f"invited {who}")

    # ---- recording ----------------------------------------------------------------------

    async def _finish(
        self,
        uow: UnitOfWork,
        run: Run,
        workflow: WorkflowConfig,
        config: WorkflowStep,
        position: int,
        outcome: Done | Failed,
    ) -> None:
        now = self.clock.now()
        ok = isinstance(outcome, Done)
        said = outcome.summary if isinstance(outcome, Done) else outcome.error
        count = self.metrics.workflow_attempts.labels(
            kind=config.kind, outcome="done" if ok else "failed"
        ).inc
        uow.after_commit(count)
        if not ok:
            uow.after_commit(
                self.metrics.workflow_runs.labels(workflow=workflow.id, result="failed").inc
            )
        repo = WorkflowRepository(uow.session)
        await repo.finish_step(
            run_id=run.id,
            position=position,
            ok=ok,
            result={**outcome.result, ("summary" if ok else "error"): said},
            now=now,
        )
        timeline = TimelineRepository(uow.session)
        await timeline.add(
            incident_id=run.incident_id,
            at=now,
            kind="workflow_step",
            actor=f"{WORKFLOW_ACTOR_PREFIX}{workflow.id}",
            text=f"Workflow {workflow.title}, step {position + 1} ({config.kind}): "
            f"{'done' if ok else 'failed'}: {said}",
            data={
                "workflow": workflow.id,
                "run_id": run.id,
                "step": position + 1,
                "kind": config.kind,
                "ok": ok,
                **outcome.result,
            },
        )
        if not ok:
            error = f"step {position + 1} ({config.kind}) failed: {said}"
            await repo.finish(run_id=run.id, status="failed", now=now, error=error)
            await timeline.add(
                incident_id=run.incident_id,
                at=now,
                kind="workflow_failed",
                actor=f"{WORKFLOW_ACTOR_PREFIX}{workflow.id}",
                text=f"Workflow {workflow.title} failed: {error}",
                data={"workflow": workflow.id, "run_id": run.id},
            )

    async def _retry(
        self,
        item: OutboxItem,
        run: Run,
        workflow: WorkflowConfig,
        config: WorkflowStep,
        position: int,
        failed: Failed,
    ) -> None:
        """Record the failed attempt, then have the worker deliver the row again later."""
        assert config.webhook is not None
        hook = config.webhook

        async def work(uow: UnitOfWork) -> int:
            attempts = await WorkflowRepository(uow.session).step_attempted(
                run_id=run.id, position=position, result={**failed.result, "error": failed.error}
            )
            wait = retry_delay(hook.backoff, attempts, cap=MAX_BACKOFF)
            await TimelineRepository(uow.session).add(
                incident_id=run.incident_id,
                at=self.clock.now(),
                kind="workflow_retry",
                actor=f"{WORKFLOW_ACTOR_PREFIX}{workflow.id}",
                text=f"Workflow {workflow.title}, step {position + 1} (webhook) failed: "
                f"{failed.error}; retry {attempts} of {hook.retries} in "
                f"{wait.total_seconds():g}s",
                data={
                    "workflow": workflow.id,
                    "run_id": run.id,
                    "step": position + 1,
                    "retry": attempts,
                    **failed.result,
                },
            )
            uow.after_commit(
                self.metrics.workflow_attempts.labels(kind="webhook", outcome="retry").inc
            )
            return attempts

        attempts = await self._write(work)
        wait = retry_delay(hook.backoff, attempts, cap=MAX_BACKOFF)
        raise Postpone(wait.total_seconds(), f"workflow step retry {attempts}: {failed.error}")

    async def _succeeded(self, uow: UnitOfWork, run: Run, workflow: WorkflowConfig) -> None:
        now = self.clock.now()
        await WorkflowRepository(uow.session).finish(
            run_id=run.id, status="succeeded", now=now, error=None
        )
        uow.after_commit(
            self.metrics.workflow_runs.labels(workflow=workflow.id, result="succeeded").inc
        )
        await TimelineRepository(uow.session).add(
            incident_id=run.incident_id,
            at=now,
            kind="workflow_succeeded",
            actor=f"{WORKFLOW_ACTOR_PREFIX}{workflow.id}",
            text=f"Workflow {workflow.title} succeeded ({len(workflow.steps)} steps)",
            data={"workflow": workflow.id, "run_id": run.id},
        )

    async def _fail_run(self, run: Run, error: str) -> None:
        async def work(uow: UnitOfWork) -> None:
            now = self.clock.now()
            await WorkflowRepository(uow.session).finish(
                run_id=run.id, status="failed", now=now, error=error
            )
            await TimelineRepository(uow.session).add(
                incident_id=run.incident_id,
                at=now,
                kind="workflow_failed",
                actor=f"{WORKFLOW_ACTOR_PREFIX}{run.workflow_id}",
                text=f"Workflow {run.workflow_id} failed: {error}",
                data={"workflow": run.workflow_id, "run_id": run.id},
            )

        await self._write(work)

    async def _say_failed(self, item: OutboxItem, run: Run, incident: Incident) -> None:
        """Post once in the incident channel that the run failed."""
        if item.progress.get("failure_posted"):
            return
        channel_id = await self._channel(incident)
        workflow = self.config.workflow(run.workflow_id)
        title = workflow.title if workflow else run.workflow_id
        text = (
            f":x: Workflow *{escape_mrkdwn(title)}* failed: "
            f"{escape_mrkdwn(run.error or 'unknown error')}"
        )
        channel, ts = await self.gateway.post_message(
            channel_id,
            text=clip(text, 3000),
            mark=post_mark(item, "workflow-failed"),
            look_first=outcome_unknown(item),
        )
        item.progress["failure_posted"] = {"channel": channel, "ts": ts}
        await self._save_progress(item)


def _context(incident: Incident, run: Run, workflow: WorkflowConfig) -> dict[str, Any]:
    """What templates see: the incident (as the API shows it), the workflow and the run."""
    return {
        "incident": incident.to_json(),
        "workflow": {"id": workflow.id, "label": workflow.title},
        "run": {"id": run.id, "trigger": run.trigger, "started_by": run.started_by},
    }
