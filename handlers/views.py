"""Modal submissions: the `/incident declare` form."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext

from bot.deps import Deps
from bot.domain import Severity
from bot.slack.ids import Block, Callback, Input
from handlers.middleware import deps_of

MAX_TITLE = 200  # the form's title input allows no more


def _value(values: dict[str, Any], block: Block, action: Input) -> str:
    element = values.get(block, {}).get(action, {})
    if element.get("type") == "static_select":
        return str((element.get("selected_option") or {}).get("value") or "")
    return str(element.get("value") or "")


async def declare_submitted(
    ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], context: AsyncBoltContext
) -> None:
    """The declare form submitted: field errors keep it open, else the incident is declared."""
    deps = deps_of(context)
    replies = deps.renderer.replies
    values = view.get("state", {}).get("values", {})
    title = _value(values, Block.TITLE, Input.TITLE).strip()
    severity = Severity.parse(_value(values, Block.SEVERITY, Input.SEVERITY))
    service_id = _value(values, Block.SERVICE, Input.SERVICE) or None
    description = _value(values, Block.DESCRIPTION, Input.DESCRIPTION).strip()
    errors: dict[str, str] = {}
    if not title:
        errors[Block.TITLE] = replies.declare_title_missing()
    elif len(title) > MAX_TITLE:
        errors[Block.TITLE] = replies.declare_title_too_long(MAX_TITLE)
    if severity is None:
        errors[Block.SEVERITY] = replies.declare_severity_missing()
    if service_id and deps.config.service(service_id) is None:
        errors[Block.SERVICE] = replies.declare_service_unknown()
    if errors:
        await ack(response_action="errors", errors=errors)
        return
    await ack()
    assert severity is not None
    await deps.incidents.declare(
        title=title,
        severity=severity,
        service_id=service_id,
        description=description,
        by=body["user"]["id"],
    )


def register(app: AsyncApp, deps: Deps) -> None:
    """Register the declare modal's submission (the listener reads `deps` from the context)."""
    app.view(Callback.DECLARE)(declare_submitted)
