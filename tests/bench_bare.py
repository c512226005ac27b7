"""The bare limit of webhook ingest on this machine: the least a durable receiver can do.

A minimal aiohttp server that answers ``POST /webhooks/{integration}`` as PulseOps does, in
the least work a durable receiver can do: it reads the body (at most 64 KiB), checks that it
is JSON, stores it with group commit (bodies that arrive while a transaction is in flight
share the next one) and answers ``202`` only after the commit. No authentication, no
parsing into alerts, no incidents, no logging, no metrics. On SQLite it uses aiosqlite's own
``Connection.execute`` (one trip to its thread a statement, as PulseOps' ``store.sqlite_driver``)
with PulseOps' settings (WAL, ``synchronous=NORMAL``, ``BEGIN IMMEDIATE``); on PostgreSQL asyncpg
without SQLAlchemy.

``tests/bench_wrk.py`` runs it side by side with PulseOps in the same run, so PulseOps'
figures can be given as a share of what this machine can do at that moment.

``--http pulseops`` serves the same handler through PulseOps' own HTTP layer instead: its
middleware (request id, error mapping, the latency histogram, the JSON access log line), its
slow-client guard and keep-alive settings (``bot.server.start``), uvloop, JSON logging and
the frozen start-up heap (``bot.server.settle_heap``) as ``pulseops serve`` sets them up.
What PulseOps could reach if its alert pipeline cost nothing.

``--receive CONFIG`` (with ``--http pulseops``) also runs PulseOps' receiving stages of that
configuration on each request instead of the JSON check: authentication, rate limit, body
limit, JSON, the integration's parser (``bot.ingest.pipeline``), refusing bad deliveries as
PulseOps does; then the body is stored as above. What PulseOps could reach if deciding and
recording each alert cost nothing.

Usage (from the repository root)::

    python tests/bench_bare.py --database-url sqlite:////tmp/bare.db --port 3100
    python tests/bench_bare.py --database-url postgresql://postgres@127.0.0.1:5432/bare --port 3100
    python tests/bench_bare.py --database-url sqlite:////tmp/bare.db --port 3100 --http pulseops
    python tests/bench_bare.py --database-url sqlite:////tmp/bare.db --port 3100 --http pulseops \\
        --receive pulseops.yml

It creates its one table (``bare_deliveries``) if missing. Not named ``test_*``: pytest never
collects it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from aiohttp import web  # noqa: E402

from store.batching import Batcher  # noqa: E402

MAX_BODY = 64 * 1024
MAX_BATCH = 256
Store = Callable[[list[bytes]], Awaitable[Sequence[None]]]
Receive = Callable[[web.Request], Awaitable[bytes]]  # PulseOps' receiving stages: the body


async def sqlite_store(path: str) -> tuple[Store, Callable[[], Awaitable[None]]]:
    import aiosqlite

    conn = await aiosqlite.connect(path, isolation_level=None)
    await conn.execute("PRAGMA journal_mode=WAL")
    await conn.execute("PRAGMA synchronous=NORMAL")
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS bare_deliveries "
        "(id INTEGER PRIMARY KEY, received_at REAL NOT NULL, body BLOB NOT NULL)"
    )

    async def store(bodies: list[bytes]) -> list[None]:
        now = time.time()
        await conn.execute("BEGIN IMMEDIATE")
        try:
            await conn.executemany(
                "INSERT INTO bare_deliveries (received_at, body) VALUES (?, ?)",
                [(now, body) for body in bodies],
            )
        except BaseException:
            await conn.execute("ROLLBACK")
            raise
        await conn.execute("COMMIT")
        return [None] * len(bodies)

    return store, conn.close


async def postgres_store(url: str) -> tuple[Store, Callable[[], Awaitable[None]]]:
    import asyncpg

    pool = await asyncpg.create_pool(url, min_size=1, max_size=4)
    await pool.execute(
        "CREATE TABLE IF NOT EXISTS bare_deliveries "
        "(id BIGSERIAL PRIMARY KEY, received_at DOUBLE PRECISION NOT NULL, body BYTEA NOT NULL)"
    )

    async def store(bodies: list[bytes]) -> list[None]:
        now = time.time()
        async with pool.acquire() as conn, conn.transaction():
            await conn.executemany(
                "INSERT INTO bare_deliveries (received_at, body) VALUES ($1, $2)",
                [(now, body) for body in bodies],
            )
        return [None] * len(bodies)

    return store, pool.close


def sqlite_path(url: str) -> str | None:
    """The file of a ``sqlite:///`` URL (any ``+driver``), else None."""
    scheme, sep, rest = url.partition(":///")
    if sep and scheme.split("+")[0] == "sqlite":
        return rest
    return None


def make_app(
    store: Store, *, middlewares: Sequence[Any] = (), receive_with: Receive | None = None
) -> web.Application:
    """The one route; `receive_with` runs PulseOps' receiving stages first (their refusals
    raise, for PulseOps' middleware to answer)."""
    batcher: Batcher[bytes, None] = Batcher(store, max_batch=MAX_BATCH)
    accepted = json.dumps({"status": "accepted"}).encode()

    async def receive(request: web.Request) -> web.Response:
        if receive_with is not None:
            body = await receive_with(request)
        else:
            body = await request.read()
            try:
                json.loads(body)
            except ValueError:
                return web.json_response({"error": "body is not valid JSON"}, status=400)
        await batcher.submit(body)
        return web.Response(body=accepted, status=202, content_type="application/json")

    app = web.Application(client_max_size=MAX_BODY, middlewares=middlewares)
    app.router.add_post("/webhooks/{integration}", receive)
    return app


def receiving_stages(config_path: str, metrics: Any) -> Receive:
    """Run the receiving stages of the PulseOps configuration at `config_path` on a request,
    as PulseOps' webhook route does; the body once they have passed."""
    import os
    from datetime import UTC, datetime

    from bot.config import parse_config
    from bot.ingest.pipeline import build_pipeline
    from handlers.webhooks import received_of

    config = parse_config(Path(config_path).read_text(), source=config_path, environ=os.environ)
    tokens = {i.name: i.resolve_token(os.environ) for i in config.integrations}
    pipeline = build_pipeline(config, tokens=tokens, metrics=metrics)

    async def receive(request: web.Request) -> bytes:
        received = received_of(request, datetime.now(UTC))
        await pipeline.accept(received)  # the stages fill `received` in as they go
        return received.body

    return receive


async def serve(
    database_url: str, host: str, port: int, http: str, receive: str | None = None
) -> None:
    path = sqlite_path(database_url)
    if path is not None:
        store, close = await sqlite_store(path)
    else:
        store, close = await postgres_store(database_url.replace("+asyncpg", ""))
    runner: web.AppRunner
    if http == "pulseops":
        from bot.metrics import Metrics
        from bot.server import settle_heap, start
        from handlers.middleware import http_middleware

        metrics = Metrics()
        receiving = receiving_stages(receive, metrics) if receive else None
        app = make_app(store, middlewares=[http_middleware(metrics)], receive_with=receiving)
        runner, _ = await start(app, host=host, port=port)
        settle_heap()  # as `pulseops serve`: no full collection walks start-up's objects
    else:
        runner = web.AppRunner(make_app(store), access_log=None, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
    print(f"bare server listening on http://{host}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
    await close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True, help="sqlite:///FILE or postgresql://…")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3100)
    parser.add_argument(
        "--http",
        choices=["plain", "pulseops"],
        default="plain",
        help="plain aiohttp (default), or PulseOps' HTTP layer around the same handler",
    )
    parser.add_argument(
        "--receive",
        metavar="CONFIG",
        help="with --http pulseops: run PulseOps' receiving stages of this configuration file "
        "(authentication, limits, JSON, the integration's parser) before storing the body",
    )
    args: Any = parser.parse_args(argv)
    if args.receive and args.http != "pulseops":
        parser.error("--receive needs --http pulseops (its middleware answers the refusals)")
    if args.http == "pulseops":
        import uvloop

        from bot.logs import configure_logging

        configure_logging(fmt="json", level="INFO")
        uvloop.run(serve(args.database_url, args.host, args.port, args.http, args.receive))
    else:
        asyncio.run(serve(args.database_url, args.host, args.port, args.http))
    return 0


if __name__ == "__main__":
    sys.exit(main())
