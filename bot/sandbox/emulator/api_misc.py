"""Web API handlers for auth.test, users.* and usergroups.*."""

from __future__ import annotations

from typing import Any

from bot.sandbox.emulator.apicore import ApiError, CallContext, Handler, paginate
from bot.sandbox.emulator.state import BOT_ID, BOT_NAME, BOT_USER_ID, TEAM_DOMAIN, TEAM_ID


def auth_test(ctx: CallContext) -> dict[str, Any]:
    """auth.test: who the token is."""
    return {
        "ok": True,
        "url": f"https://{TEAM_DOMAIN}.slack.com/",
        "team": "PulseOps",
        "user": BOT_NAME,
        "team_id": TEAM_ID,
        "user_id": BOT_USER_ID,
        "bot_id": BOT_ID,
        "is_enterprise_install": False,
    }


def users_info(ctx: CallContext) -> dict[str, Any]:
    """users.info: user_not_found for an unknown id."""
    user = ctx.ws.users.get(ctx.str_arg("user") or "")
    if user is None:
        raise ApiError("user_not_found")
    return {"ok": True, "user": user.to_json()}


def users_list(ctx: CallContext) -> dict[str, Any]:
    """users.list: every member, bots included, paginated."""
    page, meta = paginate(ctx, list(ctx.ws.users.values()), default_limit=200)
    return {
        "ok": True,
        "members": [u.to_json() for u in page],
        "response_metadata": meta,
        "cache_ts": int(ctx.ws.clock()),
    }


def users_lookup_by_email(ctx: CallContext) -> dict[str, Any]:
    """users.lookupByEmail: the member with that e-mail (any case); users_not_found otherwise.

    Deactivated members are found too (with `deleted: true`), as Slack does; bots have no
    e-mail address and are never found.
    """
    email = (ctx.str_arg("email") or "").strip()
    if not email:
        raise ApiError("invalid_arguments")
    for user in ctx.ws.users.values():
        if user.email and not user.is_bot and user.email.lower() == email.lower():
            return {"ok": True, "user": user.to_json()}
    raise ApiError("users_not_found")


def _require_paid(ctx: CallContext) -> None:
    if not ctx.ws.paid_plan:
        raise ApiError("paid_teams_only")


def usergroups_users_update(ctx: CallContext) -> dict[str, Any]:
    """usergroups.users.update: replace the members of a user group."""
    _require_paid(ctx)
    group_id = ctx.str_arg("usergroup")
    if group_id is None:
        raise ApiError("invalid_arguments")
    group = ctx.ws.ensure_usergroup(group_id)
    if group is None:
        raise ApiError("no_such_subteam")
    users = ctx.id_list("users")
    if not users:
        raise ApiError("invalid_users")
    for user_id in users:
        user = ctx.ws.users.get(user_id)
        if user is None or user.deleted:
            raise ApiError("invalid_users")
    group["users"] = list(dict.fromkeys(users))
    group["user_count"] = len(group["users"])
    group["date_update"] = int(ctx.ws.clock())
    group["updated_by"] = BOT_USER_ID
    return {"ok": True, "usergroup": dict(group)}


def usergroups_list(ctx: CallContext) -> dict[str, Any]:
    """usergroups.list: groups, with their users when include_users is set."""
    _require_paid(ctx)
    groups = []
    for group in ctx.ws.usergroups.values():
        body = dict(group)
        if not ctx.flag("include_users"):
            body.pop("users", None)
        groups.append(body)
    return {"ok": True, "usergroups": groups}


def usergroups_users_list(ctx: CallContext) -> dict[str, Any]:
    """usergroups.users.list: the members of one group."""
    _require_paid(ctx)
    group = ctx.ws.usergroups.get(ctx.str_arg("usergroup") or "")
    if group is None:
        raise ApiError("no_such_subteam")
    return {"ok": True, "users": list(group["users"])}


HANDLERS: dict[str, Handler] = {
    "auth.test": auth_test,
    "usergroups.list": usergroups_list,
    "usergroups.users.list": usergroups_users_list,
    "usergroups.users.update": usergroups_users_update,
    "users.info": users_info,
    "users.list": users_list,
    "users.lookupByEmail": users_lookup_by_email,
}
