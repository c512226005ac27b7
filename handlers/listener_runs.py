"""The run of an Events API listener, watched, so that its delivery is acknowledged only once
the listener has finished (`bot.server.ClaimingSocketModeHandler` over Socket Mode,
`handlers.slack_http.SlackEndpoint` over HTTP).

Bolt acknowledges an event before its listener starts and runs the listener in a task of its
own, so the ack says nothing about the work. Here the envelope's Bolt context carries a
`ListenerRun`: a listener registered with `on_event` marks it as about to run (a listener
middleware, called while Bolt dispatches, so the mark is there when dispatching returns), and
Bolt's listener start and completion hooks record the listener's task and its end; the one Bolt
error handler records a failure (`mark_failed`). A request that is not watched (an
interaction, a command) carries no `ListenerRun` and nothing changes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_bolt.listener.async_listener_completion_handler import AsyncListenerCompletionHandler
from slack_bolt.listener.async_listener_start_handler import AsyncListenerStartHandler
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

RUN_KEY = "pulseops_listener_run"
"""Where a `ListenerRun` sits in a Bolt request's context."""

Listener = Callable[..., Awaitable[None]]


class ListenerRun:
    """One request's listener, as Bolt runs it: whether one runs, its task, its end, a failure."""

    def __init__(self) -> None:
        self.expected = False  # a listener matched and is about to run
        self.failed = False
        self.task: asyncio.Task[Any] | None = None
        self._finished = asyncio.Event()

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    async def wait(self, within: float) -> bool:
        """Wait until the listener has finished (True), at most `within` seconds (False);
        True at once when no listener runs."""
        if not self.expected:
            return True
        try:
            async with asyncio.timeout(max(within, 0.0)):
                await self._finished.wait()
        except TimeoutError:
            return self.finished
        return True

    def done(self) -> None:
        """The listener returned or raised."""
        self._finished.set()

    def cancel(self) -> None:
        """Stop the listener (it ran past its claim's lease); nothing to do once it finished."""
        if self.task is not None and not self.finished:
            self.task.cancel()


def run_of(context: Mapping[str, Any]) -> ListenerRun | None:
    """The `ListenerRun` of a request's context, if it is watched."""
    run = context.get(RUN_KEY)
    return run if isinstance(run, ListenerRun) else None


def watch(request: AsyncBoltRequest) -> ListenerRun:
    """Watch the listener that `request` runs (before it is dispatched)."""
    run = ListenerRun()
    request.context[RUN_KEY] = run
    return run


def mark_failed(context: Mapping[str, Any]) -> None:
    """The listener of this request raised (called by the Bolt error handler)."""
    run = run_of(context)
    if run is not None:
        run.failed = True


async def _expect_run(context: AsyncBoltContext, next_: Callable[[], Awaitable[None]]) -> None:
    run = run_of(context)
    if run is not None:
        run.expected = True
    await next_()


class _RunStarts(AsyncListenerStartHandler):
    """Bolt's hook as a listener starts, in the listener's own task: note the task."""

    async def handle(self, request: AsyncBoltRequest, response: BoltResponse | None) -> None:
        run = run_of(request.context)
        if run is not None:
            run.task = asyncio.current_task()


class _RunEnds(AsyncListenerCompletionHandler):
    """Bolt's hook once a listener returned or raised (after the error handler ran)."""

    async def handle(self, request: AsyncBoltRequest, response: BoltResponse | None) -> None:
        run = run_of(request.context)
        if run is not None:
            run.done()


def on_event(app: AsyncApp, event: str, listener: Listener) -> None:
    """Register `listener` for the Events API `event`, its runs watched."""
    app.event(event, middleware=[_expect_run])(listener)


def register(app: AsyncApp) -> None:
    """Install Bolt's listener start and completion hooks that report to a `ListenerRun`."""
    runner = app.listener_runner
    runner.listener_start_handler = _RunStarts()
    runner.listener_completion_handler = _RunEnds()
