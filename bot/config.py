"""Configuration: environment `Settings` and the YAML file's models, validated with line numbers."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from bot.domain.incident import Severity
from bot.durations import Duration
from bot.errors import ConfigError

EXAMPLE_CONFIG_PATH = Path(__file__).parent / "examples" / "pulseops.yml"
"""The commented example configuration shipped with the package (also used by the sandbox)."""

INTEGRATION_TYPES = ("alertmanager", "generic", "pagerduty")

_ID = re.compile(r"[a-z0-9][a-z0-9_-]*")
_USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")
_CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{2,}")
_CHANNEL_NAME = re.compile(r"#[a-z0-9][a-z0-9_-]{0,79}")
_CHANNEL_PREFIX = re.compile(r"[a-z0-9][a-z0-9_-]{0,19}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


# --------------------------------------------------------------------------- environment


class Settings(BaseSettings):
    """Process settings from the environment (names as in SPEC.md); built by the factory/CLI."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    slack_bot_token: SecretStr | None = Field(default=None, validation_alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(
        default=None, validation_alias="SLACK_SIGNING_SECRET"
    )
    slack_app_token: SecretStr | None = Field(default=None, validation_alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field(default="https://slack.com/api/", validation_alias="SLACK_API_URL")
    database_url: str = Field(
        default="sqlite+aiosqlite:///pulseops.db", validation_alias="PULSEOPS_DATABASE_URL"
    )
    config_path: Path = Field(default=Path("pulseops.yml"), validation_alias="PULSEOPS_CONFIG")
    host: str = Field(default="0.0.0.0", validation_alias="PULSEOPS_HOST")
    port: int = Field(default=3000, ge=0, le=65535, validation_alias="PULSEOPS_PORT")
    log_format: Literal["json", "text"] = Field(
        default="json", validation_alias="PULSEOPS_LOG_FORMAT"
    )
    log_level: str = Field(default="INFO", validation_alias="PULSEOPS_LOG_LEVEL")

    @field_validator("slack_api_url")
    @classmethod
    def _trailing_slash(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be empty")
        return value if value.endswith("/") else value + "/"

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @property
    def socket_mode(self) -> bool:
        """True when an app-level token is set: connect over Socket Mode instead of HTTP."""
        return _is_set(self.slack_app_token)

    def require_for_serve(self) -> None:
        """Raise ConfigError naming every variable `pulseops serve` needs but lacks."""
        missing: list[str] = []
        if not _is_set(self.slack_bot_token):
            missing.append("SLACK_BOT_TOKEN is not set (the bot token, xoxb-…)")
        if not self.socket_mode and not _is_set(self.slack_signing_secret):
            missing.append(
                "SLACK_SIGNING_SECRET is not set (required in HTTP mode; "
                "set SLACK_APP_TOKEN instead to use Socket Mode)"
            )
        if missing:
            raise ConfigError(missing)


class _MappingSettings(Settings):
    """Settings read only from the mapping given to `load_settings`, never from os.environ."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from `environ` (default os.environ); ConfigError names bad variables."""
    try:
        if environ is None:
            return Settings()
        names = {str(f.validation_alias) for f in Settings.model_fields.values()}
        values: dict[str, Any] = {k: v for k, v in environ.items() if k in names}
        return _MappingSettings(**values)
    except ValidationError as exc:
        raise ConfigError(
            [f"{_loc_name(e['loc'])}: {_clean_message(e)}" for e in exc.errors()]
        ) from None


def _is_set(secret: SecretStr | None) -> bool:
    return secret is not None and secret.get_secret_value().strip() != ""


# --------------------------------------------------------------------------- YAML models


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
        bad = [m for m in value if not _USER_ID.fullmatch(m)]
        if bad:
            raise ValueError(
                f"not Slack user IDs: {', '.join(repr(m) for m in bad)} "
                "(user IDs look like U0ALICE01; find one under a profile's ⋮ > Copy member ID)"
            )
        return value


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
        if value is not None and not value.get_secret_value().strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("token_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_NAME.fullmatch(value):
            raise ValueError(f"invalid environment variable name {value!r}")
        return value

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


class _Problems(ValueError):
    """Cross-field problems, each with its own location; unpacked by `parse_config`."""

    def __init__(self, problems: list[tuple[tuple[str | int, ...], str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{_path(loc)}: {msg}" for loc, msg in problems))


class PulseOpsConfig(_Frozen):
    """The whole YAML configuration, cross-checked (unique ids, references that resolve)."""

    slack: SlackConfig
    teams: tuple[TeamConfig, ...] = ()
    services: tuple[ServiceConfig, ...] = ()
    integrations: tuple[IntegrationConfig, ...] = ()
    incidents: IncidentsConfig = IncidentsConfig()

    _teams: dict[str, TeamConfig] = PrivateAttr(default_factory=dict)
    _services: dict[str, ServiceConfig] = PrivateAttr(default_factory=dict)
    _integrations: dict[str, IntegrationConfig] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _cross_check(self, info: ValidationInfo) -> Self:
        environ = info.context.get("environ") if isinstance(info.context, dict) else None
        problems = list(_cross_problems(self, environ))
        if problems:
            raise _Problems(problems)
        return self

    def model_post_init(self, context: Any) -> None:
        """Index teams, services and integrations for the lookup helpers."""
        self._teams = {t.id: t for t in self.teams}
        self._services = {s.id: s for s in self.services}
        self._integrations = {i.name: i for i in self.integrations}

    def team(self, team_id: str) -> TeamConfig | None:
        """The team with this id, or None."""
        return self._teams.get(team_id)

    def service(self, service_id: str) -> ServiceConfig | None:
        """The service with this id, or None."""
        return self._services.get(service_id)

    def integration(self, name: str) -> IntegrationConfig | None:
        """The integration with this name, or None."""
        return self._integrations.get(name)

    def team_for_service(self, service_id: str) -> TeamConfig | None:
        """The team owning this service, or None when the service is unknown."""
        service = self.service(service_id)
        return None if service is None else self.team(service.team)


def _cross_problems(
    config: PulseOpsConfig, environ: Mapping[str, str] | None
) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Yield (location, message) for duplicates, dangling references and unset token variables."""
    for section, key, what in (
        ("teams", "id", "team id"),
        ("services", "id", "service id"),
        ("integrations", "name", "integration name"),
    ):
        first: dict[str, int] = {}
        for i, item in enumerate(getattr(config, section)):
            value = getattr(item, key)
            if value in first:
                yield (
                    (section, i, key),
                    f"duplicate {what} {value!r} (first at {section}[{first[value]}])",
                )
            else:
                first[value] = i
    team_ids = [t.id for t in config.teams]
    for i, service in enumerate(config.services):
        if service.team not in team_ids:
            yield (("services", i, "team"), f"unknown team {service.team!r} ({_known(team_ids)})")
    service_ids = [s.id for s in config.services]
    for i, integration in enumerate(config.integrations):
        if integration.service is not None and integration.service not in service_ids:
            yield (
                ("integrations", i, "service"),
                f"unknown service {integration.service!r} ({_known(service_ids)})",
            )
        if environ is not None and integration.token_env and not environ.get(integration.token_env):
            yield (
                ("integrations", i, "token_env"),
                f"environment variable {integration.token_env} is not set",
            )


def _known(ids: list[str]) -> str:
    return f"known: {', '.join(sorted(set(ids)))}" if ids else "none are configured"


# --------------------------------------------------------------------------- loading


def load_config(path: Path, *, environ: Mapping[str, str] | None = None) -> PulseOpsConfig:
    """Read and validate the YAML file at `path`; raise ConfigError with one line per problem.

    `environ` (default os.environ) is where `token_env` variables must be set.
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{source}: file not found"]) from None
    except IsADirectoryError:
        raise ConfigError([f"{source}: is a directory, not a YAML file"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{source}: not UTF-8 text ({exc.reason})"]) from None
    except OSError as exc:
        raise ConfigError([f"{source}: cannot read: {exc.strerror or exc}"]) from None
    return parse_config(text, source=source, environ=environ)


def parse_config(
    text: str, *, source: str = "<string>", environ: Mapping[str, str] | None = None
) -> PulseOpsConfig:
    """Validate YAML text as PulseOps configuration; raise ConfigError with `source:line:` lines."""
    data, lines, duplicates = _load_yaml(text, source)
    problems: list[tuple[int, str]] = [
        (line, f"{source}:{line}: {path}: duplicate key (first at line {first})")
        for path, line, first in duplicates
    ]
    if data is None:
        raise ConfigError([f"{source}:1: the file is empty; it needs at least a 'slack' section"])
    if not isinstance(data, dict):
        raise ConfigError(
            [f"{source}:1: the top level must be a mapping of sections, not {_kind(data)}"]
        )
    env = os.environ if environ is None else environ
    try:
        config = PulseOpsConfig.model_validate(data, context={"environ": env})
    except ValidationError as exc:
        for loc, message in _expand(exc):
            line = _line_for(loc, lines)
            problems.append((line, f"{source}:{line}: {_path(loc) or '(top level)'}: {message}"))
    else:
        if not problems:
            return config
    problems.sort(key=lambda p: p[0])
    raise ConfigError([p for _, p in problems])


def config_check(path: Path, environ: Mapping[str, str] | None = None) -> int:
    """Run `pulseops config check FILE`: print a summary and return 0, or the problems and 2."""
    try:
        config = load_config(path, environ=environ)
    except ConfigError as exc:
        for problem in exc.problems:
            sys.stderr.write(problem + "\n")
        return 2
    counts = (
        _plural(len(config.teams), "team"),
        _plural(len(config.services), "service"),
        _plural(len(config.integrations), "integration"),
    )
    sys.stdout.write(f"OK: {', '.join(counts)}\n")
    return 0


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _kind(value: object) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    return f"a {type(value).__name__}"


def _expand(exc: ValidationError) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Turn pydantic errors into (location, message), unpacking cross-field problems."""
    for error in exc.errors():
        cause = (error.get("ctx") or {}).get("error")
        loc = tuple(error["loc"])
        if isinstance(cause, _Problems):
            for sub_loc, message in cause.problems:
                yield loc + sub_loc, message
        else:
            yield loc, _clean_message(error)


def _clean_message(error: Any) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    if kind in {"tuple_type", "list_type"}:
        return "must be a list (one '- ' item per entry)"
    if kind in {"model_type", "dict_type", "model_attributes_type"}:
        return "must be a mapping of keys to values"
    if kind == "literal_error":
        return f"{error['msg']} (got {error['input']!r})"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def _loc_name(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc)


def _path(loc: tuple[str | int, ...]) -> str:
    """Render ('services', 1, 'team') as `services[1].team`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _line_for(loc: tuple[str | int, ...], lines: Mapping[str, int]) -> int:
    """The line of the deepest part of `loc` present in the file (a missing key: its parent)."""
    for end in range(len(loc), 0, -1):
        line = lines.get(_path(loc[:end]))
        if line is not None:
            return line
    return 1


def _load_yaml(text: str, source: str) -> tuple[Any, dict[str, int], list[tuple[str, int, int]]]:
    """Parse YAML; return the data, the line of every key path, and duplicate keys."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        lines: dict[str, int] = {}
        duplicates: list[tuple[str, int, int]] = []
        if node is not None:
            _walk(node, "", lines, duplicates, set())
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        what = ": ".join(p for p in (exc.context, exc.problem) if p)
        raise ConfigError([f"{source}:{line}: invalid YAML: {what}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{source}: invalid YAML: {exc}"]) from None
    finally:
        loader.dispose()
    return data, lines, duplicates


def _walk(
    node: yaml.Node,
    path: str,
    lines: dict[str, int],
    duplicates: list[tuple[str, int, int]],
    active: set[int],
) -> None:
    """Record `start_mark.line + 1` for every key path under `node` and collect duplicate keys."""
    if id(node) in active:  # a recursive alias; its paths are already recorded
        return
    active.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = str(key_node.value)
            child = f"{path}.{key}" if path else key
            line = key_node.start_mark.line + 1
            if key in seen:
                duplicates.append((child, line, seen[key]))
            else:
                seen[key] = line
            lines[child] = line  # PyYAML keeps the last value, so point at it
            _walk(value_node, child, lines, duplicates, active)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            child = f"{path}[{i}]"
            lines[child] = item.start_mark.line + 1
            _walk(item, child, lines, duplicates, active)
    active.discard(id(node))
