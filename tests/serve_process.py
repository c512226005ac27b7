"""`pulseops serve` as a child process (killable with SIGKILL), and bounded waits for it."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.conftest import BOT_TOKEN, CONFIG_YAML, SIGNING_SECRET
from tests.sandbox_process import ROOT, free_port


class Service:
    """`pulseops serve` as a child process against a Slack API URL and one database.

    `name` tells several of them apart (their logs, `<name>.log` under `tmp_path`); `config`
    is the YAML they run with (written once, shared); `env` adds environment variables.
    """

    def __init__(
        self,
        tmp_path: Path,
        slack_api_url: str,
        database_url: str,
        *,
        config: str = CONFIG_YAML,
        env: Mapping[str, str] | None = None,
        name: str = "serve",
    ) -> None:
        path = tmp_path / "pulseops.yml"
        if not path.exists() or path.read_text() != config:
            path.write_text(config)
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp_path / f"{name}.log"
        self.env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": slack_api_url,
            "PULSEOPS_DATABASE_URL": database_url,
            "PULSEOPS_CONFIG": str(path),
            "PULSEOPS_HOST": "127.0.0.1",
            "PULSEOPS_PORT": str(self.port),
            "PULSEOPS_LOG_LEVEL": "ERROR",
            **(env or {}),
        }
        self.cwd = tmp_path
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, http: aiohttp.ClientSession, *, ready: str = "/healthz") -> None:
        """Start the process and wait (at most 30 s) until `ready` answers 200."""
        with self.log.open("a") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot.cli",
                "serve",
                env=self.env,
                cwd=self.cwd,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + 30
        while True:
            assert self.process.returncode is None, self.log.read_text()
            with suppress(aiohttp.ClientError):
                async with http.get(f"{self.url}{ready}") as response:
                    if response.status == 200:
                        return
            assert time.monotonic() < deadline, self.log.read_text()
            await asyncio.sleep(0.1)

    async def kill(self) -> None:
        """SIGKILL: no clean-up runs, claims and leases are left behind."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 15)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


@asynccontextmanager
async def engine_for(url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(url)
    try:
        yield engine
    finally:
        await engine.dispose()


async def wait_until(
    probe: Callable[[], Awaitable[bool]], *, within: float, what: str, every: float = 0.1
) -> float:
    """Poll the async `probe` until it is true; return the seconds it took."""
    start = time.monotonic()
    while not await probe():
        assert time.monotonic() - start < within, f"timed out waiting for {what}"
        await asyncio.sleep(every)
    return time.monotonic() - start
