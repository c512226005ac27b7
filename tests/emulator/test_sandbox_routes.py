"""The routes behind the sandbox page, through a running `pulseops sandbox`.

The sample alerts go through the service's real webhook routes; the live stream tells a page
when to refresh; `--seed-history` gives the reports something to show; uploaded files can be
fetched back. What the page does with all this is in test_sandbox_browser.py.
"""

from __future__ import annotations

import json
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.sandbox.emulator import Emulator
from tests.sandbox_process import ROOT, Sandbox, running_sandbox, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def sandbox(tmp_path: Path) -> Any:
    with running_sandbox(tmp_path) as running:
        yield running


def incidents(sandbox: Sandbox) -> list[dict[str, Any]]:
    return sandbox.api("/api/v1/incidents?limit=100")["incidents"]  # type: ignore[no-any-return]


def test_info_lists_the_samples_of_the_configured_integrations(sandbox: Sandbox) -> None:
    status, info = sandbox.emulator("GET", "/_sandbox/info")
    assert status == 200
    assert info["bot_url"] == sandbox.bot_url
    assert info["commands"] == ["/incident", "/oncall"]
    assert {(s["id"], s["integration"]) for s in info["samples"]} == {
        ("alertmanager", "prometheus"),
        ("generic", "generic"),
        ("pagerduty", "pagerduty"),
        ("grafana", "grafana"),
        ("datadog", "datadog"),
    }


@pytest.mark.parametrize("sample", ["alertmanager", "generic", "pagerduty", "grafana", "datadog"])
def test_a_sample_fires_and_resolves_through_the_webhook_route(
    sandbox: Sandbox, sample: str
) -> None:
    status, fired = sandbox.emulator(
        "POST", "/_sandbox/alerts", {"sample": sample, "summary": "Disk full", "key": "7"}
    )
    assert status == 200 and fired["status"] == 202, fired
    [created] = incidents(sandbox)
    assert created["title"] == "Disk full" and created["status"] == "triggered"
    # the service told Slack: an incident channel exists in the emulator
    wait_for(
        lambda: any(c["name"].startswith("inc-1-disk-full") for c in sandbox.state()["channels"]),
        what="the incident channel",
    )
    status, resolved = sandbox.emulator(
        "POST", "/_sandbox/alerts", {"sample": sample, "status": "resolved", "key": "7"}
    )
    assert status == 200 and resolved["status"] == 202, resolved
    assert [i["status"] for i in incidents(sandbox)] == ["resolved"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"sample": "nagios"}, "sample"),
        ({"sample": "generic", "status": "exploded"}, "status"),
        ({"sample": "generic", "summary": 42}, "summary"),
        ({"sample": "generic", "key": "k" * 101}, "key"),
        (["not", "an", "object"], "body"),
    ],
)
def test_bad_alert_requests_name_the_field_and_change_nothing(
    sandbox: Sandbox, body: Any, field: str
) -> None:
    status, answer = sandbox.emulator("POST", "/_sandbox/alerts", body)
    assert status == 400
    assert answer["ok"] is False and answer["field"] == field, answer
    assert field in answer["error"]
    assert incidents(sandbox) == []


def test_a_storm_is_deduplicated_into_one_incident_per_distinct_alert(sandbox: Sandbox) -> None:
    status, storm = sandbox.emulator(
        "POST", "/_sandbox/storm", {"sample": "alertmanager", "count": 60, "distinct": 4}
    )
    assert status == 200, storm
    assert storm["statuses"] == {"202": 60}
    found = incidents(sandbox)
    assert len(found) == 4
    assert sum(i["alert_count"] for i in found) == 60  # every repeat counted on its incident
    status, answer = sandbox.emulator("POST", "/_sandbox/storm", {"count": 0})
    assert status == 400 and answer["field"] == "count"


def _events(url: str) -> Any:
    """Yield the data of each `change` event of the stream at `url`."""
    with urllib.request.urlopen(url, timeout=10) as stream:
        event = None
        for raw in stream:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[len("event: ") :]
            elif line.startswith("data: ") and event == "change":
                yield json.loads(line[len("data: ") :])


def test_the_live_stream_announces_web_api_calls(sandbox: Sandbox) -> None:
    events = _events(f"{sandbox.emulator_url}/_emulator/events")
    first = next(events)
    assert first["calls"] == 0
    sandbox.emulator("POST", "/_sandbox/alerts", {"sample": "generic"})
    later = next(events)
    while later["calls"] == 0:
        later = next(events)
    assert later["revision"] > first["revision"]
    status, calls = sandbox.emulator("GET", "/_emulator/calls")
    assert status == 200 and len(calls["calls"]) >= later["calls"] > 0


def test_an_open_modal_is_in_the_state_on_top_of_the_users_stack(sandbox: Sandbox) -> None:
    status, answer = sandbox.emulator(
        "POST",
        "/_emulator/command",
        {"user": "U0BOB0001", "channel": "C0INCIDENT", "command": "/incident", "text": "declare"},
    )
    assert status == 200 and answer["status"] == 200
    state = wait_for(lambda: (s := sandbox.state())["modal_stacks"] and s, what="the modal")
    [view_id] = state["modal_stacks"]["U0BOB0001"]
    assert state["views"][view_id]["callback_id"] == "incident_declare"


def test_the_page_and_its_files_are_served(sandbox: Sandbox) -> None:
    with urllib.request.urlopen(f"{sandbox.emulator_url}/", timeout=10) as page:
        assert page.headers["Content-Type"].startswith("text/html")
        html = page.read().decode()
    assert "/_emulator/ui/app.js" in html
    kinds = {".js": "text/javascript", ".css": "text/css", ".html": "text/html"}
    shipped = sorted((ROOT / "bot" / "sandbox" / "emulator" / "static").iterdir())
    assert len(shipped) > 3
    for path in shipped:  # every file the page is made of is served, with its type
        with urllib.request.urlopen(f"{sandbox.emulator_url}/_emulator/ui/{path.name}") as asset:
            assert asset.headers["Content-Type"].startswith(kinds[path.suffix]), path.name
            assert asset.read() == path.read_bytes()
    status, _ = sandbox.emulator("GET", "/_emulator/ui/..%2Fserver.py")
    assert status == 404


def test_seed_history_fills_an_empty_database_once(tmp_path: Path) -> None:
    with running_sandbox(tmp_path, "--seed-history", "3") as sandbox:
        line = next(x for x in sandbox.banner.splitlines() if x.startswith("History:"))
        seeded = int(line.split()[1])
        assert seeded > 5, line
        past = incidents(sandbox)
        assert len(past) == seeded and {i["status"] for i in past} == {"resolved"}
        archived = [c for c in sandbox.state()["channels"] if c["is_archived"]]
        assert sorted(c["id"] for c in archived) == sorted(i["slack"]["channel_id"] for i in past)
        messages = sandbox.state()["messages"]
        assert all(len(messages[c["id"]]) == 1 for c in archived)  # not empty: how it ended
        since = (datetime.now(UTC) - timedelta(weeks=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
        stats = sandbox.api(f"/api/v1/stats?since={since}")["overall"]
        assert stats["resolved"] == seeded and stats["mtta_seconds"]["count"] == seeded
        detail = sandbox.api(f"/api/v1/incidents/{past[0]['id']}")
        assert [e["kind"] for e in detail["timeline"]] == ["triggered", "acknowledged", "resolved"]
        assert all(e["text"] for e in detail["timeline"]), detail["timeline"]
    with running_sandbox(tmp_path, "--seed-history") as again:
        assert "already holds incidents; not seeding" in again.banner
        assert len(incidents(again)) == seeded


async def test_uploaded_files_can_be_fetched_back(emulator: Emulator) -> None:
    client = AsyncWebClient(token=emulator.bot_token, base_url=emulator.api_url)
    png = b"\x89PNG\r\n\x1a\n" + b"chart" * 10
    await client.files_upload_v2(
        channel="C0INCIDENT", content=png, filename="weekly.png", title="Weekly"
    )
    [message] = emulator.messages("C0INCIDENT")
    file_id = message["files"][0]["id"]
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{emulator.base_url}_emulator/files/{file_id}") as response,
    ):
        assert response.content_type == "image/png"
        assert await response.read() == png
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{emulator.base_url}_emulator/files/F0NOPE") as response,
    ):
        assert response.status == 404
