"""The emulator's message metadata, conversations.history and channel lookups behave as Slack's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.sandbox.emulator import BOT_USER_ID, Emulator
from tests.emulator.test_emulator import INCIDENTS, StepClock, make_emulator, slack_error

pytestmark = pytest.mark.asyncio

MARK = {"event_type": "pulseops_delivery", "event_payload": {"outbox_id": 7, "step": "message"}}


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    emulator = make_emulator(StepClock())
    await emulator.start()
    yield emulator
    await emulator.stop()


@pytest.fixture
def client(emu: Emulator) -> AsyncWebClient:
    return AsyncWebClient(token="xoxb-test", base_url=emu.api_url, retry_handlers=[])


async def post(client: AsyncWebClient, text: str, **extra: Any) -> str:
    return str((await client.chat_postMessage(channel=INCIDENTS, text=text, **extra))["ts"])


async def test_metadata_is_kept_and_shown_only_when_asked_for(client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(channel=INCIDENTS, text="one", metadata=MARK)
    assert posted["message"]["metadata"] == MARK
    plain = await client.conversations_history(channel=INCIDENTS)
    assert "metadata" not in plain["messages"][0]
    full = await client.conversations_history(channel=INCIDENTS, include_all_metadata=True)
    assert full["messages"][0]["metadata"] == MARK
    # chat.update without metadata keeps it; with metadata replaces it
    ts = posted["ts"]
    await client.chat_update(channel=INCIDENTS, ts=ts, text="edited")
    full = await client.conversations_history(channel=INCIDENTS, include_all_metadata=True)
    assert full["messages"][0]["metadata"] == MARK and full["messages"][0]["text"] == "edited"


@pytest.mark.parametrize(
    "metadata",
    [{"event_type": "x"}, {"event_payload": {}}, {"event_type": "", "event_payload": {}}, "[]"],
)
async def test_malformed_metadata_posts_nothing(
    emu: Emulator, client: AsyncWebClient, metadata: Any
) -> None:
    error = await slack_error(
        client.api_call(
            "chat.postMessage", json={"channel": INCIDENTS, "text": "x", "metadata": metadata}
        )
    )
    assert error["error"] == "invalid_metadata_format"
    assert emu.messages(INCIDENTS) == []


async def test_history_is_newest_first_in_pages_within_exclusive_bounds(
    client: AsyncWebClient,
) -> None:
    stamps = [await post(client, f"m{i}") for i in range(5)]
    first = await client.conversations_history(channel=INCIDENTS, limit=2)
    assert [m["text"] for m in first["messages"]] == ["m4", "m3"] and first["has_more"]
    cursor = first["response_metadata"]["next_cursor"]
    second = await client.conversations_history(channel=INCIDENTS, limit=2, cursor=cursor)
    assert [m["text"] for m in second["messages"]] == ["m2", "m1"]
    between = await client.conversations_history(
        channel=INCIDENTS, oldest=stamps[1], latest=stamps[3]
    )
    assert [m["text"] for m in between["messages"]] == ["m2"]
    inclusive = await client.conversations_history(
        channel=INCIDENTS, oldest=stamps[1], latest=stamps[3], inclusive=True
    )
    assert [m["text"] for m in inclusive["messages"]] == ["m3", "m2", "m1"]
    bad = await slack_error(client.conversations_history(channel=INCIDENTS, oldest="soon"))
    assert bad["error"] == "invalid_ts_oldest"


async def test_history_needs_membership_even_in_a_public_channel(
    emu: Emulator, client: AsyncWebClient
) -> None:
    emu.channels[INCIDENTS].members.discard(BOT_USER_ID)
    await post(client, "posted with chat:write.public")
    error = await slack_error(client.conversations_history(channel=INCIDENTS))
    assert error["error"] == "not_in_channel"


async def test_channels_list_names_their_creator(emu: Emulator, client: AsyncWebClient) -> None:
    created = await client.conversations_create(name="inc-1-db")
    await client.conversations_archive(channel=created["channel"]["id"])
    await client.conversations_create(name="inc-2-db")
    listed = await client.conversations_list(exclude_archived=True, limit=1000)
    by_name = {c["name"]: c for c in listed["channels"]}
    assert "inc-1-db" not in by_name
    assert by_name["inc-2-db"]["creator"] == BOT_USER_ID
    assert by_name["incidents"]["creator"] != BOT_USER_ID
