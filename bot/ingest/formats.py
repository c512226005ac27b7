"""Webhook bodies of Grafana Alerting and Datadog, parsed into Alerts (integration types
`grafana` and `datadog`). Pure: no I/O, the caller passes `now`.

Grafana (`type: grafana`)
-------------------------
Grafana Alerting's webhook contact point: Alertmanager's shape plus `orgId`, `title`,
`state`, `message` on the body and `silenceURL`, `dashboardURL`, `panelURL`, `imageURL`,
`values` on each alert. Each alert is one Alert identified by its `fingerprint`; alerts of one
`groupKey` share an incident; `"status": "resolved"` resolves. Annotations `summary`,
`description` and `runbook_url`, and the labels `service` and `severity`, are read as for
Alertmanager; the dashboard, panel, silence and image URLs become the incident's links and
`values` a line of its description.

Datadog (`type: datadog`)
-------------------------
Datadog's webhook integration posts the payload you write with its documented `$VARIABLES`.
Its default payload works as is (`title`, `body`, `id`, `event_type`, `date`, `org`, …): a
title starting `[Recovered]` resolves the alert whose title is the same after that prefix.
For better results paste this payload (every key optional except a title):

    {"title": "$EVENT_TITLE", "body": "$EVENT_MSG", "alert_id": "$ALERT_ID",
     "alert_cycle_key": "$ALERT_CYCLE_KEY", "aggreg_key": "$AGGREG_KEY",
     "alert_transition": "$ALERT_TRANSITION", "alert_type": "$ALERT_TYPE",
     "alert_priority": "$ALERT_PRIORITY", "alert_title": "$ALERT_TITLE",
     "alert_status": "$ALERT_STATUS", "alert_metric": "$ALERT_METRIC",
     "alert_scope": "$ALERT_SCOPE", "hostname": "$HOSTNAME", "link": "$LINK",
     "snapshot": "$SNAPSHOT", "tags": "$TAGS", "event_type": "$EVENT_TYPE", "id": "$ID",
     "date": "$DATE", "org": {"id": "$ORG_ID", "name": "$ORG_NAME"}}

Dedup key: `alert_cycle_key` (one trigger-to-recovery cycle), else `aggreg_key`, else
`alert_id` with `alert_scope`, else the title without its `[Transition]` prefix. Resolved when
`alert_transition` is `Recovered`, `alert_type` is `success`, or the title starts
`[Recovered]`. Severity: `alert_priority` P1-P5 as for Opsgenie, else `alert_type`
(error → SEV2, warning → SEV3, info → SEV4). `$TAGS` (`key:value,…`) become labels, and a
`service` tag (or a `service` key) routes the alert.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, ClassVar

from pydantic import BeforeValidator, Field, StringConstraints

from bot.domain.alerts import Alert, AlertStatus, Link
from bot.domain.incident import Severity
from bot.ingest.alertmanager import AlertmanagerAlert, AlertmanagerShaped, read_alertmanager_shaped
from bot.ingest.opsgenie import OPSGENIE_PRIORITY
from bot.ingest.wire import _Body, _digest, _invalid, _link, _now, _require_object

# --------------------------------------------------------------------------- Grafana


class GrafanaAlert(AlertmanagerAlert):
    """One alert inside a Grafana Alerting webhook body: Alertmanager's and the URLs and
    `values` Grafana adds."""

    silence_url: str = Field(default="", alias="silenceURL")
    dashboard_url: str = Field(default="", alias="dashboardURL")
    panel_url: str = Field(default="", alias="panelURL")
    image_url: str = Field(default="", alias="imageURL")
    values: dict[str, float | None] | None = None

    def links(self) -> list[Link]:
        return (
            _link(self.generator_url, "Alert rule")
            + _link(self.dashboard_url, "Dashboard")
            + _link(self.panel_url, "Panel")
            + _link(self.annotations.get("runbook_url"), "Runbook")
            + _link(self.silence_url, "Silence")
            + _link(self.image_url, "Image")
        )

    def more_description(self) -> list[str]:
        if not self.values:
            return []
        return [
            "Values: "
            + ", ".join(
                f"{key}={value:g}" if value is not None else f"{key}=none"
                for key, value in sorted(self.values.items())
            )
        ]


class GrafanaPayload(AlertmanagerShaped[GrafanaAlert]):
    """Grafana Alerting's webhook contact point body (`version` "1")."""

    source: ClassVar[str] = "grafana"

    org_id: int | None = Field(default=None, alias="orgId")
    version: str = "1"
    title: str = ""
    state: str = ""
    message: str = ""


def parse_grafana(body: Any, now: datetime) -> list[Alert]:
    """Parse a Grafana Alerting webhook body into one Alert per entry of `alerts`."""
    return read_alertmanager_shaped(GrafanaPayload, body, now)


# --------------------------------------------------------------------------- Datadog


def _text(value: Any) -> Any:
    """Datadog fills an unset variable with an empty string: read it as absent; numbers
    (an id, epoch milliseconds) as text."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return value.strip() or None
    return value


Text = Annotated[str | None, BeforeValidator(_text)]
Key = Annotated[Annotated[str, StringConstraints(max_length=255)] | None, BeforeValidator(_text)]
Title = Annotated[Annotated[str, StringConstraints(max_length=1000)] | None, BeforeValidator(_text)]


def _tags(value: Any) -> Any:
    if isinstance(value, str):
        return [tag.strip() for tag in value.split(",") if tag.strip()]
    return value


class DatadogOrg(_Body):
    id: Text = None
    name: Text = None


class DatadogPayload(_Body):
    """A Datadog webhook body: its default payload, or the one documented above."""

    title: Title = None
    alert_title: Title = None
    body: Text = None
    id: Text = None
    alert_id: Text = None
    alert_cycle_key: Key = None
    aggreg_key: Key = None
    alert_transition: Text = None
    alert_type: Text = None
    alert_priority: Text = None
    alert_status: Text = None
    alert_metric: Text = None
    alert_scope: Text = None
    hostname: Text = None
    link: Text = None
    snapshot: Text = None
    tags: Annotated[list[str], BeforeValidator(_tags)] = Field(default_factory=list)
    event_type: Text = None
    date: Text = None
    last_updated: Text = None
    service: Text = None
    org: DatadogOrg | None = None


_TRANSITION_PREFIX = re.compile(r"^\[([A-Za-z][A-Za-z -]*)\]\s*")
_RESOLVED_TRANSITIONS = frozenset({"recovered"})


def _tag_labels(tags: list[str]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for tag in tags:
        key, sep, value = tag.partition(":")
        if key.strip():
            labels[key.strip()] = value.strip() if sep else "true"
    return labels


def parse_datadog(body: Any, now: datetime) -> list[Alert]:
    """Parse a Datadog webhook body into one Alert (see the module docstring)."""
    _require_object(body, "DatadogPayload")
    item = DatadogPayload.model_validate(body)
    title = item.title or item.alert_title
    if not title:
        raise _invalid(
            "DatadogPayload", ("title",), "required ($EVENT_TITLE or $ALERT_TITLE)", body
        )
    now = _now(now)
    prefix = _TRANSITION_PREFIX.match(title)
    bare = title[prefix.end() :] if prefix else title
    transition = (item.alert_transition or (prefix.group(1) if prefix else "")).lower()
    resolved = transition in _RESOLVED_TRANSITIONS or (item.alert_type or "").lower() == "success"
    key = (
        item.alert_cycle_key
        or item.aggreg_key
        or (f"{item.alert_id}:{item.alert_scope or ''}" if item.alert_id else None)
    )
    fingerprint = key or _digest("datadog", bare)
    severity = OPSGENIE_PRIORITY.get((item.alert_priority or "").upper()) or (
        None if resolved else Severity.parse(item.alert_type)
    )
    labels = _tag_labels(item.tags)
    for name, value in (
        ("hostname", item.hostname),
        ("alert_metric", item.alert_metric),
        ("alert_id", item.alert_id),
        ("event_type", item.event_type),
        ("alert_transition", item.alert_transition),
    ):
        if value:
            labels[name] = value
    service = item.service or labels.get("service") or None
    description = "\n".join(v for v in (item.alert_status, item.body) if v)
    return [
        Alert(
            fingerprint=fingerprint,
            group_key=fingerprint,
            status=AlertStatus.RESOLVED if resolved else AlertStatus.FIRING,
            title=bare or title,
            description=description,
            severity=severity,
            service=service,
            labels=labels,
            links=tuple(_link(item.link, "Datadog") + _link(item.snapshot, "Snapshot")),
            source="datadog",
            starts_at=now,
            ends_at=now if resolved else None,
        )
    ]
