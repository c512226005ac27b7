"""The alert path as stages: their order, and a decision taken by one stage applied end to end."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.config import PulseOpsConfig
from bot.ingest.decisions import Decision, Muted, Outcome
from bot.ingest.pipeline import build_pipeline
from bot.ingest.stages import (
    AlertContext,
    Authenticate,
    BoundBody,
    DecodeJson,
    Dedup,
    Group,
    Idempotency,
    Mute,
    Parse,
    RateLimit,
    Route,
    StormGuard,
)
from bot.metrics import Metrics
from tests.conftest import Harness, alertmanager_payload


def test_build_pipeline_assembles_the_stages_in_order(config: PulseOpsConfig) -> None:
    pipeline = build_pipeline(config, tokens={}, metrics=Metrics())
    assert [type(s) for s in pipeline.receive] == [
        Authenticate,
        RateLimit,
        BoundBody,
        DecodeJson,
        Parse,
    ]
    assert [type(s) for s in pipeline.deliver] == [Idempotency]
    assert [type(s) for s in pipeline.decide] == [Dedup, Route, Mute, StormGuard, Group]


class MuteLabelled:
    """A mute stage as silences will be: it holds alerts labelled `muted="yes"`."""

    async def __call__(self, ctx: AlertContext) -> Decision | None:
        if ctx.alert.labels.get("muted") == "yes":
            return Muted(alert=ctx.alert, by="test")
        return None


@pytest.mark.asyncio
async def test_a_mute_decision_opens_nothing_and_pages_nobody(harness: Harness) -> None:
    ingest = harness.deps.ingest
    stages = tuple(MuteLabelled() if isinstance(s, Mute) else s for s in ingest.pipeline.decide)
    ingest.pipeline = replace(ingest.pipeline, decide=stages)

    # an alert already open is a repeat: dedup runs before mute
    _, opened = await harness.post_alert(alertmanager_payload())
    assert opened["results"][0]["outcome"] == Outcome.CREATED
    incident_id = opened["results"][0]["incident_id"]
    await harness.settle()
    calls = len(harness.emu.calls)

    muted = alertmanager_payload(
        group_key='{}:{alertname="DiskFull"}', alertname="DiskFull", fingerprint="d15cf0110000001"
    )
    muted["alerts"][0]["labels"]["muted"] = "yes"
    status, body = await harness.post_alert(muted)
    assert status == 202, body
    assert body["results"][0]["outcome"] == "muted"
    assert body["results"][0]["incident_id"] is None
    await harness.settle()
    assert len(harness.emu.calls) == calls  # no Slack call at all
    _, listing = await harness.get("/api/v1/incidents")
    assert [i["id"] for i in listing["incidents"]] == [incident_id]

    again = alertmanager_payload()
    again["alerts"][0]["labels"]["muted"] = "yes"
    _, repeat = await harness.post_alert(again)
    assert repeat["results"][0]["outcome"] == "deduplicated"


@pytest.mark.asyncio
async def test_the_route_stage_gives_a_new_incident_its_service_team_and_resolve_rule(
    harness: Harness,
) -> None:
    # the generic integration's default service is search-api; the alert names batch-jobs
    status, body = await harness.post_alert(
        {"title": "Nightly export failed", "service": "batch-jobs", "dedup_key": "export"},
        integration="generic",
    )
    assert status == 202, body
    incident = await harness.incident(body["results"][0]["incident_id"])
    assert (incident["service"], incident["team"]) == ("batch-jobs", "search")

    # an unknown service falls back to the integration's
    _, body = await harness.post_alert(
        {"title": "Search latency", "service": "no-such-service", "dedup_key": "latency"},
        integration="generic",
    )
    incident = await harness.incident(body["results"][0]["incident_id"])
    assert (incident["service"], incident["team"]) == ("search-api", "search")

    # batch-jobs has auto_resolve: false, so the monitor's resolve leaves it open
    _, body = await harness.post_alert(
        {"title": "Nightly export failed", "dedup_key": "export", "status": "resolved"},
        integration="generic",
    )
    assert body["results"][0]["outcome"] == Outcome.ALERT_RESOLVED


@pytest.mark.asyncio
async def test_every_answer_outcome_is_an_outcome(harness: Harness) -> None:
    seen = set()
    for payload in (alertmanager_payload(), alertmanager_payload(), alertmanager_payload()):
        _, body = await harness.post_alert(payload)
        seen |= {r["outcome"] for r in body["results"]}
    resolved = alertmanager_payload(status="resolved")
    _, body = await harness.post_alert(resolved)
    seen |= {r["outcome"] for r in body["results"]}
    assert seen == {"created", "deduplicated", "resolved"}
    assert seen <= {o.value for o in Outcome}
