"""`pulseops serve` runs on the event loop PULSEOPS_EVENT_LOOP chooses: uvloop by default,
asyncio's own on request or (with a warning) when uvloop cannot be imported; any other value
is refused at start with a clear error."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.sandbox.emulator import Emulator
from tests.conftest import alertmanager_payload
from tests.sandbox_process import ROOT
from tests.serve_process import Service

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]


def log_lines(service: Service) -> list[dict[str, Any]]:
    lines = []
    for line in service.log.read_text().splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


async def served_on(
    tmp_path: Path, emulator: Emulator, env: dict[str, str]
) -> tuple[str, list[dict[str, Any]]]:
    """Start `pulseops serve` with `env`, take one webhook, and return the event loop its
    startup line names, and its log lines."""
    service = Service(
        tmp_path,
        emulator.api_url,
        f"sqlite+aiosqlite:///{tmp_path / 'pulseops.db'}",
        env={"PULSEOPS_LOG_LEVEL": "INFO", "PULSEOPS_LOG_FORMAT": "json", **env},
    )
    async with aiohttp.ClientSession() as http:
        await service.start(http)
        try:
            async with http.post(
                f"{service.url}/webhooks/prometheus",
                json=alertmanager_payload(),
                headers={"Authorization": "Bearer prom-token"},
            ) as response:
                assert response.status == 202, await response.text()
        finally:
            await service.stop()
    lines = log_lines(service)
    (listening,) = [line for line in lines if line["message"] == "PulseOps listening"]
    assert any(
        line["message"] == "request" and line["path"] == "/webhooks/prometheus" for line in lines
    )
    return listening["event_loop"], lines


async def test_uvloop_by_default(
    tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PULSEOPS_EVENT_LOOP", raising=False)
    loop, lines = await served_on(tmp_path, emulator, {})
    assert loop == "uvloop"
    assert not [line for line in lines if "uvloop" in line["message"]]  # no fallback warning


async def test_asyncio_when_chosen(tmp_path: Path, emulator: Emulator) -> None:
    loop, _ = await served_on(tmp_path, emulator, {"PULSEOPS_EVENT_LOOP": "asyncio"})
    assert loop == "asyncio"


async def test_asyncio_with_a_warning_when_uvloop_cannot_be_imported(
    tmp_path: Path, emulator: Emulator
) -> None:
    blocked = tmp_path / "blocked"
    (blocked / "uvloop").mkdir(parents=True)
    (blocked / "uvloop" / "__init__.py").write_text(
        'raise ImportError("uvloop is blocked in this test")\n'
    )
    loop, lines = await served_on(
        tmp_path,
        emulator,
        {"PULSEOPS_EVENT_LOOP": "uvloop", "PYTHONPATH": f"{blocked}{os.pathsep}{ROOT}"},
    )
    assert loop == "asyncio"
    (warning,) = [line for line in lines if "uvloop cannot be imported" in line["message"]]
    assert warning["level"] == "warning"
    assert "uvloop is blocked in this test" in warning["message"]


async def test_another_value_is_refused_at_start(tmp_path: Path) -> None:
    config = tmp_path / "pulseops.yml"
    config.write_text("integrations: []\n")
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": "secret",
        "PULSEOPS_CONFIG": str(config),
        "PULSEOPS_EVENT_LOOP": "trio",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "serve",
        env=env,
        cwd=tmp_path,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    text = err.decode()
    assert "PULSEOPS_EVENT_LOOP" in text and "uvloop" in text and "asyncio" in text
