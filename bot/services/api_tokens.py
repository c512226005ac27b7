"""API tokens: configured ones and ones created at run time (stored hashed); who a secret is.

A secret is never stored or logged: run-time tokens keep only their SHA-256 (the secrets are
random, 256 bits, so a plain hash is enough), and `authenticate` compares digests with
`hmac.compare_digest` against every known token without stopping at the first match.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from bot.clock import Clock
from bot.config import PulseOpsConfig
from bot.config.api import SCOPES
from bot.config.checks import _check_id
from bot.errors import Conflict, UserError
from store.api_tokens import ApiTokenRepository, StoredToken
from store.session import Database

TOKEN_PREFIX = "pulseops_"
STORED_TTL = 5.0
"""Seconds a replica trusts its copy of the stored tokens: a revocation (by the CLI or another
replica) takes effect everywhere within this long."""


@dataclass(frozen=True, slots=True)
class ApiIdentity:
    """Who called: a token's name and scopes (`admin` allows everything)."""

    name: str
    scopes: frozenset[str]

    @property
    def actor(self) -> str:
        """How timelines and logs name changes made with this token."""
        return f"api:{self.name}"

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A token as `pulseops token list` shows it: never the secret."""

    name: str
    scopes: tuple[str, ...]
    source: str  # "config" or "created"
    created_at: str | None = None


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_scopes(text: str) -> tuple[str, ...]:
    """`read,write` as a scope tuple; UserError naming an unknown scope."""
    scopes = tuple(dict.fromkeys(s.strip() for s in text.split(",") if s.strip()))
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        raise UserError(
            f"scopes must be a comma-separated list of {', '.join(SCOPES)}",
            fields={"scopes": f"unknown: {', '.join(unknown)}" if unknown else "empty"},
        )
    return scopes


class ApiTokens:
    """Authenticates API secrets; creates, lists and revokes run-time tokens."""

    def __init__(
        self,
        *,
        db: Database,
        config: PulseOpsConfig,
        clock: Clock,
        environ: Mapping[str, str],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.clock = clock
        self._monotonic = monotonic
        self._configured = [
            (t.name, digest(t.resolve_token(environ)), frozenset(t.scopes))
            for t in config.api_tokens
        ]
        self._configured_names = {t.name for t in config.api_tokens}
        self._stored: list[tuple[str, str, frozenset[str]]] = []
        self._stored_at: float | None = None

    async def authenticate(self, secret: str) -> ApiIdentity | None:
        """The token `secret` belongs to, or None; constant-time in the secret."""
        presented = digest(secret)
        found: ApiIdentity | None = None
        for name, known, scopes in [*self._configured, *await self._stored_tokens()]:
            if hmac.compare_digest(presented, known) and found is None:
                found = ApiIdentity(name=name, scopes=scopes)
        return found

    def forget(self) -> None:
        """Re-read the stored tokens on the next request (not waiting for STORED_TTL)."""
        self._stored_at = None

    async def _stored_tokens(self) -> Sequence[tuple[str, str, frozenset[str]]]:
        now = self._monotonic()
        if self._stored_at is None or now - self._stored_at >= STORED_TTL:
            async with self.db.read() as session:
                rows = await ApiTokenRepository(session).all()
            self._stored = [(r.name, r.token_sha256, frozenset(r.scopes)) for r in rows]
            self._stored_at = now
        return self._stored

    async def create(self, *, name: str, scopes: Sequence[str]) -> tuple[StoredToken, str]:
        """Create a token; returns it and its secret, which is shown this once only."""
        try:
            _check_id(name, "api token name")
        except ValueError as exc:
            raise UserError(str(exc), fields={"name": "invalid"}) from None
        if name in self._configured_names:
            raise Conflict(f"{name!r} is a configured API token", fields={"name": "taken"})
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        async with self.db.write() as session:
            stored = await ApiTokenRepository(session).add(
                name=name, token_sha256=digest(secret), scopes=tuple(scopes), now=self.clock.now()
            )
        self._stored_at = None
        return stored, secret

    async def ensure(self, *, name: str, secret: str, scopes: Sequence[str]) -> None:
        """Store `secret` as token `name` unless a token by that name exists (the sandbox)."""
        async with self.db.write() as session:
            repo = ApiTokenRepository(session)
            if all(t.name != name for t in await repo.all()):
                await repo.add(
                    name=name,
                    token_sha256=digest(secret),
                    scopes=tuple(scopes),
                    now=self.clock.now(),
                )
        self._stored_at = None

    async def list(self, config: PulseOpsConfig) -> list[TokenInfo]:
        """Configured tokens, then created ones, by name."""
        async with self.db.read() as session:
            stored = await ApiTokenRepository(session).all()
        return [
            *(TokenInfo(t.name, tuple(t.scopes), "config") for t in config.api_tokens),
            *(TokenInfo(t.name, t.scopes, "created", t.created_at.isoformat()) for t in stored),
        ]

    async def revoke(self, *, name: str) -> None:
        """Delete a created token (NotFound; configured tokens are removed from the file)."""
        if name in self._configured_names:
            raise UserError(
                f"{name!r} is configured in the YAML file: remove it there and restart",
                fields={"name": "configured"},
            )
        async with self.db.write() as session:
            await ApiTokenRepository(session).remove(name=name)
        self._stored_at = None


__all__ = ["ApiIdentity", "ApiTokens", "TokenInfo", "parse_scopes"]
