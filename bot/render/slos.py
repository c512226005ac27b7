"""Slack text for SLOs, in one wording everywhere: `/incident slos`, the App Home tab's SLOs
section and the weekly report's.

What is shown arrives as domain values (`SloView`: an SLO as of now; `SloPeriod`: an SLO over
a past period); ids are escaped here, once.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.domain.burn import SloPeriod, SloView
from bot.render.blocks import escape_mrkdwn

MAX_LISTED = 40  # a slash command answer stays well under Slack's 4,000 characters
MAX_HOME = 25  # SLOs on the Home tab; the rest are counted
MAX_REPORT = 30  # SLOs in the weekly report; the rest are counted
BURNING = ":fire:"
HEALTHY = ":large_green_circle:"


def window_text(seconds: float) -> str:
    """An SLO window as configured: `30d`, `12h`, `90m`."""
    whole = int(seconds)
    if whole % 86400 == 0:
        return f"{whole // 86400}d"
    return f"{whole // 3600}h" if whole % 3600 == 0 else f"{whole // 60}m"


def availability_text(value: float | None) -> str:
    """A share as a percentage with three decimals (99.9 % objectives need them); – unknown."""
    return "–" if value is None else f"{value * 100:.3f} %"


def budget_text(value: float | None) -> str:
    """The error budget left, in whole percent (negative: overspent); – unknown."""
    return "–" if value is None else f"{value * 100:.0f} %"


def objective_text(objective: float, window_seconds: float) -> str:
    """`99.9 % over 30d`."""
    return f"{objective:g} % over {window_text(window_seconds)}"


def _fit(head: Sequence[str], lines: Sequence[str], total: int, more: str, *, budget: int) -> str:
    """`head`, then as many of `lines` (the first of `total` items) as fit in `budget`
    characters, then `more` (with `{count}`: the items left out) when any are."""
    for shown in range(len(lines), -1, -1):
        parts = [*head, *lines[:shown]]
        if total > shown:
            parts.append(more.format(count=total - shown))
        text = "\n".join(parts)
        if len(text) <= budget or shown == 0:
            return text
    raise AssertionError("unreachable")


def _rates(view: SloView, windows: tuple[str, str], labels: tuple[str, str]) -> str:
    return " · ".join(
        f"{view.burn_rates.get(w, 0.0):.1f}× ({label})"
        for w, label in zip(windows, labels, strict=True)
    )


def slo_list(views: Sequence[SloView]) -> str:
    """`/incident slos`: each SLO over an alert source: objective, availability and budget
    left over its window, and the burn rates over 1 h and 5 min."""
    if not views:
        return "No SLOs over alert sources are configured (see `slos` in the configuration)."
    lines = [f"*SLOs* ({len(views)})"]
    for v in views[:MAX_LISTED]:
        rates = "burn " + _rates(v, ("1h", "5m"), ("1 h", "5 min"))
        fire = f" · {BURNING} burning" if v.burning else ""
        lines.append(
            f"*{escape_mrkdwn(v.id)}* {objective_text(v.objective, v.window_seconds)} · "
            f"availability {availability_text(v.availability)} · "
            f"budget left {budget_text(v.budget_left)} · {rates}{fire}"
        )
    if len(views) > MAX_LISTED:
        lines.append(f"… and {len(views) - MAX_LISTED} more (`GET /api/v1/slos` lists all)")
    return "\n".join(lines)


def home_order(views: Sequence[SloView]) -> list[SloView]:
    """Burning SLOs first, then by budget left (least first; not yet evaluated last), by id."""
    return sorted(
        views,
        key=lambda v: (
            not v.burning,
            v.budget_left is None,
            v.budget_left if v.budget_left is not None else 0.0,
            v.id,
        ),
    )


def home_title(views: Sequence[SloView]) -> str:
    """The Home tab's section header: `SLOs: 1 burning of 3`."""
    return f"SLOs: {sum(1 for v in views if v.burning)} burning of {len(views)}"


def home_lines(views: Sequence[SloView], *, budget: int = 3000) -> str:
    """The Home tab's SLO lines: objective and window, availability and budget left over the
    window; a burning SLO says so with its burn rates over 1 h and 6 h. At most MAX_HOME, in
    at most `budget` characters; the rest are counted."""
    ordered = home_order(views)
    lines = []
    for v in ordered[:MAX_HOME]:
        if v.burning:
            state = f" · {BURNING} *burning* " + _rates(v, ("1h", "6h"), ("1 h", "6 h"))
        else:
            state = ""
        icon = BURNING if v.burning else HEALTHY
        lines.append(
            f"{icon} *{escape_mrkdwn(v.id)}* {objective_text(v.objective, v.window_seconds)} · "
            f"availability {availability_text(v.availability)} · "
            f"budget left {budget_text(v.budget_left)}{state}"
        )
    return _fit((), lines, len(ordered), "… and {count} more: `/incident slos`", budget=budget)


def _burns(count: int) -> str:
    if count == 0:
        return "no burn alerts"
    return f"{count} burn alert{'s' if count != 1 else ''}"


def report_lines(periods: Sequence[SloPeriod], *, budget: int = 2000) -> str:
    """The weekly report's SLO section: each SLO's availability over the week, the budget
    left over its window at the end of the week, and the burn alerts of the week (at most
    MAX_REPORT, in at most `budget` characters; the rest are counted)."""
    lines = []
    for p in periods[:MAX_REPORT]:
        kind = " (probe)" if p.probe else ""
        lines.append(
            f"• *{escape_mrkdwn(p.id)}*{kind} {objective_text(p.objective, p.window_seconds)}: "
            f"{availability_text(p.availability)} this week · budget left "
            f"{budget_text(p.budget_left)} at the end of the week · {_burns(p.burn_alerts)}"
        )
    more = "… and {count} more"
    return _fit(("*SLOs*",), lines, len(periods), more, budget=budget)


__all__ = [
    "MAX_HOME",
    "MAX_LISTED",
    "MAX_REPORT",
    "availability_text",
    "budget_text",
    "home_lines",
    "home_order",
    "home_title",
    "objective_text",
    "report_lines",
    "slo_list",
    "window_text",
]
