"""Heartbeats through the running app: pings over HTTP, deadlines in SQL moved by the clock,
a missed heartbeat opening ONE paged incident through the alert pipeline, the next ping
resolving it; the Opsgenie ping route; bad tokens changing nothing."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.clock import ManualClock
from bot.config import PulseOpsConfig, parse_config
from store.models import HeartbeatRow
from tests.conftest import Harness
from tests.helpers import ONCALL_YAML, WEDNESDAY, dms

pytestmark = pytest.mark.asyncio
BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)

BACKUP_TOKEN = "hb-backup-token"
INDEXER_TOKEN = "hb-indexer-token"
HEARTBEATS_YAML = f"""heartbeats:
  - name: nightly-backup
    interval: 1h
    grace: 5m
    service: payment-api
    token: "{BACKUP_TOKEN}"
  - name: indexer
    interval: 10m
    service: search-api
    token: "{INDEXER_TOKEN}"
"""
ALLOWED = timedelta(hours=1, minutes=5)  # nightly-backup's interval + grace


@pytest.fixture
def config() -> PulseOpsConfig:
    text = ONCALL_YAML.format(first="5m", second="10m") + HEARTBEATS_YAML
    return parse_config(text, source="heartbeats.yml", environ={})


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(WEDNESDAY)  # U0BOB0001 is on call for payments


async def ping(
    harness: Harness, name: str = "nightly-backup", *, token: str | None = BACKUP_TOKEN
) -> tuple[int, Any]:
    assert harness.http is not None
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    async with harness.http.post(f"{harness.url}/heartbeats/{name}", headers=headers) as r:
        return r.status, await r.json()


async def genie_ping(
    harness: Harness, name: str = "nightly-backup", *, key: str = BACKUP_TOKEN, method: str = "GET"
) -> tuple[int, Any]:
    assert harness.http is not None
    headers = {"Authorization": f"GenieKey {key}"}
    url = f"{harness.url}/v2/heartbeats/{name}/ping"
    async with harness.http.request(method, url, headers=headers) as r:
        return r.status, await r.json()


async def incidents(harness: Harness) -> list[dict[str, Any]]:
    status, body = await harness.get("/api/v1/incidents?limit=100")
    assert status == 200, body
    return body["incidents"]  # type: ignore[no-any-return]


async def heartbeat_rows(harness: Harness) -> list[HeartbeatRow]:
    async with harness.deps.db.read() as session:
        return list((await session.scalars(select(HeartbeatRow))).all())


async def metric(harness: Harness, line_start: str) -> float:
    assert harness.http is not None
    async with harness.http.get(f"{harness.url}/metrics") as r:
        text = await r.text()
    values = [float(line.split()[-1]) for line in text.splitlines() if line.startswith(line_start)]
    return values[0] if values else 0.0


async def miss(harness: Harness) -> int:
    """Let nightly-backup's deadline pass (a ping armed it) and sweep; return the incident."""
    harness.clock.advance(ALLOWED)  # type: ignore[attr-defined]
    assert await harness.deps.heartbeats.sweep() == 1
    await harness.settle()
    (opened,) = [i for i in await incidents(harness) if i["status"] != "resolved"]
    return int(opened["id"])


@BOTH
async def test_a_missed_heartbeat_opens_one_paged_incident_and_the_next_ping_resolves_it(
    harness: Harness,
) -> None:
    status, body = await ping(harness)
    assert status == 200, body
    assert body["status"] == "ok" and body["first_ping"] is True
    assert body["next_due_at"] == (WEDNESDAY + ALLOWED).isoformat()
    assert body["recovered"] is None
    # pinged in time: nothing happens, however often the sweep runs
    harness.clock.advance(ALLOWED - timedelta(seconds=1))
    assert await harness.deps.heartbeats.sweep() == 0
    assert await incidents(harness) == []
    # one second later the deadline has passed: one incident, however often the sweep runs
    harness.clock.advance(1)
    assert await harness.deps.heartbeats.sweep() == 1
    assert await harness.deps.heartbeats.sweep() == 0
    await harness.settle()
    (listed,) = await incidents(harness)
    incident = await harness.incident(listed["id"])
    assert incident["title"] == "Heartbeat nightly-backup missed"
    assert incident["source"] == "heartbeat"
    assert incident["integration"] == "heartbeat"
    assert (incident["service"], incident["team"]) == ("payment-api", "payments")
    assert incident["status"] == "triggered"
    assert incident["labels"] == {"heartbeat": "nightly-backup", "service": "payment-api"}
    assert "No ping since" in incident["description"]
    # announced, its own channel, and the on-call person paged, as for any alert
    channel = incident["slack"]["channel_id"]
    assert channel and harness.emu.channels[channel].members
    announced = harness.emu.messages("C0INCIDENT")
    assert any("Heartbeat nightly-backup missed" in m["text"] for m in announced)
    assert len(dms(harness, "U0BOB0001")) == 1
    assert [e["kind"] for e in incident["timeline"]][:2] == ["triggered", "paged"]
    line = 'pulseops_heartbeats_missed_total{heartbeat="nightly-backup"}'
    assert await metric(harness, line) == 1.0
    # the next ping resolves it through the pipeline: timeline, messages, no more pages
    harness.clock.advance(600)
    status, body = await ping(harness)
    assert status == 200, body
    assert body["first_ping"] is False
    assert body["recovered"]["outcome"] == "resolved"
    assert body["recovered"]["incident_id"] == listed["id"]
    await harness.settle()
    incident = await harness.incident(listed["id"])
    assert incident["status"] == "resolved"
    assert incident["resolved_by"] == "monitor:heartbeat"
    texts = [e["text"] for e in incident["timeline"]]
    assert "Monitor reports resolved: Heartbeat nightly-backup missed" in texts
    assert await harness.deps.escalations.sweep() == 0
    updates = [
        c for c in harness.emu.calls_to("chat.update") if c["args"].get("channel") == channel
    ]
    assert updates and "Resolved" in str(updates[-1]["args"])
    # it is armed again: the next miss opens a new incident
    second = await miss(harness)
    assert second != listed["id"]
    assert await metric(harness, line) == 2.0


@BOTH
async def test_replicas_open_one_incident_for_a_missed_heartbeat(harness: Harness) -> None:
    assert (await ping(harness))[0] == 200
    harness.clock.advance(ALLOWED)
    async with harness.replica() as other:
        sweeps = [harness.deps.heartbeats.sweep() for _ in range(3)]
        sweeps += [other.heartbeats.sweep() for _ in range(3)]
        assert sum(await asyncio.gather(*sweeps)) == 1
        # a ping arriving at the other replica resolves it
        await harness.settle()
        pinged = await other.heartbeats.ping(other.config.heartbeats[0])
        assert pinged.recovered is not None and pinged.recovered["outcome"] == "resolved"
    await harness.settle()
    (incident,) = await incidents(harness)
    assert incident["source"] == "heartbeat" and incident["status"] == "resolved"
    assert len(dms(harness, "U0BOB0001")) == 1


async def test_a_heartbeat_never_pinged_never_alerts(harness: Harness) -> None:
    harness.clock.advance(timedelta(days=3))
    assert await harness.deps.heartbeats.sweep() == 0
    assert await incidents(harness) == [] and await heartbeat_rows(harness) == []


async def test_each_heartbeat_has_its_own_deadline(harness: Harness) -> None:
    assert (await ping(harness))[0] == 200
    assert (await ping(harness, "indexer", token=INDEXER_TOKEN))[0] == 200
    harness.clock.advance(timedelta(minutes=10))  # the indexer's interval (no grace)
    assert await harness.deps.heartbeats.sweep() == 1
    await harness.settle()
    (incident,) = await incidents(harness)
    assert incident["title"] == "Heartbeat indexer missed"
    assert (incident["service"], incident["team"]) == ("search-api", "search")
    # still missed: the sweep does not open it again
    harness.clock.advance(timedelta(minutes=30))
    assert await harness.deps.heartbeats.sweep() == 0
    harness.clock.advance(timedelta(minutes=25))  # nightly-backup now past 1h05m
    assert await harness.deps.heartbeats.sweep() == 1


@BOTH
async def test_a_bad_token_is_401_and_changes_nothing(harness: Harness) -> None:
    wrong = [
        await ping(harness, token="nope"),
        await ping(harness, token=None),
        await ping(harness, token=INDEXER_TOKEN),  # another heartbeat's token
        await ping(harness, "no-such-heartbeat", token=BACKUP_TOKEN),  # unknown: the same 401
    ]
    assert [status for status, _ in wrong] == [401] * 4
    assert len({body["error"] for _, body in wrong}) == 1, wrong
    assert "bearer token" in wrong[0][1]["error"]
    assert BACKUP_TOKEN not in str(wrong)
    status, body = await genie_ping(harness, key="nope")
    assert status == 401 and body["message"] == "Could not authenticate"
    assert isinstance(body["took"], float) and uuid.UUID(body["requestId"])
    assert await heartbeat_rows(harness) == []
    line = 'pulseops_webhooks_rejected_total{integration="heartbeat",reason="unauthorized"}'
    assert await metric(harness, line) == 5.0
    harness.clock.advance(timedelta(days=1))
    assert await harness.deps.heartbeats.sweep() == 0
    assert await incidents(harness) == []


@BOTH
async def test_the_opsgenie_ping_route_answers_as_opsgenie_and_feeds_the_heartbeat(
    harness: Harness,
) -> None:
    for method in ("GET", "POST", "PUT", "PATCH"):
        status, body = await genie_ping(harness, method=method)
        assert status == 202, (method, body)
        assert set(body) == {"result", "took", "requestId"}
        assert body["result"] == "PONG - Heartbeat received"
        assert isinstance(body["took"], float) and body["took"] >= 0
        assert str(uuid.UUID(body["requestId"])) == body["requestId"]
    (row,) = await heartbeat_rows(harness)
    assert (row.name, row.status, row.pings) == ("nightly-backup", "up", 4)
    incident_id = await miss(harness)
    status, body = await genie_ping(harness, method="POST")
    assert status == 202, body
    await harness.settle()
    assert (await harness.incident(incident_id))["status"] == "resolved"


async def test_routes_apply_to_heartbeat_alerts(harness: Harness) -> None:
    """A missed heartbeat is an alert like any other: a route on `__source__` or on its
    `heartbeat` label decides its severity and category."""
    text = (
        ONCALL_YAML.format(first="5m", second="10m")
        + HEARTBEATS_YAML
        + """routes:
  - name: backups-are-sev1
    matchers: ['__source__="heartbeat"', 'heartbeat="nightly-backup"']
    severity: SEV1
    category: backups
"""
    )
    harness.config = parse_config(text, source="routes.yml", environ={})
    await harness.restart()
    assert (await ping(harness))[0] == 200
    incident_id = await miss(harness)
    incident = await harness.incident(incident_id)
    assert (incident["severity"], incident["category"]) == ("SEV1", "backups")
    assert any("from route backups-are-sev1" in e["text"] for e in incident["timeline"])
