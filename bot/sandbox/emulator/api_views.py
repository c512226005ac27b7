"""Web API handlers for views.*: modals opened with triggers, updates, pushes and App Home."""

from __future__ import annotations

import copy
import json
import secrets
from collections.abc import Mapping
from typing import Any

from bot.sandbox.emulator import rules
from bot.sandbox.emulator.apicore import ApiError, CallContext, Handler
from bot.sandbox.emulator.state import APP_ID, BOT_ID, TEAM_ID, Trigger, Workspace

VIEW_MAX_BYTES = 250_000
MODAL_STACK_MAX = 3
_EMULATOR_KEYS = ("user", "open")


def invalid_arguments(*messages: str) -> ApiError:
    """Slack's answer to a view it cannot accept: invalid_arguments with the reasons."""
    return ApiError(
        "invalid_arguments", response_metadata={"messages": [f"[ERROR] {m}" for m in messages]}
    )


def public_view(view: Mapping[str, Any]) -> dict[str, Any]:
    """A stored view as the Web API and payloads show it (no emulator-only keys)."""
    return {k: copy.deepcopy(v) for k, v in view.items() if k not in _EMULATOR_KEYS}


def new_hash(ws: Workspace) -> str:
    """A fresh view hash in Slack's shape ("1700000000.a1b2c3d4")."""
    return f"{int(ws.clock())}.{secrets.token_hex(4)}"


def _checked_view(
    ctx: CallContext, allowed: frozenset[str], *, editing: str | None = None
) -> dict[str, Any]:
    view = ctx.args.get("view")
    if not isinstance(view, dict):
        raise invalid_arguments("`view` must be a JSON object")
    if len(json.dumps(view)) > VIEW_MAX_BYTES:
        raise ApiError("view_too_large")
    errors = rules.validate_view(view, allowed_types=allowed)
    if errors:
        raise invalid_arguments(*errors)
    external_id = view.get("external_id")
    if external_id:
        for other in ctx.ws.views.values():
            if other.get("external_id") == external_id and other["id"] != editing:
                raise ApiError("duplicate_external_id")
    return view


def store_view(
    ws: Workspace,
    source: Mapping[str, Any],
    *,
    user: str,
    view_id: str | None = None,
    root_view_id: str | None = None,
    previous_view_id: str | None = None,
    state: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Store a view as Slack keeps it (ids, hash, state) and return it."""
    vid = view_id or ws.new_id("V")
    view: dict[str, Any] = {
        "private_metadata": "",
        "callback_id": "",
        "external_id": "",
        "submit": None,
        "close": None,
        "clear_on_close": False,
        "notify_on_close": False,
        **copy.deepcopy(dict(source)),
    }
    view.update(
        id=vid,
        team_id=TEAM_ID,
        app_id=APP_ID,
        bot_id=BOT_ID,
        hash=new_hash(ws),
        state=copy.deepcopy(dict(state)) if state else {"values": {}},
        root_view_id=root_view_id or vid,
        previous_view_id=previous_view_id,
        user=user,
        open=True,
    )
    ws.views[vid] = view
    return view


def close_stack(ws: Workspace, user: str) -> None:
    """Close every modal the user has open."""
    for view_id in ws.modal_stacks.pop(user, []):
        if view_id in ws.views:
            ws.views[view_id]["open"] = False


def _trigger(ctx: CallContext) -> Trigger:
    outcome = ctx.ws.exchange_trigger(ctx.str_arg("trigger_id"))
    if isinstance(outcome, str):
        raise ApiError(outcome)
    return outcome


def views_open(ctx: CallContext) -> dict[str, Any]:
    """views.open: needs a trigger_id issued ≤ 3 s ago and never used."""
    source = _checked_view(ctx, frozenset({"modal"}))
    trigger = _trigger(ctx)
    close_stack(ctx.ws, trigger.user)
    view = store_view(ctx.ws, source, user=trigger.user)
    ctx.ws.modal_stacks[trigger.user] = [view["id"]]
    return {"ok": True, "view": public_view(view)}


def _find_view(ctx: CallContext) -> dict[str, Any]:
    view_id, external_id = ctx.str_arg("view_id"), ctx.str_arg("external_id")
    if not view_id and not external_id:
        raise invalid_arguments("exactly one of `view_id` or `external_id` is required")
    for view in ctx.ws.views.values():
        if (view_id and view["id"] == view_id) or (
            external_id and not view_id and view.get("external_id") == external_id
        ):
            if view["type"] == "modal" and not view.get("open"):
                break
            return view
    raise ApiError("not_found")


def views_update(ctx: CallContext) -> dict[str, Any]:
    """views.update: by view_id or external_id; a stale `hash` gives hash_conflict."""
    current = _find_view(ctx)
    expected = ctx.str_arg("hash")
    if expected is not None and expected != current["hash"]:
        raise ApiError("hash_conflict")
    source = _checked_view(ctx, frozenset({current["type"]}), editing=current["id"])
    view = store_view(
        ctx.ws,
        source,
        user=current["user"],
        view_id=current["id"],
        root_view_id=current["root_view_id"],
        previous_view_id=current["previous_view_id"],
        state=current["state"],
    )
    if view["type"] == "home":
        ctx.ws.home_views[view["user"]] = view
    return {"ok": True, "view": public_view(view)}


def views_push(ctx: CallContext) -> dict[str, Any]:
    """views.push: onto the user's open modal, at most three views deep."""
    source = _checked_view(ctx, frozenset({"modal"}))
    trigger = _trigger(ctx)
    stack = ctx.ws.modal_stacks.get(trigger.user)
    if not stack:
        raise invalid_arguments("no modal is open for the user of this trigger")
    if len(stack) >= MODAL_STACK_MAX:
        raise ApiError("push_limit_reached")
    view = store_view(
        ctx.ws, source, user=trigger.user, root_view_id=stack[0], previous_view_id=stack[-1]
    )
    stack.append(view["id"])
    return {"ok": True, "view": public_view(view)}


def views_publish(ctx: CallContext) -> dict[str, Any]:
    """views.publish: a user's App Home tab (type home)."""
    user_id = ctx.str_arg("user_id")
    user = ctx.ws.users.get(user_id or "")
    if user is None or user.is_bot or user.deleted:
        raise invalid_arguments("invalid `user_id`")
    current = ctx.ws.home_views.get(user.id)
    expected = ctx.str_arg("hash")
    if expected is not None and current is not None and expected != current["hash"]:
        raise ApiError("hash_conflict")
    source = _checked_view(ctx, frozenset({"home"}), editing=current["id"] if current else None)
    view = store_view(ctx.ws, source, user=user.id, view_id=current["id"] if current else None)
    ctx.ws.home_views[user.id] = view
    return {"ok": True, "view": public_view(view)}


HANDLERS: dict[str, Handler] = {
    "views.open": views_open,
    "views.publish": views_publish,
    "views.push": views_push,
    "views.update": views_update,
}
