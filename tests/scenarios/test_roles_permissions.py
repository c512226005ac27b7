"""`permissions` for roles and severity from Slack: a refusal is answered to the person alone,
names who may, and changes nothing (no timeline entry, no line in the channel)."""

from __future__ import annotations

import asyncio

import pytest

from bot.config import PulseOpsConfig, parse_config
from tests.conftest import CONFIG_YAML, Harness
from tests.helpers import fire
from tests.scenarios.test_roles import ALICE, CAROL, slash, thread

# every test here runs on SQLite and on PostgreSQL
pytestmark = pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)

PERMISSIONS = """permissions:
  roles: [{team_members: true}]
  severity: [{user: "U0BOB0001"}]
"""


@pytest.fixture
def config() -> PulseOpsConfig:
    return parse_config(CONFIG_YAML + PERMISSIONS, environ={})


async def test_roles_and_severity_obey_permissions(harness: Harness) -> None:
    incident_id = await fire(harness)
    incident = await harness.incident(incident_id)
    slack = incident["slack"]
    refused = await slash(
        harness, f"lead <@{CAROL}> {incident_id}", user=CAROL, channel="C0INCIDENT"
    )
    assert "You may not set roles on this" in refused
    refused = await slash(harness, f"severity SEV1 {incident_id}", user=ALICE, channel="C0INCIDENT")
    assert "You may not change the severity of this" in refused and "<@U0BOB0001>" in refused
    await harness.emu.click(
        user=ALICE,
        channel=slack["channel_id"],
        ts=slack["message_ts"],
        action_id="incident_severity",
        value=f"{incident_id}:SEV1",
    )
    for _ in range(100):
        if any(e["user"] == ALICE for e in harness.emu.ephemerals):
            break
        await asyncio.sleep(0.02)
    assert "You may not change the severity" in harness.emu.ephemerals[-1]["text"]
    await harness.settle()
    after = await harness.incident(incident_id)
    assert after["timeline"] == incident["timeline"] and after["severity"] == incident["severity"]
    assert after["lead"] is None and thread(harness, after) == []
    allowed = await slash(
        harness, f"lead <@{CAROL}> {incident_id}", user=ALICE, channel="C0INCIDENT"
    )
    assert "is now <@U0CAROL01>" in allowed
