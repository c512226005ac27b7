"""Slack text for probes: `/incident probes` (all) and `/incident probe <id>` (one). SLOs over
alert sources (`/incident slos`) are worded in `bot.render.slos`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bot.domain.probes import ProbeView
from bot.render.blocks import escape_mrkdwn

MAX_LISTED = 40  # a slash command answer stays well under Slack's 4,000 characters
ICONS = {"up": ":large_green_circle:", "down": ":red_circle:", "unknown": ":white_circle:"}


def _share(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.2f} %"


def _latency(value: tuple[float, float] | None) -> str:
    return "–" if value is None else f"p50 {value[0]:.0f} ms · p95 {value[1]:.0f} ms"


def _line(view: ProbeView, latency: tuple[float, float] | None) -> str:
    flags = f" · anomaly: {', '.join(view.anomalies)}" if view.anomalies else ""
    if view.budget_left is not None:
        flags += f" · budget left {view.budget_left * 100:.0f} %"
    if view.burning:
        flags += " · :fire: burning"
    return (
        f"{ICONS.get(view.status, '')} *{escape_mrkdwn(view.id)}* {view.status} · "
        f"uptime 24h {_share(view.uptime_24h.ratio)} · 7d {_share(view.uptime_7d.ratio)} · "
        f"{_latency(latency)}{flags}"
    )


def probe_list(
    views: Sequence[ProbeView], latencies: Mapping[str, tuple[float, float] | None]
) -> str:
    """Each probe's state, uptime over 24 h and 7 days, and p50/p95 latency over 24 h."""
    if not views:
        return "No probes are configured (see `probes` in the configuration)."
    lines = [f"*Probes* ({len(views)})"]
    lines += [_line(v, latencies.get(v.id)) for v in views[:MAX_LISTED]]
    if len(views) > MAX_LISTED:
        lines.append(f"… and {len(views) - MAX_LISTED} more (`GET /api/v1/probes` lists all)")
    lines.append("One probe with its latency chart: `/incident probe <id>`")
    return "\n".join(lines)


def probe_detail(view: ProbeView, latency: tuple[float, float] | None) -> str:
    """One probe: what it checks, its state and last result; the chart follows as a file."""
    p = view
    last = "never run"
    if view.last_run_at is not None:
        outcome = "ok" if view.last_ok else escape_mrkdwn(view.last_error or "failed")
        took = f"{view.last_latency_ms:.0f} ms" if view.last_latency_ms is not None else "–"
        last = f"{view.last_run_at:%Y-%m-%d %H:%M:%S} UTC: {outcome} ({took})"
    lines = [
        _line(view, latency),
        f"Checks `{escape_mrkdwn(p.target)}` every {p.interval_seconds:g}s "
        f"for {escape_mrkdwn(p.service)}; {p.failures_to_trigger} failures in a row open "
        "an incident.",
        f"Last run: {last}",
    ]
    if view.cert_days is not None:
        lines.append(f"TLS certificate expires in {view.cert_days} days")
    lines.append("The latency chart of the last 24 hours follows in this channel.")
    return "\n".join(lines)
