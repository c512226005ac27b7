"""The postmortem draft uploaded on resolve and served by the API; reopening from Slack."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.clock import ManualClock
from bot.config import parse_config
from bot.sandbox.emulator import Emulator
from tests.conftest import CONFIG_YAML, READ_TOKEN, Harness
from tests.helpers import WEDNESDAY, buttons, dms, fire, oncall_config, wait_for_status
from tests.scenarios.test_roles import ALICE, BOB, CAROL, channel_message, slash, thread
from tests.scenarios.test_updates import post_update

BOTH = pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


def uploads(harness: Harness, channel: str) -> list[tuple[dict[str, object], bytes]]:
    """(the file, its bytes) for every file shared in `channel`."""
    return [
        (f, harness.emu.ws.files[f["id"]]["data"])
        for m in harness.emu.messages(channel)
        if m.get("files")
        for f in m["files"]
    ]


@BOTH
async def test_postmortem_on_resolve_and_from_the_api(harness: Harness) -> None:
    incident_id = await fire(harness, alertname="CheckoutErrors")
    channel = (await harness.incident(incident_id))["slack"]["channel_id"]
    await slash(harness, f"lead <@{CAROL}>", user=ALICE, channel=channel)
    await slash(harness, "ack", user=BOB, channel=channel)
    await slash(harness, "note rolled back v2", user=BOB, channel=channel)
    await post_update(harness, channel, status="monitoring", summary="Error rate back to 0.1%")
    await slash(harness, f"followup Add a canary stage <@{BOB}>", user=ALICE, channel=channel)
    harness.clock.advance(600)
    assert uploads(harness, channel) == []
    await slash(harness, "resolve", user=BOB, channel=channel)
    await harness.settle()
    await harness.settle()
    ((shared, data),) = uploads(harness, channel)
    assert re.fullmatch(rf"inc-{incident_id}-postmortem\.o\d+-draft\.md", shared["name"])
    document = data.decode()
    assert document.startswith(f"# INC-{incident_id}: ")
    assert "| Time to resolve (MTTR) | 10m 0s |" in document
    assert "| Time to acknowledge (MTTA) | 0s |" in document
    assert "**Severity:** SEV1" in document
    assert (
        "rolled back v2" in document and "Update (monitoring): Error rate back to 0.1%" in document
    )
    assert "- [ ] Add a canary stage (owner: @bob)" in document
    assert "| Incident lead | @carol |" in document
    for person in ("@alice", "@bob", "@carol"):
        assert f"- {person}" in document
    # the same draft from the API (read scope), Markdown; ids where Slack's names are unknown
    status, body = await harness.get(
        f"/api/v1/incidents/{incident_id}/postmortem.md", token=READ_TOKEN
    )
    assert status == 200 and body.startswith(f"# INC-{incident_id}: ")
    assert "- [ ] Add a canary stage (owner: U0BOB0001)" in body
    assert (await harness.get(f"/api/v1/incidents/{incident_id}/postmortem.md", token=None))[
        0
    ] == 401
    status, missing = await harness.get("/api/v1/incidents/999999/postmortem.md")
    assert status == 404
    _, spec = await harness.get("/api/v1/openapi.json", token=None)
    route = spec["paths"]["/api/v1/incidents/{id}/postmortem.md"]["get"]
    assert "text/markdown" in route["responses"]["200"]["content"]


@BOTH
async def test_a_replaced_template(
    emulator: Emulator, database_url: str, clock: ManualClock, tmp_path: Path
) -> None:
    template = tmp_path / "pm.md.j2"
    template.write_text("PM {{ incident.number }} by {{ incident.resolved_by | person(names) }}\n")
    config = parse_config(
        CONFIG_YAML + f"collaboration:\n  postmortem_template: {template}\n", environ={}
    )
    async with Harness(
        emulator=emulator, database_url=database_url, config=config, clock=clock
    ) as harness:
        incident_id = await fire(harness)
        channel = (await harness.incident(incident_id))["slack"]["channel_id"]
        await slash(harness, "resolve", user=ALICE, channel=channel)
        await harness.settle()
        ((_, data),) = uploads(harness, channel)
        assert data.decode() == f"PM INC-{incident_id} by @alice\n"


def test_a_missing_template_is_a_config_error() -> None:
    from bot.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        parse_config(
            CONFIG_YAML + "collaboration:\n  postmortem_template: /nonexistent/pm.j2\n",
            source="pulseops.yml",
            environ={},
        )
    (problem,) = caught.value.problems
    assert "pulseops.yml:" in problem and "collaboration.postmortem_template" in problem


@BOTH
async def test_reopen_by_button_and_command_restarts_escalation(harness: Harness) -> None:
    incident_id = await fire(harness)
    incident = await harness.incident(incident_id)
    channel = incident["slack"]["channel_id"]
    await slash(harness, "resolve", user=ALICE, channel=channel)
    await harness.settle()
    message = channel_message(harness, await harness.incident(incident_id))
    assert buttons(message) == ["incident_reopen"]
    slack = incident["slack"]
    await harness.emu.click(
        user=BOB, channel=slack["channel_id"], ts=slack["message_ts"], action_id="incident_reopen"
    )
    await wait_for_status(harness, incident_id, "triggered")  # a click is carried out after
    await harness.settle()
    incident = await harness.incident(incident_id)
    assert incident["status"] == "triggered"
    assert incident["timeline"][-1]["kind"] == "reopened"
    assert f":rotating_light: Reopened by <@{BOB}>" in thread(harness, incident)
    assert buttons(channel_message(harness, incident)) == [
        "incident_acknowledge",
        "incident_resolve",
    ]
    already = await slash(harness, "reopen", user=ALICE, channel=channel)
    assert "is already triggered" in already and "cannot be reopened" in already
    await slash(harness, "resolve", user=ALICE, channel=channel)
    assert "You reopened" in await slash(harness, "reopen", user=ALICE, channel=channel)


@BOTH
async def test_reopen_refused_when_its_alerts_opened_another(harness: Harness) -> None:
    from tests.conftest import alertmanager_payload

    incident_id = await fire(harness)
    channel = (await harness.incident(incident_id))["slack"]["channel_id"]
    await slash(harness, "resolve", user=ALICE, channel=channel)
    status, body = await harness.post_alert(alertmanager_payload())
    newer = body["results"][0]["incident_id"]
    assert newer != incident_id
    answer = await slash(harness, "reopen", user=ALICE, channel=channel)
    assert f"its alerts opened INC-{newer}" in answer
    assert (await harness.incident(incident_id))["status"] == "resolved"


@BOTH
async def test_reopen_pages_the_first_level_again(
    emulator: Emulator, database_url: str, clock: ManualClock
) -> None:
    clock.set(WEDNESDAY)  # Bob is on call
    async with Harness(
        emulator=emulator, database_url=database_url, config=oncall_config(), clock=clock
    ) as harness:
        incident_id = await fire(harness)
        channel = (await harness.incident(incident_id))["slack"]["channel_id"]
        await slash(harness, "resolve", user=ALICE, channel=channel)
        await slash(harness, "reopen", user=ALICE, channel=channel)
        await harness.settle()
        timeline = (await harness.incident(incident_id))["timeline"]
        paged = [e["data"]["target"] for e in timeline if e["kind"] == "paged"]
        assert paged == [BOB, BOB]
        assert len([m for m in dms(harness, BOB) if "You are paged" in m["text"]]) == 2
