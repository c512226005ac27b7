"""Bad input from Slack's side gets a 4xx naming the problem, or an ephemeral hint, never a 500;
the declare form writes before it answers, so a failed write is said, not lost; lists stay
small however long descriptions are.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any
from urllib.parse import urlencode

import pytest

from bot.domain import Severity
from bot.domain.records import Incident
from handlers import views
from store.session import Database
from store.slack_requests import SlackRequestRepository
from tests.conftest import API_TOKEN, Harness
from tests.helpers import dms, eventually, fire, reply_text
from tests.scenarios.slack_wire import FORM, signed_headers

pytestmark = pytest.mark.asyncio
BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)


async def post(harness: Harness, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    assert harness.http is not None
    async with harness.http.post(f"{harness.url}/slack/events", data=body, headers=headers) as r:
        raw = await r.read()
        try:
            return r.status, json.loads(raw) if raw else ""
        except ValueError:
            return r.status, raw.decode()


async def remembered(harness: Harness) -> int:
    async with harness.deps.db.read() as session:
        return await SlackRequestRepository(session).count()


# ---- the HTTP answer to requests Bolt cannot take ------------------------------------------


@pytest.mark.parametrize("timestamp", ["abc", "٣", "+1700000000", "1e9", "", "9" * 40])
async def test_a_timestamp_that_is_no_number_is_a_401_without_a_traceback(
    harness: Harness, caplog: pytest.LogCaptureFixture, timestamp: str
) -> None:
    body = urlencode({"command": "/incident", "text": "list", "user_id": "U0ALICE01"}).encode()
    headers = signed_headers(body, ts=timestamp)
    caplog.set_level(logging.INFO)
    status, answer = await post(harness, body, headers)
    assert status == 401, answer
    assert "X-Slack-Request-Timestamp" in answer["error"] and "error_id" not in answer
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert await remembered(harness) == 0


@pytest.mark.parametrize(
    ("body", "content_type", "field"),
    [
        (urlencode({"payload": "{not json"}).encode(), FORM, "payload"),
        (urlencode({"payload": "[1, 2]"}).encode(), FORM, "payload"),
        (urlencode({"payload": ""}).encode(), FORM, "payload"),
        (b"{not json", "application/json", "body"),
        (b'"a string"', "application/json", "body"),
        (b"[" * 100_000, "application/json", "body"),
    ],
    ids=[
        "payload-not-json",
        "payload-a-list",
        "payload-empty",
        "json-broken",
        "json-string",
        "deep",
    ],
)
async def test_a_signed_body_bolt_cannot_read_is_a_400_naming_the_field(
    harness: Harness, body: bytes, content_type: str, field: str
) -> None:
    status, answer = await post(harness, body, signed_headers(body, content_type=content_type))
    assert status == 400, answer
    assert field in answer["fields"], answer
    assert await remembered(harness) == 0


@pytest.mark.parametrize(
    "payload",
    [
        {"type": "block_actions", "user": {"id": "U0ALICE01"}, "actions": []},
        {"type": "block_actions", "user": {"id": "U0ALICE01"}, "actions": [{"value": "1"}]},
        {"type": "block_actions", "user": {"id": "U0ALICE01"}, "actions": "incident_ack"},
        {"type": "view_submission", "user": {"id": "U0ALICE01"}, "view": "callback_id"},
        {"type": "view_submission", "view": {"callback_id": "incident_declare"}},
        {"type": "event_callback", "event": "type", "event_id": "Ev1"},
        {"type": "event_callback", "event": {"type": "app_home_opened"}, "authorizations": [[]]},
    ],
    ids=[
        "no-actions",
        "action-without-id",
        "actions-a-string",
        "view-a-string",
        "view-without-type",
        "event-a-string",
        "authorization-a-list",
    ],
)
async def test_a_signed_payload_bolt_would_choke_on_is_a_400(
    harness: Harness, payload: dict[str, Any]
) -> None:
    body = urlencode({"payload": json.dumps(payload)}).encode()
    status, answer = await post(harness, body, signed_headers(body))
    assert status == 400, answer
    assert answer["fields"] == {"body": "unexpected shape"}, answer
    assert await remembered(harness) == 0


async def test_unsigned_or_mis_signed_requests_are_401_and_not_remembered(
    harness: Harness,
) -> None:
    body = urlencode({"payload": "{not json"}).encode()
    for headers in (
        {"Content-Type": FORM},
        {**signed_headers(body), "X-Slack-Signature": "v0=" + "0" * 64},
        signed_headers(body, ts=str(int(time.time()) - 600)),
    ):
        status, answer = await post(harness, body, headers)
        assert status == 401, answer
    status, _ = await post(harness, b"\xff\xfe not utf-8", signed_headers(b"x"))
    assert status == 401
    assert await remembered(harness) == 0


# ---- slash-command arguments -----------------------------------------------------------------


async def slash(harness: Harness, command: str, text: str, *, user: str = "U0ALICE01") -> str:
    result = await harness.emu.command(user=user, channel="C0INCIDENT", command=command, text=text)
    assert result["status"] == 200, result
    return reply_text(result)


async def test_other_scripts_digits_are_not_incident_numbers(harness: Harness) -> None:
    for n in range(3):
        await fire(harness, group_key=f"g{n}", fingerprint=f"f{n}")
    for text in ("ack ٣", "ack INC-٣", "resolve #３", "status ³"):
        reply = await slash(harness, "/incident", text)
        assert "is not an incident number" in reply and "`42`" in reply, (text, reply)
    assert (await harness.incident(3))["status"] == "triggered"
    assert "acknowledged INC-3" in await slash(harness, "/incident", "ack 3")


async def test_a_command_mentioning_payload_is_read_as_a_command(harness: Harness) -> None:
    # Bolt alone takes any form holding the text "payload" for an interaction (404)
    reply = await slash(harness, "/incident", "status payload")
    assert "`payload` is not an incident number" in reply, reply
    reply = await slash(harness, "/oncall", "payloads")
    assert "`payloads` is not a team or schedule" in reply, reply


async def test_stats_refuses_other_digits_and_escapes_what_it_quotes(harness: Harness) -> None:
    reply = await slash(harness, "/incident", "stats <!channel>")
    assert "<!channel>" not in reply and "&lt;!channel&gt;" in reply
    for period in ("٣d", "7٣d"):
        reply = await slash(harness, "/incident", f"stats {period}")
        assert "is not a period" in reply, reply


async def test_override_ids_and_durations_must_be_usable_numbers(harness: Harness) -> None:
    reply = await slash(harness, "/oncall", "override remove 99999999999999999999")
    assert "is not a number I can use" in reply, reply
    reply = await slash(harness, "/oncall", "override remove 0")
    assert "is not a number I can use" in reply, reply
    reply = await slash(harness, "/oncall", "override remove #2147483647")
    assert "no override #2147483647" in reply, reply
    for text in ("override remove ٣", "override remove ²"):
        reply = await slash(harness, "/oncall", text)
        assert "Which override?" in reply, (text, reply)
    reply = await slash(harness, "/oncall", "override <@U0CAROL01> ٤h")
    assert "invalid duration" in reply, reply
    reply = await slash(harness, "/oncall", "override <@U0CAROL01> until ١٨:00")
    assert "is not a time" in reply, reply


# ---- the declare form ----------------------------------------------------------------------


def submission(title: str, *, description: str = "", severity: str = "SEV2") -> dict[str, Any]:
    """A view_submission of the declare form as Slack sends it."""
    values: dict[str, Any] = {
        "declare_title": {"title": {"type": "plain_text_input", "value": title}},
        "declare_severity": {
            "severity": {
                "type": "static_select",
                "selected_option": {
                    "text": {"type": "plain_text", "text": severity},
                    "value": severity,
                },
            }
        },
        "declare_description": {"description": {"type": "plain_text_input", "value": description}},
    }
    return {
        "type": "view_submission",
        "team": {"id": "T0PULSEOPS", "domain": "pulseops"},
        "user": {"id": "U0CAROL01", "team_id": "T0PULSEOPS"},
        "api_app_id": "A0PULSEOPS",
        "trigger_id": f"{time.time()}.declare",
        "view": {
            "id": "V0DECLARE",
            "type": "modal",
            "callback_id": "incident_declare",
            "private_metadata": "C0INCIDENT",
            "state": {"values": values},
        },
    }


async def submit(harness: Harness, payload: dict[str, Any]) -> tuple[int, Any]:
    # json.dumps keeps lone surrogates and NUL as \\u escapes, as Slack's JSON would
    body = urlencode({"payload": json.dumps(payload)}).encode()
    return await post(harness, body, signed_headers(body))


@pytest.mark.parametrize(
    ("title", "description", "block", "says"),
    [
        ("x" * 201, "", "declare_title", "under 200 characters"),
        ("Checkout down", "y" * 2901, "declare_description", "under 2900 characters"),
        ("Checkout\u0000 down", "", "declare_title", "The title holds a character"),
        ("Checkout down", "broken \ud83d emoji", "declare_description", "The description holds"),
        ("Checkout \udfff", "", "declare_title", "The title holds"),
    ],
    ids=["long-title", "long-description", "nul-title", "surrogate-description", "low-surrogate"],
)
@BOTH
async def test_declare_refuses_what_cannot_be_stored_naming_the_field(
    harness: Harness, title: str, description: str, block: str, says: str
) -> None:
    status, answer = await submit(harness, submission(title, description=description))
    assert status == 200, answer
    assert answer["response_action"] == "errors", answer
    assert list(answer["errors"]) == [block] and says in answer["errors"][block], answer
    _, listing = await harness.get("/api/v1/incidents")
    assert listing["total"] == 0


async def test_the_form_inputs_allow_what_the_listener_accepts(harness: Harness) -> None:
    modal = harness.deps.renderer.declare_modal(services=[])
    limits = {b["block_id"]: b["element"].get("max_length") for b in modal["blocks"]}
    assert limits["declare_title"] == views.MAX_TITLE
    assert limits["declare_description"] == views.MAX_DESCRIPTION


async def open_form(harness: Harness) -> str:
    result = await harness.emu.command(
        user="U0CAROL01", channel="C0INCIDENT", command="/incident", text="declare"
    )
    assert result["status"] == 200, result
    await eventually(lambda: any(v.get("open") for v in harness.emu.views.values()))
    return next(view_id for view_id, v in harness.emu.views.items() if v.get("open"))


FILLED = {
    "declare_title": {"title": "Search results empty"},
    "declare_severity": {"severity": "SEV2"},
    "declare_description": {"description": "Users see no results"},
}


@BOTH
async def test_a_failed_write_keeps_the_form_open_with_the_error_under_the_title(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    view_id = await open_form(harness)
    incidents = harness.deps.incidents
    working = incidents.db
    broken = Database("postgresql+asyncpg://postgres@127.0.0.1:1/none")
    object.__setattr__(incidents, "db", broken)
    try:
        result = await harness.emu.submit_view(user="U0CAROL01", view_id=view_id, values=FILLED)
    finally:
        object.__setattr__(incidents, "db", working)
        await broken.dispose()
    assert result["status"] == 200 and result["response_action"] == "errors", result
    (error,) = result["errors"].values()
    assert "Nothing was declared" in error and list(result["errors"]) == ["declare_title"]
    error_id = error.split("error id ")[1].split()[0]
    assert any(getattr(r, "error_id", None) == error_id for r in caplog.records)
    _, listing = await harness.get("/api/v1/incidents")
    assert listing["total"] == 0
    # the form is still open with what was typed: submitting again declares it
    assert harness.emu.views[view_id]["open"]
    result = await harness.emu.submit_view(user="U0CAROL01", view_id=view_id, values=FILLED)
    assert result["status"] == 200 and result["response_action"] is None, result
    _, listing = await harness.get("/api/v1/incidents")
    assert listing["total"] == 1


@pytest.mark.parametrize("outcome", ["fails", "succeeds"])
async def test_a_write_slower_than_slack_waits_closes_the_form_and_says_how_it_ended(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, outcome: str
) -> None:
    monkeypatch.setattr(views, "ANSWER_WITHIN", 0.1)
    declare = harness.deps.incidents.declare

    async def slow_declare(**kwargs: Any) -> Incident:
        await asyncio.sleep(0.4)
        if outcome == "fails":
            raise ConnectionError("database went away")
        return await declare(**kwargs)

    monkeypatch.setattr(harness.deps.incidents, "declare", slow_declare)
    view_id = await open_form(harness)
    result = await harness.emu.submit_view(user="U0CAROL01", view_id=view_id, values=FILLED)
    assert result["status"] == 200 and result["response_action"] is None, result
    assert not harness.emu.views[view_id]["open"]
    await eventually(lambda: bool(dms(harness, "U0CAROL01")))
    (dm,) = dms(harness, "U0CAROL01")
    _, listing = await harness.get("/api/v1/incidents")
    if outcome == "fails":
        assert "could not be saved" in dm["text"] and "error id" in dm["text"], dm
        assert listing["total"] == 0
    else:
        assert "declared as INC-1" in dm["text"], dm
        assert listing["total"] == 1


# ---- the list API --------------------------------------------------------------------------


@BOTH
async def test_a_list_page_stays_small_however_long_the_descriptions(harness: Harness) -> None:
    long = "é" * 200_000  # two bytes each in UTF-8: 400 kB per description
    for n in range(12):
        await harness.deps.incidents.declare(
            title=f"Big {n}", severity=Severity.SEV3, service_id=None, description=long, by="U0X"
        )
    await harness.deps.incidents.declare(
        title="Small", severity=Severity.SEV3, service_id=None, description="short", by="U0X"
    )
    assert harness.http is not None
    async with harness.http.get(
        f"{harness.url}/api/v1/incidents?limit=200",
        headers={"Authorization": f"Bearer {API_TOKEN}"},
    ) as r:
        assert r.status == 200
        raw = await r.read()
    assert len(raw) < 12 * 5_000 + 5_000, len(raw)  # was 12 × 1.2 MB (JSON-escaped)
    listing = json.loads(raw)
    small, *big = listing["incidents"]
    assert small["description"] == "short" and small["description_truncated"] is False
    for incident in big:
        assert incident["description"] == "é" * 500 and incident["description_truncated"]
    whole = await harness.incident(big[0]["id"])
    assert whole["description"] == long
