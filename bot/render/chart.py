"""The weekly incident chart: a PNG of incident counts and MTTA / MTTR medians per week.

Rendering uses matplotlib's object API (`Figure` + the Agg canvas), never pyplot, so there is
no global figure registry, no GUI backend and nothing to close: each call owns its figure, and
concurrent calls from different threads do not share state. Rendering is CPU work (tens to a
few hundred milliseconds); from async code call it off the event loop:

    png = await asyncio.to_thread(weekly_chart, points, title="Incidents per week")
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:  # matplotlib takes ~0.4 s to import: loaded when a chart is first drawn
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

WIDTH_PX, HEIGHT_PX, DPI = 1000, 500, 100
MAX_TITLE = 90
MAX_TICKS = 13

BAR_COLOR = "#9DC3E6"
MTTA_COLOR = "#009E73"  # Okabe-Ito green and vermillion: distinct for colour-blind readers
MTTR_COLOR = "#D55E00"
TEXT_COLOR = "#333333"


@dataclass(frozen=True, slots=True)
class WeekPoint:
    """One week of incident statistics; medians are in seconds, None when nothing to measure."""

    week_start: date  # Monday of the week
    incidents: int
    mtta_median_s: float | None
    mttr_median_s: float | None


def _weekly_series(points: Sequence[WeekPoint]) -> list[WeekPoint]:
    """Points sorted by week with the missing weeks in between filled (0 incidents, no medians).

    Raises:
        ValueError: two points for the same week.
    """
    by_week: dict[date, WeekPoint] = {}
    for point in points:
        monday = point.week_start - timedelta(days=point.week_start.weekday())
        if monday in by_week:
            raise ValueError(f"two points for the week of {monday.isoformat()}")
        by_week[monday] = replace(point, week_start=monday)
    if not by_week:
        return []
    first, last = min(by_week), max(by_week)
    series = []
    week = first
    while week <= last:
        series.append(by_week.get(week) or WeekPoint(week, 0, None, None))
        week += timedelta(days=7)
    return series


def _minutes(seconds: float | None) -> float:
    """Seconds as minutes; None, NaN and infinities become NaN, which matplotlib leaves as a gap."""
    return seconds / 60.0 if seconds is not None and math.isfinite(seconds) else math.nan


def _tick_label(day: date, previous: date | None) -> str:
    """'Nov 16'; the year goes below on the first tick and where the year changes."""
    label = f"{day:%b} {day.day}"
    if previous is None or previous.year != day.year:
        label += f"\n{day.year}"
    return label


def _title(title: str) -> str:
    title = " ".join(title.split())
    return title if len(title) <= MAX_TITLE else title[: MAX_TITLE - 1] + "…"


def weekly_chart(points: Sequence[WeekPoint], *, title: str) -> bytes:
    """PNG (1000×500 px) of the given weeks: bars for incident count, lines for MTTA and MTTR
    medians (minutes) on a second axis.

    Weeks are ordered by `week_start` (snapped to its Monday); weeks missing between the first
    and the last are drawn as 0 incidents with no medians. None medians leave gaps in the lines
    (a lone value shows as a marker). No points gives a chart saying "No incidents yet".
    `title` is drawn literally (no mathtext, so `$` is safe), whitespace-collapsed and cut at
    90 characters. CPU-bound: call it via `asyncio.to_thread` from async code.

    Raises:
        ValueError: two points for the same week.
    """
    series = _weekly_series(points)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI, facecolor="white")
    FigureCanvasAgg(fig)  # attach the Agg canvas explicitly: no backend selection, no pyplot
    fig.subplots_adjust(left=0.07, right=0.92, top=0.84, bottom=0.15)
    ax = fig.add_subplot()
    fig.suptitle(_title(title), x=0.07, ha="left", fontsize=15, color=TEXT_COLOR, parse_math=False)
    ax.spines["top"].set_visible(False)

    if not series:
        ax.set_axis_off()
        ax.text(
            0.5,
            0.5,
            "No incidents yet",
            transform=ax.transAxes,
            ha="center",
            va="center",
            fontsize=20,
            color="#888888",
        )
    else:
        _draw(fig, ax, series)

    buf = io.BytesIO()
    # no Software/date metadata: the same input gives the same bytes
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    fig.clear()
    return buf.getvalue()


def _draw(fig: Figure, ax: Axes, series: list[WeekPoint]) -> None:
    """Bars, the two median lines on a twin axis, week ticks and the legend."""
    from matplotlib.ticker import MaxNLocator

    n = len(series)
    xs = list(range(n))
    counts = [max(p.incidents, 0) for p in series]
    mtta = [_minutes(p.mtta_median_s) for p in series]
    mttr = [_minutes(p.mttr_median_s) for p in series]

    bars = ax.bar(xs, counts, width=0.7, color=BAR_COLOR, label="Incidents", zorder=2)
    if n <= 16:
        ax.bar_label(bars, labels=[str(c) if c else "" for c in counts], fontsize=9, padding=2)
    ax.set_ylabel("Incidents per week", fontsize=11, color=TEXT_COLOR)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=6))
    ax.set_ylim(0, max(max(counts), 1) * 1.15)
    ax.grid(axis="y", color="#E5E5E5", zorder=0)
    ax.set_axisbelow(True)
    half = max(n, 6) / 2  # a few weeks keep bars of a sensible width, centred
    ax.set_xlim((n - 1) / 2 - half - 0.1, (n - 1) / 2 + half + 0.1)

    step = max(1, math.ceil(n / MAX_TICKS))
    ticks = xs[::step]
    labels, previous = [], None
    for i in ticks:
        labels.append(_tick_label(series[i].week_start, previous))
        previous = series[i].week_start
    ax.set_xticks(ticks, labels, fontsize=9)
    ax.set_xlabel("Week starting", fontsize=10, color=TEXT_COLOR)
    ax.tick_params(axis="y", labelsize=9)

    ax2 = ax.twinx()
    size = 4 if n > 20 else 6
    (line_a,) = ax2.plot(
        xs, mtta, "o-", color=MTTA_COLOR, label="MTTA median (min)", markersize=size, linewidth=2
    )
    (line_r,) = ax2.plot(
        xs, mttr, "o-", color=MTTR_COLOR, label="MTTR median (min)", markersize=size, linewidth=2
    )
    known = [v for v in mtta + mttr if not math.isnan(v)]
    ax2.set_ylim(0, max(max(known, default=0.0), 1.0) * 1.15)
    ax2.yaxis.set_major_locator(MaxNLocator(nbins=6))
    ax2.set_ylabel("Median minutes", fontsize=11, color=TEXT_COLOR)
    ax2.tick_params(axis="y", labelsize=9)
    ax2.spines["top"].set_visible(False)

    fig.legend(
        handles=[bars, line_a, line_r],
        loc="upper left",
        bbox_to_anchor=(0.07, 0.93),
        ncols=3,
        frameon=False,
        fontsize=10,
    )


@dataclass(frozen=True, slots=True)
class LatencyPoint:
    """One probe run: when, how long (ms), and whether it succeeded."""

    at: datetime
    latency_ms: float
    ok: bool


def latency_chart(points: Sequence[LatencyPoint], *, title: str) -> bytes:
    """PNG (1000×500 px) of a probe's latency over time: a line of successful runs' latency
    (ms) and red ticks on the time axis at failed runs. No points gives a chart saying "No
    results yet". `title` is drawn literally and cut at 90 characters. CPU-bound: call it via
    `asyncio.to_thread` from async code."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI, facecolor="white")
    FigureCanvasAgg(fig)
    fig.subplots_adjust(left=0.08, right=0.97, top=0.84, bottom=0.15)
    ax = fig.add_subplot()
    fig.suptitle(_title(title), x=0.08, ha="left", fontsize=15, color=TEXT_COLOR, parse_math=False)
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)
    ordered = sorted(points, key=lambda p: p.at)
    if not ordered:
        ax.set_axis_off()
        ax.text(
            0.5,
            0.5,
            "No results yet",
            transform=ax.transAxes,
            ha="center",
            va="center",
            fontsize=20,
            color="#888888",
        )
    else:
        ok = [p for p in ordered if p.ok]
        failed = [p for p in ordered if not p.ok]
        ax.plot(
            cast(Any, [p.at for p in ok]),
            [p.latency_ms for p in ok],
            color=MTTA_COLOR,
            linewidth=1.2,
            label="latency (ms)",
        )
        if failed:  # at the bottom: a timeout's latency would flatten the line
            ax.scatter(
                cast(Any, [p.at for p in failed]),
                [0.0] * len(failed),
                color=MTTR_COLOR,
                marker="|",
                s=200,
                zorder=3,
                clip_on=False,
                label="failed check",
            )
        locator = AutoDateLocator()  # type: ignore[no-untyped-call]
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
        ax.set_ylabel("ms (UTC times)", color=TEXT_COLOR)
        ax.set_ylim(bottom=0)
        ax.grid(axis="y", color="#eeeeee")
        ax.legend(loc="upper left", frameon=False)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    fig.clear()
    return buf.getvalue()
