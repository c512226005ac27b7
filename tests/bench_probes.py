"""Probe benchmark: N probes at one interval against a local HTTP server, in one process.

Runs the real app (SystemClock, the real scheduler with its 0.25 s probe tick) with N HTTP probes
against an aiohttp server in the same process, for `--intervals` intervals after the first
(jittered) runs, and reports: probe start lateness (the moment a check starts minus the
deadline it was claimed for, from SQL) p50/p99/max, checks run, CPU share of the process, RSS,
and the database's growth per day (file growth on SQLite, scaled to a day). Then the anomaly
detector on synthetic Gaussian series: detection delay (samples) after steps of several sizes,
and the false-positive rate on stationary series.

Usage (from the repository root)::

    python tests/bench_probes.py --probes 1000 --interval 30 --intervals 2

Not named ``test_*``: pytest never collects it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import resource
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
from aiohttp import web  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from bot.clock import SystemClock  # noqa: E402
from bot.config import parse_config  # noqa: E402
from bot.domain.anomaly import LATENCY_MIN_STD_MS, LATENCY_MIN_STD_SHARE, first_detection  # noqa: E402
from store.models import ProbeResultRow  # noqa: E402
from tests.bench_ingest import start_emulator  # noqa: E402
from tests.conftest import (  # noqa: E402
    CONFIG_YAML,
    Harness,
)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def config_yaml(probes: int, interval: int, port: int) -> str:
    lines = [
        f'  - {{id: p{i:04d}, http: {{url: "http://127.0.0.1:{port}/health", timeout: 5s}}, '
        f"interval: {interval}s, service: payment-api, "
        "anomaly: {z: 3.0, window: 120, min_samples: 30}}"
        for i in range(probes)
    ]
    return CONFIG_YAML + "probes:\n" + "\n".join(lines) + "\n"


def db_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


async def probe_run(args: argparse.Namespace) -> int:
    async def health(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/health", health)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    late: list[float] = []

    def started(_: str, due: datetime) -> None:
        late.append(time.time() - due.timestamp())

    with tempfile.TemporaryDirectory() as tmp:
        db_path = Path(tmp) / "bench.db"
        url = f"sqlite+aiosqlite:///{db_path}"
        emulator = await start_emulator(0)
        config = parse_config(
            config_yaml(args.probes, args.interval, port), source="bench.yml", environ={}
        )
        harness = Harness(
            emulator=emulator, database_url=url, config=config, clock=SystemClock(), run_jobs=True
        )
        await harness.start()
        harness.deps.probes.on_result = started
        proc = psutil.Process()
        try:
            # the first runs are spread over the first interval; measure the ones after it
            await asyncio.sleep(args.interval)
            late.clear()
            size_before = db_bytes(db_path)
            cpu_before = resource.getrusage(resource.RUSAGE_SELF)
            wall = time.perf_counter()
            async with harness.deps.db.read() as session:
                rows_before = await session.scalar(select(func.count()).select_from(ProbeResultRow))
            await asyncio.sleep(args.interval * args.intervals)
            elapsed = time.perf_counter() - wall
            cpu_after = resource.getrusage(resource.RUSAGE_SELF)
            async with harness.deps.db.read() as session:
                rows_after = await session.scalar(select(func.count()).select_from(ProbeResultRow))
            size_after = db_bytes(db_path)
            rss = proc.memory_info().rss
            status, listed = await harness.get("/api/v1/probes")
            assert status == 200
            down = sum(1 for p in listed["probes"] if p["status"] == "down")
        finally:
            await harness.close()
            await emulator.stop()
            await runner.cleanup()
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    results = (rows_after or 0) - (rows_before or 0)
    growth = (size_after - size_before) / elapsed * 86400
    print(f"date                {datetime.now(UTC).isoformat(timespec='seconds')}")
    print(f"python              {platform.python_version()}  cpus {os.cpu_count()}")
    print("db                  sqlite (file, WAL)")
    print(f"probes              {args.probes} HTTP at {args.interval}s, measured {elapsed:.0f} s")
    print(f"checks run          {len(late)} started, {results} recorded, {down} probes down")
    if late:
        print(
            f"start lateness s    p50={statistics.median(late):.3f} p99={pct(late, 0.99):.3f} "
            f"max={max(late):.3f}"
        )
    print(f"cpu share           {cpu / elapsed:.1%} of one core (app, server and SQLite)")
    print(f"rss                 {rss / 2**20:.0f} MiB")
    print(
        f"db growth           {growth / 2**20:.0f} MiB/day raw "
        f"({(size_after - size_before) / max(results, 1):.0f} B per result; rolled up after "
        f"raw_retention)"
    )
    return 0 if late and pct(late, 0.99) <= 1.0 else 1


def detector(args: argparse.Namespace) -> None:
    rng = random.Random(7)
    mean, sd, z, window, min_samples = 50.0, 10.0, 3.0, 120, 30
    for k in (2, 3, 5, 10):
        delays = []
        for _ in range(50):
            base = [rng.gauss(mean, sd) for _ in range(200)]
            stepped = [rng.gauss(mean + k * sd, sd) for _ in range(100)]
            hit = first_detection(
                base + stepped,
                z=z,
                window=window,
                min_samples=min_samples,
                min_std=LATENCY_MIN_STD_MS,
                min_std_share=LATENCY_MIN_STD_SHARE,
                start=200,
            )
            delays.append(float("inf") if hit is None else hit - 200)
        found = [d for d in delays if d != float("inf")]
        print(
            f"detector step +{k}σ   detected {len(found)}/50, delay samples "
            f"p50={statistics.median(found) if found else float('nan'):.0f} "
            f"max={max(found) if found else float('nan'):.0f}"
        )
    flagged = scored = 0
    for _ in range(args.fp_series):
        series = [rng.gauss(mean, sd) for _ in range(2000)]
        start = 0
        while True:
            hit = first_detection(
                series,
                z=z,
                window=window,
                min_samples=min_samples,
                min_std=LATENCY_MIN_STD_MS,
                min_std_share=LATENCY_MIN_STD_SHARE,
                start=start,
            )
            if hit is None:
                break
            flagged += 1
            start = hit + 1
        scored += len(series) - min_samples - 1
    print(
        f"detector false pos  {flagged}/{scored} = {flagged / scored:.3%} of samples "
        f"(stationary Gaussian, z={z}, window={window}, min_samples={min_samples})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=1000)
    parser.add_argument("--interval", type=int, default=30)
    parser.add_argument("--intervals", type=int, default=2)
    parser.add_argument("--fp-series", type=int, default=20)
    parser.add_argument("--skip-probes", action="store_true")
    args = parser.parse_args(argv)
    detector(args)
    return 0 if args.skip_probes else asyncio.run(probe_run(args))


if __name__ == "__main__":
    sys.exit(main())
