"""Incident lifecycle as data: a transition table and a pure `apply` that returns effects.

An illegal move raises `InvalidTransition`; nothing here reads a clock or touches I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum


class Status(StrEnum):
    TRIGGERED = "triggered"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Severity(StrEnum):
    SEV1 = "SEV1"
    SEV2 = "SEV2"
    SEV3 = "SEV3"
    SEV4 = "SEV4"

    @classmethod
    def parse(cls, value: str | int | None) -> Severity | None:
        """Map a monitor's or a person's severity word to a Severity; None when unknown."""
        if value is None:
            return None
        key = re.sub(r"[\s_-]", "", str(value)).lower()
        return _SEVERITY_WORDS.get(key)

    @property
    def rank(self) -> int:
        return int(self.value[-1])


_SEVERITY_WORDS: dict[str, Severity] = {
    **{
        w: Severity.SEV1
        for w in ("sev1", "1", "p1", "critical", "crit", "fatal", "emergency", "page", "disaster")
    },
    **{w: Severity.SEV2 for w in ("sev2", "2", "p2", "error", "err", "high", "major")},
    **{
        w: Severity.SEV3
        for w in ("sev3", "3", "p3", "warning", "warn", "medium", "average", "minor")
    },
    **{
        w: Severity.SEV4
        for w in (
            "sev4",
            "4",
            "p4",
            "p5",
            "info",
            "informational",
            "low",
            "notice",
            "debug",
            "none",
        )
    },
}


class Role(StrEnum):
    """The people an incident names besides who acknowledged it."""

    LEAD = "lead"
    COMMS = "comms"

    @property
    def label(self) -> str:
        return _ROLE_LABELS[self]


_ROLE_LABELS = {Role.LEAD: "Incident lead", Role.COMMS: "Communications lead"}


class InvalidTransition(Exception):
    """The command is not allowed from the incident's current status."""

    def __init__(self, status: Status, command: Command) -> None:
        self.status = status
        self.command = command
        super().__init__(f"cannot {command.verb} an incident that is {status.value}")


@dataclass(frozen=True, slots=True)
class Acknowledge:
    by: str
    verb = "acknowledge"


@dataclass(frozen=True, slots=True)
class Resolve:
    by: str
    verb = "resolve"


@dataclass(frozen=True, slots=True)
class Reopen:
    by: str
    verb = "reopen"


Command = Acknowledge | Resolve | Reopen


class Effect(StrEnum):
    """What a transition implies beyond the new state; services turn these into rows."""

    TIMELINE = "timeline"
    UPDATE_MESSAGES = "update_messages"
    STOP_ESCALATION = "stop_escalation"
    START_ESCALATION = "start_escalation"


@dataclass(frozen=True, slots=True)
class IncidentState:
    """The part of an incident the state machine decides on."""

    status: Status
    version: int = 0
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    resolved_by: str | None = None
    resolved_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Transition:
    before: IncidentState
    after: IncidentState
    command: Command
    effects: tuple[Effect, ...]

    @property
    def event_kind(self) -> str:
        return _EVENT_KIND[type(self.command)]


_EVENT_KIND: dict[type, str] = {
    Acknowledge: "acknowledged",
    Resolve: "resolved",
    Reopen: "reopened",
}

# (command type, from status) -> (to status, effects). Absent pairs are illegal.
TRANSITIONS: dict[tuple[type, Status], tuple[Status, tuple[Effect, ...]]] = {
    (Acknowledge, Status.TRIGGERED): (
        Status.ACKNOWLEDGED,
        (Effect.TIMELINE, Effect.UPDATE_MESSAGES, Effect.STOP_ESCALATION),
    ),
    (Resolve, Status.TRIGGERED): (
        Status.RESOLVED,
        (Effect.TIMELINE, Effect.UPDATE_MESSAGES, Effect.STOP_ESCALATION),
    ),
    (Resolve, Status.ACKNOWLEDGED): (
        Status.RESOLVED,
        (Effect.TIMELINE, Effect.UPDATE_MESSAGES, Effect.STOP_ESCALATION),
    ),
    (Reopen, Status.RESOLVED): (
        Status.TRIGGERED,
        (Effect.TIMELINE, Effect.UPDATE_MESSAGES, Effect.START_ESCALATION),
    ),
}


def moves_from(status: Status) -> dict[type, Status]:
    """Every legal command from `status` and the status it leads to (from the table)."""
    return {command: to for (command, source), (to, _) in TRANSITIONS.items() if source is status}


def apply(state: IncidentState, command: Command, *, now: datetime) -> Transition:
    """Apply `command` at `now`; return the transition or raise InvalidTransition."""
    try:
        to, effects = TRANSITIONS[(type(command), state.status)]
    except KeyError:
        raise InvalidTransition(state.status, command) from None
    after = replace(state, status=to, version=state.version + 1)
    if isinstance(command, Acknowledge):
        after = replace(after, acknowledged_by=command.by, acknowledged_at=now)
    elif isinstance(command, Resolve):
        after = replace(after, resolved_by=command.by, resolved_at=now)
        if state.acknowledged_at is None:
            after = replace(after, acknowledged_by=None)
    elif isinstance(command, Reopen):
        after = replace(
            after, acknowledged_by=None, acknowledged_at=None, resolved_by=None, resolved_at=None
        )
    return Transition(before=state, after=after, command=command, effects=effects)
