"""YAML models of the core sections: slack, teams, services, integrations and incidents."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator

from bot.config.checks import (
    _CHANNEL_PREFIX,
    _check_channel,
    _check_env_name,
    _check_id,
    _check_secret,
    _check_user_ids,
    _Frozen,
)
from bot.domain.incident import Severity
from bot.durations import Duration
from bot.errors import ConfigError

INTEGRATION_TYPES = ("alertmanager", "generic", "pagerduty")


class SlackConfig(_Frozen):
    """Where incidents are announced and how their channels are named."""

    incidents_channel: str
    channel_prefix: str = "inc"
    private_channels: bool = False

    @field_validator("incidents_channel")
    @classmethod
    def _channel(cls, value: str) -> str:
        return _check_channel(value)

    @field_validator("channel_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not _CHANNEL_PREFIX.fullmatch(value):
            raise ValueError(
                f"invalid channel_prefix {value!r}: up to 20 lowercase letters, digits, "
                "'-' and '_', starting with a letter or digit"
            )
        return value


class TeamConfig(_Frozen):
    """A team: its own channel and its members (Slack user IDs)."""

    id: str
    name: str = Field(min_length=1)
    channel: str | None = None
    members: tuple[str, ...] = ()
    escalation_policy: str | None = None

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        return _check_id(value)

    @field_validator("channel")
    @classmethod
    def _channel(cls, value: str | None) -> str | None:
        return None if value is None else _check_channel(value)

    @field_validator("members")
    @classmethod
    def _members(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _check_user_ids(value)


class ServiceConfig(_Frozen):
    """A service alerts are routed to; it belongs to one team."""

    id: str
    name: str = Field(min_length=1)
    team: str
    auto_resolve: bool = True
    escalation_policy: str | None = None

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        return _check_id(value)


class IntegrationConfig(_Frozen):
    """A webhook source: `POST /webhooks/<name>` with `Authorization: Bearer <token>`."""

    name: str
    type: Literal["alertmanager", "generic", "pagerduty"]
    token: SecretStr | None = None
    token_env: str | None = None
    service: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _check_id(value, "integration name")

    @field_validator("token")
    @classmethod
    def _non_empty(cls, value: SecretStr | None) -> SecretStr | None:
        return _check_secret(value)

    @field_validator("token_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        return _check_env_name(value)

    @model_validator(mode="after")
    def _one_token(self) -> Self:
        if (self.token is None) == (self.token_env is None):
            raise ValueError("set exactly one of token or token_env")
        return self

    def resolve_token(self, environ: Mapping[str, str]) -> str:
        """Return the bearer token, from `token` or the `token_env` variable; raise ConfigError."""
        if self.token is not None:
            return self.token.get_secret_value()
        value = environ.get(self.token_env or "", "")
        if not value:
            raise ConfigError(
                [f"integration {self.name!r}: environment variable {self.token_env} is not set"]
            )
        return value


def _parse_severity(value: Any) -> Any:
    if isinstance(value, Severity):
        return value
    severity = Severity.parse(value)
    if severity is None:
        raise ValueError(f"unknown severity {value!r}: use SEV1, SEV2, SEV3 or SEV4")
    return severity


class IncidentsConfig(_Frozen):
    """Incident and ingest tuning; every key is optional."""

    default_severity: Severity = Severity.SEV3
    idempotency_ttl: Duration = timedelta(hours=24)
    repeat_note_interval: Duration = timedelta(hours=1)
    max_body_bytes: int = Field(default=1_048_576, gt=0, le=64 * 1_048_576)

    @field_validator("default_severity", mode="before")
    @classmethod
    def _severity(cls, value: Any) -> Any:
        return _parse_severity(value)
