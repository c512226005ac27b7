"""A missed heartbeat is an alert like any other: a silence mutes it, and when the silence
ends while the heartbeat is still silent, its incident opens then (source `heartbeat`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from bot.clock import ManualClock
from bot.config import PulseOpsConfig, parse_config
from tests.conftest import Harness
from tests.helpers import ONCALL_YAML, WEDNESDAY

pytestmark = pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)

HEARTBEAT = """heartbeats:
  - name: nightly-backup
    interval: 1h
    service: payment-api
    token: "hb-token"
"""


@pytest.fixture
def config() -> PulseOpsConfig:
    return parse_config(ONCALL_YAML.format(first="5m", second="10m") + HEARTBEAT, environ={})


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(WEDNESDAY)


async def ping(harness: Harness) -> None:
    assert harness.http is not None
    headers = {"Authorization": "Bearer hb-token"}
    async with harness.http.post(f"{harness.url}/heartbeats/nightly-backup", headers=headers) as r:
        assert r.status == 200, await r.text()


async def incidents(harness: Harness) -> list[dict[str, Any]]:
    return (await harness.get("/api/v1/incidents"))[1]["incidents"]  # type: ignore[no-any-return]


async def test_a_silenced_missed_heartbeat_opens_its_incident_when_the_silence_ends(
    harness: Harness, clock: ManualClock
) -> None:
    await ping(harness)
    status, made = await harness.call(
        "POST",
        "/api/v1/silences",
        {
            "matchers": ['__integration__="heartbeat"', 'heartbeat="nightly-backup"'],
            "ends_at": (clock.now() + timedelta(hours=3)).isoformat(),
            "comment": "backup host rebuilt",
        },
    )
    assert status == 201, made
    clock.advance(timedelta(hours=1, seconds=1))
    assert await harness.deps.heartbeats.sweep() == 1
    await harness.settle()
    assert await incidents(harness) == []
    assert harness.emu.calls_to("chat.postMessage") == []  # nobody told, nobody paged
    clock.advance(timedelta(hours=2))
    assert await harness.deps.silences.sweep() == 1
    await harness.settle()
    (incident,) = await incidents(harness)
    assert (incident["source"], incident["integration"]) == ("heartbeat", "heartbeat")
    detail = await harness.incident(incident["id"])
    assert any(f"held by silence #{made['id']}" in e["text"] for e in detail["timeline"])
    # the next ping resolves it as usual
    await ping(harness)
    await harness.settle()
    assert (await harness.incident(incident["id"]))["status"] == "resolved"


async def test_a_ping_while_silenced_means_nothing_opens(
    harness: Harness, clock: ManualClock
) -> None:
    await ping(harness)
    await harness.call(
        "POST",
        "/api/v1/silences",
        {
            "matchers": ['heartbeat="nightly-backup"'],
            "ends_at": (clock.now() + timedelta(hours=3)).isoformat(),
            "comment": "maintenance",
        },
    )
    clock.advance(timedelta(hours=1, seconds=1))
    assert await harness.deps.heartbeats.sweep() == 1
    await ping(harness)  # recovered while muted: the held alert is resolved
    clock.advance(timedelta(hours=3))
    assert await harness.deps.silences.sweep() == 0
    assert await incidents(harness) == []
