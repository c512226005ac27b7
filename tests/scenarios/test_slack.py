"""Slack in: signed button clicks, slash commands and modal submissions through Bolt."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from urllib.parse import urlencode

import pytest

from tests.conftest import SIGNING_SECRET, Harness, alertmanager_payload
from tests.helpers import all_text, buttons, reply_text, wait_for_status

pytestmark = pytest.mark.asyncio


async def open_incident(harness: Harness, **kwargs: object) -> tuple[int, dict]:
    _, body = await harness.post_alert(alertmanager_payload(**kwargs))  # type: ignore[arg-type]
    incident_id = body["results"][0]["incident_id"]
    await harness.settle()
    return incident_id, await harness.incident(incident_id)


async def click(
    harness: Harness, user: str, incident: dict, action: str, *, where: str = "channel"
) -> dict:
    if where == "channel":
        channel, ts = incident["slack"]["channel_id"], incident["slack"]["message_ts"]
    else:
        channel, ts = (
            incident["slack"]["announcement_channel"],
            incident["slack"]["announcement_ts"],
        )
    result = await harness.emu.click(user=user, channel=channel, ts=ts, action_id=action)
    assert result["status"] == 200, result
    await asyncio.sleep(0.05)  # Bolt answers first, then runs the listener
    await harness.settle()
    return result


async def test_acknowledge_then_resolve_by_clicks(harness: Harness) -> None:
    incident_id, incident = await open_incident(harness)
    await click(harness, "U0ALICE01", incident, "incident_acknowledge")
    await wait_for_status(harness, incident_id, "acknowledged")
    await harness.settle()
    incident = await harness.incident(incident_id)
    assert incident["acknowledged_by"] == "U0ALICE01"
    assert incident["timeline"][-1]["kind"] == "acknowledged"
    assert incident["timeline"][-1]["actor"] == "U0ALICE01"
    for channel in (incident["slack"]["channel_id"], "C0INCIDENT"):
        message = harness.emu.messages(channel)[0]
        assert buttons(message) == ["incident_resolve"], "acknowledge is gone once acknowledged"
        assert "<@U0ALICE01>" in all_text(message)
    await click(harness, "U0BOB0001", incident, "incident_resolve", where="announcement")
    await wait_for_status(harness, incident_id, "resolved")
    await harness.settle()
    incident = await harness.incident(incident_id)
    assert incident["resolved_by"] == "U0BOB0001"
    assert [e["kind"] for e in incident["timeline"]] == ["triggered", "acknowledged", "resolved"]
    for channel in (incident["slack"]["channel_id"], "C0INCIDENT"):
        message = harness.emu.messages(channel)[0]
        assert buttons(message) == ["incident_reopen"]
        assert "<@U0BOB0001>" in all_text(message)


async def test_illegal_click_gets_ephemeral_and_changes_nothing(harness: Harness) -> None:
    incident_id, incident = await open_incident(harness)
    # Slack is slow to show the new state: message edits fail for now
    harness.emu.set_faults(error_status=503, error_count=1000, methods=["chat.update"])
    await command(harness, f"resolve {incident_id}", user="U0ALICE01")
    await harness.settle()
    before = await harness.incident(incident_id)
    assert before["status"] == "resolved"
    updates = len(harness.emu.calls_to("chat.update"))
    # the stale message still shows Acknowledge: click it
    result = await harness.emu.click(
        user="U0BOB0001",
        channel=incident["slack"]["channel_id"],
        ts=incident["slack"]["message_ts"],
        action_id="incident_acknowledge",
    )
    assert result["status"] == 200
    for _ in range(50):
        if any(e["user"] == "U0BOB0001" for e in harness.emu.ephemerals):
            break
        await asyncio.sleep(0.02)
    (note,) = [e for e in harness.emu.ephemerals if e["user"] == "U0BOB0001"]
    assert "already resolved" in note["text"] and "<@U0ALICE01>" in note["text"]
    await harness.settle()
    after = await harness.incident(incident_id)
    assert after["timeline"] == before["timeline"]
    assert after["updated_at"] == before["updated_at"]
    assert len(harness.emu.calls_to("chat.update")) == updates
    # once Slack recovers, the message catches up and the buttons disappear
    harness.emu.set_faults(clear=True)
    harness.clock.advance(120)
    await harness.settle()
    assert buttons(harness.emu.messages(incident["slack"]["channel_id"])[0]) == ["incident_reopen"]


def signed(body: str, *, secret: str = SIGNING_SECRET, ts: int | None = None) -> dict[str, str]:
    ts = int(time.time()) if ts is None else ts
    sig = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": str(ts),
        "X-Slack-Signature": f"v0={sig}",
        "Content-Type": "application/x-www-form-urlencoded",
    }


@pytest.mark.parametrize(
    "headers",
    [
        {},  # unsigned
        {"secret": "wrong-secret"},
        {"age": 600},  # replayed 10 minutes later
    ],
    ids=["unsigned", "mis-signed", "stale"],
)
async def test_bad_slack_signatures_are_rejected(harness: Harness, headers: dict) -> None:
    incident_id, incident = await open_incident(harness)
    payload = {
        "type": "block_actions",
        "user": {"id": "U0ALICE01"},
        "team": {"id": "T0PULSEOPS"},
        "actions": [
            {
                "action_id": "incident_acknowledge",
                "value": str(incident_id),
                "block_id": "incident_actions",
                "type": "button",
            }
        ],
        "container": {"type": "message"},
        "response_url": f"{harness.emu.api_url}../_emulator/response/none",
        "trigger_id": "1.2.3",
    }
    body = urlencode({"payload": json.dumps(payload)})
    if not headers:
        hdrs = {"Content-Type": "application/x-www-form-urlencoded"}
    elif "secret" in headers:
        hdrs = signed(body, secret=headers["secret"])
    else:
        hdrs = signed(body, ts=int(time.time()) - headers["age"])
    assert harness.http is not None
    async with harness.http.post(f"{harness.url}/slack/events", data=body, headers=hdrs) as r:
        assert r.status == 401
    await asyncio.sleep(0.1)
    assert (await harness.incident(incident_id))["status"] == "triggered"


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
async def test_concurrent_clicks_make_exactly_one_transition(harness: Harness) -> None:
    incident_id, incident = await open_incident(harness)
    users = ["U0ALICE01", "U0BOB0001", "U0CAROL01"] * 3
    results = await asyncio.gather(
        *(
            harness.emu.click(
                user=u,
                channel=incident["slack"]["channel_id"],
                ts=incident["slack"]["message_ts"],
                action_id="incident_acknowledge",
            )
            for u in users
        )
    )
    assert all(r["status"] == 200 for r in results)
    await wait_for_status(harness, incident_id, "acknowledged")
    await harness.settle()
    for _ in range(100):
        if len(harness.emu.ephemerals) == len(users) - 1:
            break
        await asyncio.sleep(0.02)
    incident = await harness.incident(incident_id)
    acks = [e for e in incident["timeline"] if e["kind"] == "acknowledged"]
    assert len(acks) == 1
    assert incident["acknowledged_by"] == acks[0]["actor"]
    assert len(harness.emu.ephemerals) == len(users) - 1
    assert all("already acknowledged" in e["text"] for e in harness.emu.ephemerals)


async def command(
    harness: Harness, text: str, *, user: str = "U0ALICE01", channel: str = "C0INCIDENT"
) -> dict:
    result = await harness.emu.command(user=user, channel=channel, command="/incident", text=text)
    assert result["status"] == 200, result
    return result


async def test_slash_list_status_timeline_help(harness: Harness) -> None:
    incident_id, incident = await open_incident(harness, summary="Payments <!here> failing")
    text = reply_text(await command(harness, "list"))
    assert f"INC-{incident_id}" in text and "&lt;!here&gt;" in text and "<!here>" not in text
    text = reply_text(await command(harness, f"status INC-{incident_id}"))
    assert "triggered" in text
    text = reply_text(await command(harness, f"timeline {incident_id}"))
    assert "Triggered by alert" in text
    text = reply_text(await command(harness, "help"))
    assert "/incident declare" in text
    for bad in ("frobnicate", "status banana", "ack"):
        text = reply_text(await command(harness, bad))
        assert ":warning:" in text, bad
    text = reply_text(await command(harness, "status 999"))
    assert "no incident INC-999" in text


async def test_slash_ack_and_resolve_inside_the_incident_channel(harness: Harness) -> None:
    incident_id, incident = await open_incident(harness)
    channel = incident["slack"]["channel_id"]
    text = reply_text(await command(harness, "ack", user="U0BOB0001", channel=channel))
    assert f"acknowledged INC-{incident_id}" in text
    text = reply_text(await command(harness, "ack", user="U0ALICE01", channel=channel))
    assert "already acknowledged" in text and "<@U0BOB0001>" in text
    text = reply_text(await command(harness, f"resolve {incident_id}", user="U0ALICE01"))
    assert f"resolved INC-{incident_id}" in text
    await harness.settle()
    incident = await harness.incident(incident_id)
    assert incident["status"] == "resolved" and incident["resolved_by"] == "U0ALICE01"
    assert buttons(harness.emu.messages(channel)[0]) == ["incident_reopen"]


async def test_declare_through_the_modal(harness: Harness) -> None:
    result = await command(harness, "declare", user="U0CAROL01")
    assert result["status"] == 200
    for _ in range(50):
        if harness.emu.views:
            break
        await asyncio.sleep(0.02)
    ((view_id, view),) = harness.emu.views.items()
    assert view["callback_id"] == "incident_declare"
    # a blank title is refused with a field error and creates nothing
    refused = await harness.emu.submit_view(
        user="U0CAROL01",
        view_id=view_id,
        values={"declare_title": {"title": "   "}, "declare_severity": {"severity": "SEV2"}},
    )
    assert refused["body"]["response_action"] == "errors"
    assert "declare_title" in refused["body"]["errors"]
    _, listing = await harness.get("/api/v1/incidents")
    assert listing["total"] == 0
    done = await harness.emu.submit_view(
        user="U0CAROL01",
        view_id=view_id,
        values={
            "declare_title": {"title": "Search results empty <!channel>"},
            "declare_severity": {"severity": "SEV2"},
            "declare_service": {"service": "search-api"},
            "declare_description": {"description": "Users see no results"},
        },
    )
    assert done["status"] == 200
    for _ in range(100):
        _, listing = await harness.get("/api/v1/incidents")
        if listing["total"]:
            break
        await asyncio.sleep(0.02)
    await harness.settle()
    (summary,) = listing["incidents"]
    incident = await harness.incident(summary["id"])
    assert incident["severity"] == "SEV2" and incident["service"] == "search-api"
    assert incident["created_by"] == "U0CAROL01" and incident["source"] == "slack"
    assert incident["timeline"][0]["actor"] == "U0CAROL01"
    channel = harness.emu.channels[incident["slack"]["channel_id"]]
    assert "U0CAROL01" in channel.members
    assert channel.name.startswith(f"inc-{incident['id']}-search-results-empty")
    assert "<!channel>" not in json.dumps(harness.emu.messages("C0INCIDENT"))


async def test_an_unexpected_failure_gets_an_error_id_not_silence(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    from store.session import Database

    await harness.deps.db.dispose()
    object.__setattr__(
        harness.deps.incidents, "db", Database("postgresql+asyncpg://postgres@127.0.0.1:1/none")
    )
    result = await harness.emu.command(
        user="U0ALICE01", channel="C0INCIDENT", command="/incident", text="list"
    )
    assert result["status"] == 200
    for _ in range(100):
        if harness.emu.ephemerals:
            break
        await asyncio.sleep(0.05)
    (note,) = harness.emu.ephemerals
    assert "error id" in note["text"]
    error_id = note["text"].split("`")[1]
    assert any(getattr(r, "error_id", None) == error_id for r in caplog.records)
