"""Run the app: an aiohttp site, plus a Socket Mode connection when SLACK_APP_TOKEN is set."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from bot.app import BOLT, create_app
from bot.config import PulseOpsConfig, Settings

log = logging.getLogger(__name__)


async def start(app: web.Application, *, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Start serving `app`; return the runner and the bound port (port 0 picks a free one)."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1] if runner.addresses else port
    return runner, int(bound)


async def serve(settings: Settings, config: PulseOpsConfig, *, host: str, port: int) -> None:
    """Serve until SIGINT/SIGTERM."""
    app = create_app(settings, config)
    runner, bound = await start(app, host=host, port=port)
    socket_handler = None
    if settings.socket_mode:
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

        assert settings.slack_app_token is not None
        socket_handler = AsyncSocketModeHandler(
            app[BOLT], settings.slack_app_token.get_secret_value()
        )
        await socket_handler.connect_async()  # type: ignore[no-untyped-call]
        log.info("connected to Slack over Socket Mode")
    log.info("PulseOps listening", extra={"host": host, "port": bound})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    if socket_handler is not None:
        await socket_handler.close_async()  # type: ignore[no-untyped-call]
    await runner.cleanup()
