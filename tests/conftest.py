"""Shared fixtures: the Slack emulator, the running app (SQLite or PostgreSQL) and payload builders.

Scenario tests talk to the app only over HTTP, as Slack and monitors do, and read the
emulator's recorded Web API calls and the database.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiohttp
import pytest
from pydantic import SecretStr
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.app import DEPS, create_app
from bot.clock import Clock, ManualClock
from bot.config import PulseOpsConfig, Settings, parse_config
from bot.deps import Deps
from bot.sandbox.emulator import Emulator, EmulatorUser
from bot.server import close_socket_mode, connect_socket_mode, settle_heap, start
from bot.slack.ids import ESCAPED_COMMANDS

BOT_TOKEN = "xoxb-test-token"
SIGNING_SECRET = "test-signing-secret"
PG_URL_ENV = "PULSEOPS_TEST_DATABASE_URL"

CONFIG_YAML = """
slack:
  incidents_channel: "C0INCIDENT"
teams:
  - id: payments
    name: Payments
    channel: "C0PAYMENTS"
    members: ["U0ALICE01", "U0BOB0001"]
  - id: search
    name: Search
    channel: "C0SEARCH1"
    members: ["U0CAROL01"]
services:
  - id: payment-api
    name: Payment API
    team: payments
  - id: search-api
    name: Search API
    team: search
  - id: batch-jobs
    name: Batch Jobs
    team: search
    auto_resolve: false
integrations:
  - name: prometheus
    type: alertmanager
    token: "prom-token"
    service: payment-api
  - name: generic
    type: generic
    token: "generic-token"
    service: search-api
  - name: pagerduty
    type: pagerduty
    token: "pd-token"
    service: payment-api
api_tokens:
  - name: tester
    token: "api-test-token"
    scopes: [read, write]
  - name: reader
    token: "api-read-token"
    scopes: [read]
api:
  burst: 100000  # the fuzz tests read the API often under a frozen clock
incidents:
  idempotency_ttl: 1h
  repeat_note_interval: 1h
  max_body_bytes: 65536
health:
  commit_timeout: 30s  # a loaded test machine is slow; tests of the bound set a short one
"""

TOKENS = {"prometheus": "prom-token", "generic": "generic-token", "pagerduty": "pd-token"}
API_TOKEN = "api-test-token"  # the `tester` API token: read and write
READ_TOKEN = "api-read-token"  # the `reader` API token: read only

USERS = [
    EmulatorUser(id="U0ALICE01", name="alice", real_name="Alice"),
    EmulatorUser(id="U0BOB0001", name="bob", real_name="Bob"),
    EmulatorUser(id="U0CAROL01", name="carol", real_name="Carol"),
]
CHANNELS = [("C0INCIDENT", "incidents"), ("C0PAYMENTS", "payments"), ("C0SEARCH1", "search")]


def pg_url() -> str | None:
    return os.environ.get(PG_URL_ENV) or None


async def reset_postgres(url: str) -> None:
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    """Which store a test runs on; parametrise with ["sqlite", "postgres"] (indirect)."""
    return str(request.param)


async def _admin(url: str, statement: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


@pytest.fixture(autouse=True, scope="module")
def _settled_heap() -> None:
    """Move what the run holds so far (modules, caches, earlier tests' leftovers: millions of
    objects late in the run) out of the garbage collector's way, as `pulseops serve` does
    with its start-up heap. Otherwise a full collection walks them all with the event loop
    stopped: up to 4 s measured, past Slack's 3 s for acknowledging a slash command."""
    settle_heap()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str | None]:
    """A database of this test run's own on the server named by PULSEOPS_TEST_DATABASE_URL.

    Created once and dropped at the end, so a concurrent run (or anything else using the
    configured database) cannot disturb the tests.
    """
    url = pg_url()
    if not url:
        yield None
        return
    name = f"pulseops_test_{os.getpid()}_{secrets.token_hex(3)}"
    asyncio.run(_admin(url, f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def database_url(backend: str, tmp_path: Path, pg_database: str | None) -> str:
    if backend == "postgres":
        if not pg_database:
            pytest.skip(f"{PG_URL_ENV} is not set: PostgreSQL leg skipped")
        await reset_postgres(pg_database)
        return pg_database
    return f"sqlite+aiosqlite:///{tmp_path / 'pulseops.db'}"


def alertmanager_payload(
    *,
    alerts: list[dict[str, Any]] | None = None,
    status: str = "firing",
    group_key: str = '{}:{alertname="HighErrorRate"}',
    alertname: str = "HighErrorRate",
    summary: str = "Checkout error rate above 5%",
    severity: str = "critical",
    service: str | None = "payment-api",
    fingerprint: str = "a1b2c3d4e5f60001",
) -> dict[str, Any]:
    """A real Alertmanager v4 webhook body (the shape Alertmanager 0.2x sends)."""
    if alerts is None:
        labels = {"alertname": alertname, "severity": severity, "instance": "web-1:9100"}
        if service:
            labels["service"] = service
        alerts = [
            {
                "status": status,
                "labels": labels,
                "annotations": {
                    "summary": summary,
                    "description": "5xx ratio over 5 minutes",
                    "runbook_url": "https://runbooks.example.com/high-error-rate",
                },
                "startsAt": "2026-11-23T02:58:00.000Z",
                "endsAt": "2026-11-23T03:10:00.000Z"
                if status == "resolved"
                else "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus:9090/graph?g0.expr=rate",
                "fingerprint": fingerprint,
            }
        ]
    return {
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "pulseops",
        "groupLabels": {"alertname": alertname},
        "commonLabels": alerts[0]["labels"] if alerts else {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": alerts,
    }


class Harness:
    """The running service plus the emulator, driven over HTTP.

    `async with Harness(...) as h:` starts the service and closes it on leaving.
    """

    def __init__(
        self,
        *,
        emulator: Emulator,
        database_url: str,
        config: PulseOpsConfig,
        clock: Clock,
        run_jobs: bool = False,
        environ: dict[str, str] | None = None,
    ) -> None:
        self.run_jobs = run_jobs
        self.environ = environ or {}
        self.emu = emulator
        self.database_url = database_url
        self.config = config
        self.clock = clock
        self.url = ""
        self._runner: Any = None
        self.app: Any = None
        self.http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def deps(self) -> Deps:
        return self.app[DEPS]  # type: ignore[no-any-return]

    def settings(self) -> Settings:
        return Settings(
            slack_bot_token=SecretStr(BOT_TOKEN),
            slack_signing_secret=SecretStr(SIGNING_SECRET),
            slack_api_url=self.emu.api_url,
            database_url=self.database_url,
        )

    async def start(self) -> None:
        self.app = create_app(
            self.settings(),
            self.config,
            clock=self.clock,
            environ=self.environ,
            run_jobs=self.run_jobs,
        )
        self._runner, port = await start(self.app, host="127.0.0.1", port=0)
        self.url = f"http://127.0.0.1:{port}"
        self.emu.request_url = f"{self.url}/slack/events"
        if self.http is None:
            self.http = aiohttp.ClientSession()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def close(self) -> None:
        await self.stop()
        if self.http is not None:
            await self.http.close()

    @asynccontextmanager
    async def replica(self) -> AsyncIterator[Deps]:
        """A second replica of the service on the same database (no jobs); yields its Deps."""
        other = create_app(
            self.settings(), self.config, clock=self.clock, environ={}, run_jobs=False
        )
        runner, _ = await start(other, host="127.0.0.1", port=0)
        try:
            yield other[DEPS]
        finally:
            await runner.cleanup()

    async def post_alert(
        self,
        body: Any,
        *,
        integration: str = "prometheus",
        token: str | None = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> tuple[int, Any]:
        assert self.http is not None
        hdrs = {
            "Authorization": f"Bearer {token or TOKENS.get(integration, 'x')}",
            "Content-Type": "application/json",
        }
        hdrs.update(headers or {})
        kwargs: dict[str, Any] = {"data": raw} if raw is not None else {"json": body}
        async with self.http.post(
            f"{self.url}/webhooks/{integration}", headers=hdrs, **kwargs
        ) as r:
            return r.status, await r.json(content_type=None)

    async def get(self, path: str, *, token: str | None = API_TOKEN) -> tuple[int, Any]:
        """GET `path` with the read/write API token (`token=None`: no Authorization header)."""
        return await self.call("GET", path, token=token)

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = API_TOKEN,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """One API request: JSON body in, (status, decoded JSON or text) out."""
        assert self.http is not None
        hdrs = {"Authorization": f"Bearer {token}"} if token is not None else {}
        hdrs.update(headers or {})
        kwargs: dict[str, Any] = {} if body is None else {"json": body}
        async with self.http.request(method, f"{self.url}{path}", headers=hdrs, **kwargs) as r:
            if r.content_type == "application/json":
                return r.status, await r.json()
            return r.status, await r.text()

    async def settle(self) -> None:
        """Deliver every due outbox row (the worker's kick plus explicit drains)."""
        outbox = self.deps.outbox
        await outbox.wait_idle()
        while await outbox.drain():
            pass
        await outbox.wait_idle()

    async def incident(self, incident_id: int) -> dict[str, Any]:
        status, body = await self.get(f"/api/v1/incidents/{incident_id}")
        assert status == 200, body
        return body  # type: ignore[no-any-return]


APP_TOKEN = "xapp-1-A0PULSEOPS-1234567890-abcdef"


class SocketHarness(Harness):
    """The running service in Socket Mode: HTTP site for webhooks, Slack over the socket."""

    handler: Any = None

    def settings(self) -> Settings:
        return Settings(
            slack_bot_token=SecretStr(BOT_TOKEN),
            slack_app_token=SecretStr(APP_TOKEN),  # no signing secret: Socket Mode needs none
            slack_api_url=self.emu.api_url,
            database_url=self.database_url,
        )

    async def start(self) -> None:
        settings = self.settings()
        assert settings.socket_mode
        self.app = create_app(settings, self.config, clock=self.clock, environ={}, run_jobs=False)
        self._runner, port = await start(self.app, host="127.0.0.1", port=0)
        self.url = f"http://127.0.0.1:{port}"
        if self.http is None:
            self.http = aiohttp.ClientSession()
        self.handler = await connect_socket_mode(self.app, settings)
        await self.emu.wait_for_socket()

    async def stop(self) -> None:
        await close_socket_mode(self.handler)
        self.handler = None
        await super().stop()


@asynccontextmanager
async def emulated(**workspace: Any) -> AsyncIterator[Emulator]:
    """The test workspace (USERS, CHANNELS, the test tokens) in a running emulator, stopped on
    leaving; `workspace` adds Emulator options (an app token, a plan, user groups)."""
    emu = Emulator(
        bot_token=BOT_TOKEN,
        signing_secret=SIGNING_SECRET,
        users=USERS,
        channels=CHANNELS,
        **{"escaped_commands": ESCAPED_COMMANDS, **workspace},
    )
    await emu.start(host="127.0.0.1", port=0)
    try:
        yield emu
    finally:
        await emu.stop()


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with emulated() as emu:
        yield emu


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def config() -> PulseOpsConfig:
    return parse_config(CONFIG_YAML, source="test.yml", environ={})


@pytest.fixture
async def harness(
    emulator: Emulator, database_url: str, config: PulseOpsConfig, clock: ManualClock
) -> AsyncIterator[Harness]:
    async with Harness(
        emulator=emulator, database_url=database_url, config=config, clock=clock
    ) as h:
        yield h
