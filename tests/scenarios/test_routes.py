"""Routes, classifier, grouping and rising severity through the running app (webhooks in,
database, timeline and the Slack emulator out)."""

from __future__ import annotations

from typing import Any

import pytest

from bot.clock import ManualClock
from bot.config import PulseOpsConfig, parse_config
from tests.conftest import Harness, alertmanager_payload
from tests.helpers import ONCALL_YAML, WEDNESDAY, all_text, dms

pytestmark = pytest.mark.asyncio
BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)

ROUTING_YAML = (
    ONCALL_YAML.format(first="5m", second="10m").replace(
        "  - id: payment-api\n    name: Payment API\n    team: payments\n",
        "  - id: payment-api\n    name: Payment API\n    team: payments\n"
        "    escalation_policy_by_severity: {SEV1: payments-critical}\n",
    )
    + """  - id: payments-critical
    levels:
      - delay: 5m
        targets: [{user: "U0CAROL01"}]
routes:
  - name: drop-dev
    matchers: ['env="dev"']
    drop: true
  - name: payment-failures
    matchers: ['__title__=~"(?i)payment failed.*"']
    service: payment-api
    severity: SEV1
    category: payments
  - name: tag-databases
    matchers: ['db!=""']
    category: database
    continue: true
  - name: databases-to-search
    matchers: ['db!=""']
    service: search-api
    severity: SEV2
    category: ignored-because-set-above
  - name: node-alerts
    matchers: ['alertname=~"Node.*"']
    service: search-api
    group_by: [cluster]
    group_window: 10m
classifier:
  categories: {database: [postgres, deadlock, replication], network: [dns, "packet loss"]}
  severities: {SEV1: [outage, "data loss"], SEV2: [degraded, "error rate"]}
"""
)


@pytest.fixture
def config() -> PulseOpsConfig:
    return parse_config(ROUTING_YAML, source="routing.yml", environ={})


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(WEDNESDAY)


async def post_generic(harness: Harness, body: Any) -> dict[str, Any]:
    status, answer = await harness.post_alert(body, integration="generic")
    assert status == 202, answer
    await harness.settle()
    return answer  # type: ignore[no-any-return]


async def post_am(harness: Harness, **alert: Any) -> dict[str, Any]:
    status, answer = await harness.post_alert(alertmanager_payload(**alert))
    assert status == 202, answer
    await harness.settle()
    return answer  # type: ignore[no-any-return]


def node_alert(name: str, cluster: str, status: str = "firing") -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": name, "cluster": cluster, "instance": f"{name}-{cluster}"},
        "annotations": {"summary": f"{name} in {cluster}"},
        "startsAt": "2026-11-25T11:58:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph",
        "fingerprint": f"{name}-{cluster}",
    }


def kinds(incident: dict[str, Any], kind: str) -> list[str]:
    return [e["text"] for e in incident["timeline"] if e["kind"] == kind]


@BOTH
async def test_payment_failure_without_labels_lands_as_sev1_for_the_payments_team(
    harness: Harness,
) -> None:
    answer = await post_generic(harness, {"title": "Payment failed for order 8812"})
    (result,) = answer["results"]
    assert result["outcome"] == "created"
    incident = await harness.incident(result["incident_id"])
    assert (incident["severity"], incident["service"], incident["team"], incident["category"]) == (
        "SEV1",
        "payment-api",
        "payments",
        "payments",
    )
    (routed,) = kinds(incident, "routed")
    assert "service payment-api (from route payment-failures)" in routed
    assert "severity SEV1 (from route payment-failures)" in routed
    # SEV1 on payment-api escalates by payments-critical: Carol is paged, not the rotation
    assert len(dms(harness, "U0CAROL01")) == 1
    assert dms(harness, "U0BOB0001") == []
    message = harness.emu.messages(incident["slack"]["channel_id"])[0]
    assert "*Category*\\npayments" in all_text(message)


async def test_a_drop_route_records_and_counts_but_opens_nothing(harness: Harness) -> None:
    answer = await post_generic(
        harness, {"title": "Payment failed in a test", "labels": {"env": "dev"}}
    )
    assert answer["results"][0]["outcome"] == "dropped"
    status, listing = await harness.get("/api/v1/incidents")
    assert status == 200 and listing["total"] == 0
    assert harness.emu.calls_to("chat.postMessage") == []
    _, metrics = await harness.get("/metrics", token=None)
    assert 'pulseops_alerts_dropped_total{route="drop-dev"} 1.0' in metrics
    assert 'pulseops_alerts_routed_total{route="drop-dev"} 1.0' in metrics
    # recorded: sent again, it is counted on its record
    await post_generic(harness, {"title": "Payment failed in a test", "labels": {"env": "dev"}})
    status, held = await harness.get("/api/v1/suppressed-alerts")
    assert status == 200, held
    (record,) = held["alerts"] if isinstance(held, dict) else held
    assert (record["reason"], record["by"], record["occurrences"]) == (
        "dropped",
        "route drop-dev",
        2,
    )


async def test_continue_lets_later_routes_fill_what_earlier_ones_left(harness: Harness) -> None:
    answer = await post_generic(harness, {"title": "Lag on replica", "labels": {"db": "orders"}})
    incident = await harness.incident(answer["results"][0]["incident_id"])
    # tag-databases set the category and continued; databases-to-search set service and
    # severity, and its own category did not override the first
    assert (incident["category"], incident["service"], incident["severity"]) == (
        "database",
        "search-api",
        "SEV2",
    )
    (routed,) = kinds(incident, "routed")
    assert "category database (from route tag-databases)" in routed
    assert "service search-api (from route databases-to-search)" in routed


async def test_the_classifier_fills_what_no_route_and_no_label_set(harness: Harness) -> None:
    answer = await post_generic(
        harness,
        {"title": "Replication stalled on the primary", "description": "risk of DATA  LOSS"},
    )
    incident = await harness.incident(answer["results"][0]["incident_id"])
    assert (incident["category"], incident["severity"]) == ("database", "SEV1")
    (routed,) = kinds(incident, "routed")
    assert "classifier keyword 'DATA  LOSS'" in routed
    # a label beats the classifier, and whole words only: "outages" is not "outage"
    answer = await post_generic(
        harness,
        {"title": "Postgres outages report", "severity": "warning", "dedup_key": "report"},
    )
    incident = await harness.incident(answer["results"][0]["incident_id"])
    assert (incident["category"], incident["severity"]) == ("database", "SEV3")


@BOTH
async def test_a_route_groups_related_alerts_from_any_source_within_its_window(
    harness: Harness,
) -> None:
    first = await post_am(
        harness,
        alerts=[node_alert("NodeDown", "eu-1")],
        group_key='{}:{alertname="NodeDown"}',
        alertname="NodeDown",
    )
    incident_id = first["results"][0]["incident_id"]
    # another alert of the cluster, from another integration, joins it
    joined = await post_generic(
        harness,
        {"title": "Disk full", "labels": {"alertname": "NodeDiskFull", "cluster": "eu-1"}},
    )
    assert joined["results"][0] == {
        **joined["results"][0],
        "outcome": "grouped",
        "incident_id": incident_id,
    }
    incident = await harness.incident(incident_id)
    (added,) = kinds(incident, "alert_added")
    assert f"grouped into INC-{incident_id} by route node-alerts" in added
    # another cluster is another group
    other = await post_generic(
        harness, {"title": "Disk full", "labels": {"alertname": "NodeDiskFull", "cluster": "us-1"}}
    )
    assert other["results"][0]["outcome"] == "created"
    # after the window, a new alert of the same group opens a new incident, while the alerts
    # already grouped still repeat and resolve on theirs
    harness.clock.advance(11 * 60)
    late = await post_generic(
        harness,
        {"title": "Load high", "labels": {"alertname": "NodeLoad", "cluster": "eu-1"}},
    )
    assert late["results"][0]["outcome"] == "created"
    assert late["results"][0]["incident_id"] != incident_id
    again = await post_am(
        harness,
        alerts=[node_alert("NodeDown", "eu-1")],
        group_key='{}:{alertname="NodeDown"}',
        alertname="NodeDown",
    )
    assert again["results"][0]["outcome"] == "deduplicated"
    assert again["results"][0]["incident_id"] == incident_id
    resolved = await post_am(
        harness,
        alerts=[node_alert("NodeDown", "eu-1", status="resolved")],
        group_key='{}:{alertname="NodeDown"}',
        alertname="NodeDown",
        status="resolved",
    )
    assert resolved["results"][0]["incident_id"] == incident_id
    assert resolved["results"][0]["outcome"] == "alert_resolved"  # the disk alert still fires


@BOTH
async def test_severity_rises_with_a_more_severe_alert_and_never_falls_by_itself(
    harness: Harness,
) -> None:
    warning = await post_am(harness, severity="warning")
    incident_id = warning["results"][0]["incident_id"]
    incident = await harness.incident(incident_id)
    assert incident["severity"] == "SEV3"
    assert len(dms(harness, "U0BOB0001")) == 1  # the rotation, by payments-default
    channel = incident["slack"]["channel_id"]
    # the same alert turns critical: SEV1, every copy re-rendered, the SEV1 policy pages
    critical = await post_am(harness, severity="critical")
    assert critical["results"][0]["outcome"] == "deduplicated"
    incident = await harness.incident(incident_id)
    assert incident["severity"] == "SEV1"
    (raised,) = kinds(incident, "severity_changed")
    assert raised.startswith("Severity raised from SEV3 to SEV1: alert ")
    assert "(from label severity)" in raised
    assert any("payments-critical" in t for t in kinds(incident, "escalation_policy_changed"))
    assert len(dms(harness, "U0CAROL01")) == 1
    pinned = harness.emu.messages(channel)[0]
    assert "*Severity*\\nSEV1" in all_text(pinned)
    announcement = harness.emu.messages("C0INCIDENT")[-1]
    assert "SEV1" in all_text(announcement)
    # back to warning: the incident stays SEV1 (a person lowers it)
    await post_am(harness, severity="warning")
    assert (await harness.incident(incident_id))["severity"] == "SEV1"
    assert len(kinds(await harness.incident(incident_id), "severity_changed")) == 1


async def test_a_critical_alert_grouped_into_a_warning_incident_raises_it(
    harness: Harness,
) -> None:
    group = '{}:{alertname="HighErrorRate"}'
    first = await post_am(harness, severity="warning", fingerprint="one", group_key=group)
    incident_id = first["results"][0]["incident_id"]
    joined = await post_am(harness, severity="critical", fingerprint="two", group_key=group)
    assert joined["results"][0]["outcome"] == "grouped"
    incident = await harness.incident(incident_id)
    assert incident["severity"] == "SEV1"
    assert len(kinds(incident, "severity_changed")) == 1
