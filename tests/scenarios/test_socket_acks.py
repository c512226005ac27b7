"""When PulseOps acknowledges a Socket Mode envelope: an event once its listener has finished,
not when the listener failed or outlived its claim's lease (Slack then retries it); the lease is
PULSEOPS_SLACK_CLAIM_LEASE."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sqlalchemy import select, text

from bot.app import SLACK
from bot.clock import ManualClock
from bot.config import PulseOpsConfig, Settings
from bot.sandbox.emulator import Emulator
from handlers.slack_http import event_key
from store.models import SlackRequestRow, TimelineRow
from tests.conftest import APP_TOKEN, SocketHarness, alertmanager_payload, emulated

pytestmark = pytest.mark.asyncio
BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)


class LeasedHarness(SocketHarness):
    """The service in Socket Mode with its own PULSEOPS_SLACK_CLAIM_LEASE."""

    lease: float = 30.0

    def settings(self) -> Settings:
        return super().settings().model_copy(update={"slack_claim_lease": self.lease})


@asynccontextmanager
async def pinning_setup(
    database_url: str,
    config: PulseOpsConfig,
    clock: ManualClock,
    *,
    lease: float = 30.0,
    **emulator: Any,
) -> AsyncIterator[tuple[LeasedHarness, Emulator, int, str, dict[str, Any]]]:
    """The service over Socket Mode, an incident with its channel, and a message in it: the
    harness, the emulator, the incident's id, its channel and the message."""
    # the events manifest.yml subscribes to
    events = ["app_home_opened", "reaction_added"]
    async with emulated(app_token=APP_TOKEN, bot_events=events, **emulator) as emu:
        harness = LeasedHarness(emulator=emu, database_url=database_url, config=config, clock=clock)
        harness.lease = lease
        async with harness:
            status, body = await harness.post_alert(alertmanager_payload())
            assert status == 202, body
            incident_id = body["results"][0]["incident_id"]
            await harness.settle()
            channel = (await harness.incident(incident_id))["slack"]["channel_id"]
            said = await emu.post_user_message(user="U0BOB0001", channel=channel, text="found it")
            yield harness, emu, incident_id, channel, said


async def timeline_messages(harness: SocketHarness, incident_id: int) -> list[str]:
    async with harness.deps.db.read() as session:
        rows = await session.scalars(
            select(TimelineRow).where(
                TimelineRow.incident_id == incident_id, TimelineRow.kind == "message_added"
            )
        )
        return [str(row.data["ts"]) for row in rows]


def told(emu: Emulator, user: str) -> list[dict[str, Any]]:
    return [c for c in emu.calls_to("chat.postEphemeral") if c["args"].get("user") == user]


async def claim_of(harness: SocketHarness, event_id: str) -> SlackRequestRow | None:
    async with harness.deps.db.read() as session:
        return await session.get(SlackRequestRow, event_key(event_id))


@BOTH
async def test_an_event_is_acknowledged_once_its_listener_has_done_the_work(
    database_url: str, config: PulseOpsConfig, clock: ManualClock
) -> None:
    async with pinning_setup(database_url, config, clock) as (
        harness,
        emu,
        incident,
        channel,
        said,
    ):
        # Slack answers the listener slowly: the ack still waits for the whole listener
        emu.set_faults(latency_ms=400, methods=["conversations.history"])
        pinned = await emu.add_reaction(user="U0ALICE01", channel=channel, ts=said["ts"])
        assert (pinned["status"], pinned["transport"]) == (200, "socket"), pinned
        # by the time the ack arrived, the message was on the timeline and the person told
        assert await timeline_messages(harness, incident) == [said["ts"]]
        assert [c["status"] for c in told(emu, "U0ALICE01")] == [200]
        claim = await claim_of(harness, pinned["event_id"])
        assert claim is not None and claim.lease_until is None  # settled
        # App Home too: acknowledged, once published
        opened = await emu.open_home(user="U0CAROL01")
        assert opened["status"] == 200, opened


@BOTH
async def test_a_failed_listener_is_not_acknowledged_and_slacks_retry_runs_it(
    database_url: str,
    config: PulseOpsConfig,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with pinning_setup(
        database_url, config, clock, ack_timeout=1.0, event_retry_delays=(1.0, 1.0, 1.0)
    ) as (harness, emu, incident, channel, said):
        # the timeline cannot be written: the listener fails
        async with harness.deps.db.write() as session:
            await session.execute(text("ALTER TABLE timeline_events RENAME TO timeline_away"))
        with caplog.at_level(logging.WARNING, logger="bot.server"):
            pinned = await emu.add_reaction(user="U0ALICE01", channel=channel, ts=said["ts"])
        assert (pinned["status"], pinned.get("error")) == (0, "operation_timeout"), pinned
        assert any("listener failed" in r.getMessage() for r in caplog.records)
        assert await claim_of(harness, pinned["event_id"]) is None  # released for the retry
        async with harness.deps.db.write() as session:
            await session.execute(text("ALTER TABLE timeline_away RENAME TO timeline_events"))
        await emu.socket_idle(within=20)
        tries = [e for e in emu.socket.log if e["event_id"] == pinned["event_id"]]
        assert [(t["retry_attempt"], t["outcome"]) for t in tries] == [
            (0, "operation_timeout"),
            (1, "acked"),
        ]
        assert await timeline_messages(harness, incident) == [said["ts"]]
        assert [c["status"] for c in told(emu, "U0ALICE01")] == [200]


@BOTH
async def test_a_listener_past_its_lease_is_stopped_unacknowledged_and_the_retry_takes_over(
    database_url: str,
    config: PulseOpsConfig,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    slow = 4.0  # seconds Slack takes to answer the first listener's question
    async with pinning_setup(
        database_url,
        config,
        clock,
        lease=1.0,
        ack_timeout=2.0,
        event_retry_delays=(1.0, 1.0, 1.0),
    ) as (harness, emu, incident, channel, said):
        assert harness.app[SLACK].replays.lease == 1.0
        emu.set_faults(latency_ms=slow * 1000, methods=["conversations.history"])
        asked = time.time()
        with caplog.at_level(logging.WARNING, logger="bot.server"):
            pinned = await emu.add_reaction(user="U0ALICE01", channel=channel, ts=said["ts"])
        emu.set_faults(clear=True)
        assert (pinned["status"], pinned.get("error")) == (0, "operation_timeout"), pinned
        assert any("outlived its claim" in r.getMessage() for r in caplog.records)
        await emu.socket_idle(within=20)
        tries = [e for e in emu.socket.log if e["event_id"] == pinned["event_id"]]
        assert [t["outcome"] for t in tries] == ["operation_timeout", "acked"], tries
        # the first listener was stopped: when Slack's slow answer comes, nobody is waiting
        await asyncio.sleep(max(0.0, asked + slow + 1.0 - time.time()))
        assert await timeline_messages(harness, incident) == [said["ts"]]
        assert [c["status"] for c in told(emu, "U0ALICE01")] == [200]


async def test_a_stopping_replica_finishes_and_acknowledges_the_events_it_is_handling(
    database_url: str, config: PulseOpsConfig, clock: ManualClock
) -> None:
    setup = pinning_setup(database_url, config, clock)
    async with setup as (harness, emu, incident, channel, said):
        emu.set_faults(latency_ms=1000, methods=["conversations.history"])
        pinning = asyncio.create_task(
            emu.add_reaction(user="U0ALICE01", channel=channel, ts=said["ts"])
        )

        async def asking() -> bool:
            return any(c["status"] is None for c in emu.calls_to("conversations.history"))

        deadline = time.monotonic() + 5
        while not await asking():
            assert time.monotonic() < deadline, "the listener never asked Slack"
            await asyncio.sleep(0.02)
        assert await timeline_messages(harness, incident) == []
        await harness.stop()  # SIGTERM: the connection closes once the listener is done
        pinned = await pinning
        assert pinned["status"] == 200, pinned
        assert [c["status"] for c in told(emu, "U0ALICE01")] == [200]
