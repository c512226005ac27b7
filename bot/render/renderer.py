"""The one renderer: Jinja templates -> mrkdwn text and Block Kit, within Slack's limits.

Every `{{ value }}` is escaped for mrkdwn (`&`, `<`, `>`) unless a filter here produced it as
`Markup` (mentions, channel links, dates): untrusted text is escaped exactly once, here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from bot.domain.incident import Severity, Status
from bot.domain.oncall import NewOverride, StoredOverride, TeamOnCall
from bot.domain.records import Incident, TimelineEvent
from bot.domain.rotation import Shift
from bot.render.blocks import (
    MAX_BLOCKS,
    MAX_CONTEXT_TEXT,
    MAX_FIELD_TEXT,
    MAX_FIELDS,
    MAX_TEXT,
    button,
    clip,
    confirm_dialog,
    escape_mrkdwn,
    fit_blocks,
    option,
    plain,
    section,
)
from bot.render.replies import Replies
from bot.slack.ids import Action, Block, Callback, Input, bundled, workflow_action

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"

MAX_HANDOFF_INCIDENTS = 10  # open incidents listed in a handoff message; the rest are counted
# incidents one bundled page shows in full: an intro, then a summary and the buttons of each,
# leaving a block for fit_blocks' "… and N more"
MAX_BUNDLED_PAGES = (MAX_BLOCKS - 2) // 2
MAX_WORKFLOW_BUTTONS = 20  # an actions block holds 25 elements; three are the incident's own

_STATUS_EMOJI = {
    Status.TRIGGERED: ":rotating_light:",
    Status.ACKNOWLEDGED: ":eyes:",
    Status.RESOLVED: ":white_check_mark:",
}


def _finalize(value: Any) -> Any:
    if isinstance(value, Markup):
        return value
    if value is None:
        return ""
    return escape_mrkdwn(str(value))


def _actor(actor: str | None) -> Markup:
    if not actor:
        return Markup("someone")
    if actor.startswith(("U", "W")) and actor.isalnum():
        return Markup(f"<@{actor}>")
    if actor.startswith("monitor:"):
        return Markup(f"the monitor ({escape_mrkdwn(actor.removeprefix('monitor:'))})")
    return Markup(escape_mrkdwn(actor))


def _channel(channel_id: str) -> Markup:
    return Markup(f"<#{escape_mrkdwn(channel_id)}>")


def _slackdate(value: datetime | None) -> Markup:
    if value is None:
        return Markup("—")
    fallback = value.strftime("%Y-%m-%d %H:%M UTC")
    return Markup(f"<!date^{int(value.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>")


def _mention(target: str, kind: str = "user") -> Markup:
    """A user (`<@U…>`) or user group (`<!subteam^S…>`) mention of a configured id."""
    safe = escape_mrkdwn(target)
    return Markup(f"<!subteam^{safe}>" if kind == "user_group" else f"<@{safe}>")


# timeline events whose text names a person given in their data: the mention stays live
_PERSON_OF = {"role_assigned": "user", "message_added": "author"}


def _event_text(event: TimelineEvent) -> Markup:
    """A timeline event's text, escaped, with the mention of a paged target left live."""
    text = escape_mrkdwn(event.text)
    target = event.data.get("target")
    person = event.data.get(_PERSON_OF.get(event.kind, ""))
    if isinstance(person, str) and person[:1] in "UW" and person.isalnum():
        mention = str(_mention(person))
        text = text.replace(escape_mrkdwn(mention), mention, 1)
    if event.kind == "paged" and isinstance(target, str):
        mention = str(_mention(target, str(event.data.get("kind", "user"))))
        text = text.replace(escape_mrkdwn(mention), mention, 1)
    return Markup(text)


def _link(url: str, text: str) -> Markup:
    if not url.startswith(("http://", "https://")) or any(c in url for c in "<>| "):
        return Markup(escape_mrkdwn(f"{text}: {url}"))
    return Markup(f"<{url}|{escape_mrkdwn(text)}>")


def _clip_filter(text: Any, limit: int) -> str:
    return clip(str(text or ""), limit)


@dataclass(frozen=True, slots=True)
class Message:
    """A message ready for chat.postMessage / chat.update: notification text plus blocks."""

    text: str
    blocks: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Names:
    """Display names for configured ids (services, teams)."""

    services: Mapping[str, str]
    teams: Mapping[str, str]

    def service(self, service_id: str | None) -> str | None:
        return self.services.get(service_id, service_id) if service_id else None

    def team(self, team_id: str | None) -> str | None:
        return self.teams.get(team_id, team_id) if team_id else None


class Renderer:
    """Renders every message and view PulseOps sends."""

    def __init__(
        self,
        names: Names,
        *,
        template_dir: Path = TEMPLATES,
        escalatable: Callable[[Incident], bool] = lambda _: False,
        workflow_buttons: Callable[[Incident], Sequence[tuple[str, str]]] = lambda _: (),
    ) -> None:
        self.names = names
        self.escalatable = escalatable
        self.workflow_buttons = workflow_buttons
        self.env = Environment(
            loader=FileSystemLoader(str(template_dir)),
            autoescape=False,
            undefined=StrictUndefined,
            finalize=_finalize,
            keep_trailing_newline=False,
        )
        self.env.filters.update(
            actor=_actor,
            channel=_channel,
            slackdate=_slackdate,
            link=_link,
            clip=_clip_filter,
            mention=_mention,
            event_text=_event_text,
        )
        self.replies = Replies(self)

    def text(self, template: str, **context: Any) -> str:
        """Render a template to mrkdwn text (escaped), clipped to Slack's text limit."""
        return clip(self.env.get_template(template).render(**context).strip(), MAX_TEXT)

    def reply(self, template: str, name: str, /, **context: Any) -> Markup:
        """Render macro `name` of `template` (a catalogue of short replies) like `text`.

        The result is Markup: passed into another template, it is not escaped a second time.
        """
        macro = getattr(self.env.get_template(template).module, name)
        return Markup(clip(str(macro(**context)).strip(), MAX_TEXT))

    def _ctx(self, incident: Incident) -> dict[str, Any]:
        return {
            "incident": incident,
            "service_name": self.names.service(incident.service_id),
            "team_name": self.names.team(incident.team_id),
            "status_emoji": Markup(_STATUS_EMOJI[incident.status]),
        }

    def incident_message(self, incident: Incident, *, announcement: bool = False) -> Message:
        """The incident message: summary, fields, buttons for the next legal moves, context."""
        ctx = self._ctx(incident)
        fields = [f for f in self.text("incident_fields.j2", **ctx).split("\n*") if f.strip()]
        fields = [f if f.startswith("*") else "*" + f for f in fields]
        summary = section(self.text("incident.j2", **ctx), block_id=Block.SUMMARY)
        if incident.integration is not None and incident.status is not Status.RESOLVED:
            # from alerts and open: "Silence…" mutes more of the same
            summary["accessory"] = button("Silence…", Action.SILENCE, str(incident.id))
        blocks: list[dict[str, Any]] = [
            summary,
            {
                "type": "section",
                "block_id": Block.FIELDS,
                "fields": [
                    {"type": "mrkdwn", "text": clip(f, MAX_FIELD_TEXT)} for f in fields[:MAX_FIELDS]
                ],
            },
        ]
        buttons = self._buttons(incident)
        if buttons:
            blocks.append({"type": "actions", "block_id": Block.ACTIONS, "elements": buttons})
        if incident.is_open:
            blocks.append(
                {
                    "type": "actions",
                    "block_id": Block.MANAGE,
                    "elements": self._collab_elements(incident),
                }
            )
        if incident.chart_file_id and not announcement:
            # shared in the incident's channel only: the announcement's readers may not see it
            blocks.append(
                {
                    "type": "image",
                    "block_id": Block.CHART,
                    "slack_file": {"id": incident.chart_file_id},
                    "alt_text": "Latency chart of the probe's recent results",
                }
            )
        channel_id = incident.channel_id if announcement else None
        blocks.append(
            {
                "type": "context",
                "block_id": Block.CONTEXT,
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": clip(
                            self.text("incident_context.j2", channel_id=channel_id, **ctx),
                            MAX_CONTEXT_TEXT,
                        ),
                    }
                ],
            }
        )
        return Message(text=self.text("incident_text.j2", **ctx), blocks=fit_blocks(blocks))

    def _buttons(self, incident: Incident, *, workflows: bool = True) -> list[dict[str, Any]]:
        """The incident's buttons; `workflows=False` leaves out the workflow buttons and
        Reopen (a bundled page keeps to the incident's own moves while it is open)."""
        value = str(incident.id)
        buttons = []
        if incident.status is Status.TRIGGERED:
            buttons.append(button("Acknowledge", Action.ACKNOWLEDGE, value, style="primary"))
        if incident.status is not Status.RESOLVED:
            buttons.append(button("Resolve", Action.RESOLVE, value, style="danger"))
            if self.escalatable(incident):
                buttons.append(button("Escalate", Action.ESCALATE, value))
            offered = list(self.workflow_buttons(incident)) if workflows else []
            for workflow_id, label in offered[:MAX_WORKFLOW_BUTTONS]:
                buttons.append(
                    button(
                        label,
                        workflow_action(workflow_id),
                        value,
                        confirm=confirm_dialog(
                            title=clip(label, 100),
                            text=f"Run *{escape_mrkdwn(label)}* on {incident.number} now?",
                            confirm="Run",
                        ),
                    )
                )
        elif workflows:
            buttons.append(button("Reopen", Action.REOPEN, value))
        return buttons

    def _collab_elements(self, incident: Incident) -> list[dict[str, Any]]:
        """The Roles button and the severity select of an open incident's message."""
        options = [option(sev.value, f"{incident.id}:{sev.value}") for sev in Severity]
        return [
            button("Roles", Action.ROLES, str(incident.id)),
            {
                "type": "static_select",
                "action_id": Action.SEVERITY,
                "placeholder": plain("Severity"),
                "options": options,
                "initial_option": option(
                    incident.severity.value, f"{incident.id}:{incident.severity.value}"
                ),
            },
        ]

    def roles_modal(self, incident: Incident) -> dict[str, Any]:
        """The Roles form: the incident lead and the communications lead, each a person."""

        def person(block: Block, action: Input, label: str, user: str | None) -> dict[str, Any]:
            element: dict[str, Any] = {"type": "users_select", "action_id": action}
            if user:
                element["initial_user"] = user
            return {
                "type": "input",
                "block_id": block,
                "optional": True,
                "label": plain(label),
                "element": element,
            }

        return {
            "type": "modal",
            "callback_id": Callback.ROLES,
            "title": plain(clip(f"Roles of {incident.number}", 24)),
            "submit": plain("Save"),
            "close": plain("Cancel"),
            "private_metadata": str(incident.id),
            "blocks": [
                person(Block.LEAD, Input.LEAD, "Incident lead", incident.lead),
                person(Block.COMMS, Input.COMMS, "Communications lead", incident.comms),
            ],
        }

    def update_modal(self, incident: Incident, statuses: Sequence[str]) -> dict[str, Any]:
        """The status update form: where the work stands, and a summary for readers."""
        current = incident.update_status or statuses[0]
        return {
            "type": "modal",
            "callback_id": Callback.UPDATE,
            "title": plain(clip(f"Update {incident.number}", 24)),
            "submit": plain("Post update"),
            "close": plain("Cancel"),
            "private_metadata": str(incident.id),
            "blocks": [
                {
                    "type": "input",
                    "block_id": Block.UPDATE_STATUS,
                    "label": plain("Status"),
                    "element": {
                        "type": "static_select",
                        "action_id": Input.UPDATE_STATUS,
                        "options": [option(s.capitalize(), s) for s in statuses],
                        "initial_option": option(current.capitalize(), current),
                    },
                },
                {
                    "type": "input",
                    "block_id": Block.UPDATE_SUMMARY,
                    "label": plain("Summary"),
                    "element": {
                        "type": "plain_text_input",
                        "action_id": Input.UPDATE_SUMMARY,
                        "multiline": True,
                        "max_length": 2000,
                    },
                },
            ],
        }

    def timeline_modal(
        self, incidents: Sequence[Incident], *, private_metadata: str
    ) -> dict[str, Any]:
        """Which open incident a message goes to ("Add to incident timeline" elsewhere)."""
        options = [option(f"{i.number}: {i.title}", str(i.id)) for i in incidents[:100]]
        return {
            "type": "modal",
            "callback_id": Callback.TIMELINE_ADD,
            "title": plain("Add to timeline"),
            "submit": plain("Add"),
            "close": plain("Cancel"),
            "private_metadata": private_metadata,
            "blocks": [
                {
                    "type": "input",
                    "block_id": Block.TIMELINE_INCIDENT,
                    "label": plain("Incident"),
                    "element": {
                        "type": "static_select",
                        "action_id": Input.TIMELINE_INCIDENT,
                        "options": options,
                    },
                }
            ],
        }

    def page_message(self, incident: Incident, *, level: int) -> Message:
        """The DM that pages someone: why they are paged, then the incident message."""
        message = self.incident_message(incident, announcement=True)
        intro = section(
            self.text("page.j2", incident=incident, level=level),
            block_id=Block.PAGE,
        )
        return Message(
            text=f"You are paged: {message.text}", blocks=fit_blocks([intro, *message.blocks])
        )

    def page_bundle(self, pages: Sequence[tuple[Incident, int]]) -> Message:
        """One DM paging someone for several incidents at once: (incident, escalation level)
        pairs, each incident shown once with its summary and its own buttons."""
        levels: dict[int, tuple[Incident, int]] = {}
        for incident, level in pages:
            shown = levels.get(incident.id)
            levels[incident.id] = (incident, max(level, shown[1] if shown else level))
        entries = list(levels.values())
        blocks = [
            section(self.text("page_bundle.j2", count=len(entries)), block_id=Block.PAGE),
        ]
        for incident, level in entries:
            blocks.append(
                section(
                    self.text("page_bundle_item.j2", level=level, **self._ctx(incident)),
                    block_id=f"{Block.PAGE}_{incident.id}",
                )
            )
            buttons = self._buttons(incident, workflows=False)
            for b in buttons:
                b["action_id"] = bundled(Action(b["action_id"]), incident.id)
            if buttons:
                blocks.append(
                    {
                        "type": "actions",
                        "block_id": f"{Block.PAGE}_{incident.id}_actions",
                        "elements": buttons,
                    }
                )
        text = self.text("page_bundle_text.j2", incidents=[i for i, _ in entries])
        return Message(text=text, blocks=fit_blocks(blocks))

    def page_mention(self, incident: Incident, *, target: str, kind: str, level: int) -> str:
        return self.text(
            "page_mention.j2", incident=incident, target=target, kind=kind, level=level
        )

    def handoff_message(
        self,
        *,
        schedule_id: str,
        team_id: str,
        outgoing: str,
        incoming: str,
        at: datetime,
        late: bool,
        missed: int,
        incidents: list[Incident],
        total: int,
        next_shift: Shift | None,
    ) -> Message:
        """The handoff announcement: who hands over to whom, the team's open incidents, and
        when the next handoff is; a late one says when it was due."""
        shown = incidents[:MAX_HANDOFF_INCIDENTS]
        ctx: dict[str, Any] = {
            "schedule_id": schedule_id,
            "team_name": self.names.team(team_id),
            "outgoing": outgoing,
            "incoming": incoming,
            "at": at,
            "late": late,
            "missed": missed,
            "incidents": shown,
            "total": max(total, len(shown)),
            "next_shift": next_shift,
        }
        return Message(
            text=self.text("handoff_text.j2", **ctx),
            blocks=[section(self.text("handoff.j2", **ctx), block_id=Block.HANDOFF)],
        )

    def handoff_dm(
        self,
        *,
        schedule_id: str,
        team_id: str,
        outgoing: str,
        total: int,
        channel_id: str | None,
        next_shift: Shift | None,
    ) -> str:
        """The short DM telling the incoming person they are on call now."""
        return self.text(
            "handoff_dm.j2",
            schedule_id=schedule_id,
            team_name=self.names.team(team_id),
            outgoing=outgoing,
            total=total,
            channel_id=channel_id,
            next_shift=next_shift,
        )

    def topic(self, incident: Incident) -> str:
        return clip(self.text("topic.j2", **self._ctx(incident)), 250)

    def status(self, incident: Incident) -> str:
        return self.text("status.j2", **self._ctx(incident))

    def incident_list(self, incidents: list[Incident], *, total: int) -> str:
        return self.text("incident_list.j2", incidents=incidents, total=total)

    def timeline(self, incident: Incident, events: list[TimelineEvent], *, limit: int = 40) -> str:
        shown = events[-limit:]
        text = self.text("timeline.j2", incident=incident, events=shown)
        if len(events) > len(shown):
            text += f"\n… and {len(events) - len(shown)} earlier events (see the HTTP API)"
        return text

    def help(self, problem: str | None = None) -> str:
        return self.text("help.j2", problem=problem)

    # ---- /oncall ------------------------------------------------------------------------

    def oncall_now(self, teams: Iterable[TeamOnCall]) -> str:
        """Who is on call for each team's schedules, until when, and who is next."""
        return self.text("oncall.j2", teams=list(teams))

    def oncall_override_added(self, added: NewOverride) -> str:
        return self.text("oncall_override.j2", o=added.override, overlaps=added.overlaps)

    def oncall_overrides(
        self,
        overrides: list[StoredOverride],
        *,
        now: datetime,
        schedule_id: str | None = None,
        limit: int = 30,
    ) -> str:
        """Current and upcoming overrides, at most `limit` of them ("… and N more")."""
        return self.text(
            "oncall_overrides.j2",
            overrides=overrides[:limit],
            more=max(len(overrides) - limit, 0),
            now=now,
            schedule_id=schedule_id,
        )

    def oncall_override_removed(self, removed: StoredOverride) -> str:
        return self.text("oncall_override_removed.j2", o=removed)

    def oncall_help(self, problem: str | None = None, *, schedule_ids: Iterable[str] = ()) -> str:
        return self.text("oncall_help.j2", problem=problem, schedule_ids=list(schedule_ids))

    def oncall_error(self, problem: str) -> str:
        return self.text("oncall_error.j2", problem=problem)

    def declare_modal(
        self, *, services: Iterable[tuple[str, str]], channel_id: str | None = None
    ) -> dict[str, Any]:
        """The `/incident declare` modal."""
        words = self.replies.declare_text
        severity_options = [option(s.value, s.value) for s in Severity]
        service_options = [option(name, sid) for sid, name in services][:100]
        blocks: list[dict[str, Any]] = [
            {
                "type": "input",
                "block_id": Block.TITLE,
                "label": plain(words("title_label")),
                "element": {
                    "type": "plain_text_input",
                    "action_id": Input.TITLE,
                    "max_length": 200,
                    "placeholder": plain(words("title_placeholder")),
                },
            },
            {
                "type": "input",
                "block_id": Block.SEVERITY,
                "label": plain(words("severity_label")),
                "element": {
                    "type": "static_select",
                    "action_id": Input.SEVERITY,
                    "options": severity_options,
                    "initial_option": option(Severity.SEV3.value, Severity.SEV3.value),
                },
            },
        ]
        if service_options:
            blocks.append(
                {
                    "type": "input",
                    "block_id": Block.SERVICE,
                    "label": plain(words("service_label")),
                    "optional": True,
                    "element": {
                        "type": "static_select",
                        "action_id": Input.SERVICE,
                        "options": service_options,
                    },
                }
            )
        blocks.append(
            {
                "type": "input",
                "block_id": Block.DESCRIPTION,
                "label": plain(words("description_label")),
                "optional": True,
                "element": {
                    "type": "plain_text_input",
                    "action_id": Input.DESCRIPTION,
                    "multiline": True,
                    "max_length": 2900,
                },
            }
        )
        return {
            "type": "modal",
            "callback_id": Callback.DECLARE,
            "title": plain(words("modal_title")),
            "submit": plain(words("submit")),
            "close": plain(words("close")),
            "private_metadata": channel_id or "",
            "blocks": blocks,
        }
