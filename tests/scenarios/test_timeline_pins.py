"""Messages onto the timeline from Slack (📌 and the message shortcut), renaming the channel
after a new title, and archiving a resolved incident's channel after the configured delay."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.clock import ManualClock
from bot.config import parse_config
from bot.delivery.kinds import OutboxKind
from bot.sandbox.emulator import DEFAULT_SCOPES, Emulator
from bot.slack.lookup import PostMark
from store.models import OutboxRow
from tests.conftest import CONFIG_YAML, Harness, emulated
from tests.helpers import dms, fire
from tests.scenarios.test_roles import ALICE, BOB, CAROL, slash, thread

pytestmark = pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


async def ephemerals_for(harness: Harness, user: str, count: int = 1) -> list[str]:
    for _ in range(200):
        found = [e["text"] for e in harness.emu.ephemerals if e["user"] == user]
        if len(found) >= count:
            return found
        await asyncio.sleep(0.02)
    raise AssertionError(f"fewer than {count} ephemeral messages for {user}")


async def test_a_pushpin_adds_the_message_once(harness: Harness) -> None:
    incident_id = await fire(harness)
    channel = (await harness.incident(incident_id))["slack"]["channel_id"]
    said = await harness.emu.post_user_message(
        user=ALICE, channel=channel, text="Root cause: <https://x.example|expired cert> & DNS"
    )
    result = await harness.emu.add_reaction(user=BOB, channel=channel, ts=said["ts"])
    assert result["delivered"] and result["status"] == 200
    (told,) = await ephemerals_for(harness, BOB)
    assert told == f":pushpin: Added to the timeline of INC-{incident_id}."
    incident = await harness.incident(incident_id)
    event = incident["timeline"][-1]
    assert (event["kind"], event["actor"]) == ("message_added", BOB)
    assert event["data"]["author"] == ALICE and event["data"]["ts"] == said["ts"]
    assert event["data"]["link"].endswith(said["ts"].replace(".", ""))
    # Slack's escapes are undone once (rendering escapes once): the text as it was typed
    assert event["text"] == (
        f"Message from <@{ALICE}>: Root cause: <https://x.example|expired cert> & DNS"
    )
    # another 📌 by someone else: on the timeline once
    await harness.emu.add_reaction(user=CAROL, channel=channel, ts=said["ts"], name="round_pushpin")
    # Carol is not in the channel: she is told by DM
    for _ in range(100):
        told = [m["text"] for m in dms(harness, CAROL)]
        if told:
            break
        await asyncio.sleep(0.02)
    assert told == [f"That message is on the timeline of INC-{incident_id} already."]
    timeline = (await harness.incident(incident_id))["timeline"]
    assert [e["kind"] for e in timeline].count("message_added") == 1
    # a thread reply can be pinned too; other reactions and other channels mean nothing
    reply = await harness.emu.post_user_message(
        user=CAROL, channel=channel, text="rolled back", thread_ts=said["ts"]
    )
    await harness.emu.add_reaction(user=BOB, channel=channel, ts=reply["ts"])
    await ephemerals_for(harness, BOB, 2)
    await harness.emu.add_reaction(user=BOB, channel=channel, ts=reply["ts"], name="eyes")
    elsewhere = await harness.emu.post_user_message(user=ALICE, channel="C0PAYMENTS", text="hi")
    await harness.emu.add_reaction(user=BOB, channel="C0PAYMENTS", ts=elsewhere["ts"])
    await harness.settle()
    timeline = (await harness.incident(incident_id))["timeline"]
    added = [e for e in timeline if e["kind"] == "message_added"]
    assert [e["data"]["ts"] for e in added] == [said["ts"], reply["ts"]]
    shown = await slash(harness, "timeline", user=BOB, channel=channel)
    assert f"Message from <@{CAROL}>: rolled back" in shown


async def test_the_shortcut_in_the_channel_and_from_elsewhere(harness: Harness) -> None:
    incident_id = await fire(harness)
    channel = (await harness.incident(incident_id))["slack"]["channel_id"]
    said = await harness.emu.post_user_message(user=ALICE, channel=channel, text="cert expired")
    result = await harness.emu.message_shortcut(
        user=BOB, channel=channel, ts=said["ts"], callback_id="add_to_incident_timeline"
    )
    assert result["status"] == 200
    (told,) = await ephemerals_for(harness, BOB)
    assert f"Added to the timeline of INC-{incident_id}" in told
    # from another channel: a form asks which open incident
    outside = await harness.emu.post_user_message(
        user=CAROL, channel="C0PAYMENTS", text="customers report 502s"
    )
    await harness.emu.message_shortcut(
        user=CAROL, channel="C0PAYMENTS", ts=outside["ts"], callback_id="add_to_incident_timeline"
    )
    for _ in range(100):
        forms = [i for i, v in harness.emu.views.items() if v["callback_id"] == "timeline_add"]
        if forms:
            break
        await asyncio.sleep(0.02)
    (view_id,) = forms
    done = await harness.emu.submit_view(
        user=CAROL, view_id=view_id, values={"timeline_incident": {"incident": str(incident_id)}}
    )
    assert done["status"] == 200
    for _ in range(500):  # the form is answered first, the message added after
        timeline = (await harness.incident(incident_id))["timeline"]
        added = [e for e in timeline if e["kind"] == "message_added"]
        if len(added) == 2:
            break
        await asyncio.sleep(0.02)
    assert [(e["actor"], e["data"]["channel"]) for e in added] == [
        (BOB, channel),
        (CAROL, "C0PAYMENTS"),
    ]
    assert "customers report 502s" in added[-1]["text"]
    assert any("Added to the timeline" in m["text"] for m in dms(harness, CAROL))


async def test_a_new_title_renames_the_channel(harness: Harness) -> None:
    incident_id = await fire(harness)
    incident = await harness.incident(incident_id)
    channel = incident["slack"]["channel_id"]
    # the name it should get is taken (by an archived channel, say): the next candidate
    await harness.deps.gateway.call("conversations.create", name=f"inc-{incident_id}-dns-outage")
    answer = await slash(harness, "title DNS outage", user=ALICE, channel=channel)
    assert "retitled" in answer
    await harness.settle()
    incident = await harness.incident(incident_id)
    assert incident["title"] == "DNS outage"
    assert harness.emu.channels[channel].name == f"inc-{incident_id}-dns-outage-2"
    assert incident["slack"]["channel_name"] == f"inc-{incident_id}-dns-outage-2"
    assert any("Title changed to “DNS outage”" in line for line in thread(harness, incident))
    topics = [c["args"]["topic"] for c in harness.emu.calls_to("conversations.setTopic")]
    assert topics[-1].endswith("DNS outage")
    assert "/incident title <new title>" in await slash(
        harness, "title", user=ALICE, channel=channel
    )


async def test_resolved_channels_are_archived_after_the_delay_once(harness: Harness) -> None:
    incident_id = await fire(harness)
    channel = (await harness.incident(incident_id))["slack"]["channel_id"]
    await slash(harness, "resolve", user=ALICE, channel=channel)
    await harness.settle()
    harness.clock.advance(timedelta(days=6, hours=23))
    assert await harness.deps.collab.sweep_archives() == 0
    harness.clock.advance(timedelta(hours=2))
    async with harness.replica() as other:
        counts = await asyncio.gather(
            harness.deps.collab.sweep_archives(), other.collab.sweep_archives()
        )
    assert sorted(counts) == [0, 1]
    await harness.settle()
    assert harness.emu.channels[channel].is_archived
    last = harness.emu.messages(channel)[-1]["text"]
    assert "this channel is archived now" in last
    assert len(harness.emu.calls_to("conversations.archive")) == 1


async def test_reopen_cancels_the_archive_and_off_turns_it_off(
    emulator: Emulator, database_url: str, clock: ManualClock
) -> None:
    config = parse_config(CONFIG_YAML + "collaboration:\n  archive_after: off\n", environ={})
    async with Harness(
        emulator=emulator, database_url=database_url, config=config, clock=clock
    ) as harness:
        incident_id = await fire(harness)
        channel = (await harness.incident(incident_id))["slack"]["channel_id"]
        await slash(harness, "resolve", user=ALICE, channel=channel)
        clock.advance(timedelta(days=30))
        assert await harness.deps.collab.sweep_archives() == 0
    async with Harness(
        emulator=emulator,
        database_url=database_url,
        config=parse_config(CONFIG_YAML, environ={}),
        clock=clock,
    ) as harness:
        second = await fire(harness, alertname="B", group_key="b", fingerprint="b" * 16)
        channel = (await harness.incident(second))["slack"]["channel_id"]
        await slash(harness, "resolve", user=ALICE, channel=channel)
        await slash(harness, "reopen", user=ALICE, channel=channel)
        clock.advance(timedelta(days=30))
        assert await harness.deps.collab.sweep_archives() == 0
        assert not harness.emu.channels[channel].is_archived


async def test_lines_for_an_incident_without_a_channel_stop_waiting(
    database_url: str, clock: ManualClock
) -> None:
    """An app without channels:manage never gets its incident channel: the lines waiting for
    it give up after a day instead of waiting for ever."""
    scopes = [s for s in DEFAULT_SCOPES if s != "channels:manage"]
    async with (
        emulated(scopes=scopes) as emu,
        Harness(
            emulator=emu,
            database_url=database_url,
            config=parse_config(CONFIG_YAML, environ={}),
            clock=clock,
        ) as harness,
    ):
        incident_id = await fire(harness)
        assert (await harness.incident(incident_id))["slack"]["channel_id"] is None
        status, _ = await harness.call(
            "PATCH", f"/api/v1/incidents/{incident_id}", {"status": "acknowledged"}
        )
        assert status == 200
        await harness.deps.outbox.drain()

        async def line_status() -> str:
            async with harness.deps.db.read() as session:
                row = await session.scalar(
                    select(OutboxRow).where(OutboxRow.kind == OutboxKind.STATE_LINE)
                )
                assert row is not None
                return row.status

        assert await line_status() == "pending"
        clock.advance(timedelta(days=1, minutes=1))
        await harness.deps.outbox.drain()
        assert await line_status() == "dead"  # failed for good: never tried again


async def test_a_threaded_post_is_found_again_by_its_mark(harness: Harness) -> None:
    """After a lost answer, a line threaded under the incident message is looked for among
    the thread's replies (channel history holds none) and adopted, not posted twice."""
    incident_id = await fire(harness)
    slack = (await harness.incident(incident_id))["slack"]
    channel, parent = slack["channel_id"], slack["message_ts"]
    gateway = harness.deps.gateway
    mark = PostMark(
        outbox_id=987654, step="line", since=harness.clock.now(), incident_id=incident_id
    )
    assert await gateway.find_post(channel, mark, thread_ts=parent) is None
    _, ts = await gateway.post_message(channel, text="a line", thread_ts=parent, mark=mark)
    assert await gateway.find_post(channel, mark) is None  # not in the channel's history
    assert await gateway.find_post(channel, mark, thread_ts=parent) == (channel, ts)
    again = await gateway.post_message(
        channel, text="a line", thread_ts=parent, mark=mark, look_first=True
    )
    assert again == (channel, ts)
    assert [m["text"] for m in harness.emu.messages(channel)].count("a line") == 1
