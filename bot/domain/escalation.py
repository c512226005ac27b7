"""Escalation policy evaluation: which step comes after which, and when. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class Step:
    """A position in a policy: `level` (0-based) in repetition `cycle` (0 = first run)."""

    level: int
    cycle: int


@dataclass(frozen=True, slots=True)
class Policy:
    """The shape of a policy that matters for stepping: each level's delay, and repeats."""

    delays: tuple[timedelta, ...]
    repeat: int = 0

    def __post_init__(self) -> None:
        if not self.delays:
            raise ValueError("a policy needs at least one level")
        if self.repeat < 0:
            raise ValueError("repeat must be 0 or more")


FIRST = Step(level=0, cycle=0)


def next_step(policy: Policy, step: Step) -> Step | None:
    """The step after `step`: the next level, the first level of the next repetition, or None."""
    if step.level + 1 < len(policy.delays):
        return Step(level=step.level + 1, cycle=step.cycle)
    if step.cycle < policy.repeat:
        return Step(level=0, cycle=step.cycle + 1)
    return None


def deadline_after(policy: Policy, step: Step, paged_at: datetime) -> datetime | None:
    """When the step after `step` is due if nobody acknowledges; None after the last step."""
    if next_step(policy, step) is None:
        return None
    return paged_at + policy.delays[step.level]


def total_steps(policy: Policy) -> int:
    return len(policy.delays) * (policy.repeat + 1)
