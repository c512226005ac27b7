"""Paging in a storm: one remembered DM channel per person, bundled pages, pages first."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select, update

from bot.clock import ManualClock, SystemClock
from bot.config import PulseOpsConfig
from bot.render import Names, Renderer
from bot.render.renderer import MAX_BUNDLED_PAGES
from bot.sandbox.emulator import Emulator
from bot.sandbox.emulator.rules import validate_blocks
from bot.slack.ids import Action, bundled
from store.incidents import IncidentRepository
from store.models import DmChannelRow, OutboxRow, PageRow
from store.oncall import DmChannelRepository
from tests.conftest import Harness, alertmanager_payload, emulated
from tests.helpers import (
    WEDNESDAY,
    all_text,
    buttons,
    dm_refs,
    dms,
    eventually,
    fire,
    fire_named,
    make_incident,
    oncall_config,
    wait_for_status,
)

BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
BOB = "U0BOB0001"  # on call on WEDNESDAY


@pytest.fixture
def config() -> PulseOpsConfig:
    return oncall_config()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(WEDNESDAY)


def opens(harness: Harness, user: str) -> list[dict[str, Any]]:
    return [
        c
        for c in harness.emu.calls_to("conversations.open")
        if c["args"].get("users") == user and c["status"] == 200
    ]


async def page_rows(harness: Harness) -> list[PageRow]:
    async with harness.deps.db.read() as session:
        return list((await session.scalars(select(PageRow).order_by(PageRow.id))).all())


async def fire_while_slack_is_down(harness: Harness, names: list[str]) -> list[int]:
    """Open one incident per name while Slack is down, then bring Slack back (nothing sent)."""
    harness.emu.set_faults(down_for=600)
    ids = [await fire_named(harness, name) for name in names]
    await harness.settle()
    harness.emu.set_faults(clear=True)
    harness.clock.advance(120)  # every postponed delivery is due again
    return ids


# ---- one DM channel per person -------------------------------------------------------------


async def test_a_person_paged_again_gets_the_page_in_the_remembered_dm(harness: Harness) -> None:
    first = await fire(harness)
    await harness.restart()  # nothing kept in memory: the channel is in the database
    second = await fire(harness, group_key="other", fingerprint="f-2", summary="Second")
    assert len(opens(harness, BOB)) == 1
    ((channel, one), (same, two)) = dm_refs(harness, BOB)
    assert channel == same
    assert f"INC-{first}" in one["text"] and f"INC-{second}" in two["text"]
    async with harness.deps.db.read() as session:
        dm = await DmChannelRepository(session).get(user=BOB)
    assert dm is not None and dm.channel_id == channel
    assert {(p.dm_channel, p.incident_id) for p in await page_rows(harness)} == {
        (channel, first),
        (channel, second),
    }


async def test_a_dm_channel_slack_no_longer_knows_is_opened_again(harness: Harness) -> None:
    await fire(harness)
    async with harness.deps.db.write() as session:
        await session.execute(
            update(DmChannelRow).where(DmChannelRow.user_id == BOB).values(channel_id="D0GONE0001")
        )
    second = await fire(harness, group_key="other", fingerprint="f-2", summary="Second")
    refused = [
        c
        for c in harness.emu.calls_to("chat.postMessage")
        if c["args"].get("channel") == "D0GONE0001"
    ]
    assert [c["response"]["error"] for c in refused] == ["channel_not_found"]
    assert len(opens(harness, BOB)) == 2
    assert len(dms(harness, BOB)) == 2
    (page,) = [p for p in await page_rows(harness) if p.incident_id == second]
    async with harness.deps.db.read() as session:
        dm = await DmChannelRepository(session).get(user=BOB)
    assert dm is not None and dm.channel_id == page.dm_channel != "D0GONE0001"


# ---- bundled pages -------------------------------------------------------------------------


async def test_pages_waiting_together_go_out_as_one_dm_with_buttons_per_incident(
    harness: Harness,
) -> None:
    ids = await fire_while_slack_is_down(harness, ["DiskFull", "HighLatency", "QueueBacklog"])
    await harness.settle()
    ((channel, bundle),) = dm_refs(harness, BOB)
    assert len(opens(harness, BOB)) == 1
    assert bundle["text"].startswith("You are paged for 3 incidents")
    assert buttons(bundle) == [
        bundled(action, incident_id)
        for incident_id in ids
        for action in (Action.ACKNOWLEDGE, Action.RESOLVE, Action.ESCALATE)
    ]
    rows = await page_rows(harness)
    assert {(p.dm_channel, p.dm_ts) for p in rows} == {(channel, bundle["ts"])}
    for incident_id in ids:  # the rest of each page: the mention in the incident's channel
        incident = await harness.incident(incident_id)
        mentions = [
            m
            for m in harness.emu.messages(incident["slack"]["channel_id"])
            if f"<@{BOB}> you are paged" in m["text"]
        ]
        assert len(mentions) == 1

    # Acknowledge on one incident of the bundle acknowledges that incident only, and the
    # bundle updates in place; two clicks at once on two others both show
    async def click(action: Action, incident_id: int) -> None:
        result = await harness.emu.click(
            user=BOB, channel=channel, ts=bundle["ts"], action_id=bundled(action, incident_id)
        )
        assert result["status"] == 200, result

    await click(Action.ACKNOWLEDGE, ids[1])
    await wait_for_status(harness, ids[1], "acknowledged")
    await harness.settle()
    assert [(await harness.incident(i))["status"] for i in ids] == [
        "triggered",
        "acknowledged",
        "triggered",
    ]
    (updated,) = dms(harness, BOB)
    assert bundled(Action.ACKNOWLEDGE, ids[1]) not in buttons(updated)
    assert bundled(Action.ACKNOWLEDGE, ids[0]) in buttons(updated)
    await asyncio.gather(click(Action.ACKNOWLEDGE, ids[0]), click(Action.RESOLVE, ids[2]))
    await wait_for_status(harness, ids[0], "acknowledged")
    await wait_for_status(harness, ids[2], "resolved")
    await harness.settle()
    (updated,) = dms(harness, BOB)
    assert buttons(updated) == [
        bundled(action, incident_id)
        for incident_id, actions in (
            (ids[0], (Action.RESOLVE, Action.ESCALATE)),
            (ids[1], (Action.RESOLVE, Action.ESCALATE)),
        )
        for action in actions
    ]
    assert "Resolved" in all_text(updated)
    await click(Action.ESCALATE, ids[1])  # Escalate works from a bundle too
    paged = f"Paged level 2 of payments-default for INC-{ids[1]}"
    await eventually(lambda: any(e["text"].startswith(paged) for e in harness.emu.ephemerals))
    await harness.settle()
    # each page records the version of its own incident that the bundle shows
    async with harness.deps.db.read() as session:
        versions = {i: (await IncidentRepository(session).get(incident_id=i)).version for i in ids}
    bobs = [p for p in await page_rows(harness) if p.target == BOB]
    assert {p.incident_id: p.dm_version for p in bobs} == versions


async def test_a_bundle_shows_what_one_message_can_and_the_next_dm_the_rest(
    harness: Harness,
) -> None:
    names = [f"Alert{n:02d}" for n in range(MAX_BUNDLED_PAGES + 6)]
    ids = await fire_while_slack_is_down(harness, names)
    await harness.settle()
    first, second = dms(harness, BOB)
    assert len(first["blocks"]) <= 50 and validate_blocks(first["blocks"]) == []
    assert first["text"].startswith(f"You are paged for {MAX_BUNDLED_PAGES} incidents")
    assert second["text"].startswith("You are paged for 6 incidents")
    shown = re.findall(r"INC-(\d+)", first["text"] + second["text"])
    assert sorted(map(int, shown)) == sorted(ids)
    assert len(opens(harness, BOB)) == 1


def test_a_bundle_escapes_titles_and_says_what_it_left_out() -> None:
    renderer = Renderer(Names(services={"payment-api": "Payment API"}, teams={}))
    pages = [(make_incident(n), 1) for n in range(1, 31)] + [(make_incident(5), 2)]
    message = renderer.page_bundle(pages)
    assert len(message.blocks) == 50
    assert message.blocks[-1]["elements"][0]["text"].startswith("… and ")
    assert validate_blocks(message.blocks) == []  # block and action ids unique
    body = json.dumps(message.blocks)
    assert "<!here>" not in body and "&lt;!here&gt;" in body
    assert "escalation level 2" in message.blocks[2 * 5 - 1]["text"]["text"]  # INC-5, once
    assert message.text.startswith("You are paged for 30 incidents: INC-1, INC-2")


@BOTH
async def test_two_replicas_send_a_persons_waiting_pages_once(harness: Harness) -> None:
    ids = await fire_while_slack_is_down(harness, [f"Replica{n}" for n in range(6)])
    async with harness.replica() as other:
        await asyncio.gather(harness.deps.outbox.drain(), other.outbox.drain())
        await asyncio.gather(harness.deps.outbox.drain(), other.outbox.drain())
    (bundle,) = dms(harness, BOB)
    assert sorted(map(int, re.findall(r"INC-(\d+)", bundle["text"]))) == ids
    assert len(opens(harness, BOB)) == 1
    assert {p.dm_ts for p in await page_rows(harness)} == {bundle["ts"]}


# ---- a storm against Slack's rate limits ---------------------------------------------------


@pytest.fixture
async def storm(database_url: str) -> AsyncIterator[Harness]:
    async with (
        emulated(rate_limits=True) as emu,
        Harness(
            emulator=emu,
            database_url=database_url,
            config=oncall_config("5m", "10m"),
            clock=SystemClock(),
            run_jobs=True,
        ) as h,
    ):
        yield h


def first_seen(emu: Emulator, channels: set[str], seen: dict[int, float]) -> None:
    """Note when each incident first shows in a DM on one of `channels`."""
    now = time.monotonic()
    for channel in channels:
        for message in emu.ws.history.get(channel, []):
            for number in re.findall(r"\bINC-(\d+)\b", all_text(message)):
                seen.setdefault(int(number), now)


@pytest.mark.slow
@BOTH
async def test_a_storm_pages_every_incident_within_5_seconds(storm: Harness) -> None:
    """30 incidents in a second for one person, Slack's rate limits on: every first page is
    in their DM within 5 s, before most incident channels exist (Tier 2), one
    conversations.open, and nothing given up after a 429."""
    harness = storm
    sent: dict[int, float] = {}

    async def alert(n: int) -> None:
        at = time.monotonic()
        status, body = await harness.post_alert(
            alertmanager_payload(group_key=f"storm-{n}", fingerprint=f"storm-{n}")
        )
        assert status == 202, body
        sent[int(body["results"][0]["incident_id"])] = at

    await asyncio.gather(*(alert(n) for n in range(30)))
    assert len(sent) == 30
    rows: list[PageRow] = []
    while len(rows) < 30:
        rows = await page_rows(harness)
        await asyncio.sleep(0.02)
    (person,) = {p.target for p in rows}
    seen: dict[int, float] = {}
    deadline = time.monotonic() + 8
    while len(seen) < 30 and time.monotonic() < deadline:
        channels = {c["response"]["channel"]["id"] for c in opens(harness, person)}
        first_seen(harness.emu, channels, seen)
        await asyncio.sleep(0.01)
    channels_then = sum(1 for c in harness.emu.channels.values() if c.name.startswith("inc-"))
    late = {i: round(seen[i] - t, 2) if i in seen else None for i, t in sent.items()}
    assert all(s is not None and s <= 5.0 for s in late.values()), late
    assert len(opens(harness, person)) == 1
    assert channels_then < 30  # pages did not wait for channels (~20 created a minute)
    limited = [c for c in harness.emu.calls if c["status"] == 429]
    assert limited, "the storm should have met Slack's rate limits"
    async with harness.deps.db.read() as session:
        dead = (await session.scalars(select(OutboxRow).where(OutboxRow.status == "dead"))).all()
    assert list(dead) == []
