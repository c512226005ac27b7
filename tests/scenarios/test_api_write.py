"""The write API end to end over HTTP: declare → channel and buttons in the emulator → PATCH
acknowledge → messages updated → note → resolve; on-call, overrides, escalate, bad input."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from bot.clock import ManualClock
from bot.config import PulseOpsConfig
from tests.conftest import Harness
from tests.helpers import WEDNESDAY, all_text, buttons, oncall_config

pytestmark = pytest.mark.asyncio
BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
DECLARE = {"title": "Checkout is down", "severity": "SEV2", "service": "payment-api"}


@pytest.fixture
def config() -> PulseOpsConfig:
    return oncall_config()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(WEDNESDAY)


def channel_message(harness: Harness, incident: dict[str, Any]) -> dict[str, Any]:
    channel, ts = incident["slack"]["channel_id"], incident["slack"]["message_ts"]
    (message,) = [m for m in harness.emu.messages(channel) if m["ts"] == ts]
    return message


async def timeline(harness: Harness, incident_id: int) -> list[dict[str, Any]]:
    return (await harness.incident(incident_id))["timeline"]  # type: ignore[no-any-return]


@BOTH
async def test_declare_acknowledge_note_resolve_through_http(harness: Harness) -> None:
    status, declared = await harness.call("POST", "/api/v1/incidents", DECLARE)
    assert status == 201, declared
    assert declared["status"] == "triggered" and declared["source"] == "api"
    assert declared["created_by"] == "api:tester" and declared["team"] == "payments"
    incident_id = declared["id"]
    await harness.settle()
    incident = await harness.incident(incident_id)
    message = channel_message(harness, incident)
    assert "Checkout is down" in all_text(message)
    assert "incident_acknowledge" in buttons(message)
    assert harness.emu.calls_to("chat.postMessage")  # announced and paged like any incident

    status, acked = await harness.call(
        "PATCH", f"/api/v1/incidents/{incident_id}", {"status": "acknowledged"}
    )
    assert status == 200 and acked["acknowledged_by"] == "api:tester"
    await harness.settle()
    message = channel_message(harness, await harness.incident(incident_id))
    assert "incident_acknowledge" not in buttons(message)
    assert "api:tester" in all_text(message)

    status, note = await harness.call(
        "POST", f"/api/v1/incidents/{incident_id}/notes", {"text": "Rolled back <!channel> v42"}
    )
    assert status == 201 and note["actor"] == "api:tester"
    await harness.settle()
    channel = incident["slack"]["channel_id"]
    posted = [m for m in harness.emu.messages(channel) if "Rolled back" in m.get("text", "")]
    assert len(posted) == 1 and "<!channel>" not in posted[0]["text"]  # escaped, once
    await harness.settle()
    assert len([m for m in harness.emu.messages(channel) if "Rolled back" in m["text"]]) == 1

    status, severity = await harness.call(
        "PATCH", f"/api/v1/incidents/{incident_id}", {"severity": "SEV1", "status": "resolved"}
    )
    assert status == 200 and severity["severity"] == "SEV1" and severity["status"] == "resolved"
    await harness.settle()
    message = channel_message(harness, await harness.incident(incident_id))
    assert not buttons(message) or "incident_resolve" not in buttons(message)
    kinds = [(e["kind"], e["actor"]) for e in await timeline(harness, incident_id)]
    assert ("triggered", "api:tester") in kinds and ("acknowledged", "api:tester") in kinds
    assert ("note", "api:tester") in kinds and ("severity_changed", "api:tester") in kinds
    assert ("resolved", "api:tester") in kinds

    # an illegal move is a 409 naming what is allowed, and changes nothing
    status, refused = await harness.call(
        "PATCH", f"/api/v1/incidents/{incident_id}", {"status": "acknowledged", "severity": "SEV4"}
    )
    assert status == 409, refused
    assert refused["fields"] == {"status": "allowed from resolved: none"}
    assert (await harness.incident(incident_id))["severity"] == "SEV1"


async def test_declare_honours_idempotency_key_and_dedup_key(harness: Harness) -> None:
    headers = {"Idempotency-Key": "deploy-4711"}
    first = await harness.call("POST", "/api/v1/incidents", DECLARE, headers=headers)
    again = await harness.call("POST", "/api/v1/incidents", DECLARE, headers=headers)
    assert first[0] == again[0] == 201 and first[1]["id"] == again[1]["id"]
    other = await harness.call(
        "POST", "/api/v1/incidents", {**DECLARE, "title": "else"}, headers=headers
    )
    assert other[0] == 409 and "Idempotency-Key" in other[1]["fields"]
    _, listed = await harness.get("/api/v1/incidents")
    assert listed["total"] == 1
    keyed = {**DECLARE, "dedup_key": "checkout"}
    status, opened = await harness.call("POST", "/api/v1/incidents", keyed)
    status2, found = await harness.call("POST", "/api/v1/incidents", keyed)
    assert (status, status2) == (201, 200) and opened["id"] == found["id"]


async def test_bad_input_names_every_field_and_writes_nothing(harness: Harness) -> None:
    status, body = await harness.call(
        "POST", "/api/v1/incidents", {"title": "", "severity": "SEV9", "extra": 1}
    )
    assert status == 400
    assert {"title", "severity", "service", "extra"} <= set(body["fields"])
    status, body = await harness.call("POST", "/api/v1/incidents", {**DECLARE, "service": "nope"})
    assert status == 400 and "service" in body["fields"]
    assert (await harness.call("PATCH", "/api/v1/incidents/999", {"status": "resolved"}))[0] == 404
    assert (await harness.call("POST", "/api/v1/incidents/999/notes", {"text": "x"}))[0] == 404
    assert (await harness.call("PATCH", "/api/v1/incidents/1", {}))[0] in (400, 404)
    assert (await harness.call("POST", "/api/v1/incidents/abc/notes", {"text": "x"}))[0] == 400
    assert harness.http is not None
    async with harness.http.post(
        f"{harness.url}/api/v1/incidents",
        data=b"{not json",
        headers={"Authorization": "Bearer api-test-token"},
    ) as r:
        assert r.status == 400 and (await r.json())["fields"] == {"body": "not JSON"}
    _, listed = await harness.get("/api/v1/incidents")
    assert listed["total"] == 0 and not harness.emu.calls_to("chat.postMessage")


async def test_escalate_oncall_and_overrides(harness: Harness) -> None:
    _, declared = await harness.call("POST", "/api/v1/incidents", DECLARE)
    await harness.settle()
    status, escalated = await harness.call("POST", f"/api/v1/incidents/{declared['id']}/escalate")
    assert status == 200 and "Paged level" in escalated["message"], escalated
    assert ("escalated", "api:tester") in [
        (e["kind"], e["actor"]) for e in await timeline(harness, declared["id"])
    ]

    status, now = await harness.get("/api/v1/oncall?schedule=payments-primary")
    assert status == 200
    (team,) = now["teams"]
    current = team["schedules"][0]["current"]
    assert team["team"] == "payments" and current["user"] == "U0BOB0001"
    assert team["schedules"][0]["next"]["user"] == "U0ALICE01"
    assert (await harness.get("/api/v1/oncall?team=payments"))[1] == now
    assert (await harness.get("/api/v1/oncall?team=nope"))[0] == 404

    start = WEDNESDAY + timedelta(hours=1)
    body = {
        "schedule": "payments-primary",
        "user": "U0CAROL01",
        "start": start.isoformat(),
        "end": (start + timedelta(hours=4)).isoformat(),
    }
    status, created = await harness.call("POST", "/api/v1/overrides", body)
    assert status == 201 and created["created_by"] == "api:tester", created
    _, listed = await harness.get("/api/v1/overrides?schedule=payments-primary")
    assert [o["id"] for o in listed["overrides"]] == [created["id"]]
    harness.clock.advance(2 * 3600)  # type: ignore[attr-defined]
    _, now = await harness.get("/api/v1/oncall?schedule=payments-primary")
    assert now["teams"][0]["schedules"][0]["current"]["user"] == "U0CAROL01"
    bad = {**body, "end": body["start"], "user": "carol"}
    status, refused = await harness.call("POST", "/api/v1/overrides", bad)
    assert status == 400 and "user" in refused["fields"]
    status, refused = await harness.call(
        "POST", "/api/v1/overrides", {**body, "end": body["start"]}
    )
    assert status == 400 and ("start" in refused["fields"] or "end" in refused["fields"])
    status, removed = await harness.call("DELETE", f"/api/v1/overrides/{created['id']}")
    assert status == 200 and removed["id"] == created["id"]
    assert (await harness.call("DELETE", f"/api/v1/overrides/{created['id']}"))[0] == 404
    assert (await harness.get("/api/v1/overrides"))[1] == {"overrides": []}
