"""A strict Slack Web API emulator for tests and the offline sandbox.

Exports `Emulator` (the aiohttp server, in-process accessors and the bot driver), `EmulatorUser`,
`create_emulator_app`, `EmulatorError` (a driver request that cannot be honoured),
`DEFAULT_SCOPES` and the bot identity constants.

    emu = Emulator(users=[EmulatorUser(id="U0ALICE01", name="alice")],
                   channels=[("C0INCIDENT", "incidents")], clock=clock)
    await emu.start()
    client = AsyncWebClient(token="xoxb-test", base_url=emu.api_url, retry_handlers=[])
    emu.request_url = "http://127.0.0.1:PORT/slack/events"   # where the bot listens
    await emu.click(user="U0ALICE01", channel="C0INCIDENT", ts=ts, action_id="ack")
    await emu.stop()

Socket Mode: give `app_token="xapp-…"`; the app's `apps.connections.open` (Bearer app token)
returns a `ws://…/_emulator/socket?ticket=…` URL. While a Socket Mode client is connected,
clicks, commands, view submissions and events go to it as envelopes (HTTP otherwise):

    emu = Emulator(app_token="xapp-1-test", users=..., channels=...)
    await emu.start()
    handler = AsyncSocketModeHandler(bolt_app, "xapp-1-test")  # client base_url=emu.api_url
    await handler.connect_async()
    await emu.wait_for_socket()
    await emu.command(user="U0ALICE01", channel="C0INCIDENT", command="/incident", text="list")
    await emu.socket_disconnect()   # Slack's "disconnect" (refresh_requested): reconnect

Seed channels are `(id, name)` (every seeded human is a member), `(id, name, member_ids)` or
`{"id", "name", "members", "is_private", "is_archived", "topic", "messages"}` (texts the bot
posted there); the bot joins them unless
`bot_channels_member=False`.
`bot_events` limits the Events API events delivered to those the app subscribes to (default:
all). `escaped_commands` are the slash commands whose manifest says `should_escape: true`: their
typed `@name` and `#channel` reach the bot as `<@U…|name>` and `<#C…|name>`. Requests to the bot
are signed with `signing_clock` (default: `clock`); a Bolt app verifies
against real time, so pass `signing_clock=time.time` when `clock` is a fake one.
"""

from __future__ import annotations

from bot.sandbox.emulator import persist
from bot.sandbox.emulator.payloads import EmulatorError
from bot.sandbox.emulator.server import DEFAULT_SCOPES, Emulator, create_emulator_app
from bot.sandbox.emulator.state import APP_ID, BOT_ID, BOT_USER_ID, TEAM_ID, Channel, EmulatorUser

__all__ = [
    "APP_ID",
    "BOT_ID",
    "BOT_USER_ID",
    "DEFAULT_SCOPES",
    "TEAM_ID",
    "Channel",
    "Emulator",
    "EmulatorError",
    "EmulatorUser",
    "create_emulator_app",
    "persist",
]
