"""Escalation through the running app: pages (DMs), deadlines in SQL, exactly once, on time."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select, update

from bot.clock import ManualClock, SystemClock
from bot.config import PulseOpsConfig, parse_config
from bot.delivery.kinds import OutboxKind
from bot.sandbox.emulator import DEFAULT_SCOPES, Emulator
from store.models import EscalationRow, OutboxRow, PageRow
from store.oncall import OverrideRepository
from tests.conftest import Harness, alertmanager_payload, emulated
from tests.helpers import (
    ONCALL_YAML,
    WEDNESDAY,
    buttons,
    click,
    dm_refs,
    dms,
    eventually,
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
    # the note is sent after the pages are committed: wait for it too
    await eventually(
        lambda: any(
            "Paged level 2" in e["text"] for e in harness.emu.ephemerals if e["user"] == "U0ALICE01"
        )
    )
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


def invited(harness: Harness) -> list[str]:
    """Everyone PulseOps asked Slack to invite, in order."""
    return [
        user
        for call in harness.emu.calls_to("conversations.invite")
        for user in str(call["args"]["users"]).split(",")
    ]


def already_in_channel(harness: Harness) -> list[dict[str, Any]]:
    """The invite calls Slack answered (wholly or for one user) with already_in_channel."""
    return [
        call
        for call in harness.emu.calls_to("conversations.invite")
        if call["response"].get("error") == "already_in_channel"
        or any(e.get("error") == "already_in_channel" for e in call["response"].get("errors", []))
    ]


@pytest.mark.parametrize("private", [False, True], ids=["public", "private"])
async def test_paging_invites_only_people_not_in_the_channel(
    emulator: Emulator, database_url: str, private: bool
) -> None:
    text = ONCALL_YAML.format(first="5m", second="10m")
    if private:
        text = text.replace(
            '  incidents_channel: "C0INCIDENT"\n',
            '  incidents_channel: "C0INCIDENT"\n  private_channels: true\n',
        )
    config = parse_config(text, source="oncall.yml", environ={})
    assert config.slack.private_channels is private
    async with Harness(
        emulator=emulator, database_url=database_url, config=config, clock=ManualClock(WEDNESDAY)
    ) as harness:
        incident_id = await fire(harness)
        channel = (await harness.incident(incident_id))["slack"]["channel_id"]
        assert harness.emu.channels[channel].is_private is private
        # Bob, on call and in the team, is invited with the team when the channel opens; his
        # page then finds him in the channel already
        assert invited(harness) == ["U0ALICE01", "U0BOB0001"]
        # level 2 pages Carol (not a member: invited), then the policy repeats and pages Bob
        # (a member: not invited again)
        for _ in range(2):
            harness.clock.advance(600)
            assert await harness.deps.escalations.sweep() == 1
            await harness.settle()
        assert [(p.target, p.cycle) for p in await pages(harness, incident_id)] == [
            ("U0BOB0001", 0),
            ("U0CAROL01", 0),
            ("S0PAYONCAL", 0),
            ("U0BOB0001", 1),
        ]
        assert invited(harness) == ["U0ALICE01", "U0BOB0001", "U0CAROL01"]
        assert already_in_channel(harness) == []
        assert {"U0ALICE01", "U0BOB0001", "U0CAROL01"} <= harness.emu.channels[channel].members
        assert all(c["response"]["ok"] for c in harness.emu.calls_to("conversations.members"))
        # every page still mentions its person in the channel
        texts = [m["text"] for m in harness.emu.messages(channel)]
        for user, times in (("U0BOB0001", 2), ("U0CAROL01", 1)):
            assert sum(f"<@{user}> you are paged" in t for t in texts) == times


async def test_someone_who_joined_by_themselves_is_not_invited(harness: Harness) -> None:
    incident_id = await fire(harness)
    channel = (await harness.incident(incident_id))["slack"]["channel_id"]
    await harness.emu.post_user_message(user="U0CAROL01", channel=channel, text="looking")
    assert "U0CAROL01" in harness.emu.channels[channel].members
    harness.clock.advance(300)
    assert await harness.deps.escalations.sweep() == 1
    await harness.settle()
    assert len(dms(harness, "U0CAROL01")) == 1
    assert "U0CAROL01" not in invited(harness)
    assert already_in_channel(harness) == []


async def test_a_page_redelivered_after_a_crash_does_not_invite_again(harness: Harness) -> None:
    incident_id = await fire(harness)
    harness.clock.advance(300)
    assert await harness.deps.escalations.sweep() == 1
    await harness.settle()
    assert invited(harness).count("U0CAROL01") == 1
    # a worker that died after inviting Carol, before its progress was saved: the page's
    # row is due again with no step on record
    async with harness.deps.db.write() as session:
        await session.execute(
            update(OutboxRow)
            .where(OutboxRow.incident_id == incident_id, OutboxRow.kind == OutboxKind.PAGE)
            .values(
                status="pending", progress={}, done_at=None, next_attempt_at=harness.clock.now()
            )
        )
    await harness.settle()
    assert invited(harness).count("U0CAROL01") == 1
    assert already_in_channel(harness) == []
    # someone who left the channel is invited again when paged again
    channel = (await harness.incident(incident_id))["slack"]["channel_id"]
    harness.emu.channels[channel].members.discard("U0BOB0001")
    await click(harness, incident_id, "incident_escalate", user="U0ALICE01")
    await eventually(lambda: invited(harness).count("U0BOB0001") == 2)
    assert already_in_channel(harness) == []


async def test_without_the_read_scopes_paging_still_invites(database_url: str) -> None:
    """An app installed before it asked for channels:read / groups:read invites as before."""
    scopes = [s for s in DEFAULT_SCOPES if s not in {"channels:read", "groups:read"}]
    async with (
        emulated(scopes=scopes) as emu,
        Harness(
            emulator=emu,
            database_url=database_url,
            config=oncall_config(),
            clock=ManualClock(WEDNESDAY),
        ) as harness,
    ):
        incident_id = await fire(harness)
        harness.clock.advance(300)
        assert await harness.deps.escalations.sweep() == 1
        await harness.settle()
        refused = harness.emu.calls_to("conversations.members")
        assert refused and all(c["response"]["error"] == "missing_scope" for c in refused)
        channel = (await harness.incident(incident_id))["slack"]["channel_id"]
        assert {"U0ALICE01", "U0BOB0001", "U0CAROL01"} <= harness.emu.channels[channel].members
        assert "U0CAROL01" in invited(harness)


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


async def test_a_page_dm_posted_but_not_recorded_is_found_not_sent_again(
    harness: Harness,
) -> None:
    """A worker died after Slack took the DM and before it was recorded: the redelivery
    finds the DM by its mark and adopts it."""
    incident_id = await fire(harness)
    await harness.settle()
    (page,) = [p for p in await pages(harness, incident_id) if p.kind == "user"]
    assert page.dm_ts is not None
    before = len(dms(harness, page.target))
    async with harness.deps.db.write() as session:
        await session.execute(
            update(PageRow).where(PageRow.id == page.id).values(dm_ts=None, dm_version=0)
        )
        await session.execute(
            update(OutboxRow)
            .where(OutboxRow.incident_id == incident_id, OutboxRow.kind == OutboxKind.PAGE)
            .values(
                status="pending",
                progress={"unsure": True},
                done_at=None,
                next_attempt_at=harness.clock.now(),
            )
        )
    await harness.restart()  # a new process: it knows only what the database says
    await harness.settle()
    assert len(dms(harness, page.target)) == before  # no second DM
    (again,) = [p for p in await pages(harness, incident_id) if p.kind == "user"]
    assert again.dm_ts == page.dm_ts  # the DM Slack already had was adopted
