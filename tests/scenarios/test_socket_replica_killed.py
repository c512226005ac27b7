"""Three `pulseops serve` replicas in Socket Mode on one database; the one handling a 📌 is
killed (SIGKILL) while its listener waits for Slack. The event had not been acknowledged, so
Slack sends it again; a surviving replica finds the dead one's claim, waits for its lease to
run out, and then handles the event: the message is on the timeline once, and the person who
pinned it is told once.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.sandbox.emulator import Emulator
from handlers.slack_http import event_key
from store.models import SlackRequestRow, TimelineRow
from tests.conftest import API_TOKEN, APP_TOKEN, alertmanager_payload, emulated
from tests.serve_process import Service, engine_for, wait_until

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]
BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)

LEASE = 3  # seconds: PULSEOPS_SLACK_CLAIM_LEASE of the replicas
# Slack retries an unacknowledged event at once, then after 1 and 5 minutes: shortened here,
# the second retry still comes after the dead replica's lease has run out
RETRY_DELAYS = (0.0, LEASE + 1.0, LEASE + 1.0)
SLOW_SLACK_MS = 60_000  # conversations.history answers this late while the victim is killed


def owner(services: list[Service], peer: str | None) -> Service | None:
    """The replica whose process holds the TCP connection that Slack sees coming from `peer`."""
    if peer is None:
        return None
    port = int(peer.rsplit(":", 1)[1])
    for service in services:
        if service.process is None or service.process.returncode is not None:
            continue
        sockets = psutil.Process(service.process.pid).net_connections(kind="tcp")
        if any(s.laddr and s.laddr.port == port for s in sockets):
            return service
    return None


async def open_incident_channel(http: aiohttp.ClientSession, service: Service) -> tuple[int, str]:
    """Open an incident through one replica's webhook; its id and Slack channel once posted."""
    async with http.post(
        f"{service.url}/webhooks/prometheus",
        json=alertmanager_payload(),
        headers={"Authorization": "Bearer prom-token"},
    ) as response:
        assert response.status == 202, await response.text()
        incident_id = int((await response.json())["results"][0]["incident_id"])
    channel: dict[str, str] = {}

    async def posted() -> bool:
        async with http.get(
            f"{service.url}/api/v1/incidents/{incident_id}",
            headers={"Authorization": f"Bearer {API_TOKEN}"},
        ) as response:
            slack = (await response.json()).get("slack") or {}
        if slack.get("channel_id") and slack.get("message_ts"):
            channel["id"] = slack["channel_id"]
        return bool(channel)

    await wait_until(posted, within=30, what="the incident's channel and message")
    return incident_id, channel["id"]


async def assert_pinned_once(
    engine: AsyncEngine, emu: Emulator, *, incident_id: int, ts: str, channel: str
) -> None:
    """The message `ts` is on the incident's timeline once, and the person who pinned it
    (U0ALICE01) was told once that it was added."""
    async with engine.connect() as conn:
        added = (
            await conn.execute(
                select(TimelineRow.data).where(
                    TimelineRow.incident_id == incident_id, TimelineRow.kind == "message_added"
                )
            )
        ).all()
    assert [row.data["ts"] for row in added] == [ts], added
    told = [
        c
        for c in emu.calls_to("chat.postEphemeral")
        if c["args"].get("user") == "U0ALICE01" and c["args"].get("channel") == channel
    ]
    assert [c["status"] for c in told] == [200], told


@BOTH
async def test_a_replica_killed_mid_event_leaves_it_to_another_which_handles_it_once(
    tmp_path: Path, database_url: str
) -> None:
    async with (
        emulated(app_token=APP_TOKEN, event_retry_delays=RETRY_DELAYS) as emu,
        aiohttp.ClientSession() as http,
        engine_for(database_url) as engine,
    ):
        env = {"SLACK_APP_TOKEN": APP_TOKEN, "PULSEOPS_SLACK_CLAIM_LEASE": str(LEASE)}
        services = [
            Service(tmp_path, emu.api_url, database_url, env=env, name=f"replica-{n}")
            for n in "abc"
        ]
        try:
            for count, service in enumerate(services, start=1):
                await service.start(http)  # one at a time: the first migrates the schema
                await emu.wait_for_socket(count=count, within=15)
            # the emulator tells each connection's client address, and so its process
            connections = {c.id: owner(services, c.peer) for c in emu.socket.connections}
            assert sorted(s.name for s in connections.values() if s) == [
                s.name for s in services
            ], connections
            await run_the_kill(emu, http, engine, services, connections)
        finally:
            for service in services:
                await service.stop()


async def run_the_kill(
    emu: Emulator,
    http: aiohttp.ClientSession,
    engine: Any,
    services: list[Service],
    connections: dict[str, Service | None],
) -> None:
    incident_id, channel = await open_incident_channel(http, services[0])
    said = await emu.post_user_message(
        user="U0BOB0001", channel=channel, text="payment pods OOM-killed at 12:02"
    )
    victim = services[1]
    (victim_connection,) = [c for c, s in connections.items() if s is victim]

    # the 📌 goes to the victim, whose listener then waits for Slack's (slow) answer
    emu.set_faults(latency_ms=SLOW_SLACK_MS, methods=["conversations.history"])
    emu.socket_send_next_to(victim_connection)
    pinning = asyncio.create_task(
        emu.add_reaction(user="U0ALICE01", channel=channel, ts=said["ts"])
    )

    async def victim_is_asking_slack() -> bool:
        return any(
            owner(services, c["peer"]) is victim and c["status"] is None
            for c in emu.calls_to("conversations.history")
        )

    await wait_until(victim_is_asking_slack, within=15, what="the victim's listener to run")
    await victim.kill()
    emu.set_faults(clear=True)
    first = await pinning
    # not acknowledged: the ack waits for the listener, which never finished
    assert first["status"] == 0 and first["connection"] == victim_connection, first

    await emu.socket_idle(within=60)
    tries = [e for e in emu.socket.log if e["event_id"] == first["event_id"]]
    outcomes = [t["outcome"] for t in tries]
    # Slack retried on the survivors' connections: a retry while the dead replica's lease
    # ran was left unacknowledged (Slack tries again later); the next one was handled
    assert outcomes[0] == "dispatch_failed" and outcomes[-1] == "acked", tries
    assert set(outcomes[1:-1]) <= {"operation_timeout"}, tries
    handler = connections[tries[-1]["connection"]]
    assert handler is not None and handler is not victim, tries
    assert all(connections[t["connection"]] is not victim for t in tries[1:]), tries
    # ... and only once the dead replica's claim had lapsed
    assert tries[-1]["at"] - tries[0]["at"] >= LEASE, tries

    async def settled() -> bool:
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    select(SlackRequestRow.holder, SlackRequestRow.lease_until).where(
                        SlackRequestRow.key == event_key(first["event_id"])
                    )
                )
            ).one_or_none()
        return row is not None and row.lease_until is None

    await wait_until(settled, within=10, what="the event's claim settled")
    await asyncio.sleep(LEASE)  # time for any repeat to show

    await assert_pinned_once(engine, emu, incident_id=incident_id, ts=said["ts"], channel=channel)
