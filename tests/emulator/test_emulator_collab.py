"""The emulator's rules for what running an incident uses: conversations.rename (name_taken,
names of archived channels), archive then is_archived, threads (conversations.replies),
chat.getPermalink, reactions with reaction_added, and message shortcuts."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.sandbox.emulator import Emulator, EmulatorError
from tests.emulator.test_emulator import (
    ALICE,
    BOB,
    INCIDENTS,
    PAYMENTS,
    FakeBot,
    StepClock,
    make_emulator,
    slack_error,
)


@pytest.fixture
def clock() -> StepClock:
    return StepClock()


@pytest.fixture
async def emu(clock: StepClock) -> AsyncIterator[Emulator]:
    emulator = make_emulator(clock)
    await emulator.start()
    yield emulator
    await emulator.stop()


@pytest.fixture
def client(emu: Emulator) -> AsyncWebClient:
    return AsyncWebClient(token="xoxb-test", base_url=emu.api_url, retry_handlers=[])


@pytest.fixture
async def bot(emu: Emulator, clock: StepClock) -> AsyncIterator[FakeBot]:
    fake = FakeBot(clock)
    emu.request_url = await fake.start()
    yield fake
    assert fake.runner is not None
    await fake.runner.cleanup()


async def test_rename_follows_slacks_rules(emu: Emulator, client: AsyncWebClient) -> None:
    one = (await client.conversations_create(name="inc-1-db"))["channel"]["id"]
    two = (await client.conversations_create(name="inc-2-web"))["channel"]["id"]
    for bad, error in [
        ("", "invalid_name_required"),
        ("Inc 1", "invalid_name_specials"),
        ("i" * 81, "invalid_name_maxlength"),
        ("inc-2-web", "name_taken"),
        ("incidents", "name_taken"),
    ]:
        answer = await slack_error(client.conversations_rename(channel=one, name=bad))
        assert answer["error"] == error, bad
    renamed = await client.conversations_rename(channel=one, name="inc-1-database-down")
    assert renamed["channel"]["name"] == "inc-1-database-down"
    assert emu.channels[one].name == "inc-1-database-down"
    # an archived channel keeps its name: taken for others, and it cannot be renamed itself
    await client.conversations_archive(channel=two)
    taken = await slack_error(client.conversations_rename(channel=one, name="inc-2-web"))
    assert taken["error"] == "name_taken"
    assert (await slack_error(client.conversations_rename(channel=two, name="x")))["error"] == (
        "is_archived"
    )
    assert (await slack_error(client.chat_postMessage(channel=two, text="hi")))["error"] == (
        "is_archived"
    )


async def test_threads_and_permalinks(emu: Emulator, client: AsyncWebClient) -> None:
    parent = await client.chat_postMessage(channel=INCIDENTS, text="parent")
    reply = await client.chat_postMessage(channel=INCIDENTS, text="reply", thread_ts=parent["ts"])
    other = await client.chat_postMessage(channel=INCIDENTS, text="top level")
    thread = await client.conversations_replies(channel=INCIDENTS, ts=parent["ts"])
    assert [m["text"] for m in thread["messages"]] == ["parent", "reply"]
    via_reply = await client.conversations_replies(
        channel=INCIDENTS, ts=reply["ts"], latest=reply["ts"], inclusive=True
    )
    assert via_reply["messages"][-1]["ts"] == reply["ts"]
    history = await client.conversations_history(channel=INCIDENTS)
    assert "reply" not in [m["text"] for m in history["messages"]]  # replies stay in threads
    assert {m["text"] for m in history["messages"]} >= {"parent", "top level"}
    missing = await slack_error(client.conversations_replies(channel=INCIDENTS, ts="1.000001"))
    assert missing["error"] == "thread_not_found"
    link = await client.chat_getPermalink(channel=INCIDENTS, message_ts=other["ts"])
    assert link["permalink"].endswith(f"/archives/{INCIDENTS}/p{other['ts'].replace('.', '')}")
    gone = await slack_error(client.chat_getPermalink(channel=INCIDENTS, message_ts="1.000002"))
    assert gone["error"] == "message_not_found"


async def test_reactions_send_reaction_added(
    emu: Emulator, client: AsyncWebClient, bot: FakeBot
) -> None:
    posted = await emu.post_user_message(user=ALICE, channel=INCIDENTS, text="root cause: dns")
    result = await emu.add_reaction(user=BOB, channel=INCIDENTS, ts=posted["ts"])
    assert result["delivered"] and result["status"] == 200
    kind, envelope, _ = bot.received[-1]
    assert kind == "event_callback"
    event = envelope["event"]
    assert event["type"] == "reaction_added" and event["reaction"] == "pushpin"
    assert event["user"] == BOB and event["item_user"] == ALICE
    assert event["item"] == {"type": "message", "channel": INCIDENTS, "ts": posted["ts"]}
    (message,) = [m for m in emu.messages(INCIDENTS) if m["ts"] == posted["ts"]]
    assert message["reactions"] == [{"name": "pushpin", "users": [BOB], "count": 1}]
    with pytest.raises(EmulatorError, match="already_reacted"):
        await emu.add_reaction(user=BOB, channel=INCIDENTS, ts=posted["ts"])
    with pytest.raises(EmulatorError):
        await emu.add_reaction(user=BOB, channel=INCIDENTS, ts="1.000003")


async def test_no_reaction_event_without_the_subscription(clock: StepClock) -> None:
    emu = make_emulator(clock, bot_events=["app_home_opened"])
    await emu.start()
    try:
        posted = await emu.post_user_message(user=ALICE, channel=PAYMENTS, text="x")
        result = await emu.add_reaction(user=ALICE, channel=PAYMENTS, ts=posted["ts"])
        assert result["delivered"] is False
    finally:
        await emu.stop()


async def test_message_shortcut_payload(emu: Emulator, bot: FakeBot) -> None:
    posted = await emu.post_user_message(user=ALICE, channel=INCIDENTS, text="deploy 42 broke it")
    result = await emu.message_shortcut(
        user=BOB, channel=INCIDENTS, ts=posted["ts"], callback_id="add_to_incident_timeline"
    )
    assert result["status"] == 200 and result["trigger_id"]
    kind, payload, _ = bot.received[-1]
    assert kind == "message_action"
    assert payload["callback_id"] == "add_to_incident_timeline"
    assert payload["channel"]["id"] == INCIDENTS and payload["user"]["id"] == BOB
    assert payload["message"]["text"] == "deploy 42 broke it"
    assert payload["message_ts"] == posted["ts"] and payload["response_url"]


async def test_unknown_shortcut_is_refused(clock: StepClock) -> None:
    emu = make_emulator(clock, shortcuts=["add_to_incident_timeline"])
    await emu.start()
    try:
        posted = await emu.post_user_message(user=ALICE, channel=INCIDENTS, text="x")
        with pytest.raises(EmulatorError, match="no message shortcut"):
            await emu.message_shortcut(
                user=ALICE, channel=INCIDENTS, ts=posted["ts"], callback_id="other"
            )
    finally:
        await emu.stop()
