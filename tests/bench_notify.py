"""Notification latency benchmark: alert in → first notification beyond Slack requested.

Runs the real app (SystemClock, the real scheduler and outbox) with the Slack emulator (50 ms
a call), the Twilio emulator and a local push receiver in this process. Alerts arrive at
`--rate` per second, each opening an incident that pages one person whose rules push at
once and send an SMS at once. For each incident it reports the time from the alert's POST
to the push request reaching the receiver and to the SMS request reaching Twilio.

Usage (from the repository root)::

    python tests/bench_notify.py --alerts 100 --rate 5 --db sqlite
    PULSEOPS_TEST_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/test \\
        python tests/bench_notify.py --db postgres

``--db postgres`` drops and recreates the ``public`` schema of the database it is given.
Not named ``test_*``: pytest never collects it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import socket
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiohttp import web  # noqa: E402

from bot.clock import SystemClock  # noqa: E402
from bot.config import parse_config  # noqa: E402
from bot.sandbox.twilio import TwilioEmulator  # noqa: E402
from tests.bench_ingest import database_url, start_emulator  # noqa: E402
from tests.conftest import (  # noqa: E402
    CONFIG_YAML,
    Harness,
    alertmanager_payload,
)

SID, TOKEN = "AC" + "0" * 32, "bench-token"
ENVIRON = {"TWILIO_SID": SID, "TWILIO_TOKEN": TOKEN}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config_yaml(twilio_url: str, push_port: int) -> str:
    team = '    members: ["U0ALICE01", "U0BOB0001"]\n'
    return (
        CONFIG_YAML.replace(team, team + "    escalation_policy: bench\n", 1)
        + """escalation_policies:
  - id: bench
    levels:
      - delay: 1h
        targets: [{user: "U0ALICE01"}]
contacts:
  - user: "U0ALICE01"
    methods:
"""
        + f'      - {{id: push, type: apprise, url: "json://127.0.0.1:{push_port}/push"}}\n'
        + """      - {id: sms, type: sms, number: "+4915112345678"}
    rules:
      - {after: 0s, methods: [push, sms]}
notifications:
  public_url: "https://pulseops.example"
"""
        + f"  twilio: {{account_sid_env: TWILIO_SID, auth_token_env: TWILIO_TOKEN, "
        f'from: "+15550001111", api_url: "{twilio_url}"}}\n'
        + "  throttle: {sms: 100000, apprise: 100000}\n"
    )


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(args: argparse.Namespace) -> int:
    pushed: dict[int, float] = {}
    texted: dict[int, float] = {}
    sent_at: dict[int, float] = {}

    async def receive(request: web.Request) -> web.Response:
        body = await request.json()
        match = re.search(r"INC-(\d+)", str(body.get("title", "")))
        if match:
            pushed.setdefault(int(match[1]), time.monotonic())
        return web.json_response({"ok": True})

    push_app = web.Application()
    push_app.router.add_post("/push", receive)
    push_runner = web.AppRunner(push_app, access_log=None)
    await push_runner.setup()
    push_port = free_port()
    await web.TCPSite(push_runner, "127.0.0.1", push_port).start()
    twilio = TwilioEmulator(account_sid=SID, auth_token=TOKEN)
    await twilio.start()
    with tempfile.TemporaryDirectory() as tmp:
        url = await database_url(args.db, Path(tmp))
        emulator = await start_emulator(50)
        config = parse_config(
            config_yaml(twilio.api_url, push_port), source="bench.yml", environ=ENVIRON
        )
        harness = Harness(
            emulator=emulator,
            database_url=url,
            config=config,
            clock=SystemClock(),
            run_jobs=True,
            environ=ENVIRON,
        )
        await harness.start()
        started = time.monotonic()
        try:
            for i in range(args.alerts):
                due = started + i / args.rate
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                posted = time.monotonic()
                status, body = await harness.post_alert(
                    alertmanager_payload(group_key=f"g{i}", fingerprint=f"f{i}", summary=f"A{i}")
                )
                assert status == 202, body
                sent_at[int(body["results"][0]["incident_id"])] = posted
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                for message in twilio.messages:
                    match = re.search(r"INC-(\d+)", message.body)
                    if match:
                        texted.setdefault(int(match[1]), message.received)
                if len(pushed) >= args.alerts and len(texted) >= args.alerts:
                    break
                await asyncio.sleep(0.05)
        finally:
            await harness.close()
            await emulator.stop()
            await twilio.stop()
            await push_runner.cleanup()
    push = [pushed[i] - sent_at[i] for i in sent_at if i in pushed]
    sms = [texted[i] - sent_at[i] for i in sent_at if i in texted]
    print(f"date                {datetime.now(UTC).isoformat(timespec='seconds')}")
    print(f"python              {platform.python_version()}  cpus {os.cpu_count()}")
    print(f"db                  {args.db}")
    print(f"alerts              {args.alerts} at {args.rate}/s, Slack latency 50 ms")
    for name, values in (("push", push), ("sms", sms)):
        if values:
            print(
                f"alert → {name + ' s':<10} p50={statistics.median(values):.3f} "
                f"p99={pct(values, 0.99):.3f} max={max(values):.3f} (n={len(values)})"
            )
    return 0 if len(push) == len(sms) == args.alerts else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=100)
    parser.add_argument("--rate", type=float, default=5.0)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
