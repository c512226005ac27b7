"""The emulator's users.lookupByEmail behaves as Slack's: the users:read.email scope, any-case
match, users_not_found for strangers and bots, deactivated members found with deleted=true."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.sandbox.emulator import DEFAULT_SCOPES, Emulator, EmulatorUser

USERS = [
    EmulatorUser(id="U0ALICE01", name="alice", email="alice@example.com"),
    EmulatorUser(id="U0GONE001", name="gone", email="gone@example.com", deleted=True),
    EmulatorUser(id="U0BOTUSR1", name="bot", email="bot@example.com", is_bot=True),
]


async def started(**options: object) -> Emulator:
    emu = Emulator(bot_token="xoxb-test", users=USERS, **options)  # type: ignore[arg-type]
    await emu.start(host="127.0.0.1", port=0)
    return emu


@pytest.fixture
async def client() -> AsyncIterator[AsyncWebClient]:
    emu = await started()
    try:
        yield AsyncWebClient(token="xoxb-test", base_url=emu.api_url, retry_handlers=[])
    finally:
        await emu.stop()


async def error_of(call: object) -> str:
    with pytest.raises(SlackApiError) as info:
        await call  # type: ignore[misc]
    return str(info.value.response["error"])


async def test_found_in_any_case_and_deactivated_members_say_so(client: AsyncWebClient) -> None:
    found = await client.users_lookupByEmail(email="ALICE@Example.com")
    assert found["user"]["id"] == "U0ALICE01"
    assert found["user"]["profile"]["email"] == "alice@example.com"
    gone = await client.users_lookupByEmail(email="gone@example.com")
    assert gone["user"]["deleted"] is True


async def test_strangers_bots_and_a_missing_email_are_errors(client: AsyncWebClient) -> None:
    assert await error_of(client.users_lookupByEmail(email="nobody@example.com")) == (
        "users_not_found"
    )
    assert await error_of(client.users_lookupByEmail(email="bot@example.com")) == (
        "users_not_found"
    )
    assert await error_of(client.api_call("users.lookupByEmail", params={})) == (
        "invalid_arguments"
    )


async def test_it_needs_the_users_read_email_scope() -> None:
    emu = await started(scopes=[s for s in DEFAULT_SCOPES if s != "users:read.email"])
    try:
        client = AsyncWebClient(token="xoxb-test", base_url=emu.api_url, retry_handlers=[])
        with pytest.raises(SlackApiError) as info:
            await client.users_lookupByEmail(email="alice@example.com")
        assert info.value.response["error"] == "missing_scope"
        assert info.value.response["needed"] == "users:read.email"
    finally:
        await emu.stop()
