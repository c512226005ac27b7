"""Web API handlers for conversations.*: create, invite, topic, rename, archive, lookups,
threads and DMs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.sandbox.emulator import rules
from bot.sandbox.emulator.apicore import (
    ApiError,
    CallContext,
    Handler,
    channel_for_bot,
    paginate,
    require_kind_scope,
    require_member,
    require_not_archived,
    require_scope,
)
from bot.sandbox.emulator.state import BOT_USER_ID, Channel, public_message

INVITE_MAX_USERS = 1000


def _require_channel_type(channel: Channel) -> None:
    if channel.is_im or channel.is_mpim:
        raise ApiError("method_not_supported_for_channel_type")


def create(ctx: CallContext) -> dict[str, Any]:
    """conversations.create: validate the name like Slack, make the bot the only member."""
    name = ctx.str_arg("name")
    is_private = ctx.flag("is_private")
    require_scope(ctx, "groups:write" if is_private else "channels:manage")
    error = rules.validate_channel_name(name)
    if error:
        raise ApiError(error)
    assert name is not None
    if ctx.ws.channel_by_name(name) is not None:
        raise ApiError("name_taken")
    channel = ctx.ws.create_channel(name, is_private=is_private, creator=BOT_USER_ID)
    return {"ok": True, "channel": channel.to_json()}


def invite(ctx: CallContext) -> dict[str, Any]:
    """conversations.invite: all-or-nothing, or with force=true invite the valid users."""
    channel = channel_for_bot(ctx)
    _require_channel_type(channel)
    require_kind_scope(ctx, channel, "write")
    require_not_archived(channel)
    require_member(channel)
    users = ctx.id_list("users")
    if not users:
        raise ApiError("no_user")
    if len(users) > INVITE_MAX_USERS:
        raise ApiError("too_many_users")
    errors: list[dict[str, Any]] = []
    valid: list[str] = []
    for user_id in users:
        user = ctx.ws.users.get(user_id)
        if user_id == BOT_USER_ID:
            error = "cant_invite_self"
        elif user is None or user.deleted:
            error = "user_not_found"
        elif user_id in channel.members or user_id in valid:
            error = "already_in_channel"
        else:
            valid.append(user_id)
            continue
        errors.append({"user": user_id, "ok": False, "error": error})
    if errors and (not ctx.flag("force") or not valid):
        raise ApiError(errors[0]["error"], errors=errors)
    channel.members.update(valid)
    body: dict[str, Any] = {"ok": True, "channel": channel.to_json()}
    if errors:
        body["errors"] = errors
    return body


def _set_text(ctx: CallContext, key: str) -> dict[str, Any]:
    channel = channel_for_bot(ctx)
    _require_channel_type(channel)
    require_kind_scope(ctx, channel, "write")
    require_not_archived(channel)
    require_member(channel)
    value = ctx.str_arg(key) or ""
    limit = rules.TOPIC_MAX if key == "topic" else rules.PURPOSE_MAX
    if len(value) > limit:
        raise ApiError("too_long")
    now = int(ctx.ws.clock())
    if key == "topic":
        channel.topic, channel.topic_creator, channel.topic_last_set = value, BOT_USER_ID, now
    else:
        channel.purpose, channel.purpose_creator, channel.purpose_last_set = value, BOT_USER_ID, now
    return {"ok": True, "channel": channel.to_json(), key: value}


def set_topic(ctx: CallContext) -> dict[str, Any]:
    """conversations.setTopic: at most 250 characters (too_long)."""
    return _set_text(ctx, "topic")


def set_purpose(ctx: CallContext) -> dict[str, Any]:
    """conversations.setPurpose: at most 250 characters (too_long)."""
    return _set_text(ctx, "purpose")


def archive(ctx: CallContext) -> dict[str, Any]:
    """conversations.archive: the channel keeps its name (it stays taken)."""
    channel = channel_for_bot(ctx)
    _require_channel_type(channel)
    require_kind_scope(ctx, channel, "write")
    if channel.is_archived:
        raise ApiError("already_archived")
    require_member(channel)
    channel.is_archived = True
    return {"ok": True}


def rename(ctx: CallContext) -> dict[str, Any]:
    """conversations.rename: a valid name no other channel has (archived ones keep theirs);
    only a member (the bot created incident channels) may rename; not once archived."""
    channel = channel_for_bot(ctx)
    _require_channel_type(channel)
    require_kind_scope(ctx, channel, "write")
    require_not_archived(channel)
    require_member(channel)
    name = ctx.str_arg("name")
    error = rules.validate_channel_name(name)
    if error:
        raise ApiError(error)
    assert name is not None
    other = ctx.ws.channel_by_name(name)
    if other is not None and other.id != channel.id:
        raise ApiError("name_taken")
    channel.name = name
    return {"ok": True, "channel": channel.to_json()}


def replies(ctx: CallContext) -> dict[str, Any]:
    """conversations.replies: a thread's parent and its replies, oldest first; `latest` /
    `oldest` / `inclusive` bound them like history, metadata only with include_all_metadata
    (thread_not_found for an unknown ts)."""
    channel = channel_for_bot(ctx)
    require_kind_scope(ctx, channel, "history")
    if not channel.is_im and not channel.is_mpim:
        require_member(channel)
    ts = ctx.str_arg("ts")
    parent = ctx.ws.find_message(channel.id, ts)
    if parent is None:
        raise ApiError("thread_not_found")
    root = parent.get("thread_ts") or parent["ts"]
    thread = [
        m
        for m in ctx.ws.history.get(channel.id, [])
        if m["ts"] == root or m.get("thread_ts") == root
    ]
    latest, oldest = _ts_arg(ctx, "latest"), _ts_arg(ctx, "oldest")
    inclusive = ctx.flag("inclusive")

    def within(when: float) -> bool:
        if latest is not None and not (when < latest or (inclusive and when == latest)):
            return False
        return oldest is None or when > oldest or (inclusive and when == oldest)

    page, meta = paginate(ctx, [m for m in thread if within(float(m["ts"]))])
    with_metadata = ctx.flag("include_all_metadata")
    return {
        "ok": True,
        "messages": [public_message(m, metadata=with_metadata) for m in page],
        "has_more": bool(meta["next_cursor"]),
        "response_metadata": meta,
    }


def info(ctx: CallContext) -> dict[str, Any]:
    """conversations.info: private channels are visible only to members."""
    channel = channel_for_bot(ctx)
    require_kind_scope(ctx, channel, "read")
    return {"ok": True, "channel": channel.to_json(num_members=ctx.flag("include_num_members"))}


def join(ctx: CallContext) -> dict[str, Any]:
    """conversations.join: public channels only."""
    channel = channel_for_bot(ctx)
    if channel.is_private or channel.is_im or channel.is_mpim:
        raise ApiError("method_not_supported_for_channel_type")
    require_not_archived(channel)
    if BOT_USER_ID in channel.members:
        return {
            "ok": True,
            "channel": channel.to_json(),
            "warning": "already_in_channel",
            "response_metadata": {"warnings": ["already_in_channel"]},
        }
    channel.members.add(BOT_USER_ID)
    return {"ok": True, "channel": channel.to_json()}


def members(ctx: CallContext) -> dict[str, Any]:
    """conversations.members: member ids, paginated."""
    channel = channel_for_bot(ctx)
    require_kind_scope(ctx, channel, "read")
    page, meta = paginate(ctx, sorted(channel.members))
    return {"ok": True, "members": page, "response_metadata": meta}


_TYPE_TESTS: dict[str, Callable[[Channel], bool]] = {
    "public_channel": lambda c: not c.is_private and not c.is_im and not c.is_mpim,
    "private_channel": lambda c: c.is_private and not c.is_mpim,
    "im": lambda c: c.is_im,
    "mpim": lambda c: c.is_mpim,
}


def list_(ctx: CallContext) -> dict[str, Any]:
    """conversations.list: `types` and `exclude_archived` as Slack reads them."""
    types = ctx.id_list("types") or ["public_channel"]
    unknown = [t for t in types if t not in _TYPE_TESTS]
    if unknown:
        raise ApiError("invalid_types")
    scope_of = {
        "public_channel": "channels:read",
        "private_channel": "groups:read",
        "im": "im:read",
        "mpim": "mpim:read",
    }
    for kind in types:
        require_scope(ctx, scope_of[kind])
    found = [
        c
        for c in ctx.ws.channels.values()
        if any(_TYPE_TESTS[t](c) for t in types)
        and ctx.ws.visible_to_bot(c)
        and not (ctx.flag("exclude_archived") and c.is_archived)
    ]
    page, meta = paginate(ctx, found)
    return {"ok": True, "channels": [c.to_json() for c in page], "response_metadata": meta}


def open_(ctx: CallContext) -> dict[str, Any]:
    """conversations.open: one user gives the bot's DM ("D…"), several a group DM."""
    ref = ctx.str_arg("channel")
    if ref:
        channel = channel_for_bot(ctx)
        return {"ok": True, "channel": {"id": channel.id}, "already_open": True}
    users = ctx.id_list("users")
    if not users:
        raise ApiError("users_list_not_supplied")
    if len(users) > 8:
        raise ApiError("too_many_users")
    require_scope(ctx, "im:write" if len(users) == 1 else "mpim:write")
    for user_id in users:
        user = ctx.ws.users.get(user_id)
        if user is None or user.deleted or user_id == BOT_USER_ID:
            raise ApiError("user_not_found")
    existed = {c.id for c in ctx.ws.channels.values()}
    channel = ctx.ws.open_dm(users[0]) if len(users) == 1 else ctx.ws.open_mpim(users)
    body: dict[str, Any] = {"ok": True, "channel": {"id": channel.id}}
    if channel.id in existed:
        body.update(no_op=True, already_open=True)
    if ctx.flag("return_im"):
        body["channel"] = channel.to_json()
    return body


def _ts_arg(ctx: CallContext, name: str) -> float | None:
    value = ctx.str_arg(name)
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        raise ApiError("invalid_ts_" + name) from None


def history(ctx: CallContext) -> dict[str, Any]:
    """conversations.history: top-level messages, newest first, in pages of `limit`.

    `oldest` / `latest` bound the range, excluding the bounds unless `inclusive`; message
    metadata is included only with `include_all_metadata`. The bot must be a member of a
    channel to read it (not_in_channel), even a public one.
    """
    channel = channel_for_bot(ctx)
    require_kind_scope(ctx, channel, "history")
    if not channel.is_im and not channel.is_mpim:
        require_member(channel)
    messages = [
        m for m in ctx.ws.history.get(channel.id, []) if m.get("thread_ts") in (None, m["ts"])
    ]
    latest, oldest = _ts_arg(ctx, "latest"), _ts_arg(ctx, "oldest")
    inclusive = ctx.flag("inclusive")

    def within(ts: float) -> bool:
        if latest is not None and not (ts < latest or (inclusive and ts == latest)):
            return False
        return oldest is None or ts > oldest or (inclusive and ts == oldest)

    messages = [m for m in messages if within(float(m["ts"]))]
    ordered = list(reversed(messages))
    page, meta = paginate(ctx, ordered)
    with_metadata = ctx.flag("include_all_metadata")
    return {
        "ok": True,
        "messages": [public_message(m, metadata=with_metadata) for m in page],
        "has_more": bool(meta["next_cursor"]),
        "pin_count": len(channel.pins),
        "response_metadata": meta,
    }


HANDLERS: dict[str, Handler] = {
    "conversations.archive": archive,
    "conversations.rename": rename,
    "conversations.replies": replies,
    "conversations.create": create,
    "conversations.history": history,
    "conversations.info": info,
    "conversations.invite": invite,
    "conversations.join": join,
    "conversations.list": list_,
    "conversations.members": members,
    "conversations.open": open_,
    "conversations.setPurpose": set_purpose,
    "conversations.setTopic": set_topic,
}
