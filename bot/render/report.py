"""Rendering of `/incident stats` and the weekly report, through the one Jinja environment.

`ReportRenderer` wraps the app's `Renderer` (same templates, same mrkdwn escaping) and adds
the filters these messages need. Every list is cut to fit its section ("… and N more"), each
section under Slack's 3000 characters and the message well under the ~13,000 characters of
block text Slack accepts, so a report never fails with `invalid_blocks`.
`to_terminal()` turns a message into plain text for `pulseops report weekly --print`.
Reports and statistics arrive as whatever fits the small protocols below (what these messages
read of them), so rendering imports nothing from the services.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from markupsafe import Markup

from bot.domain.burn import SloPeriod
from bot.domain.durations import human_seconds
from bot.render.blocks import MAX_CONTEXT_TEXT, MAX_TEXT, clip, escape_mrkdwn, fit_blocks, section
from bot.render.renderer import Message, Renderer
from bot.render.slos import report_lines as slo_report_lines


class FiguresView(Protocol):
    """What these messages read of a period's figures (templates read the rest)."""

    @property
    def opened(self) -> int: ...


class StatsView(Protocol):
    """What these messages read of a period's statistics (templates read the rest)."""

    @property
    def team_id(self) -> str | None: ...

    @property
    def group_by(self) -> str | None: ...

    @property
    def overall(self) -> FiguresView: ...

    @property
    def groups(self) -> Sequence[object]: ...

    @property
    def noisiest(self) -> Sequence[object]: ...

    @property
    def noisiest_total(self) -> int: ...


class ScopeView(Protocol):
    """What the weekly report reads of its scope (one team's, or everyone's)."""

    @property
    def name(self) -> str: ...

    @property
    def time_zone(self) -> str: ...

    @property
    def team(self) -> object | None: ...


class ReportView(Protocol):
    """What the weekly report message shows."""

    @property
    def probes(self) -> Sequence[tuple[str, float | None]]: ...  # (probe id, uptime)

    @property
    def slos(self) -> Sequence[SloPeriod]: ...  # each SLO over the period

    @property
    def scope(self) -> ScopeView: ...

    @property
    def period(self) -> object: ...

    @property
    def stats(self) -> StatsView: ...

    @property
    def previous(self) -> object | None: ...

    @property
    def slowest(self) -> Sequence[object]: ...

    @property
    def oncall(self) -> Sequence[object]: ...

    @property
    def next_at(self) -> datetime | None: ...

    @property
    def late(self) -> bool: ...

    @property
    def missed(self) -> int: ...


SECTION_BUDGET = 2000
"""Characters one list section may take: five of them stay under Slack's message total."""

MESSAGE_BUDGET = 11_000
"""Characters of block text the whole report may take (Slack refuses ~13,000); the SLO
section takes what the sections before it left, up to SECTION_BUDGET."""
FOOTER_ROOM = 500  # kept for the footer

MAX_GROUPS = 10  # groups listed in a breakdown
MAX_SCHEDULES = 10  # schedules listed under "On call"


MAX_PROBES = 30  # probes listed with their uptime; the rest are counted


class ReportBlock(StrEnum):
    """block_ids of the weekly report (unique within the message)."""

    SUMMARY = "report_summary"
    BREAKDOWN = "report_breakdown"
    SLOWEST = "report_slowest"
    NOISIEST = "report_noisiest"
    ONCALL = "report_oncall"
    PROBES = "report_probes"
    SLOS = "report_slos"
    FOOTER = "report_footer"


def _change(current: int, previous: int | None) -> str:
    if previous is None:
        return ""
    delta = current - previous
    if delta == 0:
        return " (=)"
    return f" ({'↑' if delta > 0 else '↓'}{abs(delta)})"


def _duration_change(current: float | None, previous: float | None) -> str:
    if current is None or previous is None:
        return ""
    delta = current - previous
    if abs(delta) < 1:
        return " (=)"
    return f" ({'↑' if delta > 0 else '↓'} {human_seconds(abs(delta))})"


def _channel_link(channel_id: str, name: str | None = None) -> Markup:
    if name:
        return Markup(f"<#{escape_mrkdwn(channel_id)}|{escape_mrkdwn(name)}>")
    return Markup(f"<#{escape_mrkdwn(channel_id)}>")


def _local(instant: datetime, zone: str) -> str:
    return instant.astimezone(ZoneInfo(zone)).strftime("%a %Y-%m-%d %H:%M")


def _utc(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


class ReportRenderer:
    """Renders statistics and reports with the app renderer's environment."""

    def __init__(self, renderer: Renderer) -> None:
        self.renderer = renderer
        filters = {
            "human_seconds": human_seconds,
            "delta": _change,
            "delta_seconds": _duration_change,
            "channel_link": _channel_link,
            "local_time": _local,
            "utc_time": _utc,
        }
        for name, function in filters.items():
            if renderer.env.filters.setdefault(name, function) is not function:
                raise RuntimeError(f"the Jinja filter {name!r} is defined twice")

    # ---- /incident stats ----------------------------------------------------------------

    def stats(self, stats: StatsView, *, label: str, scope_name: str) -> str:
        """The ephemeral answer to `/incident stats`: figures, a breakdown, noisy alerts."""
        for shown in range(min(len(stats.groups), MAX_GROUPS), -1, -1):
            text = self.renderer.text(
                "stats.j2",
                s=stats,
                label=label,
                scope_name=scope_name,
                team_id=stats.team_id,
                groups=stats.groups[:shown],
                more_groups=len(stats.groups) - shown,
            )
            if len(text) < MAX_TEXT or shown == 0:
                return text
        raise AssertionError("unreachable")

    # ---- the weekly report --------------------------------------------------------------

    def weekly_report(self, report: ReportView) -> Message:
        """The report message: summary, breakdown, slowest, noisiest, on call, probe uptime,
        SLOs, footer."""
        scope, stats = report.scope, report.stats
        figures, previous = stats.overall, report.previous
        zone = scope.time_zone
        blocks: list[dict[str, Any]] = [
            section(
                self.renderer.text(
                    "report_summary.j2",
                    scope_name=scope.name,
                    period=report.period,
                    zone=zone,
                    late=report.late,
                    missed=report.missed,
                    f=figures,
                    prev=previous,
                ),
                block_id=ReportBlock.SUMMARY,
            )
        ]
        if stats.groups:
            blocks.append(self._breakdown(stats.groups, group_by=stats.group_by or "service"))
        if report.slowest:
            blocks.append(
                self._list(
                    "report_slowest.j2",
                    "incidents",
                    report.slowest,
                    figures.opened,
                    ReportBlock.SLOWEST,
                )
            )
        if stats.noisiest:
            blocks.append(
                self._list(
                    "report_noisiest.j2",
                    "alerts",
                    stats.noisiest,
                    stats.noisiest_total,
                    ReportBlock.NOISIEST,
                )
            )
        if report.oncall:
            blocks.append(
                self._list(
                    "report_oncall.j2",
                    "schedules",
                    report.oncall[:MAX_SCHEDULES],
                    len(report.oncall),
                    ReportBlock.ONCALL,
                    show_team=scope.team is None,
                )
            )
        probes = report.probes
        if probes:
            shown = ", ".join(
                f"{escape_mrkdwn(pid)} {'–' if up is None else f'{up * 100:.2f} %'}"
                for pid, up in probes[:MAX_PROBES]
            )
            more = f" … and {len(probes) - MAX_PROBES} more" if len(probes) > MAX_PROBES else ""
            blocks.append(
                section(clip(f"*Probe uptime:* {shown}{more}", 3000), block_id=ReportBlock.PROBES)
            )
        if report.slos:
            used = sum(len(b["text"]["text"]) for b in blocks if b.get("text"))
            room = min(SECTION_BUDGET, MESSAGE_BUDGET - FOOTER_ROOM - used)
            blocks.append(
                section(slo_report_lines(report.slos, budget=room), block_id=ReportBlock.SLOS)
            )
        footer = self.renderer.text("report_footer.j2", next_at=report.next_at)
        blocks.append(
            {
                "type": "context",
                "block_id": ReportBlock.FOOTER,
                "elements": [{"type": "mrkdwn", "text": clip(footer, MAX_CONTEXT_TEXT)}],
            }
        )
        text = self.renderer.text(
            "report_text.j2", scope_name=scope.name, f=figures, prev=previous, late=report.late
        )
        return Message(text=text, blocks=fit_blocks(blocks))

    def _breakdown(self, groups: Sequence[object], *, group_by: str) -> dict[str, Any]:
        return self._list(
            "report_breakdown.j2",
            "groups",
            groups[:MAX_GROUPS],
            len(groups),
            ReportBlock.BREAKDOWN,
            group_by=group_by,
        )

    def _list(
        self,
        template: str,
        name: str,
        items: Sequence[Any],
        total: int,
        block_id: str,
        **context: Any,
    ) -> dict[str, Any]:
        """A section listing as many of `items` as fit the budget, then "… and N more"."""
        for shown in range(len(items), -1, -1):
            text = self.renderer.text(
                template, **{name: items[:shown]}, more=max(total - shown, 0), **context
            )
            if len(text) <= SECTION_BUDGET:
                break
        return section(text, block_id=block_id)


# --------------------------------------------------------------------------- the terminal

_LINK = re.compile(r"<([^<>|]*)(?:\|([^<>]*))?>")
_EMOJI = re.compile(r":(bar_chart|warning|tada):\s?")
_BOLD = re.compile(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_])_([^_\n]+)_(?![\w_])")
_CODE = re.compile(r"`([^`\n]+)`")


MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^<>]*)?>")
"""A user mention in mrkdwn; group 1 is the user id."""


def _plain_link(match: re.Match[str], names: Mapping[str, str] | None = None) -> str:
    target, label = match[1], match[2]
    if target.startswith("#"):
        return f"#{label or target[1:]}"
    if target.startswith("@"):
        return f"@{(names or {}).get(target[1:]) or label or target[1:]}"
    if target.startswith("!subteam^"):
        return "@" + target.removeprefix("!subteam^")
    if target.startswith("!date^"):
        return label or target
    if target.startswith("!"):
        return "@" + target[1:]
    return f"{label} ({target})" if label else target


def mrkdwn_to_text(text: str, names: Mapping[str, str] | None = None) -> str:
    """Slack mrkdwn as plain readable text: links, mentions (by `names`, user id → name, where
    known) and dates spelled out, unescaped."""
    text = _LINK.sub(lambda match: _plain_link(match, names), text)
    text = _EMOJI.sub("", text)
    text = _BOLD.sub(r"\1", text)
    text = _ITALIC.sub(r"\1", text)
    text = _CODE.sub(r"\1", text)
    return html.unescape(text)


def mentioned_users(message: Message) -> list[str]:
    """The user ids a rendered message mentions, in order, each once."""
    found: dict[str, None] = {}
    for block in message.blocks:
        texts = [block.get("text", {}).get("text", "")] if block.get("text") else []
        texts += [e.get("text", "") for e in block.get("elements", []) if isinstance(e, dict)]
        for text in texts:
            found.update(dict.fromkeys(MENTION.findall(str(text))))
    return list(found)


def to_terminal(message: Message, names: Mapping[str, str] | None = None) -> str:
    """A rendered message as plain text, one paragraph per block; people by `names`."""
    parts: list[str] = []
    for block in message.blocks:
        if block.get("type") == "section" and block.get("text"):
            parts.append(mrkdwn_to_text(block["text"]["text"], names))
        elif block.get("type") == "context":
            parts.extend(
                mrkdwn_to_text(e.get("text", ""), names) for e in block.get("elements", [])
            )
    return "\n\n".join(parts) + "\n"


def period_label(since: datetime, until: datetime) -> str:
    """`7d`, `30d`, `12h`: how `/incident stats` names the period it shows."""
    seconds = int((until - since) / timedelta(seconds=1))
    if seconds % 86400 == 0:
        return f"{seconds // 86400}d"
    return f"{seconds // 3600}h" if seconds % 3600 == 0 else f"{seconds}s"


__all__ = [
    "ReportBlock",
    "ReportRenderer",
    "mentioned_users",
    "mrkdwn_to_text",
    "period_label",
    "to_terminal",
]
