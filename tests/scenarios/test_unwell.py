"""Knowing PulseOps is unwell: /readyz and /metrics name what has fallen behind (the outbox, a
periodic job, escalation and handoff deadlines); webhooks answer 503 with Retry-After within
`health.commit_timeout` when the database is unreachable or locked, store nothing, and succeed
once it is back; the watchdog pings another PulseOps' heartbeat only while healthy, so a stuck
or stopped PulseOps gets an incident opened by the one watching it."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, closing, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, make_url, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.clock import ManualClock
from bot.config import PulseOpsConfig, parse_config
from bot.sandbox.emulator import Emulator
from store.models import IncidentRow
from tests.conftest import CONFIG_YAML, Harness, alertmanager_payload
from tests.helpers import WEDNESDAY, eventually, fire, oncall_config
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.asyncio
BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)


def sample(harness: Harness, name: str, **labels: str) -> float | None:
    return harness.deps.metrics.registry.get_sample_value(name, labels)


def skipped_runs(harness: Harness) -> float:
    """Escalation sweeps skipped because the previous one is still running."""
    labels = {"job": "escalations", "result": "skipped"}
    return sample(harness, "pulseops_scheduler_job_runs_total", **labels) or 0


async def readyz(harness: Harness) -> tuple[int, dict[str, Any]]:
    status, body = await harness.get("/readyz", token=None)
    assert isinstance(body, dict), body
    return status, body


# ---- /readyz: the outbox, deadlines and jobs fallen behind ---------------------------------


@BOTH
async def test_readyz_and_metrics_name_an_outbox_fallen_behind(harness: Harness) -> None:
    harness.emu.set_faults(down_for=3600)
    await fire(harness)  # opened; its Slack messages wait for Slack
    assert (await readyz(harness))[0] == 200
    # and nothing delivers them meanwhile (4 minutes: before the escalation's 5m deadline)
    harness.clock.advance(timedelta(minutes=4))
    status, body = await readyz(harness)
    assert status == 503, body
    assert body["status"] == "behind" and body["database"] == "ok"
    assert body["behind"]["outbox"]["lag_seconds"] > 120
    assert body["behind"]["outbox"]["limit_seconds"] == 120
    metrics = (await harness.get("/metrics"))[1]
    assert "pulseops_outbox_lag_seconds" in metrics
    assert (sample(harness, "pulseops_outbox_lag_seconds") or 0) > 120

    harness.emu.set_faults(clear=True)
    await harness.settle()
    status, body = await readyz(harness)
    assert status == 200, body
    assert sample(harness, "pulseops_outbox_lag_seconds") == 0


@pytest.fixture
def config() -> PulseOpsConfig:
    return oncall_config(first="5m", second="10m")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(WEDNESDAY)


@BOTH
async def test_readyz_names_an_escalation_deadline_not_swept(harness: Harness) -> None:
    await fire(harness)  # pages level 1; level 2 is due 5 minutes later
    harness.clock.advance(timedelta(minutes=5, seconds=30))
    status, body = await readyz(harness)
    assert status == 200, body  # 30 s late: within deadline_lag (2m)
    assert sample(harness, "pulseops_deadline_lag_seconds", kind="escalation") == 30
    harness.clock.advance(timedelta(minutes=3))
    status, body = await readyz(harness)
    assert status == 503, body
    assert body["behind"]["deadlines"] == {
        "escalation": {"lag_seconds": 210.0, "limit_seconds": 120.0}
    }
    assert await harness.deps.escalations.sweep() == 1
    status, body = await readyz(harness)
    assert status == 200, body
    assert sample(harness, "pulseops_deadline_lag_seconds", kind="escalation") == 0


@BOTH
async def test_readyz_names_a_handoff_not_swept(harness: Harness) -> None:
    await harness.deps.handoffs.sweep()  # the schedule's handoffs are recorded up to now
    # Monday 09:00 Berlin (08:00 UTC) Bob hands over to Alice; 3 minutes later nobody swept
    harness.clock.set(datetime(2026, 11, 30, 8, 3, tzinfo=UTC))
    status, body = await readyz(harness)
    assert status == 503, body
    assert body["behind"]["deadlines"]["handoff"]["lag_seconds"] == 180
    assert sample(harness, "pulseops_deadline_lag_seconds", kind="handoff") == 180
    assert await harness.deps.handoffs.sweep() == 1
    assert (await readyz(harness))[0] == 200


@asynccontextmanager
async def write_locked(harness: Harness, backend: str) -> AsyncIterator[None]:
    """Another client holds a lock that stops the escalation sweep (SQLite: the database's
    write lock; PostgreSQL: the escalations table, still readable)."""
    if backend == "sqlite":
        path = str(make_url(harness.database_url).database)
        with closing(sqlite3.connect(path, isolation_level=None, timeout=30)) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            finally:
                conn.execute("ROLLBACK")
        return
    engine = create_async_engine(harness.database_url)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("LOCK TABLE escalations IN EXCLUSIVE MODE"))
            try:
                yield
            finally:
                await conn.rollback()
    finally:
        await engine.dispose()


@pytest.mark.slow
@BOTH
async def test_readyz_names_a_periodic_job_that_stopped_succeeding(
    emulator: Emulator, database_url: str, backend: str
) -> None:
    clock = ManualClock(WEDNESDAY)
    async with Harness(
        emulator=emulator,
        database_url=database_url,
        config=oncall_config(),
        clock=clock,
        run_jobs=True,
    ) as h:
        jobs = h.deps.health.jobs
        await eventually(lambda: "escalations" in jobs.last_success)
        assert (await readyz(h))[0] == 200
        ran_at = jobs.last_success["escalations"]
        async with write_locked(h, backend):
            skipped = skipped_runs(h)
            # a sweep is stuck on the lock once the next runs are skipped
            await eventually(lambda: skipped_runs(h) > skipped)
            clock.advance(timedelta(minutes=10))
            status, body = await readyz(h)
            assert status == 503, body
            assert body["behind"]["jobs"]["escalations"] == {
                "last_success": ran_at.isoformat(),
                "limit_seconds": 120.0,
            }
            await h.get("/metrics")
            assert (
                sample(h, "pulseops_job_last_success_timestamp_seconds", job="escalations")
                == ran_at.timestamp()
            )
        await eventually(lambda: jobs.last_success["escalations"] == clock.now(), timeout=60)
        status, body = await readyz(h)
        assert "escalations" not in body.get("behind", {}).get("jobs", {}), body


# ---- webhooks when the database is unreachable -------------------------------------------

TIMEOUT_CONFIG = CONFIG_YAML.replace("commit_timeout: 30s", "commit_timeout: 1s")
BOUND = 1 + 5  # commit_timeout, plus room for a loaded machine: an answer, not a hang


def generic(key: str) -> dict[str, Any]:
    return {"title": f"Queue depth {key}", "dedup_key": key, "severity": "warning"}


async def post_bounded(harness: Harness, body: dict[str, Any]) -> tuple[int, Any, str | None]:
    assert harness.http is not None
    async with (
        asyncio.timeout(BOUND),
        harness.http.post(
            f"{harness.url}/webhooks/generic",
            json=body,
            headers={"Authorization": "Bearer generic-token"},
        ) as r,
    ):
        return r.status, await r.json(), r.headers.get("Retry-After")


async def count_incidents(url: str) -> int:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return int(
                (await conn.execute(select(func.count()).select_from(IncidentRow))).scalar_one()
            )
    finally:
        await engine.dispose()


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_webhooks_answer_503_while_postgres_is_unreachable_and_store_nothing(
    emulator: Emulator, database_url: str
) -> None:
    url = make_url(database_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    config = parse_config(TIMEOUT_CONFIG, source="t.yml", environ={})
    try:
        async with Harness(
            emulator=emulator, database_url=proxied, config=config, clock=ManualClock()
        ) as h:
            assert (await post_bounded(h, generic("before")))[0] == 202
            await h.settle()

            proxy.blackhole()  # packets dropped: connections hang
            status, body, retry_after = await post_bounded(h, generic("blackholed"))
            assert (status, retry_after) == (503, "5"), body
            assert "did not commit within 1 s" in body["error"]
            status, body = await readyz(h)
            assert status == 503, body

            await proxy.refuse()  # the server gone: connecting is refused
            status, body, retry_after = await post_bounded(h, generic("refused"))
            assert (status, retry_after) == (503, "5"), body
            status, body = await readyz(h)
            assert status == 503 and "unreachable" in body["database"], body
            assert await count_incidents(database_url) == 1  # nothing of either was stored

            proxy.restore()
            await proxy.start()  # back: the same deliveries succeed
            for key in ("blackholed", "refused"):
                status, body, _ = await post_bounded(h, generic(key))
                assert status == 202, body
            assert await count_incidents(database_url) == 3
            assert (await readyz(h))[0] == 200
    finally:
        await proxy.close()


@contextmanager
def sqlite_locked(path: str) -> Iterator[None]:
    """Another process's connection holds the database's write lock."""
    with closing(sqlite3.connect(path, isolation_level=None, timeout=30)) as conn:
        conn.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")


@pytest.mark.slow
async def test_webhooks_answer_503_while_sqlite_is_locked_and_store_nothing(
    emulator: Emulator, tmp_path: Path
) -> None:
    path = tmp_path / "locked.db"
    config = parse_config(TIMEOUT_CONFIG, source="t.yml", environ={})
    async with Harness(
        emulator=emulator,
        database_url=f"sqlite+aiosqlite:///{path}",
        config=config,
        clock=ManualClock(),
    ) as h:
        assert (await post_bounded(h, generic("before")))[0] == 202
        await h.settle()
        with sqlite_locked(str(path)):
            for key in ("locked-1", "locked-2"):
                status, body, retry_after = await post_bounded(h, generic(key))
                assert (status, retry_after) == (503, "5"), body
            status, body = await h.call(
                "POST", "/heartbeats/none", token="x"
            )  # refused before any write: unaffected
            assert status == 401
        status, body, _ = await post_bounded(h, generic("locked-1"))
        assert status == 202, body
        status, body = await h.get("/api/v1/incidents")
        titles = sorted(i["title"] for i in body["incidents"])
        assert titles == ["Queue depth before", "Queue depth locked-1"]


# ---- the watchdog: one PulseOps watching another ------------------------------------------

WATCH_TOKEN = "hb-pulseops-a"
WATCHER_YAML = (
    CONFIG_YAML
    + f"""heartbeats:
  - name: pulseops-a
    interval: 1m
    service: search-api
    token: "{WATCH_TOKEN}"
"""
)


def watched_yaml(url: str) -> str:
    return (
        CONFIG_YAML.replace("health:\n", "health:\n  job_lag: 1h\n")
        + f"""watchdog:
  url: "{url}"
  method: POST
  interval: 2s
  timeout: 1s
  token_env: WATCHDOG_TOKEN
"""
    )


@pytest.mark.slow
async def test_a_stuck_or_stopped_pulseops_stops_pinging_and_its_watcher_opens_an_incident(
    emulator: Emulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    watcher_clock = ManualClock(WEDNESDAY)
    async with Harness(
        emulator=emulator,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'watcher.db'}",
        config=parse_config(WATCHER_YAML, source="watcher.yml", environ={}),
        clock=watcher_clock,
    ) as watcher:
        watched_clock = ManualClock(WEDNESDAY)
        watched = Harness(
            emulator=emulator,
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'watched.db'}",
            config=parse_config(
                watched_yaml(f"{watcher.url}/heartbeats/pulseops-a"),
                source="watched.yml",
                environ={"WATCHDOG_TOKEN": WATCH_TOKEN},
            ),
            clock=watched_clock,
            run_jobs=True,
            environ={"WATCHDOG_TOKEN": WATCH_TOKEN},
        )

        def pings() -> float:
            return sample(watcher, "pulseops_heartbeat_pings_total", heartbeat="pulseops-a") or 0

        def watchdog(result: str) -> float:
            return sample(watched, "pulseops_watchdog_pings_total", result=result) or 0

        async def heartbeat_incidents() -> list[dict[str, Any]]:
            status, body = await watcher.get("/api/v1/incidents")
            assert status == 200
            return [i for i in body["incidents"] if i["title"] == "Heartbeat pulseops-a missed"]

        async def missed_after_a_minute() -> None:
            watcher_clock.advance(timedelta(minutes=1, seconds=1))
            await watcher.deps.heartbeats.sweep()

        async with watched:
            # healthy: the watcher hears from it
            await eventually(lambda: pings() >= 1 and watchdog("ok") >= 1)

            # stuck: its outbox worker hangs on a Slack call that never answers, and the
            # effects it was to deliver wait; pings stop (a Slack outage alone would not do:
            # an effect waiting for a retry after an error is not due)
            watched.emu.set_faults(latency_ms=600_000)
            status, body = await watched.post_alert(alertmanager_payload())
            assert status == 202, body
            watched_clock.advance(timedelta(minutes=10))
            await eventually(lambda: watchdog("skipped_unhealthy") >= 1)
            heard = pings()
            skipped = watchdog("skipped_unhealthy")
            await eventually(lambda: watchdog("skipped_unhealthy") > skipped)
            assert pings() == heard
            await missed_after_a_minute()
            [missed] = await heartbeat_incidents()
            assert missed["status"] == "triggered" and missed["service"] == "search-api"

            # well again: the next ping resolves the watcher's incident
            watched.emu.set_faults(clear=True)
            await watched.settle()
            await eventually(lambda: pings() > heard)
            [recovered] = await heartbeat_incidents()
            assert recovered["status"] == "resolved"

        # stopped: no more pings; a minute later the watcher opens a new incident
        await missed_after_a_minute()
        incidents = await heartbeat_incidents()
        assert [i["status"] for i in incidents] == ["triggered", "resolved"]
    watchdog_logs = [r for r in caplog.records if r.name == "bot.services.watchdog"]
    assert watchdog_logs  # it said why it was not pinging
    assert all(WATCH_TOKEN not in str(vars(r)) for r in caplog.records)
