"""YAML models of paging beyond Slack: `contacts` (people's methods and rules) and
`notifications` (the SMTP server, the Twilio account, links and throttles)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal, Self

from pydantic import BeforeValidator, Field, PlainSerializer, field_validator, model_validator

from bot.config.checks import EnvName, IdOf, _check_user_ids, _Frozen, _repeated
from bot.config.types import Duration
from bot.domain.contacts import METHOD_TYPES, check_address
from bot.domain.durations import ACCEPTED, format_duration, parse_duration


def _coerce_delay(value: Any) -> Any:
    """Like Duration, but zero (`0m`, `0s`, 0) is allowed: "at once"."""
    if isinstance(value, timedelta):
        if value < timedelta(0):
            raise ValueError("must not be negative")
        return value
    if isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r}: {ACCEPTED}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"invalid duration {value!r}: must not be negative")
        return timedelta(seconds=value)
    if isinstance(value, str) and re.fullmatch(r"\s*0+\s*[smhdw]?\s*", value):
        return timedelta(0)
    return parse_duration(value)


Delay = Annotated[
    timedelta,
    BeforeValidator(_coerce_delay),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]
"""A non-negative timedelta (`0m` = at once, `30s`, `2m`, `1h30m`)."""


class ContactMethodConfig(_Frozen):
    """One way to reach a person: e-mail, SMS, voice call or any Apprise URL."""

    id: Annotated[str, IdOf("method id")]
    type: Literal["email", "sms", "voice", "apprise"]
    address: str | None = None  # email
    number: str | None = None  # sms, voice (E.164)
    url: str | None = None  # apprise

    @model_validator(mode="after")
    def _destination(self) -> Self:
        field = METHOD_TYPES[self.type]
        given = {k for k in ("address", "number", "url") if getattr(self, k) is not None}
        if given != {field}:
            raise ValueError(f"a {self.type} method takes `{field}` (and none of the others)")
        return self

    @field_validator("address")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None:
            check_address("email", value)
        return value

    @field_validator("number")
    @classmethod
    def _number(cls, value: str | None) -> str | None:
        if value is not None:
            check_address("sms", value)
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None:
            check_address("apprise", value)
        return value

    @property
    def destination(self) -> str:
        """The address, number or URL, whichever this type uses."""
        value = getattr(self, METHOD_TYPES[self.type])
        assert isinstance(value, str)
        return value


class NotificationRuleConfig(_Frozen):
    """Use these methods this long after a page, while it is unacknowledged."""

    after: Delay
    methods: tuple[str, ...] = Field(min_length=1)


class ContactConfig(_Frozen):
    """A person's contact methods and notification rules."""

    user: str
    methods: tuple[ContactMethodConfig, ...] = ()
    rules: tuple[NotificationRuleConfig, ...] = ()

    @field_validator("user")
    @classmethod
    def _user(cls, value: str) -> str:
        return _check_user_ids((value,))[0]

    @model_validator(mode="after")
    def _references(self) -> Self:
        ids = [m.id for m in self.methods]
        dupes = _repeated(ids)
        if dupes:
            raise ValueError(f"duplicate method id {dupes[0]!r}")
        for rule in self.rules:
            for name in rule.methods:
                if name not in ids:
                    known = ", ".join(ids) or "none are defined"
                    raise ValueError(f"rule names unknown method {name!r} (methods: {known})")
        return self

    def method(self, method_id: str) -> ContactMethodConfig | None:
        """The method with this id, or None."""
        return next((m for m in self.methods if m.id == method_id), None)


class SmtpConfig(_Frozen):
    """The SMTP server e-mail pages go through."""

    model_config = _Frozen.model_config | {"populate_by_name": True}

    host: str = Field(min_length=1)
    port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = True  # upgrade a plain connection (port 587)
    tls: bool = False  # TLS from the start (port 465)
    username_env: EnvName | None = None
    password_env: EnvName | None = None
    from_: str = Field(alias="from")
    timeout: Duration = timedelta(seconds=15)

    @field_validator("from_")
    @classmethod
    def _from(cls, value: str) -> str:
        check_address("email", value)
        return value

    @model_validator(mode="after")
    def _modes(self) -> Self:
        if self.tls and self.starttls:
            raise ValueError("set at most one of tls (port 465) and starttls (port 587)")
        if (self.username_env is None) != (self.password_env is None):
            raise ValueError("set both username_env and password_env, or neither")
        return self


class TwilioConfig(_Frozen):
    """The Twilio account SMS and voice pages go through (REST API, basic auth)."""

    model_config = _Frozen.model_config | {"populate_by_name": True}

    account_sid_env: EnvName
    auth_token_env: EnvName
    from_: str = Field(alias="from")
    api_url: str = "https://api.twilio.com"
    timeout: Duration = timedelta(seconds=10)

    @field_validator("from_")
    @classmethod
    def _from(cls, value: str) -> str:
        check_address("sms", value)
        return value

    @field_validator("api_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.fullmatch(r"https?://[^\s/]+(/[^\s]*)?", value):
            raise ValueError(f"invalid api_url {value!r}: an http(s) URL")
        return value.rstrip("/")


class ThrottleConfig(_Frozen):
    """At most this many notifications per person and method type per window."""

    window: Duration = timedelta(minutes=15)
    email: int = Field(default=20, ge=1)
    sms: int = Field(default=5, ge=1)
    voice: int = Field(default=3, ge=1)
    apprise: int = Field(default=20, ge=1)

    def limit(self, method_type: str) -> int:
        """The limit of one method type."""
        return int(getattr(self, method_type))


class NotificationsConfig(_Frozen):
    """Providers and settings of notifications beyond Slack."""

    smtp: SmtpConfig | None = None
    twilio: TwilioConfig | None = None
    # where people's browsers and Twilio reach this service: e-mail links and webhooks
    public_url: str | None = None
    link_secret_env: EnvName | None = None  # signs e-mail acknowledge links
    link_ttl: Duration = timedelta(hours=2)
    apprise_timeout: Duration = timedelta(seconds=15)
    max_attempts: int = Field(default=6, ge=1, le=50)
    throttle: ThrottleConfig = ThrottleConfig()

    @field_validator("public_url")
    @classmethod
    def _public(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"https?://[^\s/]+(/[^\s]*)?", value):
            raise ValueError(f"invalid public_url {value!r}: an http(s) URL")
        return None if value is None else value.rstrip("/")
