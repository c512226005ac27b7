"""SLOs over alert sources through the running app: alerts posted to the webhook are the
source's bad time; the clock is stepped and each SLO evaluated as its deadline comes; the burn
alert opens through the pipeline (announced, paged), resolves when the burn stops, and the
budget left shows in the API, /metrics and `/incident slos`."""

from __future__ import annotations

from typing import Any

import pytest

from bot.clock import ManualClock
from bot.config import PulseOpsConfig, parse_config
from bot.errors import ConfigError
from tests.conftest import Harness, alertmanager_payload
from tests.helpers import ONCALL_YAML, WEDNESDAY, dms
from tests.scenarios.test_probes import command, incidents, metric

BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)

SLOS_YAML = """slos:
  - id: checkout
    objective: 99.9
    window: 30d
    integration: prometheus
    matchers: ['service="payment-api"']
    service: payment-api
"""


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(WEDNESDAY)  # U0BOB0001 is on call for payments


@pytest.fixture
def config() -> PulseOpsConfig:
    text = ONCALL_YAML.format(first="5m", second="10m") + SLOS_YAML
    return parse_config(text, source="slos.yml", environ={})


async def step(harness: Harness, seconds: float = 30) -> int:
    """Move the clock, evaluate the SLOs that are due and deliver what they caused."""
    harness.clock.advance(seconds)  # type: ignore[attr-defined]
    done = await harness.deps.probes.slos.tick()
    await harness.settle()
    return done


async def alert(harness: Harness, status: str, **labels: Any) -> None:
    status_code, body = await harness.post_alert(alertmanager_payload(status=status, **labels))
    assert status_code == 202, body
    await harness.settle()


async def slo(harness: Harness) -> dict[str, Any]:
    status, body = await harness.get("/api/v1/slos")
    assert status == 200, body
    (found,) = body["slos"]
    return found  # type: ignore[no-any-return]


@pytest.mark.asyncio
@BOTH
async def test_a_firing_alert_burns_the_budget_pages_and_resolves_when_the_burn_stops(
    harness: Harness,
) -> None:
    assert await step(harness, 0) == 1
    assert await step(harness, 0) == 0  # claimed once per interval, however often asked
    before = await slo(harness)
    assert before["budget_left"] == 1.0 and before["burning"] is False
    assert before["matchers"] == ['service="payment-api"']
    # another service's alert is not this SLO's source
    await alert(harness, "firing", service="search-api", fingerprint="other")
    await step(harness, 60)
    assert (await slo(harness))["bad_seconds"] == 0
    # the source's alert fires for 60 s: 16.7× over 1 h and 200× over 5 min (rule: 14.4×)
    await alert(harness, "firing")
    opened_before = {i["id"] for i in await incidents(harness)}
    await step(harness, 30)
    await step(harness, 30)
    await alert(harness, "resolved")
    burns = [i for i in await incidents(harness) if i["id"] not in opened_before]
    (listed,) = [i for i in burns if i["source"] == "slo"]
    incident = await harness.incident(listed["id"])
    assert incident["title"] == "SLO checkout is burning its error budget: 16.7× over 1 h"
    assert incident["integration"] == "slos" and incident["severity"] == "SEV2"
    assert incident["labels"] == {"slo": "checkout", "check": "burn", "service": "payment-api"}
    assert (
        "16.7× over 1 h, 200.0× over 5 min (threshold 14.4× over both" in (incident["description"])
    )
    assert any("SLO checkout is burning" in m["text"] for m in harness.emu.messages("C0INCIDENT"))
    assert len(dms(harness, "U0BOB0001")) >= 1  # paged as any alert
    shown = await slo(harness)
    assert shown["burning"] is True and shown["bad_seconds"] == 60
    assert shown["burn_rates"]["1h"] == pytest.approx(16.667, abs=0.001)
    assert shown["budget_left"] == pytest.approx(1 - (60 / (30 * 86400)) / 0.001)
    assert await metric(harness, 'pulseops_slo_error_budget_remaining{slo="checkout"}') == (
        pytest.approx(shown["budget_left"])
    )
    rate = await metric(harness, 'pulseops_slo_burn_rate{slo="checkout",window="5m"}')
    assert rate == pytest.approx(200.0)
    answer = await command(harness, "slos")
    assert "*checkout* 99.9 % over 30d" in answer and ":fire: burning" in answer
    # the bad minute stays in the 1 h window but leaves the 5 min one: the burn stops
    for _ in range(9):
        await step(harness, 30)
    assert (await harness.incident(listed["id"]))["status"] == "triggered"
    await step(harness, 30)
    await step(harness, 30)
    assert (await harness.incident(listed["id"]))["status"] == "resolved"
    after = await slo(harness)
    assert after["burning"] is False and after["bad_seconds"] == 60  # still spent
    # one burn incident in all: the burn alert opened once
    assert len([i for i in await incidents(harness) if i["source"] == "slo"]) == 1


@pytest.mark.asyncio
@BOTH
async def test_the_first_evaluation_counts_the_alert_history_of_the_window(
    harness: Harness,
) -> None:
    # an alert fired and resolved before the SLO was first evaluated still spent budget
    await alert(harness, "firing")
    harness.clock.advance(120)  # type: ignore[attr-defined]
    await alert(harness, "resolved")
    harness.clock.advance(3600)  # type: ignore[attr-defined]
    await step(harness, 0)
    shown = await slo(harness)
    assert shown["bad_seconds"] == 120 and shown["burning"] is False
    assert shown["availability"] == pytest.approx(1 - 120 / (30 * 86400))


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ("  - id: a\n    objective: 99.9\n", "name the alert source"),
        ("  - id: a\n    objective: 99.9\n    integration: nope\n", "unknown integration 'nope'"),
        ("  - id: a\n    objective: 99.9\n    integration: slos\n", "its own burn alerts"),
        ("  - id: a\n    objective: 120\n    integration: prometheus\n", "less than 100"),
    ],
)
def test_a_bad_slo_is_refused_with_what_to_write(entry: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(
            ONCALL_YAML.format(first="5m", second="10m") + "slos:\n" + entry,
            source="slos.yml",
            environ={},
        )
    assert problem in str(info.value), str(info.value)
