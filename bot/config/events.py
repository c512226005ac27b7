"""YAML model of `event_sinks`: where PulseOps publishes its events (signed webhooks, NATS)."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal, Self
from urllib.parse import urlsplit

from pydantic import field_validator, model_validator

from bot.config.checks import CallTimeout, EnvName, Secret, _at_most_one, _Frozen, _given
from bot.domain.events import EVENT_TYPES, EventType


class EventSinkConfig(_Frozen):
    """One subscriber of the event stream: a webhook (signed like workflow webhooks) or a NATS
    subject (JetStream when a stream covers it)."""

    type: Literal["webhook", "nats"]
    url: str
    events: tuple[EventType, ...] = EVENT_TYPES  # default: every event
    secret: Secret | None = None  # webhook: signs each body (X-PulseOps-Signature)
    secret_env: EnvName | None = None
    subject: str | None = None  # nats: default pulseops.events
    timeout: CallTimeout = timedelta(seconds=10)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https", "nats", "tls") or not parts.hostname:
            raise ValueError(
                f"invalid url {value!r}: a webhook sink takes http(s)://host/…, "
                "a NATS sink nats://host:4222"
            )
        return value

    @field_validator("subject")
    @classmethod
    def _subject(cls, value: str | None) -> str | None:
        if value is not None and (
            not value or any(c in value for c in " \t\r\n*>") or ".." in value
        ):
            raise ValueError(
                f"invalid subject {value!r}: dot-separated tokens, no spaces or wildcards"
            )
        return value

    @field_validator("events")
    @classmethod
    def _events(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError(f"list at least one event ({', '.join(EVENT_TYPES)})")
        return value

    @model_validator(mode="after")
    def _fits_type(self) -> Self:
        scheme = urlsplit(self.url).scheme
        if self.type == "webhook":
            if scheme not in ("http", "https"):
                raise ValueError("a webhook sink's url is http:// or https://")
            if self.subject is not None:
                raise ValueError("subject is for nats sinks")
        else:
            if scheme not in ("nats", "tls"):
                raise ValueError("a nats sink's url is nats://host:4222 (or tls://)")
            if _given(self, "secret", "secret_env"):
                raise ValueError("secret and secret_env are for webhook sinks")
        _at_most_one(self, "secret", "secret_env")
        return self

    @property
    def nats_subject(self) -> str:
        return self.subject or "pulseops.events"

    def wants(self, event_type: str) -> bool:
        return event_type in self.events
