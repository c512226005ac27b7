"""Nothing one sender does can hurt another: poison pills, hostile bodies, limits."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit

import pytest

from bot.clock import ManualClock
from bot.config import parse_config
from bot.ingest.decisions import Decision
from bot.ingest.stages import AlertContext, Mute
from bot.sandbox.emulator import Emulator
from tests.conftest import CONFIG_YAML, TOKENS, Harness, alertmanager_payload

pytestmark = pytest.mark.asyncio
BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)


def generic(i: int, **fields: Any) -> dict[str, Any]:
    return {"title": f"Valid alert {i}", "dedup_key": f"valid-{i}", **fields}


async def incident_titles(harness: Harness) -> set[str]:
    _, listing = await harness.get("/api/v1/incidents?limit=200")
    return {i["title"] for i in listing["incidents"]}


async def raw_post(harness: Harness, path: str, head: bytes, body: bytes) -> tuple[int, Any]:
    """POST with header bytes exactly as given (clients refuse to send some of them)."""
    url = urlsplit(harness.url)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    writer.write(
        b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Content-Type: application/json\r\n"
        + head
        + b"Content-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )
    await writer.drain()
    response = await reader.read()
    writer.close()
    status_line, _, rest = response.partition(b"\r\n")
    _, _, payload = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), json.loads(payload)


POISON = [
    pytest.param(
        "pagerduty",
        {
            "routing_key": "x",
            "event_action": "trigger",
            "payload": {
                "summary": "ok",
                "source": "db",
                "severity": "error",
                "custom_details": {"note": "\ud800"},
            },
        },
        "payload.custom_details.note",
        id="lone-surrogate-in-details",
    ),
    pytest.param("generic", {"title": "nul \u0000 in title"}, "title", id="nul-in-title"),
    pytest.param(
        "generic",
        {"title": "fine", "description": "a\u0000b", "labels": {"k": "v"}},
        "description",
        id="nul-in-description",
    ),
    pytest.param(
        "generic", {"title": "fine", "labels": {"k\u0000": "v"}}, "labels.k\u0000", id="nul-key"
    ),
]


@BOTH
@pytest.mark.parametrize(("integration", "poison", "field"), POISON)
async def test_a_poisonous_delivery_is_refused_and_fails_no_other(
    harness: Harness, integration: str, poison: dict[str, Any], field: str
) -> None:
    valid = [harness.post_alert(generic(i), integration="generic") for i in range(15)]
    valid += [
        harness.post_alert(
            alertmanager_payload(
                group_key=f'{{}}:{{alertname="A{i}"}}', alertname=f"A{i}", fingerprint=f"fa{i}"
            )
        )
        for i in range(16)
    ]
    bad = harness.post_alert(poison, integration=integration)
    *answers, (status, body) = await asyncio.gather(*valid, bad)
    assert status == 400, body
    assert field in body["fields"], body
    assert all(s == 202 for s, _ in answers), [a for a in answers if a[0] != 202]
    titles = await incident_titles(harness)
    assert len(titles) == 16  # the 15 generic alerts share no group; 16 Alertmanager groups
    assert {f"Valid alert {i}" for i in range(15)} <= titles


class Explode:
    """A stage that fails for one alert, as any bug or database refusal would."""

    async def __call__(self, ctx: AlertContext) -> Decision | None:
        if ctx.alert.title == "explode":
            raise RuntimeError("boom")
        return None


@BOTH
async def test_a_delivery_failing_for_any_reason_fails_only_itself(harness: Harness) -> None:
    ingest = harness.deps.ingest
    stages = tuple(Explode() if isinstance(s, Mute) else s for s in ingest.pipeline.decide)
    ingest.pipeline = ingest.pipeline.__class__(
        receive=ingest.pipeline.receive,
        deliver=ingest.pipeline.deliver,
        decide=stages,
        metrics=ingest.pipeline.metrics,
    )
    posts = [harness.post_alert(generic(i), integration="generic") for i in range(31)]
    posts.insert(10, harness.post_alert(generic(99, title="explode"), integration="generic"))
    answers = await asyncio.gather(*posts)
    statuses = [s for s, _ in answers]
    assert statuses.count(500) == 1 and statuses[10] == 500
    assert statuses.count(202) == 31
    assert len(await incident_titles(harness)) == 31


@BOTH
async def test_a_non_ascii_idempotency_key_byte_is_a_400(harness: Harness) -> None:
    body = json.dumps(generic(1)).encode()
    auth = f"Authorization: Bearer {TOKENS['generic']}\r\n".encode()
    status, answer = await raw_post(
        harness, "/webhooks/generic", auth + b"Idempotency-Key: caf\xe9\r\n", body
    )
    assert status == 400, answer
    assert "Idempotency-Key" in answer["fields"]
    status, answer = await raw_post(harness, "/webhooks/generic", auth, body)
    assert status == 202, answer


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        pytest.param(b"[" * 10_000 + b"]" * 10_000, "body", id="nested-10000-deep"),
        pytest.param(b'{"title": "x", "n": ' + b"9" * 5000 + b"}", "body", id="5000-digit-int"),
    ],
)
async def test_hostile_json_is_a_400(harness: Harness, raw: bytes, field: str) -> None:
    status, body = await harness.post_alert(None, integration="generic", raw=raw)
    assert status == 400, body
    assert field in body["fields"]
    assert await incident_titles(harness) == set()


async def test_times_that_overflow_in_utc_are_a_400_naming_the_field(harness: Harness) -> None:
    payload = alertmanager_payload()
    payload["alerts"][0]["startsAt"] = "9999-12-31T23:59:59-01:00"
    status, body = await harness.post_alert(payload)
    assert status == 400, body
    assert body["fields"] == {"alerts.0.startsAt": "is out of range once converted to UTC"}
    event = {
        "routing_key": "x",
        "event_action": "trigger",
        "payload": {
            "summary": "s",
            "source": "x",
            "severity": "error",
            "timestamp": "0001-01-01T00:00:00+01:00",
        },
    }
    status, body = await harness.post_alert(event, integration="pagerduty")
    assert status == 400, body
    assert "payload.timestamp" in body["fields"]


async def test_a_non_ascii_bearer_token_is_a_401(harness: Harness) -> None:
    body = json.dumps(generic(1)).encode()
    status, answer = await raw_post(
        harness, "/webhooks/generic", "Authorization: Bearer pässwörd\r\n".encode(), body
    )
    assert status == 401, answer


async def test_too_many_alerts_in_one_delivery_is_a_413_naming_the_limit(
    harness: Harness,
) -> None:
    limit = harness.config.incidents.max_alerts_per_delivery
    batch = [generic(i) for i in range(limit + 1)]
    status, body = await harness.post_alert(batch, integration="generic")
    assert status == 413, body
    assert "alerts" in body["fields"]
    assert "max_alerts_per_delivery" in body["error"]
    assert await incident_titles(harness) == set()


async def test_an_integration_over_its_rate_is_answered_429_with_retry_after(
    emulator: Emulator, database_url: str, clock: ManualClock
) -> None:
    limited = CONFIG_YAML.replace(
        '    token: "generic-token"\n',
        '    token: "generic-token"\n    max_requests_per_second: 0.5\n',
    ).replace("  max_body_bytes: 65536\n", "  max_body_bytes: 65536\n  request_burst: 3\n")
    config = parse_config(limited, environ={})
    async with Harness(
        emulator=emulator, database_url=database_url, config=config, clock=clock
    ) as harness:
        answers = [await harness.post_alert(generic(i), integration="generic") for i in range(4)]
        assert [s for s, _ in answers] == [202, 202, 202, 429]
        assert "rate limit of 0.5 requests a second" in answers[3][1]["error"]
        assert harness.http is not None
        async with harness.http.post(
            f"{harness.url}/webhooks/generic",
            json=generic(9),
            headers={"Authorization": f"Bearer {TOKENS['generic']}"},
        ) as r:
            assert r.status == 429
            assert 1 <= int(r.headers["Retry-After"]) <= 2
        await asyncio.sleep(2.1)  # the bucket refills at the configured rate (monotonic time)
        status, _ = await harness.post_alert(generic(10), integration="generic")
        assert status == 202
        # nothing from the refused deliveries was stored
        assert len(await incident_titles(harness)) == 4
        # another integration is not held back by this one's limit
        status, _ = await harness.post_alert(alertmanager_payload())
        assert status == 202


async def test_stored_idempotency_answers_are_bounded(harness: Harness) -> None:
    batch = [generic(i) for i in range(150)]
    headers = {"Idempotency-Key": "big-batch"}
    status, first = await harness.post_alert(batch, integration="generic", headers=headers)
    assert status == 202 and len(first["results"]) == 150
    status, replay = await harness.post_alert(batch, integration="generic", headers=headers)
    assert status == 202 and replay["replayed"] is True
    assert len(replay["results"]) == 100 and replay["results_omitted"] == 50
    assert replay["results"] == first["results"][:100]


async def test_past_the_new_incident_rate_new_alerts_join_one_storm_incident(
    emulator: Emulator, database_url: str, clock: ManualClock
) -> None:
    stormy = CONFIG_YAML.replace(
        "  max_body_bytes: 65536\n", "  max_body_bytes: 65536\n  max_new_incidents_per_minute: 3\n"
    )
    config = parse_config(stormy, environ={})
    async with Harness(
        emulator=emulator, database_url=database_url, config=config, clock=clock
    ) as harness:
        answers = [
            (await harness.post_alert(generic(i), integration="generic"))[1] for i in range(7)
        ]
        outcomes = [a["results"][0]["outcome"] for a in answers]
        assert outcomes == ["created"] * 4 + ["grouped"] * 3
        storm_id = answers[3]["results"][0]["incident_id"]
        assert {a["results"][0]["incident_id"] for a in answers[3:]} == {storm_id}
        storm = await harness.incident(storm_id)
        assert storm["title"] == "Alert storm from generic: more than 3 new incidents a minute"
        assert "incidents.max_new_incidents_per_minute" in storm["description"]
        assert len(storm["alerts"]) == 4  # every alert kept, none dropped
        _, listing = await harness.get("/api/v1/incidents")
        assert listing["total"] == 4  # three incidents, then one for the storm
        await harness.settle()
        assert len(harness.emu.calls_to("conversations.create")) == 4

        # a repeat is counted on the storm incident; its resolve resolves it there
        _, again = await harness.post_alert(generic(5), integration="generic")
        assert again["results"][0]["outcome"] == "deduplicated"
        assert again["results"][0]["incident_id"] == storm_id
        for i in range(3, 7):
            _, done = await harness.post_alert(generic(i, status="resolved"), integration="generic")
        assert done["results"][0]["outcome"] == "resolved"
        assert (await harness.incident(storm_id))["status"] == "resolved"

        clock.advance(61)  # the storm is over: new alerts open their own incidents again
        _, fresh = await harness.post_alert(generic(20), integration="generic")
        assert fresh["results"][0]["outcome"] == "created"
        assert fresh["results"][0]["incident_id"] != storm_id


@pytest.mark.parametrize(
    "query",
    ["until=9999-12-31T23:59:59-01:00", "since=0001-01-01T00:00:00%2B01:00", "until=0001-01-01"],
)
async def test_stats_times_out_of_the_calendar_are_a_400(harness: Harness, query: str) -> None:
    status, body = await harness.get(f"/api/v1/stats?{query}")
    assert status == 400, body
    assert set(body["fields"]) & {"since", "until"}
