"""`POST /webhooks/{integration}`: authenticate, bound, parse, ingest; JSON answers only.

Every rejection (401, 400, 404, 409, 413) happens before anything is written.
"""

from __future__ import annotations

import hmac
import json

from aiohttp import web
from pydantic import ValidationError

from bot.deps import Deps
from bot.errors import AuthError, NotFound, PayloadTooLarge, UserError
from bot.ingest import PARSERS, validation_problems
from bot.services.alerts import IngestRequest


async def _read_limited(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"body is larger than {limit} bytes", fields={"body": "too large"})
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(
                f"body is larger than {limit} bytes", fields={"body": "too large"}
            )
        chunks.append(chunk)
    return b"".join(chunks)


def register(app: web.Application, deps: Deps) -> None:
    """Add the alert webhook route."""

    async def receive(request: web.Request) -> web.Response:
        name = request.match_info["integration"]
        integration = deps.config.integration(name)
        if integration is None:
            deps.metrics.webhooks_rejected.labels(integration="unknown", reason="not_found").inc()
            raise NotFound(f"no integration named {name!r}", fields={"integration": "unknown"})
        expected = deps.integration_tokens[integration.name]
        given = request.headers.get("Authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip(), expected):
            deps.metrics.webhooks_rejected.labels(integration=name, reason="unauthorized").inc()
            raise AuthError("missing or wrong bearer token in the Authorization header")
        try:
            body = await _read_limited(request, deps.config.incidents.max_body_bytes)
        except UserError:
            deps.metrics.webhooks_rejected.labels(integration=name, reason="too_large").inc()
            raise
        try:
            document = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            deps.metrics.webhooks_rejected.labels(integration=name, reason="bad_json").inc()
            raise UserError(
                f"body is not valid JSON: {exc}", fields={"body": "invalid JSON"}
            ) from None
        try:
            alerts = PARSERS[integration.type](document, deps.clock.now())
        except ValidationError as exc:
            deps.metrics.webhooks_rejected.labels(integration=name, reason="invalid").inc()
            problems = validation_problems(exc)
            raise UserError(
                f"body is not a valid {integration.type} payload", fields=problems
            ) from None
        key = request.headers.get("Idempotency-Key", "").strip() or None
        if key is not None and len(key) > 255:
            raise UserError(
                "Idempotency-Key is longer than 255 characters",
                fields={"Idempotency-Key": "too long"},
            )
        delivery = await deps.ingest.submit(
            IngestRequest.of(integration, alerts, idempotency_key=key, body=body)
        )
        return web.json_response(delivery.body, status=delivery.status)

    app.router.add_post("/webhooks/{integration}", receive)
