"""Applies what an app posts to a response_url (or answers a slash command with)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.sandbox.emulator import rules
from bot.sandbox.emulator.state import (
    BOT_USER_ID,
    RESPONSE_URL_MAX_USES,
    RESPONSE_URL_TTL,
    ResponseUrl,
    Workspace,
)


def apply_response(
    ws: Workspace, origin: ResponseUrl, body: Mapping[str, Any], *, source: str = "response_url"
) -> tuple[int, dict[str, Any]]:
    """Apply one response message: ephemeral, in_channel, replace_original or delete_original.

    Returns the HTTP status and JSON the emulator answers.
    """
    original = None
    if origin.message_ts and origin.channel:
        original = (
            ws.find_ephemeral(origin.channel, origin.message_ts)
            if origin.ephemeral
            else ws.find_message(origin.channel, origin.message_ts)
        )
    if _truthy(body.get("delete_original")):
        if original is None:
            return 404, {"ok": False, "error": "message_not_found"}
        if origin.ephemeral:
            ws.ephemerals.remove(original)
        else:
            ws.history[origin.channel or ""].remove(original)
        return 200, {"ok": True}
    text, blocks = body.get("text"), body.get("blocks")
    if blocks is not None and not isinstance(blocks, list):
        return 400, {"ok": False, "error": "invalid_blocks_format"}
    problem = rules.validate_message(text, blocks, body.get("attachments"))
    if problem is not None:
        code, details = problem
        return 400, {"ok": False, "error": code, "errors": details}
    if _truthy(body.get("replace_original")) and original is not None:
        original["text"] = str(text or "")
        original["blocks"] = list(blocks or [])
        return 200, {"ok": True}
    if body.get("response_type") == "in_channel":
        channel = ws.channels.get(origin.channel or "")
        if channel is None:
            return 404, {"ok": False, "error": "channel_not_found"}
        if channel.is_archived:
            return 400, {"ok": False, "error": "is_archived"}
        ws.post(
            channel,
            user=BOT_USER_ID,
            text=text,
            blocks=blocks,
            attachments=body.get("attachments"),
            thread_ts=body.get("thread_ts"),
        )
        return 200, {"ok": True}
    ws.add_ephemeral(
        channel=origin.channel, user=origin.user, text=text, blocks=blocks, source=source
    )
    return 200, {"ok": True}


def use_response_url(
    ws: Workspace, token: str, body: Mapping[str, Any]
) -> tuple[int, dict[str, Any]]:
    """Handle a POST to a response_url: at most 5 posts within 30 minutes of issue."""
    origin = ws.response_urls.get(token)
    if origin is None:
        return 404, {"ok": False, "error": "no_such_url"}
    if ws.clock() - origin.issued_at > RESPONSE_URL_TTL:
        return 404, {"ok": False, "error": "expired_url"}
    if origin.uses >= RESPONSE_URL_MAX_USES:
        return 404, {"ok": False, "error": "used_url"}
    origin.uses += 1
    return apply_response(ws, origin, body)


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.lower() in ("true", "1")
    return bool(value)
