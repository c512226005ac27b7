"""Workflows end to end: alerts in over HTTP, a real local receiver for the webhooks (HMAC
verified, calls counted), the emulator for Slack, and the database for runs and timelines."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.clock import ManualClock
from bot.config import PulseOpsConfig, parse_config
from bot.sandbox.emulator import Emulator
from store.models import PageRow, WorkflowRunRow, WorkflowStepRow
from tests.conftest import CONFIG_YAML, Harness, alertmanager_payload
from tests.helpers import ONCALL_YAML, WEDNESDAY, fire
from tests.receiver import Receiver

pytestmark = pytest.mark.asyncio
BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
SECRET = "restart-hmac-secret"
ENV = {"RESTART_HMAC": SECRET}


def workflows_config(yaml: str) -> PulseOpsConfig:
    return parse_config(CONFIG_YAML + yaml, source="test.yml", environ=ENV)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver(secret=SECRET)
    await r.start()
    yield r
    await r.stop()


@pytest.fixture
async def running(
    request: pytest.FixtureRequest,
    emulator: Emulator,
    database_url: str,
    clock: ManualClock,
    receiver: Receiver,
) -> AsyncIterator[Harness]:
    """The service with the workflows YAML of the test's `workflows` mark (`{url}`: the
    receiver)."""
    marker = request.node.get_closest_marker("workflows")
    assert marker is not None, "mark the test with @pytest.mark.workflows(yaml)"
    config = workflows_config(marker.args[0].replace("{url}", receiver.url))
    async with Harness(
        emulator=emulator, database_url=database_url, config=config, clock=clock, environ=ENV
    ) as h:
        yield h


RESTART = """
allowed_hosts: ["127.0.0.1"]
workflows:
  - id: restart-payment
    when: [triggered]
    matchers: ['service="payment-api"', 'severity=~"SEV1|SEV2"']
    steps:
      - webhook:
          url: "{url}/restart"
          timeout: 2s
          retries: 2
          backoff: 10s
          secret_env: RESTART_HMAC
          body: '{"incident": {{ incident.id }}, "title": {{ incident.title | tojson }}}'
      - message: "Restarted. Runbook for {{ incident.title }}: https://wiki.example/payments"
"""


async def timeline(harness: Harness, incident_id: int) -> list[dict[str, Any]]:
    body = await harness.incident(incident_id)
    return list(body["timeline"])


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [e["kind"] for e in events if e["kind"].startswith("workflow")]


async def runs(harness: Harness) -> list[WorkflowRunRow]:
    async with harness.deps.db.read() as session:
        return list((await session.scalars(select(WorkflowRunRow))).all())


def channel_texts(harness: Harness, incident: dict[str, Any]) -> list[str]:
    return [m.get("text", "") for m in harness.emu.messages(incident["slack"]["channel_id"])]


@BOTH
@pytest.mark.workflows(RESTART)
async def test_a_triggered_incident_calls_the_signed_webhook_once_and_posts_the_message(
    running: Harness, receiver: Receiver
) -> None:
    incident_id = await fire(running, summary="Payments <!channel> down")
    assert len(receiver.calls) == 1
    call = receiver.calls[0]
    assert call.signed is True
    assert call.path == "/restart"
    assert call.json() == {"incident": incident_id, "title": "Payments <!channel> down"}
    assert call.headers["X-PulseOps-Delivery"].endswith("-step-0")
    assert call.headers["X-PulseOps-Timestamp"].isdigit()
    events = await timeline(running, incident_id)
    assert kinds(events) == [
        "workflow_started",
        "workflow_step",
        "workflow_step",
        "workflow_succeeded",
    ]
    assert 'HTTP 200: {"restarted": true}' in events[-3]["text"]
    incident = await running.incident(incident_id)
    posted = [t for t in channel_texts(running, incident) if t.startswith("Restarted.")]
    assert posted == [
        "Restarted. Runbook for Payments &lt;!channel&gt; down: https://wiki.example/payments"
    ]
    # the same alert again, an acknowledgement: nothing runs a second time
    await running.post_alert(alertmanager_payload(summary="Payments <!channel> down"))
    await running.settle()
    assert len(receiver.calls) == 1
    [run] = await runs(running)
    assert (run.status, run.trigger) == ("succeeded", "triggered")


@pytest.mark.workflows(RESTART)
async def test_workflows_do_not_run_for_incidents_their_matchers_exclude(
    running: Harness, receiver: Receiver
) -> None:
    await fire(running, service="search-api")
    await fire(running, severity="info", fingerprint="other", group_key="other")
    assert receiver.calls == []
    assert await runs(running) == []


@BOTH
@pytest.mark.workflows(RESTART)
async def test_a_failing_webhook_is_retried_with_backoff_then_succeeds_once(
    running: Harness, receiver: Receiver
) -> None:
    receiver.statuses = [503, 200]
    incident_id = await fire(running)
    assert len(receiver.calls) == 1
    events = await timeline(running, incident_id)
    assert kinds(events) == ["workflow_started", "workflow_retry"]
    assert "HTTP 503" in events[-1]["text"] and "in 10s" in events[-1]["text"]
    running.clock.advance(5)  # not yet
    await running.settle()
    assert len(receiver.calls) == 1
    running.clock.advance(6)
    await running.settle()
    assert len(receiver.calls) == 2
    assert all(c.signed for c in receiver.calls)
    assert receiver.calls[0].body == receiver.calls[1].body
    assert kinds(await timeline(running, incident_id))[-3:] == [
        "workflow_step",
        "workflow_step",
        "workflow_succeeded",
    ]
    async with running.deps.db.read() as session:
        step = await session.get(WorkflowStepRow, ((await runs(running))[0].id, 0))
        assert step is not None and (step.status, step.attempts) == ("done", 2)


@pytest.mark.workflows(RESTART)
async def test_a_webhook_down_for_good_fails_the_run_and_says_so_in_the_channel(
    running: Harness, receiver: Receiver
) -> None:
    receiver.statuses = [500]
    incident_id = await fire(running)
    for wait in (10, 20):
        running.clock.advance(wait)
        await running.settle()
    assert len(receiver.calls) == 3  # the call and its two retries
    running.clock.advance(3600)
    await running.settle()
    assert len(receiver.calls) == 3
    events = await timeline(running, incident_id)
    assert kinds(events) == [
        "workflow_started",
        "workflow_retry",
        "workflow_retry",
        "workflow_step",
        "workflow_failed",
    ]
    assert "gave up after 3 attempts" in events[-1]["text"]
    [run] = await runs(running)
    assert run.status == "failed"
    incident = await running.incident(incident_id)
    failed = [t for t in channel_texts(running, incident) if "failed" in t]
    assert len(failed) == 1 and "restart-payment" in failed[0] and "HTTP 500" in failed[0]
    # the message step never ran
    assert not any(t.startswith("Restarted.") for t in channel_texts(running, incident))
    status, metrics = await running.get("/metrics", token=None)
    assert status == 200
    assert 'pulseops_workflow_runs_total{result="failed",workflow="restart-payment"} 1.0' in metrics
    assert 'pulseops_workflow_step_attempts_total{kind="webhook",outcome="retry"} 2.0' in metrics


GUARDED = """
allowed_hosts: ["127.0.0.1"]
workflows:
  - id: metadata
    when: [triggered]
    steps:
      - webhook: {url: "http://169.254.169.254/latest/meta-data/", retries: 0}
  - id: not-allowed
    when: [triggered]
    steps:
      - webhook: {url: "http://localhost:9/x", retries: 0}
  - id: redirected
    when: [triggered]
    steps:
      - webhook: {url: "{url}/go", retries: 0}
  - id: bad-body
    when: [triggered]
    steps:
      - webhook: {url: "{url}/x", body: '{"title": {{ incident.title }}}', retries: 0}
"""


@pytest.mark.workflows(GUARDED)
async def test_outgoing_calls_are_guarded(running: Harness, receiver: Receiver) -> None:
    receiver.redirect_to = "http://localhost:1/elsewhere"
    incident_id = await fire(running)
    failed = {
        e["data"]["workflow"]: e["text"]
        for e in await timeline(running, incident_id)
        if e["kind"] == "workflow_failed"
    }
    assert set(failed) == {"metadata", "not-allowed", "redirected", "bad-body"}
    assert "link-local or metadata" in failed["metadata"]
    assert "list the host in allowed_hosts" in failed["not-allowed"]
    assert "redirect to another host refused" in failed["redirected"]
    assert "did not render JSON" in failed["bad-body"]
    assert [c.path for c in receiver.calls] == ["/go"]  # the body template failed before calling


ACTIONS = """
workflows:
  - id: page-search-on-ack
    when: [acknowledged]
    matchers: ['team="payments"']
    steps:
      - page: {user: "U0CAROL01"}
      - invite: ["U0CAROL01"]
      - set_severity: SEV1
  - id: on-severity
    when: [severity_changed]
    steps:
      - set_severity: SEV3
"""


@BOTH
@pytest.mark.workflows(ACTIONS)
async def test_page_and_severity_steps_change_the_incident_once(running: Harness) -> None:
    incident_id = await fire(running, severity="warning")
    status, _ = await running.call(
        "PATCH", f"/api/v1/incidents/{incident_id}", {"status": "acknowledged"}
    )
    assert status == 200
    await running.settle()
    incident = await running.incident(incident_id)
    # the workflow's own severity change triggers no workflow (no back and forth)
    assert incident["severity"] == "SEV1"
    async with running.deps.db.read() as session:
        pages = (await session.scalars(select(PageRow).where(PageRow.target == "U0CAROL01"))).all()
        assert len(pages) == 1
    invites = [
        c
        for c in running.emu.calls_to("conversations.invite")
        if c["args"]["channel"] == incident["slack"]["channel_id"]
        and "U0CAROL01" in c["args"]["users"]
    ]
    assert len(invites) == 1
    events = await timeline(running, incident_id)
    assert kinds(events) == [
        "workflow_started",
        "workflow_step",
        "workflow_step",
        "workflow_step",
        "workflow_succeeded",
    ]
    steps = [e["text"] for e in events if e["kind"] == "workflow_step"]
    assert steps[1].endswith("step 2 (invite): done: invited <@U0CAROL01>"), steps
    # a person's severity change does trigger
    status, _ = await running.call(
        "PATCH", f"/api/v1/incidents/{incident_id}", {"severity": "SEV2"}
    )
    await running.settle()
    assert (await running.incident(incident_id))["severity"] == "SEV3"
    async with running.deps.db.read() as session:
        count = await session.scalar(select(func.count()).select_from(WorkflowRunRow))
    assert count == 2


UNACKED = """
allowed_hosts: ["127.0.0.1"]
workflows:
  - id: wake-the-platform-team
    when: [{unacknowledged_for: 10m}]
    steps:
      - webhook: {url: "{url}/page", retries: 0}
"""


@BOTH
@pytest.mark.workflows(UNACKED)
async def test_unacknowledged_for_runs_once_when_nobody_acknowledged_in_time(
    running: Harness, receiver: Receiver
) -> None:
    late = await fire(running)
    on_time = await fire(running, service="search-api", fingerprint="b", group_key="b")
    status, _ = await running.call(
        "PATCH", f"/api/v1/incidents/{on_time}", {"status": "acknowledged"}
    )
    assert status == 200
    workflows = running.deps.workflows
    running.clock.advance(9 * 60)
    assert await workflows.sweep() == 0
    running.clock.advance(61)
    async with running.replica() as other:  # two replicas sweep at once: one run
        started = [await other.workflows.sweep(), await workflows.sweep()]
    assert sorted(started) == [0, 1]
    await running.settle()
    assert len(receiver.calls) == 1
    assert json.loads(receiver.calls[0].body)["incident"]["id"] == late
    statuses = {(r.incident_id, r.status) for r in await runs(running)}
    assert statuses == {(late, "succeeded"), (on_time, "skipped")}


BUTTON = """
allowed_hosts: ["127.0.0.1"]
permissions:
  run_workflow: [{team_members: true}]
workflows:
  - id: restart-payment
    run: button
    label: "Restart payment-api"
    matchers: ['service="payment-api"']
    steps:
      - webhook: {url: "{url}/restart", retries: 0, secret_env: RESTART_HMAC}
"""


async def calls_reach(running: Harness, receiver: Receiver, count: int) -> None:
    """Bolt runs a click's listener after acknowledging it: deliver until the run's webhook
    has been called `count` times (then a moment more, so an extra call would show)."""
    deadline = asyncio.get_running_loop().time() + 10
    while len(receiver.calls) < count:
        assert asyncio.get_running_loop().time() < deadline, receiver.calls
        await running.settle()
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.2)
    await running.settle()


def workflow_buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        el
        for block in message.get("blocks", [])
        if block.get("type") == "actions"
        for el in block["elements"]
        if el["action_id"].startswith("incident_run_workflow:")
    ]


@BOTH
@pytest.mark.workflows(BUTTON)
async def test_the_button_asks_for_confirmation_obeys_permissions_and_runs_once_per_click(
    running: Harness, receiver: Receiver
) -> None:
    incident_id = await fire(running)
    assert receiver.calls == []  # a button workflow never runs by itself
    incident = await running.incident(incident_id)
    channel, ts = incident["slack"]["channel_id"], incident["slack"]["message_ts"]
    [message] = [m for m in running.emu.messages(channel) if m["ts"] == ts]
    [button] = workflow_buttons(message)
    assert button["text"]["text"] == "Restart payment-api"
    assert button["confirm"]["confirm"]["text"] == "Run"
    action = button["action_id"]
    # the dialog cancelled: nothing is sent
    cancelled = await running.emu.click(
        user="U0ALICE01", action_id=action, channel=channel, ts=ts, confirmed=False
    )
    assert cancelled["denied"]
    # someone outside the payments team is refused, ephemerally; nothing runs
    refused = await running.emu.click(user="U0CAROL01", action_id=action, channel=channel, ts=ts)
    assert refused["status"] == 200
    await running.settle()
    assert receiver.calls == []
    # a team member's click runs it; the same click delivered twice still runs it once
    click = await running.emu.click(user="U0ALICE01", action_id=action, channel=channel, ts=ts)
    assert click["status"] == 200
    await running.emu.driver._post_interaction(click["payload"])
    await calls_reach(running, receiver, 1)
    assert len(receiver.calls) == 1 and receiver.calls[0].signed
    # a second click is a second run
    await running.emu.click(user="U0BOB0001", action_id=action, channel=channel, ts=ts)
    await calls_reach(running, receiver, 2)
    assert len(receiver.calls) == 2
    events = await timeline(running, incident_id)
    started = [e for e in events if e["kind"] == "workflow_started"]
    assert [e["actor"] for e in started] == ["U0ALICE01", "U0BOB0001"]
    said = [str(e.get("text", "")) for e in running.emu.ephemerals]
    assert any("may not run workflows on this" in t for t in said), said
    # /incident run from the channel does the same
    result = await running.emu.command(
        user="U0ALICE01", channel=channel, command="/incident", text="run restart-payment"
    )
    assert "Started workflow" in str(result["body"])
    await calls_reach(running, receiver, 3)
    assert len(receiver.calls) == 3
    result = await running.emu.command(
        user="U0ALICE01", channel=channel, command="/incident", text="run nope"
    )
    assert "No workflow 'nope'" in str(result["body"])
    # resolved: the button is gone
    await running.call("PATCH", f"/api/v1/incidents/{incident_id}", {"status": "resolved"})
    await running.settle()
    [message] = [m for m in running.emu.messages(channel) if m["ts"] == ts]
    assert workflow_buttons(message) == []


ESCALATIONS = """
workflows:
  - id: escalate-when-acknowledged-late
    when: [severity_changed]
    steps:
      - escalate: true
  - id: note-each-escalation
    when: [escalated]
    steps:
      - message: "Escalated: {{ incident.number }}"
"""


@BOTH
async def test_escalated_fires_workflows_and_the_escalate_step_pages_the_next_level(
    emulator: Emulator, database_url: str
) -> None:
    config = parse_config(
        ONCALL_YAML.format(first="5m", second="10m") + ESCALATIONS, source="t.yml", environ={}
    )
    async with Harness(
        emulator=emulator, database_url=database_url, config=config, clock=ManualClock(WEDNESDAY)
    ) as running:
        incident_id = await fire(running)
        # a person's severity change runs the escalate step: level 2 is paged
        status, _ = await running.call(
            "PATCH", f"/api/v1/incidents/{incident_id}", {"severity": "SEV2"}
        )
        assert status == 200
        await running.settle()
        # an escalation by hand (API) runs the escalated workflow; the workflow's own
        # escalation above did not (a workflow's changes trigger no workflows)
        status, _ = await running.call("POST", f"/api/v1/incidents/{incident_id}/escalate")
        assert status in (200, 202)
        await running.settle()
        # the deadline of the next level passes: an escalation by the sweep runs it again
        running.clock.advance(3600)
        await running.deps.escalations.sweep()
        await running.settle()
        events = await timeline(running, incident_id)
        incident = await running.incident(incident_id)
        async with running.deps.db.read() as session:
            triggers = sorted(
                (r.workflow_id, r.started_by)
                for r in (await session.scalars(select(WorkflowRunRow))).all()
            )
    escalated = [e for e in events if e["kind"] == "escalated"]
    assert [e["actor"] for e in escalated] == [
        "workflow:escalate-when-acknowledged-late",
        "api:tester",
    ]
    assert triggers == [
        ("escalate-when-acknowledged-late", "api:tester"),
        ("note-each-escalation", "api:tester"),
        ("note-each-escalation", "pulseops"),
    ]
    posted = [t for t in channel_texts(running, incident) if t.startswith("Escalated:")]
    assert posted == [f"Escalated: INC-{incident_id}"] * 2
