"""Slow clients cannot hold the server: header deadlines, a cap on pending connections, and
bodies that must arrive in time."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from bot.app import create_app
from tests.conftest import TOKENS, Harness

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def guarded(harness: Harness) -> AsyncIterator[tuple[Harness, int]]:
    """The harness' app served a second time with tight limits: 0.5 s for headers, 3 pending."""
    from bot.server import start

    app = create_app(harness.settings(), harness.config, clock=harness.clock, environ={})
    runner, port = await start(app, host="127.0.0.1", port=0, header_timeout=0.5, max_pending=3)
    try:
        yield harness, port
    finally:
        await runner.cleanup()


async def closed_by_server(reader: asyncio.StreamReader, within: float) -> bool:
    try:
        async with asyncio.timeout(within):
            return await reader.read() == b""
    except TimeoutError:
        return False


async def test_a_client_too_slow_with_its_headers_is_disconnected(
    guarded: tuple[Harness, int],
) -> None:
    _, port = guarded
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /webhooks/generic HTTP/1.1\r\nHost: x\r\n")
    await writer.drain()
    for _ in range(3):  # one header line every 0.2 s: never done within 0.5 s
        await asyncio.sleep(0.2)
        writer.write(b"X-Slow: 1\r\n")
        await writer.drain()
    assert await closed_by_server(reader, within=1.0)
    writer.close()


async def test_past_the_cap_new_connections_are_closed_and_others_still_served(
    guarded: tuple[Harness, int],
) -> None:
    harness, port = guarded
    slow = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
    for _, writer in slow:
        writer.write(b"GET /healthz HTTP/1.1\r\n")
        await writer.drain()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    assert await closed_by_server(reader, within=0.4)  # refused at once
    writer.close()
    for _, w in slow:
        w.close()
    await asyncio.sleep(0.7)  # the slow ones are gone: a prompt client is served
    assert harness.http is not None
    async with harness.http.get(f"http://127.0.0.1:{port}/healthz") as r:
        assert r.status == 200


async def test_a_prompt_kept_alive_client_is_not_cut_off(guarded: tuple[Harness, int]) -> None:
    harness, port = guarded
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for _ in range(2):
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        status = await reader.readline()
        assert b" 200 " in status
        while (line := await reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await reader.readexactly(length)
        await asyncio.sleep(0.7)  # idle longer than the header deadline between requests
    writer.close()


async def read_response(reader: asyncio.StreamReader) -> bytes:
    """One response's status line, its headers and body read."""
    status = await reader.readline()
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    await reader.readexactly(length)
    return status


async def test_slow_headers_after_prompt_requests_on_one_connection_are_cut_off(
    guarded: tuple[Harness, int],
) -> None:
    """Each request's headers have their own deadline, though the connection has one timer:
    prompt requests first (the timer set by the first still pending), then one too slow."""
    _, port = guarded
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for _ in range(3):  # 0.15 s apart: the third starts 0.3 s after the first's deadline began
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        assert b" 200 " in await read_response(reader)
        await asyncio.sleep(0.15)
    writer.write(b"GET /healthz HTTP/1.1\r\n")  # then its headers, too slowly
    await writer.drain()
    started = asyncio.get_running_loop().time()
    for _ in range(2):  # still sending at the first request's deadline: not cut off then
        await asyncio.sleep(0.2)
        writer.write(b"X-Slow: 1\r\n")
        await writer.drain()
    assert await closed_by_server(reader, within=1.0)
    # its own 0.5 s, not the first request's deadline (which passed before it began)
    assert asyncio.get_running_loop().time() - started >= 0.45
    writer.close()


async def test_a_body_that_does_not_arrive_in_time_is_a_408(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from handlers import webhooks

    reader_of = webhooks.bounded_reader
    monkeypatch.setattr(webhooks, "bounded_reader", lambda request: reader_of(request, timeout=0.3))
    host, port = harness.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    body = json.dumps({"title": "slow body"}).encode()
    writer.write(
        b"POST /webhooks/generic HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {TOKENS['generic']}\r\n".encode()
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body[:5]
    )
    await writer.drain()
    status = await asyncio.wait_for(reader.readline(), 3)
    assert b" 408 " in status
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    answer = json.loads(await reader.readexactly(length))
    assert answer["fields"] == {"body": "too slow"}
    writer.close()
    _, listing = await harness.get("/api/v1/incidents")
    assert listing["total"] == 0


async def test_a_request_aiohttp_refuses_itself_is_answered_in_json(harness: Harness) -> None:
    assert harness.http is not None
    async with harness.http.get(f"{harness.url}/api/v1/incidents?team={'x' * 9000}") as r:
        assert r.status == 400
        assert r.content_type == "application/json"
        assert "8190" in (await r.json())["error"]
