"""What buttons and `/incident ack|resolve` share: run a command, explain a refusal."""

from __future__ import annotations

from bot.deps import Deps
from bot.domain import Acknowledge, Command, InvalidTransition, Resolve, Status
from bot.errors import UserError
from bot.render import escape_mrkdwn

VERBS: dict[str, type[Acknowledge] | type[Resolve]] = {"ack": Acknowledge, "resolve": Resolve}


async def run_command(deps: Deps, *, incident_id: int, command: Command) -> str:
    """Apply `command`; return the confirmation to show, or raise UserError explaining why not."""
    try:
        transition = await deps.incidents.transition(incident_id=incident_id, command=command)
    except InvalidTransition as exc:
        incident = await deps.incidents.get(incident_id=incident_id)
        raise UserError(_refusal(incident.number, incident.title, exc, incident)) from None
    return f"{_past(transition.event_kind)} INC-{incident_id}."


def _past(kind: str) -> str:
    return {"acknowledged": "You acknowledged", "resolved": "You resolved"}.get(kind, kind)


def _refusal(number: str, title: str, exc: InvalidTransition, incident: object) -> str:
    status = exc.status
    who = ""
    if status is Status.RESOLVED:
        by = getattr(incident, "resolved_by", None)
    elif status is Status.ACKNOWLEDGED:
        by = getattr(incident, "acknowledged_by", None)
    else:
        by = None
    if by:
        who = f" by <@{by}>" if by[:1] in "UW" and by.isalnum() else f" by {escape_mrkdwn(by)}"
    return (
        f"{number} ({escape_mrkdwn(title[:80])}) is already {status.value}{who}, "
        f"so it cannot be {exc.command.verb}d. Nothing changed."
    )
