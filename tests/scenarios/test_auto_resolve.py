"""Inactivity auto-resolve through the running app: a service's `auto_resolve_after` resolves
its incident once no alert has been seen for that long, and not while alerts keep coming."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from bot.clock import ManualClock
from bot.config import PulseOpsConfig, parse_config
from store.models import EscalationRow
from tests.conftest import Harness, alertmanager_payload
from tests.helpers import ONCALL_YAML, WEDNESDAY, fire

pytestmark = pytest.mark.asyncio
BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)

QUIET = timedelta(minutes=30)
REASON = "Resolved: auto-resolve after 30m of no alerts"
HEARTBEAT = """heartbeats:
  - name: nightly-backup
    interval: 1h
    service: payment-api
    token: "hb-token"
"""


@pytest.fixture
def config() -> PulseOpsConfig:
    text = (
        ONCALL_YAML.format(first="5m", second="10m").replace(
            "    name: Payment API\n    team: payments\n",
            "    name: Payment API\n    team: payments\n    auto_resolve_after: 30m\n",
            1,
        )
        + HEARTBEAT
    )
    assert "auto_resolve_after" in text
    return parse_config(text, source="auto-resolve.yml", environ={})


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(WEDNESDAY)


async def repeat(harness: Harness) -> None:
    status, body = await harness.post_alert(alertmanager_payload())
    assert status == 202 and body["results"][0]["outcome"] == "deduplicated", body


async def search_incident(harness: Harness) -> int:
    """An incident of search-api, which has no auto_resolve_after."""
    body = alertmanager_payload(
        service="search-api", group_key="{}:{alertname=Slow}", fingerprint="slow0001"
    )
    status, answer = await harness.post_alert(body)
    assert status == 202, answer
    return int(answer["results"][0]["incident_id"])


async def metric(harness: Harness, line_start: str) -> float:
    assert harness.http is not None
    async with harness.http.get(f"{harness.url}/metrics") as r:
        text = await r.text()
    values = [float(line.split()[-1]) for line in text.splitlines() if line.startswith(line_start)]
    return values[0] if values else 0.0


@BOTH
async def test_a_quiet_incident_resolves_and_a_noisy_one_does_not(harness: Harness) -> None:
    incident_id = await fire(harness)
    other = await search_incident(harness)
    status, declared = await harness.call(
        "POST",
        "/api/v1/incidents",
        {"title": "Checkout slow", "severity": "SEV2", "service": "payment-api"},
    )
    assert status == 201, declared
    sweep = harness.deps.inactivity.sweep
    # the monitor keeps repeating the alert every 10 minutes for two hours: it stays open
    for _ in range(12):
        harness.clock.advance(600)
        await repeat(harness)
        assert await sweep() == 0
    # then it goes quiet: resolved once 30 minutes have passed without an alert, not before
    harness.clock.advance(QUIET - timedelta(seconds=1))
    assert await sweep() == 0
    harness.clock.advance(1)
    assert await sweep() == 1
    assert await sweep() == 0
    await harness.settle()
    incident = await harness.incident(incident_id)
    assert incident["status"] == "resolved"
    assert incident["resolved_by"] == "pulseops"
    last = incident["timeline"][-1]
    assert (last["kind"], last["actor"], last["text"]) == ("resolved", "pulseops", REASON)
    # its messages update as for any resolve, and nobody is paged any more
    channel = incident["slack"]["channel_id"]
    updates = [
        c for c in harness.emu.calls_to("chat.update") if c["args"].get("channel") == channel
    ]
    assert updates and "Resolved" in str(updates[-1]["args"])
    reply = await harness.emu.command(
        user="U0ALICE01", channel=channel, command="/incident", text="timeline"
    )
    assert "auto-resolve after 30m of no alerts" in reply["body"], reply["body"]
    async with harness.deps.db.read() as session:
        escalation = await session.get(EscalationRow, incident_id)
    assert escalation is not None and escalation.status == "stopped"
    # a service without auto_resolve_after, and a declared incident (no alerts), stay open
    assert (await harness.incident(other))["status"] == "triggered"
    assert (await harness.incident(declared["id"]))["status"] == "triggered"
    line = 'pulseops_incidents_auto_resolved_total{service="payment-api"}'
    assert await metric(harness, line) == 1.0


@BOTH
async def test_an_acknowledged_quiet_incident_resolves_once_across_replicas(
    harness: Harness,
) -> None:
    incident_id = await fire(harness)
    status, body = await harness.call(
        "PATCH", f"/api/v1/incidents/{incident_id}", {"status": "acknowledged"}
    )
    assert status == 200, body
    harness.clock.advance(QUIET)
    async with harness.replica() as other:
        sweeps: list[Any] = [harness.deps.inactivity.sweep() for _ in range(3)]
        sweeps += [other.inactivity.sweep() for _ in range(3)]
        assert sum(await asyncio.gather(*sweeps)) == 1
    incident = await harness.incident(incident_id)
    assert incident["status"] == "resolved"
    assert [e["text"] for e in incident["timeline"]].count(REASON) == 1


async def test_an_alert_arriving_before_the_resolve_keeps_it_open(harness: Harness) -> None:
    """The sweep re-checks in the resolving transaction: an alert that came after the quiet
    list was read wins."""
    incident_id = await fire(harness)
    harness.clock.advance(QUIET)
    await repeat(harness)
    resolved = await harness.deps.incidents.resolve_if_quiet(
        incident_id=incident_id, quiet_for=QUIET, reason="x"
    )
    assert resolved is False
    assert (await harness.incident(incident_id))["status"] == "triggered"


@BOTH
async def test_a_missed_heartbeat_is_not_auto_resolved_until_it_pings(harness: Harness) -> None:
    """A heartbeat's alert stands until its next ping, however long that takes."""
    assert harness.http is not None
    auth = {"Authorization": "Bearer hb-token"}
    url = f"{harness.url}/heartbeats/nightly-backup"
    async with harness.http.post(url, headers=auth) as r:
        assert r.status == 200
    harness.clock.advance(timedelta(hours=1))
    assert await harness.deps.heartbeats.sweep() == 1
    harness.clock.advance(timedelta(hours=3))
    assert await harness.deps.inactivity.sweep() == 0
    status, body = await harness.get("/api/v1/incidents?status=open")
    assert status == 200 and body["total"] == 1, body
    incident_id = body["incidents"][0]["id"]
    assert (
        await harness.deps.incidents.resolve_if_quiet(
            incident_id=incident_id, quiet_for=QUIET, reason="x"
        )
        is False
    )
    async with harness.http.post(url, headers=auth) as r:
        assert r.status == 200
    assert (await harness.incident(incident_id))["status"] == "resolved"
