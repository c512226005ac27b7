"""Several replicas in Socket Mode: each envelope is handled once.

Slack sends each envelope to one of an app's open connections and retries an Events API event
that was not acknowledged (same event_id, on any connection), so a replica may be sent what
another replica already handled, or is still handling, or received just before it died. The
emulator does the same; the replicas share one database and its replay log.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from bot.app import SLACK, create_app
from bot.clock import ManualClock
from bot.config import PulseOpsConfig
from bot.sandbox.emulator import Emulator, EmulatorError
from bot.server import close_socket_mode, connect_socket_mode, start
from handlers.slack_http import ReplayLog, event_key
from store.models import SlackRequestRow
from store.slack_requests import Claim
from tests.conftest import (
    APP_TOKEN,
    BOT_TOKEN,
    CHANNELS,
    USERS,
    SocketHarness,
    alertmanager_payload,
    emulated,
)

pytestmark = pytest.mark.asyncio
BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)


async def until(check: Any, *, timeout: float = 10.0) -> Any:
    """Poll the async `check` until it returns something true (or the time is up): its value."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await check()
        if value or asyncio.get_running_loop().time() > deadline:
            return value
        await asyncio.sleep(0.02)


async def open_url(emu: Emulator) -> str:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            emu.api_url + "apps.connections.open", headers={"Authorization": f"Bearer {APP_TOKEN}"}
        ) as r,
    ):
        return str((await r.json())["url"])


# -- the emulator: one connection per envelope, events retried elsewhere -----------------


async def test_each_envelope_goes_to_one_connection_and_unacked_events_are_retried() -> None:
    emu = Emulator(
        bot_token=BOT_TOKEN,
        users=USERS,
        channels=CHANNELS,
        app_token=APP_TOKEN,
        ack_timeout=0.3,
        event_retry_delays=(0.0, 0.1, 0.1),
    )
    await emu.start()
    try:
        async with aiohttp.ClientSession() as http:
            first = await http.ws_connect(await open_url(emu), autoping=True)
            second = await http.ws_connect(await open_url(emu), autoping=True)
            sockets = {"one": first, "two": second}
            for ws in sockets.values():
                assert (await ws.receive_json(timeout=2))["type"] == "hello"
            await emu.wait_for_socket(count=2)
            received: dict[str, list[dict[str, Any]]] = {"one": [], "two": []}

            async def listen(name: str, ws: aiohttp.ClientWebSocketResponse, acks: bool) -> None:
                async for message in ws:
                    if message.type != aiohttp.WSMsgType.TEXT:
                        continue
                    envelope = message.json()
                    received[name].append(envelope)
                    if acks and "envelope_id" in envelope:
                        await ws.send_json({"envelope_id": envelope["envelope_id"]})

            # "one" never acknowledges, "two" always does
            tasks = [
                asyncio.ensure_future(listen("one", first, False)),
                asyncio.ensure_future(listen("two", second, True)),
            ]
            commands = [
                await emu.command(user="U0ALICE01", channel="C0INCIDENT", command="/x", text=str(n))
                for n in range(4)
            ]
            # each envelope went to one connection only, in turn; the unanswered ones failed
            # for the person, and no interaction is retried
            assert len(received["one"]) == len(received["two"]) == 2
            assert sorted(c["status"] for c in commands) == [0, 0, 200, 200]
            assert {c["error"] for c in commands if c["status"] == 0} == {"operation_timeout"}

            # an event sent to "one" is not acknowledged: the Events API retries it on "two"
            outcomes = []
            for _ in range(2):
                opened = await emu.open_home(user="U0BOB0001")
                outcomes.append(opened)
            await emu.socket_idle()
            missed = next(o for o in outcomes if o["status"] == 0)
            tries = [e for e in emu.socket.log if e["event_id"] == missed["event_id"]]
            assert [(t["retry_attempt"], t["outcome"]) for t in tries] == [
                (0, "operation_timeout"),
                (1, "acked"),
            ]
            assert tries[0]["connection"] != tries[1]["connection"]
            retried = received["two"][-1]
            assert retried["payload"]["event_id"] == missed["event_id"]
            assert (retried["retry_attempt"], retried["retry_reason"]) == (1, "timeout")
            assert retried["envelope_id"] != missed["envelope_id"]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await first.close()
            await second.close()
    finally:
        await emu.stop()


async def test_a_dropped_connection_or_a_lost_ack_is_not_honoured() -> None:
    emu = Emulator(
        bot_token=BOT_TOKEN,
        users=USERS,
        channels=CHANNELS,
        app_token=APP_TOKEN,
        ack_timeout=1.0,
        event_retry_delays=(0.0,),
    )
    await emu.start()
    try:
        async with aiohttp.ClientSession() as http:
            first = await http.ws_connect(await open_url(emu))
            second = await http.ws_connect(await open_url(emu))
            for ws in (first, second):
                await ws.receive_json(timeout=2)
            await emu.wait_for_socket(count=2)

            async def answer_all(ws: aiohttp.ClientWebSocketResponse) -> None:
                async for message in ws:
                    if message.type == aiohttp.WSMsgType.TEXT and "envelope_id" in message.json():
                        await ws.send_json({"envelope_id": message.json()["envelope_id"]})

            tasks = [asyncio.ensure_future(answer_all(ws)) for ws in (first, second)]
            emu.socket.fail_next("lose_ack")
            lost = await emu.open_home(user="U0BOB0001")
            assert lost["status"] == 0, lost
            await emu.socket_idle()
            # the ack came and was not honoured; the connection was cut; the retry went to the
            # other connection and was acknowledged
            assert any(a["envelope_id"] == lost["envelope_id"] for a in emu.socket.acks)
            assert not any(
                a["honoured"] for a in emu.socket.acks if a["envelope_id"] == lost["envelope_id"]
            )
            assert emu.socket.live_count() == 1
            tries = [e for e in emu.socket.log if e["event_id"] == lost["event_id"]]
            assert [t["outcome"] for t in tries] == ["dispatch_failed", "acked"]

            emu.socket.fail_next("drop")
            dropped = await emu.open_home(user="U0BOB0001")
            assert dropped["status"] == 0 and "dispatch_failed" in dropped["error"], dropped
            await emu.socket_idle()
            assert emu.socket.live_count() == 0
            tries = [e for e in emu.socket.log if e["event_id"] == dropped["event_id"]]
            # nowhere left to retry it: the retry fails too
            assert [t["outcome"] for t in tries] == ["dispatch_failed", "dispatch_failed"]
            with pytest.raises(ValueError, match="unknown fault"):
                emu.socket.fail_next("explode")
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await emu.stop()


async def test_the_next_envelope_goes_to_a_chosen_connection_known_by_its_client_address() -> None:
    emu = Emulator(
        bot_token=BOT_TOKEN, users=USERS, channels=CHANNELS, app_token=APP_TOKEN, ack_timeout=1.0
    )
    await emu.start()
    try:
        async with aiohttp.ClientSession() as http:
            sockets = [await http.ws_connect(await open_url(emu)) for _ in range(3)]
            for ws in sockets:
                await ws.receive_json(timeout=2)
            await emu.wait_for_socket(count=3)
            # each connection knows its client's address: the client's own end of the socket
            ends = {f"127.0.0.1:{ws.get_extra_info('sockname')[1]}": ws for ws in sockets}
            client_of = {c.id: ends[str(c.peer)] for c in emu.socket.connections}
            assert sorted(map(id, client_of.values())) == sorted(map(id, sockets))
            peers = {c["id"]: c["peer"] for c in emu.socket.snapshot()["connections"]}
            assert set(peers.values()) == set(ends)
            # Web API calls record theirs too (apps.connections.open came from this process)
            assert all(c["peer"].startswith("127.0.0.1:") for c in emu.calls)

            received: dict[int, list[str]] = {id(ws): [] for ws in sockets}

            async def answer_all(ws: aiohttp.ClientWebSocketResponse) -> None:
                async for message in ws:
                    if message.type == aiohttp.WSMsgType.TEXT and "envelope_id" in message.json():
                        received[id(ws)].append(message.json()["envelope_id"])
                        await ws.send_json({"envelope_id": message.json()["envelope_id"]})

            tasks = [asyncio.ensure_future(answer_all(ws)) for ws in sockets]
            chosen = next(c for c, ws in client_of.items() if ws is sockets[1])
            for n in range(3):
                assert emu.socket_send_next_to(chosen)["peer"] == peers[chosen]
                sent = await emu.command(
                    user="U0ALICE01", channel="C0INCIDENT", command="/x", text=str(n)
                )
                assert (sent["status"], sent["connection"]) == (200, chosen), sent
            assert len(received[id(sockets[1])]) == 3
            assert [e["peer"] for e in emu.socket.log] == [peers[chosen]] * 3
            # then in turn again: each connection once
            turn = [
                (await emu.command(user="U0ALICE01", channel="C0INCIDENT", command="/x"))
                for _ in range(3)
            ]
            assert len({t["connection"] for t in turn}) == 3, turn

            with pytest.raises(EmulatorError, match="no open Socket Mode connection 'conn-99'"):
                emu.socket_send_next_to("conn-99")
            async with http.post(
                emu.base_url + "_emulator/socket/send_next_to", json={"connection": "conn-99"}
            ) as r:
                assert r.status == 400 and "conn-99" in (await r.json())["error"]
            # a chosen connection that closes first: the envelope goes to the next in turn
            gone = next(c for c, ws in client_of.items() if ws is sockets[0])
            async with http.post(
                emu.base_url + "_emulator/socket/send_next_to", json={"connection": gone}
            ) as r:
                assert r.status == 200 and (await r.json())["connection"] == gone
            await sockets[0].close()
            await until(lambda: _true(emu.socket.live_count() == 2))
            sent = await emu.command(user="U0ALICE01", channel="C0INCIDENT", command="/x")
            assert sent["status"] == 200 and sent["connection"] not in (gone, None), sent
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await emu.stop()


async def _true(value: bool) -> bool:
    return value


# -- the replay log's claims -------------------------------------------------------------


@BOTH
async def test_a_claim_is_held_settled_or_taken_over_after_its_lease(
    database_url: str, config: PulseOpsConfig, clock: ManualClock
) -> None:
    async with (
        emulated(app_token=APP_TOKEN) as emu,
        SocketHarness(
            emulator=emu, database_url=database_url, config=config, clock=clock
        ) as harness,
    ):
        now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
        wall = [now.timestamp()]
        first = ReplayLog(harness.deps.db, wall=lambda: wall[0], lease=30)
        second = ReplayLog(harness.deps.db, wall=lambda: wall[0], lease=30)
        key = event_key("Ev0CLAIMS1")
        assert await first.claim(key) is Claim.NEW
        assert await second.claim(key) is Claim.BUSY  # the first replica is handling it
        wall[0] += 31  # the first replica died: its lease ran out
        assert await second.claim(key) is Claim.NEW
        assert await first.claim(key) is Claim.BUSY
        await first.settle(key)  # no longer its claim: changes nothing
        assert await first.claim(key) is Claim.BUSY
        await second.settle(key)
        assert await first.claim(key) is Claim.DONE
        wall[0] += 3600
        assert await first.claim(key) is Claim.DONE  # remembered until the purge
        assert await first.purge() == 1
        # a replica that could not handle what it claimed lets a retry run it at once
        assert await first.claim(key) is Claim.NEW
        await second.release(key)  # not its claim
        assert await second.claim(key) is Claim.BUSY
        await first.release(key)
        assert await second.claim(key) is Claim.NEW
        # a replay key recorded by the HTTP route counts as handled
        assert await first.first("r:x", expires_at=now + timedelta(hours=2))
        assert await second.claim("r:x") is Claim.DONE


# -- PulseOps: three replicas on one database --------------------------------------------


LEASE = 5.0  # seconds: longer than any claim held here by a live replica


@asynccontextmanager
async def socket_replica(harness: SocketHarness) -> AsyncIterator[None]:
    """One more replica of the service in Socket Mode, on the harness's database (no jobs)."""
    settings = harness.settings()
    app = create_app(settings, harness.config, clock=harness.clock, environ={}, run_jobs=False)
    runner, _ = await start(app, host="127.0.0.1", port=0)
    app[SLACK].replays.lease = LEASE
    handler = await connect_socket_mode(app, settings)
    try:
        yield
    finally:
        await close_socket_mode(handler)
        await runner.cleanup()


def timeline_kinds(incident: dict[str, Any]) -> Counter[str]:
    return Counter(entry["kind"] for entry in incident["timeline"])


@pytest.mark.slow
@BOTH
async def test_three_replicas_handle_each_envelope_once(
    database_url: str, config: PulseOpsConfig, clock: ManualClock
) -> None:
    async with AsyncExitStack() as stack:
        emu = await stack.enter_async_context(
            emulated(app_token=APP_TOKEN, event_retry_delays=(0.0, 1.0, 2.0))
        )
        harness = await stack.enter_async_context(
            SocketHarness(emulator=emu, database_url=database_url, config=config, clock=clock)
        )
        harness.app[SLACK].replays.lease = LEASE
        for _ in range(2):
            await stack.enter_async_context(socket_replica(harness))
        await emu.wait_for_socket(count=3)

        status, body = await harness.post_alert(alertmanager_payload())
        assert status in (200, 201, 202), body
        incident_id = body["results"][0]["incident_id"]
        await harness.settle()
        incident = await harness.incident(incident_id)
        channel, alert_ts = incident["slack"]["channel_id"], incident["slack"]["message_ts"]
        before = timeline_kinds(incident)

        # people talk in the incident channel; each message gets a 📌 (an event each)
        said = [
            await emu.post_user_message(user="U0BOB0001", channel=channel, text=f"finding {n}")
            for n in range(5)
        ]
        pins = []
        for message in said[:3]:
            pins.append(await emu.add_reaction(user="U0ALICE01", channel=channel, ts=message["ts"]))
        # the replica the 4th 📌 goes to is cut off right after it is sent (as if killed);
        # the 5th's ack is lost with its connection (as if killed while acknowledging)
        emu.socket.fail_next("drop")
        pins.append(await emu.add_reaction(user="U0ALICE01", channel=channel, ts=said[3]["ts"]))
        emu.socket.fail_next("lose_ack")
        pins.append(await emu.add_reaction(user="U0ALICE01", channel=channel, ts=said[4]["ts"]))
        assert [p["status"] for p in pins] == [200, 200, 200, 0, 0], pins
        # Slack retries the first three too (as when their acks came late)
        for pin in pins[:3]:
            retried = await emu.redeliver_event(pin["event_id"], retry_num=1, reason="timeout")
            assert retried["status"] == 200, retried  # acknowledged, and dropped

        # commands, a click, a shortcut, a modal submission; each then delivered again as is
        notes = [
            await emu.command(
                user="U0CAROL01", channel=channel, command="/incident", text=f"note step {n}"
            )
            for n in range(3)
        ]
        click = await emu.click(
            user="U0ALICE01", channel=channel, ts=alert_ts, action_id="incident_acknowledge"
        )
        shortcut = await emu.message_shortcut(
            user="U0CAROL01",
            channel=channel,
            ts=said[0]["ts"],
            callback_id="add_to_incident_timeline",
        )
        declare = await emu.command(
            user="U0CAROL01", channel="C0INCIDENT", command="/incident", text="declare"
        )

        async def modal() -> list[str]:
            return [
                v for v, view in emu.views.items() if view.get("callback_id") == "incident_declare"
            ]

        (view_id,) = await until(modal)
        submitted = await emu.submit_view(
            user="U0CAROL01",
            view_id=view_id,
            values={
                "declare_title": {"title": "Checkout is slow"},
                "declare_severity": {"severity": "SEV3"},
            },
        )
        sent = [*notes, click, shortcut, declare, submitted]
        assert all(s["status"] == 200 and s["transport"] == "socket" for s in sent), sent
        for envelope in sent:
            again = await emu.redeliver_envelope(envelope["envelope_id"])
            assert (again["status"], again["body"]) == (200, ""), again

        await emu.socket_idle(within=30)
        await emu.wait_for_socket(count=3, within=10)  # the cut replicas reconnected

        # the envelopes were spread over the three replicas' connections
        by_connection = Counter(e["connection"] for e in emu.socket.log)
        assert len(by_connection) >= 3, by_connection

        async def all_settled() -> bool:
            async with harness.deps.db.read() as session:
                held = await session.scalar(
                    select(func.count())
                    .select_from(SlackRequestRow)
                    .where(SlackRequestRow.lease_until.is_not(None))
                )
            return held == 0

        assert await until(all_settled)
        await harness.settle()

        # every 📌 was handled once: one message on the timeline and one confirmation each
        incident = await harness.incident(incident_id)
        kinds = timeline_kinds(incident) - before
        pinned = [
            e for e in emu.calls_to("chat.postEphemeral") if e["args"].get("user") == "U0ALICE01"
        ]
        assert len(pinned) == 5, [e["args"] for e in pinned]
        notes_on_timeline = [e for e in incident["timeline"] if e["kind"] == "note"]
        assert sorted(e["text"] for e in notes_on_timeline) == [f"step {n}" for n in range(3)]
        assert kinds["acknowledged"] == 1, kinds
        # the shortcut's message was already pinned: one answer, through its response_url
        shortcut_answers = [
            e
            for e in emu.ephemerals
            if e["user"] == "U0CAROL01" and e["source"] not in ("command", "chat.postEphemeral")
        ]
        assert len(shortcut_answers) == 1, shortcut_answers
        # one incident declared from the one submission
        _, listing = await harness.get("/api/v1/incidents")
        declared = [i for i in listing["incidents"] if i["id"] != incident_id]
        assert [i["title"] for i in declared] == ["Checkout is slow"]
