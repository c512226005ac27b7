"""Clicks on incident messages (channel, announcement, DMs): Acknowledge, Resolve, Escalate,
Reopen, the workflow buttons, the severity select and the Roles form; App Home's Declare."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond

from bot.deps import Deps
from bot.domain import Acknowledge, Reopen, Resolve, Severity
from bot.errors import SlackError, UserError
from bot.slack.ids import WORKFLOW_ACTION, Action, action_of, bundled_pattern
from handlers import collab_ops
from handlers.incident_ops import run_command, start_workflow
from handlers.middleware import deps_of
from handlers.refs import parse_incident_ref

COMMANDS: dict[Action, type[Acknowledge] | type[Resolve] | type[Reopen]] = {
    Action.ACKNOWLEDGE: Acknowledge,
    Action.RESOLVE: Resolve,
    Action.REOPEN: Reopen,
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
        return
    # on success the outbox updates every copy of the message in place; a click on the
    # Home tab redraws the clicker's tab at once
    _acted(deps, body)


def _acted(deps: Deps, body: dict[str, Any]) -> None:
    """A change made from the Home tab: that person's tab is redrawn now."""
    if (body.get("view") or {}).get("type") == "home":
        deps.home.acted(user_id=body["user"]["id"])


async def _tell_clicker(
    deps: Deps, respond: AsyncRespond, act: Callable[[], Awaitable[str]]
) -> None:
    """Run a click's action and tell the clicker alone what came of it (a refusal's reason
    as a warning)."""
    try:
        text = await act()
    except UserError as exc:
        text = deps.renderer.replies.warning(exc.message)
    await respond(text=text, response_type="ephemeral", replace_original=False)


async def escalate_button(
    ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, context: AsyncBoltContext
) -> None:
    """Escalate clicked: page the next level now; the outcome goes to the clicker alone."""
    await ack()
    deps = deps_of(context)

    async def escalate() -> str:
        ref = str(body["actions"][0].get("value", ""))
        incident_id = parse_incident_ref(ref, replies=deps.renderer.replies)
        text = await deps.escalations.escalate_now(incident_id=incident_id, by=body["user"]["id"])
        _acted(deps, body)
        return text

    await _tell_clicker(deps, respond, escalate)


async def severity_selected(
    ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, context: AsyncBoltContext
) -> None:
    """A severity picked on the message: change it; the outcome goes to the picker alone."""
    await ack()
    deps = deps_of(context)
    replies = deps.renderer.replies
    picked = str((body["actions"][0].get("selected_option") or {}).get("value", ""))
    ref, _, value = picked.partition(":")

    async def change() -> str:
        incident_id = parse_incident_ref(ref, replies=replies)
        severity = Severity.parse(value)
        if severity is None:
            raise UserError(replies.severity_usage())
        return await collab_ops.set_severity(
            deps, incident_id=incident_id, severity=severity, by=body["user"]["id"]
        )

    await _tell_clicker(deps, respond, change)


async def workflow_button(
    ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, context: AsyncBoltContext
) -> None:
    """A workflow button clicked (and confirmed): start the run once for this click."""
    await ack()
    deps = deps_of(context)
    action = body["actions"][0]
    workflow_id = str(action["action_id"]).partition(":")[2]

    async def start() -> str:
        ref = str(action.get("value", ""))
        incident_id = parse_incident_ref(ref, replies=deps.renderer.replies)
        return await start_workflow(
            deps,
            incident_id=incident_id,
            workflow_id=workflow_id,
            by=body["user"]["id"],
            key=f"click:{body.get('trigger_id') or action.get('action_ts')}",
            trigger="button",
        )

    await _tell_clicker(deps, respond, start)


async def roles_button(
    ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, context: AsyncBoltContext
) -> None:
    """Roles clicked: open the Roles form (trigger_id lasts 3 s, so it opens first)."""
    await ack()
    deps = deps_of(context)
    replies = deps.renderer.replies
    try:
        incident_id = parse_incident_ref(str(body["actions"][0].get("value", "")), replies=replies)
        incident = await deps.incidents.get(incident_id=incident_id)
        await deps.gateway.open_view(body["trigger_id"], deps.renderer.roles_modal(incident))
    except UserError as exc:
        text = replies.warning(exc.message)
    except SlackError as exc:
        text = replies.form_failed(exc.error)
    else:
        return
    await respond(text=text, response_type="ephemeral", replace_original=False)


async def declare_button(
    ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, context: AsyncBoltContext
) -> None:
    """Declare clicked on the Home tab: open the declare form (the link comes by DM)."""
    await ack()
    deps = deps_of(context)
    services = [(s.id, s.name) for s in deps.config.services]
    try:
        await deps.gateway.open_view(
            body["trigger_id"], deps.renderer.declare_modal(services=services)
        )
    except SlackError as exc:
        await respond(text=deps.renderer.replies.form_failed(exc.error))


async def followup_done_button(
    ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, context: AsyncBoltContext
) -> None:
    """Done clicked in `/incident followups`: mark it done and show the list as it is now,
    with what the click did on top (a refusal goes to the clicker beside the list)."""
    await ack()
    deps = deps_of(context)
    raw = str(body["actions"][0].get("value", ""))
    try:
        if not raw.isdigit() or not 0 < int(raw) <= collab_ops.MAX_FOLLOWUP_ID:
            raise UserError(f"not a follow-up number: {raw[:20]}")
        note = await collab_ops.mark_followup(
            deps, followup_id=int(raw), done=True, by=body["user"]["id"]
        )
    except UserError as exc:
        warning = deps.renderer.replies.warning(exc.message)
        await respond(text=warning, response_type="ephemeral", replace_original=False)
        return
    items, total = await deps.collab.open_followups(limit=30)
    text, blocks = deps.renderer.replies.followups_listing(items, total=total, note=note)
    await respond(text=text, blocks=blocks, replace_original=True)


def register(app: AsyncApp, deps: Deps) -> None:
    """Register the incident message buttons, alone or in a bundled page (the listeners read
    `deps` from the context)."""
    for action_id in COMMANDS:
        app.action(action_id)(incident_button)
        app.action(bundled_pattern(action_id))(incident_button)
    app.action(WORKFLOW_ACTION)(workflow_button)
    app.action(Action.ESCALATE)(escalate_button)
    app.action(Action.SEVERITY)(severity_selected)
    app.action(Action.ROLES)(roles_button)
    app.action(Action.DECLARE)(declare_button)
    app.action(bundled_pattern(Action.FOLLOWUP_DONE))(followup_done_button)
    app.action(bundled_pattern(Action.ESCALATE))(escalate_button)
