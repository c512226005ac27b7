"""`/oncall` and the calendar feed through the running app: signed slash commands, HTTP GETs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from icalendar import Calendar

from bot.app import DEPS, create_app
from bot.clock import ManualClock
from bot.config import PulseOpsConfig, parse_config
from bot.domain.oncall import StoredOverride
from bot.errors import ConfigError
from store.oncall import OverrideRepository
from tests.conftest import CONFIG_YAML, Harness
from tests.helpers import PAYMENTS_WEEKLY

pytestmark = pytest.mark.asyncio
BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)

ALICE, BOB, CAROL = "U0ALICE01", "U0BOB0001", "U0CAROL01"
FEED_TOKEN = "feed-secret-7f3a"

ONCALL_YAML = (
    CONFIG_YAML
    + PAYMENTS_WEEKLY
    + f"""    ics_token: "{FEED_TOKEN}"
  - id: search-primary
    team: search
    time_zone: America/New_York
    rotation:
      type: daily
      start: "2026-11-02T10:00:00"
      participants: ["{CAROL}"]
  - id: search-secondary
    team: search
    time_zone: America/New_York
    rotation:
      type: daily
      start: "2026-11-02T10:00:00"
      participants: ["{CAROL}", "{BOB}"]
"""
)

# Weekly from Monday 2026-11-02 09:00 Europe/Berlin (CET, UTC+1), alternating ALICE, BOB:
# 11-02 ALICE, 11-09 BOB, 11-16 ALICE, 11-23 BOB, 11-30 ALICE. On Wednesday 11-25 BOB is on
# call; the next handoff is Monday 11-30 09:00 CET = 08:00 UTC, to ALICE.
WEDNESDAY = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # 13:00 in Berlin
NEXT_HANDOFF = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


@pytest.fixture
def config() -> PulseOpsConfig:
    return parse_config(ONCALL_YAML, source="oncall.yml", environ={})


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(WEDNESDAY)


def date_of(instant: datetime) -> str:
    """How the `slackdate` filter writes an instant (its fallback names UTC)."""
    return f"<!date^{int(instant.timestamp())}^"


def fallback(instant: datetime) -> str:
    return instant.strftime("%Y-%m-%d %H:%M UTC")


async def oncall(
    harness: Harness, text: str = "", *, user: str = ALICE, channel: str = "C0INCIDENT"
) -> str:
    result = await harness.emu.command(user=user, channel=channel, command="/oncall", text=text)
    assert result["status"] == 200, result
    assert "error" not in result, result
    body: str | dict[str, Any] = result["body"]  # Bolt sends a text-only ack as text/plain
    if isinstance(body, str):
        return body
    assert body.get("response_type", "ephemeral") == "ephemeral"
    return str(body["text"])


async def stored(harness: Harness) -> list[StoredOverride]:
    async with harness.deps.db.read() as session:
        return await OverrideRepository(session).active_or_future(
            now=datetime(2000, 1, 1, tzinfo=UTC)
        )


def line_of(text: str, schedule_id: str) -> str:
    (line,) = [x for x in text.splitlines() if x.startswith(f"• `{schedule_id}`")]
    return line


# ---- who is on call ----------------------------------------------------------------------


async def test_oncall_shows_everyone_now_until_when_and_who_is_next(harness: Harness) -> None:
    text = await oncall(harness)
    assert "*Payments* (`payments`)" in text and "*Search* (`search`)" in text
    line = line_of(text, "payments-primary")
    assert line.startswith(f"• `payments-primary`: <@{BOB}> is on call until ")
    assert date_of(NEXT_HANDOFF) in line and fallback(NEXT_HANDOFF) in line
    assert line.endswith(f"then <@{ALICE}>")
    assert "override" not in line
    # a one-person rotation never hands over
    assert line_of(text, "search-primary").endswith(f"<@{CAROL}> is on call, with no handoff ahead")
    # daily 10:00 New York (EST, UTC-5); it is 07:00 there, so shift 22 (11-24 10:00, CAROL)
    # runs until 11-25 10:00 EST = 15:00 UTC, then shift 23 (BOB)
    secondary = line_of(text, "search-secondary")
    assert secondary.startswith(f"• `search-secondary`: <@{CAROL}> is on call until")
    assert fallback(datetime(2026, 11, 25, 15, 0, tzinfo=UTC)) in secondary
    assert secondary.endswith(f"then <@{BOB}>")


async def test_oncall_for_one_team_or_schedule(harness: Harness) -> None:
    team = await oncall(harness, "payments")
    assert "payments-primary" in team and "search" not in team
    schedule = await oncall(harness, "search-secondary")
    assert "search-secondary" in schedule and "search-primary" not in schedule
    assert "*Search*" in schedule
    assert await oncall(harness, "PAYMENTS") == team


async def test_oncall_unknown_id_lists_the_valid_ones(harness: Harness) -> None:
    text = await oncall(harness, "billing")
    assert text.startswith(":warning: `billing` is not a team or schedule")
    for valid in ("`payments`", "`search`", "`payments-primary`", "`search-secondary`"):
        assert valid in text


async def test_next_handoff_moves_with_the_clock(harness: Harness) -> None:
    harness.clock.set(NEXT_HANDOFF)  # the handoff instant itself: ALICE's shift has begun
    line = line_of(await oncall(harness, "payments-primary"), "payments-primary")
    assert line.startswith(f"• `payments-primary`: <@{ALICE}> is on call until")
    assert fallback(datetime(2026, 12, 7, 8, 0, tzinfo=UTC)) in line
    assert line.endswith(f"then <@{BOB}>")


# ---- overrides ---------------------------------------------------------------------------


async def test_override_for_the_person_on_call_says_when_it_ends(harness: Harness) -> None:
    await oncall(harness, f"override <@{BOB}> 4h payments-primary")
    line = line_of(await oncall(harness), "payments-primary")
    # BOB stays on call after the override (his own shift), so the handoff is still Monday's
    end = WEDNESDAY + timedelta(hours=4)
    assert line.startswith(
        f"• `payments-primary`: <@{BOB}> is on call until {date_of(NEXT_HANDOFF)}"
    )
    assert f"(override #1 until {date_of(end)}" in line
    assert line.endswith(f"|{fallback(end)}>), then <@{ALICE}>")


async def test_override_puts_someone_on_call_and_oncall_shows_it(harness: Harness) -> None:
    reply = await oncall(harness, f"override <@{CAROL}|carol> 4h payments-primary", user=ALICE)
    end = WEDNESDAY + timedelta(hours=4)
    assert reply.startswith(
        f":white_check_mark: <@{CAROL}> is on call for payments-primary from {date_of(WEDNESDAY)}"
    )
    assert fallback(end) in reply and reply.splitlines()[0].endswith("(override #1).")
    assert "overlaps" not in reply
    (row,) = await stored(harness)
    assert (row.id, row.schedule_id, row.user, row.start, row.end, row.created_by) == (
        1,
        "payments-primary",
        CAROL,
        WEDNESDAY,
        end,
        ALICE,
    )
    line = line_of(await oncall(harness), "payments-primary")
    assert line.startswith(f"• `payments-primary`: <@{CAROL}> is on call until {date_of(end)}")
    assert line.endswith(f" (override #1), then <@{BOB}>")  # BOB's own shift resumes
    harness.clock.set(end)
    line = line_of(await oncall(harness), "payments-primary")
    assert line.startswith(f"• `payments-primary`: <@{BOB}> is on call until")
    assert "override" not in line


async def test_overlapping_overrides_newest_wins(harness: Harness) -> None:
    await oncall(harness, f"override <@{CAROL}> 4h payments-primary")
    harness.clock.advance(timedelta(minutes=1))
    reply = await oncall(harness, f"override <@{ALICE}|alice> 1h30m payments-primary", user=BOB)
    assert "(override #2)" in reply
    assert "It overlaps override #1: the newest override wins" in reply
    now = harness.clock.now()
    line = line_of(await oncall(harness, "payments"), "payments-primary")
    assert line.startswith(f"• `payments-primary`: <@{ALICE}> is on call until")
    assert date_of(now + timedelta(minutes=90)) in line
    assert line.endswith(f" (override #2), then <@{CAROL}> (override #1)")
    # the older override applies again once the newer one is over
    harness.clock.set(now + timedelta(minutes=90))
    line = line_of(await oncall(harness, "payments"), "payments-primary")
    assert line.startswith(f"• `payments-primary`: <@{CAROL}> is on call")
    assert line.endswith(f" (override #1), then <@{BOB}>")

    harness.clock.set(now)
    listing = await oncall(harness, "overrides payments-primary")
    assert listing.splitlines()[0] == (
        "*Overrides for `payments-primary`* (where they overlap, the newest wins)"
    )
    first, second = listing.splitlines()[1:]
    assert first.startswith(f"• *#1* `payments-primary`: <@{CAROL}> from {date_of(WEDNESDAY)}")
    assert first.endswith(f"_(active)_, set by <@{ALICE}>")
    assert second.startswith(f"• *#2* `payments-primary`: <@{ALICE}> from {date_of(now)}")
    assert second.endswith(f"set by <@{BOB}>")


async def test_overrides_list_only_current_and_future(harness: Harness) -> None:
    assert await oncall(harness, "overrides") == "No current or upcoming overrides."
    await oncall(harness, f"override <@{CAROL}> 1h payments-primary")
    await oncall(harness, f"override <@{ALICE}> 1d search-secondary")
    listing = await oncall(harness, "overrides")
    assert "*#1*" in listing and "*#2*" in listing
    assert "*#2*" in await oncall(harness, "overrides search-secondary")
    assert "*#1*" not in await oncall(harness, "overrides search-secondary")
    harness.clock.advance(timedelta(hours=2))
    listing = await oncall(harness, "overrides")
    assert "*#1*" not in listing and "*#2*" in listing
    unknown = await oncall(harness, "overrides nope")
    assert unknown.startswith(":warning: no schedule `nope`")


async def test_remove_override(harness: Harness) -> None:
    await oncall(harness, f"override <@{CAROL}> 4h payments-primary")
    reply = await oncall(harness, "override remove #1", user=BOB)
    assert reply.startswith(f":wastebasket: Removed override #1: <@{CAROL}> on payments-primary")
    assert await stored(harness) == []
    line = line_of(await oncall(harness), "payments-primary")
    assert line.startswith(f"• `payments-primary`: <@{BOB}> is on call")
    missing = await oncall(harness, "override remove 1")
    assert missing == ":warning: no override #1; `/oncall overrides` lists them"


@pytest.mark.parametrize(
    ("text", "expected_end"),
    [
        # 13:00 in Berlin now: 18:00 is today, 09:00 tomorrow
        ("until 18:00", datetime(2026, 11, 25, 17, 0, tzinfo=UTC)),
        ("until 9:00", datetime(2026, 11, 26, 8, 0, tzinfo=UTC)),
        ("until 2026-11-27T09:00", datetime(2026, 11, 27, 8, 0, tzinfo=UTC)),
        ("until 2026-11-27 09:30", datetime(2026, 11, 27, 8, 30, tzinfo=UTC)),
        ("for 90m", WEDNESDAY + timedelta(minutes=90)),
        ("2d", WEDNESDAY + timedelta(days=2)),
    ],
)
async def test_override_end_in_the_schedules_time_zone(
    harness: Harness, text: str, expected_end: datetime
) -> None:
    reply = await oncall(harness, f"override <@{CAROL}|carol> {text} payments-primary")
    assert "(override #1)" in reply, reply
    (row,) = await stored(harness)
    assert (row.start, row.end) == (WEDNESDAY, expected_end)


async def test_until_a_time_in_new_york(harness: Harness) -> None:
    # 07:00 in New York now; "until 18:00" means 18:00 EST = 23:00 UTC today
    await oncall(harness, f"override <@{ALICE}> until 18:00 search-primary")
    (row,) = await stored(harness)
    assert row.end == datetime(2026, 11, 25, 23, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("user", "channel", "text", "schedule"),
    [
        # the channel's team has one schedule: it wins even for someone of another team
        (BOB, "C0PAYMENTS", f"override <@{CAROL}|carol> 1h", "payments-primary"),
        # not a team channel: the only schedule of the target's team
        (BOB, "C0INCIDENT", f"override <@{ALICE}> 1h", "payments-primary"),
        # a team id with one schedule names it
        (BOB, "C0SEARCH1", f"override <@{CAROL}> 1h payments", "payments-primary"),
        (BOB, "C0INCIDENT", f"override <@{CAROL}> 1h search-secondary", "search-secondary"),
    ],
)
async def test_override_schedule_is_inferred(
    harness: Harness, user: str, channel: str, text: str, schedule: str
) -> None:
    reply = await oncall(harness, text, user=user, channel=channel)
    assert f"is on call for {schedule} from" in reply, reply
    (row,) = await stored(harness)
    assert row.schedule_id == schedule and row.created_by == user


@pytest.mark.parametrize(
    ("channel", "target"),
    [("C0SEARCH1", ALICE), ("C0INCIDENT", CAROL)],
)
async def test_override_asks_which_schedule_when_ambiguous(
    harness: Harness, channel: str, target: str
) -> None:
    reply = await oncall(harness, f"override <@{target}> 1h", channel=channel)
    assert reply.startswith(":warning: Which schedule?")
    assert "`search-primary`, `search-secondary`" in reply
    assert await stored(harness) == []


@pytest.mark.parametrize(
    "text",
    [
        "override",
        f"override <@{CAROL}>",
        f"override <@{CAROL}> 4x",
        f"override <@{CAROL}> 0m",
        "override @nobody 4h",  # a name Slack does not know stays plain text
        "override carol 4h",
        f"override <@{CAROL}> until",
        f"override <@{CAROL}> until 25:00",
        f"override <@{CAROL}> until tomorrow",
        f"override <@{CAROL}> until 2026-11-27",
        f"override <@{CAROL}> until 2026-11-27T09:00+01:00",
        f"override <@{CAROL}> 4h payments-primary extra",
        "override remove",
        "override remove abc",
        "override remove 1 2",
        "overrides payments-primary extra",
        "frobnicate now",
        "<!channel>",
        "help",
    ],
)
async def test_bad_input_gets_help_and_changes_nothing(harness: Harness, text: str) -> None:
    reply = await oncall(harness, text)
    assert "*Usage:* `/oncall [team or schedule]`" in reply
    assert "the newest one wins" in reply
    assert "Schedules: `payments-primary`, `search-primary`, `search-secondary`" in reply
    assert (text == "help") != reply.startswith(":warning:")
    assert "<!channel>" not in reply  # user text is escaped
    assert await stored(harness) == []


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (f"override <@{CAROL}> 4h nope", ":warning: no schedule `nope`"),
        (
            f"override <@{CAROL}> until 2026-11-20T09:00 payments",
            ":warning: The override would end",
        ),
        (f"override <@{CAROL}> 400d payments-primary", ":warning: An override lasts at most"),
    ],
)
async def test_override_errors_change_nothing(harness: Harness, text: str, problem: str) -> None:
    reply = await oncall(harness, text)
    assert reply.startswith(problem), reply
    assert await stored(harness) == []


@BOTH
async def test_override_round_trip_on_both_backends(harness: Harness) -> None:
    await oncall(harness, f"override <@{CAROL}> 4h", channel="C0PAYMENTS")
    assert [o.schedule_id for o in await stored(harness)] == ["payments-primary"]
    assert f"<@{CAROL}> is on call" in line_of(await oncall(harness), "payments-primary")
    await oncall(harness, "override remove 1")
    assert await stored(harness) == []


# ---- calendar feed -----------------------------------------------------------------------

# Berlin goes to summer time on Sunday 2027-03-28: the Monday 09:00 handoff is 08:00 UTC
# before it and 07:00 UTC after it.
MARCH = datetime(2027, 3, 10, 12, 0, tzinfo=UTC)


def feed_path(schedule: str = "payments-primary", token: str | None = FEED_TOKEN) -> str:
    return f"/oncall/{schedule}.ics" + (f"?token={token}" if token is not None else "")


def events(ics: str) -> list[tuple[datetime, datetime, str]]:
    cal = Calendar.from_ical(ics)
    return [
        (e.decoded("dtstart"), e.decoded("dtend"), str(e.get("summary")))
        for e in cal.walk("VEVENT")
    ]


async def test_feed_has_eight_weeks_of_shifts_across_dst_and_the_override(
    harness: Harness,
) -> None:
    harness.clock.set(MARCH)
    await oncall(harness, f"override <@{CAROL}> 1d payments-primary")
    assert harness.http is not None
    async with harness.http.get(harness.url + feed_path()) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
        ics = await response.text()
    cal = Calendar.from_ical(ics)
    assert str(cal["PRODID"]) == "-//PulseOps//On-call//EN"
    assert str(cal["VERSION"]) == "2.0"
    assert str(cal["X-WR-CALNAME"]) == "Payments on call: payments-primary"
    assert str(cal["X-WR-TIMEZONE"]) == "Europe/Berlin"
    assert cal["REFRESH-INTERVAL"].to_ical() == b"PT1H"

    def utc(*args: int) -> datetime:
        return datetime(*args, tzinfo=UTC)

    on_call = f"On call: {ALICE}"
    assert events(ics) == [
        (utc(2027, 3, 8, 8), MARCH, on_call),  # shift 18 (ALICE), cut by the override
        (MARCH, MARCH + timedelta(days=1), f"On call: {CAROL} (override)"),
        (MARCH + timedelta(days=1), utc(2027, 3, 15, 8), on_call),
        (utc(2027, 3, 15, 8), utc(2027, 3, 22, 8), f"On call: {BOB}"),
        (utc(2027, 3, 22, 8), utc(2027, 3, 29, 7), on_call),  # DST: 6 days 23 hours
        (utc(2027, 3, 29, 7), utc(2027, 4, 5, 7), f"On call: {BOB}"),
        (utc(2027, 4, 5, 7), utc(2027, 4, 12, 7), on_call),
        (utc(2027, 4, 12, 7), utc(2027, 4, 19, 7), f"On call: {BOB}"),
        (utc(2027, 4, 19, 7), utc(2027, 4, 26, 7), on_call),
        (utc(2027, 4, 26, 7), utc(2027, 5, 3, 7), f"On call: {BOB}"),
        (utc(2027, 5, 3, 7), utc(2027, 5, 10, 7), on_call),  # holds now + 8 weeks
    ]
    vevents = cal.walk("VEVENT")
    uids = [str(e["UID"]) for e in vevents]
    assert len(set(uids)) == len(uids) and all(u.endswith("@pulseops") for u in uids)
    assert all(e.decoded("dtstamp") == MARCH for e in vevents)
    assert "payments-primary" in str(vevents[0]["DESCRIPTION"])
    assert "Payments" in str(vevents[0]["DESCRIPTION"])
    assert "Override #1 set by U0ALICE01" in str(vevents[1]["DESCRIPTION"])

    # a day later the window has moved, yet the shifts it still holds keep their UIDs
    harness.clock.advance(timedelta(days=1))
    status, later = await harness.get(feed_path())
    assert status == 200
    later_uids = [str(e["UID"]) for e in Calendar.from_ical(later).walk("VEVENT")]
    assert later_uids == uids[1:]  # ALICE's first stretch has left the window


async def test_feed_rejects_a_missing_or_wrong_token(harness: Harness) -> None:
    for path in (feed_path(token=None), feed_path(token="wrong"), feed_path(token="")):
        status, body = await harness.get(path)
        assert status == 401, path
        assert "token" in body["error"]


async def test_feed_unknown_or_disabled_is_404(harness: Harness) -> None:
    status, body = await harness.get(feed_path("billing"))
    assert status == 404 and body["fields"] == {"schedule": "unknown"}
    status, body = await harness.get(feed_path("search-primary", token="anything"))
    assert status == 404 and body["fields"] == {"schedule": "feed disabled"}


async def test_feed_token_from_the_environment(harness: Harness) -> None:
    yaml = ONCALL_YAML.replace(f'ics_token: "{FEED_TOKEN}"', "ics_token_env: PAYMENTS_ICS")
    environ = {"PAYMENTS_ICS": "from-env"}
    config = parse_config(yaml, source="oncall.yml", environ=environ)
    app = create_app(harness.settings(), config, clock=harness.clock, environ=environ)
    assert app[DEPS].ics_tokens == {"payments-primary": "from-env"}
    with pytest.raises(ConfigError, match="PAYMENTS_ICS is not set"):
        create_app(harness.settings(), config, clock=harness.clock, environ={})
