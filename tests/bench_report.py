"""Weekly report benchmark: compute and render the reports over a history of 100,000 incidents.

Generates a history (incidents spread over `--weeks` weeks, each with one or two alerts, a
first page, and an escalation page for some) by bulk insert into a fresh database migrated
to head, then times what the weekly job does for one report and for all of them:

- `report`: build + render the overall report (figures grouped by team, the previous
  period's, slowest incidents, noisiest alerts, who was on call) — the spec's target;
- `all reports`: the overall report and every team's, as one scheduled run posts them;
- `series`: the chart's 8-week series (counts and MTTA / MTTR medians per week);
- `stats, all history`: `GET /api/v1/stats` over the whole history grouped by service
  (every incident in one window: how the SQL aggregates scale with the window).

Each is run `--runs` times; the median (and min / max) are printed.

Usage (from the repository root)::

    python tests/bench_report.py                      # 100,000 incidents, SQLite
    python tests/bench_report.py --incidents 20000 --runs 3
    PULSEOPS_TEST_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/test \\
        python tests/bench_report.py --db postgres

``--db postgres`` drops and recreates the ``public`` schema of the database it is given.
Not named ``test_*``: pytest never collects it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert, select  # noqa: E402

from bot.clock import ManualClock  # noqa: E402
from bot.config import PulseOpsConfig, parse_config  # noqa: E402
from bot.render import Names, Renderer  # noqa: E402
from bot.render.report import ReportRenderer  # noqa: E402
from bot.services.report import ReportService, period_at  # noqa: E402
from bot.services.stats import StatsService  # noqa: E402
from store import migrate  # noqa: E402
from store.models import AlertRow, IncidentRow, PageRow  # noqa: E402
from store.session import Database  # noqa: E402
from tests.bench_ingest import database_url  # noqa: E402

TEAMS = 5
SERVICES_PER_TEAM = 4
FINGERPRINTS = 500
SEVERITIES = ("SEV1", "SEV2", "SEV3", "SEV4")
USERS = [f"U0USER{i:04d}" for i in range(10)]


def config_yaml() -> str:
    lines = ['slack:\n  incidents_channel: "C0INCIDENT"\n', "teams:\n"]
    for t in range(TEAMS):
        lines.append(
            f'  - id: team{t}\n    name: Team {t}\n    channel: "C0TEAM{t:04d}"\n'
            f'    members: ["{USERS[2 * t]}", "{USERS[2 * t + 1]}"]\n'
        )
    lines.append("services:\n")
    for t in range(TEAMS):
        for s in range(SERVICES_PER_TEAM):
            lines.append(f"  - id: svc{t}-{s}\n    name: Service {t}.{s}\n    team: team{t}\n")
    lines.append("schedules:\n")
    for t in range(TEAMS):
        lines.append(
            f"  - id: team{t}-primary\n    team: team{t}\n    time_zone: Europe/Berlin\n"
            '    rotation:\n      type: weekly\n      start: "2026-01-05T09:00:00"\n'
            f'      participants: ["{USERS[2 * t]}", "{USERS[2 * t + 1]}"]\n'
        )
    lines.append('reports:\n  cron: "0 9 * * 1"\n  time_zone: Europe/Berlin\n')
    return "".join(lines)


def history(
    n: int, start: datetime, end: datetime, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Incidents, alerts and pages of a plausible history, as rows for bulk insert."""
    rng = random.Random(seed)
    span = (end - start).total_seconds()
    incidents, alerts, pages = [], [], []
    for i in range(1, n + 1):
        triggered = start + timedelta(seconds=rng.random() * span)
        team = rng.randrange(TEAMS)
        service = f"svc{team}-{rng.randrange(SERVICES_PER_TEAM)}"
        ack = triggered + timedelta(seconds=rng.lognormvariate(5, 1.2))
        acknowledged = rng.random() < 0.9
        resolved_at = (ack if acknowledged else triggered) + timedelta(
            seconds=rng.lognormvariate(8, 1.5)
        )
        resolved = resolved_at < end and rng.random() < 0.97
        auto = resolved and rng.random() < 0.4
        fingerprint = f"fp{int(rng.paretovariate(1.2)) % FINGERPRINTS:04d}"
        incidents.append(
            {
                "id": i,
                "title": f"Alert {fingerprint} on {service}",
                "description": "",
                "status": "resolved"
                if resolved
                else ("acknowledged" if acknowledged else "triggered"),
                "severity": rng.choice(SEVERITIES),
                "service_id": service,
                "team_id": f"team{team}",
                "source": "alertmanager",
                "integration": "prometheus",
                "dedup_key": None,
                "auto_resolve": True,
                "created_by": None,
                "version": 3,
                "alert_count": 1,
                "labels": {},
                "links": {"items": []},
                "triggered_at": triggered,
                "acknowledged_at": ack if acknowledged and ack < end else None,
                "acknowledged_by": USERS[2 * team] if acknowledged else None,
                "resolved_at": resolved_at if resolved else None,
                "resolved_by": ("monitor:prometheus" if auto else USERS[2 * team])
                if resolved
                else None,
                "updated_at": triggered,
                "channel_id": f"C{i:010d}",
                "channel_name": f"inc-{i}-alert",
                "message_version": 0,
                "announcement_version": 0,
            }
        )
        for k in range(1 + (rng.random() < 0.3)):
            alerts.append(
                {
                    "incident_id": i,
                    "integration": "prometheus",
                    "fingerprint": f"{fingerprint}-{k}",
                    "status": "resolved" if resolved else "firing",
                    "title": f"Alert {fingerprint}",
                    "labels": {},
                    "occurrences": 1 + int(rng.expovariate(0.2)),
                    "first_seen_at": triggered,
                    "last_seen_at": triggered,
                }
            )
        levels = 2 if rng.random() < 0.1 else 1
        for level in range(levels):
            pages.append(
                {
                    "incident_id": i,
                    "cycle": 0,
                    "level": level,
                    "step": 0,
                    "target": USERS[2 * team + level],
                    "kind": "user",
                    "via": "user",
                    "paged_at": triggered + timedelta(minutes=5 * level),
                    "scheduled_at": triggered + timedelta(minutes=5 * level),
                    "dm_version": 0,
                }
            )
    return incidents, alerts, pages


async def bulk_insert(db: Database, model: Any, rows: list[dict[str, Any]]) -> None:
    chunk = 5000
    async with db.engine.begin() as conn:
        for i in range(0, len(rows), chunk):
            await conn.execute(insert(model), rows[i : i + chunk])


async def timed(runs: int, work: Callable[[], Awaitable[object]]) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await work()
        times.append(time.perf_counter() - started)
    return times


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        url = await database_url(args.db, Path(tmp))
        db = Database(url)
        try:
            await migrate.upgrade(db)
            config: PulseOpsConfig = parse_config(config_yaml(), source="bench.yml", environ={})
            # "now" is a minute after a Monday 09:00 (Berlin) report time
            now = datetime(2026, 11, 23, 8, 1, tzinfo=UTC)
            start = now - timedelta(weeks=args.weeks)
            started = time.perf_counter()
            incidents, alerts, pages = history(args.incidents, start, now, args.seed)
            await bulk_insert(db, IncidentRow, incidents)
            await bulk_insert(db, AlertRow, alerts)
            await bulk_insert(db, PageRow, pages)
            async with db.engine.begin() as conn:  # planner statistics, as a live database has
                await conn.exec_driver_sql("ANALYZE")
            generated = time.perf_counter() - started
            async with db.read() as session:
                stored = await session.scalar(select(func.count()).select_from(IncidentRow))

            clock = ManualClock(now)
            stats = StatsService(db=db, config=config, clock=clock)
            reports = ReportService(db=db, config=config, clock=clock, stats=stats)
            view = ReportRenderer(
                Renderer(
                    Names(
                        services={s.id: s.name for s in config.services},
                        teams={t.id: t.name for t in config.teams},
                    )
                )
            )
            overall = reports.scope(None)
            period = period_at(overall.trigger, now)
            assert period is not None
            blocks: list[int] = []

            async def one_report() -> None:
                report = await reports.build(scope=overall, period=period)
                blocks.append(len(view.weekly_report(report).blocks))

            async def all_reports() -> None:
                for scope in reports.scopes():
                    report = await reports.build(scope=scope, period=period)
                    view.weekly_report(report)

            async def series() -> None:
                await reports.weekly_series(end=period.end)

            async def whole_history() -> None:
                await stats.period(since=start, until=now, group_by="service")

            report = await reports.build(scope=overall, period=period)
            results = {
                "report": await timed(args.runs, one_report),
                "all reports": await timed(args.runs, all_reports),
                "series": await timed(args.runs, series),
                "stats, all history": await timed(args.runs, whole_history),
            }
        finally:
            await db.dispose()
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "db": args.db,
        "incidents": stored,
        "alerts": len(alerts),
        "pages": len(pages),
        "weeks": args.weeks,
        "scopes": len(reports.scopes()),
        "generate_s": round(generated, 1),
        "period": [period.start.isoformat(), period.end.isoformat()],
        "period_incidents": report.stats.overall.opened,
        "report_blocks": blocks[0] if blocks else None,
        "seconds": {
            name: {
                "median": round(statistics.median(times), 4),
                "min": round(min(times), 4),
                "max": round(max(times), 4),
            }
            for name, times in results.items()
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--weeks", type=int, default=52, help="history length (default 52)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args))
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"date                {result['date']}")
    print(f"python              {result['python']}  cpus {result['cpus']}  {result['machine']}")
    print(f"db                  {result['db']}")
    print(
        f"history             {result['incidents']} incidents over {result['weeks']} weeks, "
        f"{result['alerts']} alerts, {result['pages']} pages (generated in "
        f"{result['generate_s']} s)"
    )
    print(
        f"reported week       {result['period'][0]} → {result['period'][1]}: "
        f"{result['period_incidents']} incidents, {result['report_blocks']} blocks"
    )
    for name, s in result["seconds"].items():
        label = f"{name} ({result['scopes']} scopes)" if name == "all reports" else name
        print(
            f"{label:<28}median {s['median'] * 1000:8.1f} ms   "
            f"min {s['min'] * 1000:8.1f} ms   max {s['max'] * 1000:8.1f} ms   ({args.runs} runs)"
        )
    target = result["seconds"]["report"]["median"]
    print(f"target              weekly report < 2 s: {'met' if target < 2 else 'MISSED'}")
    return 0 if target < 2 else 1


if __name__ == "__main__":
    sys.exit(main())
