"""The real Prometheus Alertmanager with its `pagerduty_configs` and `opsgenie_configs`
pointed at PulseOps: what switching from PagerDuty or Opsgenie means for an Alertmanager user
(change `url` / `api_url`, keep the key). It opens, groups and resolves incidents.

Starts Debian's `prometheus-alertmanager` (0.25 tested) like test_alertmanager_real.py; skips
when the binary is not installed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import Harness
from tests.scenarios.test_alertmanager_real import (
    Alertmanager,
    alert,
    alertmanager_binary,  # noqa: F401  (fixture)
    wait_for,
)
from tests.scenarios.test_dropin import GENIE_KEY, PD_KEY, config  # noqa: F401  (fixture)

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]

CONFIG = """\
route:
  receiver: pulseops-pagerduty
  group_by: ['alertname']
  group_wait: 300ms
  group_interval: 1s
  repeat_interval: 1h
  routes:
    - matchers: ['via="opsgenie"']
      receiver: pulseops-opsgenie
receivers:
  - name: pulseops-pagerduty
    pagerduty_configs:
      - routing_key: "{pd_key}"
        url: "{url}/v2/enqueue"
        send_resolved: true
  - name: pulseops-opsgenie
    opsgenie_configs:
      - api_key: "{genie_key}"
        api_url: "{url}/"
        priority: P2
        send_resolved: true
"""


@pytest.fixture
async def alertmanager(
    alertmanager_binary: str,  # noqa: F811
    harness: Harness,
    tmp_path: Path,
) -> AsyncIterator[Alertmanager]:
    workdir = tmp_path / "alertmanager"
    workdir.mkdir()
    async with aiohttp.ClientSession() as http:
        am = Alertmanager(alertmanager_binary, workdir, http)
        am.config_file.write_text(
            CONFIG.format(url=harness.url, pd_key=PD_KEY, genie_key=GENIE_KEY)
        )
        try:
            await am.start()
            yield am
        finally:
            am.stop()
            print(f"---- alertmanager log ({am.log_file}) ----\n{am.log()}")


def firing(alertname: str, instance: str, *, via: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    body = alert(
        alertname,
        f"{alertname} on {instance}",
        starts_at=now,
        ends_at=now + timedelta(hours=1),
        instance=instance,
    )
    body["labels"]["via"] = via
    return body


async def listed(harness: Harness) -> list[dict[str, Any]]:
    status, body = await harness.get("/api/v1/incidents")
    assert status == 200, body
    return body["incidents"]  # type: ignore[no-any-return]


async def open_and_resolve(
    harness: Harness, am: Alertmanager, *, alertname: str, via: str, integration: str
) -> dict[str, Any]:
    """Two alerts of one group open one incident; both ending resolves it. Returns it."""
    alerts = [firing(alertname, "api-1", via=via), firing(alertname, "api-2", via=via)]
    await am.post_alerts(alerts)

    async def opened() -> list[dict[str, Any]]:
        return [i for i in await listed(harness) if i["integration"] == integration]

    (found,) = await wait_for(opened, f"the {integration} incident")
    incident_id = found["id"]
    for item in alerts:
        item["endsAt"] = datetime.now(UTC).isoformat()
    await am.post_alerts(alerts)

    async def resolved() -> dict[str, Any] | None:
        current = await harness.incident(incident_id)
        return current if current["status"] == "resolved" else None

    incident = await wait_for(resolved, f"the {integration} incident to resolve")
    assert len(await opened()) == 1  # grouped: one incident for the group, never a second
    return incident


async def test_alertmanager_pagerduty_configs_open_group_and_resolve(
    harness: Harness, alertmanager: Alertmanager
) -> None:
    incident = await open_and_resolve(
        harness, alertmanager, alertname="HighLatency", via="pagerduty", integration="pagerduty"
    )
    assert incident["source"] == "pagerduty"
    assert "HighLatency" in incident["title"]  # Alertmanager's default PagerDuty summary
    assert incident["service"] == "payment-api"
    assert incident["resolved_by"] == "monitor:pagerduty"
    await harness.settle()
    assert incident["slack"]["channel_id"] in harness.emu.channels


async def test_alertmanager_opsgenie_configs_open_group_and_resolve(
    harness: Harness, alertmanager: Alertmanager
) -> None:
    incident = await open_and_resolve(
        harness, alertmanager, alertname="DiskFull", via="opsgenie", integration="opsgenie"
    )
    assert incident["source"] == "opsgenie"
    assert "DiskFull" in incident["title"]
    assert incident["severity"] == "SEV2"  # priority: P2
    # Alertmanager puts the alert's labels in `details`: its service label routes the alert
    assert incident["service"] == "payment-api"
    assert incident["labels"]["alertname"] == "DiskFull"
    assert incident["resolved_by"] == "monitor:opsgenie"
