"""Modal submissions: the `/incident declare` form.

The incident is written before the form is answered: a write that fails keeps the form open
with the error under its title, so nothing is lost without a word. Slack waits 3 s for the
answer; a write still running after `ANSWER_WITHIN` is left to finish, the form closes, and
the person gets a DM saying how it ended.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext

from bot.deps import Deps
from bot.domain import Severity
from bot.domain.incident import Role
from bot.domain.records import Incident
from bot.errors import NotFound, SlackError, UserError
from bot.services.collab import UPDATE_STATUSES
from bot.slack.ids import Block, Callback, Input
from handlers import collab_ops
from handlers.middleware import deps_of
from handlers.timeline_ops import add_message, tell

log = logging.getLogger("pulseops.slack")

MAX_TITLE = 200  # the form's title input allows no more
MAX_DESCRIPTION = 2900  # the form's description input allows no more
ANSWER_WITHIN = 2.5  # seconds: Slack drops a form answer later than 3 s


def _value(values: dict[str, Any], block: Block, action: Input) -> str:
    element = values.get(block, {}).get(action, {})
    if element.get("type") == "static_select":
        return str((element.get("selected_option") or {}).get("value") or "")
    return str(element.get("value") or "")


def storable(text: str) -> bool:
    """False when `text` holds a NUL or a lone surrogate, which no database or Slack takes."""
    return not any(c == "\x00" or "\ud800" <= c <= "\udfff" for c in text)


def form_errors(
    deps: Deps, *, title: str, severity: Severity | None, service_id: str | None, description: str
) -> dict[str, str]:
    """What is wrong with the form's fields, by block id (empty: nothing)."""
    replies = deps.renderer.replies
    errors: dict[str, str] = {}
    if not title:
        errors[Block.TITLE] = replies.declare_title_missing()
    elif len(title) > MAX_TITLE:
        errors[Block.TITLE] = replies.declare_title_too_long(MAX_TITLE)
    elif not storable(title):
        errors[Block.TITLE] = replies.declare_unusable_characters(
            replies.declare_text("title_label")
        )
    if severity is None:
        errors[Block.SEVERITY] = replies.declare_severity_missing()
    if service_id and deps.config.service(service_id) is None:
        errors[Block.SERVICE] = replies.declare_service_unknown()
    if len(description) > MAX_DESCRIPTION:
        errors[Block.DESCRIPTION] = replies.declare_description_too_long(MAX_DESCRIPTION)
    elif not storable(description):
        errors[Block.DESCRIPTION] = replies.declare_unusable_characters(
            replies.declare_text("description_label")
        )
    return errors


async def declare_submitted(
    ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], context: AsyncBoltContext
) -> None:
    """The declare form submitted: field errors keep it open, else the incident is declared."""
    deps = deps_of(context)
    values = view.get("state", {}).get("values", {})
    title = _value(values, Block.TITLE, Input.TITLE).strip()
    severity = Severity.parse(_value(values, Block.SEVERITY, Input.SEVERITY))
    service_id = _value(values, Block.SERVICE, Input.SERVICE) or None
    description = _value(values, Block.DESCRIPTION, Input.DESCRIPTION).strip()
    errors = form_errors(
        deps, title=title, severity=severity, service_id=service_id, description=description
    )
    if errors:
        await ack(response_action="errors", errors=errors)
        return
    assert severity is not None
    user = body["user"]["id"]
    write = asyncio.ensure_future(
        deps.incidents.declare(
            title=title,
            severity=severity,
            service_id=service_id,
            description=description,
            by=user,
            declared_in=view.get("private_metadata") or None,
        )
    )
    done, _ = await asyncio.wait({write}, timeout=ANSWER_WITHIN)
    if not done:  # the form closes now; the person hears how the write ended by DM
        await ack()
        await _tell_later(deps, user=user, title=title, write=write)
        return
    failure = write.exception()
    if failure is None:
        await ack()
        return
    replies = deps.renderer.replies
    if isinstance(failure, UserError):
        error = replies.declare_refused(failure.message)
    else:
        error = replies.declare_failed(_logged(failure, user=user))
    await ack(response_action="errors", errors={Block.TITLE: error})


def _logged(failure: BaseException, *, user: str) -> str:
    """Log an unexpected failure of a declaration; return the error id to show."""
    error_id = uuid.uuid4().hex[:12]
    log.error(
        "declaring an incident failed",
        exc_info=failure,
        extra={"error_id": error_id, "user": user},
    )
    return error_id


async def _tell_later(
    deps: Deps, *, user: str, title: str, write: asyncio.Future[Incident]
) -> None:
    """Wait for a slow declaration and DM the person how it ended (the form is closed)."""
    replies = deps.renderer.replies
    try:
        incident = await write
    except UserError as exc:
        text = replies.declare_late_refused(title=title, problem=exc.message)
    except Exception as exc:
        text = replies.declare_late_failed(title=title, error_id=_logged(exc, user=user))
    else:
        text = replies.declare_late_done(title=title, number=incident.number)
    try:
        channel = await deps.gateway.open_dm(user)
        await deps.gateway.post_message(channel, text=text)
    except SlackError as exc:
        log.error(
            "could not tell a person how their declaration ended",
            extra={"user": user, "error": exc.error},
        )


async def roles_submitted(
    ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], context: AsyncBoltContext
) -> None:
    """The Roles form submitted: give each role picked; a refusal shows under the lead."""
    deps = deps_of(context)
    values = view.get("state", {}).get("values", {})
    by = body["user"]["id"]
    try:
        incident_id = int(view.get("private_metadata") or "0")
        for block, action, role in (
            (Block.LEAD, Input.LEAD, Role.LEAD),
            (Block.COMMS, Input.COMMS, Role.COMMS),
        ):
            user = values.get(block, {}).get(action, {}).get("selected_user")
            if user:
                await collab_ops.set_role(
                    deps, incident_id=incident_id, role=role, user=str(user), by=by
                )
    except (UserError, ValueError) as exc:
        problem = exc.message if isinstance(exc, UserError) else "unknown incident"
        await ack(response_action="errors", errors={Block.LEAD: problem[:150]})
        return
    await ack()


async def update_submitted(
    ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], context: AsyncBoltContext
) -> None:
    """The status update form submitted: an empty or unusable summary keeps it open."""
    deps = deps_of(context)
    values = view.get("state", {}).get("values", {})
    status = _value(values, Block.UPDATE_STATUS, Input.UPDATE_STATUS)
    summary = _value(values, Block.UPDATE_SUMMARY, Input.UPDATE_SUMMARY).strip()
    if status not in UPDATE_STATUSES:
        await ack(
            response_action="errors",
            errors={Block.UPDATE_STATUS: "Pick investigating, identified or monitoring."},
        )
        return
    if not summary or len(summary) > 2000 or not storable(summary):
        await ack(
            response_action="errors",
            errors={Block.UPDATE_SUMMARY: "Write what people should know (up to 2000 characters)."},
        )
        return
    try:
        incident_id = int(view.get("private_metadata") or "0")
        await deps.collab.post_update(
            incident_id=incident_id, status=status, summary=summary, by=body["user"]["id"]
        )
    except (NotFound, ValueError):
        await ack(response_action="errors", errors={Block.UPDATE_SUMMARY: "Unknown incident."})
        return
    await ack()


async def timeline_add_submitted(
    ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], context: AsyncBoltContext
) -> None:
    """The incident chosen for a shortcut's message: add it to that incident's timeline."""
    deps = deps_of(context)
    values = view.get("state", {}).get("values", {})
    picked = _value(values, Block.TIMELINE_INCIDENT, Input.TIMELINE_INCIDENT)
    try:
        carried = json.loads(view.get("private_metadata") or "{}")
        incident = await deps.incidents.get(incident_id=int(picked))
    except (ValueError, NotFound):
        await ack(response_action="errors", errors={Block.TIMELINE_INCIDENT: "Pick an incident."})
        return
    await ack()
    user = body["user"]["id"]
    text = await add_message(
        deps,
        incident=incident,
        channel=str(carried.get("channel") or ""),
        message=carried,
        by=user,
    )
    await tell(deps, user=user, channel=None, text=text)


def register(app: AsyncApp, deps: Deps) -> None:
    """Register the modals' submissions (the listeners read `deps` from the context)."""
    app.view(Callback.DECLARE)(declare_submitted)
    app.view(Callback.ROLES)(roles_submitted)
    app.view(Callback.UPDATE)(update_submitted)
    app.view(Callback.TIMELINE_ADD)(timeline_add_submitted)
