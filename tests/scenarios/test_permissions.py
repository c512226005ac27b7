"""`permissions` from Slack: a refused click or command is answered ephemerally, naming who
may, and changes nothing; the team's members, a named person or a user group may."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.config import PulseOpsConfig, parse_config
from bot.sandbox.emulator import Emulator
from tests.conftest import CONFIG_YAML, Harness, emulated
from tests.helpers import PAYMENTS_WEEKLY, fire, reply_text

ALICE, CAROL = "U0ALICE01", "U0CAROL01"

PERMISSIONS = """permissions:
  resolve: [{team_members: true}, {user: "U0BOB0001"}]
  override: [{user_group: "S0SRE0001"}]
"""


@pytest.fixture
def config() -> PulseOpsConfig:
    return parse_config(CONFIG_YAML + PAYMENTS_WEEKLY + PERMISSIONS, environ={})


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with emulated(usergroups=[("S0SRE0001", "sre")]) as emu:
        yield emu


async def ephemeral_for(harness: Harness, user: str) -> dict[str, Any]:
    for _ in range(100):
        found = [e for e in harness.emu.ephemerals if e["user"] == user]
        if found:
            return found[-1]
        await asyncio.sleep(0.02)
    raise AssertionError(f"no ephemeral message for {user}")


async def test_resolve_refused_outside_the_team_and_allowed_inside(harness: Harness) -> None:
    incident_id = await fire(harness)
    incident = await harness.incident(incident_id)
    before = incident["timeline"]
    result = await harness.emu.click(
        user=CAROL,
        channel=incident["slack"]["channel_id"],
        ts=incident["slack"]["message_ts"],
        action_id="incident_resolve",
    )
    assert result["status"] == 200
    note = await ephemeral_for(harness, CAROL)
    assert "You may not resolve this" in note["text"]
    assert "the Payments team's members or <@U0BOB0001> may" in note["text"]
    await harness.settle()
    after = await harness.incident(incident_id)
    assert after["status"] == "triggered" and after["timeline"] == before
    typed = await harness.emu.command(
        user=CAROL, channel="C0INCIDENT", command="/incident", text=f"resolve {incident_id}"
    )
    assert "You may not resolve this" in reply_text(typed)
    assert (await harness.incident(incident_id))["status"] == "triggered"
    # acknowledging is not restricted; a team member may resolve
    acked = await harness.emu.command(
        user=CAROL, channel="C0INCIDENT", command="/incident", text=f"ack {incident_id}"
    )
    assert "acknowledged" in reply_text(acked)
    done = await harness.emu.command(
        user=ALICE, channel="C0INCIDENT", command="/incident", text=f"resolve {incident_id}"
    )
    assert "You resolved" in reply_text(done)


async def test_override_needs_the_user_group(harness: Harness) -> None:
    text = f"override <@{CAROL}> 4h payments-primary"
    refused = await harness.emu.command(
        user=ALICE, channel="C0PAYMENTS", command="/oncall", text=text
    )
    assert "You may not override this" in reply_text(refused)
    assert "<!subteam^S0SRE0001>" in reply_text(refused)
    assert (await harness.get("/api/v1/overrides"))[1] == {"overrides": []}
    await harness.deps.gateway.call("usergroups.users.update", usergroup="S0SRE0001", users=ALICE)
    allowed = await harness.emu.command(
        user=ALICE, channel="C0PAYMENTS", command="/oncall", text=text
    )
    assert "You may not" not in reply_text(allowed)
    (override,) = (await harness.get("/api/v1/overrides"))[1]["overrides"]
    removal = f"override remove {override['id']}"
    refused = await harness.emu.command(
        user=CAROL, channel="C0PAYMENTS", command="/oncall", text=removal
    )
    assert "You may not override this" in reply_text(refused)
    assert len((await harness.get("/api/v1/overrides"))[1]["overrides"]) == 1


def test_permission_rules_are_validated() -> None:
    from bot.errors import ConfigError

    bad = "permissions:\n  resolve: [{user: alice}, {team_members: true, user: U0ALICE01}]\n"
    with pytest.raises(ConfigError) as caught:
        parse_config(CONFIG_YAML + bad, environ={})
    text = "\n".join(caught.value.problems)
    assert "not Slack user IDs" in text and "exactly one of" in text
