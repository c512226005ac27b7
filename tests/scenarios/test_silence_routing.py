"""Silences see what routing made of an alert: the synthetic labels (`__title__`, …) and the
service, severity and category a route or the classifier decided."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from bot.clock import ManualClock
from bot.config import PulseOpsConfig, parse_config
from tests.conftest import CONFIG_YAML, Harness

ROUTES = """routes:
  - name: payment-failures
    matchers: ['__title__=~"(?i)payment failed.*"']
    service: payment-api
    severity: SEV1
    category: payments
"""

pytestmark = pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


@pytest.fixture
def config() -> PulseOpsConfig:
    return parse_config(CONFIG_YAML + ROUTES, environ={})


async def generic(harness: Harness, title: str) -> str:
    status, body = await harness.post_alert({"title": title}, integration="generic")
    assert status == 202, body
    return str(body["results"][0]["outcome"])


async def silence(harness: Harness, clock: ManualClock, *matchers: str) -> dict[str, Any]:
    status, made = await harness.call(
        "POST",
        "/api/v1/silences",
        {
            "matchers": list(matchers),
            "ends_at": (clock.now() + timedelta(hours=1)).isoformat(),
            "comment": "routing",
        },
    )
    assert status == 201, made
    return made  # type: ignore[no-any-return]


async def test_silences_match_routed_labels(harness: Harness, clock: ManualClock) -> None:
    made = await silence(harness, clock, 'category="payments"', 'severity="SEV1"')
    assert await generic(harness, "Payment failed for order 8812") == "muted"
    assert await generic(harness, "Search is slow") == "created"  # no route: no category
    await harness.call("DELETE", f"/api/v1/silences/{made['id']}")
    await silence(harness, clock, '__integration__="generic"', '__title__=~"Disk.*"')
    assert await generic(harness, "Disk full on db-1") == "muted"
    assert await generic(harness, "Payment failed for order 8813") == "created"
    await silence(harness, clock, 'service="search-api"')  # the integration's default service
    assert await generic(harness, "Search is down") == "muted"
