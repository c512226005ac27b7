"""Rotation handoffs through the running app: one message per handoff, a DM, the user group."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.clock import ManualClock, SystemClock
from bot.config import PulseOpsConfig, parse_config
from bot.domain.rotation import Shift
from bot.render import Names, Renderer
from bot.sandbox.emulator import Emulator
from store.models import HandoffRow, OutboxRow, ScheduleStateRow
from tests.conftest import CHANNELS, CONFIG_YAML, Harness, emulated
from tests.helpers import PAYMENTS_WEEKLY, dms, fire, make_incident

BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)

ALICE, BOB, CAROL = "U0ALICE01", "U0BOB0001", "U0CAROL01"

# A daily rotation of three, handing over at 09:00 Berlin time (08:00 UTC in winter), with the
# user group kept equal to the person on call. No escalation policy: the only DMs are handoffs.
DAILY_YAML = (
    CONFIG_YAML
    + """
schedules:
  - id: payments-primary
    team: payments
    time_zone: Europe/Berlin
    rotation:
      type: daily
      start: "2026-11-02T09:00:00"
      participants: ["U0ALICE01", "U0BOB0001", "U0CAROL01"]
    user_group: "S0PAYONCAL"
"""
)

# Weekly on Mondays at 09:00 Berlin time: across 2027-03-28 (clocks go forward) the UTC
# instant moves from 08:00 to 07:00.
WEEKLY_YAML = CONFIG_YAML + PAYMENTS_WEEKLY

WEDNESDAY = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
# Day 24 of the rotation: shift 24 is ALICE's (24 % 3 == 0), taking over from CAROL's shift 23.
THURSDAY_HANDOFF = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def daily_config() -> PulseOpsConfig:
    return parse_config(DAILY_YAML, source="handoffs.yml", environ={})


@pytest.fixture
def config() -> PulseOpsConfig:
    return daily_config()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(WEDNESDAY)


def text_of(message: dict[str, Any]) -> str:
    """A message's notification text and its sections' text, as one string."""
    parts = [message.get("text") or ""]
    for block in message.get("blocks") or []:
        if block.get("type") == "section" and block.get("text"):
            parts.append(block["text"]["text"])
    return "\n".join(parts)


def handoff_posts(harness: Harness, channel: str = "C0PAYMENTS") -> list[str]:
    """The text of every handoff message posted in `channel`."""
    texts = [text_of(m) for m in harness.emu.messages(channel)]
    return [t for t in texts if "On-call handoff:" in t]


def slack_date(instant: datetime) -> str:
    return f"<!date^{int(instant.timestamp())}^"


async def handoff_rows(harness: Harness) -> list[HandoffRow]:
    async with harness.deps.db.read() as session:
        rows = await session.scalars(select(HandoffRow).order_by(HandoffRow.at))
        return list(rows.all())


async def handoff_effects(harness: Harness) -> list[OutboxRow]:
    async with harness.deps.db.read() as session:
        rows = await session.scalars(
            select(OutboxRow).where(OutboxRow.kind == "handoff").order_by(OutboxRow.id)
        )
        return list(rows.all())


async def sweep_at(harness: Harness, instant: datetime) -> int:
    assert isinstance(harness.clock, ManualClock)
    harness.clock.set(instant)
    return await harness.deps.handoffs.sweep()


def running(
    emulator: Emulator, database_url: str, config: PulseOpsConfig, clock: ManualClock
) -> Harness:
    """The service on `config` and `clock` (not started): `async with running(...) as h:`."""
    return Harness(emulator=emulator, database_url=database_url, config=config, clock=clock)


async def test_a_handoff_is_announced_once_with_dm_and_user_group(harness: Harness) -> None:
    first = await fire(harness)
    second = await fire(
        harness,
        summary="<!channel> ledger <lag> & drift",
        fingerprint="feedbeef00000002",
        group_key='{}:{alertname="LedgerLag"}',
        alertname="LedgerLag",
    )
    # first sight of the schedule: nothing from before the service knew it is announced
    assert await harness.deps.handoffs.sweep() == 0
    async with harness.deps.db.read() as session:
        state = await session.get(ScheduleStateRow, "payments-primary")
        assert state is not None and state.handoffs_checked_until == WEDNESDAY
    assert await sweep_at(harness, THURSDAY_HANDOFF - SECOND) == 0
    assert await sweep_at(harness, THURSDAY_HANDOFF) == 1
    await harness.settle()

    (post,) = handoff_posts(harness)
    assert f"On-call handoff: <@{CAROL}> → <@{ALICE}>" in post
    assert "*Payments*" in post and "payments-primary" in post
    assert "late" not in post
    channels = [(await harness.incident(i))["slack"]["channel_id"] for i in (first, second)]
    assert f"INC-{first}" in post and f"INC-{second}" in post
    assert all(f"<#{c}>" in post for c in channels)
    assert "&lt;!channel&gt; ledger &lt;lag&gt; &amp; drift" in post
    assert "<!channel>" not in post
    assert f"Next handoff: {slack_date(THURSDAY_HANDOFF + timedelta(days=1))}" in post
    assert f"to <@{BOB}>" in post

    (dm,) = dms(harness, ALICE)
    assert "You are now on call" in dm["text"] and f"<@{CAROL}>" in dm["text"]
    assert dms(harness, CAROL) == []
    updates = harness.emu.calls_to("usergroups.users.update")
    assert [(c["args"]["usergroup"], c["args"]["users"]) for c in updates] == [
        ("S0PAYONCAL", ALICE)
    ]
    assert harness.emu.usergroups["S0PAYONCAL"]["users"] == [ALICE]

    (row,) = await handoff_rows(harness)
    assert (row.at, row.outgoing, row.incoming) == (THURSDAY_HANDOFF, CAROL, ALICE)
    (effect,) = await handoff_effects(harness)
    assert effect.status == "done"
    assert effect.payload["late"] is False
    assert {"posted", "dm", "user_group"} <= set(effect.progress)
    assert effect.progress["user_group"] == {"done": True}

    # sweeping again, alone or many at once, announces nothing more
    assert await harness.deps.handoffs.sweep() == 0
    harness.clock.advance(30)
    assert sum(await asyncio.gather(*(harness.deps.handoffs.sweep() for _ in range(5)))) == 0
    await harness.settle()
    assert len(handoff_posts(harness)) == 1
    assert len(dms(harness, ALICE)) == 1
    _, metrics = await harness.get("/metrics")
    assert 'pulseops_handoffs_total{schedule="payments-primary"} 1.0' in metrics


@BOTH
async def test_concurrent_sweeps_on_two_replicas_announce_once(harness: Harness) -> None:
    await sweep_at(harness, THURSDAY_HANDOFF - SECOND)
    harness.clock.advance(1)
    async with harness.replica() as other:
        sweeps = [harness.deps.handoffs.sweep() for _ in range(3)]
        sweeps += [other.handoffs.sweep() for _ in range(3)]
        assert sum(await asyncio.gather(*sweeps)) == 1
        await other.outbox.wait_idle()
    await harness.settle()
    assert len(handoff_posts(harness)) == 1
    assert len(dms(harness, ALICE)) == 1
    assert len(await handoff_rows(harness)) == 1
    assert len(await handoff_effects(harness)) == 1


@BOTH
async def test_after_downtime_only_the_latest_handoff_is_announced_late(
    harness: Harness,
) -> None:
    assert await harness.deps.handoffs.sweep() == 0
    await harness.stop()
    # three handoffs (26th, 27th, 28th at 08:00 UTC) pass while the service is down
    harness.clock.set(datetime(2026, 11, 28, 12, 0, tzinfo=UTC))
    await harness.start()
    assert await harness.deps.handoffs.sweep() == 3
    assert await harness.deps.handoffs.sweep() == 0
    await harness.settle()

    latest = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
    rows = await handoff_rows(harness)
    assert [(r.at.day, r.outgoing, r.incoming) for r in rows] == [
        (26, CAROL, ALICE),
        (27, ALICE, BOB),
        (28, BOB, CAROL),
    ]
    (post,) = handoff_posts(harness)
    assert f"On-call handoff: <@{BOB}> → <@{CAROL}>" in post
    assert f"(late: this handoff was due at {slack_date(latest)}" in post
    assert "2 earlier handoffs passed while PulseOps was not running" in post
    (effect,) = await handoff_effects(harness)
    assert effect.payload == {
        "schedule_id": "payments-primary",
        "at": latest.isoformat(),
        "outgoing": BOB,
        "incoming": CAROL,
        "late": True,
        "missed": 2,
    }
    assert len(dms(harness, CAROL)) == 1
    assert dms(harness, ALICE) == [] and dms(harness, BOB) == []
    assert harness.emu.usergroups["S0PAYONCAL"]["users"] == [CAROL]
    # and a restart after the announcement repeats nothing
    await harness.restart()
    assert await harness.deps.handoffs.sweep() == 0
    await harness.settle()
    assert len(handoff_posts(harness)) == 1


async def test_a_handoff_survives_a_slack_outage(harness: Harness) -> None:
    await harness.deps.handoffs.sweep()
    harness.emu.set_faults(down_for=600)
    assert await sweep_at(harness, THURSDAY_HANDOFF) == 1
    await harness.settle()
    assert handoff_posts(harness) == []
    (effect,) = await handoff_effects(harness)
    assert effect.status == "pending" and effect.last_error
    harness.emu.set_faults(clear=True)
    harness.clock.advance(120)
    await harness.settle()
    assert len(handoff_posts(harness)) == 1
    assert len(dms(harness, ALICE)) == 1
    assert harness.emu.usergroups["S0PAYONCAL"]["users"] == [ALICE]
    # the post went out a couple of minutes after the handoff, which the message does not
    # call late: lateness is judged when the handoff is recorded
    assert "late" not in handoff_posts(harness)[0]


async def test_a_retry_after_the_post_repeats_neither_post_nor_dm(harness: Harness) -> None:
    """The DM fails retryably after the channel post: the post is on record at once, so
    neither the retry nor a restart in between posts it again."""
    await harness.deps.handoffs.sweep()
    harness.emu.set_faults(down_for=600, methods=["conversations.open"])
    assert await sweep_at(harness, THURSDAY_HANDOFF) == 1
    await harness.settle()
    assert len(handoff_posts(harness)) == 1
    (effect,) = await handoff_effects(harness)
    assert effect.status == "pending"
    assert effect.progress["posted"]["done"] is True and "dm" not in effect.progress
    await harness.stop()
    harness.emu.set_faults(clear=True)
    harness.clock.advance(120)
    await harness.start()
    await harness.settle()
    assert len(handoff_posts(harness)) == 1
    assert len(dms(harness, ALICE)) == 1
    (effect,) = await handoff_effects(harness)
    assert effect.status == "done" and effect.progress["dm"]["done"] is True


@pytest.mark.parametrize(
    ("workspace", "error"),
    [
        ({"paid_plan": False}, "paid_teams_only"),
        ({"usergroups": [("S0OTHERGRP", "other")]}, "no_such_subteam"),
    ],
)
async def test_a_user_group_failure_degrades_without_failing_the_handoff(
    database_url: str, workspace: dict[str, Any], error: str
) -> None:
    async with (
        emulated(**workspace) as emulator,
        running(emulator, database_url, daily_config(), ManualClock(WEDNESDAY)) as h,
    ):
        await h.deps.handoffs.sweep()
        assert await sweep_at(h, THURSDAY_HANDOFF) == 1
        await h.settle()
        assert len(handoff_posts(h)) == 1
        assert len(dms(h, ALICE)) == 1
        (effect,) = await handoff_effects(h)
        assert effect.status == "done"
        assert effect.progress["user_group"] == {
            "done": False,
            "error": f"usergroups.users.update: {error}",
        }


async def test_without_a_channel_the_post_is_skipped_and_the_dm_still_sent(
    emulator: Emulator, database_url: str
) -> None:
    yaml = DAILY_YAML.replace('    channel: "C0PAYMENTS"\n', "")
    config = parse_config(yaml, source="handoffs.yml", environ={})
    assert config.handoff_channel_for("payments-primary") is None
    async with running(emulator, database_url, config, ManualClock(WEDNESDAY)) as h:
        await h.deps.handoffs.sweep()
        assert await sweep_at(h, THURSDAY_HANDOFF) == 1
        await h.settle()
        assert emulator.calls_to("chat.postMessage") != []  # the DM
        assert all(
            "On-call handoff" not in text_of(m) for c in CHANNELS for m in h.emu.messages(c[0])
        )
        assert len(dms(h, ALICE)) == 1
        (effect,) = await handoff_effects(h)
        assert effect.status == "done"
        assert effect.progress["posted"] == {
            "done": False,
            "skipped": "no handoff channel configured",
        }


async def test_a_missing_handoff_channel_fails_the_post_but_not_the_dm(
    emulator: Emulator, database_url: str
) -> None:
    yaml = DAILY_YAML.replace(
        '    user_group: "S0PAYONCAL"\n',
        '    user_group: "S0PAYONCAL"\n    handoff_channel: "#payments-oncall"\n',
    )
    config = parse_config(yaml, source="handoffs.yml", environ={})
    async with running(emulator, database_url, config, ManualClock(WEDNESDAY)) as h:
        await h.deps.handoffs.sweep()
        assert await sweep_at(h, THURSDAY_HANDOFF) == 1
        await h.settle()
        assert len(dms(h, ALICE)) == 1
        assert h.emu.usergroups["S0PAYONCAL"]["users"] == [ALICE]
        (effect,) = await handoff_effects(h)
        assert effect.status == "dead"
        assert "channel_not_found" in (effect.last_error or "")
        assert effect.progress["dm"]["done"] is True
        assert effect.progress["user_group"] == {"done": True}


async def test_a_handoff_delivered_after_the_next_one_leaves_the_group_alone(
    harness: Harness,
) -> None:
    """Slack is down across two handoffs: both are announced once, in order, and the user
    group ends with the person on call now, not with whoever the older effect names."""
    await harness.deps.handoffs.sweep()
    harness.emu.set_faults(down_for=600)
    assert await sweep_at(harness, THURSDAY_HANDOFF) == 1
    await harness.settle()
    assert await sweep_at(harness, THURSDAY_HANDOFF + timedelta(days=1)) == 1
    await harness.settle()
    harness.emu.set_faults(clear=True)
    harness.clock.advance(120)
    await harness.settle()
    posts = handoff_posts(harness)
    assert len(posts) == 2
    assert f"<@{CAROL}> → <@{ALICE}>" in posts[0] and f"<@{ALICE}> → <@{BOB}>" in posts[1]
    older, newer = await handoff_effects(harness)
    assert older.progress["user_group"]["skipped"].startswith("superseded by the handoff at")
    assert newer.progress["user_group"] == {"done": True}
    assert harness.emu.usergroups["S0PAYONCAL"]["users"] == [BOB]
    assert [c["args"]["users"] for c in harness.emu.calls_to("usergroups.users.update")] == [BOB]


async def test_weekly_handoff_follows_berlin_wall_clock_across_dst(
    emulator: Emulator, database_url: str
) -> None:
    config = parse_config(WEEKLY_YAML, source="weekly.yml", environ={})
    winter = datetime(2027, 3, 22, 8, 0, tzinfo=UTC)  # Monday 09:00 CET (UTC+1)
    summer = datetime(2027, 3, 29, 7, 0, tzinfo=UTC)  # Monday 09:00 CEST (UTC+2)
    async with running(
        emulator, database_url, config, ManualClock(winter - timedelta(hours=1))
    ) as h:
        assert await h.deps.handoffs.sweep() == 0
        assert await sweep_at(h, winter - SECOND) == 0
        assert await sweep_at(h, winter) == 1
        await h.settle()
        (post,) = handoff_posts(h)
        # rotation week 20 is ALICE's (even weeks), taking over from BOB
        assert f"On-call handoff: <@{BOB}> → <@{ALICE}>" in post
        assert f"Next handoff: {slack_date(summer)}" in post
        for instant in (
            winter + timedelta(days=3),
            datetime(2027, 3, 28, 12, 0, tzinfo=UTC),  # the clocks went forward at 01:00 UTC
            summer - SECOND,
        ):
            assert await sweep_at(h, instant) == 0
        assert await sweep_at(h, summer) == 1
        await h.settle()
        assert [r.at for r in await handoff_rows(h)] == [winter, summer]
        posts = handoff_posts(h)
        assert len(posts) == 2
        assert f"On-call handoff: <@{ALICE}> → <@{BOB}>" in posts[1]
        assert all("late" not in p for p in posts)


@pytest.mark.slow
async def test_real_time_handoffs_from_the_scheduler(emulator: Emulator, database_url: str) -> None:
    """A 2-second custom rotation, the real clock and the app's own scheduler job."""
    start = datetime.now(ZoneInfo("Europe/Berlin")).replace(microsecond=0, tzinfo=None)
    yaml = DAILY_YAML.replace("      type: daily\n", "      type: custom\n      length: 2s\n")
    yaml = yaml.replace("2026-11-02T09:00:00", (start + SECOND).isoformat())
    config = parse_config(yaml, source="handoffs.yml", environ={})
    async with Harness(
        emulator=emulator,
        database_url=database_url,
        config=config,
        clock=SystemClock(),
        run_jobs=True,
    ) as h:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while len(handoff_posts(h)) < 2:
            assert loop.time() < deadline, "the scheduler never announced two handoffs"
            await asyncio.sleep(0.05)
        rows = await handoff_rows(h)
        lateness = [(r.recorded_at - r.at).total_seconds() for r in rows]
        assert all(0 <= late < 2 for late in lateness), lateness
    assert len(handoff_posts(h)) == len(rows)
    assert all("late" not in p for p in handoff_posts(h))


def test_the_message_lists_ten_incidents_and_counts_the_rest() -> None:
    renderer = Renderer(Names(services={}, teams={"payments": "Payments"}))
    render = partial(
        renderer.handoff_message,
        schedule_id="payments-primary",
        team_id="payments",
        outgoing=BOB,
        incoming=ALICE,
        at=THURSDAY_HANDOFF,
    )
    message = render(
        late=False,
        missed=0,
        incidents=[
            make_incident(n, title=f"<@U0EVIL> title {n}", channel_id=f"C0INC{n:05d}")
            for n in range(1, 13)
        ],
        total=14,
        next_shift=Shift(user=CAROL, start=THURSDAY_HANDOFF + timedelta(days=1), end=WEDNESDAY),
    )
    body = message.blocks[0]["text"]["text"]
    assert body.count("• *INC-") == 10
    assert "INC-11" not in body
    assert "… and 4 more" in body
    assert "<@U0EVIL>" not in body and "&lt;@U0EVIL&gt; title 1" in body
    assert "<#C0INC00001>" in body
    assert message.text == f"On-call handoff for Payments: <@{BOB}> → <@{ALICE}>"
    empty = render(
        late=True,
        missed=1,
        incidents=[],
        total=0,
        next_shift=None,
    )
    body = empty.blocks[0]["text"]["text"]
    assert "No open incidents" in body and "No further handoff" in body
    assert "1 earlier handoff passed while PulseOps was not running and was recorded" in body
    assert empty.text.endswith("(late)")
