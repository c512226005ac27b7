"""`pulseops sandbox --seed-history`: a few weeks of past incidents, so reports have numbers.

The history is generated from the configuration (its teams, members, services and
integrations) with a fixed random seed: every incident resolved, most acknowledged by someone
on the owning team, some resolved by their monitor, each with a timeline, its alerts and the
first page. The incidents' channels are returned as archived channel seeds for the emulator,
so links to them in reports and `/incident list` lead somewhere, as they would in Slack.

Seeding only writes to an empty database; a database that already holds incidents is left
as it is.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from bot.config import PulseOpsConfig
from bot.domain.naming import channel_name
from store import migrate
from store.models import AlertRow, IncidentRow, PageRow, TimelineRow
from store.session import Database

DEFAULT_WEEKS = 4
SEED = 20261123

TITLES = (
    "High error rate",
    "Latency p99 above SLO",
    "Pods crash looping",
    "Database connections exhausted",
    "Disk almost full",
    "Certificate expires in 7 days",
    "Queue backlog growing",
    "Upstream timeouts",
)
SEVERITIES = ("SEV1", "SEV2", "SEV3", "SEV4")
SEVERITY_WEIGHTS = (1, 3, 5, 2)


@dataclass
class SeededHistory:
    """What was written, and the archived channels the emulator should know."""

    incidents: int = 0
    skipped: bool = False
    channels: list[dict[str, Any]] = field(default_factory=list)


def _severity(rng: random.Random) -> str:
    return rng.choices(SEVERITIES, weights=SEVERITY_WEIGHTS)[0]


async def seed_history(
    url: str, config: PulseOpsConfig, *, now: datetime, weeks: int = DEFAULT_WEEKS
) -> SeededHistory:
    """Write `weeks` weeks of resolved incidents ending at `now` into an empty database."""
    db = Database(url)
    try:
        await migrate.upgrade(db)
        async with db.read() as session:
            existing = await session.scalar(select(func.count()).select_from(IncidentRow))
        if existing:
            return SeededHistory(skipped=True)
        async with db.write() as session:
            return await _write(session, config, now=now, weeks=weeks)
    finally:
        await db.dispose()


async def _write(
    session: Any, config: PulseOpsConfig, *, now: datetime, weeks: int
) -> SeededHistory:
    rng = random.Random(SEED)
    teams = {t.id: t for t in config.teams}
    integrations = {i.service: i.name for i in config.integrations if i.service}
    services = [s for s in config.services if teams.get(s.team) and teams[s.team].members]
    prefix = config.slack.channel_prefix
    seeded = SeededHistory()
    start = now - timedelta(weeks=weeks)
    for week in range(weeks):
        for service in services:
            for _ in range(rng.randint(1, 4)):
                triggered = start + timedelta(weeks=week, seconds=rng.random() * 7 * 86400)
                if triggered > now - timedelta(hours=3):
                    continue
                people = teams[service.team].members
                incident = _incident(
                    rng, service.id, service.team, people, triggered, integrations.get(service.id)
                )
                session.add(incident)
                await session.flush()
                incident.channel_id = f"C0H{incident.id:07d}"
                incident.channel_name = channel_name(prefix, incident.id, incident.title)
                session.add_all(_timeline(incident))
                session.add(
                    PageRow(
                        incident_id=incident.id,
                        cycle=0,
                        level=0,
                        step=0,
                        target=people[0],
                        kind="user",
                        via="user",
                        paged_at=triggered,
                        scheduled_at=triggered,
                    )
                )
                if incident.integration:
                    session.add(_alert(rng, incident))
                seeded.incidents += 1
                seeded.channels.append(
                    {
                        "id": incident.channel_id,
                        "name": incident.channel_name,
                        "members": list(people),
                        "is_archived": True,
                        "topic": f"{incident.severity} · resolved · {incident.title}",
                        "messages": [_summary(incident)],
                    }
                )
    return seeded


def _incident(
    rng: random.Random,
    service: str,
    team: str,
    people: tuple[str, ...],
    triggered: datetime,
    integration: str | None,
) -> IncidentRow:
    """A resolved incident: acknowledged within the hour, resolved within six more."""
    acked = triggered + timedelta(seconds=min(rng.lognormvariate(5.3, 0.9), 3600))
    resolved = acked + timedelta(seconds=min(rng.lognormvariate(7.6, 0.8), 6 * 3600))
    acker = rng.choice(people)
    by_monitor = integration is not None and rng.random() < 0.35
    return IncidentRow(
        title=f"{rng.choice(TITLES)} on {service}",
        description="",
        status="resolved",
        severity=_severity(rng),
        service_id=service,
        team_id=team,
        source="alertmanager" if integration else "manual",
        integration=integration,
        auto_resolve=True,
        version=2,
        alert_count=1,
        labels={},
        links={"items": []},
        triggered_at=triggered,
        acknowledged_at=acked,
        acknowledged_by=acker,
        resolved_at=resolved,
        resolved_by=f"monitor:{integration}" if by_monitor else acker,
        updated_at=resolved,
    )


def _summary(incident: IncidentRow) -> str:
    """What the archived channel shows: the incident as it ended (the page has no history)."""
    resolver = str(incident.resolved_by)
    by = (
        f"the monitor ({resolver.removeprefix('monitor:')})"
        if resolver.startswith("monitor:")
        else f"<@{resolver}>"
    )
    took = (incident.resolved_at or incident.triggered_at) - incident.triggered_at
    hours, rest = divmod(int(took.total_seconds()) // 60, 60)
    return (
        f"INC-{incident.id}: {incident.title} ({incident.severity}). Acknowledged by "
        f"<@{incident.acknowledged_by}>, resolved by {by} after {hours} h {rest} min."
    )


def _timeline(incident: IncidentRow) -> list[TimelineRow]:
    monitor = f"monitor:{incident.integration}" if incident.integration else "pulseops"
    opened = {"severity": incident.severity, "service": incident.service_id}
    # the same words the service writes for these steps
    by_monitor = str(incident.resolved_by).startswith("monitor:")
    resolved = f"Monitor reports resolved: {incident.title}" if by_monitor else "Resolved"
    steps: list[tuple[datetime | None, str, str, str, dict[str, Any]]] = [
        (incident.triggered_at, "triggered", monitor, incident.title, opened),
        (
            incident.acknowledged_at,
            "acknowledged",
            str(incident.acknowledged_by),
            "Acknowledged",
            {},
        ),
        (incident.resolved_at, "resolved", str(incident.resolved_by), resolved, {}),
    ]
    return [
        TimelineRow(incident_id=incident.id, at=at, kind=kind, actor=actor, text=text, data=data)
        for at, kind, actor, text, data in steps
    ]


def _alert(rng: random.Random, incident: IncidentRow) -> AlertRow:
    return AlertRow(
        incident_id=incident.id,
        integration=str(incident.integration),
        fingerprint=f"history{incident.id:06d}",
        status="resolved",
        title=incident.title,
        labels={"service": incident.service_id or ""},
        occurrences=1 + int(rng.expovariate(0.3)),
        first_seen_at=incident.triggered_at,
        last_seen_at=incident.resolved_at,
        resolved_at=incident.resolved_at,
    )
