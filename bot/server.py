"""Run the app: an aiohttp site, plus a Socket Mode connection when SLACK_APP_TOKEN is set.

Several replicas may each hold a Socket Mode connection of the same app (Slack allows 10):
Slack sends each envelope to one of the open connections ("When multiple connections are
active, each payload may be sent to any of the connections",
https://api.slack.com/apis/socket-mode#connections). An Events API envelope not acknowledged
within 3 s is retried (immediately, after 1 minute and after 5 minutes: same `event_id`, a
new envelope with `retry_attempt` and `retry_reason`,
https://api.slack.com/apis/connections/events-api#retries) on any connection, so on another
replica; the same envelope has also been seen delivered twice
(https://github.com/slackapi/bolt-js/issues/2487). Interactions and slash commands are not
retried: the person sees an error and may try again, which is a new envelope.
`ClaimingSocketModeHandler` therefore claims every envelope in the replay log all replicas
share (`handlers.slack_http.ReplayLog`) before Bolt runs it: by `event_id` for events, by
`envelope_id` for the rest. An event is acknowledged only once its listener has finished, so
that Slack sends it again when the replica dies (or the listener fails) before the work is
done; commands and interactions are acknowledged as soon as their listener acknowledges,
since Slack shows the person the answer the ack carries.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import ssl
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.adapter.socket_mode.async_internals import run_async_bolt_app, send_async_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from bot.app import BOLT, SLACK, create_app
from bot.config import PulseOpsConfig, Settings
from bot.errors import ConfigError
from bot.slowclients import GuardedAppRunner, SlowClientGuard
from handlers.slack_http import ReplayLog, envelope_key
from store.slack_requests import Claim

log = logging.getLogger(__name__)


HEADER_TIMEOUT = 10.0  # seconds a connection has to send a request's headers
MAX_PENDING_CONNECTIONS = 256  # connections still sending headers; past it, new ones close
KEEPALIVE_TIMEOUT = 75.0  # an idle kept-alive connection is closed after this
DRAIN_TIMEOUT = 10.0  # seconds a stopping replica gives the envelopes it is handling


async def start(
    app: web.Application,
    *,
    host: str,
    port: int,
    header_timeout: float = HEADER_TIMEOUT,
    max_pending: int = MAX_PENDING_CONNECTIONS,
    ssl_context: ssl.SSLContext | None = None,
) -> tuple[web.AppRunner, int]:
    """Start serving `app` (over HTTPS when `ssl_context` is given); return the runner and the
    bound port (port 0 picks a free one)."""
    runner = GuardedAppRunner(
        app,
        guard=SlowClientGuard(header_timeout=header_timeout, max_pending=max_pending),
        access_log=None,
        handle_signals=False,
        keepalive_timeout=KEEPALIVE_TIMEOUT,
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
    await site.start()
    bound = runner.addresses[0][1] if runner.addresses else port
    return runner, int(bound)


def tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server TLS context from a PEM certificate (chain) and its private key.

    Raises:
        ConfigError: a file is missing, unreadable, or the key does not match the certificate.
    """
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(certfile=cert, keyfile=key)
    except FileNotFoundError as exc:
        raise ConfigError(
            [f"PULSEOPS_TLS_CERT/PULSEOPS_TLS_KEY: no such file: {exc.filename}"]
        ) from None
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            [
                f"PULSEOPS_TLS_CERT/PULSEOPS_TLS_KEY: cannot load {cert} with {key} ({exc}): "
                "give a PEM certificate and the PEM private key that belongs to it"
            ]
        ) from None
    return context


# apps.connections.open errors that no retry can fix: the SDK's connect loop would retry
# them forever (every ping interval) and the service would never receive a request.
_FATAL_CONNECT_ERRORS = frozenset(
    {
        "not_authed",
        "invalid_auth",
        "not_allowed_token_type",
        "token_revoked",
        "token_expired",
        "account_inactive",
        "missing_scope",
        "access_denied",
        "forbidden_team",
    }
)


class ClaimingSocketModeHandler(AsyncSocketModeHandler):
    """Bolt's Socket Mode handler, each envelope claimed in the shared replay log first.

    A new Events API envelope runs through Bolt, and is settled and acknowledged once its
    listener has finished; if the listener fails, or is still running when the claim's lease
    ends (it is then cancelled), the envelope is not acknowledged, so that Slack retries it:
    a failed one is released for the retry to run at once, a lapsed one is taken over by the
    retry that finds its lease over. Any other envelope is answered as soon as its listener
    acknowledges (the ack carries what the person sees), and settled once the ack is sent. A
    repeat of one already handled is acknowledged and dropped. A repeat of one another
    replica still holds is left unacknowledged: Slack retries events later, by when the
    holder has settled it (dropped then) or its lease has run out because it died (handled
    then).
    """

    def __init__(self, app: AsyncApp, app_token: str, *, replays: ReplayLog) -> None:
        super().__init__(app, app_token)
        self.replays = replays
        self.handling: set[asyncio.Task[object]] = set()  # envelopes being handled

    async def handle(self, client: AsyncBaseSocketModeClient, req: SocketModeRequest) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.handling.add(task)
        try:
            await self._handle(client, req)
        finally:
            if task is not None:
                self.handling.discard(task)

    async def _handle(self, client: AsyncBaseSocketModeClient, req: SocketModeRequest) -> None:
        started = time.time()
        lease_ends = time.monotonic() + self.replays.lease  # measured before the claim
        key = envelope_key(req.type, req.envelope_id, req.payload)
        claim = await self.replays.claim(key)
        if claim is not Claim.NEW:
            about = {"envelope": req.type, "retry": req.retry_attempt, "claim": claim.value}
            log.info("repeated Slack envelope not run again", extra=about)
            if claim is Claim.DONE:
                await client.send_socket_mode_response(
                    SocketModeResponse(envelope_id=req.envelope_id)
                )
            return
        if req.type == "events_api":
            await self._run_event(client, req, key=key, lease_ends=lease_ends, started=started)
            return
        try:
            response = await run_async_bolt_app(self.app, req)
        except BaseException:
            await self.replays.release(key)
            raise
        try:
            await send_async_response(client, req, response, started)
        finally:
            # the listener has run (or runs on) whether or not the ack got through
            await self.replays.settle(key)

    async def _run_event(
        self,
        client: AsyncBaseSocketModeClient,
        req: SocketModeRequest,
        *,
        key: str,
        lease_ends: float,
        started: float,
    ) -> None:
        """Run an Events API envelope; acknowledge it once its listener has finished."""
        headers: dict[str, str | Sequence[str]] = {}
        if req.retry_attempt is not None:  # as over HTTP (and as Bolt's own adapter does)
            headers["x-slack-retry-num"] = str(req.retry_attempt)
        request = AsyncBoltRequest(mode="socket_mode", body=req.payload, headers=headers)
        event_id = str(req.payload.get("event_id") or "")[:64]
        about = {"event_id": event_id, "retry": req.retry_attempt}
        response = await self.replays.run_event(
            self.app, request, key=key, lease_ends=lease_ends, about=about
        )
        if response is not None:  # otherwise left unacknowledged, for Slack's retry
            await send_async_response(client, req, response, started)

    async def drain(self, within: float) -> None:
        """Wait (at most `within` seconds) for the envelopes being handled to be done."""
        if self.handling:
            await asyncio.wait(set(self.handling), timeout=within)


async def connect_socket_mode(
    app: web.Application, settings: Settings
) -> AsyncSocketModeHandler | None:
    """Connect the app's Bolt listeners over Socket Mode when SLACK_APP_TOKEN is set.

    The first WebSocket URL is fetched here so that a refused app token fails at once
    (slack_sdk's `connect()` would otherwise retry it forever); transient failures are left
    to the SDK's own retries. Returns the handler (close it with `close_socket_mode`), or
    None in HTTP mode.

    Raises:
        ConfigError: Slack refused the app-level token.
    """
    if not settings.socket_mode or settings.slack_app_token is None:
        return None
    from slack_sdk.errors import SlackApiError

    bolt = app[BOLT]
    app_token = settings.slack_app_token.get_secret_value()
    url: str | None = None
    try:
        opened = await bolt.client.apps_connections_open(app_token=app_token)
        url = str(opened["url"])
    except SlackApiError as exc:
        error = str(exc.response.get("error", ""))
        if error in _FATAL_CONNECT_ERRORS:
            raise ConfigError(
                [
                    f"SLACK_APP_TOKEN was refused by apps.connections.open ({error}): "
                    "use an app-level token (xapp-…) with the connections:write scope"
                ]
            ) from exc
        log.warning("apps.connections.open failed (%s); the Socket Mode client retries", error)
    except Exception as exc:  # network trouble: the SDK's connect loop retries
        log.warning("apps.connections.open failed (%s); the Socket Mode client retries", exc)
    handler = ClaimingSocketModeHandler(bolt, app_token, replays=app[SLACK].replays)
    if url is not None:
        handler.client.wss_uri = url
    await handler.connect_async()  # type: ignore[no-untyped-call]
    log.info("connected to Slack over Socket Mode")
    return handler


async def close_socket_mode(handler: AsyncSocketModeHandler | None) -> None:
    """Close a Socket Mode connection made by `connect_socket_mode` (None: nothing to do)."""
    if handler is None:
        return
    if isinstance(handler, ClaimingSocketModeHandler):
        # settled and acknowledged, or released: not left to the lease
        await handler.drain(DRAIN_TIMEOUT)
    await handler.close_async()  # type: ignore[no-untyped-call]
    # close() cancels the client's tasks without awaiting them; let them finish cancelling
    tasks = [
        task
        for task in (
            handler.client.message_processor,
            handler.client.message_receiver,
            handler.client.current_session_monitor,
        )
        if task is not None
    ]
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)


EventLoopFactory = Callable[[], asyncio.AbstractEventLoop]


def event_loop_factory(name: str) -> EventLoopFactory | None:
    """The factory of the event loop `PULSEOPS_EVENT_LOOP` names: uvloop's (the default), or
    None for asyncio's own. Without an importable uvloop, asyncio's, with a warning."""
    if name == "asyncio":
        return None
    if name != "uvloop":
        raise ConfigError([f"PULSEOPS_EVENT_LOOP: {name!r} is not one of uvloop, asyncio"])
    try:
        import uvloop
    except ImportError as exc:
        log.warning(
            "PULSEOPS_EVENT_LOOP is uvloop but uvloop cannot be imported (%s): "
            "running on asyncio's own event loop (pip install uvloop)",
            exc,
        )
        return None
    factory: EventLoopFactory = uvloop.new_event_loop
    return factory


def event_loop_name(loop: asyncio.AbstractEventLoop) -> str:
    """ "uvloop" or "asyncio": which event loop `loop` is (for the startup log line)."""
    return "uvloop" if type(loop).__module__.split(".")[0] == "uvloop" else "asyncio"


def settle_heap() -> None:
    """Move what start-up built (modules, configuration, the app: about 170,000 objects)
    out of the garbage collector's way for good.

    They live as long as the process, but each full collection would walk them all again:
    about 0.1 s with the event loop stopped, the slowest requests' whole wait under load.
    """
    gc.collect()
    gc.freeze()


def run_serve(settings: Settings, config: PulseOpsConfig, *, host: str, port: int) -> None:
    """Serve until SIGINT/SIGTERM on the event loop the settings choose."""
    factory = event_loop_factory(settings.event_loop)
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(serve(settings, config, host=host, port=port))


async def serve(settings: Settings, config: PulseOpsConfig, *, host: str, port: int) -> None:
    """Serve until SIGINT/SIGTERM."""
    context = None
    if settings.tls_cert is not None and settings.tls_key is not None:
        context = tls_context(settings.tls_cert, settings.tls_key)
    app = create_app(settings, config)
    runner, bound = await start(app, host=host, port=port, ssl_context=context)
    try:
        socket_handler = await connect_socket_mode(app, settings)
    except BaseException:
        await runner.cleanup()
        raise
    scheme = "https" if context is not None else "http"
    loop = asyncio.get_running_loop()
    settle_heap()
    log.info(
        "PulseOps listening",
        extra={"host": host, "port": bound, "scheme": scheme, "event_loop": event_loop_name(loop)},
    )
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await close_socket_mode(socket_handler)
    await runner.cleanup()
