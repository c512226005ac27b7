"""`/incident` slash command: parse the subcommand, call one service, answer ephemerally."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond

from bot.deps import Deps
from bot.domain import Status
from bot.domain.durations import parse_duration
from bot.domain.incident import Role
from bot.errors import SlackError, UserError
from bot.render.probes import MAX_LISTED, probe_detail, probe_list
from bot.render.report import ReportRenderer, period_label
from bot.render.slos import slo_list
from bot.services.collab import UPDATE_STATUSES
from bot.slack.ids import SlashCommand
from handlers import collab_ops
from handlers.incident_ops import VERBS, run_command, start_workflow
from handlers.middleware import deps_of
from handlers.refs import parse_incident_ref
from handlers.silences import silence_command, silences_command
from store.incidents import IncidentFilter

Sub = Callable[[Deps, dict[str, Any], str, AsyncAck, AsyncRespond], Awaitable[None]]


async def _incident_id(deps: Deps, command: dict[str, Any], arg: str) -> int:
    """The incident named in `arg`, else the one whose channel this is."""
    replies = deps.renderer.replies
    if arg:
        return parse_incident_ref(arg, replies=replies)
    incident = await deps.incidents.get_by_channel(channel_id=command.get("channel_id", ""))
    if incident is None:
        raise UserError(
            replies.not_incident_channel(
                command=command.get("command", "/incident"),
                subcommand=command.get("text", "").split(" ")[0],
            )
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
        await deps.gateway.open_view(command["trigger_id"], view)
    except SlackError as exc:
        await respond(text=deps.renderer.replies.form_failed(exc.error), response_type="ephemeral")


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


def _role(role: Role) -> Sub:
    async def sub(
        deps: Deps, command: dict[str, Any], arg: str, ack: AsyncAck, _: AsyncRespond
    ) -> None:
        user, ref = collab_ops.role_args(deps, role, arg)
        incident_id = ref or await _incident_id(deps, command, "")
        await ack(
            text=await collab_ops.set_role(
                deps, incident_id=incident_id, role=role, user=user, by=command["user_id"]
            )
        )

    return sub


async def _severity(
    deps: Deps, command: dict[str, Any], arg: str, ack: AsyncAck, _: AsyncRespond
) -> None:
    severity, ref = collab_ops.severity_args(deps, arg)
    incident_id = ref or await _incident_id(deps, command, "")
    await ack(
        text=await collab_ops.set_severity(
            deps, incident_id=incident_id, severity=severity, by=command["user_id"]
        )
    )


async def _note(
    deps: Deps, command: dict[str, Any], arg: str, ack: AsyncAck, _: AsyncRespond
) -> None:
    text = collab_ops.note_text(deps, arg)
    incident_id = await _incident_id(deps, command, "")
    await deps.changes.add_note(incident_id=incident_id, text=text, by=command["user_id"])
    incident = await deps.incidents.get(incident_id=incident_id)
    await ack(text=deps.renderer.replies.note_added(incident.number))


async def _update(
    deps: Deps, command: dict[str, Any], arg: str, ack: AsyncAck, respond: AsyncRespond
) -> None:
    if arg and not arg.split()[0].lstrip("#").lower().removeprefix("inc-").isdigit():
        raise UserError(deps.renderer.replies.update_usage())
    incident_id = await _incident_id(deps, command, arg)
    incident = await deps.incidents.get(incident_id=incident_id)
    await ack()
    # trigger_id is valid for 3 seconds: the form opens before anything else
    try:
        await deps.gateway.open_view(
            command["trigger_id"], deps.renderer.update_modal(incident, UPDATE_STATUSES)
        )
    except SlackError as exc:
        await respond(text=deps.renderer.replies.form_failed(exc.error), response_type="ephemeral")


async def _followup(
    deps: Deps, command: dict[str, Any], arg: str, ack: AsyncAck, _: AsyncRespond
) -> None:
    mark = collab_ops.followup_mark(deps, arg)
    if mark is not None:
        followup_id, done = mark
        text = await collab_ops.mark_followup(
            deps, followup_id=followup_id, done=done, by=command["user_id"]
        )
        await ack(text=text)
        return
    text, owner = collab_ops.followup_args(deps, arg)
    incident_id = await _incident_id(deps, command, "")
    await deps.collab.add_followup(
        incident_id=incident_id, text=text, owner=owner, by=command["user_id"]
    )
    incident = await deps.incidents.get(incident_id=incident_id)
    await ack(
        text=deps.renderer.replies.followup_added(number=incident.number, text=text, owner=owner)
    )


async def _followups(
    deps: Deps, command: dict[str, Any], arg: str, ack: AsyncAck, _: AsyncRespond
) -> None:
    items, total = await deps.collab.open_followups(limit=30)
    text, blocks = deps.renderer.replies.followups_listing(items, total=total)
    await ack(text=text, blocks=blocks)


async def _title(
    deps: Deps, command: dict[str, Any], arg: str, ack: AsyncAck, _: AsyncRespond
) -> None:
    title = arg.strip()
    if not title or len(title) > 200 or "\x00" in title:
        raise UserError(deps.renderer.replies.title_usage())
    incident_id = await _incident_id(deps, command, "")
    old = await deps.collab.set_title(incident_id=incident_id, title=title, by=command["user_id"])
    incident = await deps.incidents.get(incident_id=incident_id)
    await ack(text=deps.renderer.replies.title_set(number=incident.number, old=old))


async def _run(
    deps: Deps, command: dict[str, Any], arg: str, ack: AsyncAck, _: AsyncRespond
) -> None:
    """`/incident run <workflow> [number]`: start a button workflow, once per command."""
    workflow_id, _sep, ref = arg.partition(" ")
    if not workflow_id:
        offered = ", ".join(f"`{w.id}`" for w in deps.config.workflows if w.run == "button")
        raise UserError(
            "Type `/incident run <workflow>` in the incident channel "
            f"(workflows: {offered or 'none are configured'})."
        )
    incident_id = await _incident_id(deps, command, ref.strip())
    text = await start_workflow(
        deps,
        incident_id=incident_id,
        workflow_id=workflow_id.lower(),
        by=command["user_id"],
        key=f"command:{command.get('trigger_id')}",
        trigger="command",
    )
    await ack(text=text)


STATS_DEFAULT = timedelta(days=7)
STATS_LONGEST = timedelta(days=366)


def parse_stats_args(deps: Deps, arg: str) -> tuple[timedelta, str | None]:
    """`[period] [team]` in either order: a duration such as 7d, a team id or name."""
    replies = deps.renderer.replies
    period: timedelta | None = None
    team_id: str | None = None
    for word in arg.split():
        if word[:1].isdigit():  # any script's digit: refused below unless ASCII
            try:
                if not word.isascii():  # parse_duration would read `٣d` as 3d
                    raise ValueError(word)
                period = parse_duration(word.lower())
            except ValueError:
                raise UserError(replies.stats_not_a_period(word)) from None
            if not timedelta(hours=1) <= period <= STATS_LONGEST:
                raise UserError(replies.stats_period_range())
            continue
        if team_id is not None:
            raise UserError(replies.stats_one_team())
        team = deps.config.team(word.lower()) or next(
            (t for t in deps.config.teams if t.name.lower() == word.lower()), None
        )
        if team is None:
            raise UserError(
                replies.stats_unknown_team(word, team_ids=[t.id for t in deps.config.teams])
            )
        team_id = team.id
    return period or STATS_DEFAULT, team_id


async def _stats(
    deps: Deps, command: dict[str, Any], arg: str, ack: AsyncAck, _: AsyncRespond
) -> None:
    period, team_id = parse_stats_args(deps, arg)
    until = deps.clock.now()
    stats = await deps.stats.period(
        since=until - period,
        until=until,
        team_id=team_id,
        group_by="severity" if team_id else "team",
        noisiest=5,
    )
    team = deps.config.team(team_id) if team_id else None
    text = ReportRenderer(deps.renderer).stats(
        stats, label=period_label(until - period, until), scope_name=team.name if team else "all"
    )
    await ack(text=text)


async def _probes(
    deps: Deps, command: dict[str, Any], arg: str, ack: AsyncAck, _: AsyncRespond
) -> None:
    views = await deps.probes.overview()
    shown = [v.id for v in views[:MAX_LISTED]]
    since = deps.clock.now() - timedelta(days=1)
    await ack(text=probe_list(views, await deps.probes.latencies(shown, since=since)))


async def _probe(
    deps: Deps, command: dict[str, Any], arg: str, ack: AsyncAck, _: AsyncRespond
) -> None:
    """`/incident probe <id>`: one probe's state; its latency chart is uploaded to the channel."""
    known = ", ".join(f"`{p.id}`" for p in deps.config.probes[:MAX_LISTED]) or "none"
    probe = deps.config.probe(arg.lower()) if arg else None
    if probe is None:
        raise UserError(f"Type `/incident probe <id>` with one of these probes: {known}.")
    views = [v for v in await deps.probes.overview() if v.id == probe.id]
    since = deps.clock.now() - timedelta(days=1)
    latency = (await deps.probes.latencies([probe.id], since=since))[probe.id]
    await deps.probes.request_chart(probe.id, channel=command["channel_id"])
    await ack(text=probe_detail(views[0], latency))


async def _slos(
    deps: Deps, command: dict[str, Any], arg: str, ack: AsyncAck, _: AsyncRespond
) -> None:
    """`/incident slos`: each SLO over an alert source, its budget left and burn rates."""
    await ack(text=slo_list(await deps.probes.slos.overview()))


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
    "reopen": _transition("reopen"),
    "timeline": _timeline,
    "escalate": _escalate,
    "lead": _role(Role.LEAD),
    "comms": _role(Role.COMMS),
    "severity": _severity,
    "sev": _severity,
    "note": _note,
    "update": _update,
    "followup": _followup,
    "followups": _followups,
    "title": _title,
    "run": _run,
    "stats": _stats,
    "probes": _probes,
    "probe": _probe,
    "slos": _slos,
    "silence": silence_command,
    "silences": silences_command,
    "help": _help,
}


async def incident_command(
    ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond, context: AsyncBoltContext
) -> None:
    """`/incident <subcommand> [args]`: run the subcommand; problems are answered ephemerally."""
    deps = deps_of(context)
    replies = deps.renderer.replies
    name, _, arg = (command.get("text") or "").strip().partition(" ")
    sub = SUBCOMMANDS.get(name.lower() or "help")
    if sub is None:
        await ack(text=deps.renderer.help(replies.unknown_subcommand(name)))
        return
    try:
        await sub(deps, command, arg.strip(), ack, respond)
    except UserError as exc:
        await ack(
            text=deps.renderer.help(exc.message) if name == "" else replies.warning(exc.message)
        )


def register(app: AsyncApp, deps: Deps) -> None:
    """Register `/incident` (the listener reads `deps` from the context)."""
    app.command(SlashCommand.INCIDENT)(incident_command)
