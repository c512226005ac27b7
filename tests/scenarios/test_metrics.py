"""GET /metrics after driving the app, the scheduler listener, and the Grafana dashboard."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobSubmissionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from prometheus_client.parser import text_string_to_metric_families

from bot.clock import ManualClock
from bot.config import PulseOpsConfig
from bot.metrics import Metrics
from bot.sandbox.emulator import Emulator
from bot.slack.ids import Action
from tests.conftest import Harness
from tests.helpers import WEDNESDAY, click, eventually, fire, oncall_config, wait_for_status

BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
DASHBOARD = Path(__file__).resolve().parents[2] / "grafana" / "pulseops-dashboard.json"
ALICE, BOB = "U0ALICE01", "U0BOB0001"


@pytest.fixture
def config() -> PulseOpsConfig:
    return oncall_config()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(WEDNESDAY)


class Scrape:
    """One parsed GET /metrics."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.families = list(text_string_to_metric_families(text))
        self.samples = [s for f in self.families for s in f.samples]

    def value(self, name: str, **labels: str) -> float:
        """The sample's value; 0 when the labelled series does not exist (yet)."""
        for sample in self.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
        return 0.0

    def total(self, name: str, **labels: str) -> float:
        return sum(
            float(s.value)
            for s in self.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        )

    def names(self) -> set[str]:
        """Every series name /metrics exports, or will once a labelled metric has a child."""
        found = {s.name for s in self.samples}
        for family in self.families:
            suffixes = {
                "counter": ["_total"],
                "histogram": ["_bucket", "_sum", "_count"],
                "gauge": [""],
            }.get(family.type, [""])
            found.update(family.name + suffix for suffix in suffixes)
        return found


async def scrape(harness: Harness) -> Scrape:
    status, body = await harness.get("/metrics")
    assert status == 200
    return Scrape(body)


async def status_of(harness: Harness, incident_id: int) -> str:
    return str((await harness.incident(incident_id))["status"])


# ---- the whole flow, scraped ------------------------------------------------------------


@BOTH
async def test_metrics_follow_an_incident_from_alert_to_resolution(harness: Harness) -> None:
    sev1 = await fire(harness, severity="critical")
    harness.clock.advance(120)
    await click(harness, sev1, Action.ACKNOWLEDGE, user=BOB)
    await wait_for_status(harness, sev1, "acknowledged", timeout=10)
    harness.clock.advance(480)
    await click(harness, sev1, Action.RESOLVE, user=BOB)
    await wait_for_status(harness, sev1, "resolved", timeout=10)
    await harness.settle()

    # a second incident nobody answers: escalated by timeout, then by hand, then auto-resolved
    warning = dict(severity="warning", fingerprint="b1b2c3d4e5f60002", alertname="DiskFull")
    sev3 = await fire(harness, group_key="disk", **warning)
    harness.clock.advance(300)
    assert await harness.deps.escalations.sweep() == 1
    await harness.deps.escalations.escalate_now(incident_id=sev3, by=ALICE)
    harness.clock.advance(60)
    await fire(harness, group_key="disk", status="resolved", **warning)
    assert await status_of(harness, sev3) == "resolved"
    await harness.settle()

    m = await scrape(harness)
    alerts = "pulseops_alerts_received_total"
    assert m.value(alerts, integration="prometheus", outcome="created") == 2
    assert m.value(alerts, integration="prometheus", outcome="resolved") == 1
    opened = "pulseops_incidents_opened_total"
    assert m.value(opened, service="payment-api", severity="SEV1") == 1
    assert m.value(opened, service="payment-api", severity="SEV3") == 1
    # response times are observed at the transition, from the trigger
    ack = "pulseops_incident_acknowledge_latency_seconds"
    assert m.value(f"{ack}_count", severity="SEV1") == 1
    assert m.value(f"{ack}_sum", severity="SEV1") == 120
    assert m.value(f"{ack}_bucket", severity="SEV1", le="60.0") == 0
    assert m.value(f"{ack}_bucket", severity="SEV1", le="120.0") == 1
    assert m.value(f"{ack}_count", severity="SEV3") == 0  # resolved without acknowledgement
    resolve = "pulseops_incident_resolve_latency_seconds"
    assert m.value(f"{resolve}_sum", severity="SEV1") == 600
    assert m.value(f"{resolve}_sum", severity="SEV3") == 360
    assert m.value("pulseops_incident_transitions_total", status="resolved") == 2
    # pages: BOB (on call) for each incident; level 2 (CAROL + the user group) on timeout;
    # by hand past the last level the policy repeats: BOB again
    assert m.value("pulseops_pages_sent_total", kind="user") == 4
    assert m.value("pulseops_pages_sent_total", kind="user_group") == 1
    assert m.value("pulseops_escalation_steps_total", trigger="timeout") == 1
    assert m.value("pulseops_escalation_steps_total", trigger="manual") == 1
    # Slack and the outbox
    calls = "pulseops_slack_api_calls_total"
    assert m.value(calls, method="chat.postMessage", result="ok") >= 4
    assert m.value(calls, method="conversations.create", result="ok") == 2
    assert m.value("pulseops_outbox_depth") == 0
    assert m.value("pulseops_outbox_oldest_age_seconds") == 0
    assert m.total("pulseops_outbox_delivered_total") > 0
    # HTTP latency by route (the route pattern, not the path)
    http = "pulseops_http_request_duration_seconds_count"
    assert m.value(http, route="/webhooks/{integration}", method="POST", status="202") == 3
    assert m.total(http, route="/slack/events") >= 2


async def test_slack_rate_limits_are_counted(harness: Harness) -> None:
    harness.emu.set_faults(error_status=429, error_count=1, methods=["chat.postMessage"])
    await fire(harness)
    m = await scrape(harness)
    calls = "pulseops_slack_api_calls_total"
    assert m.value(calls, method="chat.postMessage", result="ratelimited") == 1
    assert m.value("pulseops_slack_api_retries_total", method="chat.postMessage") == 1


# ---- the scheduler ----------------------------------------------------------------------


@pytest.fixture
async def running(
    emulator: Emulator, database_url: str, config: PulseOpsConfig, clock: ManualClock
) -> AsyncIterator[Harness]:
    """The app with its periodic jobs on."""
    async with Harness(
        emulator=emulator, database_url=database_url, config=config, clock=clock, run_jobs=True
    ) as h:
        yield h


async def test_scheduler_job_runs_are_counted_by_job(running: Harness) -> None:
    registry = running.deps.metrics.registry

    def runs(job: str) -> float:
        value = registry.get_sample_value(
            "pulseops_scheduler_job_runs_total", {"job": job, "result": "ok"}
        )
        return value or 0.0

    await eventually(lambda: runs("escalations") >= 1 and runs("outbox") >= 1 and runs("handoffs"))
    m = await scrape(running)
    assert m.value("pulseops_scheduler_job_runs_total", job="outbox", result="ok") >= 1
    assert m.value("pulseops_scheduler_job_runs_total", job="escalations", result="error") == 0


async def test_a_failing_job_is_counted_as_an_error() -> None:
    metrics = Metrics()
    scheduler = AsyncIOScheduler(timezone="UTC")
    metrics.watch_scheduler(scheduler)

    async def broken() -> None:
        raise RuntimeError("boom")

    scheduler.add_job(broken, "date", run_date=datetime.now(UTC), id="broken")
    scheduler.start()
    try:

        def errors() -> float:
            value = metrics.registry.get_sample_value(
                "pulseops_scheduler_job_runs_total", {"job": "broken", "result": "error"}
            )
            return value or 0.0

        await eventually(lambda: errors() == 1)
    finally:
        scheduler.shutdown(wait=False)
    # missed runs and runs skipped because the last one is still going count too
    at = datetime.now(UTC)
    metrics.on_job_event(JobSubmissionEvent(EVENT_JOB_MISSED, "outbox", "default", [at]))
    metrics.on_job_event(JobSubmissionEvent(EVENT_JOB_MAX_INSTANCES, "outbox", "default", [at]))
    for result in ("missed", "skipped"):
        labels = {"job": "outbox", "result": result}
        assert metrics.registry.get_sample_value("pulseops_scheduler_job_runs_total", labels) == 1


# ---- the Grafana dashboard --------------------------------------------------------------

_METRIC = re.compile(r"\b(pulseops_[a-z0-9_]+)")


def dashboard_panels() -> list[dict[str, Any]]:
    data = json.loads(DASHBOARD.read_text())
    assert data["schemaVersion"] >= 36 and data["uid"] and data["title"] == "PulseOps"
    variables = {v["name"]: v for v in data["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["DS_PROMETHEUS"]["query"] == "prometheus"
    panels: list[dict[str, Any]] = data["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    return panels


def test_dashboard_covers_what_operators_watch() -> None:
    exprs = " ".join(t["expr"] for p in dashboard_panels() for t in p["targets"])
    for needed in (
        "pulseops_alerts_received_total",
        "pulseops_incidents_opened_total",
        "histogram_quantile(0.5, sum by (le) (increase(pulseops_incident_acknowledge_latency",
        "histogram_quantile(0.5, sum by (le) (increase(pulseops_incident_resolve_latency",
        'pulseops_slack_api_calls_total{result="ratelimited"}',
        "pulseops_outbox_depth",
        "pulseops_outbox_oldest_age_seconds",
        "pulseops_pages_sent_total",
        "pulseops_escalation_steps_total",
        'pulseops_scheduler_job_runs_total{result="error"}',
        "histogram_quantile(0.99, sum by (le, route) (rate(pulseops_http_request_duration",
    ):
        assert needed in exprs, needed


async def test_every_dashboard_query_uses_metrics_the_app_exports(harness: Harness) -> None:
    await fire(harness)
    exported = (await scrape(harness)).names()
    for panel in dashboard_panels():
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${DS_PROMETHEUS}"
            expr = target["expr"]
            assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}")
            names = set(_METRIC.findall(expr))
            assert names, f"{panel['title']}: no PulseOps metric in {expr}"
            assert names <= exported, f"{panel['title']}: {names - exported} not exported"
