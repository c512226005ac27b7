"""YAML models of `health` (when `/readyz` says PulseOps has fallen behind, how long a webhook
waits for its commit) and `watchdog` (an outbound dead-man ping while PulseOps is healthy)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Literal, Self
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from bot.config.checks import EnvName, Secret, _Frozen
from bot.config.types import Duration
from bot.errors import ConfigError

MAX_COMMIT_TIMEOUT = timedelta(seconds=60)
MAX_WATCHDOG_TIMEOUT = timedelta(seconds=60)
MIN_WATCHDOG_INTERVAL = timedelta(seconds=1)


class HealthConfig(_Frozen):
    """`/readyz` answers 503 when PulseOps has fallen behind by more than these:

    - `outbox_lag`: the oldest effect due for delivery (a Slack message, a page, a webhook
      call) has waited this long;
    - `job_lag`: a periodic job (sweeps, the outbox worker, probes...) last succeeded this long
      ago, or `job_lag_intervals` of its intervals ago, whichever is longer;
    - `deadline_lag`: an escalation step or a rotation handoff is this far past its time
      without being swept.

    `commit_timeout`: a webhook, drop-in alert or heartbeat ping not committed within this
    answers 503 with `Retry-After` (the database is unreachable, locked or out of connections).
    """

    outbox_lag: Duration = timedelta(minutes=2)
    job_lag: Duration = timedelta(minutes=2)
    job_lag_intervals: int = Field(default=3, ge=2, le=100)
    deadline_lag: Duration = timedelta(minutes=2)
    commit_timeout: Duration = timedelta(seconds=5)

    @field_validator("commit_timeout")
    @classmethod
    def _commit_timeout(cls, value: timedelta) -> timedelta:
        if value > MAX_COMMIT_TIMEOUT:
            raise ValueError("must be at most 60s (senders give up on a webhook long before)")
        return value


class WatchdogConfig(_Frozen):
    """Call `url` every `interval` while this replica is healthy (the `/readyz` checks pass),
    so a dead-man service (healthchecks.io, another PulseOps' `POST /heartbeats/<name>`) pages
    someone when PulseOps is down or stuck. `token` or `token_env`: sent as
    `Authorization: Bearer <token>`."""

    url: str
    method: Literal["GET", "POST", "HEAD"] = "POST"
    interval: Duration = timedelta(seconds=60)
    timeout: Duration = timedelta(seconds=5)
    token: Secret | None = None
    token_env: EnvName | None = None

    @field_validator("method", mode="before")
    @classmethod
    def _method(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"invalid URL: use an absolute http:// or https:// URL, e.g. "
                f"https://hc-ping.com/<uuid> (got a {parts.scheme or 'scheme-less'} URL)"
            )
        return value

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        if self.token is not None and self.token_env is not None:
            raise ValueError("set at most one of token or token_env")
        if self.interval < MIN_WATCHDOG_INTERVAL:
            raise ValueError("interval must be at least 1s")
        if self.timeout > MAX_WATCHDOG_TIMEOUT:
            raise ValueError("timeout must be at most 60s")
        if self.timeout >= self.interval:
            raise ValueError("timeout must be shorter than interval")
        return self

    @property
    def host(self) -> str:
        return (urlsplit(self.url).hostname or "").lower()

    def resolve_token(self, environ: Mapping[str, str]) -> str | None:
        """The bearer token (None: none is sent); ConfigError when `token_env` is unset."""
        if self.token is not None:
            return self.token.get_secret_value()
        if self.token_env is None:
            return None
        value = environ.get(self.token_env, "")
        if not value:
            raise ConfigError([f"watchdog: environment variable {self.token_env} is not set"])
        return value
