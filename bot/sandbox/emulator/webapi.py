"""The Web API method table: argument decoding, authentication, scopes and dispatch."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from bot.sandbox.emulator import api_chat, api_conversations, api_files, api_misc, api_views
from bot.sandbox.emulator.apicore import ApiError, CallContext, Handler
from bot.sandbox.emulator.state import Workspace

HANDLERS: dict[str, Handler] = {
    **api_chat.HANDLERS,
    **api_conversations.HANDLERS,
    **api_files.HANDLERS,
    **api_misc.HANDLERS,
    **api_views.HANDLERS,
}

# Method-level scopes (any one of them suffices). Handlers refine per channel kind:
# public channels need channels:*, private ones groups:*, DMs im:*, group DMs mpim:*.
_MANAGE = ("channels:manage", "groups:write")
SCOPES: dict[str, tuple[str, ...]] = {
    "chat.delete": ("chat:write",),
    "chat.postEphemeral": ("chat:write",),
    "chat.postMessage": ("chat:write",),
    "chat.update": ("chat:write",),
    "conversations.archive": _MANAGE,
    "conversations.history": ("channels:history", "groups:history", "im:history", "mpim:history"),
    "conversations.info": ("channels:read", "groups:read", "im:read", "mpim:read"),
    "conversations.invite": _MANAGE,
    "conversations.join": ("channels:join",),
    "conversations.members": ("channels:read", "groups:read", "im:read", "mpim:read"),
    "conversations.open": ("im:write", "mpim:write"),
    "conversations.rename": _MANAGE,
    "conversations.replies": ("channels:history", "groups:history", "im:history", "mpim:history"),
    "conversations.setPurpose": _MANAGE,
    "conversations.setTopic": _MANAGE,
    "files.completeUploadExternal": ("files:write",),
    "files.getUploadURLExternal": ("files:write",),
    "files.list": ("files:read",),
    "files.upload": ("files:write",),
    "pins.add": ("pins:write",),
    "pins.remove": ("pins:write",),
    "usergroups.list": ("usergroups:read",),
    "usergroups.users.list": ("usergroups:read",),
    "usergroups.users.update": ("usergroups:write",),
    "users.info": ("users:read",),
    "users.list": ("users:read",),
    "users.lookupByEmail": ("users:read.email",),
}

# Arguments Slack accepts as JSON-encoded strings in form bodies.
JSON_ARGS = ("blocks", "attachments", "view", "metadata")


def decode_args(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Merge-ready arguments: JSON strings decoded where Slack accepts them; bad JSON kept."""
    args = dict(raw)
    for key in JSON_ARGS:
        value = args.get(key)
        if isinstance(value, str):
            try:
                args[key] = json.loads(value)
            except ValueError:
                pass
    return args


def bearer_token(authorization: str | None, args: dict[str, Any]) -> str | None:
    """The token of a call: `Authorization: Bearer …` or a `token` argument (removed)."""
    token = args.pop("token", None)
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip() or None
    return str(token) if token else None


def authenticate(token: str | None, expected: str) -> str | None:
    """Slack's auth error for a token (not_authed, invalid_auth), or None when accepted."""
    if not token:
        return "not_authed"
    if token != expected:
        return "invalid_auth"
    return None


def is_known(method: str) -> bool:
    """Whether the emulator implements `method`."""
    return method in HANDLERS


def call(
    ws: Workspace, method: str, args: dict[str, Any], scopes: frozenset[str]
) -> dict[str, Any]:
    """Run one authenticated Web API call and return Slack's JSON answer."""
    handler = HANDLERS.get(method)
    if handler is None:
        return {"ok": False, "error": "unknown_method"}
    needed = SCOPES.get(method)
    if needed and not any(scope in scopes for scope in needed):
        return {
            "ok": False,
            "error": "missing_scope",
            "needed": ",".join(needed),
            "provided": ",".join(sorted(scopes)),
        }
    try:
        return handler(CallContext(ws=ws, args=dict(args), scopes=scopes))
    except ApiError as exc:
        return exc.to_json()
