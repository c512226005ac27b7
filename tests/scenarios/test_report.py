"""The weekly report through the running app: contents, Slack limits, exactly once, late, CLI."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.cli import _report_weekly
from bot.clock import ManualClock
from bot.config import PulseOpsConfig, parse_config
from bot.config.models import parse_cron
from bot.errors import ConfigError
from bot.render import MAX_BLOCKS, MAX_SECTION_TEXT
from bot.services.report import latest_fire, period_at
from store.models import OutboxRow, ReportRow
from tests.conftest import CONFIG_YAML, Harness
from tests.helpers import PAYMENTS_WEEKLY, fire_named

BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
ROOT = Path(__file__).resolve().parents[2]
ALICE, BOB = "U0ALICE01", "U0BOB0001"

# Payments and the overall report: Mondays 09:00 Berlin (08:00 UTC in winter). Search has its
# own schedule: Mondays 08:00 New York (13:00 UTC).
REPORT_YAML = (
    CONFIG_YAML.replace(
        '    members: ["U0CAROL01"]\n',
        '    members: ["U0CAROL01"]\n'
        '    report_cron: "0 8 * * 1"\n'
        "    report_time_zone: America/New_York\n",
    )
    + PAYMENTS_WEEKLY
    + """reports:
  cron: "0 9 * * 1"
  time_zone: Europe/Berlin
"""
)

MONDAY = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # 09:00 in Berlin: the report is due
PERIOD_START = MONDAY - timedelta(days=7)
WEDNESDAY = PERIOD_START + timedelta(days=2, hours=2)  # in the reported week
SEARCH_DUE = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)  # 08:00 in New York
EVIL = "<!channel> db <down> & out"


def report_config(yaml: str = REPORT_YAML) -> PulseOpsConfig:
    return parse_config(yaml, source="report.yml", environ={})


@pytest.fixture
def config() -> PulseOpsConfig:
    return report_config()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(WEDNESDAY)


def text_of(message: dict[str, Any]) -> str:
    parts = [message.get("text") or ""]
    for block in message.get("blocks") or []:
        if block.get("text"):
            parts.append(block["text"]["text"])
        for element in block.get("elements") or []:
            if element.get("text"):
                parts.append(element["text"])
    return "\n".join(parts)


def reports_in(harness: Harness, channel: str) -> list[dict[str, Any]]:
    return [m for m in harness.emu.messages(channel) if m["text"].startswith("Weekly report")]


async def command(harness: Harness, text: str, *, user: str = ALICE) -> None:
    result = await harness.emu.command(
        user=user, channel="C0INCIDENT", command="/incident", text=text
    )
    assert result["status"] == 200 and ":warning:" not in str(result["body"]), result


async def at(harness: Harness, instant: datetime) -> None:
    assert isinstance(harness.clock, ManualClock)
    harness.clock.set(instant)


async def seed_weeks(harness: Harness) -> dict[str, int]:
    """One payments incident the week before (acknowledged after 10 minutes); in the reported
    week X (acknowledged after 60 s, resolved after an hour), Y (acknowledged after 120 s,
    still open), Z (resolved by its monitor after 30 minutes), and one search incident."""
    await at(harness, PERIOD_START - timedelta(days=5))
    before = await fire_named(harness, "LastWeek")
    await at(harness, PERIOD_START - timedelta(days=5) + timedelta(minutes=10))
    await command(harness, f"ack {before}")
    await at(harness, WEDNESDAY)
    ids = {
        "X": await fire_named(harness, "DbDown", summary=EVIL),
        "Y": await fire_named(harness, "Latency"),
        "Z": await fire_named(harness, "Flapping"),
    }
    for _ in range(4):
        await fire_named(harness, "Flapping")
    status, body = await harness.post_alert(
        {"title": "Search slow", "dedup_key": "search-slow"}, integration="generic"
    )
    assert status == 202
    ids["S"] = int(body["results"][0]["incident_id"])
    await at(harness, WEDNESDAY + timedelta(seconds=60))
    await command(harness, f"ack {ids['X']}")
    await at(harness, WEDNESDAY + timedelta(seconds=120))
    await command(harness, f"ack {ids['Y']}", user=BOB)
    await at(harness, WEDNESDAY + timedelta(minutes=30))
    await fire_named(harness, "Flapping", status="resolved")
    await at(harness, WEDNESDAY + timedelta(hours=1))
    await command(harness, f"resolve {ids['X']}")
    await harness.settle()
    return ids


async def report_rows(harness: Harness) -> list[ReportRow]:
    async with harness.deps.db.read() as session:
        rows = await session.scalars(
            select(ReportRow).order_by(ReportRow.period_start, ReportRow.scope)
        )
        return list(rows.all())


async def report_effects(harness: Harness) -> list[OutboxRow]:
    async with harness.deps.db.read() as session:
        rows = await session.scalars(
            select(OutboxRow).where(OutboxRow.kind == "report").order_by(OutboxRow.id)
        )
        return list(rows.all())


def within_limits(message: dict[str, Any]) -> None:
    blocks = message["blocks"]
    assert len(blocks) <= MAX_BLOCKS
    assert len({b["block_id"] for b in blocks}) == len(blocks)
    for block in blocks:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= MAX_SECTION_TEXT
    assert sum(len(text_of({"blocks": [b]})) for b in blocks) < 12_000


async def test_team_and_overall_reports_on_their_schedules(harness: Harness) -> None:
    ids = await seed_weeks(harness)
    await at(harness, MONDAY - timedelta(seconds=1))
    assert await harness.deps.reports.sweep() == 0  # first sight, nothing is due yet…
    await at(harness, MONDAY + timedelta(seconds=5))
    assert await harness.deps.reports.sweep() == 2  # …payments and the overall one are
    await harness.settle()

    (message,) = reports_in(harness, "C0PAYMENTS")
    within_limits(message)
    team = text_of(message)
    assert message["text"].startswith("Weekly report for Payments: 3 incidents opened (↑2)")
    assert "*Weekly report: Payments*" in team
    assert "Mon 2026-11-16 09:00 → Mon 2026-11-23 09:00 (Europe/Berlin)" in team
    assert "Opened: *3* (↑2) · resolved: *2* (↑2) · still open: *1* (=)" in team
    assert "Auto-resolved by a monitor: 1 (↑1) · escalated: 0 (=)" in team
    assert "*MTTA*: median *1m 0s* (↓ 9m 0s) · mean 1m 30s · p90 2m 0s (2 acknowledged)" in team
    assert "*MTTR*: median *30m 0s* · mean 45m 0s · p90 1h 0m (2 resolved)" in team
    assert "*By service*\n• Payment API: 3 opened · MTTA 1m 0s · MTTR 30m 0s · 1 open" in team
    # slowest first, each linked to its channel: Y is still open at the end of the week
    x, y, z = [await harness.incident(ids[k]) for k in "XYZ"]
    slowest = team[team.index("*Slowest incidents*") :]
    assert slowest.index(f"INC-{ids['Y']}") < slowest.index(f"INC-{ids['X']}")
    assert f"still open after 4d 22h <#{y['slack']['channel_id']}|" in slowest
    assert f"resolved in 1h 0m <#{x['slack']['channel_id']}|{x['slack']['channel_name']}>" in team
    assert f"resolved in 30m 0s <#{z['slack']['channel_id']}|" in team
    assert "*Noisiest alerts*\n• Checkout error rate above 5%: 5 notifications, 1 incident" in team
    assert "&lt;!channel&gt; db &lt;down&gt; &amp; out" in team and "<!channel>" not in team
    assert f"*On call*\n• `payments-primary`: <@{ALICE}> 7d 0h" in team
    assert "Next report: <!date^" in team
    assert "Search slow" not in team and ":warning: Late" not in team
    # the chart of the last 8 weeks is uploaded into the same channel, once
    shared = [m for m in harness.emu.messages("C0PAYMENTS") if m.get("files")]
    assert len(shared) == 1
    (chart,) = shared[0]["files"]
    assert chart["name"].endswith(".png")
    assert harness.emu.ws.files[chart["id"]]["data"].startswith(b"\x89PNG")

    (overall,) = reports_in(harness, "C0INCIDENT")
    within_limits(overall)
    everyone = text_of(overall)
    assert "*Weekly report: All teams*" in everyone and "Opened: *4* (↑3)" in everyone
    assert "*By team*\n• Payments: 3 opened" in everyone and "• Search: 1 opened" in everyone
    assert f"• `payments-primary` (Payments): <@{ALICE}> 7d 0h" in everyone

    # search reports on New York time: 08:00 there is 13:00 UTC
    assert reports_in(harness, "C0SEARCH1") == []
    await at(harness, SEARCH_DUE + timedelta(seconds=5))
    assert await harness.deps.reports.sweep() == 1
    await harness.settle()
    (search,) = reports_in(harness, "C0SEARCH1")
    assert "Mon 2026-11-16 08:00 → Mon 2026-11-23 08:00 (America/New_York)" in text_of(search)
    assert "*MTTA*: — (nothing acknowledged)" in text_of(search)
    # the sweep before the first due time saw each scope for the first time, a week after
    # its latest period: those were recorded without a message
    assert [(r.scope, r.announced) for r in await report_rows(harness)] == [
        ("all", False),
        ("payments", False),
        ("search", False),
        ("all", True),
        ("payments", True),
        ("search", True),
    ]


async def test_sixty_incidents_fit_slack_limits(harness: Harness) -> None:
    await at(harness, WEDNESDAY)
    alerts = [
        {
            "title": f"{EVIL} #{i} " + "x" * 200,
            "dedup_key": f"k{i}",
            "service": "payment-api",
            "severity": "critical",
        }
        for i in range(60)
    ]
    status, body = await harness.post_alert(alerts, integration="generic")
    assert status == 202 and len({r["incident_id"] for r in body["results"]}) == 60
    await harness.settle()
    await at(harness, MONDAY + timedelta(seconds=5))
    assert await harness.deps.reports.sweep() == 2
    await harness.settle()
    assert not [c for c in harness.emu.calls if c["response"].get("error") == "invalid_blocks"]
    for channel in ("C0PAYMENTS", "C0INCIDENT"):
        (message,) = reports_in(harness, channel)
        within_limits(message)
        text = text_of(message)
        assert "Opened: *60*" in text
        assert "… and 55 more" in text  # the five slowest are listed
        assert "&lt;!channel&gt; db &lt;down&gt; &amp; out #" in text
        assert "<!channel>" not in text and "<down>" not in text
    assert all(e.status == "done" for e in await report_effects(harness))


@BOTH
async def test_posted_exactly_once_across_sweeps_replicas_and_restarts(harness: Harness) -> None:
    await fire_named(harness, "Once")
    await harness.deps.reports.sweep()  # first sight, mid-week
    await at(harness, MONDAY + timedelta(seconds=3))
    async with harness.replica() as other:
        sweeps = [harness.deps.reports.sweep() for _ in range(4)]
        sweeps += [other.reports.sweep() for _ in range(4)]
        assert sum(await asyncio.gather(*sweeps)) == 2
        await asyncio.gather(harness.settle(), other.outbox.drain())
        await other.outbox.wait_idle()
    await harness.settle()
    assert len(reports_in(harness, "C0PAYMENTS")) == 1
    assert len(reports_in(harness, "C0INCIDENT")) == 1
    assert len(await report_effects(harness)) == 2
    await harness.restart()
    await at(harness, MONDAY + timedelta(hours=1))
    assert await harness.deps.reports.sweep() == 0
    await harness.settle()
    assert len(reports_in(harness, "C0PAYMENTS")) == 1
    posted = [r for r in await report_rows(harness) if r.announced]
    assert [(r.scope, r.period_start) for r in posted] == [
        ("all", PERIOD_START),
        ("payments", PERIOD_START),
    ]


@BOTH
async def test_a_report_missed_while_down_is_posted_late(harness: Harness) -> None:
    await at(harness, MONDAY + timedelta(seconds=5))
    assert await harness.deps.reports.sweep() == 2  # on time (first sight within the grace)
    await harness.settle()
    await harness.stop()
    # down from Monday to the Wednesday after next: the reports of 11-30 and 12-07 are missed
    await at(harness, datetime(2026, 12, 9, 12, 0, tzinfo=UTC))
    await harness.start()
    assert await harness.deps.reports.sweep() == 3  # search was recorded silently before
    await harness.settle()
    late = text_of(reports_in(harness, "C0PAYMENTS")[-1])
    assert "Mon 2026-11-30 09:00 → Mon 2026-12-07 09:00 (Europe/Berlin)" in late
    due = int(datetime(2026, 12, 7, 8, 0, tzinfo=UTC).timestamp())
    assert f":warning: Late: this report was due <!date^{due}^" in late
    assert "1 earlier report was skipped while PulseOps was not running" in late
    assert len(reports_in(harness, "C0PAYMENTS")) == 2
    payloads = {e.payload["scope"]: e.payload for e in await report_effects(harness)}
    assert payloads["payments"]["late"] is True and payloads["payments"]["missed"] == 1


async def test_first_sight_long_after_the_schedule_posts_nothing_old(harness: Harness) -> None:
    await at(harness, WEDNESDAY + timedelta(days=7))  # 2026-11-25, two days after a due time
    assert await harness.deps.reports.sweep() == 0
    await harness.settle()
    assert reports_in(harness, "C0INCIDENT") == []
    assert {(r.scope, r.announced) for r in await report_rows(harness)} == {
        ("all", False),
        ("payments", False),
        ("search", False),
    }
    # the next one is posted on time, and says nothing about the silent one
    await at(harness, MONDAY + timedelta(days=7, seconds=2))
    assert await harness.deps.reports.sweep() == 2
    await harness.settle()
    (message,) = reports_in(harness, "C0PAYMENTS")
    assert "Mon 2026-11-23 09:00 → Mon 2026-11-30 09:00" in text_of(message)
    assert "skipped" not in text_of(message)
    # a person can still ask for a silently recorded report, once
    posting = await harness.deps.reports.post(team_id="search")
    assert posting.enqueued and posting.period.end == SEARCH_DUE
    assert not (await harness.deps.reports.post(team_id="search")).enqueued
    await harness.settle()
    (search,) = reports_in(harness, "C0SEARCH1")
    assert "Mon 2026-11-16 08:00 → Mon 2026-11-23 08:00 (America/New_York)" in text_of(search)
    assert "Late" not in text_of(search)


async def test_a_report_survives_a_slack_outage(harness: Harness) -> None:
    harness.emu.set_faults(down_for=600)
    await at(harness, MONDAY + timedelta(seconds=5))
    assert await harness.deps.reports.sweep() == 2
    await harness.settle()
    assert reports_in(harness, "C0PAYMENTS") == []
    assert {e.status for e in await report_effects(harness)} == {"pending"}
    harness.emu.set_faults(clear=True)
    harness.clock.advance(120)
    await harness.settle()
    assert len(reports_in(harness, "C0PAYMENTS")) == 1
    assert len(reports_in(harness, "C0INCIDENT")) == 1
    harness.clock.advance(600)
    await harness.settle()
    assert len(reports_in(harness, "C0PAYMENTS")) == 1
    assert {e.status for e in await report_effects(harness)} == {"done"}


async def test_a_missing_team_channel_fails_only_that_report(
    emulator: Any, database_url: str
) -> None:
    config = report_config(REPORT_YAML.replace('channel: "C0PAYMENTS"', 'channel: "#gone"'))
    async with Harness(
        emulator=emulator, database_url=database_url, config=config, clock=ManualClock(MONDAY)
    ) as harness:
        assert await harness.deps.reports.sweep() == 2
        await harness.settle()
        assert len(reports_in(harness, "C0INCIDENT")) == 1
        statuses = {e.payload["scope"]: e for e in await report_effects(harness)}
        assert statuses["all"].status == "done"
        assert statuses["payments"].status == "dead"
        assert "channel_not_found" in (statuses["payments"].last_error or "")
        _, metrics = await harness.get("/metrics")
        assert 'pulseops_outbox_failed_total{kind="report"} 1.0' in metrics


async def test_weekly_series_for_the_chart(harness: Harness) -> None:
    for weeks_back, count in ((0, 2), (2, 1), (7, 3)):
        await at(harness, WEDNESDAY - timedelta(weeks=weeks_back))
        for i in range(count):
            await fire_named(harness, f"W{weeks_back}n{i}")
    await at(harness, WEDNESDAY - timedelta(weeks=8))
    await fire_named(harness, "TooOld")
    await at(harness, MONDAY + timedelta(minutes=1))
    series = await harness.deps.reports.weekly_series(team_id="payments")
    assert [w.week_start for w in series] == [
        date(2026, 9, 28) + timedelta(weeks=k) for k in range(8)
    ]
    assert all(w.week_start.weekday() == 0 for w in series)
    assert [w.incidents for w in series] == [3, 0, 0, 0, 0, 1, 0, 2]
    assert series[-1].mtta_median_s is None
    # what bot.render.chart.weekly_chart takes, field for field
    from dataclasses import astuple, fields

    from bot.render.chart import WeekPoint

    assert [f.name for f in fields(WeekPoint)] == [f.name for f in fields(series[0])]
    assert WeekPoint(*astuple(series[-1])).incidents == 2
    overall = await harness.deps.reports.weekly_series(end=MONDAY, weeks=2)
    assert [(w.week_start, w.incidents) for w in overall] == [
        (date(2026, 11, 9), 0),
        (date(2026, 11, 16), 2),
    ]


async def test_post_on_demand_is_exactly_once_with_the_schedule(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    """`pulseops report weekly --post --team payments`, as the CLI runs it (the real clock)."""
    now = datetime.now(UTC)
    period = period_at(parse_cron("0 9 * * 1", "Europe/Berlin"), now)
    assert period is not None
    await at(harness, period.start + timedelta(hours=1))
    await fire_named(harness, "OnDemand")
    await harness.settle()
    assert (
        await _report_weekly(
            harness.settings(), harness.config, team="payments", post=True, week="last"
        )
        == 0
    )
    assert "Posted the Payments report to C0PAYMENTS" in capsys.readouterr().out
    (message,) = reports_in(harness, "C0PAYMENTS")
    end = period.end.astimezone(ZoneInfo("Europe/Berlin"))
    assert f"→ {end:%a %Y-%m-%d %H:%M} (Europe/Berlin)" in text_of(message)
    assert "Opened: *1*" in text_of(message)
    assert (
        await _report_weekly(
            harness.settings(), harness.config, team="payments", post=True, week="last"
        )
        == 0
    )
    assert "already posted" in capsys.readouterr().out
    # the scheduler does not post it again
    await at(harness, now)
    await harness.deps.reports.sweep()
    await harness.settle()
    assert len(reports_in(harness, "C0PAYMENTS")) == 1
    assert (
        await _report_weekly(
            harness.settings(), harness.config, team="nope", post=False, week="last"
        )
        == 2
    )
    assert "no team `nope`" in capsys.readouterr().err


def test_report_configuration() -> None:
    config = parse_config(CONFIG_YAML, source="x.yml", environ={})
    assert (config.reports.cron, config.reports.time_zone) == ("0 9 * * 1", "UTC")
    monday = latest_fire(parse_cron(config.reports.cron), datetime(2026, 11, 25, tzinfo=UTC))
    assert monday == datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # crontab's 1 is Monday
    ours = report_config()
    assert ours.report_schedule("payments") == ("0 9 * * 1", "Europe/Berlin")
    assert ours.report_schedule("search") == ("0 8 * * 1", "America/New_York")
    assert ours.report_schedule(None) == ("0 9 * * 1", "Europe/Berlin")
    bad = REPORT_YAML.replace('cron: "0 9 * * 1"', 'cron: "0 9 * * 8"').replace(
        'report_cron: "0 8 * * 1"', 'report_cron: "every monday"'
    )
    with pytest.raises(ConfigError) as caught:
        bad = bad.replace("time_zone: Europe/Berlin\n", "time_zone: Europe/Berln\n")
        parse_config(bad, source="r.yml", environ={})
    problems = caught.value.problems
    assert any(
        p.startswith("r.yml:") and "teams[1].report_cron: invalid cron expression" in p
        for p in problems
    ), problems
    assert any("reports.cron: invalid cron expression '0 9 * * 8'" in p for p in problems)
    assert any("reports.time_zone: unknown time zone 'Europe/Berln'" in p for p in problems)


def test_the_team_id_all_is_reserved() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(CONFIG_YAML.replace("  - id: search\n", "  - id: all\n"), source="t.yml")
    assert any("teams[1].id: the team id 'all' is reserved" in p for p in caught.value.problems)


async def test_reports_can_be_turned_off(emulator: Any, database_url: str) -> None:
    config = report_config(REPORT_YAML.replace("reports:\n", "reports:\n  enabled: false\n"))
    async with Harness(
        emulator=emulator, database_url=database_url, config=config, clock=ManualClock(MONDAY)
    ) as harness:
        assert await harness.deps.reports.sweep() == 0
        assert await report_rows(harness) == []
        assert (await harness.deps.reports.post(team_id="payments")).enqueued  # by hand: yes


def test_periods_follow_local_time_across_daylight_saving() -> None:
    trigger = parse_cron("0 9 * * 1", "Europe/Berlin")
    period = period_at(trigger, datetime(2027, 3, 30, 12, 0, tzinfo=UTC))
    assert period is not None
    assert (period.start, period.end) == (
        datetime(2027, 3, 22, 8, 0, tzinfo=UTC),  # 09:00 CET
        datetime(2027, 3, 29, 7, 0, tzinfo=UTC),  # 09:00 CEST: a 167-hour week
    )
    weekdays = parse_cron("30 17 * * 1-5")  # Monday to Friday
    period = period_at(weekdays, datetime(2026, 11, 23, 12, 0, tzinfo=UTC))  # a Monday
    assert period is not None and period.start.weekday() == 3 and period.end.weekday() == 4
    every_minute = parse_cron("* * * * *")
    period = period_at(every_minute, datetime(2026, 11, 23, 12, 0, 30, tzinfo=UTC))
    assert period is not None and period.end - period.start == timedelta(minutes=1)


async def report_weekly_cli(*args: str, env: dict[str, str]) -> tuple[int | None, str, str]:
    """`pulseops report weekly ARGS` as a subprocess: its exit status, output and errors."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "report",
        "weekly",
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.slow
async def test_cli_prints_the_report(harness: Harness, database_url: str, tmp_path: Path) -> None:
    trigger = parse_cron("0 9 * * 1", "Europe/Berlin")
    period = period_at(trigger, datetime.now(UTC))
    assert period is not None
    await at(harness, period.start + timedelta(hours=2))
    await fire_named(harness, "Printed", summary=EVIL)
    await at(harness, period.start + timedelta(hours=2, minutes=5))
    await command(harness, "ack 1")
    await harness.settle()
    config_path = tmp_path / "pulseops.yml"
    config_path.write_text(REPORT_YAML)
    env = {
        **os.environ,
        "PULSEOPS_DATABASE_URL": database_url,
        "PULSEOPS_CONFIG": str(config_path),
        "SLACK_BOT_TOKEN": "",
    }
    returncode, text, err = await report_weekly_cli("--team", "payments", "--print", env=env)
    assert returncode == 0, err
    assert text.startswith("Weekly report: Payments\n"), text
    assert "Opened: 1" in text and "MTTA: median 5m 0s" in text
    assert f"INC-1 [SEV1] {EVIL}" in text  # plain text for a terminal: unescaped, no mrkdwn
    assert "&lt;" not in text and "<#" not in text and "*" not in text
    assert f"#{(await harness.incident(1))['slack']['channel_name']}" in text
    returncode, _, err = await report_weekly_cli("--team", "nope", env=env)
    assert returncode == 2 and "no team `nope`" in err
