"""Maintenance windows (injected clock): alerts matching an open window are muted like a
silence's and released when it closes; `config check` names file, line and field of a bad
window. Plus: a silence with matchers X mutes exactly the alerts `matches_all(X, …)` says."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.clock import ManualClock
from bot.config import PulseOpsConfig, config_check, parse_config
from bot.domain.matchers import matches_all, parse_matchers
from tests.conftest import CONFIG_YAML, Harness, alertmanager_payload

WINDOW = """
maintenance_windows:
  - name: saturday-db-maintenance
    matchers: ['service="payment-api"']
    cron: "0 2 * * 6"
    duration: 2h
    time_zone: Europe/Berlin
"""
# Saturday 2026-11-28, 02:30 in Berlin: the window (02:00-04:00 Berlin) is open
IN_WINDOW = datetime(2026, 11, 28, 1, 30, tzinfo=UTC)


@pytest.fixture
def config() -> PulseOpsConfig:
    return parse_config(CONFIG_YAML + WINDOW, environ={})


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(IN_WINDOW)


def named(name: str, **extra: object) -> dict[str, object]:
    return alertmanager_payload(
        group_key=f'{{}}:{{alertname="{name}"}}', alertname=name, fingerprint=name, **extra
    )  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
async def test_window_mutes_while_open_and_releases_when_it_closes(
    harness: Harness, clock: ManualClock
) -> None:
    _, body = await harness.post_alert(named("DbSlow"))
    assert body["results"][0]["outcome"] == "muted"
    _, other = await harness.post_alert(named("SearchDown", service="search-api"))
    assert other["results"][0]["outcome"] == "created"  # the window matches payment-api only
    metrics = await (await harness.http.get(f"{harness.url}/metrics")).text()  # type: ignore[union-attr]
    assert (
        'pulseops_alerts_muted_total{kind="maintenance_window",name="saturday-db-maintenance"} 1.0'
        in metrics
    )
    _, held = await harness.get("/api/v1/suppressed-alerts?window=saturday-db-maintenance")
    assert [(a["fingerprint"], a["by"]) for a in held["alerts"]] == [
        ("DbSlow", "maintenance window saturday-db-maintenance")
    ]
    clock.advance(timedelta(minutes=89))  # 03:59 Berlin: still open
    assert await harness.deps.silences.sweep() == 0
    clock.advance(timedelta(minutes=2))  # 04:01 Berlin: closed
    assert await harness.deps.silences.sweep() == 1
    assert await harness.deps.silences.sweep() == 0
    await harness.settle()
    _, listing = await harness.get("/api/v1/incidents?service=payment-api")
    (incident,) = listing["incidents"]
    detail = await harness.incident(incident["id"])
    assert any(
        "held by maintenance window saturday-db-maintenance" in e["text"]
        for e in detail["timeline"]
    )
    _, later = await harness.post_alert(named("DbSlowAgain"))
    assert later["results"][0]["outcome"] == "created"
    # next Saturday it is open again
    clock.set(IN_WINDOW + timedelta(days=7))
    _, next_week = await harness.post_alert(named("NextWeek"))
    assert next_week["results"][0]["outcome"] == "muted"


def test_config_check_names_file_line_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = WINDOW.replace('service="payment-api"', 'service="payments"').replace(
        "0 2 * * 6", "0 2 * * 8"
    ) + WINDOW.replace("duration: 2h", "duration: 2h\n    matchers: []").replace(
        "maintenance_windows:\n", ""
    )
    path = tmp_path / "pulseops.yml"
    path.write_text(CONFIG_YAML + bad)
    assert config_check(path, environ={}) == 2
    err = capsys.readouterr().err
    base = CONFIG_YAML.count("\n")
    assert (
        f"{path}:{base + 4}: maintenance_windows[0].matchers[0]: unknown service 'payments'" in err
    )
    assert f"{path}:{base + 5}: maintenance_windows[0].cron: invalid cron expression" in err
    assert "maintenance_windows[1].name: duplicate maintenance window name" in err


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_a_silence_mutes_exactly_what_its_matchers_match(
    harness: Harness, clock: ManualClock
) -> None:
    clock.set(IN_WINDOW + timedelta(days=3))  # no window open
    matchers = ['alertname=~"Disk.*|CPU"', 'env!="prod"', 'team=~"a|b"']
    status, _ = await harness.call(
        "POST",
        "/api/v1/silences",
        {
            "matchers": matchers,
            "ends_at": (clock.now() + timedelta(hours=1)).isoformat(),
            "comment": "property",
        },
    )
    assert status == 201
    parsed = parse_matchers(matchers)
    rng = random.Random(13)
    muted = 0
    for n in range(40):
        labels = {"alertname": rng.choice(["DiskFull", "CPU", "CPUHigh", "Memory", "Disk"])}
        for name, values in (("env", ["prod", "staging", ""]), ("team", ["a", "b", "c", "ab"])):
            value = rng.choice(values)
            if value:
                labels[name] = value
        alert = {
            "status": "firing",
            "labels": labels,
            "annotations": {"summary": f"alert {n}"},
            "startsAt": "2026-11-23T02:58:00.000Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "fingerprint": f"p{n}",
        }
        payload = alertmanager_payload(alerts=[alert], group_key=f'{{}}:{{n="{n}"}}')
        _, body = await harness.post_alert(payload)
        expected = matches_all(parsed, labels)
        muted += expected
        assert (body["results"][0]["outcome"] == "muted") is expected, labels
    assert 0 < muted < 40


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_route_test_says_which_silence_or_window_would_mute(
    harness: Harness, clock: ManualClock, tmp_path: Path
) -> None:
    import asyncio
    import json

    from tests.scenarios.test_cli import run

    clock.set(datetime.now(UTC))
    status, made = await harness.call(
        "POST",
        "/api/v1/silences",
        {
            "matchers": ['alertname="HighErrorRate"'],
            "ends_at": (clock.now() + timedelta(hours=1)).isoformat(),
            "comment": "deploy",
        },
    )
    assert status == 201
    config = tmp_path / "pulseops.yml"
    config.write_text(CONFIG_YAML + WINDOW)
    body = tmp_path / "alert.json"
    body.write_text(json.dumps(alertmanager_payload()))
    args = ["route", "test", "--config", str(config), "--integration", "prometheus"]
    result = await asyncio.to_thread(run, *args, "--database-url", harness.database_url, str(body))
    assert result.returncode == 0, result.stderr
    assert f"MUTED now by silence #{made['id']} (by api:tester: deploy), until" in result.stdout
    assert "saturday-db-maintenance" in result.stdout  # open now or the next opening
    without = await asyncio.to_thread(run, *args, str(body))
    assert "silence #" not in without.stdout
