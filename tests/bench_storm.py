"""Alert storm benchmark: how late each incident's first page reaches the on-call person's DM.

Runs the real PulseOps app (``create_app`` with a ``SystemClock`` and ``run_jobs=True``) and the
Slack emulator with Slack's rate limits on (tiers, one chat.postMessage a second per channel),
in this process; a second process posts N Alertmanager webhooks over K fingerprints, as a
monitor in a storm does. Every incident pages one person (an escalation policy whose first
level is `U0BOB0001`). The SPEC's storm target: every first page within 5 s of its alert, no
Slack call given up after a 429; channel creation (Tier 2, ~20 a minute) follows as the budget
allows.

Usage (from the repository root)::

    python tests/bench_storm.py --alerts 2000 --fingerprints 100 --db sqlite
    PULSEOPS_TEST_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/test \\
        python tests/bench_storm.py --db postgres --json

``--db postgres`` DROPS AND RECREATES the ``public`` schema of the database it is given.

What is reported: per incident, the time from sending the webhook whose answer said
``created`` to the first DM to the on-call person that shows the incident (a page of its own
or a bundle), polled in-process every ``--poll-ms``, as p50/p99/max and how many were seen
within 5 s; DM messages and conversations.open calls for that person; Slack calls by method
and the 429s among them; outbox rows given up (dead) or still pending when the pages were
all seen, and (with ``--drain``) how long the rest of the outbox took. Not named ``test_*``:
pytest never collects it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import re
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bot.sandbox.emulator import Emulator  # noqa: E402
from tests.bench_ingest import (  # noqa: E402
    creators,
    database_url,
    load_from_another_process,
    machine,
    outbox_status,
    percentiles_ms,
    print_table,
    setup_logging,
    start_stack,
    unlimited_yaml,
    wait_outbox_empty,
    wait_until,
    webhook_bodies,
)
from tests.conftest import CONFIG_YAML  # noqa: E402

ON_CALL = "U0BOB0001"
TARGET_S = 5.0
INCIDENT_REF = re.compile(r"\bINC-(\d+)\b")


@dataclass(frozen=True)
class StormConfig:
    alerts: int
    fingerprints: int
    concurrency: int
    rate: float | None
    slack_latency_ms: float
    db: str
    timeout_s: float
    poll_ms: float
    drain: bool
    as_json: bool
    silences: int = 0  # none here; bench_ingest.machine() reports it


def parse_args(argv: list[str] | None = None) -> StormConfig:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--alerts", type=int, default=2000, help="webhooks to post (N)")
    parser.add_argument("--fingerprints", type=int, default=100, help="incidents expected (K)")
    parser.add_argument("--concurrency", type=int, default=50, help="concurrent connections")
    parser.add_argument(
        "--rate", type=float, default=None, help="webhooks/s (open loop); default: as answered"
    )
    parser.add_argument("--slack-latency-ms", type=float, default=50.0)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--timeout",
        type=float,
        default=240.0,
        dest="timeout_s",
        help="how long to wait for every first page after ingest",
    )
    parser.add_argument("--poll-ms", type=float, default=10.0)
    parser.add_argument(
        "--drain",
        action="store_true",
        help="then wait for the whole outbox (channels at Tier 2 take minutes)",
    )
    parser.add_argument("--json", action="store_true", dest="as_json")
    ns = parser.parse_args(argv)
    if ns.alerts < 1 or ns.fingerprints < 1 or ns.concurrency < 1:
        parser.error("--alerts, --fingerprints and --concurrency must be positive")
    return StormConfig(**vars(ns))


def storm_yaml(fingerprints: int) -> str:
    """The test configuration with the payments team paging ON_CALL first, no ingest limits."""
    team = '    members: ["U0ALICE01", "U0BOB0001"]\n'
    paging = CONFIG_YAML.replace(team, team + "    escalation_policy: storm\n", 1)
    return (
        unlimited_yaml(paging, f"  max_new_incidents_per_minute: {max(120, 2 * fingerprints)}\n")
        + "escalation_policies:\n  - id: storm\n    levels:\n"
        + f'      - delay: 30m\n        targets: [{{user: "{ON_CALL}"}}]\n'
    )


class PageWatcher:
    """Polls the emulator: when each incident first appears in a DM to the on-call person."""

    def __init__(self, emu: Emulator, user: str, interval_s: float) -> None:
        self.emu = emu
        self.user = user
        self.interval_s = interval_s
        self.paged_at: dict[int, float] = {}
        self.dm_channels: set[str] = set()
        self._calls_seen = 0
        self._scanned: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def _run(self) -> None:
        while True:
            self.poll()
            await asyncio.sleep(self.interval_s)

    def poll(self) -> None:
        now = time.perf_counter()
        calls = self.emu.calls
        for call in calls[self._calls_seen :]:
            response = call.get("response") or {}
            if call["method"] == "conversations.open" and call["args"].get("users") == self.user:
                if isinstance(response, dict) and response.get("ok"):
                    self.dm_channels.add(response["channel"]["id"])
        # a call is recorded before it is answered: look at it again next time
        self._calls_seen = next(
            (i for i, c in enumerate(calls) if c.get("status") is None), len(calls)
        )
        for channel in self.dm_channels:
            history = self.emu.ws.history.get(channel, [])
            for message in history[self._scanned.get(channel, 0) :]:
                # blocks as posted: a bundle lists its incidents in its blocks
                text = json.dumps(message.get("blocks", [])) + (message.get("text") or "")
                for number in INCIDENT_REF.findall(text):
                    self.paged_at.setdefault(int(number), now)
            self._scanned[channel] = len(history)

    def dm_messages(self) -> int:
        return sum(len(self.emu.ws.history.get(c, [])) for c in self.dm_channels)


async def run(cfg: StormConfig) -> dict[str, Any]:
    logs = setup_logging()
    with tempfile.TemporaryDirectory(prefix="pulseops-storm-") as tmp:
        db_url = await database_url(cfg.db, Path(tmp))
        config_block = {**machine(cfg, db_url), "emulator rate limits": "on"}
        bodies = webhook_bodies(cfg.alerts, cfg.fingerprints)
        stack = await start_stack(
            db_url,
            cfg.slack_latency_ms,
            config_yaml=storm_yaml(cfg.fingerprints),
            rate_limits=True,
        )
        watcher = PageWatcher(stack.emu, ON_CALL, cfg.poll_ms / 1000)
        load = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        load.submit(time.sleep, 0).result()
        try:
            watcher.start()
            t0 = time.perf_counter()
            wall0 = time.time()  # the emulator stamps calls with time.time()
            sent = await asyncio.get_running_loop().run_in_executor(
                load, load_from_another_process, stack.url, bodies, cfg.concurrency, cfg.rate
            )
            t_ingested = time.perf_counter()
            created = creators(sent)
            deadline = t_ingested + cfg.timeout_s
            paged = await wait_until(lambda: created.keys() <= watcher.paged_at.keys(), deadline)
            t_paged = time.perf_counter()
            watcher.poll()
            at_pages = await outbox_status(stack.app)
            drained_s = None
            if cfg.drain and await wait_outbox_empty(stack.app, t_paged + 900):
                drained_s = round(time.perf_counter() - t_ingested, 1)
            seen = watcher.paged_at
            lateness = [seen[i] - t for i, t in created.items() if i in seen]
            emu = stack.emu
            by_method = Counter(c["method"] for c in emu.calls)
            limited = Counter(c["method"] for c in emu.calls if c.get("status") == 429)
            opens = sum(
                1
                for c in emu.calls_to("conversations.open")
                if c["args"].get("users") == ON_CALL and c.get("status") == 200
            )
            end = await outbox_status(stack.app)
            dm_posts = [
                f"{c['at'] - wall0:.2f}s:{c.get('status')}"
                for c in emu.calls_to("chat.postMessage")
                if c["args"].get("channel") in watcher.dm_channels
            ]
            figures = {
                "webhooks": {
                    "sent": len(sent),
                    "accepted (2xx)": sum(1 for s in sent if 200 <= s.status < 300),
                    "ingest phase s": round(t_ingested - t0, 2),
                },
                "incidents": {"created": len(created), "expected (K)": cfg.fingerprints},
                "first page (alert -> DM)": {
                    "ms": percentiles_ms(lateness),
                    "seen": len(lateness),
                    f"within {TARGET_S:g} s": sum(1 for x in lateness if x <= TARGET_S),
                    "all seen": paged,
                },
                "DMs to the on-call person": {
                    "messages": watcher.dm_messages(),
                    "conversations.open calls (200)": opens,
                    "posts (s after first webhook:status)": " ".join(dm_posts[:40]),
                },
                "slack calls": {
                    "total": len(emu.calls),
                    "by method": dict(by_method.most_common()),
                    "429 by method": dict(limited.most_common()),
                },
                "outbox": {
                    "pending when every page was seen": at_pages.get("pending", 0),
                    "given up (dead) at end": end.get("dead", 0),
                    "pending at end": end.get("pending", 0),
                    "drained s after last webhook": drained_s,
                },
                "app log records (INFO+)": dict(logs.counts.most_common(8)),
            }
        finally:
            load.shutdown()
            await watcher.stop()
            await stack.close()
    return {"configuration": config_block, **figures}


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    result = asyncio.run(run(cfg))
    if cfg.as_json:
        print(json.dumps(result, indent=2, default=str))
    else:
        for section, data in result.items():
            print_table(section, data)
    page = result["first page (alert -> DM)"]
    ok = page["all seen"] and result["outbox"]["given up (dead) at end"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
