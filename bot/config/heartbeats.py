"""YAML model of `heartbeats`: dead-man switches that must be pinged at least every interval."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, ClassVar

from bot.config.checks import IdOf, _NamedSecret
from bot.config.types import Duration

HEARTBEAT_INTEGRATION = "heartbeat"
"""The integration name heartbeat alerts carry (reserved: no configured integration may use it)."""


class HeartbeatConfig(_NamedSecret):
    """`POST /heartbeats/<name>` with `Authorization: Bearer <token>` at least every `interval`;
    when `interval` + `grace` pass without a ping, an incident opens for `service`."""

    secret_of: ClassVar[str] = "heartbeat"

    name: Annotated[str, IdOf("heartbeat name")]

    interval: Duration
    grace: Duration | None = None  # omitted: no grace
    service: str

    @property
    def allowed_silence(self) -> timedelta:
        """How long after a ping the next one may arrive before the heartbeat counts as missed."""
        return self.interval + (self.grace or timedelta(0))
