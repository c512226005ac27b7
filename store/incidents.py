"""Incident repositories: incidents, their alerts and timelines, returned as domain records.

Keyword-only queries over one session; the caller owns the transaction. A missing incident
raises `IncidentNotFound`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import orjson
from sqlalchemy import (
    Table,
    and_,
    bindparam,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer
from sqlalchemy.sql.elements import ColumnElement, TextClause
from sqlalchemy.sql.selectable import TextualSelect

from bot.domain.alerts import Alert, AlertStatus
from bot.domain.incident import IncidentState, Severity, Status
from bot.domain.records import AlertRecord, Incident, NewIncident, TimelineEvent
from bot.domain.routing import Ownership
from bot.errors import NotFound
from store.models import AlertRow, IncidentRow, TimelineRow

# `list` returns descriptions of at most one character more than this (so a reader can tell
# one was cut): a page stays small however long they are. `get` returns them whole.
LIST_DESCRIPTION_CHARS = 500


class IncidentNotFound(NotFound):
    def __init__(self, ref: object) -> None:
        super().__init__(f"no incident {ref}")


def to_incident(row: IncidentRow, *, description: str | None = None) -> Incident:
    """The record of `row`; `description` replaces the row's (not loaded then)."""
    return Incident(
        id=row.id,
        title=row.title,
        description=row.description if description is None else description,
        status=Status(row.status),
        severity=Severity(row.severity),
        service_id=row.service_id,
        team_id=row.team_id,
        source=row.source,
        integration=row.integration,
        dedup_key=row.dedup_key,
        auto_resolve=row.auto_resolve,
        created_by=row.created_by,
        version=row.version,
        alert_count=row.alert_count,
        labels=dict(row.labels or {}),
        links=list((row.links or {}).get("items", [])),
        triggered_at=row.triggered_at,
        acknowledged_at=row.acknowledged_at,
        acknowledged_by=row.acknowledged_by,
        resolved_at=row.resolved_at,
        resolved_by=row.resolved_by,
        updated_at=row.updated_at,
        channel_id=row.channel_id,
        channel_name=row.channel_name,
        message_ts=row.message_ts,
        message_version=row.message_version,
        announcement_channel=row.announcement_channel,
        announcement_ts=row.announcement_ts,
        announcement_version=row.announcement_version,
        lead=row.lead,
        comms=row.comms,
        update_status=row.update_status,
        update_summary=row.update_summary,
        last_update_at=row.last_update_at,
        category=row.category,
        chart_file_id=row.chart_file_id,
    )


def to_alert(row: AlertRow) -> AlertRecord:
    return AlertRecord(
        id=row.id,
        incident_id=row.incident_id,
        integration=row.integration,
        fingerprint=row.fingerprint,
        status=row.status,
        title=row.title,
        labels=dict(row.labels or {}),
        occurrences=row.occurrences,
        first_seen_at=row.first_seen_at,
        last_seen_at=row.last_seen_at,
        resolved_at=row.resolved_at,
        last_note_at=row.last_note_at,
        severity=row.severity,
    )


@dataclass(frozen=True, slots=True)
class IncidentFilter:
    status: Sequence[Status] = ()
    service_id: str | None = None
    team_id: str | None = None
    integration: str | None = None  # the integration that opened it


class IncidentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, *, incident_id: int) -> Incident:
        row = await self.session.get(IncidentRow, incident_id, populate_existing=True)
        if row is None:
            raise IncidentNotFound(f"INC-{incident_id}")
        return to_incident(row)

    async def get_by_channel(self, *, channel_id: str) -> Incident | None:
        row = await self.session.scalar(
            select(IncidentRow).where(IncidentRow.channel_id == channel_id)
        )
        return to_incident(row) if row else None

    async def get_open_by_dedup_key(self, *, dedup_key: str) -> Incident | None:
        row = await self.session.scalar(
            select(IncidentRow).where(
                IncidentRow.dedup_key == dedup_key, IncidentRow.status != Status.RESOLVED.value
            )
        )
        return to_incident(row) if row else None

    async def open_in_group(self, *, prefix: str, limit: int = 20) -> list[Incident]:
        """Open incidents whose dedup key starts with `prefix` (a route's group), newest first."""
        rows = await self.session.scalars(
            select(IncidentRow)
            .where(
                IncidentRow.dedup_key.startswith(prefix, autoescape=True),
                IncidentRow.status != Status.RESOLVED.value,
            )
            .order_by(IncidentRow.triggered_at.desc(), IncidentRow.id.desc())
            .limit(limit)
        )
        return [to_incident(row) for row in rows]

    async def count_opened_since(
        self, *, integration: str, since: datetime, excluding_dedup_key: str
    ) -> int:
        """Incidents the integration opened since `since`, not counting one dedup key's."""
        return (
            await self.session.scalar(
                select(func.count()).where(
                    IncidentRow.triggered_at >= since,
                    IncidentRow.integration == integration,
                    or_(
                        IncidentRow.dedup_key.is_(None),
                        IncidentRow.dedup_key != excluding_dedup_key,
                    ),
                )
            )
            or 0
        )

    async def add(
        self, new: NewIncident, *, ownership: Ownership, now: datetime, alert_count: int
    ) -> Incident:
        """Store a new, triggered incident owned as `ownership` says."""
        row = IncidentRow(
            title=new.title[:1000],
            description=new.description,
            status=Status.TRIGGERED.value,
            severity=new.severity.value,
            service_id=ownership.service_id,
            team_id=ownership.team_id,
            source=new.source,
            integration=new.integration,
            dedup_key=new.dedup_key,
            category=new.category,
            auto_resolve=ownership.auto_resolve,
            created_by=new.created_by,
            alert_count=alert_count,
            labels=new.labels,
            links={"items": new.links},
            triggered_at=now,
            updated_at=now,
            version=1,
        )
        self.session.add(row)
        await self.session.flush()
        return to_incident(row)

    async def list(
        self, *, filters: IncidentFilter, limit: int = 50, offset: int = 0
    ) -> tuple[list[Incident], int]:
        """A page of incidents, newest first, and the total count matching the filters.

        Descriptions longer than LIST_DESCRIPTION_CHARS come cut to one character more.
        """
        conditions: list[ColumnElement[bool]] = []
        if filters.status:
            conditions.append(IncidentRow.status.in_([s.value for s in filters.status]))
        if filters.service_id:
            conditions.append(IncidentRow.service_id == filters.service_id)
        if filters.team_id:
            conditions.append(IncidentRow.team_id == filters.team_id)
        if filters.integration:
            conditions.append(IncidentRow.integration == filters.integration)
        where = and_(*conditions) if conditions else None
        excerpt = func.substr(IncidentRow.description, 1, LIST_DESCRIPTION_CHARS + 1)
        query = (
            select(IncidentRow, excerpt)
            .options(defer(IncidentRow.description))
            .order_by(IncidentRow.id.desc())
            .limit(limit)
            .offset(offset)
        )
        count = select(func.count()).select_from(IncidentRow)
        if where is not None:
            query = query.where(where)
            count = count.where(where)
        rows = (await self.session.execute(query)).all()
        total = await self.session.scalar(count) or 0
        return [to_incident(row, description=text) for row, text in rows], total

    async def compare_and_set_state(
        self, *, incident_id: int, expected_version: int, state: IncidentState, now: datetime
    ) -> bool:
        """Write `state` only if the stored version is still `expected_version`."""
        result = await self.session.execute(
            update(IncidentRow)
            .where(IncidentRow.id == incident_id, IncidentRow.version == expected_version)
            .values(
                status=state.status.value,
                version=state.version,
                acknowledged_by=state.acknowledged_by,
                acknowledged_at=state.acknowledged_at,
                resolved_by=state.resolved_by,
                resolved_at=state.resolved_at,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1  # type: ignore[attr-defined,no-any-return]

    async def count_alerts(self, *, incident_id: int, now: datetime, alerts: int = 1) -> None:
        """Count `alerts` new alerts on the incident and raise its version (messages re-render).

        Plain repeats are counted with `count_repeats` instead: they do not raise the version,
        so an alert storm does not turn into a storm of message edits.
        """
        await self.session.execute(
            update(IncidentRow)
            .where(IncidentRow.id == incident_id)
            .values(
                alert_count=IncidentRow.alert_count + alerts,
                version=IncidentRow.version + 1,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )

    async def count_repeats(self, repeats: Mapping[int, int]) -> None:
        """Add repeated notifications to incidents' alert counts: {incident id: repeats}, in
        one statement however many incidents."""
        if repeats:
            counts = orjson.dumps(list(repeats.items())).decode()
            await self.session.execute(
                _count_on_incidents(self.session.get_bind().dialect.name), {"counts": counts}
            )

    async def set_announcement(
        self, *, incident_id: int, channel: str, ts: str, version: int
    ) -> None:
        """Record the announcement posted for the incident and the version it shows."""
        await self._set(
            incident_id,
            announcement_channel=channel,
            announcement_ts=ts,
            announcement_version=version,
        )

    async def set_channel(self, *, incident_id: int, channel_id: str, channel_name: str) -> None:
        """Record the incident's own channel."""
        await self._set(incident_id, channel_id=channel_id, channel_name=channel_name)

    async def set_message(self, *, incident_id: int, ts: str, version: int) -> None:
        """Record the incident message in its channel and the version it shows."""
        await self._set(incident_id, message_ts=ts, message_version=version)

    async def set_chart(self, *, incident_id: int, file_id: str, now: datetime) -> None:
        """Show the chart `file_id` in the incident's channel message (a new version)."""
        await self._set(
            incident_id, chart_file_id=file_id, version=IncidentRow.version + 1, updated_at=now
        )

    async def _set(self, incident_id: int, **values: Any) -> None:
        await self.session.execute(
            update(IncidentRow)
            .where(IncidentRow.id == incident_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )

    async def mark_rendered(self, *, incident_id: int, column: str, version: int) -> bool:
        """Advance a message's rendered version; False when a newer version is already shown."""
        col = getattr(IncidentRow, column)
        result = await self.session.execute(
            update(IncidentRow)
            .where(IncidentRow.id == incident_id, col <= version)
            .values({column: version})
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1  # type: ignore[attr-defined,no-any-return]

    async def take_sync_lease(self, *, incident_id: int, now: datetime, until: datetime) -> bool:
        result = await self.session.execute(
            update(IncidentRow)
            .where(
                IncidentRow.id == incident_id,
                or_(IncidentRow.sync_lease_until.is_(None), IncidentRow.sync_lease_until < now),
            )
            .values(sync_lease_until=until)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1  # type: ignore[attr-defined,no-any-return]

    async def release_sync_lease(self, *, incident_id: int) -> None:
        await self._set(incident_id, sync_lease_until=None)


@dataclass(frozen=True, slots=True)
class RepeatRecorded:
    alert_id: int
    incident_id: int
    occurrences: int
    last_note_at: datetime | None


_alerts = cast(Table, AlertRow.__table__)
_incidents = cast(Table, IncidentRow.__table__)
# The storm hot path as prebuilt Core statements: built and cache-keyed once, not per alert.
_COUNT_REPEAT = (
    update(_alerts)
    .where(
        _alerts.c.incident_id
        == select(_incidents.c.id)
        .where(_incidents.c.dedup_key == bindparam("key"), _incidents.c.status != "resolved")
        .scalar_subquery(),
        _alerts.c.fingerprint == bindparam("print"),
        _alerts.c.status == "firing",
        # the same severity as last time: one that changed takes the general path, which
        # routes it again and may raise the incident's severity
        func.coalesce(_alerts.c.severity, "") == bindparam("sent_severity"),
    )
    .values(
        occurrences=_alerts.c.occurrences + 1,
        last_seen_at=bindparam("seen_at", type_=_alerts.c.last_seen_at.type),
    )
    .returning(_alerts.c.id, _alerts.c.incident_id, _alerts.c.occurrences, _alerts.c.last_note_at)
)


@dataclass(frozen=True)
class _JsonRows:
    """A JSON array of arrays bound as one parameter, read as rows on the dialect given (on
    SQLite with `json_extract`: its `->>` needs SQLite 3.38)."""

    dialect: str

    def rows(self, param: str) -> str:
        """The array bound to `param` as rows, each array in a column `value`."""
        if self.dialect == "postgresql":
            return f"json_array_elements(CAST(:{param} AS json))"
        return f"json_each(:{param})"

    def item(self, alias: str, index: int) -> str:
        """Item `index` of the array in row `alias`, as text or a number."""
        if self.dialect == "postgresql":
            return f"{alias}.value ->> {index}"
        return f"json_extract({alias}.value, '$[{index}]')"


@functools.cache
def _count_repeats(dialect: str) -> TextualSelect:
    """`_COUNT_REPEAT` for many alerts at once, in one statement whatever their number: `sent`
    is a JSON array of [dedup key, fingerprint, severity sent or ""]. One parameter instead of
    three an alert: binding them cost more than the update itself."""
    json = _JsonRows(dialect)
    key, fingerprint, severity = (json.item("sent", i) for i in range(3))
    return (
        text(
            "UPDATE alerts SET occurrences = occurrences + 1, last_seen_at = :seen_at"
            " WHERE status = 'firing'"
            " AND (incident_id, fingerprint, coalesce(severity, '')) IN ("
            f"SELECT incidents.id, {fingerprint}, {severity}"
            f" FROM {json.rows('sent')} AS sent JOIN incidents"
            f" ON incidents.dedup_key = {key} AND incidents.status != 'resolved')"
            " RETURNING id, incident_id, fingerprint, occurrences, last_note_at"
        )
        .bindparams(bindparam("seen_at", type_=_alerts.c.last_seen_at.type))
        .columns(
            _alerts.c.id,
            _alerts.c.incident_id,
            _alerts.c.fingerprint,
            _alerts.c.occurrences,
            _alerts.c.last_note_at,
        )
    )


@functools.cache
def _count_on_incidents(dialect: str) -> TextClause:
    """Add repeats to incidents' alert counts: `counts` is a JSON array of [id, repeats]."""
    json = _JsonRows(dialect)
    incident, repeats = json.item("counts", 0), json.item("counts", 1)
    return text(
        f"UPDATE incidents SET alert_count = alert_count + CAST({repeats} AS INTEGER)"
        f" FROM {json.rows('counts')} AS counts"
        f" WHERE incidents.id = CAST({incident} AS INTEGER)"
    )


class AlertRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, *, incident_id: int, fingerprint: str) -> AlertRecord | None:
        row = await self.session.scalar(
            select(AlertRow)
            .where(AlertRow.incident_id == incident_id, AlertRow.fingerprint == fingerprint)
            # record_repeat() updates rows behind the identity map's back: always re-read
            .execution_options(populate_existing=True)
        )
        return None if row is None else to_alert(row)

    async def find(self, *, incident_ids: Sequence[int], fingerprint: str) -> AlertRecord | None:
        """The alert with `fingerprint` on any of the incidents (the newest incident's first)."""
        if not incident_ids:
            return None
        row = await self.session.scalar(
            select(AlertRow)
            .where(AlertRow.incident_id.in_(incident_ids), AlertRow.fingerprint == fingerprint)
            .order_by(AlertRow.incident_id.desc())
            .limit(1)
            .execution_options(populate_existing=True)
        )
        return None if row is None else to_alert(row)

    async def refire(
        self, *, alert_id: int, now: datetime, severity: Severity | None = None
    ) -> int:
        """Count one more notification of a stored alert, firing again (with the severity it
        now has); return its count."""
        occurrences = await self.session.scalar(
            update(AlertRow)
            .where(AlertRow.id == alert_id)
            .values(
                severity=severity.value if severity else None,
                status=AlertStatus.FIRING.value,
                occurrences=AlertRow.occurrences + 1,
                last_seen_at=now,
                resolved_at=None,
            )
            .returning(AlertRow.occurrences)
            .execution_options(synchronize_session=False)
        )
        return int(occurrences or 0)

    async def mark_resolved(self, *, alert_id: int, now: datetime) -> None:
        """The monitor reports this alert resolved."""
        await self.session.execute(
            update(AlertRow)
            .where(AlertRow.id == alert_id)
            .values(status=AlertStatus.RESOLVED.value, resolved_at=now, last_seen_at=now)
            .execution_options(synchronize_session=False)
        )

    async def record_repeat(
        self, *, dedup_key: str, fingerprint: str, now: datetime, severity: Severity | None = None
    ) -> RepeatRecorded | None:
        """Count one more notification of an alert that is firing on an open incident.

        The hot path of an alert storm, in one UPDATE … RETURNING; the caller adds the repeats
        to the incidents' counters with `count_repeats`, once per transaction. None when the
        alert is not firing on an open incident with that dedup key (new, resolved, or no
        incident): the caller takes the general path.
        """
        row = (
            await self.session.execute(
                _COUNT_REPEAT,
                {
                    "key": dedup_key,
                    "print": fingerprint,
                    "seen_at": now,
                    "sent_severity": severity.value if severity else "",
                },
            )
        ).first()
        if row is None:
            return None
        return RepeatRecorded(
            alert_id=row.id,
            incident_id=row.incident_id,
            occurrences=row.occurrences,
            last_note_at=row.last_note_at,
        )

    async def record_repeats(
        self, alerts: Sequence[tuple[str, str, Severity | None]], *, now: datetime
    ) -> dict[str, RepeatRecorded]:
        """`record_repeat` for many alerts in one statement: (dedup key, fingerprint, severity)
        each, no fingerprint twice. The ones counted, by fingerprint; the others take the
        general path.

        One UPDATE for a whole batch of a storm's repeats instead of one per alert.
        """
        sent = orjson.dumps([(k, p, s.value if s else "") for k, p, s in alerts]).decode()
        rows = await self.session.execute(
            _count_repeats(self.session.get_bind().dialect.name), {"seen_at": now, "sent": sent}
        )
        return {
            row.fingerprint: RepeatRecorded(
                alert_id=row.id,
                incident_id=row.incident_id,
                occurrences=row.occurrences,
                last_note_at=row.last_note_at,
            )
            for row in rows
        }

    async def set_last_note(self, *, alert_id: int, at: datetime) -> None:
        await self.session.execute(
            update(AlertRow)
            .where(AlertRow.id == alert_id)
            .values(last_note_at=at)
            .execution_options(synchronize_session=False)
        )

    async def add_first(
        self, *, incident_id: int, integration: str, alert: Alert, now: datetime
    ) -> None:
        """Record the first notification of `alert` on the incident."""
        self.session.add(
            AlertRow(
                incident_id=incident_id,
                integration=integration,
                fingerprint=alert.fingerprint,
                status=alert.status.value,
                severity=alert.severity.value if alert.severity else None,
                title=alert.title[:1000],
                labels=dict(alert.labels),
                occurrences=1,
                first_seen_at=now,
                last_seen_at=now,
                last_note_at=now,
            )
        )
        await self.session.flush()

    async def count_firing(self, *, incident_id: int) -> int:
        return (
            await self.session.scalar(
                select(func.count()).where(
                    AlertRow.incident_id == incident_id, AlertRow.status != "resolved"
                )
            )
            or 0
        )

    async def list(self, *, incident_id: int) -> list[AlertRecord]:
        rows = await self.session.scalars(
            select(AlertRow).where(AlertRow.incident_id == incident_id).order_by(AlertRow.id)
        )
        return [to_alert(r) for r in rows]


class TimelineRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(
        self,
        *,
        incident_id: int,
        at: datetime,
        kind: str,
        actor: str,
        text: str = "",
        data: dict[str, Any] | None = None,
    ) -> None:
        self.session.add(
            TimelineRow(
                incident_id=incident_id, at=at, kind=kind, actor=actor, text=text, data=data or {}
            )
        )

    async def list(self, *, incident_id: int) -> list[TimelineEvent]:
        rows = await self.session.scalars(
            select(TimelineRow)
            .where(TimelineRow.incident_id == incident_id)
            .order_by(TimelineRow.at, TimelineRow.id)
        )
        return [
            TimelineEvent(
                id=r.id,
                incident_id=r.incident_id,
                at=r.at,
                kind=r.kind,
                actor=r.actor,
                text=r.text,
                data=dict(r.data or {}),
            )
            for r in rows
        ]
