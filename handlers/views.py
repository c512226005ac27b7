"""Modal submissions: the `/incident declare` form."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.deps import Deps
from bot.domain import Severity
from bot.slack.ids import Block, Callback, Input


def _value(values: dict[str, Any], block: Block, action: Input) -> str:
    element = values.get(block, {}).get(action, {})
    if element.get("type") == "static_select":
        return str((element.get("selected_option") or {}).get("value") or "")
    return str(element.get("value") or "")


def register(app: AsyncApp, deps: Deps) -> None:
    """Register the declare modal's submission."""

    @app.view(Callback.DECLARE)
    async def declare_submitted(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        values = view.get("state", {}).get("values", {})
        title = _value(values, Block.TITLE, Input.TITLE).strip()
        severity = Severity.parse(_value(values, Block.SEVERITY, Input.SEVERITY))
        service_id = _value(values, Block.SERVICE, Input.SERVICE) or None
        description = _value(values, Block.DESCRIPTION, Input.DESCRIPTION).strip()
        errors: dict[str, str] = {}
        if not title:
            errors[Block.TITLE] = "Give the incident a title, e.g. “Checkout returns 500s”."
        elif len(title) > 200:
            errors[Block.TITLE] = "Keep the title under 200 characters."
        if severity is None:
            errors[Block.SEVERITY] = "Pick a severity from SEV1 (worst) to SEV4."
        if service_id and deps.config.service(service_id) is None:
            errors[Block.SERVICE] = "Pick one of the listed services."
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
