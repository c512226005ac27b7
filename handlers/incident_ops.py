"""What buttons and `/incident ack|resolve` share: run a command, explain a refusal."""

from __future__ import annotations

from bot.deps import Deps
from bot.domain import Acknowledge, Command, InvalidTransition, Reopen, Resolve, Status
from bot.domain.records import Incident
from bot.errors import UserError
from bot.render.blocks import escape_mrkdwn

VERBS: dict[str, type[Acknowledge] | type[Resolve] | type[Reopen]] = {
    "ack": Acknowledge,
    "resolve": Resolve,
    "reopen": Reopen,
}


async def run_command(deps: Deps, *, incident_id: int, command: Command) -> str:
    """Apply `command`; return the confirmation to show, or raise UserError explaining why not."""
    replies = deps.renderer.replies
    if isinstance(command, Resolve) and deps.config.permissions.resolve is not None:
        incident = await deps.incidents.get(incident_id=incident_id)
        await deps.permissions.require(
            "resolve", user=command.by, team_id=incident.team_id, replies=replies
        )
    if isinstance(command, Reopen):
        incident = await deps.incidents.get(incident_id=incident_id)
        newer = await deps.incidents.open_with_dedup_key(incident)
        if newer is not None:
            raise UserError(replies.reopen_superseded(number=incident.number, newer=newer.number))
    try:
        transition = await deps.incidents.transition(incident_id=incident_id, command=command)
    except InvalidTransition as exc:
        incident = await deps.incidents.get(incident_id=incident_id)
        raise UserError(
            replies.refused(
                number=incident.number,
                title=incident.title,
                status=exc.status.value,
                by=_by(incident, exc.status),
                verb=exc.command.verb,
            )
        ) from None
    return replies.transitioned(kind=transition.event_kind, incident_id=incident_id)


def _by(incident: Incident, status: Status) -> str | None:
    """Who moved the incident into `status`, when that is known."""
    if status is Status.RESOLVED:
        return incident.resolved_by
    if status is Status.ACKNOWLEDGED:
        return incident.acknowledged_by
    return None


async def start_workflow(
    deps: Deps, *, incident_id: int, workflow_id: str, by: str, key: str, trigger: str
) -> str:
    """Start a `run: button` workflow for a click or `/incident run` (once per `key`, after
    the `run_workflow` permission check); return what to tell the person."""
    if deps.config.permissions.run_workflow is not None:
        incident = await deps.incidents.get(incident_id=incident_id)
        await deps.permissions.require(
            "run_workflow", user=by, team_id=incident.team_id, replies=deps.renderer.replies
        )
    started = await deps.workflows.run_by_hand(
        incident_id=incident_id, workflow_id=workflow_id, by=by, key=key, trigger=trigger
    )
    workflow = deps.config.workflow(workflow_id)
    label = escape_mrkdwn(workflow.title if workflow else workflow_id)
    if not started:
        return f"Workflow *{label}* was already started by this click."
    return f"Started workflow *{label}* on INC-{incident_id}; its steps appear on the timeline."
