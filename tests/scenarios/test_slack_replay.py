"""Replayed Slack requests change nothing: a signed request captured on the wire and sent again,
to the same replica or another one on the same database, is answered 200 with an empty body
and runs no listener; Slack's retries of an event (same event_id) are handled once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text

from bot.clock import ManualClock
from bot.config import PulseOpsConfig
from bot.sandbox.emulator import Emulator
from handlers.slack_http import ReplayLog
from store.models import OverrideRow, PageRow
from store.slack_requests import SlackRequestRepository
from tests.conftest import APP_TOKEN, Harness, SocketHarness, emulated
from tests.helpers import WEDNESDAY, eventually, fire, oncall_config, reply_text
from tests.scenarios.slack_wire import Captured, replica, send, tap

pytestmark = pytest.mark.asyncio
BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)


@pytest.fixture
def config() -> PulseOpsConfig:
    return oncall_config()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(WEDNESDAY)


async def resend(harness: Harness, url: str, request: Captured) -> tuple[int, bytes]:
    return await send(harness, request.body, request.headers, url=url)


async def count(harness: Harness, model: Any) -> int:
    async with harness.deps.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def listing_total(harness: Harness) -> int:
    _, listing = await harness.get("/api/v1/incidents")
    return int(listing["total"])


async def settled_for(seconds: float) -> None:
    """Give a listener that should not run the time it would take to run."""
    await asyncio.sleep(seconds)


@BOTH
async def test_a_captured_declaration_sent_three_times_opens_one_incident(
    harness: Harness,
) -> None:
    await harness.emu.command(
        user="U0CAROL01", channel="C0INCIDENT", command="/incident", text="declare"
    )
    await eventually(lambda: bool(harness.emu.views))
    ((view_id, _),) = harness.emu.views.items()
    async with tap(harness) as captured:
        await harness.emu.submit_view(
            user="U0CAROL01",
            view_id=view_id,
            values={
                "declare_title": {"title": "Checkout is down"},
                "declare_severity": {"severity": "SEV1"},
            },
        )
    (submission,) = captured
    assert await listing_total(harness) == 0  # the recorder kept it from the app
    async with replica(harness) as other:
        answers = await asyncio.gather(
            resend(harness, harness.url, submission),
            resend(harness, other, submission),
            resend(harness, harness.url, submission),
        )
    assert [status for status, _ in answers] == [200, 200, 200]
    assert sorted(body for _, body in answers)[:2] == [b"", b""], answers  # the replays
    assert await listing_total(harness) == 1
    await harness.settle()
    assert len(harness.emu.calls_to("conversations.create")) == 1


@BOTH
async def test_a_replayed_escalate_click_pages_once(harness: Harness) -> None:
    incident_id = await fire(harness)
    assert await count(harness, PageRow) == 1  # level 1: the person on call
    incident = await harness.incident(incident_id)
    async with tap(harness) as captured:
        await harness.emu.click(
            user="U0ALICE01",
            channel=incident["slack"]["channel_id"],
            ts=incident["slack"]["message_ts"],
            action_id="incident_escalate",
        )
    (click,) = captured
    assert await resend(harness, harness.url, click) == (200, b"")
    await eventually(lambda: len(harness.emu.ephemerals) == 1)
    pages = await count(harness, PageRow)
    assert pages == 3  # level 2: a person and a user group
    async with replica(harness) as other:
        assert await resend(harness, other, click) == (200, b"")
        assert await resend(harness, harness.url, click) == (200, b"")
        await settled_for(0.5)
    await harness.settle()
    assert await count(harness, PageRow) == pages
    assert len(harness.emu.ephemerals) == 1
    timeline = (await harness.incident(incident_id))["timeline"]
    assert [e["kind"] for e in timeline].count("escalated") == 1


@BOTH
async def test_a_replayed_override_command_adds_one_override(harness: Harness) -> None:
    async with tap(harness) as captured:
        await harness.emu.command(
            user="U0ALICE01",
            channel="C0INCIDENT",
            command="/oncall",
            text="override <@U0CAROL01> 4h payments-primary",
        )
    (command,) = captured
    async with replica(harness) as other:
        answers = await asyncio.gather(
            *(resend(harness, url, command) for url in (harness.url, other, harness.url))
        )
    assert [status for status, _ in answers] == [200, 200, 200]
    confirmations = [body for _, body in answers if body]
    assert len(confirmations) == 1 and b"override #1" in confirmations[0], answers
    assert await count(harness, OverrideRow) == 1


def home_renders(harness: Harness) -> float:
    """How many Home tab renders finished (each handled app_home_opened makes one)."""
    total = 0.0
    for metric in harness.deps.metrics.registry.collect():
        if metric.name == "pulseops_home_publishes":
            total += sum(s.value for s in metric.samples if s.name.endswith("_total"))
    return total


def quick_home(harness: Harness) -> None:
    home = harness.deps.home
    home.debounce = 0.01
    home.min_interval = 0.0
    home.stats_ttl = 0.0


@BOTH
async def test_an_event_retried_by_slack_is_handled_once(harness: Harness) -> None:
    quick_home(harness)
    opened = await harness.emu.open_home(user="U0BOB0001")
    assert opened["status"] == 200
    await eventually(lambda: home_renders(harness) == 1)
    await harness.deps.home.wait_idle()
    # Slack did not see the answer in time: the same event_id, newly signed, with the retry
    # headers, to this replica and then to another
    retried = await harness.emu.redeliver_event(opened["event_id"], retry_num=1)
    assert (retried["status"], retried["body"]) == (200, "")
    async with replica(harness) as other:
        harness.emu.request_url = f"{other}/slack/events"
        retried = await harness.emu.redeliver_event(opened["event_id"], retry_num=2)
        assert (retried["status"], retried["body"]) == (200, "")
    harness.emu.request_url = f"{harness.url}/slack/events"
    await settled_for(0.3)
    await harness.deps.home.wait_idle()
    assert home_renders(harness) == 1
    # a new event is handled as usual
    await harness.emu.open_home(user="U0BOB0001")
    await eventually(lambda: home_renders(harness) == 2)


async def test_the_replay_log_forgets_what_no_replay_can_match(harness: Harness) -> None:
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    log = ReplayLog(harness.deps.db, lease=30, wall=lambda: now.timestamp())
    assert await log.first("r:old", expires_at=now - timedelta(seconds=1))
    assert await log.first("r:new", expires_at=now + timedelta(seconds=1))
    assert not await log.first("r:new", expires_at=now + timedelta(seconds=1))
    assert await log.purge() == 1
    async with harness.deps.db.read() as session:
        assert await SlackRequestRepository(session).count() == 1
    assert await log.first("r:old", expires_at=now + timedelta(seconds=1))  # forgotten


# ---- Socket Mode ---------------------------------------------------------------------------


@pytest.fixture
async def socket_emulator() -> AsyncIterator[Emulator]:
    async with emulated(app_token=APP_TOKEN) as emu:
        yield emu


async def test_an_event_redelivered_over_socket_mode_is_handled_once(
    socket_emulator: Emulator, database_url: str, config: PulseOpsConfig, clock: ManualClock
) -> None:
    async with SocketHarness(
        emulator=socket_emulator, database_url=database_url, config=config, clock=clock
    ) as harness:
        quick_home(harness)
        opened = await socket_emulator.open_home(user="U0BOB0001")
        assert opened["transport"] == "socket", opened
        await eventually(lambda: home_renders(harness) == 1)
        await harness.deps.home.wait_idle()
        retried = await socket_emulator.redeliver_event(opened["event_id"], retry_num=1)
        assert retried["transport"] == "socket", retried
        await settled_for(0.3)
        await harness.deps.home.wait_idle()
        assert home_renders(harness) == 1


async def test_without_its_replay_log_the_app_still_answers(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    async with harness.deps.db.write() as session:
        await session.execute(text("DROP TABLE slack_requests"))
    result = await harness.emu.command(
        user="U0ALICE01", channel="C0INCIDENT", command="/incident", text="help"
    )
    assert result["status"] == 200 and "/incident declare" in reply_text(result), result
    assert any("replay protection skipped" in r.getMessage() for r in caplog.records)
