"""`/incident` slash command: parse the subcommand, call one service, answer ephemerally."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from bot.deps import Deps
from bot.domain import Status
from bot.errors import SlackError, UserError
from bot.ids import SlashCommand
from handlers.incident_ops import VERBS, run_command
from handlers.refs import parse_incident_ref
from store.incidents import IncidentFilter

Sub = Callable[[Deps, dict[str, Any], str, AsyncAck, AsyncRespond], Awaitable[None]]


async def _incident_id(deps: Deps, command: dict[str, Any], arg: str) -> int:
    """The incident named in `arg`, else the one whose channel this is."""
    if arg:
        return parse_incident_ref(arg)
    incident = await deps.incidents.get_by_channel(channel_id=command.get("channel_id", ""))
    if incident is None:
        raise UserError(
            "This is not an incident channel: give the incident number, e.g. "
            f"`{command.get('command', '/incident')} {command.get('text', '').split(' ')[0]} 42`."
        )
    return incident.id


async def _declare(
    deps: Deps, command: dict[str, Any], arg: str, ack: AsyncAck, respond: AsyncRespond
) -> None:
    await ack()
    services = [(s.id, s.name) for s in deps.config.services]
    view = deps.renderer.declare_modal(services=services, channel_id=command.get("channel_id"))
    # trigger_id is valid for 3 seconds: the modal opens before any other work
    try:
        await deps.gateway.call("views.open", trigger_id=command["trigger_id"], view=view)
    except SlackError as exc:
        await respond(
            text=f":warning: Could not open the form (Slack said `{exc.error}`). "
            "Run `/incident declare` again.",
            response_type="ephemeral",
        )


async def _list(
    deps: Deps, command: dict[str, Any], arg: str, ack: AsyncAck, _: AsyncRespond
) -> None:
    incidents, total = await deps.incidents.list_incidents(
        filters=IncidentFilter(status=(Status.TRIGGERED, Status.ACKNOWLEDGED)), limit=20
    )
    await ack(text=deps.renderer.incident_list(incidents, total=total))


async def _status(
    deps: Deps, command: dict[str, Any], arg: str, ack: AsyncAck, _: AsyncRespond
) -> None:
    incident = await deps.incidents.get(incident_id=await _incident_id(deps, command, arg))
    await ack(text=deps.renderer.status(incident))


async def _timeline(
    deps: Deps, command: dict[str, Any], arg: str, ack: AsyncAck, _: AsyncRespond
) -> None:
    incident, events, _alerts = await deps.incidents.details(
        incident_id=await _incident_id(deps, command, arg)
    )
    await ack(text=deps.renderer.timeline(incident, events))


def _transition(verb: str) -> Sub:
    async def sub(
        deps: Deps, command: dict[str, Any], arg: str, ack: AsyncAck, respond: AsyncRespond
    ) -> None:
        incident_id = await _incident_id(deps, command, arg)
        text = await run_command(
            deps, incident_id=incident_id, command=VERBS[verb](by=command["user_id"])
        )
        await ack(text=text)

    return sub


async def _escalate(
    deps: Deps, command: dict[str, Any], arg: str, ack: AsyncAck, _: AsyncRespond
) -> None:
    incident_id = await _incident_id(deps, command, arg)
    await ack(
        text=await deps.escalations.escalate_now(incident_id=incident_id, by=command["user_id"])
    )


async def _help(
    deps: Deps, command: dict[str, Any], arg: str, ack: AsyncAck, _: AsyncRespond
) -> None:
    await ack(text=deps.renderer.help())


SUBCOMMANDS: dict[str, Sub] = {
    "declare": _declare,
    "new": _declare,
    "list": _list,
    "ls": _list,
    "status": _status,
    "show": _status,
    "ack": _transition("ack"),
    "acknowledge": _transition("ack"),
    "resolve": _transition("resolve"),
    "timeline": _timeline,
    "escalate": _escalate,
    "help": _help,
}


def register(app: AsyncApp, deps: Deps) -> None:
    """Register `/incident`."""

    @app.command(SlashCommand.INCIDENT)
    async def incident_command(
        ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond
    ) -> None:
        name, _, arg = (command.get("text") or "").strip().partition(" ")
        sub = SUBCOMMANDS.get(name.lower() or "help")
        if sub is None:
            await ack(text=deps.renderer.help(f"Unknown subcommand `{name[:40]}`."))
            return
        try:
            await sub(deps, command, arg.strip(), ack, respond)
        except UserError as exc:
            await ack(
                text=deps.renderer.help(exc.message) if name == "" else f":warning: {exc.message}"
            )
