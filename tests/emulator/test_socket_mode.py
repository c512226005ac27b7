"""Socket Mode: the emulator's apps.connections.open and WebSocket, and PulseOps over them.

The app runs as `pulseops serve` runs it with SLACK_APP_TOKEN set: the HTTP site (webhooks
and the API still arrive over HTTP) plus Bolt's AsyncSocketModeHandler, connected through
`bot.server.connect_socket_mode`. The emulator has no request URL, so every click, command
and modal submission can only reach the app over the WebSocket.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from bot.app import create_app
from bot.clock import ManualClock
from bot.config import PulseOpsConfig, Settings
from bot.errors import ConfigError
from bot.sandbox.emulator import APP_ID, Emulator
from bot.server import connect_socket_mode
from tests.conftest import (
    APP_TOKEN,
    BOT_TOKEN,
    CHANNELS,
    CONFIG_YAML,
    SIGNING_SECRET,
    USERS,
    SocketHarness,
    alertmanager_payload,
    emulated,
)
from tests.helpers import reply_text

pytestmark = pytest.mark.asyncio

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    """The workspace with Socket Mode enabled (an app-level token) and no request URL."""
    async with emulated(app_token=APP_TOKEN) as emu:
        yield emu


@pytest.fixture
async def harness(
    emulator: Emulator, database_url: str, config: PulseOpsConfig, clock: ManualClock
) -> AsyncIterator[SocketHarness]:
    async with SocketHarness(
        emulator=emulator, database_url=database_url, config=config, clock=clock
    ) as h:
        yield h


async def eventually(check: Any, *, timeout: float = 3.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.02)


# -- the emulator's side of the protocol -------------------------------------------------


async def connections_open(emu: Emulator, **kwargs: Any) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(emu.api_url + "apps.connections.open", **kwargs) as r,
    ):
        assert r.status == 200
        return await r.json()  # type: ignore[no-any-return]


async def test_apps_connections_open_takes_only_the_app_token_as_bearer(emulator: Emulator) -> None:
    opened = await connections_open(emulator, headers={"Authorization": f"Bearer {APP_TOKEN}"})
    assert opened["ok"] is True
    assert opened["url"].startswith("ws://127.0.0.1:") and "ticket=" in opened["url"]
    assert f"app_id={APP_ID}" in opened["url"]
    refused = {
        "not_authed": {},
        "invalid_auth": {"headers": {"Authorization": "Bearer xapp-1-someone-else"}},
        "not_allowed_token_type": {"headers": {"Authorization": f"Bearer {BOT_TOKEN}"}},
    }
    for error, kwargs in refused.items():
        assert await connections_open(emulator, **kwargs) == {"ok": False, "error": error}
    # Slack's method page: the token must travel in the Authorization header, not the body
    as_form = await connections_open(emulator, data={"token": APP_TOKEN})
    assert as_form == {"ok": False, "error": "invalid_auth"}
    # and an app-level token cannot call bot methods
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            emulator.api_url + "chat.postMessage",
            headers={"Authorization": f"Bearer {APP_TOKEN}"},
            json={"channel": "C0INCIDENT", "text": "hi"},
        ) as r,
    ):
        assert (await r.json())["error"] == "not_allowed_token_type"


async def test_envelopes_acks_timeouts_and_pings_on_a_raw_socket() -> None:
    emu = Emulator(
        bot_token=BOT_TOKEN, users=USERS, channels=CHANNELS, app_token=APP_TOKEN, ack_timeout=0.3
    )
    await emu.start()
    url = (await connections_open(emu, headers={"Authorization": f"Bearer {APP_TOKEN}"}))["url"]
    try:
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(url, autoping=False) as ws:
                hello = await ws.receive_json(timeout=2)
                assert hello["type"] == "hello" and hello["num_connections"] == 1
                assert hello["connection_info"] == {"app_id": APP_ID}
                await emu.wait_for_socket()
                # slack_sdk's liveness check: a ping comes back as a pong with the same data
                await ws.ping(b"sdk-ping-pong:123.5")
                pong = await ws.receive(timeout=2)
                assert pong.type == aiohttp.WSMsgType.PONG and pong.data == b"sdk-ping-pong:123.5"

                async def answer(payload: dict[str, Any] | None) -> dict[str, Any]:
                    envelope = await ws.receive_json(timeout=2)
                    ack: dict[str, Any] = {"envelope_id": envelope["envelope_id"]}
                    if payload is not None:
                        ack["payload"] = payload
                    await ws.send_json(ack)
                    return envelope  # type: ignore[no-any-return]

                # a slash command: form fields as a JSON object; the ack payload is the answer
                sent = asyncio.ensure_future(
                    emu.command(user="U0ALICE01", channel="C0INCIDENT", command="/x", text="hi")
                )
                envelope = await answer({"text": "pong"})
                result = await sent
                assert envelope["type"] == "slash_commands"
                assert envelope["accepts_response_payload"] is True
                assert envelope["payload"]["command"] == "/x"
                assert envelope["payload"]["text"] == "hi"
                assert envelope["payload"]["trigger_id"] == result["trigger_id"]
                assert result["status"] == 200 and result["body"] == {"text": "pong"}
                assert result["transport"] == "socket"
                assert emu.ephemerals[-1]["text"] == "pong"

                # an event: the event_callback body, with Slack's retry fields
                sent = asyncio.ensure_future(emu.open_home(user="U0BOB0001"))
                envelope = await answer(None)
                event = await sent
                assert envelope["type"] == "events_api"
                assert envelope["accepts_response_payload"] is False
                assert (envelope["retry_attempt"], envelope["retry_reason"]) == (0, "")
                assert envelope["payload"]["type"] == "event_callback"
                assert envelope["payload"]["event"]["type"] == "app_home_opened"
                assert event["status"] == 200 and event["body"] == ""
                sent = asyncio.ensure_future(
                    emu.redeliver_event(event["event_id"], retry_num=2, reason="timeout")
                )
                envelope = await answer(None)
                await sent
                assert (envelope["retry_attempt"], envelope["retry_reason"]) == (2, "timeout")
                assert envelope["payload"]["event_id"] == event["event_id"]

                # no ack in time: what the user sees as operation_timeout
                timed_out = await emu.command(user="U0ALICE01", channel="C0INCIDENT", command="/x")
                assert timed_out["status"] == 0 and timed_out["error"] == "operation_timeout"
                late = await ws.receive_json(timeout=2)
                await ws.send_json({"envelope_id": late["envelope_id"]})
                assert [d["transport"] for d in emu.deliveries] == ["socket"] * 4

                # disconnect asks the client to fetch a new URL
                assert await emu.socket_disconnect() == 1
                bye = await ws.receive_json(timeout=2)
                assert bye["type"] == "disconnect" and bye["reason"] == "refresh_requested"
            # a ticket is redeemed once
            with pytest.raises(aiohttp.WSServerHandshakeError):
                await http.ws_connect(url)
        for _ in range(50):
            if not emu.socket_connected:
                break
            await asyncio.sleep(0.02)
        assert not emu.socket_connected
        # with neither a socket nor a request URL nothing can reach the bot
        with pytest.raises(Exception, match="request_url is not set"):
            await emu.command(user="U0ALICE01", channel="C0INCIDENT", command="/x")
    finally:
        await emu.stop()


# -- PulseOps over Socket Mode -----------------------------------------------------------


async def test_pulseops_works_over_socket_mode(harness: SocketHarness) -> None:
    emu = harness.emu
    assert emu.request_url is None and emu.socket_connected
    assert len(emu.calls_to("apps.connections.open")) == 1
    # an alert still arrives over HTTP
    status, body = await harness.post_alert(alertmanager_payload())
    assert status in (200, 201, 202), body
    incident_id = body["results"][0]["incident_id"]
    await harness.settle()
    incident = await harness.incident(incident_id)
    channel, ts = incident["slack"]["channel_id"], incident["slack"]["message_ts"]

    # a button click, over the socket
    clicked = await emu.click(
        user="U0ALICE01", channel=channel, ts=ts, action_id="incident_acknowledge"
    )
    assert clicked["status"] == 200 and clicked["transport"] == "socket", clicked

    async def acknowledged() -> bool:
        await harness.settle()
        return (await harness.incident(incident_id))["status"] == "acknowledged"

    assert await eventually(acknowledged)
    incident = await harness.incident(incident_id)
    assert incident["acknowledged_by"] == "U0ALICE01"
    assert incident["timeline"][-1]["kind"] == "acknowledged"

    # a slash command answered in the ack
    listed = await emu.command(
        user="U0BOB0001", channel="C0INCIDENT", command="/incident", text="list"
    )
    assert listed["status"] == 200 and listed["transport"] == "socket", listed
    assert f"INC-{incident_id}" in reply_text(listed)

    # /incident declare opens a modal; submitting it declares an incident
    declared = await emu.command(
        user="U0CAROL01", channel="C0INCIDENT", command="/incident", text="declare"
    )
    assert declared["status"] == 200, declared

    async def modal() -> list[str]:
        return [v for v, view in emu.views.items() if view.get("callback_id") == "incident_declare"]

    (view_id,) = await eventually(modal)
    refused = await emu.submit_view(
        user="U0CAROL01",
        view_id=view_id,
        values={"declare_title": {"title": "  "}, "declare_severity": {"severity": "SEV2"}},
    )
    assert refused["status"] == 200 and refused["response_action"] == "errors", refused
    done = await emu.submit_view(
        user="U0CAROL01",
        view_id=view_id,
        values={
            "declare_title": {"title": "Search results empty"},
            "declare_severity": {"severity": "SEV2"},
            "declare_service": {"service": "search-api"},
            "declare_description": {"description": "Users see no results"},
        },
    )
    assert done["status"] == 200 and done["view"] is None, done

    async def declared_incidents() -> list[dict[str, Any]]:
        _, listing = await harness.get("/api/v1/incidents")
        return [i for i in listing["incidents"] if i["id"] != incident_id]

    (summary,) = await eventually(declared_incidents)
    await harness.settle()
    new = await harness.incident(summary["id"])
    assert new["severity"] == "SEV2" and new["service"] == "search-api"
    assert new["created_by"] == "U0CAROL01" and new["source"] == "slack"
    assert emu.channels[new["slack"]["channel_id"]].name.startswith(f"inc-{new['id']}-search")

    # nothing went over HTTP to the bot, and every envelope was acknowledged
    assert {d["transport"] for d in emu.deliveries} == {"socket"}
    assert all(d["status"] == 200 for d in emu.deliveries), emu.deliveries


async def test_a_refresh_request_reconnects_and_requests_keep_flowing(
    harness: SocketHarness,
) -> None:
    emu = harness.emu
    assert await emu.socket_disconnect("refresh_requested") == 1

    async def reconnected() -> bool:
        return emu.socket.opened >= 2 and emu.socket_connected

    assert await eventually(reconnected, timeout=5)
    assert len(emu.calls_to("apps.connections.open")) == 2
    helped = await emu.command(
        user="U0ALICE01", channel="C0INCIDENT", command="/incident", text="help"
    )
    assert helped["status"] == 200 and "/incident declare" in reply_text(helped)


@pytest.mark.parametrize("token", ["xapp-1-not-this-app", BOT_TOKEN])
async def test_a_refused_app_token_fails_at_start_instead_of_retrying_forever(
    emulator: Emulator, database_url: str, config: PulseOpsConfig, token: str
) -> None:
    settings = Settings(
        slack_bot_token=SecretStr(BOT_TOKEN),
        slack_app_token=SecretStr(token),
        slack_api_url=emulator.api_url,
        database_url=database_url,
    )
    app = create_app(settings, config, environ={}, run_jobs=False)
    started = time.monotonic()
    with pytest.raises(ConfigError, match="SLACK_APP_TOKEN was refused"):
        await connect_socket_mode(app, settings)
    assert time.monotonic() - started < 2
    assert not emulator.socket_connected


async def test_http_mode_connects_no_socket(
    emulator: Emulator, database_url: str, config: PulseOpsConfig
) -> None:
    settings = Settings(
        slack_bot_token=SecretStr(BOT_TOKEN),
        slack_signing_secret=SecretStr(SIGNING_SECRET),
        slack_api_url=emulator.api_url,
        database_url=database_url,
    )
    app = create_app(settings, config, environ={}, run_jobs=False)
    assert await connect_socket_mode(app, settings) is None
    assert emulator.calls_to("apps.connections.open") == []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def serve(
    emulator: Emulator, tmp_path: Path, *, app_token: str
) -> asyncio.subprocess.Process:
    """`pulseops serve` as a subprocess in Socket Mode against the emulator, its output and
    errors in one pipe."""
    config = tmp_path / "pulseops.yml"
    config.write_text(CONFIG_YAML)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "PULSEOPS_"))  # nothing from the developer's shell
    }
    env.update(
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_APP_TOKEN=app_token,
        SLACK_API_URL=emulator.api_url,
        PULSEOPS_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}",
        PULSEOPS_CONFIG=str(config),
        PULSEOPS_HOST="127.0.0.1",
        PULSEOPS_PORT=str(free_port()),
        PULSEOPS_LOG_FORMAT="text",
        PYTHONPATH=str(ROOT),
    )
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "serve",
        env=env,
        cwd=tmp_path,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


@pytest.mark.slow
async def test_pulseops_serve_with_a_refused_app_token_exits_2(
    emulator: Emulator, tmp_path: Path
) -> None:
    proc = await serve(emulator, tmp_path, app_token="xapp-1-wrong")
    output, _ = await asyncio.wait_for(proc.communicate(), timeout=30)
    log = output.decode(errors="replace")
    assert proc.returncode == 2, log
    assert "error:" in log and "invalid_auth" in log and "Traceback" not in log, log


@pytest.mark.slow
async def test_pulseops_serve_runs_in_socket_mode_and_stops_cleanly(
    emulator: Emulator, tmp_path: Path
) -> None:
    """`pulseops serve` with SLACK_APP_TOKEN and no signing secret, as the contract says."""
    proc = await serve(emulator, tmp_path, app_token=APP_TOKEN)
    try:
        await emulator.wait_for_socket(within=30)
        helped = await emulator.command(
            user="U0ALICE01", channel="C0INCIDENT", command="/incident", text="help"
        )
        assert helped["status"] == 200 and helped["transport"] == "socket", helped
        assert "/incident declare" in reply_text(helped)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        try:
            output, _ = await asyncio.wait_for(proc.communicate(), timeout=15)
        except TimeoutError:
            proc.kill()
            output, _ = await proc.communicate()
    log = output.decode(errors="replace")
    assert proc.returncode == 0, log
    assert "Traceback" not in log and "Unclosed" not in log, log

    async def gone() -> bool:
        return not emulator.socket_connected

    assert await eventually(gone)
