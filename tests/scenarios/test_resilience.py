"""Slack failing: rate limits, outages, restarts. Nothing is lost and nothing is sent twice."""

from __future__ import annotations

import asyncio

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select

from bot.config import parse_config
from bot.domain import Acknowledge, Resolve
from store.models import IncidentRow, OutboxRow
from tests.conftest import BOT_TOKEN, CONFIG_YAML, Harness, alertmanager_payload
from tests.helpers import buttons

pytestmark = pytest.mark.asyncio
BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)


async def outbox_rows(harness: Harness) -> list[OutboxRow]:
    async with harness.deps.db.read() as session:
        return list((await session.scalars(select(OutboxRow).order_by(OutboxRow.id))).all())


def assert_delivered_once(harness: Harness, incidents: int) -> None:
    assert len(harness.emu.calls_to("conversations.create")) >= incidents
    created = [c for c in harness.emu.calls_to("conversations.create") if c["response"].get("ok")]
    assert len(created) == incidents
    assert len(harness.emu.messages("C0INCIDENT")) == incidents
    for channel in (c["response"]["channel"]["id"] for c in created):
        assert len(harness.emu.messages(channel)) == 1


async def fire(harness: Harness, n: int) -> list[int]:
    ids = []
    for i in range(n):
        status, body = await harness.post_alert(
            alertmanager_payload(
                group_key=f"group-{i}", fingerprint=f"fp-{i}", summary=f"Alert {i}"
            )
        )
        assert status == 202
        ids.append(body["results"][0]["incident_id"])
    return ids


async def test_rate_limited_channel_creation_pages_first_and_catches_up(harness: Harness) -> None:
    harness.emu.set_faults(rate_limits={"conversations.create": 1})
    ids = await fire(harness, 3)
    await harness.settle()
    # every announcement went out although only one channel could be created
    assert len(harness.emu.messages("C0INCIDENT")) == 3
    limited = [c for c in harness.emu.calls_to("conversations.create") if c["status"] == 429]
    assert limited
    rows = await outbox_rows(harness)
    assert all(r.status != "dead" for r in rows)
    assert sum(1 for r in rows if r.status == "pending") == 2
    metrics = (await harness.get("/metrics"))[1]
    assert (
        'pulseops_slack_api_calls_total{method="conversations.create",result="ratelimited"}'
        in metrics
    )
    harness.emu.set_faults(clear=True)
    harness.clock.advance(120)
    await harness.settle()
    assert_delivered_once(harness, 3)
    for incident_id in ids:
        incident = await harness.incident(incident_id)
        assert incident["slack"]["channel_id"] and incident["slack"]["message_ts"]


@BOTH
async def test_slack_outage_loses_nothing(harness: Harness) -> None:
    harness.emu.set_faults(down_for=600)
    ids = await fire(harness, 2)
    # the incidents exist although Slack is down
    for incident_id in ids:
        assert (await harness.incident(incident_id))["status"] == "triggered"
    await harness.settle()
    assert harness.emu.messages("C0INCIDENT") == []
    rows = await outbox_rows(harness)
    assert rows and all(r.status == "pending" and r.attempts >= 1 for r in rows)
    metrics = (await harness.get("/metrics"))[1]
    assert "pulseops_outbox_depth 4.0" in metrics
    # ten minutes later Slack is back
    harness.emu.set_faults(clear=True)
    harness.clock.advance(601)
    await harness.settle()
    assert_delivered_once(harness, 2)
    assert all(r.status == "done" for r in await outbox_rows(harness))


async def test_server_errors_are_retried_in_place(harness: Harness) -> None:
    harness.emu.set_faults(error_status=500, error_count=2, methods=["chat.postMessage"])
    await fire(harness, 1)
    await harness.settle()
    assert_delivered_once(harness, 1)
    statuses = [c["status"] for c in harness.emu.calls_to("chat.postMessage")]
    assert statuses.count(500) == 2


@BOTH
async def test_restart_delivers_undelivered_outbox_exactly_once(harness: Harness) -> None:
    harness.emu.set_faults(down_for=600)
    ids = await fire(harness, 2)
    await harness.settle()
    await harness.stop()  # the process goes away with undelivered rows
    harness.emu.set_faults(clear=True)
    harness.clock.advance(300)
    await harness.restart()  # start-up delivers what is due
    await harness.settle()
    assert_delivered_once(harness, 2)
    for incident_id in ids:
        assert (await harness.incident(incident_id))["slack"]["message_ts"]


async def test_fatal_slack_error_is_not_retried(harness: Harness) -> None:
    await harness.stop()
    harness.config = parse_config(
        CONFIG_YAML.replace('"C0INCIDENT"', '"C0NOSUCH1"'), source="test.yml", environ={}
    )
    await harness.start()
    await fire(harness, 1)
    await harness.settle()
    rows = await outbox_rows(harness)
    announce = next(r for r in rows if r.kind == "announce")
    assert announce.status == "dead" and "channel_not_found" in (announce.last_error or "")
    # the channel side still went through
    assert next(r for r in rows if r.kind == "open_channel").status == "done"
    calls = [
        c for c in harness.emu.calls_to("chat.postMessage") if c["args"]["channel"] == "C0NOSUCH1"
    ]
    assert len(calls) == 1


async def test_messages_never_show_an_older_state(harness: Harness) -> None:
    (incident_id,) = await fire(harness, 1)
    await harness.settle()
    harness.emu.set_faults(latency_ms=150)
    service = harness.deps.incidents
    await service.transition(incident_id=incident_id, command=Acknowledge(by="U0ALICE01"))
    await asyncio.sleep(0.05)  # the first update is in flight
    await service.transition(incident_id=incident_id, command=Resolve(by="U0BOB0001"))
    await harness.settle()
    harness.emu.set_faults(clear=True)
    incident = await harness.incident(incident_id)
    for channel in (incident["slack"]["channel_id"], "C0INCIDENT"):
        message = harness.emu.messages(channel)[0]
        assert buttons(message) == ["incident_reopen"]
        assert "Resolved" in str(message["blocks"])
    async with harness.deps.db.read() as session:
        row = await session.get(IncidentRow, incident_id)
        assert row is not None
        assert row.message_version == row.version == row.announcement_version


async def test_channel_name_taken_by_archived_channel_gets_a_suffix(harness: Harness) -> None:
    client = AsyncWebClient(token=BOT_TOKEN, base_url=harness.emu.api_url, retry_handlers=[])
    taken = await client.conversations_create(name="inc-1-alert-0")
    await client.conversations_archive(channel=taken["channel"]["id"])
    (incident_id,) = await fire(harness, 1)
    await harness.settle()
    incident = await harness.incident(incident_id)
    assert incident["slack"]["channel_name"] == "inc-1-alert-0-2"
    errors = [c["response"].get("error") for c in harness.emu.calls_to("conversations.create")]
    assert errors == [None, "name_taken", None]


async def test_per_user_invite_errors_do_not_abort_the_channel(harness: Harness) -> None:
    await harness.stop()
    harness.config = parse_config(
        CONFIG_YAML.replace(
            '["U0ALICE01", "U0BOB0001"]', '["U0ALICE01", "U0GHOST01", "U0BOB0001"]'
        ),
        source="test.yml",
        environ={},
    )
    await harness.start()
    (incident_id,) = await fire(harness, 1)
    await harness.settle()
    incident = await harness.incident(incident_id)
    channel = harness.emu.channels[incident["slack"]["channel_id"]]
    assert {"U0ALICE01", "U0BOB0001"} <= set(channel.members)
    assert "U0GHOST01" not in channel.members
    assert len(harness.emu.messages(channel.id)) == 1
    (open_channel,) = [r for r in await outbox_rows(harness) if r.kind == "open_channel"]
    assert open_channel.status == "done"
    assert "user_not_found" in str(open_channel.progress["invited"])
