"""Web API handlers for chat.* and pins.*: posting, editing, ephemeral messages and pins."""

from __future__ import annotations

from typing import Any

from bot.sandbox.emulator import rules
from bot.sandbox.emulator.api_files import slack_file_errors
from bot.sandbox.emulator.apicore import (
    ApiError,
    CallContext,
    Handler,
    channel_for_bot,
    require_member,
    require_not_archived,
)
from bot.sandbox.emulator.state import BOT_USER_ID, Channel, public_message


def content_error(code: str, details: list[str]) -> ApiError:
    """The error Slack answers for unusable message content (invalid_blocks lists why)."""
    if not details:
        return ApiError(code)
    return ApiError(
        code, errors=details, response_metadata={"messages": [f"[ERROR] {d}" for d in details]}
    )


def check_content(text: Any, blocks: Any, attachments: Any = None) -> None:
    """Raise the Slack error for message content that may not be posted."""
    if blocks is not None and not isinstance(blocks, list):
        raise ApiError("invalid_blocks_format")
    if attachments is not None and not isinstance(attachments, list):
        raise ApiError("invalid_attachments")
    problem = rules.validate_message(text, blocks, attachments)
    if problem is not None:
        raise content_error(*problem)


def check_files(ctx: CallContext, blocks: Any, channel: Channel) -> None:
    """Raise invalid_blocks for an image's `slack_file` that cannot be shown in `channel`."""
    errors = list(slack_file_errors(ctx.ws, blocks, channel.id))
    if errors:
        raise content_error("invalid_blocks", errors)


def _may_post(ctx: CallContext, channel: Channel) -> None:
    """Public channels need membership or chat:write.public; the rest need membership."""
    if channel.is_im or channel.is_mpim or BOT_USER_ID in channel.members:
        return
    if channel.is_private or "chat:write.public" not in ctx.scopes:
        raise ApiError("not_in_channel")


def _content(ctx: CallContext) -> tuple[str | None, Any, Any]:
    text = ctx.args.get("text")
    return (
        str(text) if text is not None else None,
        ctx.args.get("blocks"),
        ctx.args.get("attachments"),
    )


def _metadata(ctx: CallContext) -> Any:
    """The `metadata` argument ({"event_type", "event_payload"}), checked like Slack."""
    metadata = ctx.args.get("metadata")
    error = rules.validate_metadata(metadata)
    if error:
        raise ApiError(error)
    return metadata


def post_message(ctx: CallContext) -> dict[str, Any]:
    """chat.postMessage: channel id, #name or user id; text and/or blocks, optional metadata;
    nothing on error."""
    if not ctx.str_arg("channel"):
        raise ApiError("channel_not_found")
    channel = channel_for_bot(ctx, by_name=True, by_user=True)
    require_not_archived(channel)
    _may_post(ctx, channel)
    text, blocks, attachments = _content(ctx)
    check_content(text, blocks, attachments)
    check_files(ctx, blocks, channel)
    metadata = _metadata(ctx)
    thread_ts = ctx.str_arg("thread_ts")
    message = ctx.ws.post(
        channel,
        user=BOT_USER_ID,
        text=text,
        blocks=blocks,
        attachments=attachments,
        thread_ts=thread_ts,
        metadata=metadata,
    )
    return {
        "ok": True,
        "channel": channel.id,
        "ts": message["ts"],
        "message": public_message(message, metadata=True),
    }


def update(ctx: CallContext) -> dict[str, Any]:
    """chat.update: only the bot's own messages; text and blocks are replaced wholesale,
    metadata only when given."""
    channel = channel_for_bot(ctx)
    message = ctx.ws.find_message(channel.id, ctx.str_arg("ts"))
    if message is None:
        raise ApiError("message_not_found")
    if channel.is_archived:
        raise ApiError("is_inactive")
    if message.get("user") != BOT_USER_ID:
        raise ApiError("cant_update_message")
    text, blocks, attachments = _content(ctx)
    check_content(text, blocks, attachments if attachments is not None else message["attachments"])
    check_files(ctx, blocks, channel)
    metadata = _metadata(ctx)
    if metadata is not None:  # absent: the message keeps the metadata it has
        message["metadata"] = metadata or None
    message["text"] = text or ""
    message["blocks"] = list(blocks) if blocks is not None else []
    if attachments is not None:
        message["attachments"] = attachments or None
    message["edited"] = {"user": BOT_USER_ID, "ts": ctx.ws.next_ts()}
    return {
        "ok": True,
        "channel": channel.id,
        "ts": message["ts"],
        "text": message["text"],
        "message": public_message(message),
    }


def delete(ctx: CallContext) -> dict[str, Any]:
    """chat.delete: only the bot's own messages."""
    channel = channel_for_bot(ctx)
    message = ctx.ws.find_message(channel.id, ctx.str_arg("ts"))
    if message is None:
        raise ApiError("message_not_found")
    if message.get("user") != BOT_USER_ID:
        raise ApiError("cant_delete_message")
    ctx.ws.history[channel.id].remove(message)
    channel.pins.discard(message["ts"])
    return {"ok": True, "channel": channel.id, "ts": message["ts"]}


def post_ephemeral(ctx: CallContext) -> dict[str, Any]:
    """chat.postEphemeral: one user, who must be in the channel; never stored as a message."""
    channel = channel_for_bot(ctx, by_name=True)
    user_id = ctx.str_arg("user")
    user = ctx.ws.users.get(user_id or "")
    if user is None or user.deleted:
        raise ApiError("user_not_found")
    require_not_archived(channel)
    _may_post(ctx, channel)
    if user.id not in channel.members:
        raise ApiError("user_not_in_channel")
    text, blocks, attachments = _content(ctx)
    check_content(text, blocks, attachments)
    check_files(ctx, blocks, channel)
    message = ctx.ws.add_ephemeral(
        channel=channel.id, user=user.id, text=text, blocks=blocks, source="chat.postEphemeral"
    )
    if ctx.str_arg("thread_ts"):
        message["thread_ts"] = ctx.str_arg("thread_ts")
    return {"ok": True, "message_ts": message["ts"]}


def get_permalink(ctx: CallContext) -> dict[str, Any]:
    """chat.getPermalink: a link to a message the bot can see (message_not_found otherwise)."""
    channel = channel_for_bot(ctx)
    ts = ctx.str_arg("message_ts")
    message = ctx.ws.find_message(channel.id, ts)
    if message is None or ts is None:
        raise ApiError("message_not_found")
    link = f"https://pulseops-sandbox.slack.com/archives/{channel.id}/p{ts.replace('.', '')}"
    if message.get("thread_ts") and message["thread_ts"] != ts:
        link += f"?thread_ts={message['thread_ts']}&cid={channel.id}"
    return {"ok": True, "channel": channel.id, "permalink": link}


def _pinned_message(ctx: CallContext) -> tuple[Channel, dict[str, Any]]:
    channel = channel_for_bot(ctx)
    ts = ctx.str_arg("timestamp")
    if ts is None:
        raise ApiError("no_item_specified")
    require_member(channel)
    message = ctx.ws.find_message(channel.id, ts)
    if message is None:
        raise ApiError("message_not_found")
    return channel, message


def pins_add(ctx: CallContext) -> dict[str, Any]:
    """pins.add: the bot must be in the channel; a message is pinned once (already_pinned)."""
    channel, message = _pinned_message(ctx)
    require_not_archived(channel)
    if message["ts"] in channel.pins:
        raise ApiError("already_pinned")
    channel.pins.add(message["ts"])
    message["pinned"] = True
    return {"ok": True}


def pins_remove(ctx: CallContext) -> dict[str, Any]:
    """pins.remove: not_pinned unless the message is pinned."""
    channel, message = _pinned_message(ctx)
    if message["ts"] not in channel.pins:
        raise ApiError("not_pinned")
    channel.pins.discard(message["ts"])
    message["pinned"] = False
    return {"ok": True}


HANDLERS: dict[str, Handler] = {
    "chat.delete": delete,
    "chat.postEphemeral": post_ephemeral,
    "chat.getPermalink": get_permalink,
    "chat.postMessage": post_message,
    "chat.update": update,
    "pins.add": pins_add,
    "pins.remove": pins_remove,
}
