"""`pulseops import pagerduty|opsgenie|grafana-oncall FILE…` as a user runs it, against the
Slack emulator for `users.lookupByEmail`; fed API bodies shaped as each tool's reference
shows them (tests/fixtures/import/README.md)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.config import parse_config
from bot.sandbox.emulator import DEFAULT_SCOPES, Emulator, EmulatorUser
from tests.sandbox_process import PULSEOPS, ROOT

FIXTURES = Path(__file__).parent.parent / "fixtures" / "import"
TOKEN = "xoxb-import-test"

PEOPLE = [
    EmulatorUser(id="U0EARLINE", name="earline", email="125.greenholt.earline@graham.name"),
    EmulatorUser(id="U0KELVIN1", name="kelvin", email="Kelvin.Farrell@example.com"),
    EmulatorUser(id="U0OPSUSR1", name="ops1", email="user@opsgenie.com"),
    EmulatorUser(id="U0BOBGRAF", name="bob", email="public-api-demo-user-2@grafana.com"),
    EmulatorUser(id="U0GONE001", name="gone", email="user2@opsgenie.com", deleted=True),
]


async def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """`pulseops …` in a subprocess (it runs its own event loop), while the emulator serves."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_")}
    proc = await asyncio.create_subprocess_exec(
        *PULSEOPS,
        *args,
        cwd=ROOT,
        env={**environ, **(env or {})},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.fixture
async def slack() -> AsyncIterator[Emulator]:
    emu = Emulator(bot_token=TOKEN, users=PEOPLE)
    await emu.start(host="127.0.0.1", port=0)
    try:
        yield emu
    finally:
        await emu.stop()


def slack_env(emu: Emulator) -> dict[str, str]:
    return {"SLACK_BOT_TOKEN": TOKEN, "SLACK_API_URL": emu.api_url}


def files(tool: str) -> list[str]:
    return sorted(str(p) for p in (FIXTURES / tool).glob("*.json"))


def valid_with(fragment: dict[str, Any]) -> None:
    """The fragment is valid configuration once merged under a minimal pulseops.yml."""
    text = yaml.safe_dump({"slack": {"incidents_channel": "C0INCIDENT"}, **fragment})
    parse_config(text, source="merged.yml", environ={})


async def test_pagerduty_import_matches_people_by_email(slack: Emulator, tmp_path: Path) -> None:
    code, out, err = await run("import", "pagerduty", *files("pagerduty"), env=slack_env(slack))
    assert code == 0, err
    fragment = yaml.safe_load(out)
    valid_with(fragment)
    assert fragment["schedules"] == [
        {
            "id": "daily-engineering-rotation",
            "team": "engineering",
            "time_zone": "America/New_York",
            "rotation": {
                "type": "daily",
                "start": "2015-11-06T20:00:00",
                "participants": ["U0EARLINE", "U0KELVIN1"],
            },
        }
    ]
    assert fragment["escalation_policies"] == [
        {
            "id": "engineering-escalation-policy",
            "repeat": 2,
            "levels": [
                {"delay": "30m", "targets": [{"schedule": "daily-engineering-rotation"}]},
                {"delay": "15m", "targets": [{"user": "U0KELVIN1"}]},
            ],
        }
    ]
    assert fragment["services"] == [
        {
            "id": "my-application-service",
            "name": "My Application Service",
            "team": "engineering",
            "escalation_policy": "engineering-escalation-policy",
        }
    ]
    assert fragment["teams"] == [
        {"id": "engineering", "name": "Engineering", "members": ["U0EARLINE", "U0KELVIN1"]}
    ]
    # what does not carry over is listed, in the file and on stderr
    assert "restriction daily_restriction from 08:00:00 for 540 minutes" in out
    assert "re-triggers after an acknowledgement timeout (600 s)" in out
    assert "auto-resolves after a timeout (14400 s)" in out
    assert "not carried over: " in err
    lookups = [c["args"]["email"] for c in slack.calls_to("users.lookupByEmail")]
    assert sorted(lookups) == ["125.greenholt.earline@graham.name", "kelvin.farrell@example.com"]

    # running it twice gives the same file
    output = tmp_path / "pagerduty.yml"
    code, _, err = await run(
        "import", "pagerduty", *files("pagerduty"), "-o", str(output), env=slack_env(slack)
    )
    assert code == 0, err
    assert output.read_text() == out


async def test_opsgenie_import_with_a_mapping_file_and_what_it_cannot_express(
    slack: Emulator, tmp_path: Path
) -> None:
    mapping = tmp_path / "people.yml"
    mapping.write_text("user2@opsgenie.com: U0USER002\n")
    code, out, err = await run(
        "import", "opsgenie", *files("opsgenie"), "--mapping", str(mapping), env=slack_env(slack)
    )
    assert code == 0, err
    fragment = yaml.safe_load(out)
    valid_with(fragment)
    first, second = fragment["schedules"]
    assert first["id"] == "schedulename-first-rotation"
    assert first["rotation"] == {
        "type": "custom",
        "length": "6h",
        "start": "2017-02-06T08:00:00",  # 05:00Z in Europe/Kirov (UTC+3 in 2017)
        "participants": ["U0OPSUSR1", "U0USER002"],
    }
    assert second["rotation"]["type"] == "biweekly"
    (policy,) = fragment["escalation_policies"]
    assert policy["repeat"] == 1
    assert policy["levels"] == [
        {
            "delay": "5m",
            "targets": [
                {"schedule": "schedulename-first-rotation"},
                {"schedule": "schedulename-second-rotation"},
            ],
        },
        {"delay": "10m", "targets": [{"user": "U0USER002"}]},
    ]
    assert fragment["services"] == [
        {"id": "service-api", "name": "Service API", "team": "teamname"}
    ]
    for listed in (
        "time restriction",
        "ends 2017-02-23T06:00:00Z",
        "participant of type escalation",
        "condition if-not-closed",
        "recipient of type team",
        "2 layers are merged by Opsgenie",
    ):
        assert listed in out, listed
    # the mapping wins over the lookup (user2 is deactivated in Slack)
    assert [c["args"]["email"] for c in slack.calls_to("users.lookupByEmail")] == [
        "user@opsgenie.com"
    ]


async def test_grafana_oncall_import_uses_linked_slack_users_then_email(
    slack: Emulator,
) -> None:
    code, out, err = await run(
        "import", "grafana-oncall", *files("grafana-oncall"), env=slack_env(slack)
    )
    assert code == 0, err
    fragment = yaml.safe_load(out)
    valid_with(fragment)
    (schedule,) = fragment["schedules"]
    assert schedule["rotation"] == {
        "type": "weekly",
        "start": "2020-09-10T16:00:00",
        "participants": ["UALEXSLACKDJPK", "U0BOBGRAF"],
    }
    (policy,) = fragment["escalation_policies"]
    assert policy == {
        "id": "example-chain",
        "repeat": 5,
        "levels": [
            {"delay": "10m", "targets": [{"schedule": schedule["id"]}]},
            {"delay": "5m", "targets": [{"user": "U0BOBGRAF"}]},
        ],
    }
    assert "a single_event shift" in out and "integrations and routes" in out


async def test_unmatched_people_are_listed_and_refusals_name_the_problem(
    slack: Emulator, tmp_path: Path
) -> None:
    # no Slack token and no mapping: nobody can be matched, everything is listed
    code, out, err = await run("import", "pagerduty", *files("pagerduty"))
    assert code == 0, err
    assert "Kelvin Farrell (kelvin.farrell@example.com) has no Slack user" in out
    assert "schedules" not in yaml.safe_load(out)

    bad = tmp_path / "other.json"
    bad.write_text('{"incidents": []}')
    code, _, err = await run("import", "pagerduty", str(bad))
    assert code == 2 and f"{bad}: not a PagerDuty API body" in err
    bad.write_text("{nope")
    code, _, err = await run("import", "opsgenie", str(bad))
    assert code == 2 and "cannot read it as JSON" in err
    mapping = tmp_path / "people.yml"
    mapping.write_text("alice@example.com: alice\n")
    code, _, err = await run("import", "pagerduty", *files("pagerduty"), "--mapping", str(mapping))
    assert code == 2 and "alice@example.com: 'alice' is not a Slack user ID" in err


async def test_lookup_without_the_email_scope_is_refused_clearly(tmp_path: Path) -> None:
    scopes = [s for s in DEFAULT_SCOPES if s != "users:read.email"]
    emu = Emulator(bot_token=TOKEN, users=PEOPLE, scopes=scopes)
    await emu.start(host="127.0.0.1", port=0)
    try:
        code, _, err = await run("import", "pagerduty", *files("pagerduty"), env=slack_env(emu))
    finally:
        await emu.stop()
    assert code == 2
    assert "users.lookupByEmail (missing_scope)" in err and "users:read.email" in err
