"""Typed `@name` and `#channel` reach the bot as Slack sends them: through a running PulseOps.

`/oncall` and `/incident` escape (manifest `should_escape: true`), so
`/oncall override @carol 4h` as typed in the page works; a command that does not escape gets
the words as typed. Messages always carry mention tokens, so `@pulseops` is an app mention.
"""

from __future__ import annotations

import pytest

from bot.config import PulseOpsConfig, parse_config
from bot.sandbox.emulator import Emulator
from bot.sandbox.emulator.mentions import escape_typed
from tests.conftest import CONFIG_YAML, Harness, emulated
from tests.helpers import PAYMENTS_WEEKLY

pytestmark = pytest.mark.asyncio
BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)

ALICE, CAROL = "U0ALICE01", "U0CAROL01"


@pytest.fixture
def config() -> PulseOpsConfig:
    return parse_config(CONFIG_YAML + PAYMENTS_WEEKLY, source="test.yml", environ={})


@BOTH
async def test_a_typed_mention_in_an_escaping_command_is_a_person(harness: Harness) -> None:
    result = await harness.emu.command(
        user=ALICE, channel="C0INCIDENT", command="/oncall", text="override @carol 4h"
    )
    assert result["payload"]["text"] == f"override <@{CAROL}|carol> 4h"
    body = result["body"]
    reply = body if isinstance(body, str) else body["text"]
    assert reply.startswith(f":white_check_mark: <@{CAROL}> is on call"), reply


async def test_command_text_is_escaped_only_where_the_manifest_says() -> None:
    async with emulated(usergroups=[("S0SRE0001", "sre")]) as emu:
        ws = emu.ws
        assert escape_typed(ws, "override @alice 4h", labels=True) == (
            "override <@U0ALICE01|alice> 4h"
        )
        assert escape_typed(ws, "@sre and #payments, @here.", labels=True) == (
            "<!subteam^S0SRE0001|@sre> and <#C0PAYMENTS|payments>, <!here>."
        )
        # unknown names, e-mail addresses and ready-made tokens stay as they are
        for text in ("@nobody", "mail alice@example.com", "<@U0BOB0001> #nowhere", "a&#35;b"):
            assert escape_typed(ws, text, labels=True) == text
        assert escape_typed(ws, "ping @alice.", labels=False) == "ping <@U0ALICE01>."


async def test_a_command_that_does_not_escape_gets_the_words_as_typed() -> None:
    async with emulated(escaped_commands=[]) as emu:
        # no bot listening: only the form the emulator would send matters here
        emu.request_url = "http://127.0.0.1:9/slack/events"
        result = await emu.command(
            user=ALICE, channel="C0INCIDENT", command="/incident", text="lead @alice"
        )
        assert result["payload"]["text"] == "lead @alice"
        escaping = await emu.command(
            user=ALICE, channel="C0INCIDENT", command="/oncall", text="override @alice 4h"
        )
        assert escaping["payload"]["text"] == "override @alice 4h"


async def test_a_message_mentioning_the_bot_is_an_app_mention(emulator: Emulator) -> None:
    emulator.request_url = "http://127.0.0.1:9/slack/events"
    await emulator.post_user_message(user=ALICE, channel="C0INCIDENT", text="hey @pulseops @bob")
    [message] = emulator.messages("C0INCIDENT")
    assert message["text"] == "hey <@U0PULSEBOT> <@U0BOB0001>"


async def test_typed_text_is_never_markup(emulator: Emulator) -> None:
    """What a person types in a client: `<`, `>` and `&` arrive escaped, mentions as tokens."""
    emulator.request_url = "http://127.0.0.1:9/slack/events"
    await emulator.post_user_message(
        user=ALICE, channel="C0INCIDENT", text="<!channel> R&D <b>@bob</b>", typed=True
    )
    [message] = emulator.messages("C0INCIDENT")
    assert message["text"] == "&lt;!channel&gt; R&amp;D &lt;b&gt;<@U0BOB0001>&lt;/b&gt;"
    result = await emulator.command(
        user=ALICE, channel="C0INCIDENT", command="/oncall", text="override @carol <4h>", typed=True
    )
    assert result["payload"]["text"] == "override <@U0CAROL01|carol> &lt;4h&gt;"
