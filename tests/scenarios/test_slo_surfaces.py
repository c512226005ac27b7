"""SLOs over alert sources on the App Home tab and in the weekly report, through the running
app: alerts posted to the webhook are the bad time, the clock is stepped and the SLOs
evaluated as in tests/scenarios/test_slos.py; the Home tab is read from the emulator's
recorded views.publish and the report from the message posted in Slack."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.clock import ManualClock
from bot.config import PulseOpsConfig, parse_config
from bot.domain.burn import SloPeriod, SloView
from bot.render.home import HomeBlock
from bot.render.slos import home_lines, report_lines
from bot.sandbox.emulator import rules
from tests.conftest import Harness
from tests.helpers import ONCALL_YAML, WEDNESDAY
from tests.scenarios.test_home import block, open_home, text
from tests.scenarios.test_slos import SLOS_YAML, alert, step

BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)

ALICE, BOB = "U0ALICE01", "U0BOB0001"
WINDOW = 30 * 86400.0  # the SLO's window, in seconds
# the payments report (Mondays 09:00 UTC, the default schedule) covering WEDNESDAY
WEEK_START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
WEEK_END = WEEK_START + timedelta(days=7)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(WEDNESDAY)  # U0BOB0001 is on call for payments


@pytest.fixture
def config() -> PulseOpsConfig:
    text = ONCALL_YAML.format(first="5m", second="10m") + SLOS_YAML
    return parse_config(text, source="slos.yml", environ={})


def fresh_home(harness: Harness) -> None:
    """Test-sized Home timings: no debounce, no throttle, SLOs read on every refresh."""
    home = harness.deps.home
    home.debounce = 0.05
    home.min_interval = 0.0
    home.stats_ttl = 0.0
    home.followup = None


async def burn_for_a_minute(harness: Harness) -> None:
    """The source's alert fires for 60 s, evaluated every 30 s: 16.7× over 1 h (SEV2)."""
    await alert(harness, "firing")
    await step(harness, 30)
    await step(harness, 30)
    await alert(harness, "resolved")


@BOTH
async def test_home_shows_each_slo_and_flags_a_burn_with_its_1h_and_6h_rates(
    harness: Harness,
) -> None:
    fresh_home(harness)
    await step(harness, 0)
    view = await open_home(harness, BOB)
    assert not rules.validate_view(view, allowed_types=frozenset({"home"}))
    assert block(view, HomeBlock.SLOS_TITLE)["text"]["text"] == "SLOs: 0 burning of 1"
    assert text(view, HomeBlock.SLOS) == (
        ":large_green_circle: *checkout* 99.9 % over 30d · availability 100.000 % · "
        "budget left 100 %"
    )
    # the SLOs come after the probes' place, at the end of the tab
    ids = [b.get("block_id") for b in view["blocks"]]
    assert ids.index(HomeBlock.SLOS) == len(ids) - 1

    await burn_for_a_minute(harness)
    view = await open_home(harness, ALICE)
    assert not rules.validate_view(view, allowed_types=frozenset({"home"}))
    assert block(view, HomeBlock.SLOS_TITLE)["text"]["text"] == "SLOs: 1 burning of 1"
    spent = 60 / WINDOW
    assert text(view, HomeBlock.SLOS) == (
        f":fire: *checkout* 99.9 % over 30d · availability {(1 - spent) * 100:.3f} % · "
        f"budget left {(1 - spent / 0.001) * 100:.0f} % · :fire: *burning* "
        f"{60 / 3600 / 0.001:.1f}× (1 h) · {60 / 21600 / 0.001:.1f}× (6 h)"
    )
    assert "99.998 %" in text(view, HomeBlock.SLOS) and "16.7× (1 h) · 2.8× (6 h)" in text(
        view, HomeBlock.SLOS
    )
    # the same figures as the API's
    status, body = await harness.get("/api/v1/slos")
    assert status == 200 and body["slos"][0]["burning"] is True

    # the burn stops (the bad minute leaves the 5-minute window, then the 30-minute one)
    for _ in range(11):
        await step(harness, 30)
    view = await open_home(harness, ALICE)
    assert block(view, HomeBlock.SLOS_TITLE)["text"]["text"] == "SLOs: 0 burning of 1"
    assert text(view, HomeBlock.SLOS).startswith(":large_green_circle: *checkout* ")
    assert "burning" not in text(view, HomeBlock.SLOS)


def report_message(harness: Harness, channel: str) -> dict[str, Any]:
    (message,) = [m for m in harness.emu.messages(channel) if m["text"].startswith("Weekly report")]
    return message


def slo_block(message: dict[str, Any]) -> str | None:
    found = [b for b in message["blocks"] if b.get("block_id") == "report_slos"]
    return str(found[0]["text"]["text"]) if found else None


@BOTH
async def test_the_weekly_report_shows_the_weeks_availability_budget_and_burns(
    harness: Harness,
) -> None:
    clock = harness.clock
    assert isinstance(clock, ManualClock)
    # before the week: 120 s of firing spends budget but is not this week's availability
    clock.set(WEEK_START - timedelta(days=1))
    await alert(harness, "firing")
    clock.advance(120)
    await alert(harness, "resolved")
    # in the week: the first evaluation reads the history, then a minute's burn pages
    clock.set(WEDNESDAY)
    await step(harness, 0)
    await burn_for_a_minute(harness)
    for _ in range(11):  # the burn stops: its alert resolves
        await step(harness, 30)
    # the week's last 30 s: firing, never evaluated before the report (read from the history)
    clock.set(WEEK_END - timedelta(seconds=30))
    await alert(harness, "firing")
    clock.set(WEEK_END + timedelta(seconds=5))
    assert await harness.deps.reports.sweep() == 3  # payments, search, all
    await harness.settle()

    week_bad, window_bad = 60 + 30, 120 + 60 + 30
    availability = (1 - week_bad / (7 * 86400)) * 100
    budget = (1 - (window_bad / WINDOW) / 0.001) * 100
    expected = (
        f"*SLOs*\n• *checkout* 99.9 % over 30d: {availability:.3f} % this week · "
        f"budget left {budget:.0f} % at the end of the week · 1 burn alert"
    )
    assert expected == (
        "*SLOs*\n• *checkout* 99.9 % over 30d: 99.985 % this week · "
        "budget left 92 % at the end of the week · 1 burn alert"
    )
    payments = report_message(harness, "C0PAYMENTS")
    assert slo_block(payments) == expected
    overall = report_message(harness, "C0INCIDENT")
    assert slo_block(overall) == expected
    # the SLO's service is payments': the search team's report has no SLO section
    assert slo_block(report_message(harness, "C0SEARCH1")) is None
    # the section comes last, before the footer
    ids = [b["block_id"] for b in payments["blocks"]]
    assert ids[-2:] == ["report_slos", "report_footer"]


@BOTH
async def test_a_late_report_counts_budget_spent_before_the_slos_current_window(
    harness: Harness,
) -> None:
    clock = harness.clock
    assert isinstance(clock, ManualClock)
    # 120 s of firing just inside the 30 days before the week's end
    clock.set(WEEK_END - timedelta(days=30) + timedelta(hours=1))
    await alert(harness, "firing")
    clock.advance(120)
    await alert(harness, "resolved")
    clock.set(WEDNESDAY)
    await step(harness, 0)  # the first evaluation stores it as bad time
    assert await harness.deps.reports.sweep() == 0  # the scopes seen (their last week: silent)
    # PulseOps is down over the report's time; back two days later, the SLO is evaluated
    # first (its window has moved past that bad time, which is forgotten), then the report
    clock.set(WEEK_END + timedelta(days=2))
    await step(harness, 0)
    status, body = await harness.get("/api/v1/slos")
    assert status == 200 and body["slos"][0]["budget_left"] == 1.0  # as of now: untouched
    assert await harness.deps.reports.sweep() == 3
    await harness.settle()
    payments = report_message(harness, "C0PAYMENTS")
    assert ":warning: Late" in str(payments["blocks"])
    budget = (1 - (120 / WINDOW) / 0.001) * 100
    assert slo_block(payments) == (
        "*SLOs*\n• *checkout* 99.9 % over 30d: 100.000 % this week · "
        f"budget left {budget:.0f} % at the end of the week · no burn alerts"
    )
    assert f"{budget:.0f}" == "95"


def view(n: int, *, burning: bool = False, budget: float | None = 1.0) -> SloView:
    return SloView(
        id=f"slo-{n:03d}-" + "x" * 60,
        integration="prometheus",
        matchers=(),
        service=None,
        objective=99.9,
        window_seconds=WINDOW,
        evaluated_at=WEDNESDAY,
        bad_seconds=0.0,
        availability=1.0,
        budget_left=budget,
        burn_rates={"1h": 20.0, "6h": 3.0, "5m": 0.0, "30m": 0.0},
        burning=burning,
    )


def test_many_slos_fit_slacks_limits_burning_first_the_rest_counted() -> None:
    views = [view(n, budget=1.0 - n / 100) for n in range(60)] + [view(99, burning=True)]
    lines = home_lines(views, budget=3000)
    assert len(lines) <= 3000
    shown = lines.splitlines()
    assert (
        shown[0].startswith(":fire: *slo-099-")
        and "*burning* 20.0× (1 h) · 3.0× (6 h)" in (shown[0])
    )
    assert shown[1].startswith(":large_green_circle: *slo-059-")  # the least budget left next
    hidden = len(views) - (len(shown) - 1)
    assert shown[-1] == f"… and {hidden} more: `/incident slos`" and hidden > 36
    periods = [
        SloPeriod(
            id=f"slo-{n:03d}-" + "x" * 60,
            probe=n % 2 == 1,
            objective=99.9,
            window_seconds=WINDOW,
            service=None,
            availability=0.9995,
            budget_left=0.5,
            burn_alerts=n % 3,
        )
        for n in range(60)
    ]
    section = report_lines(periods, budget=2000)
    assert len(section) <= 2000
    rows = section.splitlines()
    assert rows[0] == "*SLOs*" and rows[-1] == f"… and {60 - (len(rows) - 2)} more"
    assert (
        rows[2].startswith("• *slo-001-")
        and "(probe) 99.9 % over 30d: 99.950 % this week" in (rows[2])
    )
    assert rows[2].endswith("budget left 50 % at the end of the week · 1 burn alert")
    assert rows[1].endswith("· no burn alerts") and rows[3].endswith("· 2 burn alerts")
    # ids are checked by the configuration; the wording escapes them all the same
    evil = replace(view(1, burning=True), id="<!channel> & co")
    assert "*&lt;!channel&gt; &amp; co*" in home_lines([evil])
    assert "<!channel>" not in report_lines([replace(periods[0], id="<!channel>")])
