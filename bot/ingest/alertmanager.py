"""Alertmanager's webhook body (integration `type: alertmanager`) and the reading of it that
Grafana Alerting's webhook shares (`bot.ingest.formats` extends these models). Pure: no I/O,
the caller passes `now`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Generic, Literal, TypeVar

from pydantic import Field, StringConstraints

from bot.domain.alerts import Alert, AlertStatus, Link
from bot.domain.incident import Severity
from bot.ingest.wire import (
    OptionalTime,
    _Body,
    _digest,
    _first,
    _labels_key,
    _link,
    _now,
    _require_object,
    _utc,
)


class AlertmanagerAlert(_Body):
    """One alert inside an Alertmanager webhook (v4)."""

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: OptionalTime = Field(default=None, alias="startsAt")
    ends_at: OptionalTime = Field(default=None, alias="endsAt")
    generator_url: str = Field(default="", alias="generatorURL")
    fingerprint: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = None

    def links(self) -> list[Link]:
        """The incident's links from this alert."""
        notes = self.annotations
        return (
            _link(self.generator_url, "Graph")
            + _link(notes.get("runbook_url"), "Runbook")
            + _link(notes.get("dashboard_url"), "Dashboard")
        )

    def more_description(self) -> list[str]:
        """Lines added to the description after the annotation's text."""
        return []


AlertT = TypeVar("AlertT", bound=AlertmanagerAlert)


class AlertmanagerShaped(_Body, Generic[AlertT]):
    """A body in Alertmanager's shape: its group fields and `alerts` of the sender's kind."""

    source: ClassVar[str]  # the Alert's `source`, and the salt of digested keys

    group_key: str | None = Field(default=None, alias="groupKey")
    truncated_alerts: int = Field(default=0, alias="truncatedAlerts")
    status: Literal["firing", "resolved"] | None = None
    receiver: str = ""
    group_labels: dict[str, str] = Field(default_factory=dict, alias="groupLabels")
    common_labels: dict[str, str] = Field(default_factory=dict, alias="commonLabels")
    common_annotations: dict[str, str] = Field(default_factory=dict, alias="commonAnnotations")
    external_url: str = Field(default="", alias="externalURL")
    alerts: list[AlertT] = Field(min_length=1)


class AlertmanagerPayload(AlertmanagerShaped[AlertmanagerAlert]):
    """Alertmanager `webhook_config` body, version 4 (Grafana's webhook sends the same shape)."""

    source: ClassVar[str] = "alertmanager"

    version: str = "4"


def read_alertmanager_shaped(
    model: type[AlertmanagerShaped[Any]], body: Any, now: datetime
) -> list[Alert]:
    """One Alert per entry of `alerts` of a body in Alertmanager's shape (`model` says which
    sender's: its fields, links and `source`)."""
    _require_object(body, model.__name__)
    payload = model.model_validate(body)
    now = _now(now)
    source = payload.source
    group_key = payload.group_key or (
        _digest(source, _labels_key(payload.group_labels)) if payload.group_labels else None
    )
    alerts: list[Alert] = []
    for item in payload.alerts:
        labels, notes = item.labels, item.annotations
        fingerprint = item.fingerprint or _digest(source, _labels_key(labels))
        resolved = item.status == "resolved"
        description = "\n".join(
            line
            for line in (
                _first(notes.get("description"), notes.get("message")),
                *item.more_description(),
            )
            if line
        )
        alerts.append(
            Alert(
                fingerprint=fingerprint,
                group_key=group_key or fingerprint,
                status=AlertStatus.RESOLVED if resolved else AlertStatus.FIRING,
                title=_first(notes.get("summary"), notes.get("title"), labels.get("alertname"))
                or "Untitled alert",
                description=description,
                severity=Severity.parse(labels.get("severity")),
                service=labels.get("service") or None,
                labels=dict(labels),
                links=tuple(item.links()),
                source=source,
                starts_at=_utc(item.starts_at) or now,
                # A firing alert's endsAt is only Prometheus's expiry guess, not an end.
                ends_at=(_utc(item.ends_at) or now) if resolved else None,
            )
        )
    return alerts


def parse_alertmanager(body: Any, now: datetime) -> list[Alert]:
    """Parse an Alertmanager v4 webhook body into one Alert per entry of `alerts`."""
    return read_alertmanager_shaped(AlertmanagerPayload, body, now)
