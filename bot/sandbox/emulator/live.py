"""Live updates for the sandbox page: a change counter and its Server-Sent Events stream.

Everything that can change what the page shows (a Web API call starting or finishing, a
driven click, command, submission or message, a fault change) bumps the counter. The stream
tells each open page the new revision and the next call index, coalescing bursts, so a storm of
Web API calls costs the browser a few refreshes a second rather than one per call.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from importlib import resources

from aiohttp import web

COALESCE_SECONDS = 0.1
KEEPALIVE_SECONDS = 15.0

STATIC_FILES = {
    "index.html": "text/html",
    "app.js": "text/javascript",
    "state.js": "text/javascript",
    "dom.js": "text/javascript",
    "mrkdwn.js": "text/javascript",
    "blockkit.js": "text/javascript",
    "messages.js": "text/javascript",
    "layout.js": "text/javascript",
    "composer.js": "text/javascript",
    "complete.js": "text/javascript",
    "modal.js": "text/javascript",
    "devpanel.js": "text/javascript",
    "phones.js": "text/javascript",
    "app.css": "text/css",
}


class Changes:
    """A revision number that waiters can wait on."""

    def __init__(self) -> None:
        self.revision = 0
        self._changed = asyncio.Event()

    def bump(self) -> None:
        """Record that something changed and wake every stream."""
        self.revision += 1
        self._changed.set()

    async def wait_beyond(self, revision: int, within: float) -> bool:
        """Wait until the revision passes `revision`; False on timeout."""
        while self.revision <= revision:
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), within)
            except TimeoutError:
                return self.revision > revision
        return True


async def stream(
    request: web.Request,
    changes: Changes,
    next_call: Callable[[], int],
    closing: asyncio.Event,
) -> web.StreamResponse:
    """GET /_emulator/events: `change` events {"revision", "calls"} until the client leaves."""
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    sent = -1
    try:
        while not closing.is_set():
            if changes.revision != sent:
                sent = changes.revision
                data = json.dumps({"revision": sent, "calls": next_call()})
                await response.write(f"event: change\ndata: {data}\n\n".encode())
            elif not await changes.wait_beyond(sent, KEEPALIVE_SECONDS):
                await response.write(b": keep-alive\n\n")
                continue
            await asyncio.sleep(COALESCE_SECONDS)
    except ConnectionResetError:
        pass  # the page went away
    return response


def static_file(name: str) -> web.Response:
    """One of the page's files, read from the installed package."""
    content_type = STATIC_FILES.get(name)
    if content_type is None:
        return web.json_response({"ok": False, "error": "not_found"}, status=404)
    body = resources.files("bot.sandbox.emulator").joinpath("static", name).read_bytes()
    return web.Response(
        body=body,
        content_type=content_type,
        charset="utf-8",
        headers={"Cache-Control": "no-cache"},
    )
