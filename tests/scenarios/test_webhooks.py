"""Alerts in over HTTP, as monitors send them: incidents, channels and messages out."""

from __future__ import annotations

import json
import logging

import pytest

from bot.domain.naming import VALID_CHANNEL_NAME
from bot.logs import JsonFormatter
from tests.conftest import API_TOKEN, Harness, alertmanager_payload
from tests.helpers import all_text, buttons

pytestmark = pytest.mark.asyncio


async def test_alertmanager_alert_opens_incident_channel_and_messages(harness: Harness) -> None:
    status, body = await harness.post_alert(alertmanager_payload())
    assert status == 202, body
    assert body["results"][0]["outcome"] == "created"
    incident_id = body["results"][0]["incident_id"]
    await harness.settle()

    incident = await harness.incident(incident_id)
    assert incident["title"] == "Checkout error rate above 5%"
    assert incident["severity"] == "SEV1"  # severity=critical
    assert incident["service"] == "payment-api" and incident["team"] == "payments"
    assert incident["status"] == "triggered"
    assert [e["kind"] for e in incident["timeline"]] == ["triggered"]
    assert incident["alerts"][0]["fingerprint"] == "a1b2c3d4e5f60001"

    channel_id = incident["slack"]["channel_id"]
    channel = harness.emu.channels[channel_id]
    assert channel.name == f"inc-{incident_id}-checkout-error-rate-above-5"
    assert VALID_CHANNEL_NAME.match(channel.name)
    assert {"U0ALICE01", "U0BOB0001"} <= set(channel.members)
    assert "Checkout error rate" in channel.topic
    (message,) = harness.emu.messages(channel_id)
    assert message["ts"] == incident["slack"]["message_ts"]
    assert message["pinned"]
    assert buttons(message) == ["incident_acknowledge", "incident_resolve"]

    (announcement,) = harness.emu.messages("C0INCIDENT")
    assert buttons(announcement) == ["incident_acknowledge", "incident_resolve"]
    assert f"<#{channel_id}>" in all_text(announcement)  # links to the incident channel
    assert announcement["text"]  # notification text beside the blocks


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
async def test_repeat_of_same_alert_is_deduplicated(harness: Harness) -> None:
    _, first = await harness.post_alert(alertmanager_payload())
    incident_id = first["results"][0]["incident_id"]
    for _ in range(5):
        status, body = await harness.post_alert(alertmanager_payload())
        assert status == 202
        assert body["results"][0] == {
            "fingerprint": "a1b2c3d4e5f60001",
            "outcome": "deduplicated",
            "incident_id": incident_id,
            "incident": f"INC-{incident_id}",
        }
    await harness.settle()
    incident = await harness.incident(incident_id)
    assert incident["alert_count"] == 6
    assert incident["alerts"][0]["occurrences"] == 6
    # one note for the repeats within the interval, not one per repeat
    assert [e["kind"] for e in incident["timeline"]] == ["triggered"]
    harness.clock.advance(3600)
    await harness.post_alert(alertmanager_payload())
    incident = await harness.incident(incident_id)
    assert [e["kind"] for e in incident["timeline"]] == ["triggered", "alert_repeated"]
    _, listing = await harness.get("/api/v1/incidents")
    assert listing["total"] == 1
    assert len(harness.emu.calls_to("conversations.create")) == 1


async def test_new_alert_in_same_group_joins_the_incident(harness: Harness) -> None:
    _, first = await harness.post_alert(alertmanager_payload())
    incident_id = first["results"][0]["incident_id"]
    await harness.settle()
    second = alertmanager_payload(fingerprint="a1b2c3d4e5f60002")
    second["alerts"][0]["labels"]["instance"] = "web-2:9100"
    _, body = await harness.post_alert(second)
    assert body["results"][0]["outcome"] == "grouped"
    assert body["results"][0]["incident_id"] == incident_id
    await harness.settle()
    incident = await harness.incident(incident_id)
    assert len(incident["alerts"]) == 2
    # the messages were re-rendered in place for the new alert
    assert harness.emu.calls_to("chat.update")


async def test_resolved_notification_auto_resolves(harness: Harness) -> None:
    _, first = await harness.post_alert(alertmanager_payload())
    incident_id = first["results"][0]["incident_id"]
    await harness.settle()
    _, body = await harness.post_alert(alertmanager_payload(status="resolved"))
    assert body["results"][0]["outcome"] == "resolved"
    await harness.settle()
    incident = await harness.incident(incident_id)
    assert incident["status"] == "resolved"
    assert incident["resolved_by"] == "monitor:prometheus"
    assert incident["timeline"][-1]["actor"] == "monitor:prometheus"
    channel_message = harness.emu.messages(incident["slack"]["channel_id"])[0]
    assert buttons(channel_message) == ["incident_reopen"]
    assert "Resolved" in all_text(channel_message)
    assert channel_message["edited"]
    # a firing alert after the resolve opens a new incident
    _, again = await harness.post_alert(alertmanager_payload())
    assert again["results"][0]["outcome"] == "created"
    assert again["results"][0]["incident_id"] != incident_id


async def test_partial_resolve_keeps_incident_open(harness: Harness) -> None:
    two = alertmanager_payload()
    other = json.loads(json.dumps(two["alerts"][0]))
    other["fingerprint"] = "a1b2c3d4e5f60002"
    two["alerts"].append(other)
    _, body = await harness.post_alert(two)
    incident_id = body["results"][0]["incident_id"]
    assert body["results"][1]["outcome"] == "grouped"
    _, body = await harness.post_alert(alertmanager_payload(status="resolved"))
    assert body["results"][0]["outcome"] == "alert_resolved"
    assert (await harness.incident(incident_id))["status"] == "triggered"
    _, body = await harness.post_alert(
        alertmanager_payload(status="resolved", fingerprint="a1b2c3d4e5f60002")
    )
    assert (await harness.incident(incident_id))["status"] == "resolved"


async def test_auto_resolve_can_be_turned_off_per_service(harness: Harness) -> None:
    _, body = await harness.post_alert(alertmanager_payload(service="batch-jobs"))
    incident_id = body["results"][0]["incident_id"]
    _, body = await harness.post_alert(
        alertmanager_payload(service="batch-jobs", status="resolved")
    )
    assert body["results"][0]["outcome"] == "alert_resolved"
    incident = await harness.incident(incident_id)
    assert incident["status"] == "triggered"
    assert incident["timeline"][-1]["kind"] == "alert_resolved"


async def test_unknown_service_label_falls_back_to_integration_default(harness: Harness) -> None:
    _, body = await harness.post_alert(alertmanager_payload(service="no-such-service"))
    incident = await harness.incident(body["results"][0]["incident_id"])
    assert incident["service"] == "payment-api"
    assert incident["labels"]["service"] == "no-such-service"


async def test_untrusted_text_is_escaped_everywhere(harness: Harness) -> None:
    evil = "<!channel> db down <@U0ALICE01> <https://evil.example|click> & more"
    _, body = await harness.post_alert(alertmanager_payload(summary=evil))
    await harness.settle()
    incident = await harness.incident(body["results"][0]["incident_id"])
    assert incident["title"] == evil  # stored as received
    messages = harness.emu.messages("C0INCIDENT") + harness.emu.messages(
        incident["slack"]["channel_id"]
    )
    for call in harness.emu.calls_to("chat.postMessage") + harness.emu.calls_to("chat.update"):
        rendered = json.dumps(call["args"])
        assert "<!channel>" not in rendered and "<@U0ALICE01>" not in rendered
        assert "<https://evil.example" not in rendered
    assert any("&lt;!channel&gt;" in all_text(m) for m in messages)
    topic = harness.emu.channels[incident["slack"]["channel_id"]].topic
    assert "<!channel>" not in topic


async def test_generic_format_single_and_batch(harness: Harness) -> None:
    status, body = await harness.post_alert(
        {
            "title": "Disk almost full",
            "severity": "warning",
            "dedup_key": "disk-db1",
            "labels": {"host": "db1"},
            "links": [{"url": "https://grafana.example/d/1", "text": "Dash"}],
        },
        integration="generic",
    )
    assert status == 202, body
    incident = await harness.incident(body["results"][0]["incident_id"])
    assert incident["severity"] == "SEV3" and incident["service"] == "search-api"
    assert incident["team"] == "search"
    status, body = await harness.post_alert(
        [
            {"title": "Disk almost full", "dedup_key": "disk-db1"},
            {"title": "Queue backlog", "dedup_key": "queue", "service": "payment-api"},
            {"title": "Disk almost full", "dedup_key": "disk-db1", "status": "resolved"},
        ],
        integration="generic",
    )
    assert status == 202
    assert [r["outcome"] for r in body["results"]] == ["deduplicated", "created", "resolved"]
    queue = await harness.incident(body["results"][1]["incident_id"])
    assert queue["service"] == "payment-api" and queue["team"] == "payments"


async def test_pagerduty_events_v2_trigger_acknowledge_resolve(harness: Harness) -> None:
    event = {
        "routing_key": "ignored-here",
        "event_action": "trigger",
        "dedup_key": "pd-123",
        "payload": {"summary": "API latency high", "source": "api-1", "severity": "error"},
        "links": [{"href": "https://status.example", "text": "Status"}],
    }
    status, body = await harness.post_alert(event, integration="pagerduty")
    assert status == 202, body
    incident_id = body["results"][0]["incident_id"]
    assert (await harness.incident(incident_id))["severity"] == "SEV2"
    _, body = await harness.post_alert(
        {"routing_key": "x", "event_action": "acknowledge", "dedup_key": "pd-123"},
        integration="pagerduty",
    )
    assert body["results"][0]["outcome"] == "acknowledged"
    incident = await harness.incident(incident_id)
    assert incident["status"] == "acknowledged"
    assert incident["acknowledged_by"] == "monitor:pagerduty"
    _, body = await harness.post_alert(
        {"routing_key": "x", "event_action": "resolve", "dedup_key": "pd-123"},
        integration="pagerduty",
    )
    assert body["results"][0]["outcome"] == "resolved"
    assert (await harness.incident(incident_id))["status"] == "resolved"
    # resolve for something never seen is accepted and ignored
    _, body = await harness.post_alert(
        {"routing_key": "x", "event_action": "resolve", "dedup_key": "nope"},
        integration="pagerduty",
    )
    assert body["results"][0]["outcome"] == "ignored"


async def assert_nothing_written(harness: Harness) -> None:
    _, listing = await harness.get("/api/v1/incidents")
    assert listing["total"] == 0
    await harness.settle()
    assert harness.emu.calls_to("chat.postMessage") == []


@pytest.mark.parametrize(
    ("token", "headers"),
    [("wrong", {}), (None, {"Authorization": "Basic cHJvbS10b2tlbg=="}), ("generic-token", {})],
)
async def test_bad_tokens_get_401_and_write_nothing(
    harness: Harness, token: str | None, headers: dict[str, str]
) -> None:
    status, body = await harness.post_alert(alertmanager_payload(), token=token, headers=headers)
    assert status == 401
    assert "token" in body["error"]
    assert body["request_id"]
    await assert_nothing_written(harness)


async def test_unknown_integration_is_404(harness: Harness) -> None:
    status, body = await harness.post_alert(alertmanager_payload(), integration="nagios")
    assert status == 404
    assert body["fields"] == {"integration": "unknown"}
    await assert_nothing_written(harness)


async def test_malformed_json_is_400(harness: Harness) -> None:
    status, body = await harness.post_alert(None, raw=b'{"version": "4", "alerts": [')
    assert status == 400
    assert body["fields"] == {"body": "invalid JSON"}
    await assert_nothing_written(harness)


async def test_invalid_body_names_the_fields(harness: Harness) -> None:
    bad = alertmanager_payload()
    del bad["alerts"][0]["labels"]
    bad["alerts"][0]["status"] = "exploding"
    status, body = await harness.post_alert(bad)
    assert status == 400
    assert any("alerts.0.status" in f for f in body["fields"]), body
    assert any("alerts.0.labels" in f for f in body["fields"]), body
    status, body = await harness.post_alert({"title": ""}, integration="generic")
    assert status == 400 and "title" in json.dumps(body["fields"])
    await assert_nothing_written(harness)


async def test_oversized_body_is_413(harness: Harness) -> None:
    big = alertmanager_payload(summary="x" * 70_000)
    status, body = await harness.post_alert(big)
    assert status == 413
    await assert_nothing_written(harness)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
async def test_idempotency_key_replays_and_rejects_other_body(harness: Harness) -> None:
    headers = {"Idempotency-Key": "delivery-1"}
    status, first = await harness.post_alert(alertmanager_payload(), headers=headers)
    assert status == 202
    status, again = await harness.post_alert(alertmanager_payload(), headers=headers)
    assert status == 202
    assert again["replayed"] is True
    assert again["results"] == first["results"]
    incident = await harness.incident(first["results"][0]["incident_id"])
    assert incident["alert_count"] == 1  # the replay counted nothing
    status, conflict = await harness.post_alert(
        alertmanager_payload(summary="something else"), headers=headers
    )
    assert status == 409
    assert "Idempotency-Key" in conflict["fields"]
    # the key expires after the configured period (1h in the test config)
    harness.clock.advance(3601)
    status, later = await harness.post_alert(alertmanager_payload(), headers=headers)
    assert status == 202 and "replayed" not in later
    assert (await harness.incident(first["results"][0]["incident_id"]))["alert_count"] == 2


async def test_every_response_carries_a_request_id(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    assert harness.http is not None
    caplog.set_level(logging.INFO, logger="pulseops.http")
    async with harness.http.get(f"{harness.url}/healthz", headers={"X-Request-Id": "abc123"}) as r:
        assert r.headers["X-Request-Id"] == "abc123"
    async with harness.http.get(
        f"{harness.url}/api/v1/incidents/999", headers={"Authorization": f"Bearer {API_TOKEN}"}
    ) as r:
        body = await r.json()
        assert r.status == 404
        assert body["request_id"] == r.headers["X-Request-Id"]
    (line,) = [
        rec for rec in caplog.records if getattr(rec, "request_id", None) == body["request_id"]
    ]
    assert (line.method, line.path, line.status) == ("GET", "/api/v1/incidents/999", 404)
    assert line.api_token == "tester"  # the access log names the token, never its secret
    assert API_TOKEN not in JsonFormatter().format(line)
    assert JsonFormatter().format(line).startswith("{")
    assert json.loads(JsonFormatter().format(line))["request_id"] == body["request_id"]
