"""Read what Grafana OnCall's HTTP API (`/api/v1/`) returns into `Imported`.

Files (each the JSON body of one list call, `results`): `schedules/`, `on_call_shifts/`,
`users/` (their e-mail and the Slack user they linked), `escalation_chains/`,
`escalation_policies/` (the steps of the chains).

Carried over: `rolling_users` shifts (hourly, daily or weekly, every `interval`, from
`start` in the shift's or schedule's time zone, starting at `start_rotation_from_user_index`),
escalation chains (notify persons, notify the on-call of a schedule, `wait` as the level's
delay, `repeat_escalation`). Listed instead: single and recurrent events, shifts shorter
than their turn, `by_day` limits, more than one person per turn, iCal schedules, other
steps, integrations and routes (point senders at PulseOps instead).
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
    Target,
    aware,
)

_UNITS = {"hourly": timedelta(hours=1), "daily": timedelta(days=1), "weekly": timedelta(days=7)}
LAST_LEVEL_WAIT = timedelta(minutes=5)
REPEATS = 5  # OnCall repeats a chain with repeat_escalation up to 5 times


def _kind(item: dict[str, Any]) -> str:
    if "escalation_chain_id" in item:
        return "step"
    if "rolling_users" in item or "frequency" in item or "duration" in item:
        return "shift"
    if "shifts" in item or "on_call_now" in item:
        return "schedule"
    if "email" in item:
        return "user"
    if set(item) <= {"id", "name", "team_id"}:
        return "chain"
    return "unknown"


def read(documents: list[tuple[str, Any]]) -> Imported:
    """Read Grafana OnCall API bodies (file name, decoded JSON) into `Imported`."""
    out = Imported(source="Grafana OnCall")
    found: dict[str, list[dict[str, Any]]] = {}
    for name, document in documents:
        results = document.get("results") if isinstance(document, dict) else None
        if not isinstance(results, list):
            raise ImportFileError(f"{name}: not a Grafana OnCall API list body (no `results`)")
        for item in results:
            kind = _kind(item)
            if kind == "unknown":
                raise ImportFileError(f"{name}: item {item.get('id')!r} is of no kind read here")
            found.setdefault(kind, []).append(item)
    for user in found.get("user", []):
        slack = (user.get("slack") or [{}])[0] or {}
        out.people[user["id"]] = Person(
            key=user["id"],
            name=user.get("username") or user["id"],
            email=user.get("email"),
            slack_id=slack.get("user_id"),
        )
    shifts = {shift["id"]: shift for shift in found.get("shift", [])}
    for schedule in found.get("schedule", []):
        _schedule(out, schedule, shifts)
    steps: dict[str, list[dict[str, Any]]] = {}
    for step in found.get("step", []):
        steps.setdefault(step["escalation_chain_id"], []).append(step)
    for chain in found.get("chain", []):
        _chain(out, chain, steps.get(chain["id"], []))
    out.not_carried.append(
        "integrations and routes: point each sender at PulseOps (see the README's drop-in "
        "endpoints) instead"
    )
    return out


def _schedule(out: Imported, schedule: dict[str, Any], shifts: dict[str, Any]) -> None:
    name = schedule.get("name") or schedule["id"]
    if schedule.get("type") == "ical":
        out.not_carried.append(f"schedule {name!r}: an iCal schedule (its calendar stays there)")
        return
    zone = schedule.get("time_zone") or "UTC"
    layers = []
    for shift_id in schedule.get("shifts") or []:
        shift = shifts.get(shift_id)
        where = f"schedule {name!r} shift {shift_id}"
        if shift is None:
            out.not_carried.append(f"{where}: not in the on_call_shifts file")
            continue
        where = f"schedule {name!r} shift {shift.get('name')!r}"
        turn = _UNITS.get(shift.get("frequency") or "")
        if shift.get("type") != "rolling_users" or turn is None:
            out.not_carried.append(
                f"{where}: a {shift.get('type')} shift ({shift.get('frequency') or 'once'}); "
                "PulseOps schedules are rotations that take turns"
            )
            continue
        turn *= int(shift.get("interval") or 1)
        if int(shift.get("duration") or 0) < turn.total_seconds():
            out.not_carried.append(
                f"{where}: each turn is on call only {int(shift['duration']) // 3600}h of "
                f"{int(turn.total_seconds()) // 3600}h (PulseOps turns cover the whole turn)"
            )
        if shift.get("by_day"):
            out.not_carried.append(f"{where}: limited to the days {', '.join(shift['by_day'])}")
        groups = [group for group in shift.get("rolling_users") or [] if group]
        if any(len(group) > 1 for group in groups):
            out.not_carried.append(f"{where}: more than one person per turn (first one kept)")
        people = [group[0] for group in groups]
        first = int(shift.get("start_rotation_from_user_index") or 0)
        if people:
            first %= len(people)
            people = people[first:] + people[:first]
        for key in people:
            out.people.setdefault(key, Person(key=key, name=key))
        layers.append(
            Layer(
                name=shift.get("name") or shift["id"],
                start=aware(
                    shift.get("rotation_start") or shift["start"], shift.get("time_zone") or zone
                ),
                turn=turn,
                people=tuple(people),
            )
        )
    if layers:
        out.schedules.append(
            Schedule(
                key=schedule["id"],
                name=name,
                time_zone=zone,
                layers=tuple(layers),
                team=schedule.get("team_id"),
            )
        )


def _chain(out: Imported, chain: dict[str, Any], steps: list[dict[str, Any]]) -> None:
    name = chain.get("name") or chain["id"]
    levels: list[Level] = []
    targets: list[Target] = []
    repeat = 0

    def close(delay: timedelta) -> None:
        nonlocal targets
        if targets:
            levels.append(Level(delay=delay, targets=tuple(targets)))
            targets = []
        elif levels:  # a wait after a wait: the previous level waits longer
            last = levels[-1]
            levels[-1] = Level(delay=last.delay + delay, targets=last.targets)

    for step in sorted(steps, key=lambda s: int(s.get("position") or 0)):
        kind = step.get("type")
        if kind == "wait":
            close(timedelta(seconds=int(step.get("duration") or 0)))
        elif kind in ("notify_persons", "notify_person_next_each_time"):
            for key in step.get("persons_to_notify") or []:
                out.people.setdefault(key, Person(key=key, name=key))
                targets.append(("user", key))
            if kind == "notify_person_next_each_time":
                out.not_carried.append(
                    f"escalation chain {name!r}: notify the next person each time (all paged)"
                )
        elif kind == "notify_on_call_from_schedule":
            targets.append(("schedule", step["notify_on_call_from_schedule"]))
        elif kind == "repeat_escalation":
            repeat = REPEATS
        else:
            out.not_carried.append(f"escalation chain {name!r}: step {kind}")
    close(LAST_LEVEL_WAIT)
    out.policies.append(
        Policy(
            key=chain["id"],
            name=name,
            levels=tuple(levels),
            repeat=repeat,
            team=chain.get("team_id"),
        )
    )
