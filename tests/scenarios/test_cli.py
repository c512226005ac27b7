"""The command line as a user runs it: config check, serve refusing bad config, the sandbox."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from store.migrate import head_revision
from tests.conftest import CONFIG_YAML
from tests.sandbox_process import PULSEOPS, ROOT, free_port, running_sandbox, wait_for


def run(
    *args: str, env: dict[str, str] | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PULSEOPS, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


def test_config_check_accepts_the_example_and_a_valid_file(tmp_path: Path) -> None:
    result = run("config", "check", str(ROOT / "bot" / "examples" / "pulseops.yml"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK: 2 teams, 3 services, 7 integrations")
    good = tmp_path / "pulseops.yml"
    good.write_text(CONFIG_YAML)
    assert run("config", "check", str(good)).returncode == 0


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            (
                "    team: search\n    auto_resolve: false",
                "    team: serch\n    auto_resolve: false",
            ),
            r"pulseops\.yml:\d+: services\[2\]\.team: unknown team 'serch'",
        ),
        (("  - id: search-api\n", "  - id: payment-api\n"), r"pulseops\.yml:\d+: .*duplicate"),
        (('    token: "generic-token"\n', ""), r"pulseops\.yml:\d+: integrations\[1\].*token"),
        (
            ("  idempotency_ttl: 1h", "  idempotency_tll: 1h"),
            r"pulseops\.yml:\d+: incidents\.idempotency_tll",
        ),
    ],
    ids=["unknown-team", "duplicate-id", "missing-token", "wrong-key"],
)
def test_config_check_names_line_and_field(
    tmp_path: Path, change: tuple[str, str], expected: str
) -> None:
    assert change[0] in CONFIG_YAML
    bad = tmp_path / "pulseops.yml"
    bad.write_text(CONFIG_YAML.replace(change[0], change[1], 1))
    result = run("config", "check", str(bad))
    assert result.returncode == 2
    assert re.search(expected, result.stderr), result.stderr


def test_config_check_reports_field_and_reference_problems_in_one_run(tmp_path: Path) -> None:
    text = (
        CONFIG_YAML.replace("  idempotency_ttl: 1h", "  idempotency_ttl: 1 hour")
        .replace("    team: search\n    auto_resolve", "    team: serch\n    auto_resolve")
        .replace("    service: search-api\n", "    service: search-apy\n    colour: red\n")
    )
    bad = tmp_path / "pulseops.yml"
    bad.write_text(text)
    result = run("config", "check", str(bad))
    assert result.returncode == 2
    assert result.stdout == ""
    lines = text.splitlines()

    def at(needle: str) -> str:
        return f"{bad}:{next(i for i, line in enumerate(lines, 1) if needle in line)}: "

    assert result.stderr.splitlines() == [
        at("team: serch") + "services[2].team: unknown team 'serch' (known: payments, search)",
        at("search-apy") + "integrations[1].service: unknown service 'search-apy' "
        "(known: batch-jobs, payment-api, search-api)",
        at("colour") + "integrations[1].colour: unknown key",
        at("1 hour") + "incidents.idempotency_ttl: invalid duration '1 hour': write a whole "
        "number and a unit s, m, h, d or w, e.g. 30s, 5m, 12h, 3d or 1h30m",
    ]


def test_serve_refuses_to_start_with_bad_config_or_missing_tokens(tmp_path: Path) -> None:
    bad = tmp_path / "pulseops.yml"
    bad.write_text(CONFIG_YAML.replace("team: payments", "team: nobody", 1))
    env = {
        "SLACK_BOT_TOKEN": "xoxb-x",
        "SLACK_SIGNING_SECRET": "s",
        "PULSEOPS_CONFIG": str(bad),
        "PULSEOPS_PORT": str(free_port()),
    }
    result = run("serve", env=env)
    assert result.returncode == 2
    assert "unknown team 'nobody'" in result.stderr
    env = {"PULSEOPS_CONFIG": str(bad), "SLACK_BOT_TOKEN": "", "SLACK_SIGNING_SECRET": ""}
    result = run("serve", env=env)
    assert result.returncode == 2
    assert "SLACK_BOT_TOKEN" in result.stderr


def test_db_upgrade(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
    result = run("db", "upgrade", env={"PULSEOPS_DATABASE_URL": url})
    assert result.returncode == 0, result.stderr
    assert f"revision {head_revision()}" in result.stdout


@pytest.mark.slow
def test_sandbox_end_to_end_from_the_shell(tmp_path: Path) -> None:
    with running_sandbox(tmp_path) as sandbox:
        # the printed curl command, run as printed
        banner = sandbox.banner
        curl = banner[banner.index(f"curl -s {sandbox.bot_url}/webhooks") :]
        curl = curl[: curl.index("\n\n")].replace("\\\n", " ")
        fired = subprocess.run(["bash", "-c", curl], capture_output=True, text=True, timeout=15)
        result = json.loads(fired.stdout)
        assert result["results"][0]["outcome"] == "created"
        names = wait_for(
            lambda: [
                c["name"] for c in sandbox.state()["channels"] if c["name"].startswith("inc-1-")
            ],
            what="the incident channel",
        )
        assert names[0].startswith("inc-1-checkout-error-rate"), names
        _, clicked = sandbox.emulator(
            "POST",
            "/_emulator/click",
            {"user": "U0ALICE01", "action_id": "incident_acknowledge", "value": "1"},
        )
        assert clicked["status"] == 200
        incident = wait_for(
            lambda: (
                (found := sandbox.api("/api/v1/incidents/1"))["status"] == "acknowledged" and found
            ),
            what="the acknowledgement",
        )
        assert incident["acknowledged_by"] == "U0ALICE01"
        _, listed = sandbox.emulator(
            "POST",
            "/_emulator/command",
            {"user": "U0BOB0001", "channel": "C0INCIDENT", "command": "/incident", "text": "list"},
        )
        assert "INC-1" in json.dumps(listed)
    assert sandbox.process.returncode == 0
