"""Shared building blocks of the YAML models: id patterns, the frozen base and field checks."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, SecretStr, field_validator, model_validator

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


def _check_secret(value: SecretStr | None) -> SecretStr | None:
    if value is not None and not value.get_secret_value().strip():
        raise ValueError("must not be empty")
    return value


def _check_env_name(value: str | None) -> str | None:
    if value is not None and not _ENV_NAME.fullmatch(value):
        raise ValueError(f"invalid environment variable name {value!r}")
    return value


def _non_empty_list(value: tuple[Any, ...], what: str) -> tuple[Any, ...]:
    if not value:
        raise ValueError(f"must list at least one {what}")
    return value


class _NamedSecret(_Frozen):
    """A named thing with a secret: given as `token`, or as `token_env`, the name of an
    environment variable holding it (exactly one of the two)."""

    secret_of: ClassVar[str] = "secret"  # how errors name the owner, e.g. "integration"

    name: str
    token: SecretStr | None = None
    token_env: str | None = None

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
