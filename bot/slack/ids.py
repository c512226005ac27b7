"""Every Slack identifier PulseOps uses: action, callback and block ids, and commands."""

from __future__ import annotations

from enum import StrEnum


class Action(StrEnum):
    ACKNOWLEDGE = "incident_acknowledge"
    RESOLVE = "incident_resolve"
    ESCALATE = "incident_escalate"
    OPEN_CHANNEL = "incident_open_channel"


class Callback(StrEnum):
    DECLARE = "incident_declare"


class Block(StrEnum):
    HEADER = "incident_header"
    SUMMARY = "incident_summary"
    FIELDS = "incident_fields"
    ACTIONS = "incident_actions"
    CONTEXT = "incident_context"
    PAGE = "incident_page"
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


BOT_EVENTS = ("app_home_opened",)
"""The Events API events the app subscribes to (manifest.yml `bot_events`); no others arrive."""
