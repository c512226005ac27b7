"""Process settings from the environment: `Settings` and `load_settings`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from bot.config.yaml import clean_message
from bot.errors import ConfigError

MIN_CLAIM_LEASE, MAX_CLAIM_LEASE = 1, 3600  # seconds: PULSEOPS_SLACK_CLAIM_LEASE's range


class Settings(BaseSettings):
    """Process settings from the environment (names as in SPEC.md); built by the factory/CLI."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    slack_bot_token: SecretStr | None = Field(default=None, validation_alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(
        default=None, validation_alias="SLACK_SIGNING_SECRET"
    )
    slack_app_token: SecretStr | None = Field(default=None, validation_alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field(default="https://slack.com/api/", validation_alias="SLACK_API_URL")
    slack_timeout: float = Field(
        default=10.0, gt=0, le=300, validation_alias="PULSEOPS_SLACK_TIMEOUT"
    )
    # How long a replica's claim on a Slack delivery holds before another replica may take it
    # over (`slack_requests`): longer than Slack's 3 s acknowledgement deadline, so that the
    # immediate retry of a slow delivery does not run it twice, and shorter than the minute
    # before Slack's next retry, so that a dead replica's delivery is handled by that retry.
    # Over Socket Mode it also bounds how long an event's listener may run before its ack.
    slack_claim_lease: float = Field(default=30.0, validation_alias="PULSEOPS_SLACK_CLAIM_LEASE")
    database_url: str = Field(
        default="sqlite+aiosqlite:///pulseops.db", validation_alias="PULSEOPS_DATABASE_URL"
    )
    config_path: Path = Field(default=Path("pulseops.yml"), validation_alias="PULSEOPS_CONFIG")
    host: str = Field(default="0.0.0.0", validation_alias="PULSEOPS_HOST")
    port: int = Field(default=3000, ge=0, le=65535, validation_alias="PULSEOPS_PORT")
    tls_cert: Path | None = Field(default=None, validation_alias="PULSEOPS_TLS_CERT")
    tls_key: Path | None = Field(default=None, validation_alias="PULSEOPS_TLS_KEY")
    log_format: Literal["json", "text"] = Field(
        default="json", validation_alias="PULSEOPS_LOG_FORMAT"
    )
    log_level: str = Field(default="INFO", validation_alias="PULSEOPS_LOG_LEVEL")
    event_loop: Literal["uvloop", "asyncio"] = Field(
        default="uvloop", validation_alias="PULSEOPS_EVENT_LOOP"
    )

    @field_validator("slack_api_url")
    @classmethod
    def _trailing_slash(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be empty")
        return value if value.endswith("/") else value + "/"

    @field_validator("slack_claim_lease", mode="before")
    @classmethod
    def _lease_seconds(cls, value: object) -> float:
        try:
            seconds = float(str(value).strip())
        except ValueError:
            seconds = math.nan
        if not MIN_CLAIM_LEASE <= seconds <= MAX_CLAIM_LEASE:  # NaN fails too
            raise ValueError(
                f"must be a number of seconds from {MIN_CLAIM_LEASE} to {MAX_CLAIM_LEASE} "
                f"(got {str(value)[:40]!r})"
            )
        return seconds

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
        if (self.tls_cert is None) != (self.tls_key is None):
            given, lacking = (
                ("PULSEOPS_TLS_CERT", "PULSEOPS_TLS_KEY")
                if self.tls_key is None
                else ("PULSEOPS_TLS_KEY", "PULSEOPS_TLS_CERT")
            )
            missing.append(f"{given} is set but {lacking} is not: HTTPS needs both files")
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
            [f"{_loc_name(e['loc'])}: {clean_message(e)}" for e in exc.errors()]
        ) from None


def _is_set(secret: SecretStr | None) -> bool:
    return secret is not None and secret.get_secret_value().strip() != ""


def _loc_name(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc)
