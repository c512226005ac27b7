"""manifest.yml matches the code: every registered command, exactly the scopes used."""

from __future__ import annotations

import ast
from pathlib import Path

import yaml

from bot.slack.ids import BOT_EVENTS, ESCAPED_COMMANDS, Shortcut, SlashCommand

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = yaml.safe_load((ROOT / "manifest.yml").read_text())

# Slack method -> the bot scopes that allow it (any one suffices; both for public+private use)
METHOD_SCOPES = {
    "conversations.create": {"channels:manage", "groups:write"},
    "conversations.invite": {"channels:manage", "groups:write"},
    "conversations.members": {"channels:read", "groups:read"},
    "conversations.setTopic": {"channels:manage", "groups:write"},
    "chat.postMessage": {"chat:write", "chat:write.public"},
    "chat.update": {"chat:write"},
    "chat.postEphemeral": {"chat:write"},
    "chat.getPermalink": set(),
    "conversations.rename": {"channels:manage", "groups:write"},
    "conversations.archive": {"channels:manage", "groups:write"},
    "conversations.replies": {"channels:history", "groups:history"},
    "users.info": {"users:read"},
    # looking for a post whose answer was lost, before posting again: public and private
    # channels, and the DMs of handoffs
    "conversations.history": {"channels:history", "groups:history", "im:history"},
    # looking for a channel a lost answer may have created, before creating another
    "conversations.list": {"channels:read", "groups:read"},
    "auth.test": set(),
    "pins.add": {"pins:write"},
    "views.open": set(),
    "views.update": set(),
    "views.publish": set(),
    "conversations.open": {"im:write"},
    "usergroups.users.update": {"usergroups:write"},
    "usergroups.users.list": {"usergroups:read"},
    "files.getUploadURLExternal": {"files:write"},
    "files.completeUploadExternal": {"files:write"},
    # looking for a file a lost answer may have shared, before uploading again
    "files.list": {"files:read"},
    "users.lookupByEmail": {"users:read.email"},
}

# Events API event -> the bot scope without which Slack does not send it
EVENT_SCOPES = {"app_home_opened": set(), "reaction_added": {"reactions:read"}}


def _calls_slack(func: ast.expr) -> bool:
    """`gateway.call(...)`, `self.call_once(...)`, or a `call(...)` handed the gateway's call."""
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    return name in {"call", "call_once"}


def methods_called() -> set[str]:
    """Every Slack method name the code passes to the gateway."""
    found: set[str] = set()
    for path in [*(ROOT / "bot").rglob("*.py"), *(ROOT / "handlers").rglob("*.py")]:
        if "emulator" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and _calls_slack(node.func) and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    found.add(first.value)
    return found


def events_registered(*, how: str = "on_event") -> set[str]:
    """Every Events API event type a handler registers with `on_event(app, "...", listener)`
    (`how="app.event"`: with Bolt's own `app.event("...")`, whose runs nobody watches)."""
    found: set[str] = set()
    for path in (ROOT / "handlers").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            if how == "on_event":
                named = getattr(node.func, "id", "") == "on_event"
                arg = node.args[1] if named and len(node.args) > 1 else None
            else:
                named = getattr(node.func, "attr", "") == "event"
                arg = node.args[0] if named and node.args else None
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.add(arg.value)
    return found


def test_commands_match_the_code() -> None:
    commands = {c["command"] for c in MANIFEST["features"]["slash_commands"]}
    assert commands == {c.value for c in SlashCommand}
    for command in MANIFEST["features"]["slash_commands"]:
        assert command["url"] == "https://YOUR-HOST/slack/events"
    escaped = {c["command"] for c in MANIFEST["features"]["slash_commands"] if c["should_escape"]}
    assert escaped == ESCAPED_COMMANDS


def test_scopes_are_exactly_those_used() -> None:
    called = methods_called()
    assert called, "no Slack calls found"
    assert called <= set(METHOD_SCOPES), f"unknown scope for {called - set(METHOD_SCOPES)}"
    needed = set().union(*(METHOD_SCOPES[m] for m in called)) | {"commands"}
    needed |= set().union(*(EVENT_SCOPES[e] for e in events_registered()))
    assert set(MANIFEST["oauth_config"]["scopes"]["bot"]) == needed


def test_request_urls_point_at_slack_events() -> None:
    assert MANIFEST["settings"]["interactivity"]["request_url"] == "https://YOUR-HOST/slack/events"
    assert MANIFEST["features"]["bot_user"]["display_name"]


def test_event_subscriptions_match_the_code() -> None:
    events = MANIFEST["settings"]["event_subscriptions"]
    assert events["request_url"] == "https://YOUR-HOST/slack/events"
    assert set(events["bot_events"]) == events_registered() == set(BOT_EVENTS)
    # each through `on_event`, so that over Socket Mode it is acknowledged once it has run
    assert events_registered(how="app.event") == set()
    assert "app_home_opened" in events["bot_events"]


def test_home_tab_is_enabled() -> None:
    app_home = MANIFEST["features"]["app_home"]
    assert app_home["home_tab_enabled"] is True
    # pages are DMs from the app: its Messages tab must stay visible (read-only is enough)
    assert app_home["messages_tab_enabled"] is True
    assert app_home["messages_tab_read_only_enabled"] is True


def test_message_shortcuts_match_the_code() -> None:
    shortcuts = MANIFEST["features"]["shortcuts"]
    assert {s["callback_id"] for s in shortcuts} == {s.value for s in Shortcut}
    assert all(s["type"] == "message" for s in shortcuts)
