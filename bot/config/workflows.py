"""YAML models of `workflows` (automation run on incident events or by a click) and
`allowed_hosts` (which private hosts outgoing calls may reach)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit

from pydantic import BeforeValidator, Field, field_validator, model_validator

from bot.config.checks import (
    CallTimeout,
    EnvName,
    HttpUrl,
    IdOf,
    Secret,
    _at_most_one,
    _check_user_ids,
    _Frozen,
    _given,
    _UserOrGroup,
)
from bot.config.types import Duration, Matchers
from bot.domain.workflows import EVENT_TRIGGERS, EventTrigger
from bot.templating import TemplateProblem, check_template

SEVERITIES = ("SEV1", "SEV2", "SEV3", "SEV4")


class UnacknowledgedFor(_Frozen):
    """Fire when the incident is still unacknowledged this long after it was triggered."""

    unacknowledged_for: Duration


def _coerce_trigger(value: Any) -> Any:
    """One message for a trigger of the wrong kind, rather than one per union member."""
    if isinstance(value, str) and value in EVENT_TRIGGERS:
        return value
    if isinstance(value, Mapping) and set(value) == {"unacknowledged_for"}:
        return UnacknowledgedFor.model_validate(value)
    if isinstance(value, UnacknowledgedFor):
        return value
    raise ValueError(
        f"unknown trigger {value!r}: use one of {', '.join(EVENT_TRIGGERS)}, "
        "or {unacknowledged_for: <duration>}"
    )


Trigger = Annotated[EventTrigger | UnacknowledgedFor, BeforeValidator(_coerce_trigger)]


class WebhookStep(_Frozen):
    """Call a URL: the body is a Jinja2 template rendering JSON (default: the incident)."""

    url: HttpUrl
    method: Literal["POST", "PUT", "PATCH", "GET", "DELETE"] = "POST"
    body: str | None = None
    timeout: CallTimeout = timedelta(seconds=10)
    retries: int = Field(default=3, ge=0, le=10)
    backoff: Duration = timedelta(seconds=5)  # before the first retry; doubles each time
    secret: Secret | None = None
    secret_env: EnvName | None = None

    @field_validator("body")
    @classmethod
    def _body(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return check_template(value, json_body=True)
        except TemplateProblem as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _one_secret(self) -> Self:
        _at_most_one(self, "secret", "secret_env")
        return self

    @property
    def host(self) -> str:
        return (urlsplit(self.url).hostname or "").lower()


class PageStep(_UserOrGroup):
    """Page a schedule's on-call person, a user, or a user group (exactly one)."""

    schedule: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if len(_given(self, "schedule", "user", "user_group")) != 1:
            raise ValueError("set exactly one of schedule, user or user_group")
        return self


class WorkflowStep(_Frozen):
    """One step: exactly one of webhook, message, page, invite, set_severity or escalate."""

    webhook: WebhookStep | None = None
    message: str | None = None
    page: PageStep | None = None
    invite: tuple[str, ...] | None = None  # Slack user IDs, invited to the incident channel
    set_severity: Literal["SEV1", "SEV2", "SEV3", "SEV4"] | None = None
    escalate: Literal[True] | None = None

    @field_validator("message")
    @classmethod
    def _message(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return check_template(value)
        except TemplateProblem as exc:
            raise ValueError(str(exc)) from None

    @field_validator("invite")
    @classmethod
    def _invite(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("list at least one Slack user ID")
        return _check_user_ids(value)

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        chosen = [
            v
            for v in (
                self.webhook,
                self.message,
                self.page,
                self.invite,
                self.set_severity,
                self.escalate,
            )
            if v is not None
        ]
        if len(chosen) != 1:
            raise ValueError(
                "set exactly one of webhook, message, page, invite, set_severity or escalate: true"
            )
        return self

    @property
    def kind(self) -> str:
        if self.webhook is not None:
            return "webhook"
        if self.message is not None:
            return "message"
        if self.page is not None:
            return "page"
        if self.invite is not None:
            return "invite"
        if self.set_severity is not None:
            return "set_severity"
        return "escalate"


class WorkflowConfig(_Frozen):
    """Steps run in order on an incident, on its events (`run: auto`) or by a click."""

    id: Annotated[str, IdOf("workflow id")]
    when: tuple[Trigger, ...] = ()
    matchers: Matchers = ()
    run: Literal["auto", "button"] = "auto"
    label: str | None = Field(default=None, min_length=1, max_length=75)
    steps: tuple[WorkflowStep, ...] = Field(max_length=20)

    @field_validator("steps")
    @classmethod
    def _some_steps(cls, value: tuple[WorkflowStep, ...]) -> tuple[WorkflowStep, ...]:
        if not value:
            raise ValueError("list at least one step")
        return value

    @model_validator(mode="after")
    def _runs_somehow(self) -> Self:
        if self.run == "auto" and not self.when:
            raise ValueError(
                f"an automatic workflow needs `when` (one or more of {', '.join(EVENT_TRIGGERS)}, "
                "or {unacknowledged_for: 10m}); or set run: button"
            )
        return self

    @property
    def title(self) -> str:
        """What buttons and the timeline call it."""
        return self.label or self.id

    @property
    def events(self) -> frozenset[str]:
        return frozenset(t for t in self.when if isinstance(t, str))

    @property
    def unacknowledged_for(self) -> tuple[timedelta, ...]:
        return tuple(t.unacknowledged_for for t in self.when if isinstance(t, UnacknowledgedFor))
