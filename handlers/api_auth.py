"""Bearer tokens in front of every `/api/v1` route (and optionally /metrics), with scopes and a
per-token rate limit.

One middleware guards the whole prefix, so a route added later is protected without doing
anything: only the OpenAPI document is open. GET/HEAD need the `read` scope, anything else
`write` (`admin` allows both). The token's name, never its secret, goes into the access log.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from aiohttp import web

from bot.errors import Forbidden, TooManyRequests
from bot.services.api_tokens import ApiIdentity, ApiTokens
from bot.slack.ratelimit import TokenBucket
from handlers.middleware import API_TOKEN_NAME, Guard, Handler, error_body

API_PREFIX = "/api/v1"
OPEN_ROUTES = frozenset({"/api/v1/openapi.json"})
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
IDENTITY = web.RequestKey("api_identity", ApiIdentity)
"""Where the middleware leaves the caller's `ApiIdentity` on the request."""


def identity_of(request: web.Request) -> ApiIdentity:
    """The authenticated caller of an `/api/v1` route."""
    if IDENTITY not in request:
        raise RuntimeError("no API identity: the route is not behind api_auth_middleware")
    return request[IDENTITY]


def is_api(request: web.Request) -> bool:
    """Whether the request is for the token-protected API, by path or by the route it matched."""
    resource = request.match_info.route.resource
    canonical = resource.canonical if resource is not None else ""
    path = request.path
    if not (path.startswith(API_PREFIX) or canonical.startswith(API_PREFIX)):
        return False  # the common case for webhooks: nothing more to compare
    return any(
        p == API_PREFIX or p.startswith(API_PREFIX + "/") for p in (path, canonical)
    ) and not (path in OPEN_ROUTES and canonical in OPEN_ROUTES | {""})


def bearer(request: web.Request) -> str:
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    return secret.strip() if scheme.lower() == "bearer" else ""


class RateLimiter:
    """A token bucket per API token: `per_minute` on average, `burst` at once."""

    def __init__(self, *, per_minute: int, burst: int, monotonic: Callable[[], float]) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.monotonic = monotonic
        self._buckets: dict[str, TokenBucket] = {}

    def check(self, name: str) -> None:
        """Spend one request of `name`'s budget; TooManyRequests when it is spent."""
        bucket = self._buckets.get(name)
        if bucket is None:
            bucket = self._buckets[name] = TokenBucket(
                rate=self.rate, burst=self.burst, monotonic=self.monotonic
            )
        wait = bucket.wait_time()
        if wait > 0:
            raise TooManyRequests(
                f"API token {name!r} is over its rate limit; retry after the Retry-After seconds",
                retry_after=wait,
            )
        bucket.take()


def _unauthorized(message: str) -> web.Response:
    return web.json_response(
        error_body(message), status=401, headers={"WWW-Authenticate": 'Bearer realm="pulseops"'}
    )


def api_auth_middleware(
    tokens: ApiTokens, limiter: RateLimiter, *, metrics_token: str | None
) -> Guard:
    """The middleware: 401 without a valid token, 403 naming a missing scope, 429 over limit.

    `http_middleware` runs it itself, only for the requests it `applies` to (the API and a
    protected /metrics): one middleware layer fewer for every webhook delivery."""

    def applies(request: web.Request) -> bool:
        return (request.path == "/metrics" and metrics_token is not None) or is_api(request)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == "/metrics" and metrics_token is not None:
            if not hmac.compare_digest(bearer(request).encode(), metrics_token.encode()):
                return _unauthorized("GET /metrics needs Authorization: Bearer <metrics token>")
            return await handler(request)
        if not is_api(request):
            return await handler(request)
        secret = bearer(request)
        identity = await tokens.authenticate(secret) if secret else None
        if identity is None:
            return _unauthorized(
                "missing or unknown API token: send Authorization: Bearer <api token>"
                if not secret
                else "unknown API token"
            )
        request[API_TOKEN_NAME] = identity.name
        request[IDENTITY] = identity
        scope = "read" if request.method in READ_METHODS else "write"
        if not identity.allows(scope):
            raise Forbidden(
                f"API token {identity.name!r} lacks the {scope!r} scope this call needs",
                fields={"scope": f"missing {scope}"},
            )
        limiter.check(identity.name)
        return await handler(request)

    return Guard(applies, middleware)
