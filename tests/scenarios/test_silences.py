"""Silences through the API: a silenced alert is stored and counted, opens no incident and
makes no Slack call; expiring the silence opens its incident once (also with two replicas);
bad input is refused naming the field and changes nothing. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.clock import ManualClock
from store.models import IncidentRow, SuppressedAlertRow
from tests.conftest import READ_TOKEN, Harness, alertmanager_payload

pytestmark = pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


def iso(clock: ManualClock, delta: timedelta) -> str:
    return (clock.now() + delta).isoformat().replace("+00:00", "Z")


async def silence(harness: Harness, clock: ManualClock, *matchers: str, **extra: Any) -> int:
    body = {
        "matchers": list(matchers),
        "ends_at": iso(clock, timedelta(hours=2)),
        "comment": "deploy of payments",
        **extra,
    }
    status, answer = await harness.call("POST", "/api/v1/silences", body)
    assert status == 201, answer
    return int(answer["id"])


async def suppressed(harness: Harness) -> list[SuppressedAlertRow]:
    async with harness.deps.db.read() as session:
        return list(await session.scalars(select(SuppressedAlertRow)))


async def incident_count(harness: Harness) -> int:
    async with harness.deps.db.read() as session:
        return len(list(await session.scalars(select(IncidentRow.id))))


async def test_silenced_alert_is_stored_counted_and_opens_on_expiry(
    harness: Harness, clock: ManualClock
) -> None:
    silence_id = await silence(harness, clock, 'service="payment-api"', 'alertname=~"High.*"')
    calls_before = len(harness.emu.calls)
    for _ in range(3):
        status, body = await harness.post_alert(alertmanager_payload())
        assert status == 202
        assert body["results"][0]["outcome"] == "muted"
        assert body["results"][0]["incident"] is None
    await harness.settle()
    assert await incident_count(harness) == 0
    assert len(harness.emu.calls) == calls_before  # nobody paged, nothing posted
    (row,) = await suppressed(harness)
    assert (row.reason, row.status, row.occurrences, row.silence_id) == (
        "muted",
        "firing",
        3,
        silence_id,
    )
    assert row.by == f"silence #{silence_id} (by api:tester: deploy of payments)"
    listed = (await harness.get("/api/v1/silences"))[1]["silences"]
    assert [(s["id"], s["status"], s["held_alerts"]) for s in listed] == [(silence_id, "active", 1)]
    status, held = await harness.get(f"/api/v1/suppressed-alerts?silence={silence_id}")
    assert status == 200
    (record,) = held["alerts"]
    assert (record["reason"], record["status"], record["occurrences"]) == ("muted", "firing", 3)
    assert record["by"] == row.by and record["released_at"] is None
    assert record["labels"]["alertname"] == "HighErrorRate"
    for bad in ("reason=nope", "status=open", "silence=x", "limit=0", "limit=201"):
        status, refused = await harness.get(f"/api/v1/suppressed-alerts?{bad}")
        assert status == 400 and bad.split("=")[0] in refused["fields"], (bad, refused)
    metrics = await harness.http.get(f"{harness.url}/metrics")  # type: ignore[union-attr]
    text = await metrics.text()
    assert f'pulseops_alerts_muted_total{{kind="silence",name="{silence_id}"}} 3.0' in text

    # nothing is released while the silence lasts
    assert await harness.deps.silences.sweep() == 0
    status, expired = await harness.call("DELETE", f"/api/v1/silences/{silence_id}")
    assert status == 200 and expired["status"] == "expired"
    assert expired["expired_by"] == "api:tester"
    assert await harness.deps.silences.sweep() == 1
    assert await harness.deps.silences.sweep() == 0  # exactly once
    await harness.settle()
    (incident,) = (await harness.get("/api/v1/incidents"))[1]["incidents"]
    detail = await harness.incident(incident["id"])
    texts = [event["text"] for event in detail["timeline"]]
    (released,) = (await harness.get("/api/v1/suppressed-alerts?reason=muted"))[1]["alerts"]
    assert released["released_incident_id"] == incident["id"] and released["released_at"]
    assert any(f"held by silence #{silence_id} (by api:tester" in t for t in texts), texts
    assert harness.emu.calls_to("chat.postMessage"), "the incident is announced once opened"
    # a second expiry is a conflict and changes nothing
    status, again = await harness.call("DELETE", f"/api/v1/silences/{silence_id}")
    assert status == 409 and again["fields"] == {"id": "already ended"}
    # the alert now repeats on its incident
    _, body = await harness.post_alert(alertmanager_payload())
    assert body["results"][0]["outcome"] == "deduplicated"


async def test_resolved_while_silenced_never_opens(harness: Harness, clock: ManualClock) -> None:
    await silence(harness, clock, 'alertname="HighErrorRate"')
    await harness.post_alert(alertmanager_payload())
    _, body = await harness.post_alert(alertmanager_payload(status="resolved"))
    assert body["results"][0]["outcome"] == "ignored"
    (row,) = await suppressed(harness)
    assert row.status == "resolved"
    clock.advance(timedelta(hours=3))  # the silence ends by itself
    assert await harness.deps.silences.sweep() == 0
    assert await incident_count(harness) == 0


async def test_silence_reaching_its_end_releases_and_another_silence_keeps_holding(
    harness: Harness, clock: ManualClock
) -> None:
    short = await silence(
        harness, clock, 'service="payment-api"', ends_at=iso(clock, timedelta(minutes=10))
    )
    await harness.post_alert(alertmanager_payload())
    longer = await silence(
        harness, clock, 'instance="web-1:9100"', ends_at=iso(clock, timedelta(hours=1))
    )
    clock.advance(timedelta(minutes=11))
    assert await harness.deps.silences.sweep() == 0  # the longer one holds it now
    (row,) = await suppressed(harness)
    assert row.silence_id == longer and row.released_at is None, short
    clock.advance(timedelta(hours=1))
    assert await harness.deps.silences.sweep() == 1
    assert await incident_count(harness) == 1


async def test_release_is_exactly_once_across_replicas(
    harness: Harness, clock: ManualClock
) -> None:
    silence_id = await silence(harness, clock, 'service="payment-api"')
    for n in range(5):
        payload = alertmanager_payload(
            group_key=f'{{}}:{{alertname="A{n}"}}', alertname=f"A{n}", fingerprint=f"f{n}"
        )
        assert (await harness.post_alert(payload))[1]["results"][0]["outcome"] == "muted"
    await harness.call("DELETE", f"/api/v1/silences/{silence_id}")
    async with harness.replica() as other:
        import asyncio

        counts = await asyncio.gather(
            harness.deps.silences.sweep(), other.silences.sweep(), harness.deps.silences.sweep()
        )
    assert sum(counts) == 5
    assert await incident_count(harness) == 5


async def test_bad_silences_are_refused_naming_the_field(
    harness: Harness, clock: ManualClock
) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"matchers": ['env="prod"', "bad matcher"]}, "matchers.1"),
        ({"matchers": []}, "matchers"),
        ({"matchers": ['env=~".*"']}, "matchers"),  # would mute everything
        ({"ends_at": iso(clock, timedelta(minutes=-1))}, "ends_at"),
        (
            {
                "starts_at": iso(clock, timedelta(hours=3)),
                "ends_at": iso(clock, timedelta(hours=2)),
            },
            "ends_at",
        ),
        ({"comment": " "}, "comment"),
        ({"extra": 1}, "extra"),
    ]
    for change, field in cases:
        body = {
            "matchers": ['service="payment-api"'],
            "ends_at": iso(clock, timedelta(hours=2)),
            "comment": "deploy",
            **change,
        }
        status, answer = await harness.call("POST", "/api/v1/silences", body)
        assert status == 400, (change, answer)
        assert field in answer["fields"], (change, answer)
    assert (await harness.get("/api/v1/silences"))[1] == {"silences": []}
    # read-only tokens may list but not create or expire
    status, _ = await harness.call(
        "POST",
        "/api/v1/silences",
        {"matchers": ['env="x"'], "ends_at": iso(clock, timedelta(hours=1)), "comment": "c"},
        token=READ_TOKEN,
    )
    assert status == 403
    assert (await harness.get("/api/v1/silences", token=READ_TOKEN))[0] == 200
    assert (await harness.call("DELETE", "/api/v1/silences/999"))[0] == 404
    assert (await harness.call("DELETE", "/api/v1/silences/abc"))[0] == 400
    assert (await harness.get("/api/v1/silences", token=None))[0] == 401


async def test_pending_silence_mutes_only_from_its_start(
    harness: Harness, clock: ManualClock
) -> None:
    await silence(
        harness,
        clock,
        'service="payment-api"',
        starts_at=iso(clock, timedelta(hours=1)),
        ends_at=iso(clock, timedelta(hours=2)),
    )
    listed = (await harness.get("/api/v1/silences"))[1]["silences"]
    assert listed[0]["status"] == "pending"
    _, body = await harness.post_alert(alertmanager_payload())
    assert body["results"][0]["outcome"] == "created"
    clock.advance(timedelta(hours=1, minutes=1))
    _, body = await harness.post_alert(
        alertmanager_payload(group_key='{}:{alertname="Other"}', fingerprint="other")
    )
    assert body["results"][0]["outcome"] == "muted"
