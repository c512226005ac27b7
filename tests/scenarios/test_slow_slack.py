"""Slow Slack: calls that time out although Slack carries them out are never repeated.

Slack answers chat.postMessage and conversations.create later than the client waits, but
does the work. Every incident still gets exactly one announcement, one channel and one
message in it: the earlier result is found (message metadata, the bot's own channel by
name) and adopted instead of calling again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from bot.clock import ManualClock
from bot.config import PulseOpsConfig, Settings
from bot.sandbox.emulator import BOT_USER_ID, Emulator
from store.models import IncidentRow, OutboxRow
from tests.conftest import BOT_TOKEN, SIGNING_SECRET, Harness, alertmanager_payload

pytestmark = pytest.mark.asyncio
BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
SLOW_METHODS = ["chat.postMessage", "conversations.create"]


class SlowSlackHarness(Harness):
    """The service with a short Slack client timeout (PULSEOPS_SLACK_TIMEOUT)."""

    slack_timeout = 0.5

    def settings(self) -> Settings:
        return Settings(
            slack_bot_token=SecretStr(BOT_TOKEN),
            slack_signing_secret=SecretStr(SIGNING_SECRET),
            slack_api_url=self.emu.api_url,
            database_url=self.database_url,
            PULSEOPS_SLACK_TIMEOUT=self.slack_timeout,
        )


@pytest.fixture
async def slow(
    emulator: Emulator, database_url: str, config: PulseOpsConfig, clock: ManualClock
) -> AsyncIterator[SlowSlackHarness]:
    async with SlowSlackHarness(
        emulator=emulator, database_url=database_url, config=config, clock=clock
    ) as h:
        yield h


async def fire(harness: Harness, n: int) -> None:
    for i in range(n):
        status, _ = await harness.post_alert(
            alertmanager_payload(
                group_key=f"g-{i}", fingerprint=f"fp-{i}", summary=f"Slow {'abcdefgh'[i]}"
            )
        )
        assert status == 202


async def answered(emu: Emulator, *, within: float = 10.0) -> None:
    """Wait until Slack has carried out (and answered) every call made so far."""
    deadline = time.monotonic() + within
    while any(call["status"] is None for call in emu.calls):
        assert time.monotonic() < deadline, "calls still unanswered"
        await asyncio.sleep(0.05)


async def assert_exactly_once(harness: Harness, incidents: int) -> None:
    """One announcement, one channel and one message in it per incident, all on record."""
    emu = harness.emu
    async with harness.deps.db.read() as session:
        rows = list((await session.scalars(select(IncidentRow))).all())
        outbox = list((await session.scalars(select(OutboxRow))).all())
    assert len(rows) == incidents
    assert all(r.status == "done" for r in outbox), [(r.kind, r.last_error) for r in outbox]
    announcements = emu.messages("C0INCIDENT")
    assert len(announcements) == incidents
    assert {m["ts"] for m in announcements} == {r.announcement_ts for r in rows}
    assert sorted(m["metadata"]["event_payload"]["incident_id"] for m in announcements) == sorted(
        r.id for r in rows
    )
    created = [c for c in emu.channels.values() if c.created_by == BOT_USER_ID and not c.is_im]
    assert len(created) == incidents, [c.name for c in created]
    assert {c.id for c in created} == {r.channel_id for r in rows}
    assert not [c.name for c in created if c.name.endswith("-2")]
    for row in rows:
        assert row.channel_id is not None
        messages = emu.messages(row.channel_id)
        assert [m["ts"] for m in messages] == [row.message_ts]
        assert messages[0]["pinned"]


@pytest.mark.slow
@BOTH
async def test_posts_and_channels_that_time_out_are_adopted_not_repeated(
    slow: SlowSlackHarness,
) -> None:
    # Slack takes 1 s; the client gives up after 0.5 s
    slow.emu.set_faults(latency_ms=1000, methods=SLOW_METHODS)
    await fire(slow, 4)
    await slow.settle()
    await answered(slow.emu)
    await assert_exactly_once(slow, 4)
    # each call was made once: the timed-out ones were found, not repeated
    assert len(slow.emu.calls_to("conversations.create")) == 4
    assert len(slow.emu.calls_to("chat.postMessage")) == 8
    looks = slow.emu.calls_to("conversations.history")
    assert looks and all(c["args"]["include_all_metadata"] for c in looks)


@pytest.mark.slow
@BOTH
async def test_a_redelivered_row_looks_before_posting_again(
    slow: SlowSlackHarness,
) -> None:
    # Slack takes 2 s, the client waits 1.2 s, and looking is worth it only 2.4 s later:
    # longer than a delivery waits in place, so the row is rescheduled and looks first
    await slow.stop()
    slow.slack_timeout = 1.2
    await slow.start()
    slow.emu.set_faults(latency_ms=2000, methods=SLOW_METHODS)
    await fire(slow, 3)
    for _ in range(4):
        await slow.settle()
        await answered(slow.emu)
        slow.clock.advance(5)
    await slow.settle()
    await assert_exactly_once(slow, 3)
    assert len(slow.emu.calls_to("conversations.create")) == 3
    assert len(slow.emu.calls_to("chat.postMessage")) == 6
    async with slow.deps.db.read() as session:
        attempts = (await session.scalars(select(OutboxRow.attempts))).all()
    assert max(attempts) > 1  # the adoption happened on a redelivery


async def test_nothing_is_looked_for_when_every_answer_arrived(harness: Harness) -> None:
    # rate limits and outages refuse calls outright: their retries need no look
    harness.emu.set_faults(rate_limits={"conversations.create": 1, "chat.postMessage": 2})
    await fire(harness, 3)
    await harness.settle()
    harness.emu.set_faults(clear=True)
    harness.clock.advance(120)
    await harness.settle()
    await assert_exactly_once(harness, 3)
    for method in ("conversations.history", "conversations.list", "auth.test"):
        assert harness.emu.calls_to(method) == []
