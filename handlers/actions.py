"""Button clicks on incident messages (channel, announcement, DMs): Acknowledge and Resolve."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from bot.deps import Deps
from bot.domain import Acknowledge, Resolve
from bot.errors import UserError
from bot.slack.ids import Action, action_of, bundled_pattern
from handlers.incident_ops import run_command
from handlers.refs import parse_incident_ref

_COMMANDS: dict[Action, type[Acknowledge] | type[Resolve]] = {
    Action.ACKNOWLEDGE: Acknowledge,
    Action.RESOLVE: Resolve,
}


def register(app: AsyncApp, deps: Deps) -> None:
    """Register the incident message buttons."""

    async def on_click(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        action = body["actions"][0]
        command = _COMMANDS[action_of(action["action_id"])](by=body["user"]["id"])
        try:
            incident_id = parse_incident_ref(str(action.get("value", "")))
            await run_command(deps, incident_id=incident_id, command=command)
        except UserError as exc:
            await respond(
                text=f":warning: {exc.message}", response_type="ephemeral", replace_original=False
            )
        # on success the outbox updates every copy of the message in place

    for action_id in _COMMANDS:
        app.action(action_id)(on_click)
        app.action(bundled_pattern(action_id))(on_click)

    @app.action(Action.ESCALATE)
    @app.action(bundled_pattern(Action.ESCALATE))
    async def on_escalate(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        try:
            incident_id = parse_incident_ref(str(body["actions"][0].get("value", "")))
            text = await deps.escalations.escalate_now(
                incident_id=incident_id, by=body["user"]["id"]
            )
        except UserError as exc:
            text = f":warning: {exc.message}"
        await respond(text=text, response_type="ephemeral", replace_original=False)
