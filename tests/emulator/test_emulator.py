"""The Slack emulator enforces Slack's rules and drives a bot with correctly signed requests."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import pytest
from aiohttp import web
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from bot.sandbox.emulator import Emulator, EmulatorError, EmulatorUser, rules

ALICE, BOB, CAROL = "U0ALICE01", "U0BOB0001", "U0CAROL01"
INCIDENTS, PAYMENTS = "C0INCIDENT", "C0PAYMENTS"
SECRET = "secret"


class StepClock:
    """A wall clock tests move by hand; also a slack_sdk signature Clock."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def make_emulator(clock: StepClock, channels: Any = None, **kwargs: Any) -> Emulator:
    return Emulator(
        bot_token="xoxb-test",
        signing_secret=SECRET,
        users=[
            EmulatorUser(id=ALICE, name="alice", real_name="Alice"),
            EmulatorUser(id=BOB, name="bob", real_name="Bob"),
            EmulatorUser(id=CAROL, name="carol", real_name="Carol"),
        ],
        channels=channels or [(INCIDENTS, "incidents"), (PAYMENTS, "payments", [ALICE])],
        clock=clock,
        **kwargs,
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


async def slack_error(call: Awaitable[Any]) -> dict[str, Any]:
    with pytest.raises(SlackApiError) as info:
        await call
    return dict(info.value.response.data)


BUTTONS = [
    {"type": "section", "block_id": "summary", "text": {"type": "mrkdwn", "text": "*DB down*"}},
    {
        "type": "actions",
        "block_id": "incident_actions",
        "elements": [
            {
                "type": "button",
                "action_id": "ack",
                "value": "inc-1",
                "style": "primary",
                "text": {"type": "plain_text", "text": "Acknowledge"},
            },
            {
                "type": "button",
                "action_id": "resolve",
                "value": "inc-1",
                "text": {"type": "plain_text", "text": "Resolve"},
            },
        ],
    },
]

MODAL = {
    "type": "modal",
    "callback_id": "declare",
    "title": {"type": "plain_text", "text": "Declare incident"},
    "submit": {"type": "plain_text", "text": "Declare"},
    "private_metadata": "meta",
    "blocks": [
        {
            "type": "input",
            "block_id": "title",
            "label": {"type": "plain_text", "text": "Title"},
            "element": {"type": "plain_text_input", "action_id": "value"},
        },
        {
            "type": "input",
            "block_id": "severity",
            "label": {"type": "plain_text", "text": "Severity"},
            "element": {
                "type": "static_select",
                "action_id": "value",
                "options": [
                    {"text": {"type": "plain_text", "text": "SEV1"}, "value": "sev1"},
                    {"text": {"type": "plain_text", "text": "SEV2"}, "value": "sev2"},
                ],
            },
        },
        {
            "type": "input",
            "block_id": "commander",
            "optional": True,
            "label": {"type": "plain_text", "text": "Commander"},
            "element": {"type": "users_select", "action_id": "value"},
        },
    ],
}


# -- pure rules ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("inc-42-db-down", None),
        ("", "invalid_name_required"),
        ("x" * 81, "invalid_name_maxlength"),
        ("Inc-42", "invalid_name_specials"),
        ("inc 42", "invalid_name_specials"),
        ("inc.42", "invalid_name_specials"),
        ("--_", "invalid_name_punctuation"),
    ],
)
def test_channel_name_rules(name: str, error: str | None) -> None:
    assert rules.validate_channel_name(name) == error


def _button(text: str = "Go", **extra: Any) -> dict[str, Any]:
    return {"type": "button", "text": {"type": "plain_text", "text": text}, **extra}


@pytest.mark.parametrize(
    ("blocks", "fragment"),
    [
        ([{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}], "151"),
        ([{"type": "section", "text": {"type": "mrkdwn", "text": "s" * 3001}}], "3001"),
        ([{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}], "10 items"),
        ([{"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2001}]}], "2001"),
        ([{"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 11}], "10 items"),
        (
            [{"type": "actions", "elements": [_button(action_id=f"a{i}") for i in range(26)]}],
            "25 items",
        ),
        ([{"type": "actions", "elements": [_button(action_id="a", value="v" * 2001)]}], "2001"),
        ([{"type": "actions", "elements": [_button(action_id="a" * 256)]}], "256"),
        ([{"type": "divider", "block_id": "b" * 256}], "256"),
        (
            [{"type": "divider", "block_id": "x"}, {"type": "divider", "block_id": "x"}],
            "not unique",
        ),
        ([{"type": "carousel_of_doom"}], "unknown block type"),
        (
            [{"type": "actions", "elements": [_button(action_id="a", disabled=True)]}],
            "additional property: disabled",
        ),
    ],
)
def test_block_kit_limits(blocks: list[dict[str, Any]], fragment: str) -> None:
    errors = rules.validate_blocks(blocks)
    assert errors and any(fragment in e for e in errors), errors


def test_views_allow_100_blocks_and_a_24_char_title() -> None:
    view = {**MODAL, "blocks": [{"type": "divider"}] * 100}
    assert rules.validate_view(view) == []
    assert rules.validate_view({**view, "blocks": [{"type": "divider"}] * 101})
    assert rules.validate_view({**MODAL, "title": {"type": "plain_text", "text": "t" * 25}})
    assert rules.validate_view({**MODAL, "submit": None})  # inputs need a submit button


# -- the Web API --------------------------------------------------------------------------


async def test_auth_unknown_method_and_scopes(emu: Emulator, client: AsyncWebClient) -> None:
    anonymous = AsyncWebClient(base_url=emu.api_url, retry_handlers=[])
    assert (await slack_error(anonymous.auth_test()))["error"] == "not_authed"
    wrong = AsyncWebClient(token="xoxb-wrong", base_url=emu.api_url, retry_handlers=[])
    assert (await slack_error(wrong.auth_test()))["error"] == "invalid_auth"
    assert (await client.auth_test())["user_id"] == "U0PULSEBOT"
    assert (await slack_error(client.api_call("chat.teleport")))["error"] == "unknown_method"
    emu.scopes = emu.scopes - {"usergroups:read"}  # as an app installed without it
    missing = await slack_error(client.usergroups_list())
    assert missing["error"] == "missing_scope" and missing["needed"] == "usergroups:read"
    assert "chat:write" in missing["provided"]


async def test_channel_names_and_archived_names_stay_taken(
    emu: Emulator, client: AsyncWebClient
) -> None:
    for bad, error in [
        ("", "invalid_name_required"),
        ("Inc 1", "invalid_name_specials"),
        ("i" * 81, "invalid_name_maxlength"),
        ("-_-", "invalid_name_punctuation"),
    ]:
        assert (await slack_error(client.conversations_create(name=bad)))["error"] == error
    created = await client.conversations_create(name="inc-1-db-down")
    channel = created["channel"]
    assert channel["id"].startswith("C") and len(channel["id"]) == 11 and channel["is_member"]
    assert emu.channels[channel["id"]].members == {"U0PULSEBOT"}
    assert (await client.conversations_archive(channel=channel["id"]))["ok"]
    assert (await slack_error(client.conversations_archive(channel=channel["id"])))["error"] == (
        "already_archived"
    )
    assert (await slack_error(client.conversations_create(name="inc-1-db-down")))["error"] == (
        "name_taken"
    )
    taken = await slack_error(client.conversations_create(name="incidents"))
    assert taken["error"] == "name_taken"
    archived = emu.channel_by_name("inc-1-db-down")
    assert archived is not None and archived.is_archived
    error = await slack_error(client.chat_postMessage(channel=channel["id"], text="hi"))
    assert error["error"] == "is_archived"


async def test_posting_needs_membership_or_chat_write_public(clock: StepClock) -> None:
    seeds = [(INCIDENTS, "incidents"), {"id": PAYMENTS, "name": "payments", "is_private": True}]
    emu = make_emulator(
        clock,
        channels=seeds,
        bot_channels_member=False,
        scopes=("chat:write", "channels:manage", "groups:write", "pins:write"),
    )
    await emu.start()
    try:
        client = AsyncWebClient(token="xoxb-test", base_url=emu.api_url, retry_handlers=[])
        error = await slack_error(client.chat_postMessage(channel=INCIDENTS, text="hello"))
        assert error["error"] == "not_in_channel"
        hidden = await slack_error(client.chat_postMessage(channel=PAYMENTS, text="x"))
        assert hidden["error"] == "channel_not_found"  # a private channel it is not in is hidden
        assert (await slack_error(client.chat_postMessage(channel="C0NOWHERE0", text="x")))[
            "error"
        ] == "channel_not_found"
        assert (await slack_error(client.conversations_setTopic(channel=INCIDENTS, topic="t")))[
            "error"
        ] == "not_in_channel"
        emu.scopes = emu.scopes | {"chat:write.public"}
        posted = await client.chat_postMessage(channel="#incidents", text="hello")
        assert posted["channel"] == INCIDENTS
        assert (await slack_error(client.pins_add(channel=INCIDENTS, timestamp=posted["ts"])))[
            "error"
        ] == "not_in_channel"
        assert emu.messages(PAYMENTS) == []
    finally:
        await emu.stop()


async def test_messages_update_pin_and_ephemeral(emu: Emulator, client: AsyncWebClient) -> None:
    with pytest.warns(UserWarning):  # slack_sdk warns too: always send a text
        assert (await slack_error(client.chat_postMessage(channel=INCIDENTS)))["error"] == "no_text"
    first = await client.chat_postMessage(channel=INCIDENTS, text="DB down", blocks=BUTTONS)
    second = await client.chat_postMessage(channel=INCIDENTS, text="thread", thread_ts=first["ts"])
    assert float(second["ts"]) > float(first["ts"]) and first["ts"].startswith("1700000000.")
    await client.chat_update(channel=INCIDENTS, ts=first["ts"], text="DB back", blocks=BUTTONS[:1])
    stored = emu.messages(INCIDENTS)
    assert [m["text"] for m in stored] == ["DB back", "thread"]
    assert stored[0]["blocks"] == BUTTONS[:1] and stored[0]["edited"]["user"] == "U0PULSEBOT"
    assert stored[1]["thread_ts"] == first["ts"] and stored[0]["bot_id"] == "B0PULSEBOT"
    assert (await slack_error(client.chat_update(channel=INCIDENTS, ts="1.000001", text="x")))[
        "error"
    ] == "message_not_found"
    await client.pins_add(channel=INCIDENTS, timestamp=first["ts"])
    assert (await slack_error(client.pins_add(channel=INCIDENTS, timestamp=first["ts"])))[
        "error"
    ] == "already_pinned"
    assert emu.messages(INCIDENTS)[0]["pinned"]
    error = await slack_error(client.chat_postEphemeral(channel=PAYMENTS, user=BOB, text="hi"))
    assert error["error"] == "user_not_in_channel"
    await client.chat_postEphemeral(channel=PAYMENTS, user=ALICE, text="only you")
    assert emu.ephemerals[-1]["user"] == ALICE and emu.ephemerals[-1]["channel"] == PAYMENTS
    assert emu.messages(PAYMENTS) == []
    topic = await slack_error(client.conversations_setTopic(channel=INCIDENTS, topic="t" * 251))
    assert topic["error"] == "too_long"
    dm = await client.conversations_open(users=ALICE)
    assert dm["channel"]["id"].startswith("D")
    assert (await client.conversations_open(users=ALICE))["channel"]["id"] == dm["channel"]["id"]
    to_user = await client.chat_postMessage(channel=ALICE, text="you are on call")
    assert to_user["channel"] == dm["channel"]["id"]
    # Only chat.post* take channel names; other methods need the id.
    by_name = await slack_error(client.conversations_setTopic(channel="#incidents", topic="t"))
    assert by_name["error"] == "channel_not_found"


async def test_cannot_update_a_message_posted_by_a_user(
    emu: Emulator, client: AsyncWebClient
) -> None:
    posted = await emu.post_user_message(user=ALICE, channel=INCIDENTS, text="is it down?")
    assert posted["delivered"] is False  # no request URL: stored, nothing sent
    error = await slack_error(client.chat_update(channel=INCIDENTS, ts=posted["ts"], text="no"))
    assert error["error"] == "cant_update_message"
    assert emu.messages(INCIDENTS)[0]["text"] == "is it down?"


async def test_invalid_blocks_are_refused_and_nothing_is_stored(
    emu: Emulator, client: AsyncWebClient
) -> None:
    many = [{"type": "divider"}] * 51
    long_label = [{"type": "actions", "elements": [_button("L" * 76, action_id="a")]}]
    duplicate = [
        {"type": "actions", "elements": [_button(action_id="ack")]},
        {"type": "actions", "elements": [_button(action_id="ack")]},
    ]
    for blocks, fragment in [(many, "50 items"), (long_label, "76"), (duplicate, "not unique")]:
        error = await slack_error(
            client.chat_postMessage(channel=INCIDENTS, text="x", blocks=blocks)
        )
        assert error["error"] == "invalid_blocks"
        assert any(fragment in e for e in error["errors"]), error["errors"]
    assert emu.messages(INCIDENTS) == []
    ok = await client.chat_postMessage(channel=INCIDENTS, text="fine", blocks=BUTTONS)
    error = await slack_error(
        client.chat_update(channel=INCIDENTS, ts=ok["ts"], text="x", blocks=many)
    )
    assert error["error"] == "invalid_blocks"
    assert emu.messages(INCIDENTS)[0]["text"] == "fine"
    assert [c["status"] for c in emu.calls_to("chat.postMessage")] == [200, 200, 200, 200]
    assert emu.calls_to("chat.postMessage")[0]["args"]["blocks"] == many  # JSON-decoded


async def test_invite_reports_each_user(emu: Emulator, client: AsyncWebClient) -> None:
    channel = (await client.conversations_create(name="inc-2"))["channel"]["id"]
    all_or_nothing = await slack_error(
        client.conversations_invite(channel=channel, users=[ALICE, "U0NOBODY1", "U0PULSEBOT"])
    )
    assert all_or_nothing["error"] == "user_not_found"
    assert {(e["user"], e["error"]) for e in all_or_nothing["errors"]} == {
        ("U0NOBODY1", "user_not_found"),
        ("U0PULSEBOT", "cant_invite_self"),
    }
    assert emu.channels[channel].members == {"U0PULSEBOT"}
    forced = await client.conversations_invite(
        channel=channel, users=[ALICE, BOB, "U0NOBODY1"], force=True
    )
    assert forced["ok"] and forced["errors"] == [
        {"user": "U0NOBODY1", "ok": False, "error": "user_not_found"}
    ]
    assert emu.channels[channel].members == {"U0PULSEBOT", ALICE, BOB}
    again = await slack_error(client.conversations_invite(channel=channel, users=ALICE))
    assert again["error"] == "already_in_channel"
    assert (await slack_error(client.conversations_invite(channel="C0NOWHERE0", users=ALICE)))[
        "error"
    ] == "channel_not_found"


async def test_members_pages_through_a_channel_and_needs_the_read_scope(
    emu: Emulator, client: AsyncWebClient
) -> None:
    channel = (await client.conversations_create(name="inc-3", is_private=True))["channel"]["id"]
    await client.conversations_invite(channel=channel, users=[ALICE, BOB, CAROL])
    first = await client.conversations_members(channel=channel, limit=3)
    assert len(first["members"]) == 3 and first["response_metadata"]["next_cursor"]
    rest = await client.conversations_members(
        channel=channel, cursor=first["response_metadata"]["next_cursor"]
    )
    assert rest["response_metadata"]["next_cursor"] == ""
    assert {*first["members"], *rest["members"]} == {"U0PULSEBOT", ALICE, BOB, CAROL}
    assert (await slack_error(client.conversations_members(channel=channel, cursor="x")))[
        "error"
    ] == "invalid_cursor"
    # private channels need groups:read, public ones channels:read
    emu.scopes = emu.scopes - {"groups:read"}
    refused = await slack_error(client.conversations_members(channel=channel))
    assert (refused["error"], refused["needed"]) == ("missing_scope", "groups:read")
    assert set((await client.conversations_members(channel=PAYMENTS))["members"]) >= {ALICE}
    emu.scopes = emu.scopes - {"channels:read"}
    assert (await slack_error(client.conversations_members(channel=PAYMENTS)))[
        "error"
    ] == "missing_scope"
    # a private channel the bot has left is invisible to it
    emu.scopes = emu.scopes | {"groups:read"}
    emu.channels[channel].members.discard("U0PULSEBOT")
    for ref in (channel, "C0NOWHERE0"):
        assert (await slack_error(client.conversations_members(channel=ref)))[
            "error"
        ] == "channel_not_found"


async def test_views_open_needs_a_fresh_unused_trigger(
    emu: Emulator, client: AsyncWebClient, clock: StepClock
) -> None:
    trigger = emu.issue_trigger(ALICE)
    opened = await client.views_open(trigger_id=trigger, view=MODAL)
    view = opened["view"]
    assert view["id"].startswith("V") and view["hash"] and view["callback_id"] == "declare"
    assert emu.views[view["id"]]["user"] == ALICE
    assert (await slack_error(client.views_open(trigger_id=trigger, view=MODAL)))["error"] == (
        "exchanged_trigger_id"
    )
    late = emu.issue_trigger(ALICE)
    clock.advance(3.5)
    assert (await slack_error(client.views_open(trigger_id=late, view=MODAL)))["error"] == (
        "expired_trigger_id"
    )
    assert (await slack_error(client.views_open(trigger_id="1.2.3", view=MODAL)))["error"] == (
        "invalid_trigger_id"
    )
    bad_title = {**MODAL, "title": {"type": "plain_text", "text": "x" * 25}}
    refused = await slack_error(
        client.views_open(trigger_id=emu.issue_trigger(ALICE), view=bad_title)
    )
    assert refused["error"] == "invalid_arguments" and refused["response_metadata"]["messages"]
    stale = await slack_error(client.views_update(view_id=view["id"], hash="0.stale", view=MODAL))
    assert stale["error"] == "hash_conflict"
    updated = await client.views_update(view_id=view["id"], hash=view["hash"], view=MODAL)
    assert updated["view"]["id"] == view["id"] and updated["view"]["hash"] != view["hash"]
    section = {"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}
    home = {"type": "home", "blocks": [section]}
    published = await client.views_publish(user_id=ALICE, view=home)
    assert emu.home_views[ALICE]["id"] == published["view"]["id"]
    assert (await slack_error(client.views_publish(user_id="U0NOBODY1", view=home)))["error"] == (
        "invalid_arguments"
    )


# -- rate limits and faults ---------------------------------------------------------------


async def test_rate_limit_answers_429_with_retry_after(
    emu: Emulator, client: AsyncWebClient, clock: StepClock
) -> None:
    emu.set_faults(rate_limits={"conversations.create": 2})
    await client.conversations_create(name="a-1")
    await client.conversations_create(name="a-2")
    with pytest.raises(SlackApiError) as info:
        await client.conversations_create(name="a-3")
    assert info.value.response.status_code == 429
    assert int(info.value.response.headers["Retry-After"]) >= 1
    assert info.value.response.data["error"] == "ratelimited"
    assert emu.channel_by_name("a-3") is None  # a 429 does not execute
    clock.advance(60)
    assert (await client.conversations_create(name="a-3"))["ok"]


async def test_tiers_and_post_message_burst(clock: StepClock) -> None:
    emu = make_emulator(clock, rate_limits=True)
    await emu.start()
    try:
        client = AsyncWebClient(token="xoxb-test", base_url=emu.api_url, retry_handlers=[])
        for _ in range(3):
            await client.chat_postMessage(channel=INCIDENTS, text="burst")
        with pytest.raises(SlackApiError) as info:
            await client.chat_postMessage(channel=INCIDENTS, text="too fast")
        assert info.value.response.status_code == 429
        await client.chat_postMessage(channel=PAYMENTS, text="other channel has its own budget")
        clock.advance(1.0)
        await client.chat_postMessage(channel=INCIDENTS, text="one per second")
        for i in range(20):
            await client.conversations_create(name=f"tier-2-{i}")
        with pytest.raises(SlackApiError) as info:
            await client.conversations_create(name="tier-2-x")
        assert info.value.response.headers["Retry-After"] == "60"
    finally:
        await emu.stop()


async def test_faults_outage_errors_and_hang(
    emu: Emulator, client: AsyncWebClient, clock: StepClock
) -> None:
    emu.set_faults(down_for=5)
    with pytest.raises(SlackApiError) as info:
        await client.chat_postMessage(channel=INCIDENTS, text="x")
    assert info.value.response.status_code == 503
    clock.advance(6)
    await client.chat_postMessage(channel=INCIDENTS, text="back")
    async with aiohttp.ClientSession() as http:
        async with http.post(
            emu.base_url + "_emulator/faults",
            json={"error_status": 500, "error_count": 2, "methods": ["chat.postMessage"]},
        ) as resp:
            assert (await resp.json())["faults"]["error_count"] == 2
    await client.auth_test()  # other methods are untouched
    statuses = []
    for _ in range(3):
        try:
            await client.chat_postMessage(channel=INCIDENTS, text="y")
            statuses.append(200)
        except SlackApiError as exc:
            statuses.append(exc.response.status_code)
    assert statuses == [500, 500, 200]
    assert [m["text"] for m in emu.messages(INCIDENTS)] == ["back", "y"]
    emu.set_faults(clear=True, hang_for=10)
    impatient = AsyncWebClient(
        token="xoxb-test", base_url=emu.api_url, timeout=0.3, retry_handlers=[]
    )
    started = time.monotonic()
    with pytest.raises((asyncio.TimeoutError, aiohttp.ClientError)):
        await impatient.chat_postMessage(channel=INCIDENTS, text="z")
    assert time.monotonic() - started < 2
    assert emu.calls[-1]["fault"] == "hang" and emu.calls[-1]["status"] is None  # unanswered


async def test_stop_releases_hanging_calls(clock: StepClock) -> None:
    emu = make_emulator(clock)
    await emu.start()
    emu.set_faults(hang_for=60)
    client = AsyncWebClient(token="xoxb-test", base_url=emu.api_url, timeout=5, retry_handlers=[])
    pending = asyncio.ensure_future(client.auth_test())
    await asyncio.sleep(0.1)
    started = time.monotonic()
    await emu.stop()
    assert time.monotonic() - started < 3
    with pytest.raises((SlackApiError, aiohttp.ClientError, asyncio.TimeoutError)):
        await pending


# -- driving a bot ------------------------------------------------------------------------


Responder = Callable[[str, Any], Awaitable[web.StreamResponse]]


class FakeBot:
    """A tiny app at /slack/events that verifies Slack signatures and records what it gets."""

    def __init__(self, clock: StepClock) -> None:
        self.verifier = SignatureVerifier(SECRET, clock=clock)  # type: ignore[arg-type]
        self.received: list[tuple[str, Any, dict[str, str]]] = []
        self.respond: Responder = self.empty
        self.runner: web.AppRunner | None = None

    @staticmethod
    async def empty(kind: str, payload: Any) -> web.StreamResponse:
        return web.Response(status=200)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        if not self.verifier.is_valid_request(raw, dict(request.headers)):
            return web.Response(status=401)
        if request.content_type == "application/json":
            payload = json.loads(raw)
            kind = payload["type"]
        else:
            form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
            if "payload" in form:
                payload = json.loads(form["payload"])
                kind = payload["type"]
            else:
                payload, kind = form, "command"
        self.received.append((kind, payload, dict(request.headers)))
        return await self.respond(kind, payload)

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/slack/events", self.handle)
        self.runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        return f"http://127.0.0.1:{self.runner.addresses[0][1]}/slack/events"


@pytest.fixture
async def bot(emu: Emulator, clock: StepClock) -> AsyncIterator[FakeBot]:
    fake = FakeBot(clock)
    emu.request_url = await fake.start()
    yield fake
    assert fake.runner is not None
    await fake.runner.cleanup()


async def test_click_sends_a_signed_block_actions_payload(
    emu: Emulator, client: AsyncWebClient, bot: FakeBot
) -> None:
    posted = await client.chat_postMessage(channel=INCIDENTS, text="DB down", blocks=BUTTONS)
    result = await emu.click(user=ALICE, channel=INCIDENTS, ts=posted["ts"], action_id="ack")
    assert result["status"] == 200
    kind, payload, headers = bot.received[-1]
    assert kind == "block_actions" and headers["X-Slack-Signature"].startswith("v0=")
    assert payload["user"]["id"] == ALICE and payload["team"]["id"] == "T0PULSEOPS"
    assert payload["container"] == {
        "type": "message",
        "message_ts": posted["ts"],
        "channel_id": INCIDENTS,
        "is_ephemeral": False,
    }
    assert payload["channel"] == {"id": INCIDENTS, "name": "incidents"}
    assert payload["message"]["blocks"] == BUTTONS and payload["message"]["bot_id"] == "B0PULSEBOT"
    action = payload["actions"][0]
    assert (action["action_id"], action["block_id"], action["value"]) == (
        "ack",
        "incident_actions",
        "inc-1",
    )
    assert action["text"]["text"] == "Acknowledge" and action["style"] == "primary"
    # The trigger opens a modal once; the response_url accepts five posts.
    opened = await client.views_open(trigger_id=payload["trigger_id"], view=MODAL)
    assert opened["ok"]
    async with aiohttp.ClientSession() as http:
        statuses = []
        for i in range(6):
            async with http.post(
                payload["response_url"], json={"text": f"noted {i}", "response_type": "ephemeral"}
            ) as r:
                statuses.append(r.status)
        assert statuses == [200] * 5 + [404]
        assert result["response_url"] == payload["response_url"]
        async with http.post(payload["response_url"], json={"text": "x"}) as r:
            assert (await r.json())["error"] == "used_url"
    assert [e["text"] for e in emu.ephemerals] == [f"noted {i}" for i in range(5)]
    assert emu.ephemerals[0]["user"] == ALICE and emu.ephemerals[0]["channel"] == INCIDENTS
    with pytest.raises(EmulatorError):
        await emu.click(user=ALICE, channel=INCIDENTS, ts=posted["ts"], action_id="nope")


async def test_response_url_replaces_and_posts_in_channel(
    emu: Emulator, client: AsyncWebClient, bot: FakeBot
) -> None:
    posted = await client.chat_postMessage(channel=INCIDENTS, text="DB down", blocks=BUTTONS)
    result = await emu.click(user=ALICE, channel=INCIDENTS, ts=posted["ts"], action_id="resolve")
    url = result["response_url"]
    async with aiohttp.ClientSession() as http:
        async with http.post(url, json={"replace_original": True, "text": "Resolved"}) as r:
            assert r.status == 200
        async with http.post(url, json={"response_type": "in_channel", "text": "All good"}) as r:
            assert r.status == 200
        async with http.post(url, json={"text": "x", "blocks": [{"type": "divider"}] * 51}) as r:
            assert (await r.json())["error"] == "invalid_blocks"
    assert [m["text"] for m in emu.messages(INCIDENTS)] == ["Resolved", "All good"]
    assert emu.calls_to("response_url")[0]["status"] == 200


async def test_command_and_immediate_answer(emu: Emulator, bot: FakeBot) -> None:
    async def answer(kind: str, payload: Any) -> web.StreamResponse:
        return web.json_response({"text": "3 open incidents"})

    bot.respond = answer
    result = await emu.command(user=BOB, channel=INCIDENTS, command="/incident", text="list")
    assert result["status"] == 200 and result["body"] == {"text": "3 open incidents"}
    kind, form, _ = bot.received[-1]
    assert kind == "command"
    assert {
        k: form[k]
        for k in (
            "command",
            "text",
            "user_id",
            "user_name",
            "channel_id",
            "channel_name",
            "team_id",
            "api_app_id",
        )
    } == {
        "command": "/incident",
        "text": "list",
        "user_id": BOB,
        "user_name": "bob",
        "channel_id": INCIDENTS,
        "channel_name": "incidents",
        "team_id": "T0PULSEOPS",
        "api_app_id": "A0PULSEOPS",
    }
    assert form["trigger_id"] == result["trigger_id"]
    assert form["response_url"].startswith(emu.base_url + "_emulator/response/")
    assert emu.ephemerals[-1] == {
        **emu.ephemerals[-1],
        "user": BOB,
        "channel": INCIDENTS,
        "text": "3 open incidents",
    }
    with pytest.raises(EmulatorError):
        await emu.command(user=BOB, channel="C0NOWHERE0", command="/incident")


async def test_submit_view_with_errors_then_close(
    emu: Emulator, client: AsyncWebClient, bot: FakeBot
) -> None:
    replies = [{"response_action": "errors", "errors": {"title": "Too short"}}, None]

    async def answer(kind: str, payload: Any) -> web.StreamResponse:
        reply = replies.pop(0)
        return web.json_response(reply) if reply else web.Response(status=200)

    view = (await client.views_open(trigger_id=emu.issue_trigger(ALICE), view=MODAL))["view"]
    with pytest.raises(EmulatorError):  # a select can only take one of its options
        await emu.submit_view(
            user=ALICE,
            view_id=view["id"],
            values={"title": {"value": "x"}, "severity": {"value": "sev9"}},
        )
    with pytest.raises(EmulatorError):  # required inputs must be filled
        await emu.submit_view(user=ALICE, view_id=view["id"], values={"title": {"value": "x"}})
    bot.respond = answer
    values = {
        "title": {"value": "DB"},
        "severity": {"value": "sev1"},
        "commander": {"value": CAROL},
    }
    first = await emu.submit_view(user=ALICE, view_id=view["id"], values=values)
    assert first["response_action"] == "errors" and first["errors"] == {"title": "Too short"}
    assert emu.views[view["id"]]["open"] and first["view"]["id"] == view["id"]
    kind, payload, _ = bot.received[-1]
    assert kind == "view_submission" and payload["view"]["callback_id"] == "declare"
    state = payload["view"]["state"]["values"]
    assert state["title"]["value"] == {"type": "plain_text_input", "value": "DB"}
    assert state["severity"]["value"]["selected_option"]["value"] == "sev1"
    assert state["commander"]["value"] == {"type": "users_select", "selected_user": CAROL}
    assert payload["view"]["private_metadata"] == "meta"
    second = await emu.submit_view(user=ALICE, view_id=view["id"], values=values)
    assert second["response_action"] is None and second["view"] is None
    assert not emu.views[view["id"]]["open"]


async def test_events_carry_unique_ids_and_retries(
    emu: Emulator, client: AsyncWebClient, bot: FakeBot
) -> None:
    home = await emu.open_home(user=ALICE)
    kind, envelope, _ = bot.received[-1]
    assert kind == "event_callback" and envelope["event"]["type"] == "app_home_opened"
    assert envelope["event"]["tab"] == "home" and envelope["event"]["user"] == ALICE
    said = await emu.post_user_message(
        user=BOB, channel=INCIDENTS, text="<@U0PULSEBOT> note: restarted the primary"
    )
    assert said["delivered"] and said["event_id"] != home["event_id"]
    events = [p["event"]["type"] for k, p, _ in bot.received if k == "event_callback"]
    assert events == ["app_home_opened", "message", "app_mention"]
    retry = await emu.redeliver_event(said["event_id"], retry_num=1)
    _, again, headers = bot.received[-1]
    assert again["event_id"] == said["event_id"] and headers["X-Slack-Retry-Num"] == "1"
    assert retry["status"] == 200


async def test_only_subscribed_events_are_delivered(emu: Emulator, bot: FakeBot) -> None:
    emu.driver.bot_events = frozenset({"app_home_opened"})  # as manifest.yml subscribes
    said = await emu.post_user_message(user=BOB, channel=INCIDENTS, text="<@U0PULSEBOT> hi")
    assert said["delivered"] is False and bot.received == []
    assert emu.messages(INCIDENTS)[-1]["text"] == "<@U0PULSEBOT> hi"  # posted all the same
    await emu.open_home(user=ALICE)
    assert [p["event"]["type"] for _, p, _ in bot.received] == ["app_home_opened"]
    emu.driver.bot_events = frozenset({"app_home_opened", "message.channels"})
    said = await emu.post_user_message(user=BOB, channel=INCIDENTS, text="<@U0PULSEBOT> hi")
    assert said["delivered"] and "app_mention" not in said
    assert [p["event"]["type"] for _, p, _ in bot.received][1:] == ["message"]


async def test_a_slow_bot_times_out_like_slack(emu: Emulator, bot: FakeBot) -> None:
    async def slow(kind: str, payload: Any) -> web.StreamResponse:
        await asyncio.sleep(1)
        return web.Response(status=200)

    emu.driver.ack_timeout = 0.2
    bot.respond = slow
    result = await emu.command(user=ALICE, channel=INCIDENTS, command="/incident")
    assert result["status"] == 0 and result["error"] == "operation_timeout"


# -- control routes -----------------------------------------------------------------------


async def test_control_routes(emu: Emulator, client: AsyncWebClient, bot: FakeBot) -> None:
    posted = await client.chat_postMessage(channel=INCIDENTS, text="DB down", blocks=BUTTONS)
    async with aiohttp.ClientSession(base_url=emu.base_url) as http:
        click = {"user": ALICE, "channel": INCIDENTS, "ts": posted["ts"], "action_id": "ack"}
        async with http.post("/_emulator/click", json=click) as r:
            assert r.status == 200 and (await r.json())["status"] == 200
        async with http.post("/_emulator/click", json={**click, "ts": "1.1"}) as r:
            assert r.status == 400
        async with http.get("/_emulator/state") as r:
            state = await r.json()
        incidents = next(c for c in state["channels"] if c["id"] == INCIDENTS)
        assert "U0PULSEBOT" in incidents["members"] and state["messages"][INCIDENTS][0]["text"] == (
            "DB down"
        )
        async with http.get("/_emulator/calls", params={"method": "chat.postMessage"}) as r:
            calls = (await r.json())["calls"]
            assert len(calls) == 1 and calls[0]["args"]["blocks"] == BUTTONS
        async with http.get(f"/_emulator/channels/{INCIDENTS}/messages") as r:
            assert (await r.json())["messages"][0]["ts"] == posted["ts"]
        async with http.post("/_emulator/reset") as r:
            assert r.status == 200
    assert emu.messages(INCIDENTS) == [] and emu.calls == [] and INCIDENTS in emu.channels


async def test_file_upload_flow(emu: Emulator, client: AsyncWebClient) -> None:
    uploaded = await client.files_upload_v2(
        channel=INCIDENTS,
        content=b"mtta,mttr\n1,2\n",
        filename="report.csv",
        title="Weekly report",
        initial_comment="Weekly report",
    )
    assert uploaded["file"]["title"] == "Weekly report"
    message = emu.messages(INCIDENTS)[-1]
    assert message["text"] == "Weekly report" and message["files"][0]["size"] == 14
    retired = await slack_error(client.api_call("files.upload", params={"channels": INCIDENTS}))
    assert retired["error"] == "method_deprecated"


async def test_latency_fault_delays_every_call(emu: Emulator, client: AsyncWebClient) -> None:
    emu.set_faults(latency_ms=60)
    started = time.monotonic()
    await client.auth_test()
    assert time.monotonic() - started >= 0.06
    assert emu.set_faults(clear=True)["latency_ms"] == 0


async def test_submission_can_push_update_and_clear(
    emu: Emulator, client: AsyncWebClient, bot: FakeBot
) -> None:
    step = {"type": "modal", "title": {"type": "plain_text", "text": "Step"}, "blocks": []}
    replies: list[dict[str, Any]] = [
        {"response_action": "push", "view": step},
        {
            "response_action": "update",
            "view": {**step, "title": {"type": "plain_text", "text": "Step 2"}},
        },
        {"response_action": "clear"},
    ]

    async def answer(kind: str, payload: Any) -> web.StreamResponse:
        return web.json_response(replies.pop(0))

    bot.respond = answer
    root = (await client.views_open(trigger_id=emu.issue_trigger(ALICE), view=MODAL))["view"]
    values = {"title": {"value": "DB"}, "severity": {"value": "sev2"}}
    pushed = await emu.submit_view(user=ALICE, view_id=root["id"], values=values)
    top = pushed["view"]
    assert top["id"] != root["id"] and top["root_view_id"] == root["id"]
    updated = await emu.submit_view(user=ALICE, view_id=top["id"])
    assert updated["view"]["id"] == top["id"] and updated["view"]["title"]["text"] == "Step 2"
    cleared = await emu.submit_view(user=ALICE, view_id=top["id"])
    assert cleared["view"] is None
    assert not emu.views[root["id"]]["open"] and not emu.views[top["id"]]["open"]


async def test_a_bolt_app_accepts_what_the_emulator_sends() -> None:
    from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
    from slack_bolt.async_app import AsyncApp

    emu = make_emulator(StepClock(), signing_clock=time.time)  # Bolt checks against real time
    await emu.start()
    client = AsyncWebClient(token="xoxb-test", base_url=emu.api_url, retry_handlers=[])
    app = AsyncApp(client=client, signing_secret=SECRET)
    seen: list[str] = []

    @app.action("ack")
    async def on_ack(ack: Any, body: dict[str, Any], respond: Any) -> None:
        await ack()
        await client.views_open(trigger_id=body["trigger_id"], view=MODAL)
        await respond(text="acknowledged")

    @app.command("/incident")
    async def on_command(ack: Any, command: dict[str, Any]) -> None:
        await ack(text=f"you asked for {command['text']}")

    @app.view("declare")
    async def on_submit(ack: Any, view: dict[str, Any]) -> None:
        seen.append(view["state"]["values"]["severity"]["value"]["selected_option"]["value"])
        await ack()

    async def events(request: web.Request) -> web.StreamResponse:
        return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

    web_app = web.Application()
    web_app.router.add_post("/slack/events", events)
    runner = web.AppRunner(web_app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    emu.request_url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    try:
        posted = await client.chat_postMessage(channel=INCIDENTS, text="DB down", blocks=BUTTONS)
        clicked = await emu.click(user=ALICE, channel=INCIDENTS, ts=posted["ts"], action_id="ack")
        assert clicked["status"] == 200
        for _ in range(50):  # respond() runs after the ack
            if emu.ephemerals:
                break
            await asyncio.sleep(0.02)
        assert emu.ephemerals[-1]["text"] == "acknowledged"
        modal = next(v for v in emu.views.values() if v["open"])
        submitted = await emu.submit_view(
            user=ALICE,
            view_id=modal["id"],
            values={"title": {"value": "DB"}, "severity": {"value": "sev1"}},
        )
        assert submitted["status"] == 200 and submitted["view"] is None and seen == ["sev1"]
        await emu.command(user=ALICE, channel=INCIDENTS, command="/incident", text="list")
        assert emu.ephemerals[-1]["text"] == "you asked for list"
    finally:
        await runner.cleanup()
        await emu.stop()
