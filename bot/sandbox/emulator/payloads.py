"""Builds the payloads Slack sends to an app: block_actions, slash commands, views, events."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any

from bot.sandbox.emulator.state import (
    APP_ID,
    BOT_USER_ID,
    TEAM_DOMAIN,
    TEAM_ID,
    VERIFICATION_TOKEN,
    Channel,
    Workspace,
)

_TEXT_INPUTS = frozenset({"plain_text_input", "email_text_input", "url_text_input", "number_input"})
_ONE_OPTION = frozenset({"static_select", "external_select", "radio_buttons", "overflow"})
_MANY_OPTIONS = frozenset({"multi_static_select", "multi_external_select", "checkboxes"})
_SELECTED = {
    "users_select": "selected_user",
    "multi_users_select": "selected_users",
    "conversations_select": "selected_conversation",
    "multi_conversations_select": "selected_conversations",
    "channels_select": "selected_channel",
    "multi_channels_select": "selected_channels",
    "datepicker": "selected_date",
    "timepicker": "selected_time",
    "datetimepicker": "selected_date_time",
    "rich_text_input": "rich_text_value",
}


class EmulatorError(Exception):
    """A driver request the emulator cannot honour (unknown button, bad value, no request URL)."""


def team() -> dict[str, str]:
    """The team object of payloads."""
    return {"id": TEAM_ID, "domain": TEAM_DOMAIN}


def user_ref(ws: Workspace, user_id: str) -> dict[str, str]:
    """The user object of interaction payloads.

    Raises:
        EmulatorError: the user does not exist.
    """
    user = ws.users.get(user_id)
    if user is None:
        raise EmulatorError(f"unknown user {user_id!r}")
    return {"id": user.id, "username": user.name, "name": user.name, "team_id": TEAM_ID}


def channel_name(channel: Channel) -> str:
    """The channel name Slack puts in payloads ("directmessage" for DMs)."""
    if channel.is_im:
        return "directmessage"
    return "privategroup" if channel.is_private and not channel.name else channel.name


def block_id_of(block: Mapping[str, Any], index: int) -> str:
    """A block's id; blocks sent without one get a stable stand-in, as Slack generates one."""
    value = block.get("block_id")
    return str(value) if value else f"emu-block-{index}"


def elements_of(block: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """The interactive elements a block holds."""
    if block.get("type") == "actions":
        yield from (e for e in block.get("elements") or [] if isinstance(e, dict))
    for key in ("accessory", "element"):
        element = block.get(key)
        if isinstance(element, dict):
            yield element


def find_element(
    blocks: list[Any], *, action_id: str, block_id: str | None = None, value: str | None = None
) -> tuple[str, dict[str, Any]]:
    """Find an interactive element by action_id (block_id and button value disambiguate).

    Raises:
        EmulatorError: nothing matches.
    """
    for index, block in enumerate(blocks or []):
        if not isinstance(block, dict):
            continue
        bid = block_id_of(block, index)
        if block_id is not None and bid != block_id:
            continue
        for element in elements_of(block):
            if element.get("action_id") != action_id:
                continue
            is_button = element.get("type") == "button"
            if value is not None and is_button and element.get("value") != value:
                continue
            return bid, element
    raise EmulatorError(
        f"no element with action_id {action_id!r}" + (f" in block {block_id!r}" if block_id else "")
    )


def _option(element: Mapping[str, Any], value: str) -> dict[str, Any]:
    if element.get("type") in ("external_select", "multi_external_select"):
        return {"text": {"type": "plain_text", "text": value}, "value": value}
    options = list(element.get("options") or [])
    for group in element.get("option_groups") or []:
        options.extend(group.get("options") or [])
    for option in options:
        if isinstance(option, dict) and option.get("value") == value:
            return copy.deepcopy(option)
    raise EmulatorError(f"{element.get('action_id')!r} has no option with value {value!r}")


def element_value(element: Mapping[str, Any], value: Any) -> dict[str, Any]:
    """The value object Slack reports for an element set to `value` (None means empty).

    Raises:
        EmulatorError: a select option that does not exist.
    """
    kind = str(element.get("type"))
    body: dict[str, Any] = {"type": kind}
    if kind in _TEXT_INPUTS:
        body["value"] = None if value is None else str(value)
    elif kind in _ONE_OPTION:
        body["selected_option"] = None if value is None else _option(element, str(value))
    elif kind in _MANY_OPTIONS:
        values = [] if value is None else (value if isinstance(value, list) else [value])
        body["selected_options"] = [_option(element, str(v)) for v in values]
    elif kind in _SELECTED:
        many = kind.startswith("multi_")
        if many and value is not None and not isinstance(value, list):
            value = [value]
        body[_SELECTED[kind]] = ([] if many else None) if value is None else value
    else:
        body["value"] = value
    return body


def state_values(
    view: Mapping[str, Any], values: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """Build view.state.values from {block_id: {action_id: value}} for every input block.

    Raises:
        EmulatorError: a value for no input, or a required input left empty.
    """
    state: dict[str, dict[str, Any]] = {}
    known: set[tuple[str, str]] = set()
    missing: list[str] = []
    for index, block in enumerate(view.get("blocks") or []):
        if not isinstance(block, dict) or block.get("type") != "input":
            continue
        bid = block_id_of(block, index)
        element = block.get("element") or {}
        action_id = str(element.get("action_id") or f"emu-action-{index}")
        known.add((bid, action_id))
        given = values.get(bid, {}).get(action_id)
        if given is None:  # Slack submits what the input was opened with unless it is changed
            given = element.get("initial_value", element.get("initial_date_time"))
        if given in (None, "", []) and not block.get("optional", False):
            missing.append(bid)
        state.setdefault(bid, {})[action_id] = element_value(element, given)
    for bid, actions in values.items():
        for action_id in actions:
            if (bid, action_id) not in known:
                raise EmulatorError(f"the view has no input {bid!r}/{action_id!r}")
    if missing:
        raise EmulatorError(f"required inputs left empty: {', '.join(missing)}")
    return state


def action_payload(
    element: Mapping[str, Any], block_id: str, value: Any, action_ts: str
) -> dict[str, Any]:
    """One entry of block_actions' `actions` for a click or a selection."""
    if element.get("type") == "button":
        action = {
            "type": "button",
            "action_id": element.get("action_id"),
            "block_id": block_id,
            "text": copy.deepcopy(element.get("text")),
            "value": element.get("value"),
            "style": element.get("style"),
            "action_ts": action_ts,
        }
        return {k: v for k, v in action.items() if v is not None}
    action = element_value(element, value)
    action.update(action_id=element.get("action_id"), block_id=block_id, action_ts=action_ts)
    return action


def block_actions(
    ws: Workspace,
    *,
    user: str,
    action: dict[str, Any],
    trigger_id: str,
    container: dict[str, Any],
    extra: Mapping[str, Any],
) -> dict[str, Any]:
    """A block_actions payload as Slack posts it in the `payload` form field."""
    return {
        "type": "block_actions",
        "user": user_ref(ws, user),
        "api_app_id": APP_ID,
        "token": VERIFICATION_TOKEN,
        "container": container,
        "trigger_id": trigger_id,
        "team": team(),
        "enterprise": None,
        "is_enterprise_install": False,
        "state": {"values": {}},
        "actions": [action],
        **extra,
    }


def command_form(
    ws: Workspace,
    *,
    user: str,
    channel: Channel,
    command: str,
    text: str,
    response_url: str,
    trigger_id: str,
) -> dict[str, str]:
    """The form fields of a slash command invocation."""
    person = user_ref(ws, user)
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": TEAM_ID,
        "team_domain": TEAM_DOMAIN,
        "channel_id": channel.id,
        "channel_name": channel_name(channel),
        "user_id": person["id"],
        "user_name": person["username"],
        "command": command,
        "text": text,
        "api_app_id": APP_ID,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }


def view_payload(
    ws: Workspace, kind: str, *, user: str, view: dict[str, Any], trigger_id: str | None = None
) -> dict[str, Any]:
    """A view_submission or view_closed payload."""
    body: dict[str, Any] = {
        "type": kind,
        "team": team(),
        "user": user_ref(ws, user),
        "api_app_id": APP_ID,
        "token": VERIFICATION_TOKEN,
        "view": view,
        "enterprise": None,
        "is_enterprise_install": False,
    }
    if kind == "view_submission":
        body.update(trigger_id=trigger_id, response_urls=[])
    else:
        body["is_cleared"] = False
    return body


def event_envelope(event_id: str, event: dict[str, Any], *, event_time: int) -> dict[str, Any]:
    """The Events API `event_callback` envelope around one event."""
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": TEAM_ID,
        "api_app_id": APP_ID,
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": event_time,
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": TEAM_ID,
                "user_id": BOT_USER_ID,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": f"4-{event_id}",
    }


def channel_type(channel: Channel) -> str:
    """The channel_type of message events."""
    if channel.is_im:
        return "im"
    if channel.is_mpim:
        return "mpim"
    return "group" if channel.is_private else "channel"
