"""The short replies handlers give in Slack (hints, refusals, confirmations), from templates.

Each method renders one macro of a reply catalogue (`replies.j2`, `incident_replies.j2`,
`oncall_replies.j2`, `declare.j2`) through the app's `Renderer`. A reply is `Markup`: mrkdwn
with what it quotes escaped once, so a template it is passed on to shows it as is.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

from bot.render.blocks import MAX_BLOCKS, button, fit_blocks, section
from bot.slack.ids import Action, Block, bundled

if TYPE_CHECKING:  # the renderer builds its Replies
    from datetime import datetime

    from bot.config.api import PermissionRule
    from bot.domain.records import Followup
    from bot.render.renderer import Renderer

_GENERAL = "replies.j2"
_INCIDENT = "incident_replies.j2"
_ONCALL = "oncall_replies.j2"
_DECLARE = "declare.j2"


class Replies:
    """Every short reply a person reads in Slack, one method each."""

    def __init__(self, renderer: Renderer) -> None:
        self.renderer = renderer

    # ---- any surface --------------------------------------------------------------------

    def warning(self, problem: str) -> Markup:
        """`:warning:` and a UserError's message, which is mrkdwn already (shown as is)."""
        return self.renderer.reply(_GENERAL, "warning", problem=Markup(problem))

    def internal_error(self, error_id: str) -> Markup:
        """What a person reads when a listener failed unexpectedly: the error id to quote."""
        return self.renderer.reply(_GENERAL, "internal_error", error_id=error_id)

    def store_unavailable(self) -> Markup:
        """What a person reads when the database cannot write: nothing changed, try later."""
        return self.renderer.reply(_GENERAL, "store_unavailable")

    def not_permitted(
        self, *, action: str, rules: Sequence[PermissionRule], team_name: str | None
    ) -> Markup:
        """A refused click or command (`permissions`): who may do it; nothing changed."""
        return self.renderer.reply(
            _GENERAL, "not_permitted", action=action, rules=rules, team_name=team_name
        )

    # ---- /incident and the incident buttons ---------------------------------------------

    def not_incident_channel(self, *, command: str, subcommand: str) -> Markup:
        return self.renderer.reply(
            _INCIDENT, "not_incident_channel", command=command, subcommand=subcommand
        )

    def unknown_subcommand(self, name: str) -> Markup:
        return self.renderer.reply(_INCIDENT, "unknown_subcommand", name=name)

    def not_incident_number(self, text: str) -> Markup:
        return self.renderer.reply(_INCIDENT, "not_incident_number", text=text)

    def form_failed(self, error: str) -> Markup:
        """The declare form could not be opened (Slack refused views.open)."""
        return self.renderer.reply(_INCIDENT, "form_failed", error=error)

    def transitioned(self, *, kind: str, incident_id: int) -> Markup:
        """The confirmation of an acknowledge or resolve (`kind` is the timeline event)."""
        return self.renderer.reply(_INCIDENT, "done", kind=kind, incident_id=incident_id)

    def note(self, *, actor: str, text: str) -> Markup:
        """A note added to the incident (by the API), as posted in its channel."""
        return self.renderer.reply(_INCIDENT, "note", actor=actor, text=text)

    def state_line(self, *, kind: str, actor: str, **data: object) -> Markup:
        """The short line threaded under the channel's message when the incident changes."""
        return self.renderer.reply(_INCIDENT, "state_line", kind=kind, actor=actor, **data)

    def lead_dm(self, *, number: str, title: str, channel_id: str, by: str) -> Markup:
        """The DM telling a person they are the incident lead now."""
        return self.renderer.reply(
            _INCIDENT, "lead_dm", number=number, title=title, channel_id=channel_id, by=by
        )

    def role_set(self, *, role: str, user: str, number: str, changed: bool) -> Markup:
        name = "role_set" if changed else "role_unchanged"
        return self.renderer.reply(_INCIDENT, name, role=role, user=user, number=number)

    def role_usage(self, role: str) -> Markup:
        return self.renderer.reply(_INCIDENT, "role_usage", role=role)

    def not_a_member(self, user: str) -> Markup:
        return self.renderer.reply(_INCIDENT, "not_a_member", user=user)

    def severity_usage(self) -> Markup:
        return self.renderer.reply(_INCIDENT, "severity_usage")

    def severity_set(self, *, number: str, old: str | None, new: str) -> Markup:
        if old is None:
            return self.renderer.reply(_INCIDENT, "severity_unchanged", number=number, severity=new)
        return self.renderer.reply(_INCIDENT, "severity_set", number=number, old=old, new=new)

    def note_usage(self) -> Markup:
        return self.renderer.reply(_INCIDENT, "note_usage")

    def note_added(self, number: str) -> Markup:
        return self.renderer.reply(_INCIDENT, "note_added", number=number)

    def declared_link(self, *, number: str, channel_id: str) -> Markup:
        """The declarer's ephemeral answer once the incident's channel exists."""
        return self.renderer.reply(_INCIDENT, "declared_link", number=number, channel_id=channel_id)

    def status_update(self, *, number: str, status: str, summary: str, actor: str) -> Markup:
        """A status update as posted in the channel and under the announcement."""
        return self.renderer.reply(
            _INCIDENT, "status_update", number=number, status=status, summary=summary, actor=actor
        )

    def update_reminder(
        self,
        *,
        number: str,
        title: str,
        severity: str,
        since: datetime,
        lead: str | None,
        channel_id: str,
    ) -> Markup:
        """The reminder that an incident has had no status update for a while."""
        return self.renderer.reply(
            _INCIDENT,
            "update_reminder",
            number=number,
            title=title,
            severity=severity,
            since=since,
            lead=lead,
            channel_id=channel_id,
        )

    def update_usage(self) -> Markup:
        return self.renderer.reply(_INCIDENT, "update_usage")

    def followup_usage(self) -> Markup:
        return self.renderer.reply(_INCIDENT, "followup_usage")

    def followup_added(self, *, number: str, text: str, owner: str | None) -> Markup:
        return self.renderer.reply(
            _INCIDENT, "followup_added", number=number, text=text, owner=owner
        )

    def followups(self, items: Sequence[Followup], *, total: int) -> Markup:
        """The open follow-ups across incidents."""
        return self.renderer.reply(_INCIDENT, "followups", items=list(items), total=total)

    def followups_listing(
        self, items: Sequence[Followup], *, total: int, note: str | None = None
    ) -> tuple[str, list[dict[str, Any]]]:
        """`/incident followups`: (text, blocks), each follow-up with its Done button, after
        `note` (what a click just did) when given."""
        text = str(self.followups(items, total=total))
        blocks: list[dict[str, Any]] = []
        if note:
            blocks.append(section(note, block_id=f"{Block.FOLLOWUP_LIST}_note"))
        heading = self.renderer.reply(_INCIDENT, "followups_heading", total=total if items else 0)
        blocks.append(section(str(heading), block_id=Block.FOLLOWUP_LIST))
        for f in items:
            block = section(
                str(self.renderer.reply(_INCIDENT, "followup_line", f=f)),
                block_id=f"{Block.FOLLOWUP_LIST}_{f.id}",
            )
            block["accessory"] = button("Done", bundled(Action.FOLLOWUP_DONE, f.id), str(f.id))
            blocks.append(block)
        if items and total > len(items):
            more = self.renderer.reply(_INCIDENT, "followups_more", count=total - len(items))
            blocks.append(section(str(more), block_id=f"{Block.FOLLOWUP_LIST}_more"))
        return (f"{note}\n{text}" if note else text), fit_blocks(blocks, limit=MAX_BLOCKS)

    def followup_marked(
        self, followup: Followup, *, number: str, done: bool, changed: bool
    ) -> Markup:
        """A follow-up marked done or open again (or already so: nothing changed)."""
        return self.renderer.reply(
            _INCIDENT, "followup_marked", f=followup, number=number, done=done, changed=changed
        )

    def postmortem_posted(self, *, number: str) -> Markup:
        """The comment on the postmortem draft's upload."""
        return self.renderer.reply(_INCIDENT, "postmortem_posted", number=number)

    def reopen_superseded(self, *, number: str, newer: str) -> Markup:
        return self.renderer.reply(_INCIDENT, "reopen_superseded", number=number, newer=newer)

    def archiving(self, *, number: str, resolved_at: datetime | None) -> Markup:
        """Posted in a resolved incident's channel right before it is archived."""
        return self.renderer.reply(_INCIDENT, "archiving", number=number, resolved_at=resolved_at)

    def title_usage(self) -> Markup:
        return self.renderer.reply(_INCIDENT, "title_usage")

    def title_set(self, *, number: str, old: str | None) -> Markup:
        return self.renderer.reply(_INCIDENT, "title_set", number=number, old=old)

    def message_added(self, *, number: str, added: bool) -> Markup:
        """A message given a 📌 or the shortcut: on the timeline now (or already)."""
        return self.renderer.reply(_INCIDENT, "message_added", number=number, added=added)

    def no_open_incidents(self) -> Markup:
        return self.renderer.reply(_INCIDENT, "no_open_incidents")

    def refused(self, *, number: str, title: str, status: str, by: str | None, verb: str) -> Markup:
        """Why a command cannot apply: the incident is already `status` (by whom)."""
        return self.renderer.reply(
            _INCIDENT, "refused", number=number, title=title, status=status, by=by, verb=verb
        )

    def stats_not_a_period(self, word: str) -> Markup:
        return self.renderer.reply(_INCIDENT, "stats_not_a_period", word=word)

    def stats_period_range(self) -> Markup:
        return self.renderer.reply(_INCIDENT, "stats_period_range")

    def stats_one_team(self) -> Markup:
        return self.renderer.reply(_INCIDENT, "stats_one_team")

    def stats_unknown_team(self, word: str, *, team_ids: Iterable[str]) -> Markup:
        return self.renderer.reply(
            _INCIDENT, "stats_unknown_team", word=word, team_ids=list(team_ids)
        )

    # ---- /oncall syntax -----------------------------------------------------------------

    def oncall_not_a_person(self, token: str) -> Markup:
        return self.renderer.reply(_ONCALL, "not_a_person", token=token)

    def oncall_until_when(self) -> Markup:
        return self.renderer.reply(_ONCALL, "until_when")

    def oncall_not_a_time(self, word: str) -> Markup:
        return self.renderer.reply(_ONCALL, "not_a_time", word=word)

    def oncall_who_and_how_long(self) -> Markup:
        return self.renderer.reply(_ONCALL, "who_and_how_long")

    def oncall_how_long(self) -> Markup:
        return self.renderer.reply(_ONCALL, "how_long")

    def oncall_bad_duration(self, problem: str) -> Markup:
        return self.renderer.reply(_ONCALL, "bad_duration", problem=problem)

    def oncall_unexpected(self, words: str) -> Markup:
        return self.renderer.reply(_ONCALL, "unexpected", words=words)

    def oncall_which_override(self) -> Markup:
        return self.renderer.reply(_ONCALL, "which_override")

    def oncall_unusable_number(self, word: str) -> Markup:
        """`word` is digits, but no override can have that id (0, or far too many digits)."""
        return self.renderer.reply(_ONCALL, "unusable_number", word=word)

    def oncall_overrides_args(self) -> Markup:
        return self.renderer.reply(_ONCALL, "overrides_args")

    def oncall_unknown_subcommand(self, word: str) -> Markup:
        return self.renderer.reply(_ONCALL, "unknown_subcommand", word=word)

    # ---- the declare form ---------------------------------------------------------------

    def declare_text(self, name: str) -> str:
        """One piece of the declare modal's wording (title, labels, buttons)."""
        return str(self.renderer.reply(_DECLARE, name))

    def declare_title_missing(self) -> Markup:
        return self.renderer.reply(_DECLARE, "title_missing")

    def declare_title_too_long(self, limit: int) -> Markup:
        return self.renderer.reply(_DECLARE, "title_too_long", limit=limit)

    def declare_severity_missing(self) -> Markup:
        return self.renderer.reply(_DECLARE, "severity_missing")

    def declare_service_unknown(self) -> Markup:
        return self.renderer.reply(_DECLARE, "service_unknown")

    def declare_description_too_long(self, limit: int) -> Markup:
        return self.renderer.reply(_DECLARE, "description_too_long", limit=limit)

    def declare_unusable_characters(self, field: str) -> Markup:
        """`field` (its label) holds a NUL or a lone surrogate."""
        return self.renderer.reply(_DECLARE, "unusable_characters", field=field)

    def declare_refused(self, problem: str) -> Markup:
        """The declaration was refused (a UserError's message), shown under the form's title."""
        return self.renderer.reply(_DECLARE, "refused", problem=Markup(problem))

    def declare_failed(self, error_id: str) -> Markup:
        """Saving the incident failed: shown under the form's title, which stays open."""
        return self.renderer.reply(_DECLARE, "failed", error_id=error_id)

    def declare_late_done(self, *, title: str, number: str) -> Markup:
        """DM after a slow declaration that succeeded."""
        return self.renderer.reply(_DECLARE, "late_done", title=title, number=number)

    def declare_late_refused(self, *, title: str, problem: str) -> Markup:
        """DM after a slow declaration that was refused (a UserError's message)."""
        return self.renderer.reply(_DECLARE, "late_refused", title=title, problem=Markup(problem))

    def declare_late_failed(self, *, title: str, error_id: str) -> Markup:
        """DM after a slow declaration whose write failed."""
        return self.renderer.reply(_DECLARE, "late_failed", title=title, error_id=error_id)
