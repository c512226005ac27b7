"""What `pulseops import` reads from another tool, and the pulseops.yml fragment it writes.

Each source (PagerDuty, Opsgenie, Grafana OnCall) is read into the neutral `Imported` below;
`fragment` turns it into configuration, with every person replaced by a Slack user ID, and
lists everything it cannot express. Pure: no I/O; the output depends only on its input, so
running the import twice gives the same file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import yaml


class ImportFileError(ValueError):
    """A file that is not what the importer reads; the message names the file and the key."""


def aware(value: str, zone: str = "UTC") -> datetime:
    """An ISO 8601 time; one without an offset is read in `zone`."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(zone))


@dataclass(frozen=True, slots=True)
class Person:
    """Someone the source tool pages: matched to Slack by e-mail (or the tool's own Slack ID)."""

    key: str  # the source tool's id
    name: str
    email: str | None = None
    slack_id: str | None = None  # known to the source itself (Grafana OnCall)


@dataclass(frozen=True, slots=True)
class Layer:
    """People taking turns of `turn`, people[0] first from `start` (aware)."""

    name: str
    start: datetime
    turn: timedelta
    people: tuple[str, ...]  # Person keys


@dataclass(frozen=True, slots=True)
class Schedule:
    key: str
    name: str
    time_zone: str
    layers: tuple[Layer, ...]
    team: str | None = None  # team name


Target = tuple[Literal["schedule", "user"], str]


@dataclass(frozen=True, slots=True)
class Level:
    """Page `targets`, then wait `delay` before the next level."""

    delay: timedelta
    targets: tuple[Target, ...]


@dataclass(frozen=True, slots=True)
class Policy:
    key: str
    name: str
    levels: tuple[Level, ...]
    repeat: int = 0
    team: str | None = None


@dataclass(frozen=True, slots=True)
class Service:
    key: str
    name: str
    policy: str | None = None  # Policy key
    team: str | None = None


@dataclass
class Imported:
    """Everything read from one tool's files, and what could not be expressed."""

    source: str
    people: dict[str, Person] = field(default_factory=dict)
    schedules: list[Schedule] = field(default_factory=list)
    policies: list[Policy] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)
    not_carried: list[str] = field(default_factory=list)


# ---- the fragment ---------------------------------------------------------------------------

_FIXED = {timedelta(days=1): "daily", timedelta(days=7): "weekly", timedelta(days=14): "biweekly"}
MIN_DELAY = timedelta(minutes=1)


def slug(text: str) -> str:
    """A PulseOps id from a name: lowercase letters, digits and dashes."""
    value = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return value[:60].strip("-") or "imported"


def duration(value: timedelta) -> str:
    """`1h30m`-style text for a positive duration."""
    seconds = int(value.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "1s"


class _Ids:
    """Unique, stable ids per kind: the same names always get the same ids."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def take(self, name: str) -> str:
        base = slug(name)
        candidate, n = base, 2
        while candidate in self.used:
            candidate, n = f"{base}-{n}", n + 1
        self.used.add(candidate)
        return candidate


def fragment(
    imported: Imported, slack_ids: Mapping[str, str], *, default_team: str
) -> tuple[dict[str, Any], list[str]]:
    """The pulseops.yml fragment for `imported`, and what it could not carry over.

    `slack_ids` maps a Person key to a Slack user ID; people without one are left out (and
    listed).
    """
    notes = list(imported.not_carried)
    people = imported.people
    team_ids, team_names = _Ids(), {default_team: default_team}
    team_members: dict[str, list[str]] = {}
    team_of: dict[str | None, str] = {None: default_team}
    team_ids.used.add(default_team)

    def team(name: str | None) -> str:
        if name not in team_of:
            assert name is not None
            team_of[name] = team_ids.take(name)
            team_names[team_of[name]] = name
        return team_of[name]

    def slack(key: str, where: str) -> str | None:
        found = slack_ids.get(key)
        if found is None:
            person = people.get(key)
            who = f"{person.name} ({person.email or 'no e-mail'})" if person else key
            notes.append(f"{where}: {who} has no Slack user (not found by e-mail or mapping)")
        return found

    schedule_ids = _Ids()
    schedules: list[dict[str, Any]] = []
    schedule_map: dict[str, list[str]] = {}
    for source in sorted(imported.schedules, key=lambda s: (s.name, s.key)):
        team_id = team(source.team)
        zone = ZoneInfo(source.time_zone)
        many = len(source.layers) > 1
        if many:
            notes.append(
                f"schedule {source.name!r}: {len(source.layers)} layers are merged by "
                f"{imported.source} into one on-call; PulseOps has one rotation per schedule, so "
                "each layer became a schedule of its own and the escalation policies page all "
                "of them"
            )
        for layer in source.layers:
            where = f"schedule {source.name!r} layer {layer.name!r}"
            participants = []
            for key in layer.people:
                found = slack(key, where)
                if found is not None and found not in participants:
                    participants.append(found)
            if not participants:
                notes.append(f"{where}: nobody left to take turns; not imported")
                continue
            schedule_id = schedule_ids.take(f"{source.name} {layer.name}" if many else source.name)
            schedule_map.setdefault(source.key, []).append(schedule_id)
            rotation: dict[str, Any] = {"type": _FIXED.get(layer.turn, "custom")}
            if rotation["type"] == "custom":
                rotation["length"] = duration(layer.turn)
            rotation["start"] = layer.start.astimezone(zone).replace(tzinfo=None).isoformat()
            rotation["participants"] = participants
            team_members.setdefault(team_id, []).extend(participants)
            schedules.append(
                {
                    "id": schedule_id,
                    "team": team_id,
                    "time_zone": source.time_zone,
                    "rotation": rotation,
                }
            )

    policy_ids = _Ids()
    policies: list[dict[str, Any]] = []
    policy_map: dict[str, str] = {}
    for policy in sorted(imported.policies, key=lambda p: (p.name, p.key)):
        levels = []
        for number, level in enumerate(policy.levels, 1):
            where = f"escalation policy {policy.name!r} level {number}"
            targets: list[dict[str, str]] = []
            for kind, key in level.targets:
                if kind == "schedule":
                    ids = schedule_map.get(key)
                    if not ids:
                        notes.append(f"{where}: schedule {key} was not imported; left out")
                    targets += [{"schedule": i} for i in ids or []]
                else:
                    found = slack(key, where)
                    if found is not None:
                        targets.append({"user": found})
            if not targets:
                notes.append(f"{where}: no target left; level not imported")
                continue
            delay = level.delay
            if delay < MIN_DELAY:
                notes.append(f"{where}: a delay under a minute became 1m")
                delay = MIN_DELAY
            levels.append({"delay": duration(delay), "targets": _unique(targets)})
        if not levels:
            notes.append(f"escalation policy {policy.name!r}: no level left; not imported")
            continue
        policy_id = policy_ids.take(policy.name)
        policy_map[policy.key] = policy_id
        policies.append({"id": policy_id, "repeat": policy.repeat, "levels": levels})

    service_ids = _Ids()
    services: list[dict[str, Any]] = []
    for service in sorted(imported.services, key=lambda s: (s.name, s.key)):
        entry: dict[str, Any] = {
            "id": service_ids.take(service.name),
            "name": service.name,
            "team": team(service.team),
        }
        if service.policy is not None:
            if service.policy in policy_map:
                entry["escalation_policy"] = policy_map[service.policy]
            else:
                notes.append(
                    f"service {service.name!r}: escalation policy {service.policy} was not "
                    "imported; the service uses its team's"
                )
        services.append(entry)

    teams = [
        {
            "id": team_id,
            "name": team_names[team_id],
            "members": list(dict.fromkeys(team_members.get(team_id, []))),
        }
        for team_id in sorted(set(team_of.values()))
        if team_id != default_team
        or team_members.get(default_team)
        or _uses(default_team, schedules, services)
    ]
    result: dict[str, Any] = {}
    for key, value in (
        ("teams", teams),
        ("services", services),
        ("schedules", schedules),
        ("escalation_policies", policies),
    ):
        if value:
            result[key] = value
    return result, list(dict.fromkeys(notes))


def _unique(targets: Iterable[dict[str, str]]) -> list[dict[str, str]]:
    seen: list[dict[str, str]] = []
    for target in targets:
        if target not in seen:
            seen.append(target)
    return seen


def _uses(team_id: str, *sections: list[dict[str, Any]]) -> bool:
    return any(entry.get("team") == team_id for section in sections for entry in section)


def render(source: str, config: dict[str, Any], notes: list[str]) -> str:
    """The fragment as YAML, headed by what was not carried over (as comments)."""
    lines = [
        f"# pulseops.yml fragment imported from {source} by `pulseops import`.",
        "# Review it, then merge its sections into pulseops.yml (teams need a channel).",
    ]
    if notes:
        lines.append("# Not carried over:")
        lines += [f"#   - {note}" for note in notes]
    else:
        lines.append("# Everything was carried over.")
    body = str(yaml.safe_dump(config, sort_keys=False, allow_unicode=True, width=100))
    return "\n".join(lines) + "\n" + body
