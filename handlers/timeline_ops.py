"""What the 📌 reaction and the "Add to incident timeline" shortcut share: a Slack message
(author, text, link) onto an incident's timeline."""

from __future__ import annotations

import logging
from typing import Any

from bot.deps import Deps
from bot.domain.records import Incident
from bot.errors import SlackError

log = logging.getLogger("pulseops.slack")


async def add_message(
    deps: Deps, *, incident: Incident, channel: str, message: dict[str, Any], by: str
) -> str:
    """Put `message` of `channel` on `incident`'s timeline; the confirmation to show `by`."""
    ts = str(message.get("ts") or "")
    author = message.get("user") or message.get("bot_id")
    added = await deps.collab.add_message(
        incident_id=incident.id,
        channel=channel,
        ts=ts,
        author=str(author) if author else None,
        text=str(message.get("text") or ""),
        link=await deps.gateway.permalink(channel, ts),
        by=by,
    )
    return str(deps.renderer.replies.message_added(number=incident.number, added=added))


async def tell(deps: Deps, *, user: str, channel: str | None, text: str) -> None:
    """Tell `user` alone: ephemerally in `channel`, or by DM when they are not in it."""
    if channel:
        try:
            await deps.gateway.post_ephemeral(channel, user, text=text)
            return
        except SlackError:
            pass  # e.g. user_not_in_channel: someone reacting in a channel they never joined
    try:
        await deps.gateway.post_message(await deps.gateway.open_dm(user), text=text)
    except SlackError as exc:
        log.info("could not tell a person", extra={"user": user, "error": exc.error})
