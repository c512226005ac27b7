"""Listeners called directly, as plain functions: fake ack/respond, the running app's real Deps.

No signed request and no Bolt dispatch: each test imports one listener, builds the context the
app's `provide_deps` middleware builds, and checks what the listener answered and what it
changed (the database through the API, Slack through the emulator).
"""

from __future__ import annotations

from typing import Any

import pytest
from slack_bolt.async_app import AsyncBoltContext

from handlers.actions import incident_button
from handlers.commands import incident_command
from handlers.middleware import deps_of, provide_deps
from handlers.oncall import oncall_command
from handlers.views import declare_submitted
from tests.conftest import Harness
from tests.helpers import fire

pytestmark = pytest.mark.asyncio


class Recorder:
    """A fake `ack` or `respond`: remembers the keyword arguments of every call."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    async def __call__(self, **kwargs: Any) -> None:
        self.calls.append(kwargs)


async def context_for(harness: Harness) -> AsyncBoltContext:
    """A Bolt context after the app's global middleware put the running app's Deps in it."""
    context = AsyncBoltContext()
    passed: list[bool] = []

    async def next_() -> None:
        passed.append(True)

    await provide_deps(harness.deps)(context, next_)
    assert passed == [True], "provide_deps must hand the request on"
    return context


def slash(text: str, *, user: str = "U0ALICE01", channel: str = "C0INCIDENT") -> dict[str, Any]:
    return {
        "command": "/incident",
        "text": text,
        "user_id": user,
        "channel_id": channel,
        "trigger_id": "no-such-trigger",
    }


def click(action_id: str, incident_id: int, *, user: str) -> dict[str, Any]:
    return {
        "type": "block_actions",
        "user": {"id": user},
        "actions": [{"action_id": action_id, "value": str(incident_id)}],
    }


async def test_a_context_without_deps_is_refused() -> None:
    with pytest.raises(RuntimeError, match="provide_deps"):
        deps_of(AsyncBoltContext())


async def test_incident_command_acknowledges_then_refuses(harness: Harness) -> None:
    incident_id = await fire(harness)
    context = await context_for(harness)
    ack, respond = Recorder(), Recorder()
    await incident_command(
        ack=ack,
        command=slash(f"ack {incident_id}", user="U0BOB0001"),
        respond=respond,
        context=context,
    )
    assert ack.calls == [{"text": f"You acknowledged INC-{incident_id}."}]
    assert respond.calls == []
    incident = await harness.incident(incident_id)
    assert incident["status"] == "acknowledged" and incident["acknowledged_by"] == "U0BOB0001"

    ack = Recorder()
    await incident_command(
        ack=ack, command=slash(f"ack INC-{incident_id}"), respond=respond, context=context
    )
    ((answer,),) = [list(c.values()) for c in ack.calls]
    assert answer.startswith(f":warning: INC-{incident_id} (")
    assert answer.endswith(
        "is already acknowledged by <@U0BOB0001>, so it cannot be acknowledged. Nothing changed."
    )
    assert (await harness.incident(incident_id))["timeline"] == incident["timeline"]


async def test_incident_command_outside_an_incident_channel_says_what_to_type(
    harness: Harness,
) -> None:
    ack, respond = Recorder(), Recorder()
    await incident_command(
        ack=ack, command=slash("status"), respond=respond, context=await context_for(harness)
    )
    assert ack.calls == [
        {
            "text": ":warning: This is not an incident channel: give the incident number, "
            "e.g. `/incident status 42`."
        }
    ]


async def test_declare_with_a_stale_trigger_explains_through_respond(harness: Harness) -> None:
    ack, respond = Recorder(), Recorder()
    await incident_command(
        ack=ack, command=slash("declare"), respond=respond, context=await context_for(harness)
    )
    assert ack.calls == [{}], "acknowledged at once, before Slack is asked for the modal"
    (opened,) = harness.emu.calls_to("views.open")
    assert opened["args"]["trigger_id"] == "no-such-trigger"
    assert opened["response"]["ok"] is False
    assert respond.calls == [
        {
            "text": ":warning: Could not open the form (Slack said `invalid_trigger_id`). "
            "Run `/incident declare` again.",
            "response_type": "ephemeral",
        }
    ]


async def test_declare_opens_the_modal_through_the_gateway(harness: Harness) -> None:
    command = slash("declare", user="U0CAROL01") | {
        "trigger_id": harness.emu.issue_trigger("U0CAROL01")
    }
    ack, respond = Recorder(), Recorder()
    await incident_command(
        ack=ack, command=command, respond=respond, context=await context_for(harness)
    )
    assert respond.calls == []
    (view,) = harness.emu.views.values()
    assert view["callback_id"] == "incident_declare"
    assert view["title"]["text"] == "Declare incident"
    labels = [b["label"]["text"] for b in view["blocks"]]
    assert labels == ["Title", "Severity", "Service", "Description"]


async def test_incident_button_resolves_then_answers_a_stale_click_alone(
    harness: Harness,
) -> None:
    incident_id = await fire(harness)
    context = await context_for(harness)
    ack, respond = Recorder(), Recorder()
    await incident_button(
        ack=ack,
        body=click("incident_resolve", incident_id, user="U0ALICE01"),
        respond=respond,
        context=context,
    )
    assert ack.calls == [{}]
    assert respond.calls == [], "success is shown by the updated message, not a reply"
    resolved = await harness.incident(incident_id)
    assert resolved["status"] == "resolved" and resolved["resolved_by"] == "U0ALICE01"

    ack = Recorder()
    await incident_button(
        ack=ack,
        body=click("incident_acknowledge", incident_id, user="U0BOB0001"),
        respond=respond,
        context=context,
    )
    assert ack.calls == [{}]
    (reply,) = respond.calls
    assert reply["response_type"] == "ephemeral" and reply["replace_original"] is False
    assert reply["text"].startswith(f":warning: INC-{incident_id} (")
    assert "is already resolved by <@U0ALICE01>, so it cannot be acknowledged." in reply["text"]
    assert (await harness.incident(incident_id))["timeline"] == resolved["timeline"]


async def test_declare_submission_with_a_blank_title_keeps_the_form_open(
    harness: Harness,
) -> None:
    ack = Recorder()
    view = {
        "state": {
            "values": {
                "declare_title": {"title": {"type": "plain_text_input", "value": "  "}},
                "declare_severity": {
                    "severity": {"type": "static_select", "selected_option": {"value": "SEV9"}}
                },
            }
        }
    }
    await declare_submitted(
        ack=ack, body={"user": {"id": "U0CAROL01"}}, view=view, context=await context_for(harness)
    )
    assert ack.calls == [
        {
            "response_action": "errors",
            "errors": {
                "declare_title": "Give the incident a title, e.g. “Checkout returns 500s”.",
                "declare_severity": "Pick a severity from SEV1 (worst) to SEV4.",
            },
        }
    ]
    _, listing = await harness.get("/api/v1/incidents")
    assert listing["total"] == 0


async def test_oncall_command_answers_bad_syntax_with_the_help(harness: Harness) -> None:
    ack = Recorder()
    command = {"command": "/oncall", "text": "override <#C0PAYMENTS|payments> 4h", "user_id": "U1"}
    await oncall_command(ack=ack, command=command, context=await context_for(harness))
    ((answer,),) = [list(c.values()) for c in ack.calls]
    assert answer.startswith(
        ":warning: `&lt;#C0PAYMENTS|payments&gt;` is not a person: mention them so Slack links "
        "the name, e.g. `/oncall override @alice 4h`.\n*Usage:* `/oncall [team or schedule]`"
    )
