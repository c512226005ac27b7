"""Plain helpers shared by the scenario tests: the on-call setup, alerts in, Slack out, waiting.

Fixtures live in conftest.py; these are functions (and configuration text) that test modules
import by name.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from bot.config import PulseOpsConfig, parse_config
from bot.domain.incident import Severity, Status
from bot.domain.records import Incident
from tests.conftest import CONFIG_YAML, Harness, alertmanager_payload

# ---- configuration -----------------------------------------------------------------------

# The payments team's weekly rotation: Mondays 09:00 Berlin time from 2026-11-02, U0ALICE01 and
# U0BOB0001 taking turns (Alice the weeks of 11-02, 11-16 and 11-30, Bob 11-09 and 11-23). To
# be appended to CONFIG_YAML; a schedule's further keys may follow it.
PAYMENTS_WEEKLY = """
schedules:
  - id: payments-primary
    team: payments
    time_zone: Europe/Berlin
    rotation:
      type: weekly
      start: "2026-11-02T09:00:00"
      participants: ["U0ALICE01", "U0BOB0001"]
"""

# The weekly rotation pages first, then U0CAROL01 and the user group; `first` and `second` are
# the levels' delays (see oncall_config).
ONCALL_YAML = (
    CONFIG_YAML.replace(
        '    members: ["U0ALICE01", "U0BOB0001"]\n',
        '    members: ["U0ALICE01", "U0BOB0001"]\n    escalation_policy: payments-default\n',
    )
    + PAYMENTS_WEEKLY
    + """escalation_policies:
  - id: payments-default
    repeat: 1
    levels:
      - delay: {first}
        targets: [{{schedule: payments-primary}}]
      - delay: {second}
        targets: [{{user: "U0CAROL01"}}, {{user_group: "S0PAYONCAL"}}]
"""
)

# Wednesday of the rotation's fourth week: U0BOB0001 is on call (weeks alternate ALICE, BOB)
WEDNESDAY = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def oncall_config(first: str = "5m", second: str = "10m") -> PulseOpsConfig:
    return parse_config(
        ONCALL_YAML.format(first=first, second=second), source="oncall.yml", environ={}
    )


# ---- alerts in ---------------------------------------------------------------------------


async def fire(harness: Harness, **alert: Any) -> int:
    """Post one Alertmanager alert, deliver what it causes, and return its incident's id."""
    status, body = await harness.post_alert(alertmanager_payload(**alert))
    assert status == 202, body
    await harness.settle()
    return int(body["results"][0]["incident_id"])


async def fire_named(harness: Harness, name: str, **alert: Any) -> int:
    """Post an Alertmanager alert whose group, alertname and fingerprint are all `name`, and
    return its incident's id; nothing is delivered (no settle)."""
    status, body = await harness.post_alert(
        alertmanager_payload(
            group_key=f"{{}}:{{alertname={name!r}}}", alertname=name, fingerprint=name, **alert
        )
    )
    assert status == 202, body
    return int(body["results"][0]["incident_id"])


# ---- Slack out ---------------------------------------------------------------------------


def buttons(message: dict[str, Any]) -> list[str]:
    """The action ids of a message's lifecycle buttons, in order (not the row with the
    Roles button and the severity select: see `manage_elements`)."""
    return [
        el["action_id"]
        for block in message.get("blocks", [])
        if block.get("type") == "actions" and block.get("block_id") != "incident_manage"
        for el in block["elements"]
    ]


def manage_elements(message: dict[str, Any]) -> list[str]:
    """The action ids of the message's Roles button and severity select (open incidents)."""
    return [
        el["action_id"]
        for block in message.get("blocks", [])
        if block.get("block_id") == "incident_manage"
        for el in block["elements"]
    ]


def all_text(message: dict[str, Any]) -> str:
    """Everything a message says: its blocks as JSON, then its notification text."""
    return json.dumps(message.get("blocks", [])) + message.get("text", "")


def reply_text(result: dict[str, Any]) -> str:
    """The text of a slash command's answer (Bolt acks a text-only reply as text/plain)."""
    body = result["body"]
    return str(body.get("text", "") if isinstance(body, dict) else body)


def dm_refs(harness: Harness, user: str) -> list[tuple[str, dict[str, Any]]]:
    """(DM channel, message) for every message the bot sent `user` directly."""
    opened = [
        c["response"]["channel"]["id"]
        for c in harness.emu.calls_to("conversations.open")
        if c["response"].get("ok") and c["args"].get("users") == user
    ]
    return [(ch, m) for ch in dict.fromkeys(opened) for m in harness.emu.messages(ch)]


def dms(harness: Harness, user: str) -> list[dict[str, Any]]:
    return [message for _, message in dm_refs(harness, user)]


# ---- Slack in ----------------------------------------------------------------------------


async def click(harness: Harness, incident_id: int, action: str, *, user: str) -> None:
    """`user` clicks a button of the incident's message in its channel."""
    incident = await harness.incident(incident_id)
    channel, ts = incident["slack"]["channel_id"], incident["slack"]["message_ts"]
    result = await harness.emu.click(user=user, action_id=action, channel=channel, ts=ts)
    assert result["status"] == 200, result


# ---- waiting -----------------------------------------------------------------------------


async def eventually(check: Callable[[], Any], timeout: float = 10.0) -> None:
    """Wait until `check()` is true; fail the test if it is not within `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def wait_for_status(
    harness: Harness, incident_id: int, status: str, *, timeout: float = 5.0
) -> None:
    """Wait until the incident has `status`; fail the test if it has not within `timeout`."""
    deadline = asyncio.get_running_loop().time() + timeout
    while (await harness.incident(incident_id))["status"] != status:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"INC-{incident_id} never became {status}")
        await asyncio.sleep(0.01)


# ---- records -----------------------------------------------------------------------------


def make_incident(n: int, *, severity: Severity = Severity.SEV2, **changes: Any) -> Incident:
    """INC-`n`, a triggered payments incident record, with `changes` applied."""
    at = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    incident = Incident(
        id=n,
        title=f"Incident {n} <!here>",
        description="",
        status=Status.TRIGGERED,
        severity=severity,
        service_id="payment-api",
        team_id="payments",
        source="alertmanager",
        integration="prometheus",
        dedup_key=None,
        auto_resolve=True,
        created_by=None,
        version=1,
        alert_count=1,
        labels={},
        links=[],
        triggered_at=at,
        acknowledged_at=None,
        acknowledged_by=None,
        resolved_at=None,
        resolved_by=None,
        updated_at=at,
    )
    return replace(incident, **changes)
