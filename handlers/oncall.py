"""`/oncall` slash command: who is on call, and overrides; every answer is an ephemeral ack.

    /oncall [team-or-schedule]
    /oncall override <@user> <duration | until TIME> [schedule]
    /oncall overrides [schedule]
    /oncall override remove <id>
    /oncall notify                     (a modal: your e-mail, SMS, call and push methods)

Bad syntax is answered with the help text and changes nothing. Numbers, dates and times
are ASCII digits only (other scripts' digits are refused, not read as numbers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext

from bot.deps import Deps
from bot.domain.durations import ACCEPTED, parse_duration
from bot.errors import UserError
from bot.render import Replies
from bot.services.oncall import OverrideEnd
from bot.slack.ids import SlashCommand
from handlers import contact_methods
from handlers.middleware import deps_of
from handlers.refs import ascii_number

# A Slack escape sequence (`<@U123|name>`, which may hold spaces) or a plain word.
_TOKEN = re.compile(r"<[^>]*>|\S+")
_MENTION = re.compile(r"<@([UW][A-Z0-9]{2,})(?:\|[^>]*)?>")
_USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")
_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_TIME = re.compile(r"([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?")
_DATETIME = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})T(\S+)")
_REMOVE = frozenset({"remove", "rm", "delete", "cancel"})


class Usage(UserError):
    """The command's syntax is wrong: answered with the help text."""


@dataclass(frozen=True, slots=True)
class OverrideArgs:
    """`/oncall override <@user> <duration | until TIME> [schedule]`, parsed."""

    user: str
    end: OverrideEnd
    schedule: str | None


def parse_user(token: str, *, replies: Replies) -> str:
    """A user id from `<@U123|name>`, `<@U123>` or a bare `U123`; Usage otherwise."""
    match = _MENTION.fullmatch(token)
    if match:
        return match[1]
    if _USER_ID.fullmatch(token):
        return token
    raise Usage(replies.oncall_not_a_person(token))


def _time(text: str) -> time:
    match = _TIME.fullmatch(text)
    if match is None:
        raise ValueError(text)
    return time(int(match[1]), int(match[2]), int(match[3] or 0))


def parse_until(words: list[str], *, replies: Replies) -> tuple[OverrideEnd, int]:
    """`until 18:00`, `until 2026-11-24T09:00` or `until 2026-11-24 09:00`; returns words used."""
    if not words:
        raise Usage(replies.oncall_until_when())
    first = words[0]
    try:
        match = _DATETIME.fullmatch(first)
        if match:
            day, at = match[1], match[2]
            used = 1
        elif _DATE.fullmatch(first) and len(words) > 1 and _TIME.fullmatch(words[1]):
            day, at = first, words[1]
            used = 2
        elif _TIME.fullmatch(first):
            return OverrideEnd(at=_time(first)), 1
        else:
            raise ValueError(first)
        date = datetime.strptime(day, "%Y-%m-%d").date()
        return OverrideEnd(until=datetime.combine(date, _time(at))), used
    except ValueError:
        raise Usage(replies.oncall_not_a_time(first)) from None


def parse_override(words: list[str], *, replies: Replies) -> OverrideArgs:
    """The words after `override` (not `remove`): person, how long, optional schedule."""
    if not words:
        raise Usage(replies.oncall_who_and_how_long())
    user = parse_user(words[0], replies=replies)
    rest = words[1:]
    if rest and rest[0].lower() == "for":
        rest = rest[1:]
    if not rest:
        raise Usage(replies.oncall_how_long())
    if rest[0].lower() == "until":
        end, used = parse_until(rest[1:], replies=replies)
        rest = rest[1 + used :]
    else:
        try:
            if not rest[0].isascii():  # `٤h`: parse_duration's \d would read it as 4h
                raise ValueError(f"invalid duration {rest[0]!r}: {ACCEPTED}")
            end = OverrideEnd(duration=parse_duration(rest[0]))
        except ValueError as exc:
            raise Usage(replies.oncall_bad_duration(str(exc))) from None
        rest = rest[1:]
    if len(rest) > 1:
        raise Usage(replies.oncall_unexpected(" ".join(rest)))
    return OverrideArgs(user=user, end=end, schedule=rest[0].lower() if rest else None)


def parse_override_id(words: list[str], *, replies: Replies) -> int:
    """The id in `override remove <id>` (`12` or `#12`); UserError for one no override has."""
    word = words[0].removeprefix("#") if len(words) == 1 else ""
    if not (word.isascii() and word.isdigit()):
        raise Usage(replies.oncall_which_override())
    override_id = ascii_number(word)
    if override_id is None:  # 0, or more digits than any id has
        raise UserError(replies.oncall_unusable_number(word))
    return override_id


async def answer(deps: Deps, command: dict[str, Any]) -> str:
    """Run one `/oncall` command and return the ephemeral answer's text."""
    words = _TOKEN.findall(command.get("text") or "")
    verb = words[0].lower() if words else ""
    rest = words[1:]
    oncall, renderer = deps.oncall, deps.renderer
    replies = renderer.replies
    by = command.get("user_id", "")
    if not words:
        return renderer.oncall_now(await oncall.who())
    if verb == "help":
        return renderer.oncall_help(schedule_ids=[s.id for s in deps.config.schedules])
    if verb == "override" and rest and rest[0].lower() in _REMOVE:
        override_id = parse_override_id(rest[1:], replies=replies)
        if deps.config.permissions.override is not None:
            target = {o.id: o for o in await oncall.overrides()}.get(override_id)
            schedule_config = deps.config.schedule(target.schedule_id) if target else None
            await deps.permissions.require(
                "override",
                user=by,
                team_id=schedule_config.team if schedule_config else None,
                replies=replies,
            )
        removed = await oncall.remove_override(override_id=override_id, by=by)
        return renderer.oncall_override_removed(removed)
    if verb == "override":
        args = parse_override(rest, replies=replies)
        schedule = oncall.schedule_for_override(
            explicit=args.schedule,
            user=args.user,
            channel_id=command.get("channel_id", ""),
            channel_name=command.get("channel_name", ""),
        )
        await deps.permissions.require("override", user=by, team_id=schedule.team, replies=replies)
        added = await oncall.add_override(
            schedule_id=schedule.id, user=args.user, end=args.end, by=by
        )
        return renderer.oncall_override_added(added)
    if verb == "overrides":
        if len(rest) > 1:
            raise Usage(replies.oncall_overrides_args())
        schedule_id = rest[0].lower() if rest else None
        found = await oncall.overrides(schedule_id=schedule_id)
        return renderer.oncall_overrides(found, now=deps.clock.now(), schedule_id=schedule_id)
    if len(words) == 1 and not words[0].startswith("<"):
        return renderer.oncall_now(await oncall.who(selector=verb))
    raise Usage(replies.oncall_unknown_subcommand(words[0]))


async def oncall_command(ack: AsyncAck, command: dict[str, Any], context: AsyncBoltContext) -> None:
    """`/oncall …`: the answer, the help text after bad syntax, or the problem, ephemerally."""
    deps = deps_of(context)
    if (command.get("text") or "").strip().lower() == "notify":
        await ack()  # the modal opens with the trigger, within Slack's 3 s
        await contact_methods.open_modal(
            deps, user=command.get("user_id", ""), trigger_id=command.get("trigger_id", "")
        )
        return
    try:
        text = await answer(deps, command)
    except Usage as exc:
        text = deps.renderer.oncall_help(
            exc.message, schedule_ids=[s.id for s in deps.config.schedules]
        )
    except UserError as exc:
        text = deps.renderer.oncall_error(exc.message)
    await ack(text=text)


def register(app: AsyncApp, deps: Deps) -> None:
    """Register `/oncall` (the listener reads `deps` from the context)."""
    app.command(SlashCommand.ONCALL)(oncall_command)
