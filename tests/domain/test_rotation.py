"""Pure domain tests for rotation arithmetic: DST handoffs, overrides, timelines, handoffs."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.domain.rotation import (
    WALL_CLOCK_PERIOD,
    Handoff,
    Override,
    Rotation,
    RotationType,
    Shift,
    handoffs_between,
    local_to_utc,
    next_handoff,
    on_call_at,
    shift_at,
    shifts_between,
    validate_override,
    validate_rotation,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
MICRO = timedelta(microseconds=1)
USERS = ("U0ALICE01", "U0BOB0001", "U0CAROL01")
A, B, C = USERS


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def weekly_berlin(start: datetime) -> Rotation:
    return Rotation(
        participants=(A, B), type=RotationType.WEEKLY, start=start, time_zone="Europe/Berlin"
    )


# --- handoffs follow local wall-clock time across DST -------------------------------------------


def test_weekly_berlin_handoff_keeps_local_time_across_spring_forward() -> None:
    rotation = weekly_berlin(datetime(2026, 3, 23, 9, 0))
    first = shift_at(rotation, utc(2026, 3, 24, 12))
    assert (first.user, first.start, first.end) == (A, utc(2026, 3, 23, 8), utc(2026, 3, 30, 7))
    assert first.end.astimezone(BERLIN).time() == time(9, 0)
    assert handoffs_between(rotation, utc(2026, 3, 23, 8), utc(2026, 4, 6, 7)) == [
        Handoff(at=utc(2026, 3, 30, 7), outgoing=A, incoming=B),
        Handoff(at=utc(2026, 4, 6, 7), outgoing=B, incoming=A),
    ]


def test_weekly_berlin_handoff_keeps_local_time_across_fall_back() -> None:
    rotation = weekly_berlin(datetime(2026, 10, 19, 9, 0))
    shift = shift_at(rotation, utc(2026, 10, 25, 12))
    assert (shift.start, shift.end) == (utc(2026, 10, 19, 7), utc(2026, 10, 26, 8))
    assert shift.end - shift.start == timedelta(days=7, hours=1)
    assert shift_at(rotation, utc(2026, 10, 26, 8)).user == B
    assert shift_at(rotation, utc(2026, 10, 26, 8) - MICRO).user == A


def test_new_york_daily_handoffs_across_both_dst_changes() -> None:
    rotation = Rotation(USERS, RotationType.DAILY, datetime(2026, 3, 6, 9, 0), "America/New_York")
    march = [h.at for h in handoffs_between(rotation, utc(2026, 3, 6, 14), utc(2026, 3, 10, 12))]
    assert march == [utc(2026, 3, 7, 14), utc(2026, 3, 8, 13), utc(2026, 3, 9, 13)]
    november = handoffs_between(rotation, utc(2026, 10, 30, 13), utc(2026, 11, 2, 14))
    assert [h.at for h in november] == [
        utc(2026, 10, 31, 13),
        utc(2026, 11, 1, 14),
        utc(2026, 11, 2, 14),
    ]
    assert all(h.at.astimezone(NEW_YORK).time() == time(9, 0) for h in november)


def test_start_inside_spring_forward_gap_hands_off_when_the_clock_jumps() -> None:
    # 2026-03-08 02:30 does not exist in New York: the clock jumps 02:00 EST -> 03:00 EDT.
    rotation = Rotation(USERS, RotationType.DAILY, datetime(2026, 3, 8, 2, 30), "America/New_York")
    first = shift_at(rotation, utc(2026, 3, 8, 12))
    assert first.user == A
    assert first.start == utc(2026, 3, 8, 7)  # 03:00 EDT, the instant the clock jumps past 02:30
    assert first.start.astimezone(NEW_YORK).time() == time(3, 0)
    assert first.end == utc(2026, 3, 9, 6, 30)  # 02:30 EDT the next day
    before = shift_at(rotation, first.start - MICRO)
    assert (before.user, before.start) == (C, utc(2026, 3, 7, 7, 30))  # 02:30 EST
    assert before.end - before.start == timedelta(hours=23, minutes=30)


def test_ambiguous_fall_back_handoff_takes_the_first_occurrence() -> None:
    # 2026-11-01 01:30 happens twice in New York; the handoff is at the first (EDT, fold=0).
    rotation = Rotation(
        (A, B), RotationType.DAILY, datetime(2026, 11, 1, 1, 30), "America/New_York"
    )
    shift = shift_at(rotation, utc(2026, 11, 1, 6))
    assert (shift.user, shift.start, shift.end) == (
        A,
        utc(2026, 11, 1, 5, 30),
        utc(2026, 11, 2, 6, 30),
    )
    ambiguous = datetime(2026, 11, 1, 1, 30, fold=1)
    assert local_to_utc(ambiguous, NEW_YORK) == utc(2026, 11, 1, 5, 30)


def test_half_hour_dst_gap_resolves_to_the_jump() -> None:
    # Lord Howe moves from 02:00 +10:30 to 02:30 +11:00 on 2026-10-04.
    lord_howe = ZoneInfo("Australia/Lord_Howe")
    jump = local_to_utc(datetime(2026, 10, 4, 2, 15), lord_howe)
    assert jump == utc(2026, 10, 3, 15, 30)
    assert jump.astimezone(lord_howe).replace(tzinfo=None) == datetime(2026, 10, 4, 2, 30)


def test_a_shift_swallowed_by_a_skipped_day_has_nobody() -> None:
    # Samoa skipped 2011-12-30 entirely; the shift starting then has zero length.
    rotation = Rotation((A, B), RotationType.DAILY, datetime(2011, 12, 27, 0, 0), "Pacific/Apia")
    apia = ZoneInfo("Pacific/Apia")
    at_skip = shift_at(rotation, local_to_utc(datetime(2011, 12, 31, 0, 0), apia))
    assert at_skip.user == A  # shift k=4 (A); k=3 (B, 2011-12-30) never happened
    assert at_skip.end - at_skip.start == timedelta(days=1)
    handoffs = handoffs_between(rotation, utc(2011, 12, 28), utc(2012, 1, 2))
    # 12-29 B->A, then A keeps 12-31 (no handoff A->A through the skipped day), 01-01 A->B.
    assert [(h.outgoing, h.incoming) for h in handoffs] == [(A, B), (B, A), (A, B), (B, A)]
    assert [h.at.astimezone(apia).day for h in handoffs] == [28, 29, 1, 2]


# --- custom lengths and the time before the start ------------------------------------------------


def test_custom_twelve_hours_counts_elapsed_time_not_wall_clock() -> None:
    rotation = Rotation(
        (A, B), RotationType.CUSTOM, datetime(2026, 3, 28, 21), "Europe/Berlin", timedelta(hours=12)
    )
    first = shift_at(rotation, utc(2026, 3, 28, 20))
    assert (first.user, first.start, first.end) == (A, utc(2026, 3, 28, 20), utc(2026, 3, 29, 8))
    assert first.end.astimezone(BERLIN).time() == time(10, 0)  # 12 real hours, across the jump
    assert shift_at(rotation, utc(2026, 3, 29, 8)).user == B


def test_custom_thirty_seconds_and_far_future_is_arithmetic() -> None:
    rotation = Rotation(
        USERS, RotationType.CUSTOM, datetime(2026, 1, 1), "UTC", timedelta(seconds=30)
    )
    assert shift_at(rotation, utc(2026, 1, 1, 0, 1, 35)) == Shift(
        user=A, start=utc(2026, 1, 1, 0, 1, 30), end=utc(2026, 1, 1, 0, 2)
    )
    # ~100 million shifts later: computed directly, not by walking from the start.
    far = shift_at(rotation, utc(2121, 1, 1, 0, 0, 45))
    k = (far.start - utc(2026, 1, 1)) // timedelta(seconds=30)
    assert far.user == USERS[k % 3]
    daily = Rotation(USERS, RotationType.DAILY, datetime(2026, 1, 1, 9), "Europe/Berlin")
    assert shift_at(daily, utc(2400, 7, 1)).start.astimezone(BERLIN).time() == time(9, 0)


def test_rotation_extends_backwards_before_its_start() -> None:
    rotation = Rotation(USERS, RotationType.WEEKLY, datetime(2026, 1, 5, 9), "Europe/Berlin")
    before = shift_at(rotation, utc(2026, 1, 5, 7, 59))
    assert (before.user, before.start, before.end) == (C, utc(2025, 12, 29, 8), utc(2026, 1, 5, 8))
    assert shift_at(rotation, utc(2025, 12, 22, 8)).user == B
    assert shift_at(rotation, utc(2025, 12, 15, 8)).user == A
    handoffs = handoffs_between(rotation, utc(2025, 12, 1), utc(2026, 1, 6))
    assert [h.incoming for h in handoffs] == [B, C, A, B, C, A]


# --- overrides ----------------------------------------------------------------------------------

DAILY = Rotation(
    (A, B), RotationType.DAILY, datetime(2026, 5, 4, 9), "UTC"
)  # A on the 4th, B on the 5th


def override(
    user: str, start: datetime, end: datetime, created: int, id: int | None = None
) -> Override:
    return Override(user=user, start=start, end=end, created_at=utc(2026, 5, 1, created), id=id)


def test_override_inside_a_shift_splits_it_in_three() -> None:
    cover = override(C, utc(2026, 5, 4, 12), utc(2026, 5, 4, 15), created=1, id=7)
    assert on_call_at(DAILY, [cover], utc(2026, 5, 4, 11, 59)) == Shift(
        A, utc(2026, 5, 4, 9), utc(2026, 5, 4, 12)
    )
    assert on_call_at(DAILY, [cover], utc(2026, 5, 4, 12)) == Shift(
        C, utc(2026, 5, 4, 12), utc(2026, 5, 4, 15), cover
    )
    assert on_call_at(DAILY, [cover], utc(2026, 5, 4, 15)) == Shift(
        A, utc(2026, 5, 4, 15), utc(2026, 5, 5, 9)
    )
    assert shifts_between(DAILY, [cover], utc(2026, 5, 4, 10), utc(2026, 5, 5, 10)) == [
        Shift(A, utc(2026, 5, 4, 10), utc(2026, 5, 4, 12)),
        Shift(C, utc(2026, 5, 4, 12), utc(2026, 5, 4, 15), cover),
        Shift(A, utc(2026, 5, 4, 15), utc(2026, 5, 5, 9)),
        Shift(B, utc(2026, 5, 5, 9), utc(2026, 5, 5, 10)),
    ]


def test_override_spanning_a_handoff_is_one_stretch_and_outside_it_nothing_changes() -> None:
    cover = override(C, utc(2026, 5, 4, 20), utc(2026, 5, 5, 12), created=1)
    assert on_call_at(DAILY, [cover], utc(2026, 5, 5, 9)) == Shift(C, cover.start, cover.end, cover)
    assert on_call_at(DAILY, [cover], utc(2026, 5, 6, 9)) == shift_at(DAILY, utc(2026, 5, 6, 9))
    # The person's own shift next to an override for the same person stays a separate stretch.
    own = override(A, utc(2026, 5, 4, 6), utc(2026, 5, 4, 9), created=1)
    timeline = shifts_between(DAILY, [own], utc(2026, 5, 4, 6), utc(2026, 5, 4, 12))
    assert [(s.user, s.override) for s in timeline] == [(A, own), (A, None)]


def test_newest_override_wins_where_they_overlap() -> None:
    old = override(B, utc(2026, 5, 4, 10), utc(2026, 5, 4, 20), created=1, id=1)
    new = override(C, utc(2026, 5, 4, 12), utc(2026, 5, 4, 14), created=2, id=2)
    timeline = shifts_between(DAILY, [new, old], utc(2026, 5, 4, 9), utc(2026, 5, 4, 21))
    assert [(s.user, s.start.hour, s.end.hour, s.override) for s in timeline] == [
        (A, 9, 10, None),
        (B, 10, 12, old),
        (C, 12, 14, new),
        (B, 14, 20, old),
        (A, 20, 21, None),
    ]
    assert on_call_at(DAILY, [old, new], utc(2026, 5, 4, 15)) == Shift(
        B, utc(2026, 5, 4, 14), utc(2026, 5, 4, 20), old
    )


def test_override_ties_break_on_id_then_on_start() -> None:
    low = override(B, utc(2026, 5, 4, 10), utc(2026, 5, 4, 20), created=1, id=3)
    high = override(C, utc(2026, 5, 4, 10), utc(2026, 5, 4, 20), created=1, id=4)
    unsaved = override(A, utc(2026, 5, 4, 10), utc(2026, 5, 4, 20), created=1)
    assert on_call_at(DAILY, [high, low, unsaved], utc(2026, 5, 4, 11)).override == high
    early = override(B, utc(2026, 5, 4, 10), utc(2026, 5, 4, 20), created=1)
    late = override(C, utc(2026, 5, 4, 11), utc(2026, 5, 4, 20), created=1)
    assert on_call_at(DAILY, [late, early], utc(2026, 5, 4, 12)).user == C


def test_next_handoff_skips_stretches_of_the_same_person() -> None:
    own = override(A, utc(2026, 5, 5, 9), utc(2026, 5, 5, 18), created=1)
    nxt = next_handoff(DAILY, [own], utc(2026, 5, 4, 12))
    assert nxt == Shift(B, utc(2026, 5, 5, 18), utc(2026, 5, 6, 9))
    assert next_handoff(DAILY, [], utc(2026, 5, 4, 12)) == Shift(
        B, utc(2026, 5, 5, 9), utc(2026, 5, 6, 9)
    )


def test_next_handoff_of_a_one_person_rotation() -> None:
    solo = Rotation((A,), RotationType.CUSTOM, datetime(2026, 1, 1), "UTC", timedelta(seconds=30))
    assert next_handoff(solo, [], utc(2026, 5, 4)) is None
    cover = override(B, utc(2027, 5, 4), utc(2027, 5, 5), created=1)
    assert next_handoff(solo, [cover], utc(2026, 5, 4)) == Shift(B, cover.start, cover.end, cover)
    assert next_handoff(solo, [cover], utc(2027, 5, 4, 12)) == Shift(
        A, utc(2027, 5, 5), utc(2027, 5, 5, 0, 0, 30)
    )
    # A one-person rotation still has finite shifts, one per period.
    assert shift_at(solo, utc(2026, 5, 4, 0, 0, 10)).end == utc(2026, 5, 4, 0, 0, 30)
    assert handoffs_between(solo, utc(2026, 1, 1), utc(2027, 1, 1)) == []


def test_handoffs_between_the_same_person_are_not_announced() -> None:
    rotation = Rotation((A, A, B), RotationType.DAILY, datetime(2026, 5, 4, 9), "UTC")
    got = handoffs_between(rotation, utc(2026, 5, 4, 10), utc(2026, 5, 8))
    assert got == [Handoff(utc(2026, 5, 6, 9), A, B), Handoff(utc(2026, 5, 7, 9), B, A)]
    # The window is (start, end]: a handoff exactly at `start` belongs to the previous window.
    assert handoffs_between(rotation, utc(2026, 5, 6, 9), utc(2026, 5, 7, 9)) == got[1:]


# --- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"participants": ()}, "participants"),
        ({"participants": ("",)}, "participants"),
        ({"time_zone": "Europe/Berln"}, "time_zone"),
        ({"time_zone": "../etc/passwd"}, "time_zone"),
        ({"time_zone": ""}, "time_zone"),
        ({"type": "monthly"}, "type"),
        ({"start": datetime(2026, 1, 1, tzinfo=UTC)}, "start"),
        ({"length": timedelta(hours=12)}, "length"),
        ({"type": RotationType.CUSTOM}, "length"),
        ({"type": RotationType.CUSTOM, "length": timedelta(0)}, "length"),
        ({"type": RotationType.CUSTOM, "length": timedelta(hours=-1)}, "length"),
    ],
)
def test_validate_rotation_names_the_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=rf"rotation\.{field}"):
        validate_rotation(replace(DAILY, **changes))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=rf"rotation\.{field}"):
        shift_at(replace(DAILY, **changes), utc(2026, 1, 1))  # type: ignore[arg-type]


def test_naive_instants_and_bad_overrides_are_rejected() -> None:
    validate_rotation(DAILY)
    with pytest.raises(ValueError, match="instant"):
        on_call_at(DAILY, [], datetime(2026, 5, 4, 12))
    with pytest.raises(ValueError, match="end"):
        shifts_between(DAILY, [], utc(2026, 5, 5), utc(2026, 5, 4))
    naive = Override(
        user=B, start=datetime(2026, 5, 4), end=utc(2026, 5, 5), created_at=utc(2026, 5, 1)
    )
    with pytest.raises(ValueError, match="override.start"):
        validate_override(naive)
    with pytest.raises(ValueError, match="override.start"):
        on_call_at(DAILY, [naive], utc(2026, 5, 4, 12))
    inverted = override(B, utc(2026, 5, 5), utc(2026, 5, 4), created=1)
    with pytest.raises(ValueError, match="override.end"):
        validate_override(inverted)
    assert on_call_at(DAILY, [inverted], utc(2026, 5, 4, 12)).user == A  # covers nothing


# --- properties ---------------------------------------------------------------------------------

# Zones with DST gaps and overlaps of 30 and 60 minutes, negative DST, southern hemisphere.
ZONES = (
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "America/Sao_Paulo",
    "Pacific/Chatham",
    "Europe/Dublin",
    "America/St_Johns",
    "Asia/Kolkata",
)
TIMES = (
    st.sampled_from([time(0, 0), time(1, 30), time(2, 0), time(2, 30), time(3, 0), time(9, 0)])
    | st.times()
)
LENGTHS = st.sampled_from(
    [timedelta(seconds=30), timedelta(hours=12), timedelta(days=3)]
) | st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(days=20))


@st.composite
def rotations(draw: st.DrawFn) -> Rotation:
    n = draw(st.integers(min_value=1, max_value=5))
    kind = draw(st.sampled_from(RotationType))
    day = draw(
        st.dates(min_value=datetime(2015, 1, 1).date(), max_value=datetime(2035, 1, 1).date())
    )
    return Rotation(
        participants=tuple(f"U{i:08d}" for i in range(n)),
        type=kind,
        start=datetime.combine(day, draw(TIMES)),
        time_zone=draw(st.sampled_from(ZONES)),
        length=draw(LENGTHS) if kind is RotationType.CUSTOM else None,
    )


def period(rotation: Rotation) -> timedelta:
    return rotation.length or WALL_CLOCK_PERIOD[rotation.type]


def origin(rotation: Rotation) -> datetime:
    return rotation.start.replace(tzinfo=ZoneInfo(rotation.time_zone)).astimezone(UTC)


@st.composite
def instants(draw: st.DrawFn, rotation: Rotation, spread: int = 60) -> datetime:
    """An instant within `spread` shifts either side of the rotation's start."""
    p = period(rotation)
    k = draw(st.integers(min_value=-spread, max_value=spread))
    fraction = draw(st.floats(min_value=0, max_value=1))
    return origin(rotation) + k * p + fraction * p


def oracle_local_to_utc(local: datetime, zone: ZoneInfo) -> datetime:
    """First instant at which the wall clock reads at least `local`, by brute force."""
    hits = []
    for fold in (0, 1):
        candidate = local.replace(tzinfo=zone, fold=fold).astimezone(UTC)
        if candidate.astimezone(zone).replace(tzinfo=None) == local:
            hits.append(candidate)
    if hits:
        return min(hits)
    after = local.replace(tzinfo=zone, fold=1).utcoffset()
    assert after is not None
    step = (local - after).replace(tzinfo=UTC)
    step = step.replace(second=0, microsecond=0) + timedelta(
        minutes=1
    )  # transitions are on minutes
    while step.astimezone(zone).replace(tzinfo=None) < local:
        step += timedelta(minutes=1)
    return step


def oracle_shift(rotation: Rotation, instant: datetime) -> tuple[int, datetime, datetime]:
    """(k, start, end) of the shift containing `instant`, by bisection over oracle boundaries."""
    zone = ZoneInfo(rotation.time_zone)
    p = period(rotation)

    def boundary(k: int) -> datetime:
        if rotation.type is RotationType.CUSTOM:
            return oracle_local_to_utc(rotation.start, zone) + k * p
        return oracle_local_to_utc(rotation.start + k * p, zone)

    bound = abs(instant - origin(rotation)) // (p / 2) + 2
    lo, hi = -bound, bound  # boundary(lo) <= instant < boundary(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if boundary(mid) <= instant else (lo, mid)
    return lo, boundary(lo), boundary(lo + 1)


def priority(o: Override) -> tuple[datetime, bool, int, datetime, datetime, str]:
    return (o.created_at, o.id is not None, o.id or 0, o.start, o.end, o.user)


def oracle_user(rotation: Rotation, overrides: list[Override], instant: datetime) -> str:
    active = [o for o in overrides if o.start <= instant < o.end]
    if active:
        return max(active, key=priority).user
    k, _, _ = oracle_shift(rotation, instant)
    return rotation.participants[k % len(rotation.participants)]


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Rotation, list[Override], datetime, datetime]:
    rotation = draw(rotations())
    p = min(period(rotation), timedelta(days=14))
    start = draw(instants(rotation, spread=30))
    end = start + draw(st.floats(min_value=0, max_value=12)) * p
    overrides = []
    for i in range(draw(st.integers(min_value=0, max_value=5))):
        o_start = start + draw(st.floats(min_value=-3, max_value=12)) * p
        overrides.append(
            Override(
                user=draw(st.sampled_from([*rotation.participants, "U0OVERIDE1", "U0OVERIDE2"])),
                start=o_start,
                end=o_start + draw(st.floats(min_value=0.01, max_value=6)) * p,
                created_at=utc(2026, 1, 1, draw(st.integers(min_value=0, max_value=3))),
                id=draw(st.none() | st.just(i)),
            )
        )
    return rotation, overrides, start, end


PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(data=st.data())
def test_shift_at_matches_the_brute_force_definition_and_cycles_in_order(
    data: st.DataObject,
) -> None:
    rotation = data.draw(rotations())
    instant = data.draw(instants(rotation))
    n = len(rotation.participants)
    shift = shift_at(rotation, instant)
    k, start, end = oracle_shift(rotation, instant)
    assert (shift.user, shift.start, shift.end) == (rotation.participants[k % n], start, end)
    assert shift.start <= instant < shift.end
    following = shift_at(rotation, shift.end)
    assert following.start == shift.end
    index = rotation.participants.index
    assert index(following.user) == (index(shift.user) + 1) % n
    if rotation.type is not RotationType.CUSTOM:
        # The handoff is at the configured local time whenever that time exists on the day.
        zone = ZoneInfo(rotation.time_zone)
        wall = shift.start.astimezone(zone).replace(tzinfo=None)
        assert wall.time() == rotation.start.time() or wall > wall.replace(
            hour=rotation.start.hour,
            minute=rotation.start.minute,
            second=rotation.start.second,
            microsecond=rotation.start.microsecond,
        )


@PROPERTY
@given(scenario=scenarios(), data=st.data())
def test_timeline_covers_the_window_with_exactly_one_person_at_a_time(
    scenario: tuple[Rotation, list[Override], datetime, datetime], data: st.DataObject
) -> None:
    rotation, overrides, start, end = scenario
    timeline = shifts_between(rotation, overrides, start, end)
    if start == end:
        assert timeline == []
        return
    assert timeline[0].start == start.astimezone(UTC) and timeline[-1].end == end.astimezone(UTC)
    for before, after in zip(timeline, timeline[1:], strict=False):
        assert before.end == after.start
        # Adjacent stretches differ in person or source, or are two rotation shifts.
        assert (before.user, before.override) != (
            after.user,
            after.override,
        ) or before.override is None
    for piece in timeline:
        assert piece.start < piece.end
        assert piece.user == oracle_user(rotation, overrides, piece.start)
        assert piece.user == oracle_user(rotation, overrides, piece.end - MICRO)
    offset = data.draw(st.integers(min_value=0, max_value=(end - start) // MICRO - 1))
    instant = start + offset * MICRO
    stretch = on_call_at(rotation, overrides, instant)
    assert stretch.start <= instant < stretch.end
    assert stretch.user == oracle_user(rotation, overrides, instant)
    assert on_call_at(rotation, overrides, stretch.start) == stretch
    assert on_call_at(rotation, overrides, stretch.end - MICRO) == stretch
    assert on_call_at(rotation, overrides, stretch.end) != stretch
    containing = [p for p in timeline if p.start <= instant < p.end]
    assert containing == [
        replace(stretch, start=max(stretch.start, start), end=min(stretch.end, end))
    ]


@PROPERTY
@given(data=st.data())
def test_handoffs_are_announced_exactly_once_over_consecutive_windows(data: st.DataObject) -> None:
    rotation = data.draw(rotations())
    a, b, c = sorted(data.draw(instants(rotation, spread=20)) for _ in range(3))
    whole = handoffs_between(rotation, a, c)
    assert handoffs_between(rotation, a, b) + handoffs_between(rotation, b, c) == whole
    for handoff in whole:
        assert a < handoff.at <= c
        assert handoff.outgoing != handoff.incoming
        assert shift_at(rotation, handoff.at).user == handoff.incoming
        assert shift_at(rotation, handoff.at).start == handoff.at
        assert shift_at(rotation, handoff.at - MICRO).user == handoff.outgoing
    # Every change of person in the rotation's own timeline is a handoff.
    timeline = shifts_between(rotation, [], a, c + MICRO)
    expected = [
        (t.start, s.user, t.user)
        for s, t in zip(timeline, timeline[1:], strict=False)
        if s.user != t.user
    ]
    assert [tuple(h) for h in whole] == expected


@PROPERTY
@given(scenario=scenarios())
def test_next_handoff_is_the_first_change_of_person(
    scenario: tuple[Rotation, list[Override], datetime, datetime],
) -> None:
    rotation, overrides, instant, _ = scenario
    current = on_call_at(rotation, overrides, instant)
    nxt = next_handoff(rotation, overrides, instant)
    if nxt is None:
        # Nobody else ever takes over: a one-person rotation, and no override for anyone else
        # wins after `instant` (check up to past the last override and a few shifts more).
        assert len(set(rotation.participants)) == 1
        horizon = max([current.end, *(o.end for o in overrides)]) + 3 * period(rotation)
        assert {s.user for s in shifts_between(rotation, overrides, instant, horizon)} == {
            current.user
        }
        return
    assert nxt.user != current.user
    assert nxt == on_call_at(rotation, overrides, nxt.start)
    between = shifts_between(rotation, overrides, current.end, nxt.start)
    assert all(s.user == current.user for s in between)
