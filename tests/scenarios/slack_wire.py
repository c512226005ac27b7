"""Slack requests on the wire for the scenario tests: capture what the emulator sends, sign
bodies by hand, send either to the app or to another replica of it."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web

from bot.app import create_app
from bot.server import start
from tests.conftest import SIGNING_SECRET, Harness

FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class Captured:
    """One request as it crossed the wire: its body and Slack's headers."""

    body: bytes
    headers: dict[str, str]


def signed_headers(
    body: bytes,
    *,
    content_type: str = FORM,
    ts: str | None = None,
    secret: str = SIGNING_SECRET,
) -> dict[str, str]:
    """Slack's headers for `body`, signed with `secret` at `ts` (default: now)."""
    ts = str(int(time.time())) if ts is None else ts
    digest = hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256)
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": f"v0={digest.hexdigest()}",
    }


@asynccontextmanager
async def tap(harness: Harness) -> AsyncIterator[list[Captured]]:
    """Put a recorder between the emulator and the app, as someone on the path would.

    It keeps each request the emulator sends and answers 200 with an empty body itself (as the
    app acknowledges), without passing it on: the test sends the captured copies.
    """
    captured: list[Captured] = []

    async def record(request: web.Request) -> web.Response:
        headers = {
            name: value
            for name, value in request.headers.items()
            if name.lower().startswith("x-slack-") or name.lower() == "content-type"
        }
        captured.append(Captured(await request.read(), headers))
        return web.Response(status=200)

    recorder = web.Application()
    recorder.router.add_post("/", record)
    runner, port = await start(recorder, host="127.0.0.1", port=0)
    target = harness.emu.request_url
    harness.emu.request_url = f"http://127.0.0.1:{port}/"
    try:
        yield captured
    finally:
        harness.emu.request_url = target
        await runner.cleanup()


@asynccontextmanager
async def replica(harness: Harness) -> AsyncIterator[str]:
    """Another replica of the service on the same database (no jobs); yields its URL."""
    other = create_app(
        harness.settings(), harness.config, clock=harness.clock, environ={}, run_jobs=False
    )
    runner, port = await start(other, host="127.0.0.1", port=0)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def send(
    harness: Harness, body: bytes, headers: dict[str, str], *, url: str | None = None
) -> tuple[int, bytes]:
    """POST to `/slack/events` of `url` (default: the harness's app); (status, body)."""
    assert harness.http is not None
    async with harness.http.post(
        f"{url or harness.url}/slack/events", data=body, headers=headers
    ) as r:
        return r.status, await r.read()
