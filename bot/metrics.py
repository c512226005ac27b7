"""Prometheus metrics, one registry per app instance (several apps can run in one test process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


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
        self.pages_sent = Counter(
            "pulseops_pages_sent_total", "Pages recorded, by target kind", ["kind"], registry=r
        )
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

    def render(self) -> bytes:
        return generate_latest(self.registry)
