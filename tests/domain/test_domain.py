"""Pure domain tests: the incident state machine and channel naming (no I/O, no clock)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain import Acknowledge, IncidentState, InvalidTransition, Reopen, Resolve, Status, apply
from bot.domain.incident import TRANSITIONS, Effect, Severity
from bot.domain.naming import VALID_CHANNEL_NAME, channel_name, channel_name_candidates, slugify

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


def test_acknowledge_then_resolve_records_actors_and_times() -> None:
    state = IncidentState(status=Status.TRIGGERED, version=1)
    acked = apply(state, Acknowledge(by="U0ALICE01"), now=NOW)
    assert acked.after.status is Status.ACKNOWLEDGED
    assert acked.after.acknowledged_by == "U0ALICE01"
    assert acked.after.version == 2
    assert Effect.STOP_ESCALATION in acked.effects
    resolved = apply(acked.after, Resolve(by="U0BOB0001"), now=NOW)
    assert resolved.after.status is Status.RESOLVED
    assert resolved.after.resolved_by == "U0BOB0001"
    assert resolved.after.acknowledged_by == "U0ALICE01"


def test_resolve_straight_from_triggered_is_allowed() -> None:
    t = apply(IncidentState(status=Status.TRIGGERED), Resolve(by="monitor:prom"), now=NOW)
    assert t.after.status is Status.RESOLVED
    assert t.after.acknowledged_at is None


@pytest.mark.parametrize(
    ("status", "command"),
    [
        (Status.ACKNOWLEDGED, Acknowledge(by="U1")),
        (Status.RESOLVED, Acknowledge(by="U1")),
        (Status.RESOLVED, Resolve(by="U1")),
        (Status.TRIGGERED, Reopen(by="U1")),
    ],
)
def test_illegal_moves_raise(status: Status, command: Acknowledge | Resolve | Reopen) -> None:
    with pytest.raises(InvalidTransition) as info:
        apply(IncidentState(status=status), command, now=NOW)
    assert status.value in str(info.value)


@given(
    st.lists(
        st.sampled_from([Acknowledge(by="U1"), Resolve(by="U2"), Reopen(by="U3")]), max_size=30
    )
)
def test_any_command_sequence_follows_the_table(
    commands: list[Acknowledge | Resolve | Reopen],
) -> None:
    state = IncidentState(status=Status.TRIGGERED, version=1)
    for command in commands:
        legal = (type(command), state.status) in TRANSITIONS
        try:
            transition = apply(state, command, now=NOW)
        except InvalidTransition:
            assert not legal
            continue
        assert legal
        assert transition.after.version == state.version + 1
        state = transition.after
        assert (state.status is Status.RESOLVED) == (state.resolved_at is not None)


def test_severity_words() -> None:
    assert Severity.parse("critical") is Severity.SEV1
    assert Severity.parse("SEV-2") is Severity.SEV2
    assert Severity.parse("warning") is Severity.SEV3
    assert Severity.parse("info") is Severity.SEV4
    assert Severity.parse("banana") is None


@given(st.text(max_size=300), st.integers(min_value=1, max_value=10**9))
def test_channel_names_are_always_valid(title: str, number: int) -> None:
    for name in channel_name_candidates("inc", number, title):
        assert VALID_CHANNEL_NAME.match(name), name
        assert name.startswith(f"inc-{number}")


def test_channel_name_examples() -> None:
    assert channel_name("inc", 42, "DB down: <!channel> Ünïcode & stuff!") == (
        "inc-42-db-down-channel-unicode-stuff"
    )
    assert channel_name("inc", 7, "!!!") == "inc-7"
    long = channel_name("inc", 12345, "x" * 200, suffix="10")
    assert len(long) == 80 and long.endswith("-10")
    names = list(channel_name_candidates("inc", 1, "same"))
    assert len(names) == len(set(names)) == 10
    assert slugify("Hello  World") == "hello-world"


def test_escalation_steps_walk_levels_then_repeats() -> None:
    from datetime import timedelta

    from bot.domain.escalation import FIRST, Policy, deadline_after, next_step, total_steps

    policy = Policy(delays=(timedelta(minutes=5), timedelta(minutes=10)), repeat=1)
    steps = [FIRST]
    while (following := next_step(policy, steps[-1])) is not None:
        steps.append(following)
    assert [(s.level, s.cycle) for s in steps] == [(0, 0), (1, 0), (0, 1), (1, 1)]
    assert len(steps) == total_steps(policy)
    assert deadline_after(policy, steps[0], NOW) == NOW + timedelta(minutes=5)
    assert deadline_after(policy, steps[1], NOW) == NOW + timedelta(minutes=10)
    assert deadline_after(policy, steps[-1], NOW) is None
    with pytest.raises(ValueError):
        Policy(delays=())
