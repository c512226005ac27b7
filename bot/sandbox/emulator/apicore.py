"""Shared pieces of the Web API handlers: the call context, errors and argument helpers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.sandbox.emulator.state import BOT_USER_ID, Channel, Workspace


class ApiError(Exception):
    """A Web API failure answered as {"ok": false, "error": ..., **extra} with HTTP 200."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra

    def to_json(self) -> dict[str, Any]:
        """The JSON body Slack answers."""
        return {"ok": False, "error": self.error, **self.extra}


@dataclass
class CallContext:
    """One Web API call: the workspace, the merged arguments and the token's scopes."""

    ws: Workspace
    args: dict[str, Any]
    scopes: frozenset[str]

    def str_arg(self, name: str) -> str | None:
        """A string argument, or None when absent or empty."""
        value = self.args.get(name)
        if value is None or value == "":
            return None
        return str(value)

    def required(self, name: str, error: str = "invalid_arguments") -> str:
        """A string argument that must be present."""
        value = self.str_arg(name)
        if value is None:
            raise ApiError(error, response_metadata={"messages": [f"[ERROR] missing `{name}`"]})
        return value

    def flag(self, name: str) -> bool:
        """A boolean argument as Slack reads it (true/1)."""
        value = self.args.get(name)
        if isinstance(value, bool):
            return value
        return str(value).strip().lower() in ("1", "true", "yes") if value is not None else False

    def int_arg(self, name: str, default: int) -> int:
        """An integer argument, or the default when absent or malformed."""
        try:
            return int(self.args.get(name) or default)
        except (TypeError, ValueError):
            return default

    def id_list(self, name: str) -> list[str]:
        """A comma-separated list of ids (a JSON list is accepted too)."""
        value = self.args.get(name)
        if value is None:
            return []
        items = value if isinstance(value, list) else str(value).split(",")
        return [str(item).strip() for item in items if str(item).strip()]


Handler = Callable[[CallContext], dict[str, Any]]


def channel_for_bot(
    ctx: CallContext, name: str = "channel", *, by_name: bool = False, by_user: bool = False
) -> Channel:
    """The conversation named by an argument (an id; names and user ids where Slack allows).

    Raises:
        ApiError: channel_not_found when it does not exist or is private to others.
    """
    channel = ctx.ws.resolve_channel(ctx.str_arg(name), by_name=by_name, by_user=by_user)
    if channel is None or not ctx.ws.visible_to_bot(channel):
        raise ApiError("channel_not_found")
    return channel


def require_scope(ctx: CallContext, *any_of: str) -> None:
    """Raise missing_scope unless the token holds one of `any_of`."""
    if not any(scope in ctx.scopes for scope in any_of):
        raise ApiError(
            "missing_scope", needed=",".join(any_of), provided=",".join(sorted(ctx.scopes))
        )


def require_kind_scope(ctx: CallContext, channel: Channel, verb: str) -> None:
    """Raise missing_scope unless the token may `verb` (read, write, history) this kind of channel.

    Public channels take `channels:*` (`channels:manage` for write), private ones `groups:*`,
    DMs `im:*` and group DMs `mpim:*`.
    """
    if channel.is_im:
        prefix = "im"
    elif channel.is_mpim:
        prefix = "mpim"
    elif channel.is_private:
        prefix = "groups"
    else:
        prefix = "channels"
    scope = "channels:manage" if (prefix, verb) == ("channels", "write") else f"{prefix}:{verb}"
    require_scope(ctx, scope)


def require_member(channel: Channel) -> None:
    """Raise not_in_channel unless the bot is a member."""
    if BOT_USER_ID not in channel.members:
        raise ApiError("not_in_channel")


def require_not_archived(channel: Channel) -> None:
    """Raise is_archived for an archived channel."""
    if channel.is_archived:
        raise ApiError("is_archived")


def paginate(
    ctx: CallContext, items: list[Any], *, default_limit: int = 100
) -> tuple[list[Any], dict[str, str]]:
    """Slice a list with Slack's cursor/limit arguments; return the page and response_metadata."""
    limit = max(1, min(ctx.int_arg("limit", default_limit), 1000))
    try:
        start = int(ctx.str_arg("cursor") or 0)
    except ValueError:
        raise ApiError("invalid_cursor") from None
    page = items[start : start + limit]
    next_cursor = str(start + limit) if start + limit < len(items) else ""
    return page, {"next_cursor": next_cursor}
