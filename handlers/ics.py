"""`GET /oncall/{schedule}.ics?token=…`: a schedule's on-call shifts as an iCalendar feed.

A feed is off unless the schedule sets `ics_token` or `ics_token_env` (resolved once at start-up
into `Deps.ics_tokens`). Events are whole effective shifts (rotation or override) overlapping
[now - 1 day, now + 8 weeks), in UTC. Slack user ids stand in for names: the configuration
knows only ids, and a feed must not call Slack on every calendar refresh.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import timedelta

from aiohttp import web
from icalendar import Calendar, Event, vDuration

from bot.config import PulseOpsConfig
from bot.deps import DEPS, Deps
from bot.domain.rotation import Shift
from bot.errors import AuthError, NotFound
from bot.services.oncall import Feed

PRODID = "-//PulseOps//On-call//EN"
REFRESH = timedelta(hours=1)  # a hint to calendar clients; Google and Outlook poll on their own


def shift_uid(schedule_id: str, shift: Shift) -> str:
    """A UID stable for one shift: same schedule, start instant and person give the same UID."""
    key = f"{schedule_id}|{shift.start.isoformat()}|{shift.user}"
    return f"{hashlib.sha1(key.encode(), usedforsecurity=False).hexdigest()}@pulseops"


def build_calendar(feed: Feed) -> bytes:
    """The iCalendar document for a feed."""
    schedule = feed.schedule
    team_name = feed.team.name if feed.team is not None else schedule.team
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", f"{team_name} on call: {schedule.id}")
    cal.add("x-wr-timezone", schedule.time_zone)
    cal.add("refresh-interval", REFRESH, parameters={"VALUE": "DURATION"})
    cal.add("x-published-ttl", vDuration(REFRESH))  # the older name Outlook reads
    for shift in feed.shifts:
        event = Event()
        event.add("uid", shift_uid(schedule.id, shift))
        event.add("dtstamp", feed.now)
        event.add("dtstart", shift.start)
        event.add("dtend", shift.end)
        summary = f"On call: {shift.user}"
        lines = [f"Schedule {schedule.id} of team {team_name} ({schedule.time_zone})."]
        if shift.override is not None:
            summary += " (override)"
            by = feed.created_by.get(shift.override.id or 0)
            lines.append(f"Override #{shift.override.id}" + (f" set by {by}." if by else "."))
        lines.append(f"Slack user {shift.user}.")
        event.add("summary", summary)
        event.add("description", "\n".join(lines))
        event.add("transp", "TRANSPARENT")  # being on call does not make anyone busy
        cal.add_component(event)
    return bytes(cal.to_ical())


def feed_tokens(config: PulseOpsConfig, environ: Mapping[str, str]) -> dict[str, str]:
    """Each schedule's feed token, resolved once at start-up; schedules without one are left out.

    Raises:
        ConfigError: a schedule's `ics_token_env` variable is not set.
    """
    tokens: dict[str, str] = {}
    for schedule in config.schedules:
        token = schedule.resolve_ics_token(environ)
        if token is not None:
            tokens[schedule.id] = token
    return tokens


async def feed(request: web.Request) -> web.Response:
    """`GET /oncall/{schedule}.ics?token=…`: the schedule's feed, if enabled and the token fits."""
    deps = request.app[DEPS]
    schedule_id = request.match_info["schedule"]
    if deps.config.schedule(schedule_id) is None:
        raise NotFound(f"no schedule {schedule_id!r}", fields={"schedule": "unknown"})
    expected = deps.ics_tokens.get(schedule_id)
    if expected is None:
        raise NotFound(
            f"schedule {schedule_id!r} has no calendar feed (set ics_token or ics_token_env)",
            fields={"schedule": "feed disabled"},
        )
    given = request.query.get("token", "")
    if not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise AuthError("missing or wrong token: add ?token=<the schedule's ics_token>")
    body = build_calendar(await deps.oncall.feed(schedule_id=schedule_id))
    return web.Response(
        body=body,
        content_type="text/calendar",
        charset="utf-8",
        headers={
            "Content-Disposition": f'inline; filename="{schedule_id}.ics"',
            "Cache-Control": "private, max-age=300",
        },
    )


def register(app: web.Application, deps: Deps) -> None:
    """Add the calendar feed route (it reads `deps` from `app[DEPS]`)."""
    app.router.add_get("/oncall/{schedule}.ics", feed)
