"""Events API events besides App Home: a 📌 on a message in an incident channel adds it to
the incident's timeline."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltContext

from bot.deps import Deps
from bot.errors import SlackError
from bot.slack.ids import PIN_REACTIONS
from handlers.listener_runs import on_event
from handlers.middleware import deps_of
from handlers.timeline_ops import add_message, tell

log = logging.getLogger("pulseops.slack")


async def reaction_added(event: dict[str, Any], context: AsyncBoltContext) -> None:
    """reaction_added: a 📌 on a message of an incident channel puts it on the timeline, and
    the person who pinned it is told so (to them alone)."""
    item = event.get("item") or {}
    channel, ts, user = item.get("channel"), item.get("ts"), event.get("user")
    if event.get("reaction") not in PIN_REACTIONS or item.get("type") != "message":
        return
    if not (isinstance(channel, str) and isinstance(ts, str) and isinstance(user, str)):
        return
    deps = deps_of(context)
    incident = await deps.incidents.get_by_channel(channel_id=channel)
    if incident is None:
        return  # a 📌 anywhere else means nothing to PulseOps
    try:
        message = await deps.gateway.fetch_message(channel, ts)
    except SlackError as exc:
        log.warning("cannot read a pinned message", extra={"channel": channel, "error": exc.error})
        return
    if message is None:
        return
    text = await add_message(deps, incident=incident, channel=channel, message=message, by=user)
    await tell(deps, user=user, channel=channel, text=text)


def register(app: AsyncApp, deps: Deps) -> None:
    """Register reaction_added (the listener reads `deps` from the context)."""
    on_event(app, "reaction_added", reaction_added)
