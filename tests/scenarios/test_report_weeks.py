"""`pulseops report weekly --week this|last|YYYY-Www`, its plain text, and where it reads from."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.clock import ManualClock
from bot.config import PulseOpsConfig
from bot.errors import UserError
from bot.services.report import period_at
from tests.conftest import BOT_TOKEN, Harness
from tests.helpers import fire_named
from tests.scenarios.test_report import (
    REPORT_YAML,
    at,
    command,
    report_config,
    report_weekly_cli,
)

BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
THURSDAY = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)  # in the period Mon 23 Nov 09:00 Berlin →


@pytest.fixture
def config() -> PulseOpsConfig:
    return report_config()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(THURSDAY)


async def test_weeks_name_the_periods_of_the_schedule(harness: Harness) -> None:
    reports = harness.deps.reports
    scope = reports.scope("payments")  # Mondays 09:00 Europe/Berlin = 08:00 UTC in winter
    this = reports.period_of_week(scope, "this")
    assert (this.start, this.end) == (
        datetime(2026, 11, 23, 8, 0, tzinfo=UTC),
        datetime(2026, 11, 30, 8, 0, tzinfo=UTC),
    )
    last = reports.period_of_week(scope, "last")
    assert (last.start, last.end) == (this.start - timedelta(days=7), this.start)
    assert reports.period_of_week(scope, "2026-W48") == this  # starts Monday 23 Nov
    assert reports.period_of_week(scope, "2026-W47") == last
    assert reports.period_of_week(scope, "2026-W01").start == datetime(
        2025, 12, 29, 8, 0, tzinfo=UTC
    )
    for bad in ("next", "2026-W54", "2026-48", "26-W01"):
        with pytest.raises(UserError, match="this, last or an ISO week"):
            reports.period_of_week(scope, bad)
    with pytest.raises(UserError, match="no report period"):
        reports.period_of_week(scope, "2026-W49")  # has not started


@BOTH
@pytest.mark.slow
async def test_cli_prints_this_week_in_plain_text(
    harness: Harness, database_url: str, tmp_path: Path
) -> None:
    trigger = harness.deps.reports.scope("payments").trigger
    now = datetime.now(UTC)
    last = period_at(trigger, now)
    assert last is not None
    await at(harness, now - timedelta(minutes=10))
    await fire_named(harness, "ThisWeek", summary="Queue `orders` stuck")
    await at(harness, now - timedelta(minutes=5))
    await command(harness, "ack 1")
    await harness.settle()
    config_path = tmp_path / "pulseops.yml"
    config_path.write_text(REPORT_YAML)
    env = {**os.environ, "PULSEOPS_CONFIG": str(config_path), "SLACK_BOT_TOKEN": ""}
    env.pop("PULSEOPS_DATABASE_URL", None)
    code, text, err = await report_weekly_cli(
        "--team", "payments", "--week", "this", "--database-url", database_url, env=env
    )
    assert code == 0, err
    assert "Opened: 1" in text and "Queue orders stuck" in text, text
    assert "`" not in text and "<@" not in text, text
    # with the bot token, people are named as Slack shows them (users.info), not by id
    named = {**env, "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_API_URL": harness.emu.api_url}
    code, text, err = await report_weekly_cli(
        "--team", "payments", "--week", "this", "--database-url", database_url, env=named
    )
    assert code == 0, err
    assert "payments-primary: @bob" in text and "U0BOB0001" not in text, text
    code, text, err = await report_weekly_cli(
        "--team", "payments", "--database-url", database_url, env=env
    )
    assert code == 0 and "No incidents were opened" in text, (err, text)  # last week: none
    code, _, err = await report_weekly_cli(
        "--week", "soon", "--database-url", database_url, env=env
    )
    assert code == 2 and "--week 'soon'" in err


@pytest.mark.slow
async def test_a_missing_database_file_is_named_and_not_created(tmp_path: Path) -> None:
    config_path = tmp_path / "pulseops.yml"
    config_path.write_text(REPORT_YAML)
    missing = tmp_path / "nothing-here.db"
    env = {
        **os.environ,
        "PULSEOPS_CONFIG": str(config_path),
        "PULSEOPS_DATABASE_URL": f"sqlite+aiosqlite:///{missing}",
    }
    code, _, err = await report_weekly_cli(env=env)
    assert code == 2
    assert f"no database at {missing}" in err and "pulseops-sandbox.db" in err
    assert len(err.strip().splitlines()) == 1
    assert not missing.exists()
