"""Drop-in endpoints over HTTP, as PagerDuty and Opsgenie senders call them: `/v2/enqueue`,
`/v2/change/enqueue`, `/v2/alerts` (+ close, acknowledge), answered as those services document.
"""

from __future__ import annotations

from typing import Any

import pytest

from bot.clock import ManualClock
from bot.config import PulseOpsConfig, parse_config
from bot.sandbox.emulator import Emulator
from tests.conftest import CONFIG_YAML, Harness
from tests.helpers import all_text

pytestmark = pytest.mark.asyncio

PD_KEY = "pd-token"  # the `pagerduty` integration's token (service payment-api)
GENIE_KEY = "genie-token"  # the `opsgenie` integration's token (service search-api)

DROPIN_YAML = CONFIG_YAML.replace(
    "api_tokens:\n",
    """  - name: opsgenie
    type: opsgenie
    token: "genie-token"
    service: search-api
api_tokens:
""",
    1,
)


@pytest.fixture
def config() -> PulseOpsConfig:
    return parse_config(DROPIN_YAML, source="test.yml", environ={})


async def enqueue(
    harness: Harness, body: Any, *, path: str = "/v2/enqueue", raw: bytes | None = None
) -> tuple[int, Any]:
    """POST as PagerDuty clients do: no Authorization header, the routing key in the body."""
    assert harness.http is not None
    kwargs: dict[str, Any] = {"data": raw} if raw is not None else {"json": body}
    async with harness.http.post(f"{harness.url}{path}", **kwargs) as r:
        return r.status, await r.json(content_type=None)


async def genie(
    harness: Harness,
    path: str,
    body: Any = None,
    *,
    key: str | None = GENIE_KEY,
    raw: bytes | None = None,
) -> tuple[int, Any]:
    """POST as Opsgenie clients do: `Authorization: GenieKey <key>`."""
    assert harness.http is not None
    headers = {"Authorization": f"GenieKey {key}"} if key is not None else {}
    kwargs: dict[str, Any] = {"data": raw} if raw is not None else {"json": body}
    if body is None and raw is None:
        kwargs = {}
    async with harness.http.post(f"{harness.url}{path}", headers=headers, **kwargs) as r:
        return r.status, await r.json(content_type=None)


def trigger(dedup_key: str | None = "checkout-5xx", **payload: Any) -> dict[str, Any]:
    """A trigger event shaped as PagerDuty's Events API v2 documentation shows it."""
    event: dict[str, Any] = {
        "routing_key": PD_KEY,
        "event_action": "trigger",
        "payload": {
            "summary": "Checkout 5xx above 5%",
            "source": "web-1.example.com",
            "severity": "critical",
            "component": "checkout",
            "group": "prod-web",
            "class": "5xx",
            "custom_details": {"ratio": "7.2%"},
            **payload,
        },
        "links": [{"href": "https://grafana.example.com/d/abc", "text": "Dashboard"}],
        "client": "Sample Monitoring Service",
        "client_url": "https://monitoring.example.com",
    }
    if dedup_key is not None:
        event["dedup_key"] = dedup_key
    return event


async def incidents(harness: Harness) -> list[dict[str, Any]]:
    status, body = await harness.get("/api/v1/incidents")
    assert status == 200, body
    return body["incidents"]  # type: ignore[no-any-return]


# ---- PagerDuty Events API v2 ------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
async def test_pagerduty_trigger_acknowledge_resolve_by_dedup_key(harness: Harness) -> None:
    status, body = await enqueue(harness, trigger())
    assert (status, body) == (
        202,
        {"status": "success", "message": "Event processed", "dedup_key": "checkout-5xx"},
    )
    await harness.settle()
    (listed,) = await incidents(harness)
    incident = await harness.incident(listed["id"])
    assert incident["title"] == "Checkout 5xx above 5%"
    assert incident["severity"] == "SEV1"  # critical
    assert incident["service"] == "payment-api"  # the integration's service
    assert incident["status"] == "triggered"
    assert incident["slack"]["channel_id"] in harness.emu.channels

    # the same dedup_key again is the same alert: counted, no second incident
    status, body = await enqueue(harness, trigger())
    assert status == 202 and body["dedup_key"] == "checkout-5xx"
    assert len(await incidents(harness)) == 1

    ack = {"routing_key": PD_KEY, "event_action": "acknowledge", "dedup_key": "checkout-5xx"}
    assert (await enqueue(harness, ack))[0] == 202
    assert (await harness.incident(listed["id"]))["status"] == "acknowledged"

    resolve = {**ack, "event_action": "resolve"}
    status, body = await enqueue(harness, resolve)
    assert (status, body["dedup_key"]) == (202, "checkout-5xx")
    assert (await harness.incident(listed["id"]))["status"] == "resolved"


async def test_pagerduty_trigger_without_dedup_key_answers_the_key_to_resolve_with(
    harness: Harness,
) -> None:
    status, body = await enqueue(harness, trigger(dedup_key=None))
    assert status == 202 and body["status"] == "success"
    key = body["dedup_key"]
    assert isinstance(key, str) and key
    # a retry of the same event is the same alert (PagerDuty would mint a new key each time)
    assert (await enqueue(harness, trigger(dedup_key=None)))[1]["dedup_key"] == key
    (listed,) = await incidents(harness)
    resolve = {"routing_key": PD_KEY, "event_action": "resolve", "dedup_key": key}
    assert (await enqueue(harness, resolve))[0] == 202
    assert (await harness.incident(listed["id"]))["status"] == "resolved"


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({**trigger(), "routing_key": None}, "routing_key: required"),
        ({k: v for k, v in trigger().items() if k != "routing_key"}, "routing_key: required"),
        ({**trigger(), "routing_key": "wrong"}, "routing_key: not the token of a pagerduty"),
        # the token of an integration of another type is no routing key
        ({**trigger(), "routing_key": "prom-token"}, "routing_key: not the token of a pagerduty"),
        ({**trigger(), "event_action": "explode"}, "event_action: "),
        (trigger(summary=None), "payload.summary: required for a trigger event"),
        (trigger(severity="bad"), "payload.severity: "),
        (
            {"routing_key": PD_KEY, "event_action": "resolve"},
            "dedup_key: required for resolve events",
        ),
        ([trigger()], "routing_key: required"),
    ],
)
async def test_pagerduty_invalid_events_are_400_naming_the_field_and_write_nothing(
    harness: Harness, body: Any, error: str
) -> None:
    status, answer = await enqueue(harness, body)
    assert status == 400, answer
    assert answer["status"] == "invalid event"
    assert answer["message"] == "Event object is invalid"
    assert any(e.startswith(error) for e in answer["errors"]), answer["errors"]
    await harness.settle()
    assert await incidents(harness) == []
    assert harness.emu.calls == []


async def test_pagerduty_body_that_is_not_json_is_400(harness: Harness) -> None:
    status, answer = await enqueue(harness, None, raw=b'{"routing_key": "pd-tok')
    assert status == 400 and answer["status"] == "invalid event"
    assert answer["errors"][0].startswith("body: ")
    assert await incidents(harness) == []


async def test_pagerduty_over_the_rate_limit_is_429_and_writes_nothing(
    emulator: Emulator, database_url: str, clock: ManualClock
) -> None:
    yaml = DROPIN_YAML.replace(
        "  max_body_bytes: 65536\n", "  max_body_bytes: 65536\n  request_burst: 1\n"
    )
    yaml = yaml.replace(
        '    token: "pd-token"\n', '    token: "pd-token"\n    max_requests_per_second: 0.01\n'
    )
    config = parse_config(yaml, source="test.yml", environ={})
    async with Harness(
        emulator=emulator, database_url=database_url, config=config, clock=clock
    ) as harness:
        assert (await enqueue(harness, trigger()))[0] == 202
        status, answer = await enqueue(harness, trigger(dedup_key="other"))
        assert status == 429, answer
        assert answer["status"] == "throttle event"
        assert len(await incidents(harness)) == 1


async def test_pagerduty_change_event_is_recorded_on_the_services_open_incidents(
    harness: Harness,
) -> None:
    await enqueue(harness, trigger())
    await harness.settle()
    (listed,) = await incidents(harness)
    change = {
        "routing_key": PD_KEY,
        "payload": {
            "summary": "Build Success: deploy <!channel> checkout v2.3",
            "timestamp": "2026-11-23T08:42:58.315+0000",
            "source": "acme-build-pipeline",
            "custom_details": {"build_state": "passed", "build_number": "2"},
        },
        "links": [{"href": "https://ci.example.com/build/2", "text": "Build 2"}],
    }
    status, body = await enqueue(harness, change, path="/v2/change/enqueue")
    assert (status, body) == (202, {"status": "success", "message": "Change event processed"})
    await harness.settle()
    incident = await harness.incident(listed["id"])
    (event,) = [e for e in incident["timeline"] if e["kind"] == "change"]
    assert event["text"] == "Change: Build Success: deploy <!channel> checkout v2.3"
    assert event["actor"] == "monitor:pagerduty"
    channel = incident["slack"]["channel_id"]
    posted = [m for m in harness.emu.messages(channel) if "Build Success" in all_text(m)]
    assert len(posted) == 1
    assert "<!channel>" not in all_text(posted[0])  # escaped: notifies nobody

    # resolved incidents are not touched; a bad change event is a 400 naming the field
    bad = {"routing_key": PD_KEY, "payload": {"source": "ci"}}
    status, body = await enqueue(harness, bad, path="/v2/change/enqueue")
    assert status == 400 and body["errors"] == ["payload.summary: Field required"]
    wrong = {**change, "routing_key": "nope"}
    assert (await enqueue(harness, wrong, path="/v2/change/enqueue"))[0] == 400
    incident = await harness.incident(listed["id"])
    assert [e["kind"] for e in incident["timeline"]].count("change") == 1


# ---- Opsgenie Alert API v2 --------------------------------------------------------------------


def opsgenie_alert(**changes: Any) -> dict[str, Any]:
    """A create-alert request shaped as Opsgenie's Alert API documentation shows it."""
    return {
        "message": "An example alert message",
        "alias": "Life is too short for no alias",
        "description": "Every alert needs a description",
        "responders": [{"id": "4513b7ea-3b91-438f-b7e4-e3e54af9147c", "type": "team"}],
        "visibleTo": [{"name": "rocket_team", "type": "team"}],
        "actions": ["Restart", "AnExampleAction"],
        "tags": ["OverwriteQuietHours", "Critical"],
        "details": {"key1": "value1", "key2": "value2"},
        "entity": "An example entity",
        "priority": "P1",
        **changes,
    }


def accepted(status: int, body: Any) -> bool:
    return (
        status == 202
        and body["result"] == "Request will be processed"
        and isinstance(body["took"], float)
        and isinstance(body["requestId"], str)
        and body["requestId"] != ""
    )


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
async def test_opsgenie_create_acknowledge_close_by_alias(harness: Harness) -> None:
    assert accepted(*await genie(harness, "/v2/alerts", opsgenie_alert()))
    await harness.settle()
    (listed,) = await incidents(harness)
    incident = await harness.incident(listed["id"])
    assert incident["title"] == "An example alert message"
    assert incident["severity"] == "SEV1"  # P1
    assert incident["service"] == "search-api"
    assert incident["labels"]["tags"] == "OverwriteQuietHours,Critical"
    assert incident["labels"]["entity"] == "An example entity"
    assert incident["labels"]["key1"] == "value1"

    assert accepted(*await genie(harness, "/v2/alerts", opsgenie_alert()))  # same alias
    assert len(await incidents(harness)) == 1

    alias = "Life%20is%20too%20short%20for%20no%20alias"
    path = f"/v2/alerts/{alias}/acknowledge?identifierType=alias"
    assert accepted(*await genie(harness, path, {"user": "Monitoring Script", "note": "on it"}))
    assert (await harness.incident(listed["id"]))["status"] == "acknowledged"

    close = f"/v2/alerts/{alias}/close?identifierType=alias"
    assert accepted(*await genie(harness, close))  # no body at all, as Opsgenie allows
    assert (await harness.incident(listed["id"]))["status"] == "resolved"


async def test_opsgenie_priorities_map_to_severities(harness: Harness) -> None:
    expected = {"P1": "SEV1", "P2": "SEV2", "P3": "SEV3", "P4": "SEV4", "P5": "SEV4"}
    for priority in expected:
        body = opsgenie_alert(alias=f"alias-{priority}", message=f"alert {priority}")
        body["priority"] = priority
        assert accepted(*await genie(harness, "/v2/alerts", body))
    no_priority = {"message": "no priority", "alias": "none"}
    assert accepted(*await genie(harness, "/v2/alerts", no_priority))
    severities = {i["title"]: i["severity"] for i in await incidents(harness)}
    assert severities == {**{f"alert {p}": s for p, s in expected.items()}, "no priority": "SEV3"}


async def test_opsgenie_close_by_id_looks_the_id_up_as_an_alias(harness: Harness) -> None:
    assert accepted(*await genie(harness, "/v2/alerts", opsgenie_alert(alias="db-down")))
    (listed,) = await incidents(harness)
    assert accepted(*await genie(harness, "/v2/alerts/db-down/close"))  # identifierType=id
    assert (await harness.incident(listed["id"]))["status"] == "resolved"


async def genie_get(harness: Harness, path: str, *, key: str | None = GENIE_KEY) -> tuple[int, Any]:
    """GET as Opsgenie clients do: `Authorization: GenieKey <key>`."""
    assert harness.http is not None
    headers = {"Authorization": f"GenieKey {key}"} if key is not None else {}
    async with harness.http.get(f"{harness.url}{path}", headers=headers) as r:
        return r.status, await r.json(content_type=None)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
async def test_opsgenie_alert_id_is_stable_and_names_the_alert(harness: Harness) -> None:
    alias = "disk full / db-1 ✓"  # any text: the id carries it safely in a URL path
    quoted = "disk%20full%20%2F%20db-1%20%E2%9C%93"
    assert accepted(*await genie(harness, "/v2/alerts", opsgenie_alert(alias=alias)))
    await harness.settle()
    status, got = await genie_get(harness, f"/v2/alerts/{quoted}?identifierType=alias")
    assert status == 200, got
    alert = got["data"]
    assert (alert["alias"], alert["message"], alert["status"]) == (
        alias,
        "An example alert message",
        "open",
    )
    assert alert["acknowledged"] is False and alert["count"] == 1
    assert alert["tags"] == ["OverwriteQuietHours", "Critical"] and alert["priority"] == "P1"
    assert got["requestId"] and isinstance(got["took"], float)
    alert_id = alert["id"]
    assert alert_id != alias and "/" not in alert_id and " " not in alert_id

    # stable: a repeat has the same id, and so does the get by id (Opsgenie's default type)
    assert accepted(*await genie(harness, "/v2/alerts", opsgenie_alert(alias=alias)))
    status, again = await genie_get(harness, f"/v2/alerts/{alert_id}")
    assert status == 200 and again["data"]["id"] == alert_id and again["data"]["count"] == 2

    (listed,) = await incidents(harness)
    assert accepted(*await genie(harness, f"/v2/alerts/{alert_id}/acknowledge", {"note": "mine"}))
    assert (await harness.incident(listed["id"]))["status"] == "acknowledged"
    status, acked = await genie_get(harness, f"/v2/alerts/{alert_id}?identifierType=id")
    assert acked["data"]["acknowledged"] is True and acked["data"]["status"] == "open"

    assert accepted(*await genie(harness, f"/v2/alerts/{alert_id}/close?identifierType=id"))
    assert (await harness.incident(listed["id"]))["status"] == "resolved"
    status, closed = await genie_get(harness, f"/v2/alerts/{alert_id}")
    assert status == 200 and closed["data"]["status"] == "closed"


async def test_opsgenie_get_refusals(harness: Harness) -> None:
    assert accepted(*await genie(harness, "/v2/alerts", opsgenie_alert(alias="db-down")))
    await harness.settle()
    for path, key, status, field in (
        ("/v2/alerts/db-down?identifierType=alias", None, 401, None),
        ("/v2/alerts/db-down?identifierType=alias", PD_KEY, 401, None),  # another type's key
        ("/v2/alerts/nothing-like-it?identifierType=alias", GENIE_KEY, 404, None),
        ("/v2/alerts/pulseops-bm9wZQ", GENIE_KEY, 404, None),  # an id of an unknown alias
        ("/v2/alerts/db-down?identifierType=tiny", GENIE_KEY, 422, "identifierType"),
        (f"/v2/alerts/{'x' * 513}?identifierType=alias", GENIE_KEY, 422, "identifier"),
    ):
        got, answer = await genie_get(harness, path, key=key)
        assert got == status, (path, answer)
        assert isinstance(answer["message"], str) and answer["message"] and answer["requestId"]
        if field is not None:
            assert field in answer["errors"], answer
    assert (await genie_get(harness, "/v2/alerts/db-down"))[0] == 200  # an alias as the id


@pytest.mark.parametrize(
    ("path", "body", "key", "status", "field"),
    [
        ("/v2/alerts", opsgenie_alert(), None, 401, None),
        ("/v2/alerts", opsgenie_alert(), "wrong", 401, None),
        ("/v2/alerts", opsgenie_alert(), "pd-token", 401, None),  # another type's token
        ("/v2/alerts", opsgenie_alert(message=""), GENIE_KEY, 422, "message"),
        ("/v2/alerts", {"alias": "x"}, GENIE_KEY, 422, "message"),
        ("/v2/alerts", opsgenie_alert(priority="P9"), GENIE_KEY, 422, "priority"),
        ("/v2/alerts", opsgenie_alert(tags="a,b"), GENIE_KEY, 422, "tags"),
        ("/v2/alerts", [opsgenie_alert()], GENIE_KEY, 422, "body"),
        ("/v2/alerts/x/close?identifierType=tiny", None, GENIE_KEY, 422, "identifierType"),
        ("/v2/alerts/x/acknowledge", {"note": 5}, GENIE_KEY, 422, "note"),
    ],
)
async def test_opsgenie_refusals_write_nothing(
    harness: Harness, path: str, body: Any, key: str | None, status: int, field: str | None
) -> None:
    got, answer = await genie(harness, path, body, key=key)
    assert got == status, answer
    assert isinstance(answer["message"], str) and answer["message"]
    assert isinstance(answer["took"], float) and answer["requestId"]
    if field is not None:
        assert field in answer["errors"], answer
    await harness.settle()
    assert await incidents(harness) == []
    assert harness.emu.calls == []


# ---- Opsgenie heartbeat pings with an opsgenie integration's key ------------------------------


async def test_an_opsgenie_integration_key_pings_heartbeats(
    emulator: Emulator, database_url: str, clock: ManualClock
) -> None:
    yaml = DROPIN_YAML + (
        "heartbeats:\n"
        "  - name: nightly-backup\n"
        "    interval: 1h\n"
        "    service: payment-api\n"
        '    token: "hb-token"\n'
    )
    config = parse_config(yaml, source="test.yml", environ={})
    async with Harness(
        emulator=emulator, database_url=database_url, config=config, clock=clock
    ) as harness:
        assert harness.http is not None
        url = f"{harness.url}/v2/heartbeats/nightly-backup/ping"
        for key, status in ((GENIE_KEY, 202), ("hb-token", 202), (PD_KEY, 401), ("x", 401)):
            headers = {"Authorization": f"GenieKey {key}"}
            async with harness.http.post(url, headers=headers) as r:
                assert r.status == status, (key, await r.text())
        unknown = f"{harness.url}/v2/heartbeats/nobody/ping"
        async with harness.http.post(
            unknown, headers={"Authorization": f"GenieKey {GENIE_KEY}"}
        ) as r:
            assert r.status == 401  # an unknown name tells nothing
