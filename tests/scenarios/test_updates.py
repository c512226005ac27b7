"""Status updates (a form from `/incident update`), reminders when a SEV1/SEV2 incident goes
without one (SQL deadlines, once across replicas), and follow-ups."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import Harness
from tests.helpers import all_text, dms, fire
from tests.scenarios.test_roles import ALICE, BOB, CAROL, channel_message, slash, thread

pytestmark = pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


async def open_form(harness: Harness, text: str, *, user: str, channel: str) -> str:
    before = set(harness.emu.views)
    await slash(harness, text, user=user, channel=channel)
    for _ in range(100):
        new = [v for v in harness.emu.views if v not in before]
        if new:
            return new[0]
        await asyncio.sleep(0.02)
    raise AssertionError("no form opened")


async def post_update(
    harness: Harness, channel: str, *, status: str, summary: str, user: str = ALICE
) -> dict[str, Any]:
    view_id = await open_form(harness, "update", user=user, channel=channel)
    assert harness.emu.views[view_id]["callback_id"] == "incident_update"
    result = await harness.emu.submit_view(
        user=user,
        view_id=view_id,
        values={"update_status": {"status": status}, "update_summary": {"summary": summary}},
    )
    if summary.strip():  # accepted: wait for the write (a loaded machine may answer late)
        for _ in range(500):
            incident = await harness.deps.incidents.get_by_channel(channel_id=channel)
            if incident is not None and incident.update_summary == summary:
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError(f"the update {summary!r} was not recorded")
    return result


async def test_an_update_is_posted_threaded_and_shown(harness: Harness) -> None:
    incident_id = await fire(harness)
    incident = await harness.incident(incident_id)
    channel = incident["slack"]["channel_id"]
    refused = await post_update(harness, channel, status="identified", summary="   ")
    assert refused["body"]["response_action"] == "errors"
    assert "update_summary" in refused["body"]["errors"]
    done = await post_update(harness, channel, status="identified", summary="Bad deploy <v2>")
    assert done["status"] == 200 and not done["body"]
    await harness.settle()
    incident = await harness.incident(incident_id)
    assert incident["update"]["status"] == "identified"
    assert incident["update"]["summary"] == "Bad deploy <v2>"
    event = incident["timeline"][-1]
    assert (event["kind"], event["actor"]) == ("status_update", ALICE)
    text = (
        f":loudspeaker: *INC-{incident_id} update — Identified* (by <@{ALICE}>)\n"
        "Bad deploy &lt;v2&gt;"
    )
    assert text in [m["text"] for m in harness.emu.messages(channel)]
    announcement = harness.emu.messages("C0INCIDENT")[0]
    threaded = [
        m["text"]
        for m in harness.emu.messages("C0INCIDENT")
        if m.get("thread_ts") == announcement["ts"]
    ]
    assert threaded == [text]
    for message in (channel_message(harness, incident), harness.emu.messages("C0INCIDENT")[0]):
        assert "*Identified*" in all_text(message) and "Bad deploy &lt;v2&gt;" in all_text(message)


async def test_update_reminders_for_sev1_go_to_the_lead_once(harness: Harness) -> None:
    incident_id = await fire(harness)  # critical: SEV1, reminded after 30 minutes
    incident = await harness.incident(incident_id)
    assert incident["severity"] == "SEV1"
    channel = incident["slack"]["channel_id"]
    await slash(harness, f"lead <@{CAROL}>", user=ALICE, channel=channel)
    await harness.settle()
    collab = harness.deps.collab
    harness.clock.advance(timedelta(minutes=29))
    assert await collab.sweep_reminders() == 0
    harness.clock.advance(timedelta(minutes=2))
    # two replicas sweep at once: one reminder
    async with harness.replica() as other:
        counts = await asyncio.gather(collab.sweep_reminders(), other.collab.sweep_reminders())
    assert sorted(counts) == [0, 1]
    await harness.settle()
    reminders = [m["text"] for m in dms(harness, CAROL) if ":alarm_clock:" in m["text"]]
    assert len(reminders) == 1 and "has had no status update since" in reminders[0]
    assert "/incident update" in reminders[0]
    # an update moves the deadline 30 minutes on from itself
    await post_update(harness, channel, status="investigating", summary="Looking")
    # (the sweep skips an incident row another transaction holds, such as a message sync,
    # and finds it at its next run: let the update's deliveries finish first)
    await harness.settle()
    harness.clock.advance(timedelta(minutes=29))
    assert await collab.sweep_reminders() == 0
    harness.clock.advance(timedelta(minutes=2))
    assert await collab.sweep_reminders() == 1
    # resolved: no more reminders
    await slash(harness, "resolve", user=ALICE, channel=channel)
    await harness.settle()
    harness.clock.advance(timedelta(hours=5))
    assert await collab.sweep_reminders() == 0
    kinds = [e["kind"] for e in (await harness.incident(incident_id))["timeline"]]
    assert kinds.count("update_reminder") == 2


async def test_without_a_lead_the_channel_is_reminded_and_sev3_never(harness: Harness) -> None:
    quiet = await fire(harness, severity="warning", alertname="Quiet", group_key="q")
    loud = await fire(harness, alertname="Loud", group_key="l", fingerprint="f" * 16)
    await harness.settle()
    harness.clock.advance(timedelta(hours=3))
    assert await harness.deps.collab.sweep_reminders() == 1
    await harness.settle()
    channel = (await harness.incident(loud))["slack"]["channel_id"]
    assert any(":alarm_clock:" in m["text"] for m in harness.emu.messages(channel))
    quiet_channel = (await harness.incident(quiet))["slack"]["channel_id"]
    assert not any(":alarm_clock:" in m["text"] for m in harness.emu.messages(quiet_channel))


async def test_followups_listed_and_shown_on_resolve(harness: Harness) -> None:
    first = await fire(harness)
    second = await fire(harness, alertname="Other", group_key="o", fingerprint="e" * 16)
    one = (await harness.incident(first))["slack"]["channel_id"]
    two = (await harness.incident(second))["slack"]["channel_id"]
    answer = await slash(harness, f"followup Add a canary step <@{BOB}>", user=ALICE, channel=one)
    assert f"Follow-up added to INC-{first}: Add a canary step (owner <@{BOB}>)" in answer
    await slash(harness, "followup Alert on queue depth", user=ALICE, channel=two)
    assert "/incident followup <text>" in await slash(harness, "followup", user=ALICE, channel=one)
    listing = await slash(harness, "followups", user=CAROL, channel="C0INCIDENT")
    assert "Open follow-ups (2)" in listing
    assert f"INC-{first}: Add a canary step (<@{BOB}>)" in listing
    assert f"INC-{second}: Alert on queue depth" in listing
    await slash(harness, "resolve", user=ALICE, channel=one)
    await harness.settle()
    (line,) = thread(harness, await harness.incident(first))
    assert "Resolved by" in line and "*Follow-ups:*" in line and "Add a canary step" in line
    assert "queue depth" not in line


async def test_followups_marked_done_and_reopened_from_slack(harness: Harness) -> None:
    first = await fire(harness)
    second = await fire(harness, alertname="Other", group_key="o", fingerprint="e" * 16)
    one = (await harness.incident(first))["slack"]["channel_id"]
    two = (await harness.incident(second))["slack"]["channel_id"]
    await slash(harness, f"followup Add a canary step <@{BOB}>", user=ALICE, channel=one)
    await slash(harness, "followup Alert on queue depth", user=ALICE, channel=two)
    await slash(harness, "followup Done is a word too <b>", user=ALICE, channel=one)  # text
    canary, hard_word = await harness.deps.collab.followups(incident_id=first)
    (queue,) = await harness.deps.collab.followups(incident_id=second)
    assert hard_word.text == "Done is a word too <b>" and hard_word.done_at is None

    # the list: each open follow-up with its number and a Done button
    listing = await slash(harness, "followups", user=CAROL, channel="C0INCIDENT")
    assert f"#{canary.id} INC-{first}: Add a canary step (<@{BOB}>)" in listing
    assert "Done is a word too &lt;b&gt;" in listing  # escaped, as everywhere in Slack
    (shown,) = [e for e in harness.emu.ws.ephemerals if e["user"] == CAROL]
    done_buttons = [
        b["accessory"]["value"]
        for b in shown["blocks"]
        if b.get("accessory", {}).get("action_id", "").startswith("followup_done_")
    ]
    assert done_buttons == [str(canary.id), str(queue.id), str(hard_word.id)]

    # Done clicked: marked done, on the timeline, and the list redrawn without it
    clicked = await harness.emu.click(
        user=CAROL, action_id=f"followup_done_{canary.id}", channel="C0INCIDENT", ts=shown["ts"]
    )
    assert clicked["status"] == 200
    for _ in range(500):  # the list is redrawn through the response_url after the ack
        (shown,) = [e for e in harness.emu.ws.ephemerals if e["user"] == CAROL]
        if "is done" in shown["text"]:
            break
        await asyncio.sleep(0.01)
    assert f"Follow-up #{canary.id} of INC-{first} is done: Add a canary step" in shown["text"]
    assert (
        "Open follow-ups (2)" in shown["text"] and "canary" not in shown["text"].split("\n", 1)[1]
    )
    assert [b.get("accessory", {}).get("value") for b in shown["blocks"][2:]] == [
        str(queue.id),
        str(hard_word.id),
    ]
    canary_now, _ = await harness.deps.collab.followups(incident_id=first)
    assert canary_now.done_at is not None
    timeline = (await harness.incident(first))["timeline"]
    assert [
        (e["kind"], e["actor"]) for e in timeline if e["text"].startswith("Follow-up done")
    ] == [("followup_done", CAROL)]

    # the command: done again changes nothing; reopen; done by number with '#'
    again = await slash(harness, f"followup done {canary.id}", user=ALICE, channel=two)
    assert f"Follow-up #{canary.id} of INC-{first} is already done; nothing changed." in again
    reopened = await slash(harness, f"followup reopen {canary.id}", user=ALICE, channel=one)
    assert f"Follow-up #{canary.id} of INC-{first} is open again" in reopened
    assert "Open follow-ups (3)" in await slash(harness, "followups", user=ALICE, channel=one)
    done = await slash(harness, f"followup done #{queue.id}", user=BOB, channel=one)
    assert f"Follow-up #{queue.id} of INC-{second} is done" in done

    # bad numbers are refused with what to type, and change nothing
    before = [await harness.deps.collab.followups(incident_id=i) for i in (first, second)]
    for bad in ("done abc", "done 0", "reopen 99999999999", "done"):
        answer = await slash(harness, f"followup {bad}", user=ALICE, channel=one)
        assert "/incident followup done <n>" in answer, (bad, answer)
    missing = await slash(harness, "followup done 999999", user=ALICE, channel=one)
    assert "There is no follow-up 999999." in missing
    after = [await harness.deps.collab.followups(incident_id=i) for i in (first, second)]
    assert after == before

    # the postmortem shows which are done
    await slash(harness, "resolve", user=ALICE, channel=two)
    await harness.settle()
    status, document = await harness.get(f"/api/v1/incidents/{second}/postmortem.md")
    assert status == 200 and "- [x] Alert on queue depth" in document
    status, document = await harness.get(f"/api/v1/incidents/{first}/postmortem.md")
    assert "- [ ] Add a canary step (owner: U0BOB0001)" in document
