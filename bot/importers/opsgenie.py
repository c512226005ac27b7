"""Read what Opsgenie's REST API returns into `Imported`.

Files (each the JSON body of one call): `GET /v2/schedules?expand=rotation` or
`GET /v2/schedules/{id}` (schedules with their `rotations`), `GET /v2/escalations`
(escalations with `rules` and `repeat`), `GET /v1/services` (services). Participants are
Opsgenie users whose `username` is their e-mail address.

Carried over: rotations (`startDate`, `type` × `length`, user participants), escalation rules
(grouped by their delay; each delay counts from the alert, so a level waits until the next
rule's delay), `repeat.count`, services with their team. Listed instead: time restrictions,
rotation end dates, team/escalation/none participants, conditions other than
`if-not-acked`, notify types other than `default`, a first rule that waits, service routing.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bot.importers.model import (
    Imported,
    ImportFileError,
    Layer,
    Level,
    Person,
    Policy,
    Schedule,
    Service,
    Target,
    aware,
)

_UNITS = {"minutes": 60, "hours": 3600, "days": 86400}
_TURNS = {"hourly": timedelta(hours=1), "daily": timedelta(days=1), "weekly": timedelta(days=7)}
LAST_LEVEL_WAIT = timedelta(minutes=5)  # after the last level when Opsgenie gives no interval


def read(documents: list[tuple[str, Any]]) -> Imported:
    """Read Opsgenie API bodies (file name, decoded JSON) into `Imported`."""
    out = Imported(source="Opsgenie")
    teams: dict[str, str] = {}
    services: list[dict[str, Any]] = []
    for name, document in documents:
        data = document.get("data") if isinstance(document, dict) else None
        items = [data] if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise ImportFileError(
                f"{name}: not an Opsgenie API body (expected its `data` object or list)"
            )
        for item in items:
            owner = item.get("ownerTeam") or {}
            if owner.get("id"):
                teams[owner["id"]] = owner.get("name") or owner["id"]
            if "rotations" in item:
                _schedule(out, item)
            elif "rules" in item:
                _escalation(out, item)
            elif "teamId" in item:
                services.append(item)
            else:
                raise ImportFileError(
                    f"{name}: item {item.get('name', item.get('id'))!r} is not a schedule "
                    "with rotations (use ?expand=rotation), an escalation or a service"
                )
    for service in services:
        out.services.append(
            Service(
                key=service["id"],
                name=service.get("name") or service["id"],
                team=teams.get(service["teamId"], service["teamId"]),
            )
        )
        out.not_carried.append(
            f"service {service.get('name')!r}: Opsgenie routes its alerts by team routing "
            "rules; PulseOps uses the service's team's escalation policy"
        )
    return out


def _schedule(out: Imported, item: dict[str, Any]) -> None:
    name = item.get("name") or item["id"]
    layers = []
    for rotation in item.get("rotations") or []:
        where = f"schedule {name!r} rotation {rotation.get('name')!r}"
        if rotation.get("timeRestriction"):
            out.not_carried.append(f"{where}: time restriction {rotation['timeRestriction']}")
        if rotation.get("endDate"):
            out.not_carried.append(f"{where}: ends {rotation['endDate']}")
        turn = _TURNS.get(rotation.get("type", ""))
        if turn is None:
            out.not_carried.append(f"{where}: rotation type {rotation.get('type')!r}")
            continue
        people = []
        for participant in rotation.get("participants") or []:
            if participant.get("type") != "user":
                out.not_carried.append(f"{where}: participant of type {participant.get('type')}")
                continue
            out.people.setdefault(
                participant["id"],
                Person(
                    key=participant["id"],
                    name=participant.get("username") or participant["id"],
                    email=participant.get("username"),
                ),
            )
            people.append(participant["id"])
        layers.append(
            Layer(
                name=rotation.get("name") or rotation.get("id", "rotation"),
                start=aware(rotation["startDate"]),
                turn=turn * int(rotation.get("length") or 1),
                people=tuple(people),
            )
        )
    if layers:
        owner = item.get("ownerTeam") or {}
        out.schedules.append(
            Schedule(
                key=item["id"],
                name=name,
                time_zone=item.get("timezone") or "UTC",
                layers=tuple(layers),
                team=owner.get("name"),
            )
        )


def _escalation(out: Imported, item: dict[str, Any]) -> None:
    name = item.get("name") or item["id"]
    by_delay: dict[int, list[Target]] = {}
    for rule in item.get("rules") or []:
        where = f"escalation {name!r}"
        if rule.get("condition", "if-not-acked") != "if-not-acked":
            out.not_carried.append(
                f"{where}: condition {rule['condition']} (PulseOps escalates until acknowledged)"
            )
        if rule.get("notifyType", "default") != "default":
            out.not_carried.append(f"{where}: notify type {rule['notifyType']}")
        delay = rule.get("delay") or {}
        seconds = int(delay.get("timeAmount", 0)) * _UNITS.get(delay.get("timeUnit", "minutes"), 60)
        recipient = rule.get("recipient") or {}
        kind = recipient.get("type")
        if kind == "user":
            out.people.setdefault(
                recipient["id"],
                Person(
                    key=recipient["id"],
                    name=recipient.get("username") or recipient["id"],
                    email=recipient.get("username"),
                ),
            )
            by_delay.setdefault(seconds, []).append(("user", recipient["id"]))
        elif kind == "schedule":
            by_delay.setdefault(seconds, []).append(("schedule", recipient["id"]))
        else:
            out.not_carried.append(
                f"{where}: recipient of type {kind} ({recipient.get('name', recipient.get('id'))})"
            )
    delays = sorted(by_delay)
    if delays and delays[0] > 0:
        out.not_carried.append(
            f"escalation {name!r}: its first rule waits {delays[0] // 60} minutes; PulseOps "
            "pages the first level at once"
        )
    repeat = item.get("repeat") or {}
    wait = timedelta(minutes=int(repeat.get("waitInterval") or 0)) or LAST_LEVEL_WAIT
    levels = [
        Level(
            delay=timedelta(seconds=delays[i + 1] - at) if i + 1 < len(delays) else wait,
            targets=tuple(by_delay[at]),
        )
        for i, at in enumerate(delays)
    ]
    owner = item.get("ownerTeam") or {}
    out.policies.append(
        Policy(
            key=item["id"],
            name=name,
            levels=tuple(levels),
            repeat=int(repeat.get("count") or 0),
            team=owner.get("name"),
        )
    )
