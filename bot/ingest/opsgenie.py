"""Opsgenie Alert API v2 bodies, parsed into Alerts (integration `type: opsgenie`). Pure.

Opsgenie alert → PulseOps alert
-------------------------------
`alias` is the dedup key (without one, message, entity and source together identify the
alert, so a retried create deduplicates). `priority` P1, P2, P3, P4 map to SEV1, SEV2, SEV3,
SEV4; P5 (informational) maps to SEV4 as well, PulseOps' lowest severity; no priority means
P3 (Opsgenie's default), so SEV3. `tags` become the label `tags` (comma-separated), `entity`,
`source` and `priority` labels of the same name, and each of `details` a label of its own
and a line of the description (a `service` detail routes the alert like the `service` label
of other formats; details holding an http(s) URL become links). Close, acknowledge and get
name the alert in the URL: `identifierType=alias`, or `id` (Opsgenie's default). An alert's
`id` is stable: PulseOps makes it from the alias (`alert_id`), so the same alias always has the
same id, on every replica and after restarts, and `GET /v2/alerts/{alias}?identifierType=alias`
returns it. An `id` that is not one PulseOps made is read as an alias, as scripts that pass
an alias without `identifierType` expect.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from bot.domain.alerts import Alert, AlertStatus, Link
from bot.domain.incident import Severity
from bot.errors import UserError
from bot.ingest.wire import _Body, _digest, _now, _require_object

OPSGENIE_PRIORITY: dict[str, Severity] = {
    "P1": Severity.SEV1,
    "P2": Severity.SEV2,
    "P3": Severity.SEV3,
    "P4": Severity.SEV4,
    "P5": Severity.SEV4,  # informational: PulseOps' lowest severity
}

_Short = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=512)]


class OpsgenieAlert(_Body):
    """An Opsgenie Alert API v2 create request (`POST /v2/alerts` body)."""

    message: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]
    alias: _Short | None = None
    description: Annotated[str, StringConstraints(max_length=15000)] = ""
    tags: list[Annotated[str, StringConstraints(max_length=50)]] = Field(
        default_factory=list, max_length=20
    )
    details: dict[str, str] = Field(default_factory=dict)
    entity: Annotated[str, StringConstraints(strip_whitespace=True, max_length=512)] | None = None
    source: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] | None = None
    priority: Literal["P1", "P2", "P3", "P4", "P5"] = "P3"
    user: str | None = None
    note: str | None = None
    responders: list[Any] = Field(default_factory=list)
    visible_to: list[Any] = Field(default_factory=list, alias="visibleTo")
    actions: list[str] = Field(default_factory=list)


def parse_opsgenie(body: Any, now: datetime) -> list[Alert]:
    """Parse an Opsgenie create-alert request into one firing Alert."""
    _require_object(body, "OpsgenieAlert")
    item = OpsgenieAlert.model_validate(body)
    now = _now(now)
    fingerprint = item.alias or _digest(
        "opsgenie", item.message, item.entity or "", item.source or ""
    )
    labels = dict(item.details)
    for key, value in (
        ("tags", ",".join(item.tags)),
        ("entity", item.entity),
        ("source", item.source),
        ("priority", item.priority),
    ):
        if value:
            labels[key] = value
    lines = [item.description] if item.description else []
    lines += [f"{key}: {value}" for key, value in item.details.items()]
    return [
        Alert(
            fingerprint=fingerprint,
            group_key=fingerprint,
            status=AlertStatus.FIRING,
            title=item.message,
            description="\n".join(lines),
            severity=OPSGENIE_PRIORITY[item.priority],
            service=item.details.get("service") or None,
            labels=labels,
            links=tuple(_links(item.details)),
            source="opsgenie",
            starts_at=now,
        )
    ]


def _links(details: Mapping[str, str]) -> list[Link]:
    """Details whose value is an http(s) URL, as links named by their key."""
    links = []
    for key, value in details.items():
        url = value.strip()
        if url.startswith(("http://", "https://")) and " " not in url and len(url) <= 3000:
            links.append(Link(url=url, text=key))
    return links


class OpsgenieActionBody(_Body):
    """The optional body of close and acknowledge requests."""

    user: str | None = None
    source: str | None = None
    note: Annotated[str, StringConstraints(max_length=25000)] | None = None


IDENTIFIER_TYPES = ("alias", "id")
MAX_ALIAS = 512  # Opsgenie's limit on an alias
_ID_PREFIX = "pulseops-"


def alert_id(alias: str) -> str:
    """The stable Opsgenie alert `id` of the alert with this alias (or dedup key)."""
    return _ID_PREFIX + base64.urlsafe_b64encode(alias.encode()).decode().rstrip("=")


def alias_of_id(identifier: str) -> str | None:
    """The alias an `id` made by `alert_id` stands for; None for any other text."""
    if not identifier.startswith(_ID_PREFIX):
        return None
    encoded = identifier.removeprefix(_ID_PREFIX)
    try:
        alias = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if not alias or len(alias) > MAX_ALIAS or alert_id(alias) != identifier:
        return None
    return alias


def alias_named(identifier: str, identifier_type: str) -> str:
    """The alias of the alert a URL names by `identifier` and `identifierType` (default id);
    UserError naming the parameter when either is wrong."""
    identifier = identifier.strip()
    kind = identifier_type or "id"
    if kind not in IDENTIFIER_TYPES:
        raise UserError(
            f"identifierType must be alias or id, not {kind!r}",
            fields={"identifierType": "must be alias or id"},
        )
    alias = (alias_of_id(identifier) if kind == "id" else None) or identifier
    if not alias or len(alias) > MAX_ALIAS:
        raise UserError(
            f"the alert identifier must be 1 to {MAX_ALIAS} characters",
            fields={"identifier": f"must be 1 to {MAX_ALIAS} characters"},
        )
    return alias


def parse_opsgenie_action(
    body: Any, *, identifier: str, status: AlertStatus, now: datetime
) -> Alert:
    """The alert a close (RESOLVED) or acknowledge (ACKNOWLEDGED) request names."""
    _require_object(body, "OpsgenieActionBody")
    action = OpsgenieActionBody.model_validate(body)
    now = _now(now)
    return Alert(
        fingerprint=identifier,
        group_key=identifier,
        status=status,
        title=identifier,
        description=action.note or "",
        source="opsgenie",
        starts_at=now,
        ends_at=now if status is AlertStatus.RESOLVED else None,
    )
