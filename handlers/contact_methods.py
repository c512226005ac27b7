"""`/oncall notify`: the modal where people list, test, add and remove their own contact
methods (e-mail, SMS, call, push). Buttons and the form answer within Slack's 3 s; the test
page itself goes through the outbox, and its result arrives as a DM."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext

from bot.deps import Deps
from bot.errors import UserError
from bot.render.contacts import notify_modal
from bot.slack.ids import Block, Callback, Input, NotifyAction, notify_pattern
from handlers.middleware import deps_of

FIELD_BLOCKS: dict[str, str] = {
    "type": Block.NOTIFY_TYPE,
    "destination": Block.NOTIFY_DESTINATION,
    "after": Block.NOTIFY_AFTER,
}


async def open_modal(deps: Deps, *, user: str, trigger_id: str) -> None:
    """Open the modal (trigger_id is valid 3 s: read the methods, open at once)."""
    listed = await deps.contacts.listed(user=user)
    await deps.gateway.open_view(trigger_id, notify_modal(listed))


def _value(values: dict[str, Any], block: Block, action: Input) -> str:
    element = values.get(block, {}).get(action, {})
    if element.get("type") == "static_select":
        return str((element.get("selected_option") or {}).get("value") or "")
    return str(element.get("value") or "")


async def submitted(
    ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], context: AsyncBoltContext
) -> None:
    """The form submitted: field errors keep it open; else the modal shows the new list."""
    deps = deps_of(context)
    user = body["user"]["id"]
    values = view.get("state", {}).get("values", {})
    method_type = _value(values, Block.NOTIFY_TYPE, Input.NOTIFY_TYPE)
    destination = _value(values, Block.NOTIFY_DESTINATION, Input.NOTIFY_DESTINATION)
    after = _value(values, Block.NOTIFY_AFTER, Input.NOTIFY_AFTER)
    if not method_type and not destination.strip():
        await ack(
            response_action="errors",
            errors={str(Block.NOTIFY_DESTINATION): "Pick a type and type where to reach you."},
        )
        return
    try:
        await deps.contacts.add(
            user=user, method_type=method_type, destination=destination, after=after
        )
    except UserError as exc:
        errors = {FIELD_BLOCKS[k]: v[:150] for k, v in exc.fields.items() if k in FIELD_BLOCKS}
        await ack(
            response_action="errors", errors=errors or {str(Block.NOTIFY_DESTINATION): exc.message}
        )
        return
    listed = await deps.contacts.listed(user=user)
    note = "Added. Send yourself a test page to check it."
    await ack(response_action="update", view=notify_modal(listed, note=note))


async def _refresh(deps: Deps, body: dict[str, Any], note: str) -> None:
    view = body.get("view") or {}
    listed = await deps.contacts.listed(user=body["user"]["id"])
    await deps.gateway.update_view(
        str(view.get("id")), notify_modal(listed, note=note), hash=view.get("hash")
    )


async def test_clicked(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
    """The test page button: queued at once; the result comes as a DM."""
    await ack()
    deps = deps_of(context)
    method_id = str(body["actions"][0].get("value") or "")
    try:
        await deps.contacts.send_test(user=body["user"]["id"], method_id=method_id)
        note = "Test page on its way: the result arrives as a DM from PulseOps."
    except UserError as exc:
        note = exc.message
    await _refresh(deps, body, note)


async def remove_clicked(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
    await ack()
    deps = deps_of(context)
    method_id = str(body["actions"][0].get("value") or "")
    try:
        await deps.contacts.remove(user=body["user"]["id"], method_id=method_id)
        note = "Removed."
    except UserError as exc:
        note = exc.message
    await _refresh(deps, body, note)


def register(app: AsyncApp, deps: Deps) -> None:
    """Register the modal's submission and buttons (`/oncall notify` opens it)."""
    app.view(Callback.NOTIFY)(submitted)
    app.action(notify_pattern(NotifyAction.TEST))(test_clicked)
    app.action(notify_pattern(NotifyAction.REMOVE))(remove_clicked)
