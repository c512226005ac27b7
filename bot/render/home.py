"""The App Home tab: the dashboard as a Block Kit `home` view, from templates, ≤ 100 blocks.

Text comes from `templates/home_*.j2` through the one `Renderer` (so untrusted titles are
escaped there); the buttons are the incident message's own (same action ids and values), so
`handlers/actions.py` handles a click on the Home tab like one in the incident channel.
Lists that do not fit end with "… and N more".
"""

from __future__ import annotations

import copy
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from bot.domain.durations import human_seconds
from bot.domain.incident import Severity, Status
from bot.domain.records import Incident
from bot.render.blocks import (
    MAX_HEADER_TEXT,
    MAX_VIEW_BLOCKS,
    button,
    clip,
    escape_mrkdwn,
    fit_blocks,
    plain,
    section,
)
from bot.render.renderer import Renderer
from bot.render.silences import SilenceRenderer
from bot.render.slos import home_lines as slo_lines
from bot.render.slos import home_title as slo_title
from bot.slack.ids import Action, Block

if TYPE_CHECKING:
    from bot.domain.dashboard import Dashboard, WeekStats

MAX_MINE = 10  # "your incidents" listed with buttons; the rest are counted
MAX_TEAMS = 10  # on-call sections (one per team); the rest are counted
MAX_PROBES = 25  # probes listed on the Home tab; the rest are counted
MAX_SILENCES = 10  # silences listed; the rest are counted
_BUTTON_CACHE = 4096


class HomeBlock(StrEnum):
    """block_ids of the Home tab (incident blocks add `_<id>` and `_<id>_actions`)."""

    HEADER = "home_header"
    DECLARE = "home_declare"  # the Declare button
    NOTICE = "home_notice"
    MINE_TITLE = "home_mine_title"
    MINE = "home_mine"
    MINE_EMPTY = "home_mine_empty"
    MINE_MORE = "home_mine_more"
    OPEN_TITLE = "home_open_title"
    OPEN = "home_open"
    OPEN_EMPTY = "home_open_empty"
    OPEN_MORE = "home_open_more"
    SEVERITY = "home_severity"
    ONCALL_TITLE = "home_oncall_title"
    ONCALL = "home_oncall"
    ONCALL_MORE = "home_oncall_more"
    SILENCES_TITLE = "home_silences_title"
    SILENCES = "home_silences"
    WEEK_TITLE = "home_week_title"
    WEEK = "home_week"
    PROBES_TITLE = "home_probes_title"
    PROBES = "home_probes"
    SLOS_TITLE = "home_slos_title"
    SLOS = "home_slos"


def header(text: str, *, block_id: str) -> dict[str, Any]:
    return {"type": "header", "block_id": block_id, "text": plain(clip(text, MAX_HEADER_TEXT))}


def context(text: str, *, block_id: str) -> dict[str, Any]:
    return {"type": "context", "block_id": block_id, "elements": [{"type": "mrkdwn", "text": text}]}


def divider() -> dict[str, Any]:
    return {"type": "divider"}


class HomeRenderer:
    """Renders one user's Home tab from a `Dashboard`."""

    def __init__(self, renderer: Renderer) -> None:
        self.renderer = renderer
        self._buttons: dict[tuple[int, Status], list[dict[str, Any]]] = {}

    def home_view(
        self, dashboard: Dashboard, *, user: str, notice: str | None = None
    ) -> dict[str, Any]:
        """The `home` view for `user`: their incidents, all open ones, on-call, this week."""
        top: list[dict[str, Any]] = [
            header("PulseOps", block_id=HomeBlock.HEADER),
            {
                "type": "actions",
                "block_id": HomeBlock.DECLARE,
                "elements": [
                    button("Declare an incident", Action.DECLARE, "declare", style="danger")
                ],
            },
        ]
        if notice:
            top.append(section(notice, block_id=HomeBlock.NOTICE))
        mine = self._mine(dashboard, user)
        tail = [
            divider(),
            header("On call now", block_id=HomeBlock.ONCALL_TITLE),
            *self._oncall(dashboard),
            divider(),
            header("Silences", block_id=HomeBlock.SILENCES_TITLE),
            section(self._silences(dashboard), block_id=HomeBlock.SILENCES),
            divider(),
            header("This week", block_id=HomeBlock.WEEK_TITLE),
            section(self._week(dashboard.week, dashboard.open_total), block_id=HomeBlock.WEEK),
            *self._probes(dashboard),
            *self._slos(dashboard),
        ]
        title = header("Open incidents by severity", block_id=HomeBlock.OPEN_TITLE)
        budget = MAX_VIEW_BLOCKS - len(top) - len(mine) - len(tail) - 2  # divider and title
        opened = self._open(dashboard, budget)
        blocks = [*top, *mine, divider(), title, *opened, *tail]
        return {"type": "home", "blocks": fit_blocks(blocks, limit=MAX_VIEW_BLOCKS)}

    # ---- sections -----------------------------------------------------------------------

    def _probes(self, dashboard: Dashboard) -> list[dict[str, Any]]:
        """Down and anomalous probes first, then the rest, in one section (none: no section)."""
        if not dashboard.probes:
            return []
        icons = {"up": ":large_green_circle:", "down": ":red_circle:"}
        ordered = sorted(
            dashboard.probes, key=lambda p: (p.status != "down", not p.anomalies, p.id)
        )
        lines = []
        for probe in ordered[:MAX_PROBES]:
            latency = f" · {probe.latency_ms:.0f} ms" if probe.latency_ms is not None else ""
            flags = f" · anomaly: {', '.join(probe.anomalies)}" if probe.anomalies else ""
            icon = icons.get(probe.status, ":white_circle:")
            lines.append(f"{icon} *{escape_mrkdwn(probe.id)}* {probe.status}{latency}{flags}")
        if len(ordered) > MAX_PROBES:
            lines.append(f"… and {len(ordered) - MAX_PROBES} more: `/incident probes`")
        down = sum(1 for p in dashboard.probes if p.status == "down")
        title = f"Probes: {down} down of {len(dashboard.probes)}"
        return [
            divider(),
            header(title, block_id=HomeBlock.PROBES_TITLE),
            section(clip("\n".join(lines), 3000), block_id=HomeBlock.PROBES),
        ]

    def _slos(self, dashboard: Dashboard) -> list[dict[str, Any]]:
        """SLOs over alert sources, burning ones first (none configured: no section)."""
        if not dashboard.slos:
            return []
        return [
            divider(),
            header(slo_title(dashboard.slos), block_id=HomeBlock.SLOS_TITLE),
            section(slo_lines(dashboard.slos, budget=3000), block_id=HomeBlock.SLOS),
        ]

    def _mine(self, dashboard: Dashboard, user: str) -> list[dict[str, Any]]:
        blocks = [header("Your incidents", block_id=HomeBlock.MINE_TITLE)]
        mine = dashboard.mine(user)
        if not mine:
            text = self.renderer.text("home_empty.j2", what="mine")
            return [*blocks, section(text, block_id=HomeBlock.MINE_EMPTY)]
        for incident, reasons in mine[:MAX_MINE]:
            blocks.extend(self._incident(incident, prefix=HomeBlock.MINE, reasons=reasons))
        if len(mine) > MAX_MINE:
            more = self.renderer.text("home_more.j2", what="incidents", count=len(mine) - MAX_MINE)
            blocks.append(context(more, block_id=HomeBlock.MINE_MORE))
        return blocks

    def _open(self, dashboard: Dashboard, budget: int) -> list[dict[str, Any]]:
        """All open incidents grouped by severity, in at most `budget` blocks."""
        if not dashboard.open:
            return [
                section(
                    self.renderer.text("home_empty.j2", what="open"), block_id=HomeBlock.OPEN_EMPTY
                )
            ]
        counts: dict[Severity, int] = {}
        for incident in dashboard.open:
            counts[incident.severity] = counts.get(incident.severity, 0) + 1
        blocks: list[dict[str, Any]] = []
        room = budget - 1  # keep one block for "… and N more"
        shown = 0
        severity: Severity | None = None
        for incident in sorted(dashboard.open, key=lambda i: i.severity.rank):  # stable
            heading = incident.severity != severity
            cost = 2 + (1 if heading else 0)
            if len(blocks) + cost > room:
                break
            if heading:
                severity = incident.severity
                text = self.renderer.text(
                    "home_severity.j2", severity=severity, count=counts[severity]
                )
                blocks.append(section(text, block_id=f"{HomeBlock.SEVERITY}_{severity.value}"))
            blocks.extend(self._incident(incident, prefix=HomeBlock.OPEN))
            shown += 1
        hidden = dashboard.open_total - shown
        if hidden > 0:
            more = self.renderer.text("home_more.j2", what="incidents", count=hidden)
            blocks.append(context(more, block_id=HomeBlock.OPEN_MORE))
        return blocks

    def _oncall(self, dashboard: Dashboard) -> list[dict[str, Any]]:
        teams = dashboard.oncall
        if not teams:
            return [section(self.renderer.oncall_now([]), block_id=f"{HomeBlock.ONCALL}_0")]
        blocks = [
            section(self.renderer.oncall_now([team]), block_id=f"{HomeBlock.ONCALL}_{n}")
            for n, team in enumerate(teams[:MAX_TEAMS])
        ]
        if len(teams) > MAX_TEAMS:
            more = self.renderer.text("home_more.j2", what="teams", count=len(teams) - MAX_TEAMS)
            blocks.append(context(more, block_id=HomeBlock.ONCALL_MORE))
        return blocks

    def _silences(self, dashboard: Dashboard) -> str:
        """Every current silence and who made it (at most MAX_SILENCES, then how many more)."""
        shown = dashboard.silences[:MAX_SILENCES]
        silences = SilenceRenderer(self.renderer)
        text = silences.home_lines(shown, now=dashboard.read_at)
        if len(dashboard.silences) > MAX_SILENCES:
            text += "\n" + str(silences.word("more", count=len(dashboard.silences) - MAX_SILENCES))
        return text

    def _week(self, week: WeekStats, open_total: int) -> str:
        return self.renderer.text(
            "home_week.j2",
            week=week,
            open_total=open_total,
            mtta_median=human_seconds(week.mtta_median),
            mtta_mean=human_seconds(week.mtta_mean),
            mttr_median=human_seconds(week.mttr_median),
            mttr_mean=human_seconds(week.mttr_mean),
        )

    # ---- one incident -------------------------------------------------------------------

    def _incident(
        self, incident: Incident, *, prefix: str, reasons: tuple[str, ...] = ()
    ) -> list[dict[str, Any]]:
        """Its summary line and its buttons: two blocks with ids unique to this incident."""
        text = self.renderer.text(
            "home_incident.j2",
            incident=incident,
            service_name=self.renderer.names.service(incident.service_id),
            reasons=list(reasons),
        )
        blocks = [section(text, block_id=f"{prefix}_{incident.id}")]
        buttons = self.buttons(incident)
        if buttons:
            blocks.append(
                {
                    "type": "actions",
                    "block_id": f"{prefix}_{incident.id}_actions",
                    "elements": buttons,
                }
            )
        return blocks

    def buttons(self, incident: Incident) -> list[dict[str, Any]]:
        """The incident message's buttons (Acknowledge, Resolve, Escalate as they apply)."""
        key = (incident.id, incident.status)
        found = self._buttons.get(key)
        if found is None:
            message = self.renderer.incident_message(incident)
            actions = [b for b in message.blocks if b.get("block_id") == Block.ACTIONS]
            found = list(actions[0]["elements"]) if actions else []
            if len(self._buttons) >= _BUTTON_CACHE:
                self._buttons.clear()
            self._buttons[key] = found
        return copy.deepcopy(found)


__all__ = ["HomeBlock", "HomeRenderer"]
