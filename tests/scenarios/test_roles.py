"""Running an incident from Slack: roles, severity, notes, the lines threaded under the
incident message, the topic, and the declarer's link — through signed requests, asserted on
the emulator's calls and on the incident the API serves."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.clock import ManualClock
from bot.config import parse_config
from bot.sandbox.emulator import Emulator
from tests.conftest import Harness
from tests.helpers import (
    WEDNESDAY,
    all_text,
    dms,
    eventually,
    fire,
    manage_elements,
    reply_text,
)
from tests.scenarios.test_routes import ROUTING_YAML

# every test here runs on SQLite and on PostgreSQL
pytestmark = pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)

ALICE, BOB, CAROL = "U0ALICE01", "U0BOB0001", "U0CAROL01"


async def slash(harness: Harness, text: str, *, user: str, channel: str) -> str:
    result = await harness.emu.command(user=user, channel=channel, command="/incident", text=text)
    assert result["status"] == 200, result
    return reply_text(result)


def thread(harness: Harness, incident: dict[str, Any]) -> list[str]:
    """The texts threaded under the incident's channel message."""
    slack = incident["slack"]
    return [
        m["text"]
        for m in harness.emu.messages(slack["channel_id"])
        if m.get("thread_ts") == slack["message_ts"]
    ]


def channel_message(harness: Harness, incident: dict[str, Any]) -> dict[str, Any]:
    slack = incident["slack"]
    (message,) = [
        m for m in harness.emu.messages(slack["channel_id"]) if m["ts"] == slack["message_ts"]
    ]
    return message


async def test_roles_by_command_shown_threaded_invited_and_told(harness: Harness) -> None:
    incident_id = await fire(harness)
    incident = await harness.incident(incident_id)
    channel = incident["slack"]["channel_id"]
    answer = await slash(harness, f"lead <@{CAROL}|carol>", user=ALICE, channel=channel)
    assert f"Incident lead of INC-{incident_id} is now <@{CAROL}>" in answer
    answer = await slash(harness, f"comms <@{BOB}> {incident_id}", user=ALICE, channel="C0INCIDENT")
    assert "Communications lead" in answer
    await harness.settle()
    incident = await harness.incident(incident_id)
    assert (incident["lead"], incident["comms"]) == (CAROL, BOB)
    # every copy of the message shows both
    message = channel_message(harness, incident)
    for copy in (message, *harness.emu.messages("C0INCIDENT")[:1]):
        text = all_text(copy)
        assert "Incident lead" in text and f"<@{CAROL}>" in text and f"<@{BOB}>" in text
    lines = thread(harness, incident)
    assert any("Incident lead is now <@U0CAROL01>" in line for line in lines)
    assert any("Communications lead is now <@U0BOB0001>" in line for line in lines)
    # the lead (not in the payments team) is invited and told by DM, once
    assert CAROL in harness.emu.channels[channel].members
    told = [m["text"] for m in dms(harness, CAROL) if "incident lead" in m["text"]]
    assert len(told) == 1 and f"<#{channel}>" in told[0]
    kinds = [(e["kind"], e["actor"], e["data"].get("user")) for e in incident["timeline"]]
    assert ("role_assigned", ALICE, CAROL) in kinds and ("role_assigned", ALICE, BOB) in kinds
    # the same again changes nothing
    again = await slash(harness, f"lead <@{CAROL}>", user=ALICE, channel=channel)
    assert "already the incident lead" in again
    await harness.settle()
    assert len(thread(harness, await harness.incident(incident_id))) == len(lines)


async def test_bad_role_and_severity_input_is_answered_and_changes_nothing(
    harness: Harness,
) -> None:
    incident_id = await fire(harness)
    incident = await harness.incident(incident_id)
    channel = incident["slack"]["channel_id"]
    for text, hint in [
        ("lead", "/incident lead @name"),
        ("lead bob", "not a person"),
        ("lead @nobody", "not a person"),  # a name Slack does not know stays text
        ("severity", "/incident severity SEV2"),
        ("severity SEV9", "/incident severity SEV2"),
        ("severity high", "/incident severity SEV2"),
        ("note", "/incident note <text>"),
    ]:
        answer = await slash(harness, text, user=ALICE, channel=channel)
        assert hint in answer, (text, answer)
    answer = await slash(harness, f"lead <@{BOB}>", user=ALICE, channel="C0PAYMENTS")
    assert "not an incident channel" in answer
    await harness.settle()
    after = await harness.incident(incident_id)
    assert after["timeline"] == incident["timeline"] and after["lead"] is None
    assert after["severity"] == incident["severity"]


async def test_severity_from_the_select_and_the_command(harness: Harness) -> None:
    incident_id = await fire(harness)
    incident = await harness.incident(incident_id)
    before = incident["severity"]
    assert before != "SEV4"
    slack = incident["slack"]
    result = await harness.emu.click(
        user=BOB,
        channel=slack["channel_id"],
        ts=slack["message_ts"],
        action_id="incident_severity",
        value=f"{incident_id}:SEV4",
    )
    assert result["status"] == 200
    # a click is acknowledged at once and carried out after: wait for the change
    await eventually(
        lambda: harness.emu.ephemerals and "SEV4" in harness.emu.ephemerals[-1]["text"]
    )
    await harness.settle()
    incident = await harness.incident(incident_id)
    assert incident["severity"] == "SEV4"
    event = incident["timeline"][-1]
    assert (event["kind"], event["actor"], event["data"]) == (
        "severity_changed",
        BOB,
        {"from": before, "to": "SEV4"},
    )
    assert "SEV4" in all_text(channel_message(harness, incident))
    assert "SEV4" in all_text(harness.emu.messages("C0INCIDENT")[0])
    answer = await slash(harness, "severity sev3", user=ALICE, channel=slack["channel_id"])
    assert "changed from SEV4 to SEV3" in answer
    await harness.settle()
    incident = await harness.incident(incident_id)
    lines = thread(harness, incident)
    assert any(f"from {before} to SEV4 by <@{BOB}>" in line for line in lines)
    assert any(f"from SEV4 to SEV3 by <@{ALICE}>" in line for line in lines)
    # the API's PATCH goes through the same function: the same line and timeline entry
    status, _ = await harness.call(
        "PATCH", f"/api/v1/incidents/{incident_id}", {"severity": "SEV2"}
    )
    assert status == 200
    await harness.settle()
    assert any("from SEV3 to SEV2 by api:tester" in line for line in thread(harness, incident))


async def test_note_from_the_channel_is_on_the_timeline(harness: Harness) -> None:
    incident_id = await fire(harness)
    channel = (await harness.incident(incident_id))["slack"]["channel_id"]
    answer = await slash(
        harness, "note rolled back <b>v2</b> & restarted", user=BOB, channel=channel
    )
    assert f"Note added to the timeline of INC-{incident_id}" in answer
    await harness.settle()
    incident = await harness.incident(incident_id)
    note = incident["timeline"][-1]
    assert (note["kind"], note["actor"], note["text"]) == (
        "note",
        BOB,
        "rolled back <b>v2</b> & restarted",
    )
    posted = [m["text"] for m in harness.emu.messages(channel) if "Note from" in m["text"]]
    assert posted == [
        f":memo: Note from <@{BOB}>: rolled back &lt;b&gt;v2&lt;/b&gt; &amp; restarted"
    ]
    timeline = await slash(harness, "timeline", user=BOB, channel=channel)
    assert "rolled back &lt;b&gt;v2" in timeline and "Triggered" in timeline or "Alert" in timeline


async def test_ack_and_resolve_are_threaded_and_the_topic_follows(harness: Harness) -> None:
    incident_id = await fire(harness)
    incident = await harness.incident(incident_id)
    channel = incident["slack"]["channel_id"]
    topics = [c["args"]["topic"] for c in harness.emu.calls_to("conversations.setTopic")]
    assert topics[-1].startswith("Triggered · ")
    await slash(harness, "ack", user=ALICE, channel=channel)
    await harness.settle()
    await slash(harness, "resolve", user=ALICE, channel=channel)
    await harness.settle()
    lines = thread(harness, await harness.incident(incident_id))
    assert lines == [
        f":eyes: Acknowledged by <@{ALICE}>",
        f":white_check_mark: Resolved by <@{ALICE}>",
    ]
    topics = [c["args"]["topic"] for c in harness.emu.calls_to("conversations.setTopic")]
    assert topics[-1].startswith("Resolved · ") and any(
        t.startswith("Acknowledged") for t in topics
    )
    # a resolved incident's message offers no severity select or Roles button
    message = channel_message(harness, await harness.incident(incident_id))
    assert manage_elements(message) == []


async def test_roles_form_from_the_message(harness: Harness) -> None:
    incident_id = await fire(harness)
    incident = await harness.incident(incident_id)
    slack = incident["slack"]
    assert manage_elements(channel_message(harness, incident)) == [
        "incident_roles",
        "incident_severity",
    ]
    result = await harness.emu.click(
        user=ALICE, channel=slack["channel_id"], ts=slack["message_ts"], action_id="incident_roles"
    )
    assert result["status"] == 200
    for _ in range(100):
        if harness.emu.views:
            break
        await asyncio.sleep(0.02)
    ((view_id, view),) = harness.emu.views.items()
    assert view["callback_id"] == "incident_roles"
    done = await harness.emu.submit_view(
        user=ALICE,
        view_id=view_id,
        values={"roles_lead": {"lead": BOB}, "roles_comms": {"comms": CAROL}},
    )
    assert done["status"] == 200 and not done["body"]
    await harness.settle()
    incident = await harness.incident(incident_id)
    assert (incident["lead"], incident["comms"]) == (BOB, CAROL)
    assert len([m for m in dms(harness, BOB) if "incident lead" in m["text"]]) == 1


async def test_declare_gives_a_link_and_says_who(harness: Harness) -> None:
    result = await harness.emu.command(
        user=CAROL, channel="C0SEARCH1", command="/incident", text="declare"
    )
    assert result["status"] == 200
    for _ in range(100):
        if harness.emu.views:
            break
        await asyncio.sleep(0.02)
    ((view_id, _),) = harness.emu.views.items()
    await harness.emu.submit_view(
        user=CAROL,
        view_id=view_id,
        values={
            "declare_title": {"title": "Search down"},
            "declare_severity": {"severity": "SEV2"},
        },
    )
    for _ in range(100):
        _, listing = await harness.get("/api/v1/incidents")
        if listing["total"]:
            break
        await asyncio.sleep(0.02)
    await harness.settle()
    incident = await harness.incident(listing["incidents"][0]["id"])
    channel = incident["slack"]["channel_id"]
    (link,) = [e for e in harness.emu.ephemerals if e["user"] == CAROL]
    assert link["channel"] == "C0SEARCH1" and f"<#{channel}>" in link["text"]
    assert f"Declared by <@{CAROL}>" in all_text(channel_message(harness, incident))


async def test_a_rise_by_hand_escalates_by_the_new_severitys_policy(
    emulator: Emulator, database_url: str, clock: ManualClock
) -> None:
    """The same rule as a more severe alert's (one function): an unacknowledged incident whose
    new severity has another escalation policy is escalated by it from its first level."""
    clock.set(WEDNESDAY)  # Bob is on call
    config = parse_config(ROUTING_YAML, source="routing.yml", environ={})
    async with Harness(
        emulator=emulator, database_url=database_url, config=config, clock=clock
    ) as harness:
        incident_id = await fire(harness, severity="warning")  # SEV3: payments-default
        channel = (await harness.incident(incident_id))["slack"]["channel_id"]
        await slash(harness, "severity SEV2", user=ALICE, channel=channel)  # same policy
        await harness.settle()
        timeline = (await harness.incident(incident_id))["timeline"]
        assert [e["data"]["target"] for e in timeline if e["kind"] == "paged"] == [BOB]
        await slash(harness, "severity SEV1", user=ALICE, channel=channel)  # payments-critical
        await harness.settle()
        timeline = (await harness.incident(incident_id))["timeline"]
        assert [e["data"]["target"] for e in timeline if e["kind"] == "paged"] == [BOB, CAROL]
        changed = [e for e in timeline if e["kind"] == "escalation_policy_changed"]
        assert len(changed) == 1 and "payments-critical" in changed[0]["text"]
        # a fall, or a rise once acknowledged, pages no one
        await slash(harness, "severity SEV4", user=ALICE, channel=channel)
        await slash(harness, "ack", user=BOB, channel=channel)
        await slash(harness, "severity SEV1", user=ALICE, channel=channel)
        await harness.settle()
        timeline = (await harness.incident(incident_id))["timeline"]
        assert len([e for e in timeline if e["kind"] == "paged"]) == 2
