"""Every Slack identifier PulseOps uses: action, callback and block ids, and commands."""

from __future__ import annotations

import re
from enum import StrEnum


class Action(StrEnum):
    ACKNOWLEDGE = "incident_acknowledge"
    RESOLVE = "incident_resolve"
    ESCALATE = "incident_escalate"
    REOPEN = "incident_reopen"  # on a resolved incident's message
    OPEN_CHANNEL = "incident_open_channel"
    SEVERITY = "incident_severity"  # the severity select; option values are `<id>:<SEV>`
    ROLES = "incident_roles"  # opens the Roles form
    DECLARE = "incident_declare"  # the App Home's Declare button: opens the declare form
    SILENCE = "incident_silence"  # "Silence…" on an incident message: the silence modal
    EXPIRE_SILENCE = "silence_expire"  # in `/incident silences`: `_<id>` expires that silence
    FOLLOWUP_DONE = "followup_done"  # in `/incident followups`: `_<id>` marks that one done
    RUN_WORKFLOW = "incident_run_workflow"  # `:<workflow id>` follows, one button per workflow


def workflow_action(workflow_id: str) -> str:
    """The action id of the button that runs `workflow_id` (unique within a message)."""
    return f"{Action.RUN_WORKFLOW}:{workflow_id}"


WORKFLOW_ACTION = re.compile(rf"^{re.escape(Action.RUN_WORKFLOW)}:[a-z0-9][a-z0-9_-]*$")
"""Matches the action ids of workflow buttons."""


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
    ROLES = "incident_roles"  # private_metadata: the incident id
    UPDATE = "incident_update"  # the status update form; private_metadata: the incident id
    TIMELINE_ADD = "timeline_add"  # which incident a shortcut's message goes to
    SILENCE = "silence_create"
    NOTIFY = "notify_methods"  # `/oncall notify`: a person's contact methods


class NotifyAction(StrEnum):
    """Buttons of the `/oncall notify` modal; each method's adds `_<n>` (unique in the view)."""

    TEST = "notify_test"
    REMOVE = "notify_remove"


def notify_pattern(action: NotifyAction) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(action)}_\d+$")


class Block(StrEnum):
    HEADER = "incident_header"
    SUMMARY = "incident_summary"
    FIELDS = "incident_fields"
    ACTIONS = "incident_actions"
    MANAGE = "incident_manage"  # the Roles button and the severity select
    CONTEXT = "incident_context"
    CHART = "incident_chart"  # a chart uploaded to the incident's channel (a probe's latency)
    PAGE = "incident_page"  # a bundled page adds `_<id>` and `_<id>_actions` per incident
    HANDOFF = "handoff"  # the rotation handoff message
    # declare modal inputs
    TITLE = "declare_title"
    SEVERITY = "declare_severity"
    SERVICE = "declare_service"
    DESCRIPTION = "declare_description"
    # roles modal inputs
    LEAD = "roles_lead"
    COMMS = "roles_comms"
    # status update modal inputs
    UPDATE_STATUS = "update_status"
    UPDATE_SUMMARY = "update_summary"
    TIMELINE_INCIDENT = "timeline_incident"
    # silence modal inputs
    SILENCE_MATCHERS = "silence_matchers"
    SILENCE_DURATION = "silence_duration"
    SILENCE_ENDS_AT = "silence_ends_at"
    SILENCE_COMMENT = "silence_comment"
    SILENCE_LIST = "silence_list"  # `/incident silences`: adds `_<id>` per silence
    FOLLOWUP_LIST = "followup_list"  # `/incident followups`: adds `_<id>` per follow-up
    # /oncall notify modal
    NOTIFY_METHOD = "notify_method"  # one per method, `_<n>`
    NOTIFY_TYPE = "notify_type"
    NOTIFY_DESTINATION = "notify_destination"
    NOTIFY_AFTER = "notify_after"


class Input(StrEnum):
    """action_ids of the declare modal's input elements."""

    TITLE = "title"
    SEVERITY = "severity"
    SERVICE = "service"
    DESCRIPTION = "description"
    LEAD = "lead"
    COMMS = "comms"
    UPDATE_STATUS = "status"
    UPDATE_SUMMARY = "summary"
    TIMELINE_INCIDENT = "incident"
    NOTIFY_TYPE = "type"
    NOTIFY_DESTINATION = "destination"
    NOTIFY_AFTER = "after"


class SilenceInput(StrEnum):
    """action_ids of the silence modal's input elements."""

    MATCHERS = "matchers"
    DURATION = "duration"
    ENDS_AT = "ends_at"
    COMMENT = "comment"


class SlashCommand(StrEnum):
    INCIDENT = "/incident"
    ONCALL = "/oncall"


class Shortcut(StrEnum):
    """callback_ids of the app's message shortcuts (manifest.yml `features.shortcuts`)."""

    ADD_TO_TIMELINE = "add_to_incident_timeline"


PIN_REACTIONS = frozenset({"pushpin", "round_pushpin"})
"""A 📌 on a message in an incident channel adds it to the incident's timeline."""

ESCAPED_COMMANDS = frozenset({SlashCommand.INCIDENT, SlashCommand.ONCALL})
"""Commands whose manifest.yml entry says `should_escape: true`.

Slack sends their typed `@alice` as `<@U…|alice>`."""

BOT_EVENTS = ("app_home_opened", "reaction_added")
"""The Events API events the app subscribes to (manifest.yml `bot_events`); no others arrive."""
