"""The command line as a user runs it: config check, serve refusing bad config, the sandbox."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from store.migrate import head_revision
from tests.conftest import CONFIG_YAML

PULSEOPS = [sys.executable, "-m", "bot.cli"]
ROOT = Path(__file__).resolve().parent.parent


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_config_check_accepts_the_example_and_a_valid_file(tmp_path: Path) -> None:
    result = run("config", "check", str(ROOT / "bot" / "examples" / "pulseops.yml"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK: 2 teams, 3 services, 3 integrations")
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


def _http(
    method: str, url: str, body: object | None = None, headers: dict[str, str] | None = None
) -> tuple[int, object]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read() or b"null")


@pytest.mark.slow
def test_sandbox_end_to_end_from_the_shell(tmp_path: Path) -> None:
    emu_port, bot_port = free_port(), free_port()
    proc = subprocess.Popen(
        [
            *PULSEOPS,
            "sandbox",
            "--port",
            str(emu_port),
            "--bot-port",
            str(bot_port),
            "--db",
            str(tmp_path / "sandbox.db"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        banner = ""
        deadline = time.monotonic() + 30
        assert proc.stdout is not None
        while "Run a slash command" not in banner and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            banner += line
        assert "PulseOps sandbox is running" in banner, banner
        # the printed curl command, run as printed
        curl = banner[banner.index(f"curl -s http://127.0.0.1:{bot_port}/webhooks") :]
        curl = curl[: curl.index("\n\n")].replace("\\\n", " ")
        fired = subprocess.run(["bash", "-c", curl], capture_output=True, text=True, timeout=15)
        result = json.loads(fired.stdout)
        assert result["results"][0]["outcome"] == "created"
        base = f"http://127.0.0.1:{emu_port}/_emulator"
        for _ in range(100):
            _, state = _http("GET", f"{base}/state")
            names = [c["name"] for c in state["channels"]]  # type: ignore[index]
            if any(n.startswith("inc-1-") for n in names):
                break
            time.sleep(0.1)
        assert any(n.startswith("inc-1-checkout-error-rate") for n in names), names
        status, clicked = _http(
            "POST",
            f"{base}/click",
            {"user": "U0ALICE01", "action_id": "incident_acknowledge", "value": "1"},
        )
        assert clicked["status"] == 200  # type: ignore[index]
        for _ in range(100):
            _, incident = _http("GET", f"http://127.0.0.1:{bot_port}/api/v1/incidents/1")
            if incident["status"] == "acknowledged":  # type: ignore[index]
                break
            time.sleep(0.1)
        assert incident["acknowledged_by"] == "U0ALICE01"  # type: ignore[index]
        _, listed = _http(
            "POST",
            f"{base}/command",
            {"user": "U0BOB0001", "channel": "C0INCIDENT", "command": "/incident", "text": "list"},
        )
        assert "INC-1" in json.dumps(listed)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
    assert proc.returncode == 0
