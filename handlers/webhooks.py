"""`POST /webhooks/{integration}` (and `/webhooks/{integration}/{token}` for slack-webhook
integrations): a delivery through the alert pipeline; JSON answers only.

Every rejection (401, 400, 404, 409, 413) happens before anything is written.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

import orjson
from aiohttp import web

from bot.deps import DEPS, Deps
from bot.errors import PayloadTooLarge, RequestTimeout
from bot.ingest.stages import BodyReader, Received

BODY_TIMEOUT = 10.0  # seconds a sender has to send the whole body


def bounded_reader(request: web.Request, *, timeout: float = BODY_TIMEOUT) -> BodyReader:
    """Read `request`'s body, refusing it once larger than the limit given or slower than
    `timeout` seconds."""

    async def read(limit: int) -> bytes:
        def too_large() -> PayloadTooLarge:
            return PayloadTooLarge(
                f"body is larger than {limit} bytes", fields={"body": "too large"}
            )

        if request.content_length is not None and request.content_length > limit:
            raise too_large()
        if request.content.is_eof():  # all there already (a small body): no timer needed
            body = request.content.read_nowait()
            if len(body) > limit:
                raise too_large()
            return body
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(timeout):
                async for chunk in request.content.iter_chunked(64 * 1024):
                    size += len(chunk)
                    if size > limit:
                        raise too_large()
                    chunks.append(chunk)
        except TimeoutError:
            raise RequestTimeout(
                f"the body did not arrive within {timeout:g} s", fields={"body": "too slow"}
            ) from None
        return b"".join(chunks)

    return read


def received_of(request: web.Request, now: datetime) -> Received:
    """The delivery as the receiving stages take it: the integration and token the URL
    names, the headers, and the body still to be read."""
    token = request.match_info.get("token")
    return Received(
        name=request.match_info["integration"],
        headers=request.headers,
        read=bounded_reader(request),
        now=now,
        params={"token": token} if token is not None else {},
    )


async def receive(request: web.Request) -> web.Response:
    """Accept one delivery (the receiving stages), then apply it (committed before 2xx)."""
    deps = request.app[DEPS]
    accepted = await deps.ingest.pipeline.accept(received_of(request, deps.clock.now()))
    delivery = await deps.ingest.submit(accepted)
    # as web.json_response, with orjson's encoder (several times faster than json.dumps)
    return web.Response(
        body=orjson.dumps(delivery.body),
        status=delivery.status,
        content_type="application/json",
        charset="utf-8",
    )


def register(app: web.Application, deps: Deps) -> None:
    """Add the alert webhook routes."""
    app.router.add_post("/webhooks/{integration}", receive)
    # a Slack-incoming-webhook-style URL: the token is its last segment (slack-webhook only)
    app.router.add_post(SECRET_ROUTE, receive)


SECRET_ROUTE = "/webhooks/{integration}/{token}"
"""Its path holds a secret: the access log shows the route instead (see middleware)."""
