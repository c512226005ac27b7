"""The Emulator: an aiohttp Slack Web API server with in-process accessors and a bot driver."""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from aiohttp import web

from bot.sandbox.emulator import control, live, socket_mode, webapi
from bot.sandbox.emulator.driver import ACK_TIMEOUT, Driver
from bot.sandbox.emulator.faults import Faults, apply_settings, decide, error_for_status
from bot.sandbox.emulator.payloads import EmulatorError
from bot.sandbox.emulator.ratelimit import RateLimiter
from bot.sandbox.emulator.state import Channel, ChannelSeed, EmulatorUser, Workspace

log = logging.getLogger(__name__)

DEFAULT_SCOPES = (
    "chat:write",
    "chat:write.public",
    "channels:manage",
    "channels:read",
    "channels:history",
    "groups:write",
    "groups:read",
    "groups:history",
    "im:history",
    "pins:write",
    "commands",
    "users:read",
    "users:read.email",
    "im:write",
    "usergroups:write",
    "usergroups:read",
    "files:write",
    "files:read",
)


class Emulator:
    """A strict, in-process Slack workspace: Web API server, recorded calls, and a bot driver."""

    def __init__(
        self,
        *,
        bot_token: str = "xoxb-test",
        signing_secret: str = "secret",
        request_url: str | None = None,
        users: Iterable[EmulatorUser] = (),
        channels: Iterable[ChannelSeed] = (),
        bot_channels_member: bool = True,
        scopes: Iterable[str] = DEFAULT_SCOPES,
        rate_limits: bool = False,
        clock: Callable[[], float] = time.time,
        usergroups: Iterable[tuple[str, str]] | None = None,
        paid_plan: bool = True,
        signing_clock: Callable[[], float] | None = None,
        ack_timeout: float = ACK_TIMEOUT,
        app_token: str | None = None,
        event_retry_delays: Sequence[float] = socket_mode.EVENT_RETRY_DELAYS,
        bot_events: Iterable[str] | None = None,
        escaped_commands: Iterable[str] = (),
        shortcuts: Iterable[str] | None = None,
    ) -> None:
        self.bot_token = bot_token
        self.app_token = app_token
        self.signing_secret = signing_secret
        self.request_url = request_url
        self.scopes = frozenset(scopes)
        self.clock = clock
        self.ws = Workspace(
            users=users,
            channels=channels,
            bot_channels_member=bot_channels_member,
            clock=clock,
            usergroups=usergroups,
            paid_plan=paid_plan,
        )
        self.limiter = RateLimiter(enabled=rate_limits)
        self.faults = Faults()
        self.calls: list[dict[str, Any]] = []
        self.changes = live.Changes()
        self.socket = socket_mode.SocketModeServer(
            app_token=lambda: self.app_token,
            bot_token=lambda: self.bot_token,
            base_url=lambda: self.base_url,
            retry_delays=event_retry_delays,
        )
        self.driver = Driver(
            self.ws,
            signing_secret=signing_secret,
            clock=signing_clock or clock,
            request_url=lambda: self.request_url,
            ack_timeout=ack_timeout,
            socket=self.socket,
            bot_events=bot_events,
            escaped_commands=escaped_commands,
            shortcuts=shortcuts,
        )
        self._base_url: str | None = None
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()
        self.app = create_emulator_app(self)

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Start serving; return the base URL ("http://127.0.0.1:PORT/")."""
        self._closing = asyncio.Event()
        self._runner = web.AppRunner(self.app, shutdown_timeout=2.0, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        addresses = self._runner.addresses
        bound = addresses[0][1] if addresses else port
        url = f"http://{host}:{bound}/"
        self.base_url = url
        return url

    async def stop(self) -> None:
        """Stop serving; calls hanging on a fault are released at once."""
        self._closing.set()
        self.changes.bump()  # wakes the page streams so they see the emulator closing
        await self.socket.close()
        await self.driver.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def closing(self) -> asyncio.Event:
        """Set once the emulator is stopping (long-lived page streams end then)."""
        return self._closing

    @property
    def base_url(self) -> str | None:
        """Where the emulator is reached ("http://127.0.0.1:PORT/"); None until started.

        Set it when serving `app` some other way, so response and upload URLs point there.
        """
        return self._base_url

    @base_url.setter
    def base_url(self, value: str | None) -> None:
        if value is not None and not value.endswith("/"):
            value += "/"
        self._base_url = value
        if value is not None:
            self.ws.base_url = value

    @property
    def api_url(self) -> str:
        """The Web API base URL for AsyncWebClient(base_url=...)."""
        if self.base_url is None:
            raise RuntimeError("the emulator is not started")
        return self.base_url + "api/"

    # -- in-process accessors -------------------------------------------------------------

    def calls_to(self, method: str) -> list[dict[str, Any]]:
        """The recorded calls of one Web API method, in order."""
        return [call for call in self.calls if call["method"] == method]

    @property
    def channels(self) -> dict[str, Channel]:
        """Every conversation by id (live objects)."""
        return self.ws.channels

    def channel_by_name(self, name: str) -> Channel | None:
        """The channel with that name (archived ones included), or None."""
        return self.ws.channel_by_name(name)

    def messages(self, channel_id: str) -> list[dict[str, Any]]:
        """Copies of the messages of a channel in post order (thread replies included)."""
        return copy.deepcopy(self.ws.history.get(channel_id, []))

    @property
    def ephemerals(self) -> list[dict[str, Any]]:
        """Ephemeral messages (chat.postEphemeral and response_url) in order."""
        return self.ws.ephemerals

    @property
    def views(self) -> dict[str, dict[str, Any]]:
        """Every view by id (modals, open or closed, and home tabs)."""
        return self.ws.views

    @property
    def home_views(self) -> dict[str, dict[str, Any]]:
        """The published Home tab of each user."""
        return self.ws.home_views

    @property
    def deliveries(self) -> list[dict[str, Any]]:
        """Every request sent to the bot: kind, payload, status, body, at."""
        return self.driver.deliveries

    @property
    def users(self) -> dict[str, EmulatorUser]:
        """Every user by id, the bot included."""
        return self.ws.users

    @property
    def usergroups(self) -> dict[str, dict[str, Any]]:
        """User groups by id, with their `users`."""
        return self.ws.usergroups

    def issue_trigger(self, user: str) -> str:
        """A fresh trigger_id for `user`, as an interaction would carry (valid 3 s, once)."""
        return self.ws.issue_trigger(user)

    def set_faults(self, **settings: Any) -> dict[str, Any]:
        """Change the fault plan (keys of POST /_emulator/faults); return the plan in force."""
        self.faults = apply_settings(self.faults, settings, now=self.clock())
        self.limiter.set_overrides(self.faults.rate_limits)
        self.changes.bump()
        return self.faults.to_json(self.clock())

    def reset(self) -> None:
        """Forget messages, calls, views and faults; keep users and the seeded channels."""
        self.ws.reset()
        self.calls.clear()
        self.faults = Faults()
        self.limiter.set_overrides({})
        self.limiter.reset()
        self.driver.reset()
        self.socket.forget()
        self.changes.bump()

    # -- Socket Mode ----------------------------------------------------------------------

    @property
    def socket_connected(self) -> bool:
        """Whether a Socket Mode client is connected (requests then go over it, not HTTP)."""
        return self.socket.connected

    async def wait_for_socket(self, within: float = 5.0, *, count: int = 1) -> None:
        """Wait until `count` Socket Mode clients are connected.

        Raises:
            TimeoutError: they did not connect within `within` seconds.
        """
        await self.socket.wait_connected(within, count=count)

    async def socket_disconnect(self, reason: str = "refresh_requested") -> int:
        """Send Slack's `disconnect` message to every Socket Mode client; return how many."""
        return await self.socket.disconnect(reason)

    def socket_send_next_to(self, connection: str) -> dict[str, Any]:
        """Send the next Socket Mode envelope to the open connection `connection` (an id of
        `socket.connections`, each with the client's `peer` address); return that connection.

        Raises:
            EmulatorError: no such connection is open.
        """
        try:
            self.socket.send_next_to(connection)
        except ValueError as exc:
            raise EmulatorError(str(exc)) from None
        conn = self.socket.connection(connection)
        return {"connection": conn.id, "peer": conn.peer, "user_agent": conn.user_agent}

    async def redeliver_envelope(self, envelope_id: str) -> dict[str, Any]:
        """Send a Socket Mode envelope already sent again, same envelope_id, to the next
        connection (Slack has been seen to deliver an envelope twice)."""
        return await self.socket.redeliver(envelope_id, ack_timeout=self.driver.ack_timeout)

    async def socket_idle(self, within: float = 10.0) -> None:
        """Wait until the Events API retries of unacknowledged events are over."""
        await self.socket.idle(within)

    # -- driving the bot ------------------------------------------------------------------

    async def click(
        self,
        *,
        user: str,
        action_id: str,
        channel: str | None = None,
        ts: str | None = None,
        view_id: str | None = None,
        value: Any = None,
        block_id: str | None = None,
        confirmed: bool = True,
    ) -> dict[str, Any]:
        """Click a button in a message (channel + ts) or a view (view_id); post block_actions.

        `value` picks a button among equals, or is the choice made in a select element.
        A button with a `confirm` dialog sends nothing when the dialog is cancelled
        (`confirmed=False`), as in Slack.
        Returns {"status", "body", "trigger_id", "response_url", "payload", ...}.

        Raises:
            EmulatorError: no such message, view or element, or no request URL.
        """
        return await self.driver.click(
            user=user,
            action_id=action_id,
            channel=channel,
            ts=ts,
            view_id=view_id,
            value=value,
            block_id=block_id,
            confirmed=confirmed,
        )

    async def command(
        self, *, user: str, channel: str, command: str, text: str = "", typed: bool = False
    ) -> dict[str, Any]:
        """Invoke a slash command; an immediate answer is shown as Slack shows it.

        `typed`: the text is what a person typed in a Slack client (the sandbox page), so `&`,
        `<` and `>` are escaped first as Slack does; otherwise it is taken as Slack would send it.
        """
        return await self.driver.command(
            user=user, channel=channel, command=command, text=text, typed=typed
        )

    async def submit_view(
        self, *, user: str, view_id: str, values: Mapping[str, Mapping[str, Any]] | None = None
    ) -> dict[str, Any]:
        """Submit the user's top modal with values={block_id: {action_id: value}}.

        The bot's response_action (errors, update, push, clear) is applied; `view` in the
        result is the modal on top afterwards (None when all closed).
        """
        return await self.driver.submit_view(user=user, view_id=view_id, values=values)

    async def close_view(self, *, user: str, view_id: str) -> dict[str, Any]:
        """The user closes their top modal (view_closed is sent when notify_on_close)."""
        return await self.driver.close_view(user=user, view_id=view_id)

    async def open_home(self, *, user: str) -> dict[str, Any]:
        """The user opens the Home tab: an app_home_opened event."""
        return await self.driver.open_home(user=user)

    async def post_user_message(
        self,
        *,
        user: str,
        text: str,
        channel: str | None = None,
        thread_ts: str | None = None,
        typed: bool = False,
    ) -> dict[str, Any]:
        """A person posts (channel None: their DM with the bot); message events follow.

        `typed`: as for `command`, the text is what a person typed in a client.
        """
        return await self.driver.post_user_message(
            user=user, channel=channel, text=text, thread_ts=thread_ts, typed=typed
        )

    async def add_reaction(
        self, *, user: str, channel: str, ts: str, name: str = "pushpin"
    ) -> dict[str, Any]:
        """A person reacts to a message (`name` without colons); reaction_added follows."""
        return await self.driver.add_reaction(user=user, channel=channel, ts=ts, name=name)

    async def message_shortcut(
        self, *, user: str, channel: str, ts: str, callback_id: str
    ) -> dict[str, Any]:
        """A person runs a message shortcut on a message: a message_action interaction."""
        return await self.driver.message_shortcut(
            user=user, channel=channel, ts=ts, callback_id=callback_id
        )

    async def send_event(self, event: dict[str, Any]) -> dict[str, Any]:
        """Deliver any Events API event."""
        return await self.driver.send_event(event)

    async def redeliver_event(
        self, event_id: str, *, retry_num: int = 1, reason: str = "http_timeout"
    ) -> dict[str, Any]:
        """Deliver an event again with Slack's X-Slack-Retry-Num / -Reason headers."""
        return await self.driver.redeliver_event(event_id, retry_num=retry_num, reason=reason)

    async def url_verification(self) -> dict[str, Any]:
        """Send the url_verification challenge."""
        return await self.driver.url_verification()

    # -- the Web API ----------------------------------------------------------------------

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake at once when the emulator stops."""
        try:
            await asyncio.wait_for(self._closing.wait(), timeout=max(0.0, seconds))
        except TimeoutError:
            pass

    def _answer(
        self,
        record: dict[str, Any],
        status: int,
        body: Mapping[str, Any],
        headers: Mapping[str, str] | None = None,
    ) -> web.Response:
        record["status"] = status
        record["response"] = copy.deepcopy(dict(body))
        self.changes.bump()
        return web.json_response(dict(body), status=status, headers=headers, dumps=control.dumps)

    async def handle_api(self, request: web.Request) -> web.Response:
        """POST|GET /api/{method}: faults, authentication, rate limits, then the method."""
        method = request.match_info["method"]
        raw, problem = await control.read_args(request)
        args = webapi.decode_args(raw)
        token = webapi.bearer_token(request.headers.get("Authorization"), args)
        now = self.clock()
        record: dict[str, Any] = {
            "index": len(self.calls),
            "method": method,
            "args": args,
            "status": None,
            "response": None,
            "at": now,
            "peer": socket_mode.client_address(request),  # which process called
        }
        self.calls.append(record)
        self.changes.bump()
        decision = decide(self.faults, method, now=now)
        if decision.latency:
            await self._sleep(decision.latency)
        if decision.hang_seconds is not None:
            record["fault"] = decision.kind
            await self._sleep(decision.hang_seconds)
        if decision.status is not None and not decision.lose_answer:
            record["fault"] = decision.kind
            headers = {"Retry-After": "1"} if decision.status == 429 else None
            return self._answer(
                record,
                decision.status,
                {"ok": False, "error": error_for_status(decision.status)},
                headers,
            )
        if problem is not None:
            return self._answer(record, 200, {"ok": False, "error": problem})
        if method == socket_mode.METHOD:
            header_token = webapi.bearer_token(request.headers.get("Authorization"), {})
            arg_token = raw.get("token")
            auth_error = self.socket.authenticate(
                header_token, str(arg_token) if arg_token else None
            )
        elif not webapi.is_known(method):
            return self._answer(record, 200, {"ok": False, "error": "unknown_method"})
        elif self.app_token is not None and token == self.app_token:
            auth_error = "not_allowed_token_type"  # an app-level token calling a bot method
        else:
            auth_error = webapi.authenticate(token, self.bot_token)
        if auth_error is not None:
            return self._answer(record, 200, {"ok": False, "error": auth_error})
        retry_after = self.limiter.check(method, channel=self._rate_key(args), now=now)
        if retry_after is not None:
            record["fault"] = "ratelimited"
            return self._answer(
                record,
                429,
                {"ok": False, "error": "ratelimited"},
                {"Retry-After": str(retry_after)},
            )
        if method == socket_mode.METHOD:
            return self._answer(record, 200, self.socket.open_url())
        try:
            body = webapi.call(self.ws, method, args, self.scopes)
        except Exception:
            log.exception("emulator failed on %s", method)
            return self._answer(record, 500, {"ok": False, "error": "internal_error"})
        if decision.lose_answer:  # done, but the caller never learns it
            record["fault"] = decision.kind
            record["carried_out"] = body
            return self._answer(record, 504, {"ok": False, "error": "request_timeout"})
        if decision.answer_delay > 0 and body.get("ok"):
            # done; the caller learns it only later (or never, if it gives up or dies first)
            record["fault"] = decision.kind
            record["carried_out"] = copy.deepcopy(dict(body))
            self.changes.bump()
            await self._sleep(decision.answer_delay)
        return self._answer(record, 200, body)

    def _rate_key(self, args: Mapping[str, Any]) -> str | None:
        ref = args.get("channel")
        if not isinstance(ref, str):
            return None
        channel = self.ws.resolve_channel(ref, by_user=False)
        return channel.id if channel else ref


def create_emulator_app(emu: Emulator) -> web.Application:
    """The aiohttp application serving the Web API and the /_emulator control routes."""
    app = web.Application(client_max_size=8 * 1024 * 1024)
    app.router.add_route("POST", "/api/{method}", emu.handle_api)
    app.router.add_route("GET", "/api/{method}", emu.handle_api)
    app.router.add_get(socket_mode.SOCKET_PATH, emu.socket.handle)
    control.register(app, emu)
    control.register_page(app, emu)
    return app
