"""Message shortcuts: "Add to incident timeline" on any message. In an incident channel the
message goes to that incident at once; elsewhere a form asks which open incident."""

from __future__ import annotations

import json
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond

from bot.deps import Deps
from bot.domain import Status
from bot.errors import SlackError
from bot.slack.ids import Shortcut
from handlers.middleware import deps_of
from handlers.timeline_ops import add_message
from store.incidents import IncidentFilter

MAX_CARRIED_TEXT = 2000  # of the message's text carried in the form's private_metadata
MAX_METADATA = 3000  # characters of a view's private_metadata


async def add_to_timeline(
    ack: AsyncAck, shortcut: dict[str, Any], respond: AsyncRespond, context: AsyncBoltContext
) -> None:
    """The shortcut run on a message: add it, or open the form choosing the incident."""
    await ack()
    deps = deps_of(context)
    channel = str((shortcut.get("channel") or {}).get("id") or "")
    user = str((shortcut.get("user") or {}).get("id") or "")
    message = dict(shortcut.get("message") or {})
    message.setdefault("ts", shortcut.get("message_ts"))
    incident = await deps.incidents.get_by_channel(channel_id=channel)
    if incident is not None:
        text = await add_message(deps, incident=incident, channel=channel, message=message, by=user)
        await respond(text=text, response_type="ephemeral")
        return
    incidents, _ = await deps.incidents.list_incidents(
        filters=IncidentFilter(status=(Status.TRIGGERED, Status.ACKNOWLEDGED)), limit=100
    )
    if not incidents:
        await respond(text=deps.renderer.replies.no_open_incidents(), response_type="ephemeral")
        return
    carried: dict[str, str] = {
        "channel": channel,
        "ts": str(message.get("ts") or ""),
        "user": str(message.get("user") or message.get("bot_id") or ""),
        "text": str(message.get("text") or "")[:MAX_CARRIED_TEXT],
    }
    metadata = json.dumps(carried, ensure_ascii=False)
    while len(metadata) > MAX_METADATA:  # Slack's limit: shorten the text, keep valid JSON
        carried["text"] = carried["text"][: len(carried["text"]) // 2]
        metadata = json.dumps(carried, ensure_ascii=False)
    view = deps.renderer.timeline_modal(incidents, private_metadata=metadata)
    try:
        await deps.gateway.open_view(str(shortcut["trigger_id"]), view)
    except SlackError as exc:
        await respond(text=deps.renderer.replies.form_failed(exc.error), response_type="ephemeral")


def register(app: AsyncApp, deps: Deps) -> None:
    """Register the message shortcuts (the listeners read `deps` from the context)."""
    app.shortcut(Shortcut.ADD_TO_TIMELINE)(add_to_timeline)
