"""Escalation lateness benchmark: how long after its deadline each escalation step is paged.

Runs the real app (SystemClock, the real scheduler with its 0.5 s escalation sweep) and the
Slack emulator in this process, opens N incidents whose policy escalates every `--delay`
seconds, lets every step come due, and reports the lateness of each page (paged_at minus its
deadline, both from the database) as p50/p99/max, plus pages per incident.

Usage (from the repository root)::

    python tests/bench_escalation.py --incidents 50 --delay 1 --levels 3 --db sqlite
    PULSEOPS_TEST_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/test \\
        python tests/bench_escalation.py --db postgres

``--db postgres`` drops and recreates the ``public`` schema of the database it is given.
Not named ``test_*``: pytest never collects it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from bot.clock import SystemClock  # noqa: E402
from bot.config import parse_config  # noqa: E402
from store.models import PageRow  # noqa: E402
from tests.bench_ingest import database_url, start_emulator  # noqa: E402
from tests.conftest import (  # noqa: E402
    CONFIG_YAML,
    Harness,
    alertmanager_payload,
)


def config_yaml(delay: float, levels: int) -> str:
    team = '    members: ["U0ALICE01", "U0BOB0001"]\n'
    level = f'      - delay: {int(delay)}s\n        targets: [{{user: "U0ALICE01"}}]\n'
    return (
        CONFIG_YAML.replace(team, team + "    escalation_policy: bench\n", 1)
        + "escalation_policies:\n  - id: bench\n    levels:\n"
        + level * levels
    )


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        url = await database_url(args.db, Path(tmp))
        emulator = await start_emulator(args.slack_latency_ms)
        config = parse_config(config_yaml(args.delay, args.levels), source="bench.yml", environ={})
        harness = Harness(
            emulator=emulator, database_url=url, config=config, clock=SystemClock(), run_jobs=True
        )
        await harness.start()
        try:
            started = time.perf_counter()
            for i in range(args.incidents):
                status, _ = await harness.post_alert(
                    alertmanager_payload(group_key=f"g{i}", fingerprint=f"f{i}", summary=f"A{i}")
                )
                assert status == 202
            expected = args.incidents * args.levels
            deadline = time.perf_counter() + args.delay * args.levels + 60
            while time.perf_counter() < deadline:
                async with harness.deps.db.read() as session:
                    count = await session.scalar(select(func.count()).select_from(PageRow)) or 0
                if count >= expected:
                    break
                await asyncio.sleep(0.2)
            async with harness.deps.db.read() as session:
                rows = list((await session.scalars(select(PageRow))).all())
        finally:
            await harness.close()
            await emulator.stop()
    late = [(r.paged_at - r.scheduled_at).total_seconds() for r in rows if r.level > 0]
    print(f"date                {datetime.now(UTC).isoformat(timespec='seconds')}")
    print(f"python              {platform.python_version()}  cpus {os.cpu_count()}")
    print(f"db                  {args.db}")
    print(f"incidents × levels  {args.incidents} × {args.levels}, delay {args.delay}s")
    print(f"pages               {len(rows)} (expected {expected})")
    print(f"wall s              {time.perf_counter() - started:.1f}")
    if late:
        print(
            f"lateness s          p50={statistics.median(late):.3f} p99={pct(late, 0.99):.3f} "
            f"max={max(late):.3f} (n={len(late)})"
        )
    return 0 if len(rows) == expected else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=50)
    parser.add_argument("--levels", type=int, default=3)
    parser.add_argument("--delay", type=float, default=1.0)
    parser.add_argument("--slack-latency-ms", type=float, default=50.0)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
