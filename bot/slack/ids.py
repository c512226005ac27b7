"""Every Slack identifier PulseOps uses: action, callback and block ids, and commands."""

from __future__ import annotations

import re
from enum import StrEnum


class Action(StrEnum):
    ACKNOWLEDGE = "incident_acknowledge"
    RESOLVE = "incident_resolve"
    ESCALATE = "incident_escalate"
    OPEN_CHANNEL = "incident_open_channel"


def bundled(action: Action, incident_id: int) -> str:
    """`action`'s id on one incident of a bundled page (action ids are unique in a message)."""
    return f"{action}_{incident_id}"


def bundled_pattern(action: Action) -> re.Pattern[str]:
    """Matches `action`'s ids on the incidents of bundled pages."""
    return re.compile(rf"^{re.escape(action)}_\d+$")


def action_of(action_id: str) -> Action:
    """The action a button's id stands for, on a bundled page or not."""
    base, _, suffix = action_id.rpartition("_")
    return Action(base) if base and suffix.isdigit() else Action(action_id)


class Callback(StrEnum):
    DECLARE = "incident_declare"


class Block(StrEnum):
    HEADER = "incident_header"
    SUMMARY = "incident_summary"
    FIELDS = "incident_fields"
    ACTIONS = "incident_actions"
    CONTEXT = "incident_context"
    PAGE = "incident_page"  # a bundled page adds `_<id>` and `_<id>_actions` per incident
    HANDOFF = "handoff"  # the rotation handoff message
    # declare modal inputs
    TITLE = "declare_title"
    SEVERITY = "declare_severity"
    SERVICE = "declare_service"
    DESCRIPTION = "declare_description"


class Input(StrEnum):
    """action_ids of the declare modal's input elements."""

    TITLE = "title"
    SEVERITY = "severity"
    SERVICE = "service"
    DESCRIPTION = "description"


class SlashCommand(StrEnum):
    INCIDENT = "/incident"
    ONCALL = "/oncall"


ESCAPED_COMMANDS = frozenset({SlashCommand.ONCALL})
"""Commands whose manifest.yml entry says `should_escape: true`.

Slack sends their typed `@alice` as `<@U…|alice>`."""

BOT_EVENTS = ("app_home_opened",)
"""The Events API events the app subscribes to (manifest.yml `bot_events`); no others arrive."""
