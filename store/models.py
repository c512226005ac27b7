"""ORM models. Every timestamp is aware UTC; ids of incidents double as their public number."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, MetaData, String, Text, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from store.types import UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON}


class IncidentRow(Base):
    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    title: Mapped[str] = mapped_column(String(1000))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), index=True)
    severity: Mapped[str] = mapped_column(String(8))
    service_id: Mapped[str | None] = mapped_column(String(100), index=True)
    team_id: Mapped[str | None] = mapped_column(String(100), index=True)
    source: Mapped[str] = mapped_column(String(32))
    integration: Mapped[str | None] = mapped_column(String(100))
    # integration:group_key; unique among open incidents (partial index below)
    dedup_key: Mapped[str | None] = mapped_column(String(600))
    category: Mapped[str | None] = mapped_column(String(100), index=True)  # routes, classifier
    auto_resolve: Mapped[bool] = mapped_column(default=True)
    created_by: Mapped[str | None] = mapped_column(String(100))
    # roles: Slack user ids of the incident lead and the communications lead
    lead: Mapped[str | None] = mapped_column(String(32))
    comms: Mapped[str | None] = mapped_column(String(32))
    # the latest status update (investigating | identified | monitoring) and its summary
    update_status: Mapped[str | None] = mapped_column(String(16))
    update_summary: Mapped[str | None] = mapped_column(Text)
    last_update_at: Mapped[datetime | None]
    # when the lead is next reminded to post an update (SQL deadline; null: never)
    update_due_at: Mapped[datetime | None] = mapped_column(index=True)
    # when the resolved incident's channel is archived (SQL deadline; null: never)
    archive_at: Mapped[datetime | None] = mapped_column(index=True)
    version: Mapped[int] = mapped_column(default=0)
    alert_count: Mapped[int] = mapped_column(default=0)
    labels: Mapped[dict[str, Any]] = mapped_column(default=dict)
    links: Mapped[dict[str, Any]] = mapped_column(default=dict)
    triggered_at: Mapped[datetime] = mapped_column(index=True)
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(100))
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(100))
    updated_at: Mapped[datetime]
    # Slack side: filled in by the outbox worker as deliveries succeed
    channel_id: Mapped[str | None] = mapped_column(String(32), index=True)
    channel_name: Mapped[str | None] = mapped_column(String(80))
    message_ts: Mapped[str | None] = mapped_column(String(32))
    message_version: Mapped[int] = mapped_column(default=0)
    announcement_channel: Mapped[str | None] = mapped_column(String(32))
    announcement_ts: Mapped[str | None] = mapped_column(String(32))
    announcement_version: Mapped[int] = mapped_column(default=0)
    # cross-replica lease so only one worker edits this incident's messages at a time
    sync_lease_until: Mapped[datetime | None]
    # a chart uploaded to the incident's channel, shown in its message (a probe's latency)
    chart_file_id: Mapped[str | None] = mapped_column(String(32))

    alerts: Mapped[list[AlertRow]] = relationship(back_populates="incident", lazy="raise")

    __table_args__ = (
        Index(
            "uq_incidents_open_dedup_key",
            "dedup_key",
            unique=True,
            sqlite_where=text("status != 'resolved' AND dedup_key IS NOT NULL"),
            postgresql_where=text("status != 'resolved' AND dedup_key IS NOT NULL"),
        ),
    )


class AlertRow(Base):
    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    integration: Mapped[str] = mapped_column(String(100))
    fingerprint: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(1000))
    labels: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # the severity the monitor last sent for it: a repeat with another one is routed again
    severity: Mapped[str | None] = mapped_column(String(8))
    occurrences: Mapped[int] = mapped_column(default=1)
    first_seen_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    last_note_at: Mapped[datetime | None]

    incident: Mapped[IncidentRow] = relationship(back_populates="alerts", lazy="raise")

    __table_args__ = (
        Index("uq_alerts_incident_fingerprint", "incident_id", "fingerprint", unique=True),
        Index("ix_alerts_integration_fingerprint", "integration", "fingerprint"),
    )


class TimelineRow(Base):
    __tablename__ = "timeline_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(140))
    text: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


class OutboxRow(Base):
    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[int | None] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    progress: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime]
    claimed_until: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    done_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)


class IdempotencyRow(Base):
    __tablename__ = "idempotency_keys"

    integration: Mapped[str] = mapped_column(String(100), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    body_sha256: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int]
    response: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)


class OverrideRow(Base):
    """A person on call instead of a schedule's rotation for [start, end)."""

    __tablename__ = "oncall_overrides"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    schedule_id: Mapped[str] = mapped_column(String(100), index=True)
    user: Mapped[str] = mapped_column(String(32))
    start: Mapped[datetime]
    end: Mapped[datetime] = mapped_column(index=True)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(100))


class EscalationRow(Base):
    """Where an incident's escalation policy stands; `next_at` is the next deadline (SQL)."""

    __tablename__ = "escalations"

    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True
    )
    policy_id: Mapped[str] = mapped_column(String(100))
    level: Mapped[int]
    cycle: Mapped[int]
    status: Mapped[str] = mapped_column(String(16))  # active | stopped | exhausted
    next_at: Mapped[datetime | None] = mapped_column(index=True)
    version: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime]


class PageRow(Base):
    """One page of one person (or user group) for one escalation step: unique, so never twice."""

    __tablename__ = "pages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    cycle: Mapped[int]
    level: Mapped[int]
    step: Mapped[int] = mapped_column(default=0)  # manual escalations add steps
    target: Mapped[str] = mapped_column(String(64))  # U… user or S… user group
    kind: Mapped[str] = mapped_column(String(16))  # user | user_group
    via: Mapped[str] = mapped_column(String(140))  # "schedule:payments-primary", "user", …
    paged_at: Mapped[datetime]
    scheduled_at: Mapped[datetime]  # the deadline this page answers (lateness = paged - scheduled)
    dm_channel: Mapped[str | None] = mapped_column(String(32))
    dm_ts: Mapped[str | None] = mapped_column(String(32))
    dm_version: Mapped[int] = mapped_column(default=0)

    __table_args__ = (
        Index(
            "uq_pages_step_target", "incident_id", "cycle", "level", "step", "target", unique=True
        ),
    )


class DmChannelRow(Base):
    """A person's DM channel with the bot, opened once and shared by every replica.

    `lease_until` lets one sender at a time post or edit that person's page DMs, so pages
    waiting together go out as one message and a bundle's edits never go backwards.
    """

    __tablename__ = "dm_channels"

    user_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    channel_id: Mapped[str | None] = mapped_column(String(32))  # None until first opened
    opened_at: Mapped[datetime | None]
    lease_until: Mapped[datetime | None]


# a person's pages still waiting for their DM, and the pages one bundled DM covers
Index("ix_pages_target_dm_ts", PageRow.__table__.c.target, PageRow.__table__.c.dm_ts)


class HandoffRow(Base):
    """One rotation handoff of one schedule: the primary key makes its message exactly-once."""

    __tablename__ = "handoffs"

    schedule_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    at: Mapped[datetime] = mapped_column(primary_key=True)
    outgoing: Mapped[str] = mapped_column(String(32))
    incoming: Mapped[str] = mapped_column(String(32))
    recorded_at: Mapped[datetime]


class ScheduleStateRow(Base):
    """Up to when a schedule's handoffs have been recorded."""

    __tablename__ = "schedule_state"

    schedule_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    handoffs_checked_until: Mapped[datetime]


class ReportRow(Base):
    """One scheduled report of one scope (a team id, or "all") and period: the primary key
    makes it exactly-once across replicas and restarts."""

    __tablename__ = "reports"

    scope: Mapped[str] = mapped_column(String(100), primary_key=True)
    period_start: Mapped[datetime] = mapped_column(primary_key=True)
    period_end: Mapped[datetime]
    recorded_at: Mapped[datetime]
    # False: recorded without a message (the first period a scope was seen in, long past)
    announced: Mapped[bool] = mapped_column(default=True)


class SlackRequestRow(Base):
    """A Slack request (or Events API event) already handled, kept while a replay could arrive.

    `key` is a hash of what identifies it (the signed timestamp and body, or the event id), so
    any length of input makes a fixed-size key; the primary key lets one replica win a race.
    """

    __tablename__ = "slack_requests"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    # A delivery a replica is still handling (Socket Mode envelopes, Events API events): who
    # claimed it and until when the claim holds; NULL once handled (and for replay keys).
    holder: Mapped[str | None] = mapped_column(String(40))
    lease_until: Mapped[datetime | None]


class ApiTokenRow(Base):
    """An API token created at run time (`pulseops token create`): only its SHA-256 is kept."""

    __tablename__ = "api_tokens"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[str] = mapped_column(String(64))  # comma-separated
    created_at: Mapped[datetime]


class SilenceRow(Base):
    """A silence: alerts matching every matcher open no incident over [starts_at, ends_at)."""

    __tablename__ = "silences"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    matchers: Mapped[list[str]] = mapped_column(JSON)  # canonical matcher strings
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime] = mapped_column(index=True)
    comment: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(140))
    created_at: Mapped[datetime]
    expired_at: Mapped[datetime | None]
    expired_by: Mapped[str | None] = mapped_column(String(140))


class SuppressedAlertRow(Base):
    """An alert that opened no incident: muted (a silence, a maintenance window) or dropped by
    a route. Stored and counted; a muted one still firing when its hold ends is released
    (`held_until` is that deadline, `released_at` the claim that releases it once)."""

    __tablename__ = "suppressed_alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    integration: Mapped[str] = mapped_column(String(100))
    fingerprint: Mapped[str] = mapped_column(String(255))
    dedup_key: Mapped[str] = mapped_column(String(600))
    reason: Mapped[str] = mapped_column(String(16))  # muted | dropped
    by: Mapped[str] = mapped_column(Text)  # what suppressed it, in words
    silence_id: Mapped[int | None] = mapped_column(Integer, index=True)
    window: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16))  # firing | resolved
    title: Mapped[str] = mapped_column(String(1000))
    alert: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the alert, to replay it
    occurrences: Mapped[int] = mapped_column(default=1)
    first_seen_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    held_until: Mapped[datetime | None] = mapped_column(index=True)
    released_at: Mapped[datetime | None]
    released_incident_id: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (
        Index(
            "uq_suppressed_alerts_integration_fingerprint",
            "integration",
            "fingerprint",
            unique=True,
        ),
    )


class NotificationRow(Base):
    """One notification beyond Slack that a page asked for: a method, when it is due, and
    what became of it. Unique per (page, method), so a page never notifies twice."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    page_id: Mapped[int] = mapped_column(ForeignKey("pages.id", ondelete="CASCADE"))
    user: Mapped[str] = mapped_column(String(32))
    method_id: Mapped[str] = mapped_column(String(64))
    method_type: Mapped[str] = mapped_column(String(16))  # email | sms | voice | apprise
    destination: Mapped[str] = mapped_column(Text)  # address, E.164 number or Apprise URL
    # pending | sending | sent | delivered | failed | cancelled | throttled
    status: Mapped[str] = mapped_column(String(16))
    due_at: Mapped[datetime]
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    provider_id: Mapped[str | None] = mapped_column(String(64), index=True)  # Twilio's SID
    error: Mapped[str | None] = mapped_column(Text)
    link_used_at: Mapped[datetime | None]  # the e-mail's acknowledge link, used once

    __table_args__ = (
        Index("uq_notifications_page_method", "page_id", "method_id", unique=True),
        Index("ix_notifications_user_sent", "user", "method_type", "sent_at"),
        Index("ix_notifications_destination", "method_type", "destination", "sent_at"),
    )


class WorkflowRunRow(Base):
    """One run of a workflow on an incident: unique per (workflow, incident, trigger key), so a
    redelivered or concurrent trigger never runs it twice. `scheduled` runs wait for `due_at`
    (`unacknowledged_for`); the outbox row of a `pending` run carries it out."""

    __tablename__ = "workflow_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workflow_id: Mapped[str] = mapped_column(String(100))
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    trigger: Mapped[str] = mapped_column(String(40))  # triggered | … | button | command
    trigger_key: Mapped[str] = mapped_column(String(255))
    started_by: Mapped[str] = mapped_column(String(140))
    status: Mapped[str] = mapped_column(String(16))  # scheduled|pending|succeeded|failed|skipped
    due_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("uq_workflow_runs_key", "workflow_id", "incident_id", "trigger_key", unique=True),
        Index("ix_workflow_runs_due", "status", "due_at"),
    )


class WorkflowStepRow(Base):
    """One step of a run: its attempts and outcome. A step marked done is never run again."""

    __tablename__ = "workflow_steps"

    run_id: Mapped[int] = mapped_column(
        ForeignKey("workflow_runs.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(16))  # pending | done | failed
    attempts: Mapped[int] = mapped_column(default=0)
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    finished_at: Mapped[datetime | None]


class HeartbeatRow(Base):
    """A heartbeat's last ping and its deadline; armed by its first ping.

    `status` is `up` (pinged, `due_at` ahead) or `missed` (its incident was opened; the next
    ping resolves it). The sweep claims due `up` rows with SKIP LOCKED and marks them missed in
    the transaction that opens the incident, so several replicas open one incident.
    """

    __tablename__ = "heartbeats"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    last_ping_at: Mapped[datetime]
    due_at: Mapped[datetime] = mapped_column(index=True)
    missed_at: Mapped[datetime | None]
    pings: Mapped[int] = mapped_column(default=0)


class ProbeStateRow(Base):
    """A probe's schedule and state, one row per configured probe.

    `next_run_at` is the deadline: a replica claims a due probe by moving it one interval ahead
    with a conditional UPDATE (SKIP LOCKED on PostgreSQL), so each run happens once across
    replicas. `status` is `unknown` (never run), `up` or `down` (its incident is open).
    """

    __tablename__ = "probes"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    next_run_at: Mapped[datetime] = mapped_column(index=True)
    status: Mapped[str] = mapped_column(String(16))
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    last_run_at: Mapped[datetime | None]
    last_ok: Mapped[bool | None]
    last_latency_ms: Mapped[float | None]
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(String(300))
    cert_days: Mapped[int | None]
    latency_anomaly: Mapped[bool] = mapped_column(default=False)
    error_anomaly: Mapped[bool] = mapped_column(default=False)
    cert_expiring: Mapped[bool] = mapped_column(default=False)
    latency_calm: Mapped[int] = mapped_column(default=0)  # normal samples since the anomaly
    error_calm: Mapped[int] = mapped_column(default=0)
    burn_level: Mapped[int] = mapped_column(default=0)  # 0 none, 1 slow burn, 2 fast burn


class SloStateRow(Base):
    """An SLO over an alert source (`slos`), one row per configured SLO.

    `next_eval_at` is the deadline of its next evaluation, claimed once across replicas like a
    probe's run. `evaluated_at` is how far its bad periods are known.
    """

    __tablename__ = "slos"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    next_eval_at: Mapped[datetime] = mapped_column(index=True)
    evaluated_at: Mapped[datetime | None]
    burn_level: Mapped[int] = mapped_column(default=0)  # 0 none, 1 slow burn, 2 fast burn


class SloBadPeriodRow(Base):
    """A stretch of time during which an SLO's source had an alert firing (merged)."""

    __tablename__ = "slo_bad_periods"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    slo_id: Mapped[str] = mapped_column(String(100))
    start: Mapped[datetime]
    end: Mapped[datetime]

    __table_args__ = (Index("ix_slo_bad_periods_slo_end", "slo_id", "end"),)


class ProbeResultRow(Base):
    """One run of a probe (kept `probe_runner.raw_retention`, then rolled up by the hour)."""

    __tablename__ = "probe_results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    probe_id: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(index=True)
    ok: Mapped[bool]
    latency_ms: Mapped[float]
    status_code: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(String(300))
    cert_days: Mapped[int | None]

    __table_args__ = (Index("ix_probe_results_probe_at", "probe_id", "at"),)


class ProbeRollupRow(Base):
    """One probe's runs in one hour, once its raw results have aged out."""

    __tablename__ = "probe_rollups"

    probe_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    hour: Mapped[datetime] = mapped_column(primary_key=True)
    runs: Mapped[int]
    failures: Mapped[int]
    latency_sum_ms: Mapped[float]
    latency_max_ms: Mapped[float]
    latency_p50_ms: Mapped[float]
    latency_p95_ms: Mapped[float]


class ContactMethodRow(Base):
    """A contact method a person set for themselves in Slack (`/oncall notify`); when they
    have any, these replace the defaults of `contacts` in the config."""

    __tablename__ = "contact_methods"

    user: Mapped[str] = mapped_column(String(32), primary_key=True)
    method_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    method_type: Mapped[str] = mapped_column(String(16))
    destination: Mapped[str] = mapped_column(Text)
    after_seconds: Mapped[int] = mapped_column(default=0)  # after the page, while unacknowledged
    created_at: Mapped[datetime]
    tested_at: Mapped[datetime | None]  # the last "Send me a test page"
    test_result: Mapped[str | None] = mapped_column(Text)  # "sent" or the provider's reason


class FollowupRow(Base):
    """Work to do after an incident (`/incident followup`), open until done."""

    __tablename__ = "followups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    text: Mapped[str] = mapped_column(Text)
    owner: Mapped[str | None] = mapped_column(String(32))
    created_by: Mapped[str] = mapped_column(String(140))
    created_at: Mapped[datetime]
    done_at: Mapped[datetime | None] = mapped_column(index=True)
