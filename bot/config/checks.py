"""Shared building blocks of the YAML models: id patterns, the frozen base, field checks and
the field types built on them (`EnvName`, `Secret`, `CallTimeout`, `HttpUrl`, `IdOf(...)`)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Annotated, Any, ClassVar, Self
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    SecretStr,
    field_validator,
    model_validator,
)

from bot.config.types import Duration
from bot.domain.incident import Severity
from bot.errors import ConfigError

_ID = re.compile(r"[a-z0-9][a-z0-9_-]*")
_USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")
_CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{2,}")
_CHANNEL_NAME = re.compile(r"#[a-z0-9][a-z0-9_-]{0,79}")
_CHANNEL_PREFIX = re.compile(r"[a-z0-9][a-z0-9_-]{0,19}")
_USER_GROUP_ID = re.compile(r"S[A-Z0-9]{2,}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_id(value: str, what: str = "id") -> str:
    if not _ID.fullmatch(value):
        raise ValueError(
            f"invalid {what} {value!r}: use lowercase letters, digits, '-' and '_', "
            "starting with a letter or digit"
        )
    return value


def _check_channel(value: str) -> str:
    if not (_CHANNEL_ID.fullmatch(value) or _CHANNEL_NAME.fullmatch(value)):
        raise ValueError(
            f"invalid channel {value!r}: use a channel ID such as C0INCIDENT or '#name' "
            "(lowercase letters, digits, '-' and '_')"
        )
    return value


def _check_user_ids(values: tuple[str, ...]) -> tuple[str, ...]:
    bad = [m for m in values if not _USER_ID.fullmatch(m)]
    if bad:
        raise ValueError(
            f"not Slack user IDs: {', '.join(repr(m) for m in bad)} "
            "(user IDs look like U0ALICE01; find one under a profile's ⋮ > Copy member ID)"
        )
    return values


def _check_user_group(value: str) -> str:
    if not _USER_GROUP_ID.fullmatch(value):
        raise ValueError(
            f"invalid user group {value!r}: use a user group ID such as S0PAYONCAL, not its "
            "@handle (the ID is in the group's URL)"
        )
    return value


def _check_secret(value: SecretStr) -> SecretStr:
    if not value.get_secret_value().strip():
        raise ValueError("must not be empty")
    return value


def _check_env_name(value: str) -> str:
    if not _ENV_NAME.fullmatch(value):
        raise ValueError(f"invalid environment variable name {value!r}")
    return value


MAX_CALL_TIMEOUT = timedelta(seconds=60)


def _check_call_timeout(value: timedelta) -> timedelta:
    if value > MAX_CALL_TIMEOUT:
        raise ValueError("must be at most 60s")
    return value


def _check_http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"invalid URL {value!r}: use an absolute http:// or https:// URL with a host, "
            "e.g. https://checkout.example/health"
        )
    return value


def IdOf(what: str) -> AfterValidator:
    """The check of an id or name field, naming it in errors: `Annotated[str, IdOf("probe id")]`."""
    return AfterValidator(lambda value: _check_id(value, what))


EnvName = Annotated[str, AfterValidator(_check_env_name)]
"""The name of an environment variable (holding a secret, say)."""
Secret = Annotated[SecretStr, AfterValidator(_check_secret)]
"""A secret given in the file itself; never empty, never printed."""
CallTimeout = Annotated[Duration, AfterValidator(_check_call_timeout)]
"""How long one outgoing call (webhook, probe, event) may take: at most 60s."""
HttpUrl = Annotated[str, AfterValidator(_check_http_url)]
"""An absolute http:// or https:// URL with a host."""


def _parse_severity(value: Any) -> Any:
    """A severity from `SEV2`, `critical`, `P1`…; None and Severity values pass through."""
    if value is None or isinstance(value, Severity):
        return value
    severity = Severity.parse(value)
    if severity is None:
        raise ValueError(f"unknown severity {value!r}: use SEV1, SEV2, SEV3 or SEV4")
    return severity


def _non_empty_list(value: tuple[Any, ...], what: str) -> tuple[Any, ...]:
    if not value:
        raise ValueError(f"must list at least one {what}")
    return value


def _repeated(values: Iterable[str]) -> list[str]:
    """The values given more than once, sorted."""
    values = list(values)
    return sorted({v for v in values if values.count(v) > 1})


def _given(model: BaseModel, *names: str) -> list[str]:
    """Which of the fields `names` are set (not None), in the order named."""
    return [name for name in names if getattr(model, name) is not None]


def _at_most_one(model: BaseModel, first: str, second: str) -> None:
    """Refuse a model that sets both `first` and `second` (a secret and its variable, say)."""
    if len(_given(model, first, second)) > 1:
        raise ValueError(f"set at most one of {first} or {second}")


class _NamedSecret(_Frozen):
    """A named thing with a secret: given as `token`, or as `token_env`, the name of an
    environment variable holding it (exactly one of the two)."""

    secret_of: ClassVar[str] = "secret"  # how errors name the owner, e.g. "integration"

    name: str
    token: Secret | None = None
    token_env: EnvName | None = None

    @model_validator(mode="after")
    def _one_token(self) -> Self:
        if len(_given(self, "token", "token_env")) != 1:
            raise ValueError("set exactly one of token or token_env")
        return self

    def resolve_token(self, environ: Mapping[str, str]) -> str:
        """The secret, from `token` or the `token_env` variable; ConfigError when unset."""
        if self.token is not None:
            return self.token.get_secret_value()
        value = environ.get(self.token_env or "", "")
        if not value:
            unset = f"environment variable {self.token_env} is not set"
            raise ConfigError([f"{self.secret_of} {self.name!r}: {unset}"])
        return value


class _UserOrGroup(_Frozen):
    """Names a person or a Slack user group (subclasses add other choices and say which
    combinations are allowed)."""

    user: str | None = None
    user_group: str | None = None

    @field_validator("user")
    @classmethod
    def _user(cls, value: str | None) -> str | None:
        return None if value is None else _check_user_ids((value,))[0]

    @field_validator("user_group")
    @classmethod
    def _group(cls, value: str | None) -> str | None:
        return None if value is None else _check_user_group(value)
