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

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, StringConstraints, TypeAdapter

from bot.domain.alerts import Alert, AlertStatus, Link
from bot.domain.incident import Severity
from bot.ingest.alertmanager import parse_alertmanager as parse_alertmanager
from bot.ingest.formats import parse_datadog, parse_grafana
from bot.ingest.opsgenie import parse_opsgenie
from bot.ingest.slack_webhook import parse_slack_webhook
from bot.ingest.wire import (
    HttpUrl,
    SeverityIn,
    _Body,
    _digest,
    _in_utc,
    _invalid,
    _link,
    _now,
    _require_object,
    _utc,
)
from bot.ingest.wire import validation_problems as validation_problems

Parser = Callable[[Any, datetime], list[Alert]]


# --------------------------------------------------------------------------- generic


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
    "opsgenie": parse_opsgenie,
    "grafana": parse_grafana,
    "datadog": parse_datadog,
    "slack-webhook": parse_slack_webhook,
}
"""Parser for each integration `type` in the configuration."""
