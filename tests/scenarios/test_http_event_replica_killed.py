"""Two `pulseops serve` replicas over HTTP on one database; the one handling a 📌 is killed
(SIGKILL) while its listener waits for Slack. It had not answered the delivery, so Slack sends
the event again (the same `event_id`, `X-Slack-Retry-Num`), here to the other replica: while the
dead replica's claim holds, the retry is answered 503 and nothing runs; once its lease has run
out, the next retry is handled: the message is on the timeline once, and the person who pinned
it is told once.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select

from handlers.slack_http import event_key
from store.models import SlackRequestRow
from tests.conftest import emulated
from tests.scenarios.test_socket_replica_killed import assert_pinned_once, open_incident_channel
from tests.serve_process import Service, engine_for, wait_until

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]
BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)

LEASE = 5  # seconds: PULSEOPS_SLACK_CLAIM_LEASE of the replicas
SLOW_SLACK_MS = 60_000  # conversations.history answers this late while the victim is killed


@BOTH
async def test_a_replica_killed_mid_event_leaves_it_to_slacks_retry_handled_once(
    tmp_path: Path, database_url: str
) -> None:
    async with (
        emulated(ack_timeout=1.0) as emu,
        aiohttp.ClientSession() as http,
        engine_for(database_url) as engine,
    ):
        env = {"PULSEOPS_SLACK_CLAIM_LEASE": str(LEASE)}
        victim, survivor = (
            Service(tmp_path, emu.api_url, database_url, env=env, name=name)
            for name in ("victim", "survivor")
        )
        try:
            await victim.start(http)  # first: it migrates the schema
            await survivor.start(http)
            emu.request_url = f"{victim.url}/slack/events"
            incident_id, channel = await open_incident_channel(http, victim)
            said = await emu.post_user_message(
                user="U0BOB0001", channel=channel, text="payment pods OOM-killed at 12:02"
            )

            # the 📌 goes to the victim, whose listener then waits for Slack's (slow) answer
            emu.set_faults(latency_ms=SLOW_SLACK_MS, methods=["conversations.history"])
            started = time.monotonic()
            pinning = asyncio.create_task(
                emu.add_reaction(user="U0ALICE01", channel=channel, ts=said["ts"])
            )

            async def victim_is_asking_slack() -> bool:
                return any(c["status"] is None for c in emu.calls_to("conversations.history"))

            await wait_until(victim_is_asking_slack, within=15, what="the victim's listener")
            await victim.kill()
            emu.set_faults(clear=True)
            first = await pinning
            # not answered: the answer waits for the listener, which never finished
            assert first["status"] == 0, first
            event_id = first["event_id"]

            # Slack retries on the survivor (newly signed: a second later at least), while
            # the dead replica's claim still holds
            emu.request_url = f"{survivor.url}/slack/events"
            await asyncio.sleep(max(0.0, started + 1.1 - time.monotonic()))
            early = await emu.redeliver_event(event_id, retry_num=1)
            assert early["status"] == 503, early
            assert time.monotonic() - started < LEASE
            await asyncio.sleep(max(0.0, started + LEASE + 0.5 - time.monotonic()))
            late = await emu.redeliver_event(event_id, retry_num=2)
            assert late["status"] == 200, late
            # a further retry is answered 200 and runs nothing
            again = await emu.redeliver_event(event_id, retry_num=3)
            assert (again["status"], again["body"]) == (200, ""), again

            async def settled() -> bool:
                async with engine.connect() as conn:
                    lease = await conn.scalar(
                        select(SlackRequestRow.lease_until).where(
                            SlackRequestRow.key == event_key(event_id)
                        )
                    )
                return lease is None

            await wait_until(settled, within=10, what="the event's claim settled")
            await assert_pinned_once(
                engine, emu, incident_id=incident_id, ts=said["ts"], channel=channel
            )
        finally:
            for service in (victim, survivor):
                await service.stop()
