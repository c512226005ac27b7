"""The postmortem draft: a Markdown document from a Jinja2 template (replaceable in the
config) over the incident, its timeline with notes and updates, follow-ups and participants."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from bot.config import PulseOpsConfig
from bot.domain.durations import human_seconds
from bot.domain.records import Followup, Incident, TimelineEvent
from bot.render.renderer import TEMPLATES
from store.collab import FollowupRepository
from store.incidents import IncidentRepository, TimelineRepository
from store.session import Database

DEFAULT_TEMPLATE = TEMPLATES / "postmortem.md.j2"


def _person(actor: str | None, names: Mapping[str, str]) -> str:
    """`@name` for a Slack user id the workspace knows, else the actor as recorded."""
    if not actor:
        return "someone"
    return f"@{names[actor]}" if actor in names else actor


_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")


def _plain(text: str, names: Mapping[str, str]) -> str:
    """Slack mentions in a timeline text as people read them (`@name`, else the id)."""
    return _MENTION.sub(lambda m: _person(m[1], names), text)


def participants(incident: Incident, events: list[TimelineEvent]) -> list[str]:
    """Everyone who took part: the roles, then each person on the timeline, in order."""
    people = [p for p in (incident.lead, incident.comms) if p]
    for event in events:
        for who in (event.actor, event.data.get("target"), event.data.get("user")):
            if isinstance(who, str) and who[:1] in "UW" and who.isalnum() and who not in people:
                people.append(who)
    return people


def _span(start: Any, end: Any) -> str:
    if start is None or end is None:
        return "—"
    return human_seconds(max((end - start), timedelta(0)).total_seconds())


class Postmortems:
    """Renders an incident's postmortem draft."""

    def __init__(self, *, db: Database, config: PulseOpsConfig) -> None:
        self.db = db
        self.config = config
        path = Path(config.collaboration.postmortem_template or DEFAULT_TEMPLATE)
        self.env = Environment(
            loader=FileSystemLoader(str(path.parent)),
            autoescape=False,
            undefined=StrictUndefined,
            keep_trailing_newline=True,
        )
        self.env.filters["person"] = _person
        self.env.filters["plain"] = _plain
        self.template_name = path.name

    async def render(self, *, incident_id: int, names: Mapping[str, str] | None = None) -> str:
        """The Markdown draft of one incident (`names`: Slack user id → display name)."""
        async with self.db.read() as session:
            incident = await IncidentRepository(session).get(incident_id=incident_id)
            events = await TimelineRepository(session).list(incident_id=incident_id)
            followups = await FollowupRepository(session).for_incident(incident_id=incident_id)
        return self.render_document(incident, events, followups, names=names or {})

    def render_document(
        self,
        incident: Incident,
        events: list[TimelineEvent],
        followups: list[Followup],
        *,
        names: Mapping[str, str],
    ) -> str:
        service = self.config.service(incident.service_id) if incident.service_id else None
        team = self.config.team(incident.team_id) if incident.team_id else None
        return self.env.get_template(self.template_name).render(
            incident=incident,
            events=events,
            followups=followups,
            participants=participants(incident, events),
            names=names,
            service_name=service.name if service else incident.service_id,
            team_name=team.name if team else incident.team_id,
            mtta=_span(incident.triggered_at, incident.acknowledged_at),
            mttr=_span(incident.triggered_at, incident.resolved_at),
            duration=_span(incident.triggered_at, incident.resolved_at),
        )
