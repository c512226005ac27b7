"""YAML models of the API and permission sections: `api_tokens`, `api` and `permissions`."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal, Self

from pydantic import Field, model_validator

from bot.config.checks import EnvName, IdOf, _Frozen, _given, _NamedSecret, _UserOrGroup

Scope = Literal["read", "write", "admin"]
SCOPES: tuple[Scope, ...] = ("read", "write", "admin")


class ApiTokenConfig(_NamedSecret):
    """A token for `/api/v1`: its name (the actor `api:<name>`), its secret and its scopes."""

    secret_of: ClassVar[str] = "api token"

    name: Annotated[str, IdOf("api token name")]

    scopes: tuple[Scope, ...] = Field(min_length=1)


class ApiConfig(_Frozen):
    """How `/api/v1` is protected beyond tokens: a per-token rate limit, `/metrics` access."""

    requests_per_minute: int = Field(default=600, ge=1, le=1_000_000)
    burst: int = Field(default=120, ge=1, le=1_000_000)
    metrics_token_env: EnvName | None = None  # set: GET /metrics needs this bearer token


class PermissionRule(_UserOrGroup):
    """One way to be allowed: the incident's team members, one person, or a user group."""

    team_members: Literal[True] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if len(_given(self, "team_members", "user", "user_group")) != 1:
            raise ValueError("set exactly one of team_members: true, user or user_group")
        return self


class PermissionsConfig(_Frozen):
    """Who may do what from Slack; an action left out is open to anyone in the workspace."""

    resolve: tuple[PermissionRule, ...] | None = None
    override: tuple[PermissionRule, ...] | None = None
    silence: tuple[PermissionRule, ...] | None = None  # read by the silences commands
    roles: tuple[PermissionRule, ...] | None = None  # incident lead and comms lead
    severity: tuple[PermissionRule, ...] | None = None  # changing an incident's severity
    run_workflow: tuple[PermissionRule, ...] | None = None  # workflow buttons, /incident run
