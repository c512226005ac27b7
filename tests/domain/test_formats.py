"""Parsers of Grafana, Datadog, Slack incoming-webhook and Opsgenie bodies, fed the bodies of
those tools' public documentation (tests/fixtures/webhooks/README.md says where each is from)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from bot.domain import AlertStatus, Link, Severity
from bot.ingest.formats import parse_datadog, parse_grafana
from bot.ingest.opsgenie import parse_opsgenie
from bot.ingest.slack_webhook import SlackWebhookOptions, parse_slack_webhook, plain
from bot.ingest.wire import validation_problems

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
FIXTURES = Path(__file__).parent.parent / "fixtures" / "webhooks"


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())  # type: ignore[no-any-return]


# ---- Grafana ----------------------------------------------------------------------------------


def test_grafana_documented_body_is_two_alerts_of_one_group() -> None:
    first, second = parse_grafana(fixture("grafana_firing.json"), NOW)
    assert (first.fingerprint, second.fingerprint) == ("c6eadffa33fcdf37", "bc97ff14869b13e3")
    assert first.group_key == second.group_key == "{}:{}"
    assert first.status is AlertStatus.FIRING
    assert first.title == "This alert was triggered for zone us-1"
    assert first.description == "The system has high memory usage\nValues: B=44.2394, C=1"
    assert first.labels == {"alertname": "High memory usage", "team": "blue", "zone": "us-1"}
    assert first.links == (
        Link("https://play.grafana.org/alerting/1afz29v7z/edit", "Alert rule"),
        Link("https://myrunbook.com/runbook/1234", "Runbook"),
        Link(
            "https://play.grafana.org/alerting/silence/new?alertmanager=grafana&matchers="
            "alertname%3DT2%2Cteam%3Dblue%2Czone%3Dus-1",
            "Silence",
        ),
    )
    assert first.source == "grafana"
    assert first.starts_at == datetime(2021, 10, 12, 7, 51, 3, 157076, tzinfo=UTC)
    assert first.ends_at is None


def test_grafana_resolved_and_dashboard_links() -> None:
    body = fixture("grafana_firing.json")
    body["status"] = "resolved"
    item = body["alerts"][0]
    item.update(
        status="resolved",
        endsAt="2021-10-12T10:01:03+02:00",
        dashboardURL="https://play.grafana.org/d/abc",
        panelURL="https://play.grafana.org/d/abc?viewPanel=2",
    )
    item["labels"].update(service="payment-api", severity="critical")
    alert = parse_grafana(body, NOW)[0]
    assert alert.status is AlertStatus.RESOLVED
    assert alert.ends_at == datetime(2021, 10, 12, 8, 1, 3, tzinfo=UTC)
    assert (alert.service, alert.severity) == ("payment-api", Severity.SEV1)
    assert [link.text for link in alert.links] == [
        "Alert rule",
        "Dashboard",
        "Panel",
        "Runbook",
        "Silence",
    ]


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (lambda b: b.update(alerts=[]), "alerts"),
        (lambda b: b["alerts"][0].update(status="pending"), "alerts.0.status"),
        (lambda b: b["alerts"][0].update(labels={"a": 1}), "alerts.0.labels.a"),
        (lambda b: b["alerts"][0].update(values={"B": "x"}), "alerts.0.values.B"),
    ],
)
def test_grafana_bad_bodies_name_the_field(change: Any, path: str) -> None:
    body = copy.deepcopy(fixture("grafana_firing.json"))
    change(body)
    with pytest.raises(ValidationError) as info:
        parse_grafana(body, NOW)
    assert path in validation_problems(info.value)


# ---- Datadog ----------------------------------------------------------------------------------


def test_datadog_default_payload_triggers_and_recovered_title_resolves() -> None:
    (alert,) = parse_datadog(fixture("datadog_default.json"), NOW)
    assert alert.title == "system.load.1 over host:my-host"
    assert alert.status is AlertStatus.FIRING
    assert alert.labels["event_type"] == "metric_alert_monitor"
    recovered = fixture("datadog_default.json")
    recovered["title"] = "[Recovered] system.load.1 over host:my-host"
    (resolved,) = parse_datadog(recovered, NOW)
    assert resolved.status is AlertStatus.RESOLVED
    assert resolved.fingerprint == alert.fingerprint  # the same alert, by its bare title


def test_datadog_recommended_payload() -> None:
    (alert,) = parse_datadog(fixture("datadog_recommended.json"), NOW)
    assert alert.fingerprint == "7052587391853734214"  # $ALERT_CYCLE_KEY
    assert alert.severity is Severity.SEV1  # $ALERT_PRIORITY P1
    assert alert.labels["role"] == "database" and alert.labels["env"] == "production"
    assert alert.labels["hostname"] == "my-host"
    assert alert.links == (
        Link("https://app.datadoghq.com/event/jump_to?event_id=1234567", "Datadog"),
        Link("https://p.datadoghq.com/path-to-snapshot", "Snapshot"),
    )
    assert alert.description.startswith("system.load.1 over host:my-host was > 0")
    body = fixture("datadog_recommended.json")
    body.update(alert_transition="Recovered", alert_type="success", title="[Recovered] x")
    (resolved,) = parse_datadog(body, NOW)
    assert resolved.status is AlertStatus.RESOLVED and resolved.fingerprint == alert.fingerprint


def test_datadog_unset_variables_read_as_absent_and_a_title_is_required() -> None:
    body = {
        "title": "[Warn] disk",
        "alert_cycle_key": "",
        "aggreg_key": "",
        "alert_type": "warning",
    }
    (alert,) = parse_datadog(body, NOW)
    assert alert.severity is Severity.SEV3 and alert.title == "disk"
    with pytest.raises(ValidationError) as info:
        parse_datadog({"body": "no title", "title": ""}, NOW)
    assert list(validation_problems(info.value)) == ["title"]


# ---- Slack incoming webhook -------------------------------------------------------------------


def test_slack_attachment_message() -> None:
    (alert,) = parse_slack_webhook(fixture("slack_attachments.json"), NOW)
    assert alert.title == alert.fingerprint == "Slack API Documentation"
    assert alert.status is AlertStatus.FIRING
    assert alert.labels == {"Priority": "High"}
    assert alert.links == (Link("https://api.slack.com/", "Link"),)
    assert alert.description == "Optional text that appears within the attachment"


def test_slack_blocks_message_and_link_markup() -> None:
    (alert,) = parse_slack_webhook(fixture("slack_blocks.json"), NOW)
    assert alert.title == "Danny Torrence left the following review for your property:"
    assert "Overlook Hotel" in alert.description and "<https://" not in alert.description
    assert plain("see <https://x.example|the build> and <https://y.example> <!here>") == (
        "see the build and https://y.example @here"
    )


def test_slack_resolution_and_dedup_follow_the_integration_options() -> None:
    options = SlackWebhookOptions(
        dedup_pattern=r"^\[([^\]]+)\]",
        resolved_colors=("good", "#2EB886"),
        resolved_pattern=r"\b(up|resolved)\b",
    )
    down = {"text": "[Checkout API] [🔴 Down] timeout after 48s"}
    up = {"text": "[Checkout API] [✅ Up] 200 OK"}
    (fired,) = parse_slack_webhook(down, NOW, options)
    (cleared,) = parse_slack_webhook(up, NOW, options)
    assert fired.fingerprint == cleared.fingerprint == "Checkout API"
    assert (fired.status, cleared.status) == (AlertStatus.FIRING, AlertStatus.RESOLVED)
    # the documented attachment is green (#2eb886): a resolved colour here
    (green,) = parse_slack_webhook(fixture("slack_attachments.json"), NOW, options)
    assert green.status is AlertStatus.RESOLVED
    # without options nothing resolves
    assert parse_slack_webhook(up, NOW)[0].status is AlertStatus.FIRING
    by_field = SlackWebhookOptions(dedup_field="Priority")
    assert parse_slack_webhook(fixture("slack_attachments.json"), NOW, by_field)[0].fingerprint == (
        "High"
    )


def test_slack_message_without_text_is_refused_naming_text() -> None:
    with pytest.raises(ValidationError) as info:
        parse_slack_webhook({"text": "  ", "attachments": [{"color": "danger"}]}, NOW)
    assert list(validation_problems(info.value)) == ["text"]
    with pytest.raises(ValueError, match="regular expression"):
        SlackWebhookOptions(dedup_pattern="([")


# ---- Opsgenie ---------------------------------------------------------------------------------


def test_opsgenie_without_alias_retries_deduplicate_and_details_make_links() -> None:
    body = {
        "message": "Disk full",
        "entity": "db-1",
        "details": {"grafana": "https://grafana.example/d/x", "service": "payment-api"},
    }
    (first,) = parse_opsgenie(body, NOW)
    (again,) = parse_opsgenie(body, NOW)
    assert first.fingerprint == again.fingerprint
    assert first.service == "payment-api"
    assert first.links == (Link("https://grafana.example/d/x", "grafana"),)
    assert first.severity is Severity.SEV3  # no priority: Opsgenie's default P3
