"""Escalation through the running app: pages (DMs), deadlines in SQL, exactly once, on time."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from bot.clock import ManualClock, SystemClock
from bot.config import PulseOpsConfig
from bot.sandbox.emulator import Emulator
from store.models import EscalationRow, PageRow
from store.oncall import OverrideRepository
from tests.conftest import Harness, alertmanager_payload
from tests.helpers import (
    WEDNESDAY,
    buttons,
    click,
    dm_refs,
    dms,
    fire,
    oncall_config,
    wait_for_status,
)

pytestmark = pytest.mark.asyncio
BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)


@pytest.fixture
def config() -> PulseOpsConfig:
    return oncall_config()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(WEDNESDAY)


async def pages(harness: Harness, incident_id: int) -> list[PageRow]:
    async with harness.deps.db.read() as session:
        rows = await session.scalars(
            select(PageRow).where(PageRow.incident_id == incident_id).order_by(PageRow.id)
        )
        return list(rows.all())


async def escalation(harness: Harness, incident_id: int) -> EscalationRow:
    async with harness.deps.db.read() as session:
        row = await session.get(EscalationRow, incident_id)
        assert row is not None
        return row


async def test_first_level_pages_the_on_call_person_at_once(harness: Harness) -> None:
    incident_id = await fire(harness)
    (page,) = await pages(harness, incident_id)
    assert (page.target, page.level, page.cycle, page.via) == (
        "U0BOB0001",
        0,
        0,
        "schedule payments-primary",
    )
    (dm,) = dms(harness, "U0BOB0001")
    assert "You are paged" in dm["text"]
    assert buttons(dm) == ["incident_acknowledge", "incident_resolve", "incident_escalate"]
    incident = await harness.incident(incident_id)
    channel = incident["slack"]["channel_id"]
    assert "U0BOB0001" in harness.emu.channels[channel].members
    mentions = [
        m for m in harness.emu.messages(channel) if "<@U0BOB0001> you are paged" in m["text"]
    ]
    assert len(mentions) == 1
    paged = [e for e in incident["timeline"] if e["kind"] == "paged"]
    assert len(paged) == 1 and "level 1" in paged[0]["text"]
    # `/incident timeline` shows whom it paged as a mention, not as escaped markup
    reply = await harness.emu.command(
        user="U0ALICE01", channel=channel, command="/incident", text="timeline"
    )
    assert "Paged <@U0BOB0001> (level 1" in reply["body"], reply["body"]
    state = await escalation(harness, incident_id)
    assert state.status == "active"
    assert state.next_at == WEDNESDAY.replace(minute=5)


async def test_escalates_level_by_level_until_acknowledged(harness: Harness) -> None:
    incident_id = await fire(harness)
    escalations = harness.deps.escalations
    harness.clock.advance(299)
    assert await escalations.sweep() == 0  # not due yet
    harness.clock.advance(1)
    assert await escalations.sweep() == 1
    await harness.settle()
    targets = [(p.target, p.level, p.cycle) for p in await pages(harness, incident_id)]
    assert targets == [("U0BOB0001", 0, 0), ("U0CAROL01", 1, 0), ("S0PAYONCAL", 1, 0)]
    assert len(dms(harness, "U0CAROL01")) == 1
    channel = (await harness.incident(incident_id))["slack"]["channel_id"]
    assert any("<!subteam^S0PAYONCAL>" in m["text"] for m in harness.emu.messages(channel))
    # the policy repeats once: level 1 again after the second delay
    harness.clock.advance(600)
    assert await escalations.sweep() == 1
    await harness.settle()
    assert [(p.target, p.cycle) for p in await pages(harness, incident_id)][-1] == ("U0BOB0001", 1)
    # Carol acknowledges from her DM: no more pages, and every copy updates in place
    ((carol_channel, carol_dm),) = dm_refs(harness, "U0CAROL01")
    result = await harness.emu.click(
        user="U0CAROL01",
        channel=carol_channel,
        ts=carol_dm["ts"],
        action_id="incident_acknowledge",
    )
    assert result["status"] == 200
    await wait_for_status(harness, incident_id, "acknowledged")
    await harness.settle()
    assert (await escalation(harness, incident_id)).status == "stopped"
    count = len(await pages(harness, incident_id))
    harness.clock.advance(3600)
    assert await escalations.sweep() == 0
    assert len(await pages(harness, incident_id)) == count
    for dm in dms(harness, "U0BOB0001") + dms(harness, "U0CAROL01"):
        assert buttons(dm) == ["incident_resolve", "incident_escalate"]


async def test_policy_exhausts_after_its_repeats(harness: Harness) -> None:
    incident_id = await fire(harness)
    for _ in range(6):
        harness.clock.advance(600)
        await harness.deps.escalations.sweep()
    steps = {(p.level, p.cycle) for p in await pages(harness, incident_id)}
    assert steps == {(0, 0), (1, 0), (0, 1), (1, 1)}
    state = await escalation(harness, incident_id)
    assert state.status == "exhausted" and state.next_at is None


@BOTH
async def test_concurrent_sweeps_and_replicas_page_each_step_once(
    harness: Harness, emulator: Emulator
) -> None:
    incident_id = await fire(harness)
    harness.clock.advance(300)
    # a second replica of the service on the same database
    async with harness.replica() as other:
        sweeps = [harness.deps.escalations.sweep() for _ in range(3)]
        sweeps += [other.escalations.sweep() for _ in range(3)]
        results = await asyncio.gather(*sweeps)
        assert sum(results) == 1
    await harness.settle()
    level_two = [p.target for p in await pages(harness, incident_id) if p.level == 1]
    assert level_two == ["U0CAROL01", "S0PAYONCAL"]
    assert len(dms(harness, "U0CAROL01")) == 1


@BOTH
async def test_a_restart_neither_loses_nor_repeats_a_page(harness: Harness) -> None:
    incident_id = await fire(harness)
    await harness.stop()
    harness.clock.advance(400)  # the deadline passes while the service is down
    await harness.start()
    assert await harness.deps.escalations.sweep() == 1
    assert await harness.deps.escalations.sweep() == 0
    await harness.settle()
    rows = await pages(harness, incident_id)
    assert [(p.target, p.level) for p in rows] == [
        ("U0BOB0001", 0),
        ("U0CAROL01", 1),
        ("S0PAYONCAL", 1),
    ]
    late = [p for p in rows if p.level == 1][0]
    assert (late.paged_at - late.scheduled_at).total_seconds() == 100  # measured lateness


async def test_escalate_button_and_command_page_the_next_level_now(harness: Harness) -> None:
    incident_id = await fire(harness)
    await click(harness, incident_id, "incident_escalate", user="U0ALICE01")
    for _ in range(100):
        if len(await pages(harness, incident_id)) == 3:
            break
        await asyncio.sleep(0.02)
    notes = [e for e in harness.emu.ephemerals if e["user"] == "U0ALICE01"]
    assert notes and "Paged level 2" in notes[-1]["text"]
    timeline = (await harness.incident(incident_id))["timeline"]
    assert any(e["kind"] == "escalated" and e["actor"] == "U0ALICE01" for e in timeline)
    reply = await harness.emu.command(
        user="U0ALICE01", channel="C0INCIDENT", command="/incident", text=f"escalate {incident_id}"
    )
    assert "Paged level 1" in json.dumps(reply["body"])
    assert [(p.level, p.cycle) for p in await pages(harness, incident_id)][-1] == (0, 1)


async def test_escalating_without_a_policy_explains_why(harness: Harness) -> None:
    _, body = await harness.post_alert(
        {"title": "Search is slow", "dedup_key": "s1"}, integration="generic"
    )
    incident_id = body["results"][0]["incident_id"]
    await harness.settle()
    assert await pages(harness, incident_id) == []
    reply = await harness.emu.command(
        user="U0CAROL01", channel="C0INCIDENT", command="/incident", text=f"escalate {incident_id}"
    )
    assert "has no escalation policy" in json.dumps(reply["body"])


async def test_an_override_is_paged_instead_and_noted(harness: Harness) -> None:
    async with harness.deps.db.write() as session:
        await OverrideRepository(session).add(
            schedule_id="payments-primary",
            user="U0ALICE01",
            start=WEDNESDAY.replace(hour=10),
            end=WEDNESDAY.replace(hour=14),
            now=WEDNESDAY,
            created_by="U0BOB0001",
        )
    incident_id = await fire(harness)
    (page,) = await pages(harness, incident_id)
    assert page.target == "U0ALICE01"
    paged = [e for e in (await harness.incident(incident_id))["timeline"] if e["kind"] == "paged"]
    assert "override" in paged[0]["text"]


async def test_a_page_survives_a_slack_outage(harness: Harness) -> None:
    harness.emu.set_faults(down_for=600)
    incident_id = await fire(harness)
    assert len(await pages(harness, incident_id)) == 1
    assert dms(harness, "U0BOB0001") == []
    harness.emu.set_faults(clear=True)
    harness.clock.advance(60)
    await harness.settle()
    assert len(dms(harness, "U0BOB0001")) == 1


@pytest.fixture
async def realtime(emulator: Emulator, database_url: str) -> AsyncIterator[Harness]:
    async with Harness(
        emulator=emulator,
        database_url=database_url,
        config=oncall_config("1s", "1s"),
        clock=SystemClock(),
        run_jobs=True,
    ) as h:
        yield h


@pytest.mark.slow
async def test_real_time_escalation_and_acknowledge(realtime: Harness) -> None:
    """Seconds-long delays, the real scheduler and a signed click: no clock stepping."""
    harness = realtime
    status, body = await harness.post_alert(alertmanager_payload())
    assert status == 202
    incident_id = body["results"][0]["incident_id"]
    deadline = asyncio.get_running_loop().time() + 10
    while len(await pages(harness, incident_id)) < 3:
        assert asyncio.get_running_loop().time() < deadline, "level 2 was never paged"
        await asyncio.sleep(0.05)
    rows = await pages(harness, incident_id)
    lateness = [(p.paged_at - p.scheduled_at).total_seconds() for p in rows if p.level == 1]
    assert all(0 <= late < 2 for late in lateness), lateness
    while not (await harness.incident(incident_id))["slack"]["message_ts"]:
        await asyncio.sleep(0.05)
    await click(harness, incident_id, "incident_acknowledge", user="U0CAROL01")
    while (await harness.incident(incident_id))["status"] != "acknowledged":
        assert asyncio.get_running_loop().time() < deadline + 5
        await asyncio.sleep(0.05)
    count = len(await pages(harness, incident_id))
    await asyncio.sleep(2.5)  # two more delays: nothing more is paged
    assert len(await pages(harness, incident_id)) == count


async def test_rate_limited_pages_are_retried_and_sent_once(harness: Harness) -> None:
    harness.emu.set_faults(rate_limits={"conversations.open": 0})
    first = await fire(harness)
    _, body = await harness.post_alert(
        alertmanager_payload(group_key="other", fingerprint="f-2", summary="Second")
    )
    second = body["results"][0]["incident_id"]
    await harness.settle()
    limited = [c for c in harness.emu.calls_to("conversations.open") if c["status"] == 429]
    assert limited, "opening the DM should have hit the rate limit"
    assert dms(harness, "U0BOB0001") == []
    harness.emu.set_faults(clear=True)
    harness.clock.advance(120)
    await harness.settle()
    # both pages waited for the same person: one DM carries both, each page recorded once
    (dm,) = dms(harness, "U0BOB0001")
    assert f"INC-{first}" in dm["text"] and f"INC-{second}" in dm["text"]
    for incident_id in (first, second):
        (page,) = await pages(harness, incident_id)
        assert page.dm_ts == dm["ts"]
    opened = [c for c in harness.emu.calls_to("conversations.open") if c["status"] == 200]
    assert len(opened) == 1
