"""Silences from Slack: `/incident silence` and "Silence…" open the modal (pre-filled from the
incident's alerts), its submission creates the silence or names the bad field, `/incident
silences` lists them with Expire, App Home shows them; `permissions.silence` applies."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from bot.clock import ManualClock
from bot.config import PulseOpsConfig, parse_config
from bot.sandbox.emulator import Emulator
from tests.conftest import CONFIG_YAML, Harness, alertmanager_payload, emulated
from tests.helpers import all_text, fire, reply_text

ALICE, BOB, CAROL = "U0ALICE01", "U0BOB0001", "U0CAROL01"

pytestmark = pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


@pytest.fixture
def config() -> PulseOpsConfig:
    return parse_config(
        CONFIG_YAML + "permissions:\n  silence: [{team_members: true}]\n", environ={}
    )


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with emulated() as emu:
        yield emu


async def opened_view(harness: Harness, user: str, count: int) -> tuple[str, dict[str, Any]]:
    """The `count`-th modal opened (1-based) and its id, once views.open was called."""
    for _ in range(100):
        calls = [c for c in harness.emu.calls_to("views.open") if c["response"].get("ok")]
        if len(calls) >= count:
            view = calls[count - 1]["response"]["view"]
            return view["id"], view
        await asyncio.sleep(0.02)
    raise AssertionError("no modal was opened")


async def silences(harness: Harness) -> list[dict[str, Any]]:
    status, body = await harness.get("/api/v1/silences")
    assert status == 200
    return body["silences"]  # type: ignore[no-any-return]


def matchers_of(view: dict[str, Any]) -> str:
    (block,) = [b for b in view["blocks"] if b.get("block_id") == "silence_matchers"]
    return str(block["element"].get("initial_value", ""))


async def test_silence_command_modal_creates_a_silence_that_mutes(
    harness: Harness, clock: ManualClock
) -> None:
    result = await harness.emu.command(
        user=ALICE, channel="C0PAYMENTS", command="/incident", text='silence service="payment-api"'
    )
    assert result["status"] == 200
    view_id, view = await opened_view(harness, ALICE, 1)
    assert view["callback_id"] == "silence_create"
    assert matchers_of(view) == 'service="payment-api"'

    # bad input keeps the form open, names the field and creates nothing
    bad: list[tuple[dict[str, Any], str]] = [
        ({"silence_matchers": {"matchers": 'env="prod"\nnot a matcher'}}, "silence_matchers"),
        ({"silence_matchers": {"matchers": 'env=~".*"'}}, "silence_matchers"),
        ({"silence_duration": {"duration": "soon"}}, "silence_duration"),
        ({"silence_duration": {"duration": ""}}, "silence_duration"),
        (
            {
                "silence_ends_at": {"ends_at": int((clock.now() + timedelta(hours=1)).timestamp())},
            },
            "silence_duration",
        ),
        (
            {
                "silence_duration": {"duration": None},
                "silence_ends_at": {"ends_at": int((clock.now() - timedelta(hours=1)).timestamp())},
            },
            "silence_duration",
        ),
    ]
    for values, block in bad:
        filled: dict[str, Any] = {
            "silence_duration": {"duration": "2h"},
            "silence_comment": {"comment": "deploy of payments"},
            **values,
        }
        filled = {k: {a: v for a, v in d.items() if v is not None} for k, d in filled.items()}
        refused = await harness.emu.submit_view(user=ALICE, view_id=view_id, values=filled)
        assert refused["body"]["response_action"] == "errors", values
        assert block in refused["body"]["errors"], (values, refused["body"])
        assert await silences(harness) == []

    done = await harness.emu.submit_view(
        user=ALICE,
        view_id=view_id,
        values={
            "silence_duration": {"duration": "2h"},
            "silence_comment": {"comment": "deploy of <!channel> payments"},
        },
    )
    assert done["body"]["response_action"] == "update"
    assert "Silence #1" in all_text(done["view"])
    (created,) = await silences(harness)
    assert created["matchers"] == ['service="payment-api"']
    assert created["created_by"] == ALICE
    assert created["ends_at"].startswith((clock.now() + timedelta(hours=2)).strftime("%Y-%m-%dT%H"))

    posts = len(harness.emu.calls_to("chat.postMessage"))
    status, body = await harness.post_alert(alertmanager_payload())
    assert body["results"][0]["outcome"] == "muted"
    await harness.settle()
    assert len(harness.emu.calls_to("chat.postMessage")) == posts

    # listed with an Expire button; expiring opens the held alert's incident
    listed = await harness.emu.command(
        user=ALICE, channel="C0PAYMENTS", command="/incident", text="silences"
    )
    text = all_text(listed["body"])
    assert "silence_expire" in text and "holding 1 alert" in text
    assert "&lt;!channel&gt;" in text and "<!channel>" not in text
    # Home lists it and who made it
    await harness.emu.open_home(user=ALICE)
    for _ in range(100):
        home = harness.emu.home_views.get(ALICE)
        if home and "silence" in all_text(home).lower() and "#1" in all_text(home):
            break
        await asyncio.sleep(0.02)
    assert home is not None
    (section,) = [b for b in home["blocks"] if b.get("block_id") == "home_silences"]
    assert '*#1* `service="payment-api"`' in section["text"]["text"]
    assert f"by <@{ALICE}>: deploy of &lt;!channel&gt; payments" in section["text"]["text"]
    assert "holding 1 alert" in section["text"]["text"]

    ephemeral = [e for e in harness.emu.ephemerals if e["user"] == ALICE][-1]
    clicked = await harness.emu.click(
        user=ALICE, channel="C0PAYMENTS", ts=ephemeral["ts"], action_id="silence_expire_1"
    )
    assert clicked["status"] == 200
    for _ in range(100):
        if (await silences(harness)) == []:
            break
        await asyncio.sleep(0.02)
    assert await silences(harness) == []
    assert await harness.deps.silences.sweep() == 1
    await harness.settle()
    _, listing = await harness.get("/api/v1/incidents")
    assert listing["total"] == 1


async def test_silence_button_prefills_from_the_incident_alerts(
    harness: Harness, clock: ManualClock
) -> None:
    incident_id = await fire(harness)
    incident = await harness.incident(incident_id)
    clicked = await harness.emu.click(
        user=BOB,
        channel=incident["slack"]["channel_id"],
        ts=incident["slack"]["message_ts"],
        action_id="incident_silence",
    )
    assert clicked["status"] == 200
    view_id, view = await opened_view(harness, BOB, 1)
    assert matchers_of(view).splitlines() == [
        'alertname="HighErrorRate"',
        'instance="web-1:9100"',
        'service="payment-api"',
    ]
    done = await harness.emu.submit_view(
        user=BOB,
        view_id=view_id,
        values={"silence_duration": {"duration": "1h"}, "silence_comment": {"comment": "noisy"}},
    )
    assert done["body"]["response_action"] == "update", done["body"]
    (created,) = await silences(harness)
    assert created["matchers"] == matchers_of(view).splitlines()
    # once the incident is resolved, the same alert firing again is muted
    await harness.call("PATCH", f"/api/v1/incidents/{incident_id}", {"status": "resolved"})
    _, body = await harness.post_alert(alertmanager_payload())
    assert body["results"][0]["outcome"] == "muted"


async def test_permissions_apply_to_creating_and_expiring(
    harness: Harness, clock: ManualClock
) -> None:
    await harness.emu.command(
        user=CAROL, channel="C0SEARCH1", command="/incident", text='silence service="payment-api"'
    )
    view_id, _ = await opened_view(harness, CAROL, 1)
    refused = await harness.emu.submit_view(
        user=CAROL,
        view_id=view_id,
        values={"silence_duration": {"duration": "1h"}, "silence_comment": {"comment": "x"}},
    )
    assert refused["body"]["response_action"] == "errors"
    assert "You may not silence this" in refused["body"]["errors"]["silence_matchers"]
    assert await silences(harness) == []

    status, made = await harness.call(
        "POST",
        "/api/v1/silences",
        {
            "matchers": ['service="payment-api"'],
            "ends_at": (clock.now() + timedelta(hours=1)).isoformat(),
            "comment": "from the API (tokens are not Slack users)",
        },
    )
    assert status == 201
    listed = await harness.emu.command(
        user=CAROL, channel="C0SEARCH1", command="/incident", text="silences"
    )
    assert "silence_expire" in all_text(listed["body"])
    ephemeral = [e for e in harness.emu.ephemerals if e["user"] == CAROL][-1]
    await harness.emu.click(
        user=CAROL,
        channel="C0SEARCH1",
        ts=ephemeral["ts"],
        action_id=f"silence_expire_{made['id']}",
    )
    for _ in range(100):
        notes = [e for e in harness.emu.ephemerals if e["user"] == CAROL]
        if len(notes) > 1:
            break
        await asyncio.sleep(0.02)
    assert "You may not silence this" in notes[-1]["text"]
    assert [s["id"] for s in await silences(harness)] == [made["id"]]
    # a payments team member may
    listed = await harness.emu.command(
        user=ALICE, channel="C0PAYMENTS", command="/incident", text="silences"
    )
    ephemeral = [e for e in harness.emu.ephemerals if e["user"] == ALICE][-1]
    await harness.emu.click(
        user=ALICE,
        channel="C0PAYMENTS",
        ts=ephemeral["ts"],
        action_id=f"silence_expire_{made['id']}",
    )
    for _ in range(100):
        if not await silences(harness):
            break
        await asyncio.sleep(0.02)
    assert await silences(harness) == []


async def test_several_silences_each_have_their_own_expire_button(
    harness: Harness, clock: ManualClock
) -> None:
    made = []
    for service in ("payment-api", "search-api"):
        status, silence = await harness.call(
            "POST",
            "/api/v1/silences",
            {
                "matchers": [f'service="{service}"'],
                "ends_at": (clock.now() + timedelta(hours=1)).isoformat(),
                "comment": "deploy",
            },
        )
        assert status == 201
        made.append(silence["id"])
    await harness.emu.command(
        user=ALICE, channel="C0PAYMENTS", command="/incident", text="silences"
    )
    ephemeral = [e for e in harness.emu.ephemerals if e["user"] == ALICE][-1]
    buttons = [
        b["accessory"]["action_id"] for b in ephemeral["blocks"] if "accessory" in b
    ]  # the emulator refused a message whose action ids repeat
    assert sorted(buttons) == sorted(f"silence_expire_{i}" for i in made)
    await harness.emu.click(
        user=ALICE, channel="C0PAYMENTS", ts=ephemeral["ts"], action_id=f"silence_expire_{made[0]}"
    )
    for _ in range(100):
        if len(await silences(harness)) == 1:
            break
        await asyncio.sleep(0.02)
    assert [s["id"] for s in await silences(harness)] == [made[1]]


async def test_help_and_empty_list(harness: Harness) -> None:
    listed = await harness.emu.command(
        user=ALICE, channel="C0PAYMENTS", command="/incident", text="silences"
    )
    assert "No silences are active" in all_text(listed["body"])
    helped = await harness.emu.command(
        user=ALICE, channel="C0PAYMENTS", command="/incident", text="help"
    )
    assert "/incident silence" in reply_text(helped)


async def test_matchers_typed_after_the_command_fill_the_form(harness: Harness) -> None:
    await harness.emu.command(
        user=ALICE,
        channel="C0PAYMENTS",
        command="/incident",
        text='silence __title__="disk full on db-1" env!=prod',
    )
    _, view = await opened_view(harness, ALICE, 1)
    assert matchers_of(view).splitlines() == ['__title__="disk full on db-1"', "env!=prod"]
