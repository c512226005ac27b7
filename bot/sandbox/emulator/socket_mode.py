"""Socket Mode: apps.connections.open and the WebSocket that carries envelopes to the app.

The protocol, as Slack speaks it and slack_sdk's aiohttp client expects it:

- `apps.connections.open` takes the app-level token (xapp-…) in `Authorization: Bearer`; a
  token passed as a form or query argument is refused (`invalid_auth`), a bot token gets
  `not_allowed_token_type`. It answers `{"ok": true, "url": "wss://…?ticket=…&app_id=…"}`;
  here the URL is `ws://HOST:PORT/_emulator/socket?ticket=…&app_id=…` and a ticket is
  redeemed once (each reconnection asks for a new URL).
- On connect the server sends `{"type": "hello", "num_connections", "debug_info",
  "connection_info": {"app_id"}}`.
- Requests arrive as envelopes `{"envelope_id", "type": "slash_commands" | "interactive" |
  "events_api", "accepts_response_payload", "payload", …}` (`events_api` adds
  `retry_attempt` and `retry_reason`). The payload is what Slack would POST over HTTP, as
  JSON: the slash command's form fields as an object, the interaction payload, the
  `event_callback` body.
- The app acknowledges with `{"envelope_id", "payload"?}` within 3 seconds; the optional
  payload is the response body (a command's message, a view_submission's response_action).
- `{"type": "disconnect", "reason": "refresh_requested" | "warning" | …}` asks the app to
  fetch a new URL and reconnect.
- An app may hold up to 10 connections at once (more are refused `too_many_websockets`);
  "when multiple connections are active, each payload may be sent to any of the connections"
  (https://api.slack.com/apis/socket-mode#connections): here each envelope goes to ONE live
  connection, in turn.
- An `events_api` envelope not acknowledged in time (or whose connection went away first) is
  retried as the Events API retries: immediately, after 1 minute and after 5 minutes
  (`retry_delays`), each time in a new envelope with the same `event_id`, `retry_attempt`
  1, 2, 3 and `retry_reason` "timeout", on whichever connection is next: so on another
  replica's. Interactions and slash commands are not retried: the person sees the error.
- Each connection records the client's address (`peer`, "host:port" as the emulator sees
  it) and `User-Agent`, so a test can tell which process holds it (the process with that
  local port). `send_next_to(connection_id)` sends the next envelope to that connection
  instead of the next in turn.
- Every envelope sent (`log`: its connection, the client's address, attempt and outcome) and
  every ack received (`acks`) is recorded. `fail_next("drop")` closes the connection the next
  envelope goes to right after sending it, as when its replica dies having received it;
  `fail_next("lose_ack")` drops that envelope's ack and the connection, as when the replica
  dies as it acknowledges.
  Acks arriving on a connection so dropped are recorded and not honoured.
- Ping frames are answered with pong frames carrying the same data (aiohttp's autoping);
  slack_sdk sends "sdk-ping-pong:<time>" pings and treats a missing pong as a dead link.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from bot.sandbox.emulator.state import APP_ID

log = logging.getLogger(__name__)

METHOD = "apps.connections.open"
SOCKET_PATH = "/_emulator/socket"
MAX_CONNECTIONS = 10  # Slack allows up to 10 open connections per app
BOT_TOKEN_PREFIXES = ("xoxb-", "xoxp-", "xoxe-")
# The Events API's retries of an event not acknowledged: immediately, after 1 and 5 minutes
EVENT_RETRY_DELAYS = (0.0, 60.0, 300.0)
FAULTS = frozenset({"drop", "lose_ack"})

# The envelope type of each driver request kind; view_submission and block_suggestion are
# the interactions whose acknowledgement can carry a response (response_action, options).
_ACCEPTS_RESPONSE = frozenset({"view_submission", "block_suggestion"})


def envelope_type(kind: str) -> str | None:
    """The Socket Mode envelope type for a driver request kind (None: HTTP only)."""
    if kind == "command":
        return "slash_commands"
    if kind.startswith("event:"):
        return "events_api"
    if kind == "url_verification":
        return None  # Slack never sends url_verification over Socket Mode
    return "interactive"


def accepts_response_payload(envelope: str, payload: Mapping[str, Any]) -> bool:
    """Whether the app may answer this envelope with a payload in its acknowledgement."""
    if envelope == "slash_commands":
        return True
    if envelope == "interactive":
        return payload.get("type") in _ACCEPTS_RESPONSE
    return False


@dataclass
class Connection:
    """One open Socket Mode WebSocket."""

    id: str
    ws: web.WebSocketResponse
    opened_at: float
    peer: str | None = None  # the client's address, "host:port"
    user_agent: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)
    dropped: bool = False  # the emulator cut it: what arrives on it any more is not honoured

    @property
    def live(self) -> bool:
        return not (self.dropped or self.ws.closed)


class SocketModeServer:
    """The Socket Mode side of the emulator: tickets, connections and envelope delivery."""

    def __init__(
        self,
        *,
        app_token: Callable[[], str | None],
        bot_token: Callable[[], str],
        base_url: Callable[[], str | None],
        retry_delays: Sequence[float] = EVENT_RETRY_DELAYS,
    ) -> None:
        self._app_token = app_token
        self._bot_token = bot_token
        self._base_url = base_url
        self.retry_delays = tuple(retry_delays)
        self._tickets: set[str] = set()
        self.connections: list[Connection] = []
        self._pending: dict[str, tuple[Connection, asyncio.Future[dict[str, Any]]]] = {}
        self._changed = asyncio.Event()
        self._next = 0
        self.opened = 0  # connections ever accepted
        self.unknown_acks: list[dict[str, Any]] = []
        # every envelope sent: envelope_id, type, connection, retry_attempt, event_id, outcome
        self.log: list[dict[str, Any]] = []
        # every ack received: envelope_id, connection, honoured
        self.acks: list[dict[str, Any]] = []
        self._sent: dict[str, dict[str, Any]] = {}  # envelope bodies by id, to send again
        self._faults: deque[str] = deque()
        self._next_to: str | None = None  # the connection the next envelope goes to
        self._lose_ack_on: set[str] = set()  # connections whose next ack is lost
        self._retries: set[asyncio.Future[Any]] = set()  # retries and closings under way

    # -- apps.connections.open ------------------------------------------------------------

    def authenticate(self, header_token: str | None, arg_token: str | None) -> str | None:
        """Slack's error for the token of an apps.connections.open call, or None."""
        token = header_token or arg_token
        if not token:
            return "not_authed"
        app_token = self._app_token()
        if header_token is None:
            # "you will need to pass this token in the HTTP Authorization header of your
            # request; passing it as a POST parameter will result in an error"
            return "invalid_auth"
        if token == self._bot_token() or token.startswith(BOT_TOKEN_PREFIXES):
            return "not_allowed_token_type"
        if app_token is None or token != app_token:
            return "invalid_auth"
        return None

    def open_url(self) -> dict[str, Any]:
        """The apps.connections.open answer: a fresh single-use WebSocket URL."""
        base = self._base_url()
        if base is None:
            return {"ok": False, "error": "internal_error"}
        ticket = secrets.token_hex(16)
        self._tickets.add(ticket)
        scheme, rest = base.split("://", 1)
        ws_scheme = "wss" if scheme == "https" else "ws"
        url = f"{ws_scheme}://{rest.rstrip('/')}{SOCKET_PATH}?ticket={ticket}&app_id={APP_ID}"
        return {"ok": True, "url": url}

    # -- the WebSocket --------------------------------------------------------------------

    def live_count(self) -> int:
        """How many Socket Mode clients are connected."""
        return sum(1 for c in self.connections if c.live)

    @property
    def connected(self) -> bool:
        """Whether at least one Socket Mode client is connected."""
        return self.live_count() > 0

    async def wait_connected(self, within: float = 5.0, *, count: int = 1) -> None:
        """Wait until `count` clients are connected (raise TimeoutError after `within` s)."""
        deadline = time.monotonic() + within
        while True:
            self._changed.clear()
            if self.live_count() >= count:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no Socket Mode client connected within {within} s")
            try:
                await asyncio.wait_for(self._changed.wait(), timeout=remaining)
            except TimeoutError:
                pass

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """GET /_emulator/socket?ticket=…: the Socket Mode WebSocket."""
        ticket = request.query.get("ticket", "")
        if ticket not in self._tickets:
            return web.json_response({"ok": False, "error": "invalid_ticket"}, status=401)
        if self.live_count() >= MAX_CONNECTIONS:
            return web.json_response({"ok": False, "error": "too_many_websockets"}, status=429)
        self._tickets.discard(ticket)
        ws = web.WebSocketResponse(autoping=True)  # pong every ping with its own data
        await ws.prepare(request)
        self.opened += 1
        conn = Connection(
            id=f"conn-{self.opened}",
            ws=ws,
            opened_at=time.time(),
            peer=client_address(request),
            user_agent=request.headers.get("User-Agent", ""),
        )
        self.connections.append(conn)
        try:
            await ws.send_json(
                {
                    "type": "hello",
                    "num_connections": self.live_count(),
                    "debug_info": {
                        "host": "applink-emulator",
                        "build_number": 1,
                        "approximate_connection_time": 18060,
                    },
                    "connection_info": {"app_id": APP_ID},
                }
            )
            self._changed.set()
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    self._on_text(conn, message.data)
                elif message.type == WSMsgType.ERROR:
                    log.debug("socket mode connection %s failed: %s", conn.id, ws.exception())
        finally:
            self.connections.remove(conn)
            self._fail_pending(conn, "socket_closed")
            self._changed.set()
        return ws

    def _on_text(self, conn: Connection, data: str) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            conn.received.append({"invalid": data})
            return
        if not isinstance(message, dict):
            conn.received.append({"invalid": data})
            return
        conn.received.append(message)
        envelope_id = message.get("envelope_id")
        pending = self._pending.get(str(envelope_id)) if envelope_id else None
        honoured = pending is not None and pending[0] is conn and not conn.dropped
        self.acks.append({"envelope_id": envelope_id, "connection": conn.id, "honoured": honoured})
        if pending is None:
            self.unknown_acks.append(message)
            return
        if not honoured:
            return
        _, future = pending
        if conn.id in self._lose_ack_on:
            self._lose_ack_on.discard(conn.id)
            self.acks[-1]["honoured"] = False
            self._drop(conn)
            return
        self._pending.pop(str(envelope_id), None)
        if not future.done():
            future.set_result(message)

    def _fail_pending(self, conn: Connection, reason: str) -> None:
        for envelope_id, (owner, future) in list(self._pending.items()):
            if owner is conn:
                self._pending.pop(envelope_id, None)
                if not future.done():
                    future.set_exception(ConnectionError(reason))

    def _pick(self) -> Connection | None:
        live = [c for c in self.connections if c.live]
        chosen, self._next_to = self._next_to, None
        if chosen is not None:
            for conn in live:
                if conn.id == chosen:
                    return conn
        if not live:
            return None
        self._next = (self._next + 1) % len(live)
        return live[self._next]

    def _drop(self, conn: Connection) -> None:
        """Cut a connection: its pending envelopes fail now, and it closes in the background."""
        conn.dropped = True
        self._fail_pending(conn, "connection dropped")
        task = asyncio.ensure_future(
            conn.ws.close(code=WSCloseCode.GOING_AWAY, message=b"connection dropped")
        )
        self._retries.add(task)
        task.add_done_callback(self._retries.discard)
        self._changed.set()

    def connection(self, connection_id: str) -> Connection:
        """The live connection `connection_id`.

        Raises:
            ValueError: no such connection is open.
        """
        for conn in self.connections:
            if conn.id == connection_id and conn.live:
                return conn
        live = ", ".join(c.id for c in self.connections if c.live) or "none"
        raise ValueError(f"no open Socket Mode connection {connection_id!r} (open: {live})")

    def send_next_to(self, connection_id: str) -> None:
        """Send the next envelope (a new one or a retry, whichever comes first) to the open
        connection `connection_id` rather than to the next in turn; if that connection has
        closed by then, the envelope goes to the next in turn.

        Raises:
            ValueError: no such connection is open.
        """
        self._next_to = self.connection(connection_id).id

    def fail_next(self, fault: str) -> None:
        """Make the next envelope sent fail: "drop" cuts its connection right after sending
        it; "lose_ack" loses its ack and cuts the connection when the ack arrives."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}: one of {sorted(FAULTS)}")
        self._faults.append(fault)

    # -- delivery -------------------------------------------------------------------------

    async def deliver(
        self,
        envelope: str,
        payload: Mapping[str, Any],
        *,
        ack_timeout: float,
        retry_attempt: int = 0,
        retry_reason: str = "",
    ) -> dict[str, Any]:
        """Send one envelope and wait for its acknowledgement, like an HTTP POST.

        Returns {"status", "body", "transport", "envelope_id", "connection"}: status 200 and
        the ack's payload (or "" without one), or status 0 with `error` ("operation_timeout"
        when no ack came within `ack_timeout`, "dispatch_failed: …" when the socket went
        away). A first delivery of an event that failed is retried in the background
        (`retry_delays`); `idle()` waits for those retries.
        """
        body: dict[str, Any] = {
            "envelope_id": str(uuid.uuid4()),
            "payload": dict(payload),
            "type": envelope,
            "accepts_response_payload": accepts_response_payload(envelope, payload),
        }
        if envelope == "events_api":
            body.update(retry_attempt=retry_attempt, retry_reason=retry_reason)
        result = await self._send(body, ack_timeout=ack_timeout)
        if envelope == "events_api" and retry_attempt == 0 and result["status"] != 200:
            task = asyncio.ensure_future(self._retry(body, ack_timeout=ack_timeout))
            self._retries.add(task)
            task.add_done_callback(self._retries.discard)
        return result

    async def _retry(self, first: dict[str, Any], *, ack_timeout: float) -> None:
        """The Events API's retries of an event whose delivery failed, until one is acked."""
        for attempt, delay in enumerate(self.retry_delays, start=1):
            await asyncio.sleep(delay)
            body = {
                **first,
                "envelope_id": str(uuid.uuid4()),
                "retry_attempt": attempt,
                "retry_reason": "timeout",
            }
            if (await self._send(body, ack_timeout=ack_timeout))["status"] == 200:
                return

    async def redeliver(self, envelope_id: str, *, ack_timeout: float) -> dict[str, Any]:
        """Send an envelope already sent again, unchanged (same envelope_id), to whichever
        connection is next, as Slack has been seen to do."""
        body = self._sent.get(envelope_id)
        if body is None:
            raise KeyError(f"no envelope {envelope_id!r} was sent")
        return await self._send(dict(body), ack_timeout=ack_timeout)

    async def idle(self, within: float = 10.0) -> None:
        """Wait until no retry is pending (raise TimeoutError after `within` s)."""
        async with asyncio.timeout(within):
            while self._retries:
                await asyncio.gather(*list(self._retries), return_exceptions=True)

    async def _send(self, body: dict[str, Any], *, ack_timeout: float) -> dict[str, Any]:
        """Send `body` on the next live connection; wait for its ack; record both."""
        envelope_id = str(body["envelope_id"])
        conn = self._pick()
        record: dict[str, Any] = {
            "envelope_id": envelope_id,
            "type": body["type"],
            "connection": conn.id if conn is not None else None,
            "peer": conn.peer if conn is not None else None,
            "retry_attempt": body.get("retry_attempt"),
            "event_id": body["payload"].get("event_id"),
            "at": time.time(),
            "outcome": "pending",
        }
        self.log.append(record)
        base: dict[str, Any] = {
            "transport": "socket",
            "envelope_id": envelope_id,
            "connection": record["connection"],
        }
        if conn is None:
            record["outcome"] = "dispatch_failed"
            return {**base, "status": 0, "body": None, "error": "dispatch_failed: no socket"}
        self._sent[envelope_id] = body
        fault = self._faults.popleft() if self._faults else None
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[envelope_id] = (conn, future)
        try:
            await conn.ws.send_json(body)
            if fault == "drop":
                self._drop(conn)
            elif fault == "lose_ack":
                self._lose_ack_on.add(conn.id)
            ack = await asyncio.wait_for(future, timeout=ack_timeout)
        except TimeoutError:
            record["outcome"] = "operation_timeout"
            return {**base, "status": 0, "body": None, "error": "operation_timeout"}
        except (ConnectionError, RuntimeError) as exc:
            record["outcome"] = "dispatch_failed"
            return {**base, "status": 0, "body": None, "error": f"dispatch_failed: {exc}"}
        finally:
            if self._pending.get(envelope_id, (None,))[0] is conn:
                self._pending.pop(envelope_id, None)
        record["outcome"] = "acked"
        answer = ack.get("payload")
        return {**base, "status": 200, "body": "" if answer is None else answer}

    async def disconnect(self, reason: str = "refresh_requested") -> int:
        """Ask every connected client to reconnect; return how many were told."""
        told = 0
        for conn in list(self.connections):
            if not conn.live:
                continue
            await conn.ws.send_json(
                {"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-emulator"}}
            )
            told += 1
        return told

    async def close(self) -> None:
        """Close every connection (the emulator is stopping); pending retries are dropped."""
        for task in list(self._retries):
            task.cancel()
        await asyncio.gather(*list(self._retries), return_exceptions=True)
        for conn in list(self.connections):
            if not conn.ws.closed:
                await conn.ws.close(code=WSCloseCode.GOING_AWAY, message=b"emulator stopping")
        self._tickets.clear()

    def forget(self) -> None:
        """Forget the envelopes sent and acks received (the emulator is reset)."""
        self.unknown_acks.clear()
        self.log.clear()
        self.acks.clear()
        self._sent.clear()
        self._faults.clear()
        self._next_to = None

    def snapshot(self) -> dict[str, Any]:
        """The Socket Mode state for /_emulator/state."""
        return {
            "enabled": self._app_token() is not None,
            "connections": [
                {
                    "id": c.id,
                    "opened_at": c.opened_at,
                    "peer": c.peer,
                    "user_agent": c.user_agent,
                    "received": len(c.received),
                }
                for c in self.connections
                if c.live
            ],
            "pending": len(self._pending),
            "retries_pending": len(self._retries),
            "sent": len(self.log),
            "acks": len(self.acks),
        }


def client_address(request: web.Request) -> str | None:
    """The client's "host:port" (the TCP peer), or None when the transport does not say."""
    peer = request.transport.get_extra_info("peername") if request.transport else None
    if isinstance(peer, tuple) and len(peer) >= 2:
        host, port = peer[0], peer[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return request.remote
