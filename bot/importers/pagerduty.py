"""Read what PagerDuty's REST API v2 returns into `Imported`.

Files (each the JSON body of one call, saved with curl): `GET /schedules/{id}` (`schedule`,
with its `schedule_layers`), `GET /escalation_policies` (`escalation_policies`), `GET
/services` (`services`), `GET /users` (`users`, for the e-mail addresses). A list call's
`schedules` is read too, but holds no layers: fetch each schedule on its own.

Carried over: each layer's rotation (`rotation_virtual_start`, `rotation_turn_length_seconds`,
`users`), escalation rules (`escalation_delay_in_minutes`, user and schedule targets),
`num_loops` as repeat, services with their policy and first team. Listed instead:
restrictions, layer end dates, other targets, `acknowledgement_timeout`,
`auto_resolve_timeout`, urgency rules.
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
    aware,
)


def _team(item: dict[str, Any]) -> str | None:
    teams = item.get("teams") or []
    return str(teams[0].get("summary") or teams[0].get("name") or teams[0]["id"]) if teams else None


def read(documents: list[tuple[str, Any]]) -> Imported:
    """Read PagerDuty API bodies (file name, decoded JSON) into `Imported`."""
    out = Imported(source="PagerDuty")
    for name, document in documents:
        if not isinstance(document, dict):
            raise ImportFileError(f"{name}: expected a JSON object as PagerDuty's API returns")
        known = False
        for user in document.get("users", []) if "schedule" not in document else []:
            known = True
            out.people[user["id"]] = Person(
                key=user["id"], name=user.get("name") or user["id"], email=user.get("email")
            )
        schedules = [document["schedule"]] if "schedule" in document else []
        schedules += document.get("schedules", [])
        for schedule in schedules:
            known = True
            _schedule(out, schedule)
        for policy in [document["escalation_policy"]] if "escalation_policy" in document else []:
            known = True
            _policy(out, policy)
        for policy in document.get("escalation_policies", []):
            known = True
            _policy(out, policy)
        for service in [document["service"]] if "service" in document else []:
            known = True
            _service(out, service)
        for service in document.get("services", []):
            known = True
            _service(out, service)
        if not known:
            raise ImportFileError(
                f"{name}: not a PagerDuty API body this importer reads (expected one of the "
                "keys schedule, schedules, escalation_policies, services, users)"
            )
    return out


def _schedule(out: Imported, schedule: dict[str, Any]) -> None:
    name = schedule.get("name") or schedule["id"]
    layers = []
    for layer in schedule.get("schedule_layers", []):
        where = f"schedule {name!r} layer {layer.get('name')!r}"
        for restriction in layer.get("restrictions") or []:
            out.not_carried.append(
                f"{where}: restriction {restriction.get('type')} from "
                f"{restriction.get('start_time_of_day')} for "
                f"{int(restriction.get('duration_seconds', 0)) // 60} minutes (PulseOps "
                "rotations cover the whole day)"
            )
        if layer.get("end"):
            out.not_carried.append(f"{where}: ends {layer['end']} (PulseOps rotations do not end)")
        people = []
        for entry in layer.get("users", []):
            user = entry.get("user", entry)
            out.people.setdefault(
                user["id"], Person(key=user["id"], name=user.get("summary") or user["id"])
            )
            people.append(user["id"])
        layers.append(
            Layer(
                name=layer.get("name") or layer["id"],
                start=aware(layer.get("rotation_virtual_start") or layer["start"]),
                turn=timedelta(seconds=int(layer["rotation_turn_length_seconds"])),
                people=tuple(people),
            )
        )
    if not layers:
        out.not_carried.append(
            f"schedule {name!r}: no schedule_layers in the file (a list call's schedules "
            "have none: save GET /schedules/{id} for each)"
        )
        return
    out.schedules.append(
        Schedule(
            key=schedule["id"],
            name=name,
            time_zone=schedule.get("time_zone") or "UTC",
            layers=tuple(layers),
            team=_team(schedule),
        )
    )


def _policy(out: Imported, policy: dict[str, Any]) -> None:
    name = policy.get("name") or policy["id"]
    levels = []
    for number, rule in enumerate(policy.get("escalation_rules", []), 1):
        targets: list[tuple[Any, str]] = []
        for target in rule.get("targets", []):
            kind = target.get("type", "")
            if kind in ("user_reference", "user"):
                out.people.setdefault(
                    target["id"],
                    Person(key=target["id"], name=target.get("summary") or target["id"]),
                )
                targets.append(("user", target["id"]))
            elif kind in ("schedule_reference", "schedule"):
                targets.append(("schedule", target["id"]))
            else:
                out.not_carried.append(
                    f"escalation policy {name!r} level {number}: target type {kind!r} "
                    f"({target.get('summary', target.get('id'))})"
                )
        levels.append(
            Level(
                delay=timedelta(minutes=int(rule.get("escalation_delay_in_minutes", 0))),
                targets=tuple(targets),
            )
        )
    out.policies.append(
        Policy(
            key=policy["id"],
            name=name,
            levels=tuple(levels),
            repeat=int(policy.get("num_loops") or 0),
            team=_team(policy),
        )
    )


def _service(out: Imported, service: dict[str, Any]) -> None:
    name = service.get("name") or service["id"]
    for key, what in (
        ("acknowledgement_timeout", "re-triggers after an acknowledgement timeout"),
        ("auto_resolve_timeout", "auto-resolves after a timeout"),
    ):
        if service.get(key):
            out.not_carried.append(f"service {name!r}: {what} ({service[key]} s)")
    rule = service.get("incident_urgency_rule") or {}
    if rule.get("type") not in (None, "constant") or rule.get("urgency") not in (None, "high"):
        out.not_carried.append(f"service {name!r}: incident urgency rule {rule}")
    policy = service.get("escalation_policy") or {}
    out.services.append(
        Service(key=service["id"], name=name, policy=policy.get("id"), team=_team(service))
    )
