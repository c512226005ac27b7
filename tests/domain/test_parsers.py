"""Webhook body parsers: Alertmanager v4, the generic format and PagerDuty Events v2."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from bot.domain import Alert, AlertStatus, Link, Severity
from bot.ingest import (
    PARSERS,
    parse_alertmanager,
    parse_generic,
    parse_pagerduty,
    validation_problems,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

ALERTMANAGER_FIRING: dict[str, Any] = {
    "version": "4",
    "groupKey": '{}/{severity="critical"}:{alertname="HighErrorRate"}',
    "truncatedAlerts": 0,
    "status": "firing",
    "receiver": "pulseops",
    "groupLabels": {"alertname": "HighErrorRate"},
    "commonLabels": {"alertname": "HighErrorRate", "severity": "critical"},
    "commonAnnotations": {},
    "externalURL": "http://alertmanager.example.org:9093",
    "alerts": [
        {
            "status": "firing",
            "labels": {
                "alertname": "HighErrorRate",
                "instance": "payment-api-0:8080",
                "job": "payment-api",
                "service": "payment-api",
                "severity": "critical",
            },
            "annotations": {
                "summary": "Payment API 5xx rate above 5%",
                "description": "5xx ratio is 7.2% over the last 5 minutes.",
                "runbook_url": "https://runbooks.example.org/payment-api/5xx",
                "dashboard_url": "https://grafana.example.org/d/payments",
            },
            "startsAt": "2026-03-01T11:52:26.739266876+02:00",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.example.org:9090/graph?g0.expr=rate%28x%29",
            "fingerprint": "1a30ba71cca2921f",
        },
        {
            "status": "firing",
            "labels": {"alertname": "HighErrorRate", "instance": "payment-api-1:8080"},
            "annotations": {},
            "startsAt": "2026-03-01T09:53:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "",
        },
    ],
}


def alertmanager_resolved() -> dict[str, Any]:
    body = copy.deepcopy(ALERTMANAGER_FIRING)
    body["status"] = "resolved"
    del body["alerts"][1]
    body["alerts"][0]["status"] = "resolved"
    body["alerts"][0]["endsAt"] = "2026-03-01T10:30:00Z"
    return body


# --------------------------------------------------------------------------- Alertmanager


def test_alertmanager_firing() -> None:
    first, second = parse_alertmanager(ALERTMANAGER_FIRING, NOW)
    assert first == Alert(
        fingerprint="1a30ba71cca2921f",
        group_key='{}/{severity="critical"}:{alertname="HighErrorRate"}',
        status=AlertStatus.FIRING,
        title="Payment API 5xx rate above 5%",
        description="5xx ratio is 7.2% over the last 5 minutes.",
        severity=Severity.SEV1,
        service="payment-api",
        labels=ALERTMANAGER_FIRING["alerts"][0]["labels"],
        links=(
            Link("http://prometheus.example.org:9090/graph?g0.expr=rate%28x%29", "Graph"),
            Link("https://runbooks.example.org/payment-api/5xx", "Runbook"),
            Link("https://grafana.example.org/d/payments", "Dashboard"),
        ),
        source="alertmanager",
        starts_at=datetime(2026, 3, 1, 9, 52, 26, 739266, tzinfo=UTC),
        ends_at=None,
    )
    # No fingerprint sent: a stable digest of the labels; no summary: the alert name.
    assert second.title == "HighErrorRate"
    assert second.group_key == first.group_key
    assert second.severity is None and second.service is None and second.links == ()
    assert len(second.fingerprint) == 64
    again = parse_alertmanager(copy.deepcopy(ALERTMANAGER_FIRING), NOW)[1]
    assert again.fingerprint == second.fingerprint


def test_alertmanager_resolved() -> None:
    (alert,) = parse_alertmanager(alertmanager_resolved(), NOW)
    assert alert.status is AlertStatus.RESOLVED
    assert alert.fingerprint == "1a30ba71cca2921f"
    assert alert.ends_at == datetime(2026, 3, 1, 10, 30, tzinfo=UTC)


def test_alertmanager_ignores_keys_it_does_not_read() -> None:
    body = copy.deepcopy(ALERTMANAGER_FIRING)
    body["orgId"] = 1
    body["alerts"][0]["silenceURL"] = "https://grafana.example.org/silence"
    assert len(parse_alertmanager(body, NOW)) == 2


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda b: b.update(alerts=[]), "alerts"),
        (lambda b: b.pop("alerts"), "alerts"),
        (lambda b: b["alerts"][0].pop("labels"), "alerts.0.labels"),
        (lambda b: b["alerts"][0]["labels"].update(cpu=3), "alerts.0.labels.cpu"),
        (lambda b: b["alerts"][1].update(status="pending"), "alerts.1.status"),
        (lambda b: b["alerts"][0].update(startsAt="yesterday"), "alerts.0.startsAt"),
    ],
)
def test_alertmanager_bad_bodies_name_the_field(mutate: Any, path: str) -> None:
    body = copy.deepcopy(ALERTMANAGER_FIRING)
    mutate(body)
    with pytest.raises(ValidationError) as info:
        parse_alertmanager(body, NOW)
    assert list(validation_problems(info.value)) == [path]


@pytest.mark.parametrize("body", [None, [], "text", 3])
def test_non_object_bodies(body: Any) -> None:
    for kind in ("alertmanager", "pagerduty"):
        with pytest.raises(ValidationError) as info:
            PARSERS[kind](body, NOW)
        assert list(validation_problems(info.value)) == ["body"]


# --------------------------------------------------------------------------- generic


def test_generic_single_minimal() -> None:
    (alert,) = parse_generic({"title": "  Disk almost full  "}, NOW)
    assert alert.title == "Disk almost full"
    assert alert.status is AlertStatus.FIRING
    assert alert.severity is None and alert.service is None
    assert alert.fingerprint == alert.group_key
    assert alert.starts_at == NOW and alert.ends_at is None
    assert alert.source == "generic"
    # The same title and service are the same alert.
    assert parse_generic({"title": "Disk almost full"}, NOW)[0].fingerprint == alert.fingerprint
    other = parse_generic({"title": "Disk almost full", "service": "search-api"}, NOW)[0]
    assert other.fingerprint != alert.fingerprint


def test_generic_full_and_batch() -> None:
    body = [
        {
            "title": "Checkout error rate above 5%",
            "description": "5xx ratio is 7.2% over 5m",
            "severity": "critical",
            "service": "checkout-web",
            "dedup_key": "checkout-5xx",
            "labels": {"region": "eu-west-1"},
            "links": [{"url": "https://grafana.example.org/d/abc", "text": "Dashboard"}],
            "extra": {"ignored": True},
        },
        {
            "title": "Checkout error rate above 5%",
            "dedup_key": "checkout-5xx",
            "status": "resolved",
        },
    ]
    fired, resolved = parse_generic(body, NOW)
    assert fired.fingerprint == fired.group_key == "checkout-5xx"
    assert fired.severity is Severity.SEV1
    assert fired.service == "checkout-web"
    assert fired.labels == {"region": "eu-west-1"}
    assert fired.links == (Link("https://grafana.example.org/d/abc", "Dashboard"),)
    assert resolved.status is AlertStatus.RESOLVED
    assert resolved.fingerprint == "checkout-5xx"
    assert resolved.ends_at == NOW


@pytest.mark.parametrize(
    ("word", "severity"),
    [
        ("SEV2", Severity.SEV2),
        ("sev4", Severity.SEV4),
        ("error", Severity.SEV2),
        ("P3", Severity.SEV3),
        (1, Severity.SEV1),
    ],
)
def test_generic_severity_words(word: Any, severity: Severity) -> None:
    assert parse_generic({"title": "t", "severity": word}, NOW)[0].severity is severity


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, {"title"}),
        ({"title": "   "}, {"title"}),
        ({"title": "x" * 1001}, {"title"}),
        ({"title": "t", "severity": "apocalyptic"}, {"severity"}),
        ({"title": "t", "status": "open"}, {"status"}),
        ({"title": "t", "labels": {"n": 1}}, {"labels.n"}),
        ({"title": "t", "links": [{"text": "no url"}]}, {"links.0.url"}),
        ({"title": "t", "links": [{"url": "javascript:alert(1)"}]}, {"links.0.url"}),
        ({"title": "t", "dedup_key": "k" * 256}, {"dedup_key"}),
        ([{"title": "ok"}, {"title": 5}], {"1.title"}),
        ([], {"body"}),
        ("just text", {"body"}),
    ],
)
def test_generic_bad_bodies(body: Any, expected: set[str]) -> None:
    with pytest.raises(ValidationError) as info:
        parse_generic(body, NOW)
    problems = validation_problems(info.value)
    assert set(problems) == expected
    assert all(problems.values())


def test_generic_unknown_severity_message_says_what_to_send() -> None:
    with pytest.raises(ValidationError) as info:
        parse_generic({"title": "t", "severity": "apocalyptic"}, NOW)
    assert "SEV1, SEV2, SEV3 or SEV4" in validation_problems(info.value)["severity"]


# --------------------------------------------------------------------------- PagerDuty


PAGERDUTY_TRIGGER: dict[str, Any] = {
    "routing_key": "R0UTINGKEY0123456789012345678901",
    "event_action": "trigger",
    "dedup_key": "search-latency-p99",
    "payload": {
        "summary": "Search API p99 latency above 800ms",
        "timestamp": "2026-03-01T11:58:00.315+0000",
        "source": "search-api-7.prod",
        "severity": "error",
        "component": "elasticsearch",
        "group": "search",
        "class": "latency",
        "custom_details": {"service": "search-api", "p99_ms": 912},
    },
    "links": [{"href": "https://grafana.example.org/d/search", "text": "Dashboard"}],
    "images": [{"src": "https://grafana.example.org/render/search.png"}],
    "client": "Grafana",
    "client_url": "https://grafana.example.org",
}


def test_pagerduty_trigger() -> None:
    (alert,) = parse_pagerduty(PAGERDUTY_TRIGGER, NOW)
    assert alert.status is AlertStatus.FIRING
    assert alert.fingerprint == alert.group_key == "search-latency-p99"
    assert alert.title == "Search API p99 latency above 800ms"
    assert alert.severity is Severity.SEV2
    assert alert.service == "search-api"
    assert alert.labels == {
        "component": "elasticsearch",
        "group": "search",
        "class": "latency",
        "source": "search-api-7.prod",
    }
    assert alert.links == (
        Link("https://grafana.example.org/d/search", "Dashboard"),
        Link("https://grafana.example.org", "Grafana"),
    )
    assert "p99_ms: 912" in alert.description
    assert alert.starts_at == datetime(2026, 3, 1, 11, 58, 0, 315000, tzinfo=UTC)
    assert alert.source == "pagerduty"


def test_pagerduty_trigger_without_dedup_key_is_stable_across_retries() -> None:
    body = copy.deepcopy(PAGERDUTY_TRIGGER)
    del body["dedup_key"]
    first = parse_pagerduty(body, NOW)[0].fingerprint
    assert parse_pagerduty(copy.deepcopy(body), NOW)[0].fingerprint == first
    body["payload"]["source"] = "search-api-8.prod"
    assert parse_pagerduty(body, NOW)[0].fingerprint != first


@pytest.mark.parametrize(
    ("action", "status"),
    [("acknowledge", AlertStatus.ACKNOWLEDGED), ("resolve", AlertStatus.RESOLVED)],
)
def test_pagerduty_acknowledge_and_resolve(action: str, status: AlertStatus) -> None:
    body = {"routing_key": "R0UTINGKEY", "dedup_key": "search-latency-p99", "event_action": action}
    (alert,) = parse_pagerduty(body, NOW)
    assert alert.status is status
    assert alert.fingerprint == "search-latency-p99"
    assert alert.ends_at == (NOW if status is AlertStatus.RESOLVED else None)


@pytest.mark.parametrize(
    ("pd", "severity"),
    [
        ("critical", Severity.SEV1),
        ("error", Severity.SEV2),
        ("warning", Severity.SEV3),
        ("info", Severity.SEV4),
    ],
)
def test_pagerduty_severity_mapping(pd: str, severity: Severity) -> None:
    body = copy.deepcopy(PAGERDUTY_TRIGGER)
    body["payload"]["severity"] = pd
    assert parse_pagerduty(body, NOW)[0].severity is severity


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"event_action": "trigger", "payload": {"source": "h"}}, "payload.summary"),
        ({"event_action": "trigger"}, "payload.summary"),
        ({"event_action": "resolve"}, "dedup_key"),
        ({"event_action": "acknowledge", "payload": {"summary": "s"}}, "dedup_key"),
        ({"event_action": "escalate", "dedup_key": "k"}, "event_action"),
        ({"dedup_key": "k"}, "event_action"),
        (
            {"event_action": "trigger", "payload": {"summary": "s", "severity": "bad"}},
            "payload.severity",
        ),
        (
            {"event_action": "trigger", "payload": {"summary": "s", "timestamp": "soon"}},
            "payload.timestamp",
        ),
    ],
)
def test_pagerduty_bad_bodies(body: dict[str, Any], path: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_pagerduty(body, NOW)
    assert list(validation_problems(info.value)) == [path]


def test_custom_details_service_must_be_a_string() -> None:
    body = copy.deepcopy(PAGERDUTY_TRIGGER)
    body["payload"]["custom_details"] = {"service": {"name": "search-api"}}
    assert parse_pagerduty(body, NOW)[0].service is None
    body["payload"]["custom_details"] = "free text"
    alert = parse_pagerduty(body, NOW)[0]
    assert alert.service is None and alert.description == "free text"


def test_parsers_are_keyed_by_integration_type() -> None:
    assert set(PARSERS) == {
        "alertmanager",
        "generic",
        "pagerduty",
        "opsgenie",
        "grafana",
        "datadog",
        "slack-webhook",
    }
