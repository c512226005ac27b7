"""A real local HTTP receiver for outgoing webhooks: verifies the HMAC signature, counts calls,
and answers with the statuses a test scripts."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Call:
    path: str
    method: str
    headers: dict[str, str]
    body: bytes
    signed: bool | None  # None: no signature header

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """`statuses` are answered in turn (the last one for ever after)."""

    secret: str | None = None
    statuses: list[int] = field(default_factory=lambda: [200])
    answer: str = '{"restarted": true}'
    redirect_to: str | None = None
    calls: list[Call] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None

    def verified(self, headers: dict[str, str], body: bytes) -> bool | None:
        given = headers.get("X-PulseOps-Signature")
        if given is None:
            return None
        if self.secret is None:
            return False
        expected = "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(given, expected)

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = dict(request.headers)
        self.calls.append(
            Call(request.path, request.method, headers, body, self.verified(headers, body))
        )
        if self.redirect_to is not None:
            raise web.HTTPFound(self.redirect_to)
        status = self.statuses[min(len(self.calls) - 1, len(self.statuses) - 1)]
        return web.Response(status=status, text=self.answer, content_type="application/json")

    async def start(self, port: int = 0) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        bound = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{bound}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
