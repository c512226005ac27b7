"""Button clicks on incident messages (channel, announcement, DMs): Acknowledge, Resolve,
Escalate and the workflow buttons."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond

from bot.deps import Deps
from bot.domain import Acknowledge, Resolve
from bot.errors import UserError
from bot.slack.ids import WORKFLOW_ACTION, Action, action_of, bundled_pattern
from handlers.incident_ops import run_command, start_workflow
from handlers.middleware import deps_of
from handlers.refs import parse_incident_ref

COMMANDS: dict[Action, type[Acknowledge] | type[Resolve]] = {
    Action.ACKNOWLEDGE: Acknowledge,
    Action.RESOLVE: Resolve,
}


async def incident_button(
    ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, context: AsyncBoltContext
) -> None:
    """Acknowledge or Resolve clicked: apply it; a refusal is answered to the clicker alone."""
    await ack()
    deps = deps_of(context)
    action = body["actions"][0]
    command = COMMANDS[action_of(action["action_id"])](by=body["user"]["id"])
    try:
        incident_id = parse_incident_ref(
            str(action.get("value", "")), replies=deps.renderer.replies
        )
        await run_command(deps, incident_id=incident_id, command=command)
    except UserError as exc:
        await respond(
            text=deps.renderer.replies.warning(exc.message),
            response_type="ephemeral",
            replace_original=False,
        )
    # on success the outbox updates every copy of the message in place


async def escalate_button(
    ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, context: AsyncBoltContext
) -> None:
    """Escalate clicked: page the next level now; the outcome goes to the clicker alone."""
    await ack()
    deps = deps_of(context)
    replies = deps.renderer.replies
    try:
        incident_id = parse_incident_ref(str(body["actions"][0].get("value", "")), replies=replies)
        text = await deps.escalations.escalate_now(incident_id=incident_id, by=body["user"]["id"])
    except UserError as exc:
        text = replies.warning(exc.message)
    await respond(text=text, response_type="ephemeral", replace_original=False)


async def workflow_button(
    ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, context: AsyncBoltContext
) -> None:
    """A workflow button clicked (and confirmed): start the run once for this click."""
    await ack()
    deps = deps_of(context)
    replies = deps.renderer.replies
    action = body["actions"][0]
    workflow_id = str(action["action_id"]).partition(":")[2]
    try:
        incident_id = parse_incident_ref(str(action.get("value", "")), replies=replies)
        text = await start_workflow(
            deps,
            incident_id=incident_id,
            workflow_id=workflow_id,
            by=body["user"]["id"],
            key=f"click:{body.get('trigger_id') or action.get('action_ts')}",
            trigger="button",
        )
    except UserError as exc:
        text = replies.warning(exc.message)
    await respond(text=text, response_type="ephemeral", replace_original=False)


def register(app: AsyncApp, deps: Deps) -> None:
    """Register the incident message buttons, alone or in a bundled page (the listeners read
    `deps` from the context)."""
    for action_id in COMMANDS:
        app.action(action_id)(incident_button)
        app.action(bundled_pattern(action_id))(incident_button)
    app.action(WORKFLOW_ACTION)(workflow_button)
    app.action(Action.ESCALATE)(escalate_button)
    app.action(bundled_pattern(Action.ESCALATE))(escalate_button)
