"""The kinds of outbox work: one name per Slack side effect a state change can require."""

from __future__ import annotations

from enum import StrEnum


class OutboxKind(StrEnum):
    """What an outbox row asks the worker to deliver (stored as its value)."""

    ANNOUNCE = "announce"  # the incident in the incidents channel (pages people first)
    OPEN_CHANNEL = "open_channel"  # the incident's channel, invites, topic, pinned message
    SYNC_MESSAGES = "sync_messages"  # bring every copy of the incident message up to date
    PAGE = "page"  # one page: a DM with buttons, an invite and a mention
    HANDOFF = "handoff"  # a rotation handoff message and the user-group update
    REPORT = "report"  # a weekly report with its chart
    NOTE = "note"  # a note added to the timeline, posted in the incident channel
    STATE_LINE = "state_line"  # a short line threaded under the channel's message; the topic
    ROLE = "role"  # a role given: the person invited to the channel, the lead told by DM
    STATUS_UPDATE = "status_update"  # posted in the channel, threaded under the announcement
    UPDATE_REMINDER = "update_reminder"  # the lead (or the channel) reminded to post an update
    POSTMORTEM = "postmortem"  # the postmortem draft uploaded to the channel on resolve
    RENAME_CHANNEL = "rename_channel"  # the channel renamed after its incident's new title
    ARCHIVE_CHANNEL = "archive_channel"  # a message, then the resolved incident's channel archived
    NOTIFY = "notify"  # one e-mail, SMS, call or push of a page, due at its rule's time
    NOTIFY_TEST = "notify_test"  # "Send me a test page" to one method; the result in a DM
    WORKFLOW_RUN = "workflow_run"  # a workflow run's steps, in order, each done once
    EVENT = "event"  # one event for one event sink (webhook or NATS)
    PROBE_CHART = "probe_chart"  # a probe's latency chart, asked for by `/incident probe <id>`
