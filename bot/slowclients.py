"""Slow clients cannot hold the server: a deadline for each request's headers, and a cap on
connections still sending theirs.

aiohttp bounds header sizes but not how long a client may take to send them: 500 clients
sending one header line every 5 s would hold 500 connections (and file descriptors) for as
long as they like. Here a connection must complete a request's headers within
`header_timeout` of its first byte (or of connecting), or it is closed; past
`max_pending` such connections, new ones are closed at once. Idle keep-alive connections are
left to aiohttp's own keep-alive timeout. Reading a body is bounded where handlers read it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

from bot.logs import new_request_id

log = logging.getLogger(__name__)


class SlowClientGuard:
    """Shared by one server's connections: the limits, and how many are still sending headers."""

    def __init__(self, *, header_timeout: float, max_pending: int) -> None:
        self.header_timeout = header_timeout
        self.max_pending = max_pending
        self.pending = 0
        self.closed_slow = 0  # connections closed for taking too long (for tests and logs)
        self.refused = 0  # connections closed at once because too many were pending


class GuardedRequestHandler(web.RequestHandler):
    """aiohttp's request handler, closing connections that send their headers too slowly."""

    __slots__ = ("_guard", "_started", "_timer", "_handled")

    def __init__(self, *args: Any, guard: SlowClientGuard, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._guard = guard
        # when the headers being waited for started (loop time), None while none are awaited
        self._started: float | None = None
        # the connection's one timer, armed for the deadline of the oldest wait it knows of:
        # a request whose headers come in time leaves it be, and when it fires it re-arms for
        # the wait in progress then, if any (no timer made and cancelled per request)
        self._timer: asyncio.TimerHandle | None = None
        self._handled = 0  # requests whose headers were complete when last checked

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if self._guard.pending >= self._guard.max_pending:
            self._guard.refused += 1
            transport.close()
            return
        self._start_deadline()

    def data_received(self, data: bytes) -> None:
        if self._started is None and self._request_in_progress is False and not self._messages:
            self._start_deadline()  # the first byte of the next request on a kept-alive link
        super().data_received(data)
        if self._request_count > self._handled:
            self._handled = self._request_count
            self._stop_deadline()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._stop_deadline()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        super().connection_lost(exc)

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """Errors aiohttp answers itself (a request line too long, malformed HTTP) as JSON,
        like every other error of the service; client errors are not logged as failures."""
        if status >= 500:
            super().handle_error(request, status, exc, message)  # logs it; checks the writer
            text = "internal error"
        else:
            if request.writer.output_size > 0:
                raise ConnectionError("the response is sent already: cannot send an error")
            log.info("refused a malformed request (%s): %s", status, message or exc)
            text = (message or str(exc or "") or "bad request").splitlines()[0][:200]
        # no middleware ran: the request id is made here, as http_middleware would
        request_id = request.headers.get("X-Request-Id", "")[:64] or new_request_id()
        response = web.json_response(
            {"error": text, "request_id": request_id},
            status=status,
            headers={"X-Request-Id": request_id},
        )
        response.force_close()
        return response

    def _start_deadline(self) -> None:
        if self._started is None:
            self._guard.pending += 1
            loop = asyncio.get_running_loop()
            self._started = loop.time()
            if self._timer is None:
                self._timer = loop.call_at(
                    self._started + self._guard.header_timeout, self._check, loop
                )

    def _stop_deadline(self) -> None:
        if self._started is not None:
            self._started = None
            self._guard.pending -= 1

    def _check(self, loop: asyncio.AbstractEventLoop) -> None:
        """The timer fired: close the connection if the headers awaited now are late."""
        self._timer = None
        if self._started is None:  # none awaited: the next wait arms the timer again
            return
        deadline = self._started + self._guard.header_timeout
        if loop.time() < deadline:  # a later request's wait: not late yet
            self._timer = loop.call_at(deadline, self._check, loop)
            return
        self._started = None
        self._guard.pending -= 1
        self._guard.closed_slow += 1
        log.info("closed a connection that did not send its request headers in time")
        if self.transport is not None:
            self.transport.close()


class GuardedServer(web.Server):
    """aiohttp's low-level server, making `GuardedRequestHandler`s."""

    guard: SlowClientGuard

    def __call__(self) -> web.RequestHandler:
        return GuardedRequestHandler(self, loop=self._loop, guard=self.guard, **self._kwargs)


class GuardedAppRunner(web.AppRunner):
    """`web.AppRunner` whose server applies a `SlowClientGuard`."""

    def __init__(self, app: web.Application, *, guard: SlowClientGuard, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.guard = guard

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # the application builds a plain Server; give it the guarded handler factory
        server.__class__ = GuardedServer
        server.guard = self.guard  # type: ignore[attr-defined]
        return server
