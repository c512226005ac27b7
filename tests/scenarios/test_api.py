"""The JSON HTTP API and probes."""

from __future__ import annotations

import pytest

from store import migrate
from tests.conftest import Harness, alertmanager_payload

pytestmark = pytest.mark.asyncio


async def seed(harness: Harness) -> list[int]:
    ids = []
    for i, service in enumerate(
        ["payment-api", "payment-api", "search-api", "search-api", "payment-api"]
    ):
        _, body = await harness.post_alert(
            alertmanager_payload(
                group_key=f"g{i}", fingerprint=f"f{i}", service=service, summary=f"Alert number {i}"
            )
        )
        ids.append(body["results"][0]["incident_id"])
    await harness.post_alert(
        alertmanager_payload(group_key="g0", fingerprint="f0", status="resolved")
    )
    return ids


async def test_list_filters_and_paginates(harness: Harness) -> None:
    ids = await seed(harness)
    status, body = await harness.get("/api/v1/incidents")
    assert status == 200 and body["total"] == 5
    assert [i["id"] for i in body["incidents"]] == sorted(ids, reverse=True)
    _, body = await harness.get("/api/v1/incidents?status=open")
    assert body["total"] == 4
    _, body = await harness.get("/api/v1/incidents?status=resolved")
    assert [i["id"] for i in body["incidents"]] == [ids[0]]
    _, body = await harness.get("/api/v1/incidents?service=search-api")
    assert body["total"] == 2 and all(i["service"] == "search-api" for i in body["incidents"])
    _, body = await harness.get("/api/v1/incidents?team=payments&status=triggered")
    assert body["total"] == 2
    _, page1 = await harness.get("/api/v1/incidents?limit=2")
    _, page2 = await harness.get(f"/api/v1/incidents?limit=2&offset={page1['next_offset']}")
    _, page3 = await harness.get(f"/api/v1/incidents?limit=2&offset={page2['next_offset']}")
    seen = [i["id"] for p in (page1, page2, page3) for i in p["incidents"]]
    assert seen == sorted(ids, reverse=True) and page3["next_offset"] is None


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=sleeping", "status"),
        ("service=nope", "service"),
        ("team=nope", "team"),
        ("limit=0", "limit"),
        ("limit=abc", "limit"),
        ("offset=-1", "offset"),
    ],
)
async def test_bad_filters_are_400_naming_the_field(
    harness: Harness, query: str, field: str
) -> None:
    status, body = await harness.get(f"/api/v1/incidents?{query}")
    assert status == 400
    assert field in body["fields"]


async def test_one_incident_with_timeline_and_alerts(harness: Harness) -> None:
    ids = await seed(harness)
    status, body = await harness.get(f"/api/v1/incidents/INC-{ids[0]}")
    assert status == 200
    assert body["number"] == f"INC-{ids[0]}" and body["status"] == "resolved"
    assert [e["kind"] for e in body["timeline"]] == ["triggered", "alert_resolved", "resolved"]
    assert body["alerts"][0]["status"] == "resolved"
    assert body["timeline"][0]["at"].endswith("Z")
    status, body = await harness.get("/api/v1/incidents/12345")
    assert status == 404 and "INC-12345" in body["error"]
    status, body = await harness.get("/api/v1/incidents/banana")
    assert status == 400


async def test_probes_and_metrics(harness: Harness) -> None:
    assert await harness.get("/healthz") == (200, {"status": "ok"})
    status, body = await harness.get("/readyz")
    assert status == 200 and body["migrations"]["current"] == migrate.head_revision()
    await seed(harness)
    status, text = await harness.get("/metrics")
    assert status == 200
    assert 'pulseops_alerts_received_total{integration="prometheus",outcome="created"} 5.0' in text
    assert 'pulseops_incidents_opened_total{service="payment-api",severity="SEV1"} 3.0' in text
    assert "pulseops_http_request_duration_seconds_bucket" in text
