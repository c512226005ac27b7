"""Webhook ingest benchmark: alerts/s, webhook latency and alert -> Slack message latency.

Runs the real PulseOps app (``create_app`` with a real ``SystemClock`` and ``run_jobs=True``,
so the outbox worker and the scheduler run as in production) and the Slack emulator in this
process, on free local ports, then posts Alertmanager v4 webhooks over HTTP with a bounded
number of concurrent connections from a second process, as monitors are other processes.
It measures against the "Performance targets" table of SPEC.md (webhook ingest; alert ->
incident message present in the emulator).

Usage (from the repository root)::

    python tests/bench_ingest.py --alerts 2000 --fingerprints 100 --concurrency 50 \
        --slack-latency-ms 50 --db sqlite
    PULSEOPS_TEST_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/test \
        python tests/bench_ingest.py --db postgres --json

``--db postgres`` DROPS AND RECREATES the ``public`` schema of the database it is given
(a throwaway test database). ``--db sqlite`` uses a file in a temporary directory.

What is reported:

* webhook phase: accepted (2xx) requests/s over the time from the first request sent to the
  last answer received, p50/p99/max latency of each request (sent -> body read), non-2xx
  answers and client errors;
* per incident, the time from sending the webhook whose answer said ``created`` to the
  announcement (in the incidents channel) and the incident channel's message being present
  in the emulator, polled in-process every ``--poll-ms`` (p50/p99/max);
* Slack Web API calls per incident (total and by method), incidents created (must equal
  ``--fingerprints``), outbox rows not delivered at the end, peak RSS of the process (app,
  emulator and load generator together), warnings logged by the app, wall time.

The emulator is read in-process without copying (``Emulator.ws.history`` and
``Emulator.channels``): ``Emulator.messages()`` deep-copies a channel's history on every call,
which at a 10 ms poll would load the very event loop being measured.

Exit status: 0 when every webhook was answered 2xx and exactly ``--fingerprints`` incidents
were created, 1 otherwise. This file is not named ``test_*`` on purpose: pytest never collects it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import multiprocessing
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402
from pydantic import SecretStr  # noqa: E402
from sqlalchemy import text  # noqa: E402

from bot.app import DEPS, create_app  # noqa: E402
from bot.clock import SystemClock  # noqa: E402
from bot.config import PulseOpsConfig, Settings, parse_config  # noqa: E402
from bot.domain.matchers import parse_matchers  # noqa: E402
from bot.sandbox.emulator import Emulator  # noqa: E402
from bot.server import start  # noqa: E402
from tests.conftest import (  # noqa: E402
    BOT_TOKEN,
    CHANNELS,
    CONFIG_YAML,
    PG_URL_ENV,
    SIGNING_SECRET,
    TOKENS,
    USERS,
    alertmanager_payload,
    reset_postgres,
)

DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
INTEGRATION = "prometheus"
INCIDENTS_CHANNEL = "C0INCIDENT"
INCIDENT_NUMBER = re.compile(r"^INC-(\d+)\b")
CHANNEL_NAME = re.compile(r"^inc-(\d+)(?:-|$)")


# ---- configuration ----------------------------------------------------------------------


@dataclass(frozen=True)
class BenchConfig:
    alerts: int
    fingerprints: int
    concurrency: int
    rate: float | None
    slack_latency_ms: float
    db: str
    timeout_s: float
    poll_ms: float
    as_json: bool
    routes: int = 0
    classifier: bool = False
    silences: int = 0


def parse_args(argv: list[str] | None = None) -> BenchConfig:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--alerts", type=int, default=2000, help="webhooks to post (N)")
    parser.add_argument(
        "--fingerprints",
        type=int,
        default=100,
        help="distinct groupKeys/fingerprints, cycled (K = incidents expected)",
    )
    parser.add_argument(
        "--concurrency", type=int, default=50, help="concurrent HTTP connections (C)"
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help="send at this many webhooks/s, as monitors do, instead of as fast as answers come"
        " back (open loop; the connections still cap what is in flight)",
    )
    parser.add_argument(
        "--slack-latency-ms",
        type=float,
        default=50.0,
        help="latency the emulator adds to every Web API call",
    )
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        dest="timeout_s",
        help="how long to wait for every incident's messages after ingest",
    )
    parser.add_argument("--poll-ms", type=float, default=10.0, help="emulator polling interval")
    parser.add_argument(
        "--silences",
        type=int,
        default=0,
        help="active silences (matching none of the load's alerts) every alert is checked against",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        dest="as_json",
        help="print the report as JSON instead of a table",
    )
    parser.add_argument(
        "--routes",
        type=int,
        default=0,
        help="configure N routes: N-1 that match no bench alert, then one that matches all",
    )
    parser.add_argument(
        "--classifier",
        action="store_true",
        help="configure a classifier (10 categories and 3 severities, 5 keywords each)",
    )
    ns = parser.parse_args(argv)
    if ns.alerts < 1 or ns.fingerprints < 1 or ns.concurrency < 1:
        parser.error("--alerts, --fingerprints and --concurrency must be positive")
    if ns.rate is not None and ns.rate <= 0:
        parser.error("--rate must be positive")
    return BenchConfig(**vars(ns))


async def database_url(kind: str, tmp: Path) -> str:
    """A fresh database: a SQLite file in `tmp`, or a PostgreSQL schema dropped and recreated."""
    if kind == "sqlite":
        return f"sqlite+aiosqlite:///{tmp / 'pulseops.db'}"
    url = os.environ.get(PG_URL_ENV) or DEFAULT_PG_URL
    await reset_postgres(url)
    return url


def redact(url: str) -> str:
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


def git_revision() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except OSError:
        return "unknown"
    return out.stdout.strip() or "unknown"


# ---- logs -------------------------------------------------------------------------------


class LogCounter(logging.Handler):
    """Counts log records (INFO and above) by level, logger and message template."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.counts: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        self.counts[f"{record.levelname} {record.name}: {record.msg}"] += 1


def setup_logging() -> LogCounter:
    counter = LogCounter()
    echo = logging.StreamHandler(sys.stderr)
    echo.setLevel(logging.ERROR)
    echo.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    root.addHandler(counter)
    root.addHandler(echo)
    for noisy in ("apscheduler", "slack_sdk", "slack_bolt", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return counter


# ---- the service under test --------------------------------------------------------------


@dataclass
class Stack:
    emu: Emulator
    app: web.Application
    runner: web.AppRunner
    url: str

    async def close(self) -> None:
        await self.runner.cleanup()
        await self.emu.stop()


def unlimited_yaml(config_yaml: str = CONFIG_YAML, extra: str = "") -> str:
    """`config_yaml` with the webhook rate limit lifted (the load is one integration sending
    as fast as it can), plus `extra` incident settings."""
    limits = "  max_body_bytes: 65536\n"
    lifted = "  max_requests_per_second: 1000000\n  request_burst: 1000000\n"
    return config_yaml.replace(limits, limits + lifted + extra)


async def start_emulator(
    slack_latency_ms: float, *, rate_limits: bool = False, port: int = 0
) -> Emulator:
    """The Slack emulator of the tests' workspace, started on `port` (0: a free one), adding
    `slack_latency_ms` to every Web API call (and Slack's rate limits if asked)."""
    emu = Emulator(
        bot_token=BOT_TOKEN,
        signing_secret=SIGNING_SECRET,
        users=USERS,
        channels=CHANNELS,
        rate_limits=rate_limits,
    )
    await emu.start(host="127.0.0.1", port=port)
    emu.set_faults(latency_ms=slack_latency_ms)
    return emu


async def start_stack(
    db_url: str,
    slack_latency_ms: float,
    *,
    config_yaml: str | None = None,
    rate_limits: bool = False,
) -> Stack:
    """The emulator (with per-call latency, and Slack's rate limits if asked) and the real app
    with its jobs, on free ports; the configuration is `unlimited_yaml()` unless given."""
    emu = await start_emulator(slack_latency_ms, rate_limits=rate_limits)
    settings = Settings(
        slack_bot_token=SecretStr(BOT_TOKEN),
        slack_signing_secret=SecretStr(SIGNING_SECRET),
        slack_api_url=emu.api_url,
        database_url=db_url,
    )
    text = config_yaml if config_yaml is not None else unlimited_yaml()
    config: PulseOpsConfig = parse_config(text, source="bench.yml", environ={})
    app = create_app(settings, config, clock=SystemClock(), environ={}, run_jobs=True)
    runner, port = await start(app, host="127.0.0.1", port=0)
    url = f"http://127.0.0.1:{port}"
    emu.request_url = f"{url}/slack/events"
    return Stack(emu=emu, app=app, runner=runner, url=url)


def rules_yaml(routes: int, classifier: bool) -> str:
    """`routes` routes (all but the last match no bench alert, in the shapes people write:
    label equality, negated regex, title regex) and, if asked, a classifier."""
    lines = ["routes:"] if routes else []
    for i in range(max(routes - 1, 0)):
        matchers = (
            [f'team="team-{i}"', 'env="prod"'],
            [f'alertname=~"Other{i}.*"', 'env!~"dev|test"'],
            [f'__title__=~"(?i).*disk {i} full.*"'],
        )[i % 3]
        lines += [f"  - name: route-{i}", f"    matchers: {json.dumps(matchers)}"]
        lines += ["    severity: SEV2", f"    category: cat-{i}"]
    if routes:
        lines += ["  - name: bench", "    matchers: ['alertname=~\"BenchAlert.*\"']"]
        lines += ["    severity: SEV2", "    category: bench"]
    if classifier:
        words = [f"word{n}" for n in range(65)]
        categories = {f"category-{c}": words[c * 5 : c * 5 + 5] for c in range(10)}
        severities = {f"SEV{s + 1}": words[50 + s * 5 : 55 + s * 5] for s in range(3)}
        lines += ["classifier:", f"  categories: {json.dumps(categories)}"]
        lines += [f"  severities: {json.dumps(severities)}"]
    return "\n".join(lines) + "\n" if lines else ""


def routing_cost_us(config: PulseOpsConfig, bodies: list[bytes], calls: int = 20000) -> float:
    """Microseconds per alert of the routing decision alone (`Rules.decide`), in-process."""
    from bot.ingest.parsers import PARSERS

    integration = config.integration(INTEGRATION)
    assert integration is not None
    now = datetime.now(UTC)
    alerts = [a for body in bodies[:200] for a in PARSERS["alertmanager"](json.loads(body), now)]
    decide = config.rules.decide
    started = time.perf_counter()
    for i in range(calls):
        decide(alerts[i % len(alerts)], integration=INTEGRATION, default_service=None)
    return (time.perf_counter() - started) / calls * 1e6


async def outbox_status(app: web.Application) -> dict[str, int]:
    """Outbox rows by status (pending, done, dead)."""
    async with app[DEPS].db.read() as session:
        rows = await session.execute(text("SELECT status, COUNT(*) FROM outbox GROUP BY status"))
        return {str(status): int(count) for status, count in rows.all()}


async def incidents_in_db(app: web.Application) -> int:
    async with app[DEPS].db.read() as session:
        return int(await session.scalar(text("SELECT COUNT(*) FROM incidents")) or 0)


# ---- load -------------------------------------------------------------------------------


def webhook_bodies(alerts: int, fingerprints: int) -> list[bytes]:
    """N Alertmanager v4 bodies over K distinct groupKeys/fingerprints, cycling 0..K-1."""
    bodies = []
    for i in range(alerts):
        k = i % fingerprints
        payload = alertmanager_payload(
            group_key=f'{{}}:{{alertname="BenchAlert{k:04d}"}}',
            alertname=f"BenchAlert{k:04d}",
            summary=f"Bench alert {k:04d} firing",
            fingerprint=f"{k:016x}",
        )
        bodies.append(json.dumps(payload).encode())
    return bodies


@dataclass
class Sent:
    """One webhook request: when it was sent, how long it took, and what came back."""

    index: int
    sent_at: float
    latency_s: float
    status: int  # 0 when the request failed on the client side
    error: str | None = None
    outcomes: list[tuple[str, int | None]] = field(default_factory=list)


async def post_one(http: aiohttp.ClientSession, url: str, index: int, body: bytes) -> Sent:
    headers = {"Authorization": f"Bearer {TOKENS[INTEGRATION]}", "Content-Type": "application/json"}
    sent_at = time.perf_counter()
    try:
        async with http.post(url, data=body, headers=headers) as response:
            payload = await response.json(content_type=None)
            status = response.status
    except (TimeoutError, aiohttp.ClientError, json.JSONDecodeError) as exc:
        return Sent(index, sent_at, time.perf_counter() - sent_at, 0, type(exc).__name__)
    latency = time.perf_counter() - sent_at
    outcomes = []
    if 200 <= status < 300 and isinstance(payload, dict):
        results = payload.get("results", [])
        outcomes = [(r.get("outcome", "?"), r.get("incident_id")) for r in results]
    error = None if 200 <= status < 300 else f"HTTP {status}: {_error_text(payload)}"
    return Sent(index, sent_at, latency, status, error, outcomes)


def _error_text(payload: Any) -> str:
    """The error message of an error answer, without per-request ids (so errors group)."""
    if isinstance(payload, dict) and "error" in payload:
        return str(payload["error"])[:120]
    return str(payload)[:120]


def load_from_another_process(
    url: str, bodies: list[bytes], concurrency: int, rate: float | None
) -> list[Sent]:
    """`post_all` in a process of its own (times are CLOCK_MONOTONIC, shared by processes)."""
    return asyncio.run(post_all(url, bodies, concurrency, rate))


async def post_all(
    url: str, bodies: list[bytes], concurrency: int, rate: float | None = None
) -> list[Sent]:
    """Post every body with at most `concurrency` requests (and connections) in flight.

    With `rate`, body i is not sent before i / rate seconds from the start (open loop).
    """
    target = f"{url}/webhooks/{INTEGRATION}"
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=60)
    results: list[Sent] = []
    work: Iterator[tuple[int, bytes]] = iter(enumerate(bodies))

    start = time.perf_counter()

    async def worker(http: aiohttp.ClientSession) -> None:
        for index, body in work:  # a shared iterator: each item goes to exactly one worker
            if rate is not None:
                await asyncio.sleep(start + index / rate - time.perf_counter())
            results.append(await post_one(http, target, index, body))

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
    return sorted(results, key=lambda s: s.index)


# ---- watching Slack ----------------------------------------------------------------------


class SlackWatcher:
    """Polls the emulator and records when each incident's messages first exist."""

    def __init__(self, emu: Emulator, interval_s: float) -> None:
        self.emu = emu
        self.interval_s = interval_s
        self.announced_at: dict[int, float] = {}
        self.channel_message_at: dict[int, float] = {}
        self._incident_channels: dict[int, str] = {}
        self._known_channels: set[str] = set()
        self._scanned_announcements = 0
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
        history = self.emu.ws.history
        announcements = history.get(INCIDENTS_CHANNEL, [])
        for message in announcements[self._scanned_announcements :]:
            number = _incident_number(message)
            if number is not None:
                self.announced_at.setdefault(number, now)
        self._scanned_announcements = len(announcements)
        for channel_id, channel in list(self.emu.channels.items()):
            if channel_id in self._known_channels:
                continue
            self._known_channels.add(channel_id)
            match = CHANNEL_NAME.match(channel.name)
            if match:
                self._incident_channels[int(match.group(1))] = channel_id
        for number, channel_id in self._incident_channels.items():
            if number in self.channel_message_at:
                continue
            if any(_incident_number(m) == number for m in history.get(channel_id, [])):
                self.channel_message_at[number] = now

    def complete(self, incidents: set[int]) -> bool:
        return incidents <= self.announced_at.keys() and incidents <= self.channel_message_at.keys()


def _incident_number(message: dict[str, Any]) -> int | None:
    match = INCIDENT_NUMBER.match(message.get("text") or "")
    return int(match.group(1)) if match else None


async def wait_until(predicate: Callable[[], bool], deadline: float, step_s: float = 0.01) -> bool:
    while not predicate():
        if time.perf_counter() >= deadline:
            return False
        await asyncio.sleep(step_s)
    return True


async def wait_outbox_empty(app: web.Application, deadline: float) -> bool:
    while (await outbox_status(app)).get("pending", 0) > 0:
        if time.perf_counter() >= deadline:
            return False
        await asyncio.sleep(0.1)
    return True


# ---- figures -----------------------------------------------------------------------------


def percentiles_ms(values: list[float]) -> dict[str, float | None]:
    """p50, p99 and max in milliseconds (None when there are no values)."""
    if not values:
        return {"p50": None, "p99": None, "max": None}
    p99 = values[0]
    if len(values) > 1:
        p99 = statistics.quantiles(values, n=100, method="inclusive")[98]
    return {
        "p50": round(statistics.median(values) * 1000, 1),
        "p99": round(p99 * 1000, 1),
        "max": round(max(values) * 1000, 1),
    }


def creators(sent: list[Sent]) -> dict[int, float]:
    """Incident id -> send time of the first 2xx webhook whose outcome was `created`."""
    first: dict[int, float] = {}
    for s in sorted(sent, key=lambda s: s.sent_at):
        for outcome, incident_id in s.outcomes:
            if outcome == "created" and incident_id is not None:
                first.setdefault(incident_id, s.sent_at)
    return first


def cpu_seconds() -> float:
    """User + system CPU time of this process so far (every thread)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def delays(start: dict[int, float], seen: dict[int, float]) -> list[float]:
    """Seconds from each incident's creating webhook to its message being seen."""
    return [seen[i] - t for i, t in start.items() if i in seen]


def peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux (bytes on macOS)
    scale = 1 if sys.platform == "darwin" else 1024
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20, 1)


def machine(cfg: BenchConfig, db_url: str) -> dict[str, Any]:
    return {
        "alerts (N)": cfg.alerts,
        "fingerprints (K)": cfg.fingerprints,
        "concurrency (C)": cfg.concurrency,
        "send rate /s": cfg.rate or "as fast as answered",
        "slack latency ms": cfg.slack_latency_ms,
        "silences": cfg.silences,
        "db": f"{cfg.db} ({redact(db_url)})",
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load avg (1m) at start": round(os.getloadavg()[0], 2),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "revision": git_revision(),
    }


def report(
    cfg: BenchConfig,
    sent: list[Sent],
    ingest_s: float,
    watcher: SlackWatcher,
    emu: Emulator,
    *,
    incidents_db: int,
    outbox: dict[str, int],
    drained_s: float | None,
    total_s: float,
    cpu_s: float,
    logs: Counter[str],
) -> dict[str, Any]:
    accepted = [s for s in sent if 200 <= s.status < 300]
    failed = Counter(s.error or "?" for s in sent if not 200 <= s.status < 300)
    outcomes = Counter(o for s in accepted for o, _ in s.outcomes)
    created = creators(sent)
    announce = delays(created, watcher.announced_at)
    channel = delays(created, watcher.channel_message_at)
    by_method = Counter(call["method"] for call in emu.calls)
    k = cfg.fingerprints
    return {
        "webhooks": {
            "sent": len(sent),
            "accepted (2xx)": len(accepted),
            "accepted/s": round(len(accepted) / ingest_s, 1) if ingest_s else None,
            "latency ms": percentiles_ms([s.latency_s for s in sent]),
            "errors": dict(failed),
            "outcomes": dict(outcomes),
            "ingest phase s": round(ingest_s, 3),
        },
        "incidents": {
            "created (answers)": len(created),
            "in database": incidents_db,
            "expected (K)": k,
            "ok": len(created) == k and incidents_db == k,
        },
        "alert -> slack ms": {
            "announcement": {**percentiles_ms(announce), "seen": len(announce)},
            "channel message": {**percentiles_ms(channel), "seen": len(channel)},
        },
        "slack calls": {
            "total": len(emu.calls),
            "per incident": round(len(emu.calls) / k, 2),
            "per incident by method": {m: round(n / k, 2) for m, n in by_method.most_common()},
            "non-200 answers": sum(1 for c in emu.calls if c.get("status") not in (200, None)),
        },
        "outbox": {
            "undelivered at end (pending)": outbox.get("pending", 0),
            "dead": outbox.get("dead", 0),
            "done": outbox.get("done", 0),
            "drained s after last webhook": round(drained_s, 3) if drained_s is not None else None,
        },
        "process": {
            "peak RSS MB": peak_rss_mb(),
            "total wall s": round(total_s, 3),
            "CPU s (user+sys, all threads)": round(cpu_s, 2),
            "CPU / wall": round(cpu_s / total_s, 2) if total_s else None,
        },
        "app log records (INFO+)": dict(logs.most_common(12)),
    }


def _is_short_row(value: Any) -> bool:
    """A small flat mapping (percentiles) printed on one line."""
    return (
        isinstance(value, dict)
        and 0 < len(value) <= 4
        and all(not isinstance(v, dict) and len(str(k)) < 12 for k, v in value.items())
    )


def print_table(title: str, data: dict[str, Any], indent: int = 0) -> None:
    pad = "  " * indent
    if indent == 0:
        print(f"\n== {title} " + "=" * max(0, 70 - len(title)))
    for key, value in data.items():
        if _is_short_row(value):
            inline = "  ".join(f"{k}={v}" for k, v in value.items())
            print(f"{pad}  {key:<34} {inline}")
        elif isinstance(value, dict):
            print(f"{pad}  {key}:" + ("" if value else " -"))
            print_table(key, value, indent + 1)
        else:
            print(f"{pad}  {key:<34} {value}")


# ---- main ---------------------------------------------------------------------------------


async def add_silences(app: web.Application, count: int) -> None:
    """`count` active silences, each of three matchers, that match none of the load's alerts
    (every new alert is still checked against all of them)."""
    service = app[DEPS].silences
    until = datetime.now(UTC) + timedelta(hours=1)
    for n in range(count):
        matchers = parse_matchers(
            [f'service="other-{n}"', f'alertname=~"Other{n}.*"', 'env!="staging"']
        )
        await service.create(
            matchers=matchers, starts_at=None, ends_at=until, comment="bench", by="bench"
        )


async def run(cfg: BenchConfig) -> dict[str, Any]:
    logs = setup_logging()
    with tempfile.TemporaryDirectory(prefix="pulseops-bench-") as tmp:
        db_url = await database_url(cfg.db, Path(tmp))
        config_block = machine(cfg, db_url)
        bodies = webhook_bodies(cfg.alerts, cfg.fingerprints)
        config_yaml = unlimited_yaml() + rules_yaml(cfg.routes, cfg.classifier)
        routing_config = parse_config(config_yaml, source="bench.yml", environ={})
        routing = {
            "routes": cfg.routes,
            "classifier": cfg.classifier,
            "decide us/alert": round(routing_cost_us(routing_config, bodies), 2),
        }
        stack = await start_stack(db_url, cfg.slack_latency_ms, config_yaml=config_yaml)
        await add_silences(stack.app, cfg.silences)
        watcher = SlackWatcher(stack.emu, cfg.poll_ms / 1000)
        # the load comes from another process, as monitors are other processes: the service's
        # event loop is not also the load generator's (spawned, so it starts clean)
        load = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        load.submit(time.sleep, 0).result()  # started before the clock starts
        try:
            watcher.start()
            cpu0 = cpu_seconds()
            t0 = time.perf_counter()
            sent = await asyncio.get_running_loop().run_in_executor(
                load, load_from_another_process, stack.url, bodies, cfg.concurrency, cfg.rate
            )
            t_ingested = time.perf_counter()
            incidents = set(creators(sent))
            deadline = t_ingested + cfg.timeout_s
            complete = await wait_until(lambda: watcher.complete(incidents), deadline)
            drained = await wait_outbox_empty(stack.app, deadline)
            t_end = time.perf_counter()
            watcher.poll()
            if not complete:
                print(
                    f"WARNING: not every incident message appeared within {cfg.timeout_s}s",
                    file=sys.stderr,
                )
            figures = report(
                cfg,
                sent,
                max(s.sent_at + s.latency_s for s in sent) - t0,
                watcher,
                stack.emu,
                incidents_db=await incidents_in_db(stack.app),
                outbox=await outbox_status(stack.app),
                drained_s=(t_end - t_ingested) if drained else None,
                total_s=t_end - t0,
                cpu_s=cpu_seconds() - cpu0,
                logs=logs.counts,
            )
        finally:
            load.shutdown()
            await watcher.stop()
            await stack.close()
    return {"configuration": config_block, "routing": routing, **figures}


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    result = asyncio.run(run(cfg))
    if cfg.as_json:
        print(json.dumps(result, indent=2, default=str))
    else:
        for section, data in result.items():
            print_table(section, data)
    ok = result["incidents"]["ok"] and not result["webhooks"]["errors"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
