"""`/incident lead|comms|severity|note`: parse, check `permissions`, call one service.

The slash command, the message's select and the Roles form all end in these functions, so a
change made from anywhere in Slack goes through the same checks and services as the API.
"""

from __future__ import annotations

import re

from bot.deps import Deps
from bot.domain import Severity
from bot.domain.incident import Role
from bot.errors import UserError
from handlers.refs import parse_incident_ref

# A Slack escape sequence (`<@U123|name>`), or a bare user id
_MENTION = re.compile(r"<@([UW][A-Z0-9]{2,})(?:\|[^>]*)?>")
_USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")
_TOKEN = re.compile(r"<[^>]*>|\S+")

MAX_NOTE = 3000


def words(text: str) -> list[str]:
    """`text` split into words, keeping a Slack escape such as `<@U1|Ann Lee>` whole."""
    return _TOKEN.findall(text)


def parse_user(token: str) -> str | None:
    match = _MENTION.fullmatch(token)
    if match:
        return match[1]
    return token if _USER_ID.fullmatch(token) else None


async def set_role(deps: Deps, *, incident_id: int, role: Role, user: str, by: str) -> str:
    """Give `role` to `user` (asked by `by`); the confirmation to show."""
    incident = await deps.incidents.get(incident_id=incident_id)
    await deps.permissions.require(
        "roles", user=by, team_id=incident.team_id, replies=deps.renderer.replies
    )
    changed = await deps.changes.set_role(incident_id=incident_id, role=role, user=user, by=by)
    return deps.renderer.replies.role_set(
        role=role.value, user=user, number=incident.number, changed=changed
    )


async def set_severity(deps: Deps, *, incident_id: int, severity: Severity, by: str) -> str:
    """Change the severity (asked by `by`); the confirmation to show."""
    incident = await deps.incidents.get(incident_id=incident_id)
    await deps.permissions.require(
        "severity", user=by, team_id=incident.team_id, replies=deps.renderer.replies
    )
    old = await deps.changes.change_severity(incident_id=incident_id, severity=severity, by=by)
    return deps.renderer.replies.severity_set(
        number=incident.number, old=old.value if old else None, new=severity.value
    )


def role_args(deps: Deps, role: Role, arg: str) -> tuple[str, int | None]:
    """`@name [number]` → (user id, incident id or None: this channel's)."""
    replies = deps.renderer.replies
    parts = words(arg)
    if not parts or len(parts) > 2:
        raise UserError(replies.role_usage(role.value))
    user = parse_user(parts[0])
    if user is None:
        if parts[0].startswith("@") or len(parts) == 1:
            raise UserError(replies.not_a_member(parts[0][:40]))
        raise UserError(replies.role_usage(role.value))
    incident = parse_incident_ref(parts[1], replies=replies) if len(parts) == 2 else None
    return user, incident


def severity_args(deps: Deps, arg: str) -> tuple[Severity, int | None]:
    """`SEV2 [number]` → (severity, incident id or None: this channel's)."""
    replies = deps.renderer.replies
    parts = arg.split()
    if not parts or len(parts) > 2:
        raise UserError(replies.severity_usage())
    severity = Severity.parse(parts[0]) if parts[0].lower().startswith("sev") else None
    if severity is None:
        raise UserError(replies.severity_usage())
    incident = parse_incident_ref(parts[1], replies=replies) if len(parts) == 2 else None
    return severity, incident


def note_text(deps: Deps, arg: str) -> str:
    """The note's text, or UserError saying what to type."""
    text = arg.strip()
    if not text or len(text) > MAX_NOTE or "\x00" in text:
        raise UserError(deps.renderer.replies.note_usage())
    return text


_MARKS = {"done": True, "reopen": False}
MAX_FOLLOWUP_ID = 2_147_483_647  # the largest id the database holds


def followup_mark(deps: Deps, arg: str) -> tuple[int, bool] | None:
    """`done <n>` / `reopen <n>` → (follow-up id, done?); None when `arg` is a new
    follow-up's text instead (anything else, or more words after done/reopen)."""
    parts = arg.split()
    if not parts or parts[0].lower() not in _MARKS or len(parts) > 2:
        return None
    number = parts[1].removeprefix("#") if len(parts) == 2 else ""
    if not number.isdigit() or not 0 < int(number) <= MAX_FOLLOWUP_ID:
        raise UserError(deps.renderer.replies.followup_usage())
    return int(number), _MARKS[parts[0].lower()]


async def mark_followup(deps: Deps, *, followup_id: int, done: bool, by: str) -> str:
    """Mark a follow-up done or open again (asked by `by`); the confirmation to show."""
    followup, changed = await deps.collab.set_followup_done(
        followup_id=followup_id, done=done, by=by
    )
    incident = await deps.incidents.get(incident_id=followup.incident_id)
    return deps.renderer.replies.followup_marked(
        followup, number=incident.number, done=done, changed=changed
    )


def followup_args(deps: Deps, arg: str) -> tuple[str, str | None]:
    """`<text> [@owner]` → (text, owner id or None); the owner is the last word if a mention."""
    parts = words(arg.strip())
    owner = parse_user(parts[-1]) if parts and _MENTION.fullmatch(parts[-1]) else None
    text = " ".join(parts[:-1] if owner else parts).strip()
    if not text or len(text) > MAX_NOTE or "\x00" in text:
        raise UserError(deps.renderer.replies.followup_usage())
    return text, owner
