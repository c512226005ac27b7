"""Prometheus metrics, one registry per app instance (several apps can run in one test process)."""

from __future__ import annotations

from typing import Any, Self

import prometheus_client
from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobEvent,
)
from apscheduler.schedulers.base import BaseScheduler
from prometheus_client import CollectorRegistry, generate_latest

# Seconds from trigger to acknowledgement / resolution: 10 s … 3 days.
RESPONSE_BUCKETS = (10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400, 259200)

# APScheduler event -> the `result` label of pulseops_scheduler_job_runs_total
_JOB_RESULTS = {
    EVENT_JOB_EXECUTED: "ok",
    EVENT_JOB_ERROR: "error",
    EVENT_JOB_MISSED: "missed",
    EVENT_JOB_MAX_INSTANCES: "skipped",
}


class _CachedLabels:
    """`.labels(...)` answered from a dict keyed by the label values as given.

    prometheus_client checks the names, converts every value to text and takes a lock on
    each call; the webhook path asks for the same few children on every delivery.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._by_position: dict[tuple[object, ...], Self] = {}
        self._by_name: dict[tuple[tuple[str, object], ...], Self] = {}

    def labels(self, *labelvalues: object, **labelkwargs: object) -> Self:
        child: Self | None
        if labelkwargs:
            named = tuple(labelkwargs.items())
            child = self._by_name.get(named)
            if child is None:
                child = super().labels(**labelkwargs)  # type: ignore[misc]
                self._by_name[named] = child
            return child
        child = self._by_position.get(labelvalues)
        if child is None:
            child = super().labels(*labelvalues)  # type: ignore[misc]
            self._by_position[labelvalues] = child
        return child

    def remove(self, *labelvalues: object) -> None:
        self._by_position.clear()
        self._by_name.clear()
        super().remove(*labelvalues)  # type: ignore[misc]

    def clear(self) -> None:
        self._by_position.clear()
        self._by_name.clear()
        super().clear()  # type: ignore[misc]


class Counter(_CachedLabels, prometheus_client.Counter):
    """A counter whose labelled children are cached (`_CachedLabels`)."""


class Gauge(_CachedLabels, prometheus_client.Gauge):
    """A gauge whose labelled children are cached (`_CachedLabels`)."""


class Histogram(_CachedLabels, prometheus_client.Histogram):
    """A histogram whose labelled children are cached (`_CachedLabels`)."""


class Metrics:
    """Every metric PulseOps exports; rendered at GET /metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.alerts_received = Counter(
            "pulseops_alerts_received_total",
            "Alerts received, by integration and outcome",
            ["integration", "outcome"],
            registry=r,
        )
        self.alerts_muted = Counter(
            "pulseops_alerts_muted_total",
            "Alerts muted instead of opening an incident, by what muted them: kind "
            "silence (name: the silence's id) or maintenance_window (name: the window's)",
            ["kind", "name"],
            registry=r,
        )
        self.alerts_released = Counter(
            "pulseops_alerts_released_total",
            "Muted alerts still firing when their silence or window ended, passed on then",
            ["kind", "name"],
            registry=r,
        )
        self.alerts_routed = Counter(
            "pulseops_alerts_routed_total",
            "Alerts a route matched, by route name",
            ["route"],
            registry=r,
        )
        self.alerts_dropped = Counter(
            "pulseops_alerts_dropped_total",
            "Alerts dropped by a route (recorded, never an incident), by route name",
            ["route"],
            registry=r,
        )
        self.webhooks_rejected = Counter(
            "pulseops_webhooks_rejected_total",
            "Webhook deliveries rejected, by integration and reason",
            ["integration", "reason"],
            registry=r,
        )
        self.incidents_opened = Counter(
            "pulseops_incidents_opened_total",
            "Incidents opened, by service and severity",
            ["service", "severity"],
            registry=r,
        )
        self.heartbeats_missed = Counter(
            "pulseops_heartbeats_missed_total",
            "Heartbeats missed (an incident opened), by heartbeat name",
            ["heartbeat"],
            registry=r,
        )
        self.heartbeat_pings = Counter(
            "pulseops_heartbeat_pings_total",
            "Heartbeat pings received, by heartbeat name",
            ["heartbeat"],
            registry=r,
        )
        self.probe_up = Gauge(
            "pulseops_probe_up",
            "1 when the probe's last check succeeded, 0 when it failed, by probe id",
            ["probe"],
            registry=r,
        )
        self.slo_budget = Gauge(
            "pulseops_slo_error_budget_remaining",
            "Share of an SLO's error budget not yet spent over its window (1 untouched, 0 spent,"
            " negative overspent), by SLO id",
            ["slo"],
            registry=r,
        )
        self.slo_burn_rate = Gauge(
            "pulseops_slo_burn_rate",
            "An SLO's burn rate over each burn-rate window (1: the budget lasts the window),"
            " by SLO id and window",
            ["slo", "window"],
            registry=r,
        )
        self.probe_latency = Histogram(
            "pulseops_probe_latency_seconds",
            "Seconds each probe check took (to the status line, or the TCP connect), by probe id",
            ["probe"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=r,
        )
        self.auto_resolved = Counter(
            "pulseops_incidents_auto_resolved_total",
            "Incidents resolved after their service's auto_resolve_after of no alerts, by service",
            ["service"],
            registry=r,
        )
        self.acknowledge_latency = Histogram(
            "pulseops_incident_acknowledge_latency_seconds",
            "Seconds from an incident's trigger to its acknowledgement, by severity",
            ["severity"],
            buckets=RESPONSE_BUCKETS,
            registry=r,
        )
        self.resolve_latency = Histogram(
            "pulseops_incident_resolve_latency_seconds",
            "Seconds from an incident's trigger to its resolution, by severity",
            ["severity"],
            buckets=RESPONSE_BUCKETS,
            registry=r,
        )
        self.workflow_runs = Counter(
            "pulseops_workflow_runs_total",
            "Workflow runs finished, by workflow and result (succeeded, failed)",
            ["workflow", "result"],
            registry=r,
        )
        self.workflow_attempts = Counter(
            "pulseops_workflow_step_attempts_total",
            "Workflow step attempts, by step kind and outcome (done, failed, retry)",
            ["kind", "outcome"],
            registry=r,
        )
        self.transitions = Counter(
            "pulseops_incident_transitions_total",
            "Incident state changes, by resulting status",
            ["status"],
            registry=r,
        )
        self.slack_calls = Counter(
            "pulseops_slack_api_calls_total",
            "Slack Web API calls, by method and result (ok or the error)",
            ["method", "result"],
            registry=r,
        )
        self.slack_retries = Counter(
            "pulseops_slack_api_retries_total",
            "Slack Web API calls retried in place, by method",
            ["method"],
            registry=r,
        )
        self.outbox_delivered = Counter(
            "pulseops_outbox_delivered_total",
            "Outbox effects delivered, by kind",
            ["kind"],
            registry=r,
        )
        self.outbox_failed = Counter(
            "pulseops_outbox_failed_total",
            "Outbox effects given up (fatal Slack errors), by kind",
            ["kind"],
            registry=r,
        )
        self.outbox_depth = Gauge("pulseops_outbox_depth", "Undelivered outbox effects", registry=r)
        self.outbox_oldest_age = Gauge(
            "pulseops_outbox_oldest_age_seconds", "Age of the oldest undelivered effect", registry=r
        )
        self.outbox_lag = Gauge(
            "pulseops_outbox_lag_seconds",
            "Seconds the longest-waiting effect due for delivery has waited (0: none waits)",
            registry=r,
        )
        self.deadline_lag = Gauge(
            "pulseops_deadline_lag_seconds",
            "Seconds the earliest passed deadline not yet swept is late, by kind "
            "(escalation, handoff; 0: none)",
            ["kind"],
            registry=r,
        )
        self.job_last_success = Gauge(
            "pulseops_job_last_success_timestamp_seconds",
            "Unix time of each periodic job's last successful run on this replica, by job id",
            ["job"],
            registry=r,
        )
        self.watchdog_pings = Counter(
            "pulseops_watchdog_pings_total",
            "Watchdog pings, by result (ok, failed, or skipped_unhealthy: not sent because "
            "this replica is not ready)",
            ["result"],
            registry=r,
        )
        self.pages_sent = Counter(
            "pulseops_pages_sent_total", "Pages recorded, by target kind", ["kind"], registry=r
        )
        self.notifications = Counter(
            "pulseops_notifications_total",
            "Notifications beyond Slack by method type and result (sent, failed, retrying, "
            "throttled, cancelled)",
            ["type", "result"],
            registry=r,
        )
        self.escalation_steps = Counter(
            "pulseops_escalation_steps_total",
            "Escalation steps taken past a policy's first level, by trigger (timeout or manual)",
            ["trigger"],
            registry=r,
        )
        for trigger in ("timeout", "manual"):  # exported at 0 before the first escalation
            self.escalation_steps.labels(trigger=trigger)
        self.escalation_lateness = Histogram(
            "pulseops_escalation_lateness_seconds",
            "Seconds between an escalation deadline and its page being recorded",
            buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
            registry=r,
        )
        self.handoffs = Counter(
            "pulseops_handoffs_total",
            "Rotation handoffs recorded, by schedule",
            ["schedule"],
            registry=r,
        )
        self.http_latency = Histogram(
            "pulseops_http_request_duration_seconds",
            "HTTP request latency by route",
            ["route", "method", "status"],
            registry=r,
        )

        self.scheduler_jobs = Counter(
            "pulseops_scheduler_job_runs_total",
            "Scheduler job runs, by job id and result (ok, error, missed, skipped)",
            ["job", "result"],
            registry=r,
        )
        self.home_publishes = Counter(
            "pulseops_home_publishes_total",
            "App Home refreshes, by result (published, unchanged, or the Slack error)",
            ["result"],
            registry=r,
        )
        self.home_viewers = Gauge(
            "pulseops_home_viewers",
            "Users who opened the Home tab recently (kept up to date by this replica)",
            registry=r,
        )

    def on_job_event(self, event: JobEvent) -> None:
        """APScheduler listener: count one job run (or miss, or skip) by job id and result."""
        result = _JOB_RESULTS.get(event.code)
        if result is not None:
            self.scheduler_jobs.labels(job=str(event.job_id), result=result).inc()

    def watch_scheduler(self, scheduler: BaseScheduler) -> None:
        """Count every job run of `scheduler` (an APScheduler 3 scheduler)."""
        mask = EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES
        scheduler.add_listener(self.on_job_event, mask)

    def render(self) -> bytes:
        return generate_latest(self.registry)
