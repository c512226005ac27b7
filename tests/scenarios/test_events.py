"""The event stream: every incident change reaches each sink once, signed (webhooks) or on NATS
(JetStream deduplicating on the event id), and every event matches docs/events.schema.json."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from sqlalchemy import select, update

from bot.clock import ManualClock
from bot.config import parse_config
from bot.sandbox.emulator import Emulator
from store.models import OutboxRow
from tests.conftest import Harness
from tests.helpers import ONCALL_YAML, WEDNESDAY, fire
from tests.receiver import Receiver

pytestmark = pytest.mark.asyncio
BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "docs" / "events.schema.json").read_text()
)
SECRET = "events-hmac-secret"
NATS_URL = "nats://127.0.0.1:4222"


def check(event: dict[str, Any]) -> None:
    jsonschema.validate(event, SCHEMA, format_checker=jsonschema.FormatChecker())


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(WEDNESDAY)


async def run_with_sinks(
    emulator: Emulator, database_url: str, clock: ManualClock, sinks: str
) -> Harness:
    config = parse_config(
        ONCALL_YAML.format(first="5m", second="10m") + sinks,
        source="test.yml",
        environ={"EVENTS_HMAC": SECRET},
    )
    harness = Harness(
        emulator=emulator,
        database_url=database_url,
        config=config,
        clock=clock,
        environ={"EVENTS_HMAC": SECRET},
    )
    await harness.start()
    return harness


async def every_change(harness: Harness) -> int:
    """Trigger, escalate, change severity, note, acknowledge and resolve one incident."""
    incident_id = await fire(harness)
    base = f"/api/v1/incidents/{incident_id}"
    for method, path, body in (
        ("POST", f"{base}/escalate", None),
        ("PATCH", base, {"severity": "SEV2"}),
        ("POST", f"{base}/notes", {"text": "Rolled back <b>v42</b>"}),
        ("PATCH", base, {"status": "acknowledged"}),
        ("PATCH", base, {"status": "resolved"}),
    ):
        status, answer = await harness.call(method, path, body)
        assert status in (200, 201, 202), answer
    await harness.settle()
    return incident_id


EXPECTED = Counter(
    {
        "incident.triggered": 1,
        "alert.received": 1,
        "incident.escalated": 1,
        "incident.severity_changed": 1,
        "incident.note_added": 1,
        "incident.acknowledged": 1,
        "incident.resolved": 1,
    }
)


@BOTH
async def test_a_webhook_sink_gets_every_event_once_signed_and_valid(
    emulator: Emulator, database_url: str, clock: ManualClock
) -> None:
    receiver = Receiver(secret=SECRET, statuses=[200])
    await receiver.start()
    harness = await run_with_sinks(
        emulator,
        database_url,
        clock,
        f"""
allowed_hosts: ["127.0.0.1"]
event_sinks:
  - type: webhook
    url: "{receiver.url}/pulseops"
    secret_env: EVENTS_HMAC
""",
    )
    try:
        incident_id = await every_change(harness)
    finally:
        await harness.close()
        await receiver.stop()
    events = [c.json() for c in receiver.calls]
    assert Counter(e["type"] for e in events) == EXPECTED
    assert len({e["id"] for e in events}) == len(events)
    for call, event in zip(receiver.calls, events, strict=True):
        assert call.signed is True
        assert call.headers["X-PulseOps-Event"] == event["type"]
        check(event)
        assert event["incident"]["id"] == incident_id
    by_type = {e["type"]: e for e in events}
    assert by_type["incident.severity_changed"]["data"]["to"] == "SEV2"
    assert by_type["incident.acknowledged"]["incident"]["acknowledged_by"] == "api:tester"
    assert by_type["incident.note_added"]["data"]["text"] == "Rolled back <b>v42</b>"
    assert by_type["alert.received"]["data"]["outcome"] == "created"


async def test_a_sink_that_is_down_is_retried_and_one_that_refuses_is_reported(
    emulator: Emulator, database_url: str, clock: ManualClock
) -> None:
    flaky = Receiver(statuses=[503, 200])
    refusing = Receiver(statuses=[400])
    await flaky.start()
    await refusing.start()
    harness = await run_with_sinks(
        emulator,
        database_url,
        clock,
        f"""
allowed_hosts: ["127.0.0.1"]
event_sinks:
  - {{type: webhook, url: "{flaky.url}/", events: [incident.triggered]}}
  - {{type: webhook, url: "{refusing.url}/", events: [incident.triggered]}}
""",
    )
    try:
        await fire(harness)
        assert (len(flaky.calls), len(refusing.calls)) == (1, 1)
        clock.advance(60)
        await harness.settle()
        clock.advance(3600)
        await harness.settle()
        assert (len(flaky.calls), len(refusing.calls)) == (2, 1)
        assert flaky.calls[0].body == flaky.calls[1].body
        async with harness.deps.db.read() as session:
            rows = (await session.scalars(select(OutboxRow).where(OutboxRow.kind == "event"))).all()
        assert sorted(r.status for r in rows) == ["dead", "done"]
        [dead] = [r for r in rows if r.status == "dead"]
        assert "HTTP 400" in (dead.last_error or "")
    finally:
        await harness.close()
        await flaky.stop()
        await refusing.stop()


async def nats_or_skip() -> Any:
    nats = pytest.importorskip("nats")
    try:
        return await nats.connect(NATS_URL, connect_timeout=2, allow_reconnect=False)
    except Exception as exc:  # no server here: say so
        pytest.skip(f"no NATS server at {NATS_URL} ({type(exc).__name__}: {exc})")


@pytest.fixture
async def nats_client() -> AsyncIterator[Any]:
    client = await nats_or_skip()
    yield client
    await client.close()


@BOTH
async def test_a_nats_subscriber_sees_every_event_once(
    emulator: Emulator, database_url: str, clock: ManualClock, nats_client: Any
) -> None:
    subject = f"pulseops.test.{uuid.uuid4().hex}"
    seen: list[Any] = []

    async def got(msg: Any) -> None:
        seen.append(msg)

    await nats_client.subscribe(subject, cb=got)
    await nats_client.flush()
    harness = await run_with_sinks(
        emulator,
        database_url,
        clock,
        f"""
event_sinks:
  - {{type: nats, url: "{NATS_URL}", subject: "{subject}"}}
""",
    )
    try:
        await every_change(harness)
    finally:
        await harness.close()
    await asyncio.sleep(0.3)
    events = [json.loads(m.data) for m in seen]
    assert Counter(e["type"] for e in events) == EXPECTED
    for msg, event in zip(seen, events, strict=True):
        check(event)
        assert msg.headers["Nats-Msg-Id"] == event["id"]


async def test_jetstream_deduplicates_a_repeated_delivery_by_event_id(
    emulator: Emulator, database_url: str, clock: ManualClock, nats_client: Any
) -> None:
    token = uuid.uuid4().hex
    subject, stream = f"pulseops.js.{token}", f"PULSEOPS_TEST_{token}"
    js = nats_client.jetstream()
    await js.add_stream(name=stream, subjects=[subject])
    harness = await run_with_sinks(
        emulator,
        database_url,
        clock,
        f"""
event_sinks:
  - {{type: nats, url: "{NATS_URL}", subject: "{subject}", events: [incident.triggered]}}
""",
    )
    try:
        await fire(harness)
        assert (await js.stream_info(stream)).state.messages == 1
        # the same row delivered again (as after a crash before it was marked done)
        async with harness.deps.db.write() as session:
            await session.execute(
                update(OutboxRow).where(OutboxRow.kind == "event").values(status="pending")
            )
        await harness.settle()
        async with harness.deps.db.read() as session:
            rows = (await session.scalars(select(OutboxRow).where(OutboxRow.kind == "event"))).all()
        assert [r.attempts for r in rows] == [2]
        assert (await js.stream_info(stream)).state.messages == 1
        message = await js.get_last_msg(stream, subject)
        event = json.loads(message.data)
        check(event)
        assert message.headers["Nats-Msg-Id"] == event["id"]
    finally:
        await harness.close()
        await js.delete_stream(stream)
