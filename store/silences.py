"""Silences and suppressed alerts: repositories returning domain values.

Keyword-only queries over one session; the caller owns the transaction. A missing silence
raises `SilenceNotFound`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.alerts import Alert, AlertStatus, Link
from bot.domain.incident import Severity
from bot.domain.matchers import Matcher, parse_matcher
from bot.domain.silences import Hold, Silence
from bot.errors import NotFound
from store.models import SilenceRow, SuppressedAlertRow


class SilenceNotFound(NotFound):
    def __init__(self, silence_id: int) -> None:
        super().__init__(f"no silence #{silence_id}", fields={"id": "unknown silence"})


_PARSED: dict[str, Matcher] = {}  # canonical text -> parsed (a silence's matchers never change)


def _matcher(text: str) -> Matcher:
    found = _PARSED.get(text)
    if found is None:
        if len(_PARSED) > 10_000:
            _PARSED.clear()
        found = _PARSED[text] = parse_matcher(text)
    return found


def to_silence(row: SilenceRow) -> Silence:
    return Silence(
        id=row.id,
        matchers=tuple(_matcher(text) for text in row.matchers),
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        comment=row.comment,
        created_by=row.created_by,
        created_at=row.created_at,
        expired_at=row.expired_at,
        expired_by=row.expired_by,
    )


class SilenceRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(
        self,
        *,
        matchers: Sequence[Matcher],
        starts_at: datetime,
        ends_at: datetime,
        comment: str,
        created_by: str,
        now: datetime,
    ) -> Silence:
        row = SilenceRow(
            matchers=[str(m) for m in matchers],
            starts_at=starts_at,
            ends_at=ends_at,
            comment=comment,
            created_by=created_by,
            created_at=now,
        )
        self.session.add(row)
        await self.session.flush()
        return to_silence(row)

    async def get(self, *, silence_id: int, lock: bool = False) -> Silence:
        query = select(SilenceRow).where(SilenceRow.id == silence_id)
        if lock:
            query = query.with_for_update()
        row = await self.session.scalar(query.execution_options(populate_existing=True))
        if row is None:
            raise SilenceNotFound(silence_id)
        return to_silence(row)

    async def current(self, *, now: datetime, limit: int = 1000) -> list[Silence]:
        """Silences not expired and not over (active and pending), ending soonest first."""
        rows = await self.session.scalars(
            select(SilenceRow)
            .where(SilenceRow.expired_at.is_(None), SilenceRow.ends_at > now)
            .order_by(SilenceRow.ends_at, SilenceRow.id)
            .limit(limit)
        )
        return [to_silence(r) for r in rows]

    async def expire(self, *, silence_id: int, by: str, now: datetime) -> bool:
        """Expire a silence now; False when it was already expired or over."""
        result = await self.session.execute(
            update(SilenceRow)
            .where(
                SilenceRow.id == silence_id,
                SilenceRow.expired_at.is_(None),
                SilenceRow.ends_at > now,
            )
            .values(expired_at=now, expired_by=by)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1  # type: ignore[attr-defined,no-any-return]


# ---- suppressed alerts --------------------------------------------------------------------


def alert_to_json(alert: Alert) -> dict[str, Any]:
    """The alert as stored, so that a released one goes through the pipeline as it came."""
    return {
        "fingerprint": alert.fingerprint,
        "group_key": alert.group_key,
        "status": alert.status.value,
        "title": alert.title,
        "description": alert.description,
        "severity": alert.severity.value if alert.severity else None,
        "service": alert.service,
        "labels": dict(alert.labels),
        "links": [{"url": link.url, "text": link.text} for link in alert.links],
        "source": alert.source,
        "starts_at": alert.starts_at.isoformat() if alert.starts_at else None,
        "ends_at": alert.ends_at.isoformat() if alert.ends_at else None,
    }


def alert_from_json(data: dict[str, Any]) -> Alert:
    def when(value: Any) -> datetime | None:
        return datetime.fromisoformat(value) if isinstance(value, str) else None

    return Alert(
        fingerprint=data["fingerprint"],
        group_key=data["group_key"],
        status=AlertStatus(data["status"]),
        title=data["title"],
        description=data.get("description") or "",
        severity=Severity(data["severity"]) if data.get("severity") else None,
        service=data.get("service"),
        labels=dict(data.get("labels") or {}),
        links=tuple(Link(url=li["url"], text=li.get("text", "")) for li in data.get("links", [])),
        source=data.get("source") or "",
        starts_at=when(data.get("starts_at")),
        ends_at=when(data.get("ends_at")),
    )


@dataclass(frozen=True, slots=True)
class SuppressedAlert:
    """One suppressed alert as stored."""

    id: int
    integration: str
    fingerprint: str
    dedup_key: str
    reason: str
    by: str
    silence_id: int | None
    window: str | None
    status: str
    alert: Alert
    occurrences: int
    first_seen_at: datetime
    last_seen_at: datetime
    held_until: datetime | None
    released_at: datetime | None
    released_incident_id: int | None


def to_suppressed(row: SuppressedAlertRow) -> SuppressedAlert:
    return SuppressedAlert(
        id=row.id,
        integration=row.integration,
        fingerprint=row.fingerprint,
        dedup_key=row.dedup_key,
        reason=row.reason,
        by=row.by,
        silence_id=row.silence_id,
        window=row.window,
        status=row.status,
        alert=alert_from_json(row.alert),
        occurrences=row.occurrences,
        first_seen_at=row.first_seen_at,
        last_seen_at=row.last_seen_at,
        held_until=row.held_until,
        released_at=row.released_at,
        released_incident_id=row.released_incident_id,
    )


async def record_suppressed(
    session: AsyncSession,
    *,
    integration: str,
    dedup_key: str,
    alert: Alert,
    reason: str,
    by: str,
    now: datetime,
    hold: Hold | None = None,
) -> None:
    """Store an alert that opened no incident (`reason` "muted" or "dropped"), counting its
    occurrences: one row per (integration, fingerprint). A muted alert's `hold` says what
    holds it and until when (the release deadline)."""
    values: dict[str, Any] = {
        "dedup_key": dedup_key,
        "reason": reason,
        "by": by,
        "silence_id": hold.silence_id if hold else None,
        "window": hold.window if hold else None,
        "status": alert.status.value,
        "title": alert.title[:1000],
        "alert": alert_to_json(alert),
        "last_seen_at": now,
        "resolved_at": None,
        "held_until": hold.until if hold else None,
        "released_at": None,
        "released_incident_id": None,
    }
    insert: Any = (
        postgresql.insert(SuppressedAlertRow)
        if session.get_bind().dialect.name == "postgresql"
        else sqlite.insert(SuppressedAlertRow)
    )
    statement = insert.values(
        integration=integration,
        fingerprint=alert.fingerprint,
        occurrences=1,
        first_seen_at=now,
        **values,
    )
    statement = statement.on_conflict_do_update(
        index_elements=["integration", "fingerprint"],
        set_={**values, "occurrences": SuppressedAlertRow.occurrences + 1},
    )
    await session.execute(statement)


class SuppressedAlertRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def mark_resolved(self, *, integration: str, fingerprint: str, now: datetime) -> bool:
        """The monitor resolved a suppressed alert: it will not be released."""
        result = await self.session.execute(
            update(SuppressedAlertRow)
            .where(
                SuppressedAlertRow.integration == integration,
                SuppressedAlertRow.fingerprint == fingerprint,
                SuppressedAlertRow.status == AlertStatus.FIRING.value,
            )
            .values(status=AlertStatus.RESOLVED.value, resolved_at=now, last_seen_at=now)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1  # type: ignore[attr-defined,no-any-return]

    async def end_hold(self, *, silence_id: int, now: datetime) -> int:
        """A silence expired early: the alerts it holds are due for release now."""
        result = await self.session.execute(
            update(SuppressedAlertRow)
            .where(
                SuppressedAlertRow.silence_id == silence_id,
                SuppressedAlertRow.released_at.is_(None),
                SuppressedAlertRow.held_until > now,
            )
            .values(held_until=now)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount  # type: ignore[attr-defined,no-any-return]

    async def due(self, *, now: datetime, limit: int) -> list[SuppressedAlert]:
        """Muted alerts still firing whose hold has ended, locked (other replicas skip them)."""
        rows = await self.session.scalars(
            select(SuppressedAlertRow)
            .where(
                SuppressedAlertRow.held_until <= now,
                SuppressedAlertRow.released_at.is_(None),
                SuppressedAlertRow.status == AlertStatus.FIRING.value,
                SuppressedAlertRow.reason == "muted",
            )
            .order_by(SuppressedAlertRow.held_until, SuppressedAlertRow.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
        return [to_suppressed(r) for r in rows]

    async def rehold(self, *, suppressed_id: int, hold: Hold) -> None:
        """Another silence or window holds a due alert: its release waits for that one."""
        await self.session.execute(
            update(SuppressedAlertRow)
            .where(SuppressedAlertRow.id == suppressed_id)
            .values(
                by=hold.by, silence_id=hold.silence_id, window=hold.window, held_until=hold.until
            )
            .execution_options(synchronize_session=False)
        )

    async def mark_released(
        self, *, suppressed_id: int, incident_id: int | None, now: datetime
    ) -> bool:
        """Claim a due alert's release (False: another replica released it first)."""
        result = await self.session.execute(
            update(SuppressedAlertRow)
            .where(SuppressedAlertRow.id == suppressed_id, SuppressedAlertRow.released_at.is_(None))
            .values(released_at=now, released_incident_id=incident_id, held_until=None)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1  # type: ignore[attr-defined,no-any-return]

    async def list(
        self,
        *,
        reason: str | None = None,
        silence_id: int | None = None,
        window: str | None = None,
        status: str | None = None,
        limit: int = 100,
    ) -> list[SuppressedAlert]:
        """Suppressed alerts, the most recently seen first."""
        query = select(SuppressedAlertRow)
        if reason is not None:
            query = query.where(SuppressedAlertRow.reason == reason)
        if silence_id is not None:
            query = query.where(SuppressedAlertRow.silence_id == silence_id)
        if window is not None:
            query = query.where(SuppressedAlertRow.window == window)
        if status is not None:
            query = query.where(SuppressedAlertRow.status == status)
        rows = await self.session.scalars(
            query.order_by(
                SuppressedAlertRow.last_seen_at.desc(), SuppressedAlertRow.id.desc()
            ).limit(limit)
        )
        return [to_suppressed(r) for r in rows]

    async def held_counts(self, *, silence_ids: Sequence[int]) -> dict[int, int]:
        """How many alerts each silence holds now (firing, not released)."""
        if not silence_ids:
            return {}
        rows = await self.session.execute(
            select(SuppressedAlertRow.silence_id, func.count())
            .where(
                SuppressedAlertRow.silence_id.in_(list(silence_ids)),
                SuppressedAlertRow.released_at.is_(None),
                SuppressedAlertRow.status == AlertStatus.FIRING.value,
            )
            .group_by(SuppressedAlertRow.silence_id)
        )
        return {int(sid): int(n) for sid, n in rows.all() if sid is not None}
