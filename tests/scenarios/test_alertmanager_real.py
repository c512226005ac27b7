"""A real Prometheus Alertmanager sends its webhook to the running service.

The other webhook tests post hand-written Alertmanager bodies; this one starts the real
`prometheus-alertmanager` binary (Debian package, 0.25 tested) as a subprocess, pushes alerts
into it over its API v2, and lets it group, notify (with its own Bearer authorization and
`send_resolved`) and resolve against PulseOps, exactly as in production.
Skips when the binary is not installed.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest

from tests.conftest import TOKENS, Harness
from tests.helpers import buttons

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]

T = TypeVar("T")

POLL = 0.1  # seconds between polls
WAIT = 20.0  # upper bound for any single wait

CONFIG = """\
route:
  receiver: pulseops
  group_by: ['alertname']
  group_wait: 200ms
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: pulseops
    webhook_configs:
      - url: "{url}/webhooks/prometheus"
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials: "{token}"
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_for(probe: Callable[[], Awaitable[T | None]], what: str, timeout: float = WAIT) -> T:
    """Poll `probe` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(POLL)


class Alertmanager:
    """A running `prometheus-alertmanager` process and an HTTP client for its API v2."""

    def __init__(self, binary: str, workdir: Path, http: aiohttp.ClientSession) -> None:
        self.binary = binary
        self.workdir = workdir
        self.http = http
        self.config_file = workdir / "alertmanager.yml"
        self.log_file = workdir / "alertmanager.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def log(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except OSError:
            return ""

    async def start(self, attempts: int = 3) -> None:
        # The port is picked before Alertmanager binds it, so another process may take it in
        # between: retry with a new port if Alertmanager exits early.
        for _ in range(attempts):
            port = _free_port()
            with self.log_file.open("ab") as log:
                self.proc = subprocess.Popen(
                    [
                        self.binary,
                        f"--config.file={self.config_file}",
                        f"--storage.path={self.workdir / 'data'}",
                        f"--web.listen-address=127.0.0.1:{port}",
                        "--cluster.listen-address=",  # no HA gossip: no network needed
                        "--log.level=debug",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                )
            self.url = f"http://127.0.0.1:{port}"
            if await self._ready():
                return
            self.stop()
        raise AssertionError(f"Alertmanager did not become ready:\n{self.log()}")

    async def _ready(self, timeout: float = 10.0) -> bool:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                async with self.http.get(f"{self.url}/-/ready") as r:
                    if r.status == 200:
                        return True
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
        return False

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    async def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        async with self.http.post(f"{self.url}/api/v2/alerts", json=alerts) as r:
            assert r.status == 200, await r.text()

    async def alerts(self) -> list[dict[str, Any]]:
        async with self.http.get(f"{self.url}/api/v2/alerts") as r:
            assert r.status == 200, await r.text()
            return await r.json()  # type: ignore[no-any-return]


@pytest.fixture
def alertmanager_binary() -> str:
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if not binary:
        pytest.skip(
            "prometheus-alertmanager is not installed (apt-get install prometheus-alertmanager)"
        )
    return binary


@pytest.fixture
async def alertmanager(
    alertmanager_binary: str, harness: Harness, tmp_path: Path
) -> AsyncIterator[Alertmanager]:
    """Alertmanager routing every alert to PulseOps's `prometheus` integration."""
    binary = alertmanager_binary
    workdir = tmp_path / "alertmanager"
    workdir.mkdir()
    async with aiohttp.ClientSession() as http:
        am = Alertmanager(binary, workdir, http)
        am.config_file.write_text(CONFIG.format(url=harness.url, token=TOKENS["prometheus"]))
        try:
            await am.start()
            yield am
        finally:
            am.stop()
            # pytest shows captured output only when the test fails: Alertmanager's debug log
            # (received alerts, flushes, notify errors) is then right there.
            print(f"---- alertmanager log ({am.log_file}) ----\n{am.log()}")


def alert(
    alertname: str, summary: str, *, starts_at: datetime, ends_at: datetime, instance: str = "api-1"
) -> dict[str, Any]:
    """One alert as Prometheus posts it to Alertmanager's API v2."""
    return {
        "labels": {
            "alertname": alertname,
            "service": "payment-api",
            "severity": "warning",
            "instance": instance,
        },
        "annotations": {
            "summary": summary,
            "description": "p99 over 5 minutes on the checkout path",
        },
        "startsAt": starts_at.isoformat(),
        "endsAt": ends_at.isoformat(),
        "generatorURL": "http://prometheus.example:9090/graph?g0.expr=latency",
    }


async def incidents_for(harness: Harness, alertname: str) -> list[dict[str, Any]]:
    status, body = await harness.get("/api/v1/incidents")
    assert status == 200, body
    return [i for i in body["incidents"] if i["labels"].get("alertname") == alertname]


async def test_real_alertmanager_opens_and_resolves_incidents(
    harness: Harness, alertmanager: Alertmanager
) -> None:
    now = datetime.now(UTC)
    latency = alert(
        "HighLatency",
        "p99 latency above 2s <!channel>",
        starts_at=now,
        ends_at=now + timedelta(hours=1),
    )
    await alertmanager.post_alerts([latency])

    # Alertmanager waits group_wait, then notifies PulseOps on its own.
    (found,) = await wait_for(
        lambda: incidents_for(harness, "HighLatency"), "the HighLatency incident"
    )
    incident_id = found["id"]
    (am_alert,) = await alertmanager.alerts()
    assert am_alert["labels"]["alertname"] == "HighLatency"
    fingerprint = am_alert["fingerprint"]  # Alertmanager's own hash of the label set

    incident = await harness.incident(incident_id)
    assert incident["title"] == "p99 latency above 2s <!channel>"  # stored as received
    assert incident["severity"] == "SEV3"  # severity=warning
    assert incident["service"] == "payment-api" and incident["team"] == "payments"
    assert incident["source"] == "alertmanager" and incident["integration"] == "prometheus"
    assert incident["status"] == "triggered"
    assert [a["fingerprint"] for a in incident["alerts"]] == [fingerprint]
    assert incident["labels"]["instance"] == "api-1"

    await harness.settle()
    incident = await harness.incident(incident_id)
    channel_id = incident["slack"]["channel_id"]
    assert channel_id in harness.emu.channels
    assert harness.emu.channels[channel_id].name.startswith(f"inc-{incident_id}-p99-latency")
    (message,) = harness.emu.messages(channel_id)
    assert buttons(message) == ["incident_acknowledge", "incident_resolve"]
    (announcement,) = harness.emu.messages("C0INCIDENT")
    assert announcement["ts"] == incident["slack"]["announcement_ts"]
    posts = harness.emu.calls_to("chat.postMessage")
    assert posts
    for call in posts + harness.emu.calls_to("chat.update"):
        assert "<!channel>" not in json.dumps(call["args"]), call

    # Prometheus stops firing: it re-sends the alert with endsAt now; Alertmanager sends the
    # resolved notification (send_resolved) at the next group_interval tick.
    latency["endsAt"] = datetime.now(UTC).isoformat()
    await alertmanager.post_alerts([latency])

    async def resolved() -> dict[str, Any] | None:
        current = await harness.incident(incident_id)
        return current if current["status"] == "resolved" else None

    incident = await wait_for(resolved, "the incident to be resolved by Alertmanager")
    assert incident["resolved_by"] == "monitor:prometheus"
    assert incident["alerts"][0]["status"] == "resolved"
    await harness.settle()
    # the incident message; a line threaded under it and the postmortem draft follow it
    message = harness.emu.messages(channel_id)[0]
    assert message["ts"] == incident["slack"]["message_ts"]
    assert buttons(message) == ["incident_reopen"]
    assert message["edited"]

    # A different alertname is a different Alertmanager group (group_by alertname), so a
    # different groupKey and a second incident.
    now = datetime.now(UTC)
    await alertmanager.post_alerts(
        [
            alert(
                "HighErrorRate",
                "Checkout 5xx above 5%",
                starts_at=now,
                ends_at=now + timedelta(hours=1),
                instance="api-2",
            )
        ]
    )
    (second,) = await wait_for(
        lambda: incidents_for(harness, "HighErrorRate"), "the HighErrorRate incident"
    )
    assert second["id"] != incident_id
    assert second["title"] == "Checkout 5xx above 5%"
    assert second["status"] == "triggered"
    _, listing = await harness.get("/api/v1/incidents")
    assert listing["total"] == 2
    await harness.settle()
    assert len(harness.emu.messages("C0INCIDENT")) == 2
    assert len(harness.emu.calls_to("conversations.create")) == 2
