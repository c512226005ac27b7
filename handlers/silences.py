"""Silences from Slack: `/incident silence` and "Silence…" open the modal, its submission
creates the silence, `/incident silences` lists them with an Expire button each.

`permissions.silence` applies to creating and expiring; the team concerned is the incident's
(from its message) or the owner of the service a `service="…"` matcher names.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond

from bot.deps import Deps
from bot.domain.durations import parse_duration
from bot.domain.matchers import Matcher, MatcherError, parse_matcher, quote
from bot.domain.silences import split_matchers
from bot.errors import SlackError, UserError
from bot.render.silences import SilenceRenderer
from bot.services.collab import slack_unescape
from bot.slack.ids import Action, Block, Callback, SilenceInput, bundled_pattern
from handlers.middleware import deps_of
from handlers.refs import parse_incident_ref

# alert labels a silence pre-filled from an incident leaves out: the pipeline matches
# `severity` as the decided severity (SEV1…), not the monitor's label
_NOT_PREFILLED = frozenset({"severity"})
MAX_PREFILLED = 10


def _view_of(deps: Deps) -> SilenceRenderer:
    return SilenceRenderer(deps.renderer)


async def open_modal(
    deps: Deps,
    trigger_id: str,
    *,
    matchers: list[str],
    incident_id: int | None,
    channel_id: str | None,
) -> None:
    """Open the silence modal (trigger_id lives 3 s: nothing slow comes before)."""
    view = _view_of(deps).modal(matchers=matchers, incident_id=incident_id, channel_id=channel_id)
    await deps.gateway.open_view(trigger_id, view)


async def silence_command(
    deps: Deps, command: dict[str, Any], arg: str, ack: AsyncAck, respond: AsyncRespond
) -> None:
    """`/incident silence [matcher …]`: the modal, with the matchers typed after it."""
    await ack()
    try:
        await open_modal(
            deps,
            command["trigger_id"],
            matchers=split_matchers(slack_unescape(arg)),  # Slack sends &lt; &gt; &amp;
            incident_id=None,
            channel_id=command.get("channel_id"),
        )
    except SlackError as exc:
        await respond(text=deps.renderer.replies.form_failed(exc.error), response_type="ephemeral")


async def silences_command(
    deps: Deps, command: dict[str, Any], arg: str, ack: AsyncAck, _: AsyncRespond
) -> None:
    """`/incident silences`: the current silences, each with its Expire button."""
    found = await deps.silences.current()
    text, blocks = _view_of(deps).listing(
        [(v.silence, v.held) for v in found], now=deps.clock.now()
    )
    await ack(text=text, blocks=blocks)


def prefilled(labels: list[dict[str, str]], *, title: str, integration: str | None) -> list[str]:
    """Matchers for a silence of an incident's alerts: the labels all of them share, else
    the incident's title (and integration) for alerts that carry no labels."""
    if labels:
        common = dict(labels[0])
        for other in labels[1:]:
            common = {k: v for k, v in common.items() if other.get(k) == v}
        found = [
            f"{name}={quote(value)}"
            for name, value in sorted(common.items())
            if name not in _NOT_PREFILLED and value
        ]
        if found:
            return found[:MAX_PREFILLED]
    found = [f"__title__={quote(title)}"]
    if integration:
        found.append(f"__integration__={quote(integration)}")
    return found


async def silence_button(
    ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, context: AsyncBoltContext
) -> None:
    """ "Silence…" on an incident message: the modal, pre-filled from the incident's alerts."""
    await ack()
    deps = deps_of(context)
    replies = deps.renderer.replies
    try:
        incident_id = parse_incident_ref(str(body["actions"][0].get("value", "")), replies=replies)
        incident, _events, alerts = await deps.incidents.details(incident_id=incident_id)
        matchers = prefilled(
            [dict(a.labels) for a in alerts], title=incident.title, integration=incident.integration
        )
        channel = (body.get("channel") or {}).get("id")
        await open_modal(
            deps, body["trigger_id"], matchers=matchers, incident_id=incident_id, channel_id=channel
        )
    except UserError as exc:
        await respond(
            text=replies.warning(exc.message), response_type="ephemeral", replace_original=False
        )
    except SlackError as exc:
        await respond(
            text=replies.form_failed(exc.error), response_type="ephemeral", replace_original=False
        )


def _value(values: dict[str, Any], block: Block, action: SilenceInput) -> Any:
    element = values.get(block, {}).get(action, {})
    if element.get("type") == "datetimepicker":
        return element.get("selected_date_time")
    return element.get("value")


def read_form(
    deps: Deps, values: dict[str, Any]
) -> tuple[list[Matcher], datetime | None, str, dict[str, str]]:
    """(matchers, end, comment, errors by block id) from the modal's state."""
    words = _view_of(deps)
    errors: dict[str, str] = {}
    matchers: list[Matcher] = []
    lines = str(_value(values, Block.SILENCE_MATCHERS, SilenceInput.MATCHERS) or "").splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            matchers.append(parse_matcher(line))
        except MatcherError as exc:
            errors[Block.SILENCE_MATCHERS] = words.field_error(
                "bad_matcher", line=number, problem=str(exc)
            )
            break
    if not matchers and Block.SILENCE_MATCHERS not in errors:
        errors[Block.SILENCE_MATCHERS] = words.field_error("no_matchers")
    duration_text = str(_value(values, Block.SILENCE_DURATION, SilenceInput.DURATION) or "")
    picked = _value(values, Block.SILENCE_ENDS_AT, SilenceInput.ENDS_AT)
    picked = None if picked in (None, "") else picked
    now = deps.clock.now()
    ends_at: datetime | None = None
    if duration_text.strip() and picked is not None:
        errors[Block.SILENCE_DURATION] = words.field_error("duration_or_end")
    elif duration_text.strip():
        try:
            ends_at = now + parse_duration(duration_text.strip().lower())
        except ValueError as exc:
            errors[Block.SILENCE_DURATION] = words.field_error("bad_duration", problem=str(exc))
    elif picked is not None:
        try:
            ends_at = datetime.fromtimestamp(int(picked), tz=UTC)
        except (TypeError, ValueError, OverflowError, OSError):
            errors[Block.SILENCE_ENDS_AT] = words.field_error("no_end")
    else:
        errors[Block.SILENCE_DURATION] = words.field_error("no_end")
    comment = str(_value(values, Block.SILENCE_COMMENT, SilenceInput.COMMENT) or "").strip()
    return matchers, ends_at, comment, errors


_FIELD_BLOCKS = {
    "matchers": Block.SILENCE_MATCHERS,
    "ends_at": Block.SILENCE_DURATION,
    "comment": Block.SILENCE_COMMENT,
}


async def silence_submitted(
    ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], context: AsyncBoltContext
) -> None:
    """The modal submitted: field errors keep it open; else the silence is created (if the
    person may) and the modal shows what it mutes."""
    deps = deps_of(context)
    matchers, ends_at, comment, errors = read_form(deps, view.get("state", {}).get("values", {}))
    if not errors and ends_at is not None:
        problems = deps.silences.check(
            matchers=matchers,
            starts_at=None,
            ends_at=ends_at,
            comment=comment,
            now=deps.clock.now(),
        )
        errors = {_FIELD_BLOCKS[field]: why for field, why in problems.items()}
    if errors:
        await ack(response_action="errors", errors=errors)
        return
    assert ends_at is not None
    user = body["user"]["id"]
    try:
        metadata = json.loads(view.get("private_metadata") or "{}")
    except ValueError:
        metadata = {}
    incident_id = metadata.get("incident") if isinstance(metadata, dict) else None
    try:
        team_id = deps.silences.team_of(matchers)
        if isinstance(incident_id, int):
            team_id = (await deps.incidents.get(incident_id=incident_id)).team_id or team_id
        await deps.permissions.require(
            "silence", user=user, team_id=team_id, replies=deps.renderer.replies
        )
        silence = await deps.silences.create(
            matchers=matchers, starts_at=None, ends_at=ends_at, comment=comment, by=user
        )
    except UserError as exc:
        await ack(response_action="errors", errors={Block.SILENCE_MATCHERS: exc.message})
        return
    await ack(response_action="update", view=_view_of(deps).created(silence))


async def expire_button(
    ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, context: AsyncBoltContext
) -> None:
    """Expire clicked in `/incident silences`: expire it (if the person may); say so."""
    await ack()
    deps = deps_of(context)
    replies = deps.renderer.replies
    user = body["user"]["id"]
    raw = str(body["actions"][0].get("value", ""))
    try:
        if not raw.isdigit():
            raise UserError(f"not a silence id: {raw[:20]}")
        silence = await deps.silences.get(silence_id=int(raw))
        await deps.permissions.require(
            "silence", user=user, team_id=deps.silences.team_of(silence.matchers), replies=replies
        )
        expired = await deps.silences.expire(silence_id=silence.id, by=user)
        text = _view_of(deps).expired(expired, by=user)
    except UserError as exc:
        text = replies.warning(exc.message)
    await respond(text=text, response_type="ephemeral", replace_original=False)


def register(app: AsyncApp, deps: Deps) -> None:
    """Register "Silence…", Expire and the modal's submission (listeners read `deps` from the
    context); the `/incident silence(s)` subcommands live in `handlers.commands`."""
    app.action(Action.SILENCE)(silence_button)
    app.action(Action.EXPIRE_SILENCE)(expire_button)  # lists posted before ids were per row
    app.action(bundled_pattern(Action.EXPIRE_SILENCE))(expire_button)
    app.view(Callback.SILENCE)(silence_submitted)


__all__ = ["register", "silence_command", "silences_command"]
