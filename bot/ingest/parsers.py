"""Webhook body parsers: one pure function per integration type, each returning `list[Alert]`.

A body that does not fit its format raises `pydantic.ValidationError`; `validation_problems`
turns it into `{"dotted.field.path": "message"}` for the HTTP 400 body. Keys a parser does not
read are ignored, because monitors send more than we use. Nothing here does I/O or reads a
clock: the caller passes `now`, used when a body carries no time of its own.

Generic JSON format (integration `type: generic`)
-------------------------------------------------
POST one JSON object, or a JSON array of them (a batch, at least one):

    {
      "title": "Checkout error rate above 5%",     required; 1-1000 characters
      "description": "5xx ratio is 7.2% over 5m",  optional; plain text
      "severity": "SEV2",                          optional; SEV1-SEV4 or a word such as
                                                   critical, error, warning, info, P1-P4
      "service": "checkout-web",                   optional; a service id from the config
      "dedup_key": "checkout-5xx",                 optional; 1-255 characters
      "status": "firing",                          optional; "firing" (default) or "resolved"
      "labels": {"region": "eu-west-1"},           optional; string keys and string values
      "links": [{"url": "https://grafana.example/d/abc", "text": "Dashboard"}]
                                                   optional; url is http(s), text optional
    }

Alerts with the same `dedup_key` are the same alert: a repeat adds to the open incident and
`"status": "resolved"` resolves it. Without a `dedup_key`, the title and service together
identify the alert. A severity PulseOps does not know is refused (HTTP 400) rather than guessed.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from bot.domain.alerts import Alert, AlertStatus, Link
from bot.domain.incident import Severity

Parser = Callable[[Any, datetime], list[Alert]]


class _Body(BaseModel):
    """Base of the wire models: unknown keys are ignored, values are immutable."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


# --------------------------------------------------------------------------- shared helpers


def validation_problems(exc: ValidationError) -> dict[str, str]:
    """Map each failing field's dotted path (`alerts.0.labels`) to what is wrong with it."""
    problems: dict[str, str] = {}
    for error in exc.errors(include_url=False):
        path = ".".join(str(part) for part in error["loc"]) or "body"
        message = str(error["msg"]).removeprefix("Value error, ")
        problems[path] = f"{problems[path]}; {message}" if path in problems else message
    return problems


def _invalid(title: str, loc: tuple[str | int, ...], message: str, value: Any) -> ValidationError:
    """Build a ValidationError for a rule that spans fields (so it still names one field)."""
    detail = InitErrorDetails(
        type=PydanticCustomError("value_error", message), loc=loc, input=value
    )
    return ValidationError.from_exception_data(title, [detail])


def _require_object(body: Any, title: str, *, batch: bool = False) -> None:
    """Refuse a body that is not a JSON object (or, when `batch`, an array) with a clear message."""
    if isinstance(body, dict) or (batch and isinstance(body, list)):
        return
    expected = "a JSON object or an array of objects" if batch else "a JSON object"
    raise _invalid(title, (), f"expected {expected}, got {_json_kind(body)}", body)


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else type(value).__name__


def _digest(*parts: str) -> str:
    """A stable identifier for alerts whose sender gave none (retries map to the same one)."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:  # monitors that omit the offset mean UTC more often than not
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _now(now: datetime) -> datetime:
    result = _utc(now)
    assert result is not None
    return result


def _link(url: str | None, text: str) -> list[Link]:
    return [Link(url=url.strip(), text=text)] if url and url.strip() else []


# --------------------------------------------------------------------------- Alertmanager


def _unset_time(value: Any) -> Any:
    """Alertmanager writes Go's zero time ("0001-01-01T00:00:00Z") for an unset time."""
    if value is None or value == "" or (isinstance(value, str) and value.startswith("0001-01-01")):
        return None
    return value


def _in_utc(value: datetime | None) -> datetime | None:
    """A time that stays a valid datetime in UTC (year 1 to 9999 after the offset)."""
    try:
        return _utc(value)
    except OverflowError:
        raise ValueError("is out of range once converted to UTC") from None


OptionalTime = Annotated[datetime | None, BeforeValidator(_unset_time), AfterValidator(_in_utc)]


class AlertmanagerAlert(_Body):
    """One alert inside an Alertmanager webhook (v4)."""

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: OptionalTime = Field(default=None, alias="startsAt")
    ends_at: OptionalTime = Field(default=None, alias="endsAt")
    generator_url: str = Field(default="", alias="generatorURL")
    fingerprint: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = None


class AlertmanagerPayload(_Body):
    """Alertmanager `webhook_config` body, version 4 (Grafana's webhook sends the same shape)."""

    version: str = "4"
    group_key: str | None = Field(default=None, alias="groupKey")
    truncated_alerts: int = Field(default=0, alias="truncatedAlerts")
    status: Literal["firing", "resolved"] | None = None
    receiver: str = ""
    group_labels: dict[str, str] = Field(default_factory=dict, alias="groupLabels")
    common_labels: dict[str, str] = Field(default_factory=dict, alias="commonLabels")
    common_annotations: dict[str, str] = Field(default_factory=dict, alias="commonAnnotations")
    external_url: str = Field(default="", alias="externalURL")
    alerts: list[AlertmanagerAlert] = Field(min_length=1)


def _first(*values: str | None) -> str:
    """The first non-empty value, or ""."""
    return next((v for v in values if v), "")


def _labels_key(labels: Mapping[str, str]) -> str:
    return json.dumps(dict(labels), sort_keys=True, separators=(",", ":"))


def parse_alertmanager(body: Any, now: datetime) -> list[Alert]:
    """Parse an Alertmanager v4 webhook body into one Alert per entry of `alerts`."""
    _require_object(body, "AlertmanagerPayload")
    payload = AlertmanagerPayload.model_validate(body)
    now = _now(now)
    group_key = payload.group_key or (
        _digest("alertmanager", _labels_key(payload.group_labels)) if payload.group_labels else None
    )
    alerts: list[Alert] = []
    for item in payload.alerts:
        labels, notes = item.labels, item.annotations
        fingerprint = item.fingerprint or _digest("alertmanager", _labels_key(labels))
        resolved = item.status == "resolved"
        alerts.append(
            Alert(
                fingerprint=fingerprint,
                group_key=group_key or fingerprint,
                status=AlertStatus.RESOLVED if resolved else AlertStatus.FIRING,
                title=_first(notes.get("summary"), notes.get("title"), labels.get("alertname"))
                or "Untitled alert",
                description=_first(notes.get("description"), notes.get("message")),
                severity=Severity.parse(labels.get("severity")),
                service=labels.get("service") or None,
                labels=dict(labels),
                links=tuple(
                    _link(item.generator_url, "Graph")
                    + _link(notes.get("runbook_url"), "Runbook")
                    + _link(notes.get("dashboard_url"), "Dashboard")
                ),
                source="alertmanager",
                starts_at=_utc(item.starts_at) or now,
                # A firing alert's endsAt is only Prometheus's expiry guess, not an end.
                ends_at=(_utc(item.ends_at) or now) if resolved else None,
            )
        )
    return alerts


# --------------------------------------------------------------------------- generic


def _parse_severity(value: Any) -> Any:
    if value is None or isinstance(value, Severity):
        return value
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError("must be a string such as SEV2")
    severity = Severity.parse(value)
    if severity is None:
        raise ValueError(
            f"unknown severity {value!r}: use SEV1, SEV2, SEV3 or SEV4 "
            "(or critical, error, warning, info)"
        )
    return severity


SeverityIn = Annotated[Severity | None, BeforeValidator(_parse_severity)]
_URL = re.compile(r"https?://\S{1,3000}")


def _http_url(value: str) -> str:
    value = value.strip()
    if not _URL.fullmatch(value):
        raise ValueError("must be an http:// or https:// URL without spaces")
    return value


HttpUrl = Annotated[str, AfterValidator(_http_url)]


class GenericLink(_Body):
    """A link attached to a generic alert."""

    url: HttpUrl
    text: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] = ""


class GenericAlert(_Body):
    """One alert in PulseOps' documented generic JSON format (see the module docstring)."""

    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]
    description: str = ""
    severity: SeverityIn = None
    service: str | None = None
    dedup_key: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
        | None
    ) = None
    status: Literal["firing", "resolved"] = "firing"
    labels: dict[str, str] = Field(default_factory=dict)
    links: list[GenericLink] = Field(default_factory=list)


_GENERIC_BATCH = TypeAdapter(Annotated[list[GenericAlert], Field(min_length=1)])


def parse_generic(body: Any, now: datetime) -> list[Alert]:
    """Parse one generic JSON alert object, or a non-empty array of them."""
    _require_object(body, "GenericAlert", batch=True)
    items = (
        _GENERIC_BATCH.validate_python(body)
        if isinstance(body, list)
        else [GenericAlert.model_validate(body)]
    )
    now = _now(now)
    alerts: list[Alert] = []
    for item in items:
        service = item.service or None
        fingerprint = item.dedup_key or _digest("generic", item.title, service or "")
        resolved = item.status == "resolved"
        alerts.append(
            Alert(
                fingerprint=fingerprint,
                group_key=fingerprint,
                status=AlertStatus.RESOLVED if resolved else AlertStatus.FIRING,
                title=item.title,
                description=item.description,
                severity=item.severity,
                service=service,
                labels=dict(item.labels),
                links=tuple(Link(url=link.url, text=link.text) for link in item.links),
                source="generic",
                starts_at=now,
                ends_at=now if resolved else None,
            )
        )
    return alerts


# --------------------------------------------------------------------------- PagerDuty


class PagerDutyPayload(_Body):
    """The `payload` object of a PagerDuty Events API v2 event."""

    summary: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1024)]
        | None
    ) = None
    source: str | None = None
    severity: Literal["critical", "error", "warning", "info"] | None = None
    timestamp: Annotated[datetime | None, AfterValidator(_in_utc)] = None
    component: str | None = None
    group: str | None = None
    class_: str | None = Field(default=None, alias="class")
    custom_details: Any = None


class PagerDutyLink(_Body):
    """An entry of an event's `links`."""

    href: HttpUrl
    text: str = ""


class PagerDutyEvent(_Body):
    """A PagerDuty Events API v2 alert event (`POST /v2/enqueue` body)."""

    routing_key: str | None = None
    event_action: Literal["trigger", "acknowledge", "resolve"]
    dedup_key: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = None
    payload: PagerDutyPayload | None = None
    links: list[PagerDutyLink] = Field(default_factory=list)
    images: list[Any] = Field(default_factory=list)
    client: str | None = None
    client_url: str | None = None


PAGERDUTY_SEVERITY: dict[str, Severity] = {
    "critical": Severity.SEV1,
    "error": Severity.SEV2,
    "warning": Severity.SEV3,
    "info": Severity.SEV4,
}
_PAGERDUTY_STATUS: dict[str, AlertStatus] = {
    "trigger": AlertStatus.FIRING,
    "acknowledge": AlertStatus.ACKNOWLEDGED,
    "resolve": AlertStatus.RESOLVED,
}


def _details_text(details: Any) -> str:
    """Render `custom_details` as `key: value` lines for the incident description."""
    if details is None:
        return ""
    if isinstance(details, str):
        return details
    if isinstance(details, Mapping):
        return "\n".join(
            f"{key}: {value if isinstance(value, str) else json.dumps(value, default=str)}"
            for key, value in details.items()
        )
    return json.dumps(details, default=str)


def parse_pagerduty(body: Any, now: datetime) -> list[Alert]:
    """Parse a PagerDuty Events API v2 event (trigger, acknowledge or resolve) into one Alert."""
    _require_object(body, "PagerDutyEvent")
    event = PagerDutyEvent.model_validate(body)
    payload = event.payload or PagerDutyPayload()
    if event.event_action == "trigger" and payload.summary is None:
        raise _invalid(
            "PagerDutyEvent", ("payload", "summary"), "required for a trigger event", body
        )
    if event.event_action != "trigger" and event.dedup_key is None:
        raise _invalid(
            "PagerDutyEvent",
            ("dedup_key",),
            f"required for {event.event_action} events (it names the alert to update)",
            body,
        )
    now = _now(now)
    # PagerDuty would mint a random key; a digest lets a retried trigger dedupe instead.
    fingerprint = event.dedup_key or _digest(
        "pagerduty", payload.summary or "", payload.source or ""
    )
    details = payload.custom_details
    service = details.get("service") if isinstance(details, Mapping) else None
    labels = {
        key: value
        for key, value in (
            ("component", payload.component),
            ("group", payload.group),
            ("class", payload.class_),
            ("source", payload.source),
        )
        if value
    }
    links = [Link(url=link.href, text=link.text) for link in event.links]
    links += _link(event.client_url, event.client or "Monitor")
    status = _PAGERDUTY_STATUS[event.event_action]
    return [
        Alert(
            fingerprint=fingerprint,
            group_key=fingerprint,
            status=status,
            title=payload.summary or fingerprint,
            description=_details_text(details),
            severity=PAGERDUTY_SEVERITY.get(payload.severity) if payload.severity else None,
            service=service if isinstance(service, str) and service else None,
            labels=labels,
            links=tuple(links),
            source="pagerduty",
            starts_at=_utc(payload.timestamp) or now,
            ends_at=now if status is AlertStatus.RESOLVED else None,
        )
    ]


PARSERS: dict[str, Parser] = {
    "alertmanager": parse_alertmanager,
    "generic": parse_generic,
    "pagerduty": parse_pagerduty,
}
"""Parser for each integration `type` in the configuration."""
