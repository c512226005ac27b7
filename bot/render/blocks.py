"""Block Kit building blocks and Slack's limits, enforced in one place (truncate, never fail)."""

from __future__ import annotations

from typing import Any

MAX_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_SECTION_TEXT = 3000
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_HEADER_TEXT = 150
MAX_BUTTON_TEXT = 75
MAX_CONTEXT_TEXT = 2000
MAX_TEXT = 3000


def escape_mrkdwn(text: str) -> str:
    """Escape the three characters Slack treats as control sequences in mrkdwn."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    """Cut `text` to `limit` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    note = f"… ({len(text) - limit} more characters)"
    return text[: max(limit - len(note), 0)] + note


def plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}


def option(text: str, value: str) -> dict[str, Any]:
    return {"text": plain(clip(text, 75)), "value": value[:150]}


def section(text: str, *, block_id: str) -> dict[str, Any]:
    return {
        "type": "section",
        "block_id": block_id,
        "text": {"type": "mrkdwn", "text": clip(text, MAX_SECTION_TEXT)},
    }


def button(
    text: str,
    action_id: str,
    value: str,
    *,
    style: str | None = None,
    confirm: dict[str, Any] | None = None,
) -> dict[str, Any]:
    b: dict[str, Any] = {
        "type": "button",
        "action_id": action_id,
        "text": plain(clip(text, MAX_BUTTON_TEXT)),
        "value": value[:2000],
    }
    if style:
        b["style"] = style
    if confirm:
        b["confirm"] = confirm
    return b


def confirm_dialog(*, title: str, text: str, confirm: str, deny: str = "Cancel") -> dict[str, Any]:
    """A confirmation dialog object (Slack's limits: title 100, text 300, buttons 30)."""
    return {
        "title": plain(clip(title, 100)),
        "text": {"type": "mrkdwn", "text": clip(text, 300)},
        "confirm": plain(clip(confirm, 30)),
        "deny": plain(clip(deny, 30)),
    }


def fit_blocks(blocks: list[dict[str, Any]], *, limit: int = MAX_BLOCKS) -> list[dict[str, Any]]:
    """Keep at most `limit` blocks, replacing the overflow with one "… and N more" context."""
    if len(blocks) <= limit:
        return blocks
    kept = blocks[: limit - 1]
    kept.append(
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": f"… and {len(blocks) - len(kept)} more"}],
        }
    )
    return kept
