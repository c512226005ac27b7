"""Webhook ingest against the machine's limit: PulseOps and a bare server, side by side, by wrk.

Each round starts, on a fresh database each time, `pulseops serve` (the real command: its
JSON logs, metrics and jobs; Slack is the emulator in a process of its own with a latency on
every call) and then `tests/bench_bare.py` (a minimal aiohttp server storing the same body
with group commit, answering after the commit), in turns (A B, then B A, ...). Each gets the
same load from wrk: `--connections` connections posting Alertmanager v4 webhooks
(one alert each) to `POST /webhooks/prometheus` for `--duration` seconds, after a warm-up of
`--warmup` seconds that is not counted, and (PulseOps) until the Slack work the warm-up
caused is done.

The load is an alert storm's shape: the bodies cycle over `--fingerprints` distinct alerts
(groupKeys and fingerprints), so the warm-up opens that many incidents (and their Slack work
runs then), and the measured requests are repeats of alerts already firing, as most of a real
storm is. Every answer must be 2xx: wrk counts the others as errors.

It prints the configuration, then per round and server: requests/s, p50/p99/max latency and
errors, then per server min/median/max of the rounds and the ratio PulseOps / bare of the
medians (SPEC.md "Performance targets": >= 2,000/s with p99 <= 100 ms at 50 connections on
each store, and >= 0.57 of the bare server in the same run).

With ``--http-floor`` a third server runs in the turns: the bare server behind PulseOps' own
HTTP layer (``tests/bench_bare.py --http pulseops``: middleware, access log, slow-client
guard, uvloop), reported as "floor": what PulseOps could reach if its alert pipeline cost
nothing, so the pipeline's share and the HTTP layer's share of the gap can be told apart.
With ``--receive-floor`` another: the floor that also runs PulseOps' receiving stages
(authentication, limits, JSON, the Alertmanager parser) before storing the body, reported as
"receiving": what PulseOps could reach if deciding and recording each alert cost nothing.

Needs wrk (Debian/Ubuntu: ``apt-get install -y wrk``; macOS: ``brew install wrk``).

Usage (from the repository root)::

    python tests/bench_wrk.py --db sqlite --rounds 3
    python tests/bench_wrk.py --db postgres --database-url postgresql://postgres@127.0.0.1:5432/x \\
        --replicas 1 2 3

``--db postgres`` DROPS AND RECREATES the ``public`` schema of the database it is given before
each run (give a throwaway database). With ``--replicas N`` (PostgreSQL only), N `pulseops
serve` processes share the database and the connections are split evenly between them, one
wrk per replica (no load balancer, which would take a core of its own here); the figures are
then the sum of the requests/s and the worst replica's percentiles. Not named ``test_*``:
pytest never collects it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from tests.bench_ingest import (  # noqa: E402
    INTEGRATION,
    git_revision,
    redact,
    start_emulator,
    unlimited_yaml,
    webhook_bodies,
)
from tests.conftest import BOT_TOKEN, SIGNING_SECRET, TOKENS, reset_postgres  # noqa: E402

Servers = list[tuple[str, int]]  # each server process's URL and pid
DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
WRK_INSTALL = "install wrk: apt-get install -y wrk (Debian/Ubuntu) or brew install wrk (macOS)"

# wrk's Lua: cycle through the bodies (one a line), each thread from its own offset; at the
# end print the figures as one JSON line (times in microseconds)
LUA = """
local bodies_path = "%(bodies)s"
local requests = {}
local i = 0
local headers = {["Authorization"] = "Bearer %(token)s", ["Content-Type"] = "application/json"}
local count = 0
setup = function(thread)
  count = count + 1
  thread:set("offset", count * 7)
end
init = function(args)
  for line in io.lines(bodies_path) do
    requests[#requests + 1] = wrk.format("POST", "%(path)s", headers, line)
  end
  i = (offset or 0) %% #requests
end
request = function()
  i = i %% #requests + 1
  return requests[i]
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p99_us": %%d, "max_us": %%d, '
    .. '"connect": %%d, "read": %%d, "write": %%d, "status": %%d, "timeout": %%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
"""


@dataclass(frozen=True)
class WrkConfig:
    db: str
    database_url: str | None
    rounds: int
    duration: int
    warmup: int
    connections: int
    threads: int
    fingerprints: int
    slack_latency_ms: float
    replicas: list[int]
    only: str | None
    http_floor: bool
    receive_floor: bool
    keep_logs: bool
    as_json: bool


def parse_args(argv: list[str] | None = None) -> WrkConfig:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--database-url",
        help="PostgreSQL URL (default: $PULSEOPS_TEST_DATABASE_URL or the test database); "
        "its public schema is dropped and recreated",
    )
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    parser.add_argument("--duration", type=int, default=10, help="measured seconds per run")
    parser.add_argument("--warmup", type=int, default=3, help="uncounted seconds first")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (default 1)")
    parser.add_argument("--fingerprints", type=int, default=100, help="distinct alerts cycled")
    parser.add_argument("--slack-latency-ms", type=float, default=50.0)
    parser.add_argument(
        "--replicas",
        type=int,
        nargs="+",
        default=[1],
        help="PulseOps processes sharing the database (PostgreSQL only), e.g. 1 2 3",
    )
    parser.add_argument(
        "--only",
        choices=["pulseops", "bare", "floor", "receiving"],
        help="run one server only (profiling)",
    )
    parser.add_argument(
        "--http-floor",
        action="store_true",
        help="also run the bare server behind PulseOps' HTTP layer (bench_bare.py --http "
        "pulseops): what PulseOps could reach if its alert pipeline cost nothing",
    )
    parser.add_argument(
        "--receive-floor",
        action="store_true",
        help="also run the bare server behind PulseOps' HTTP layer and its receiving stages "
        "(bench_bare.py --http pulseops --receive): what PulseOps could reach if deciding "
        "and recording each alert cost nothing",
    )
    parser.add_argument("--keep-logs", action="store_true", help="keep PulseOps' logs (printed)")
    parser.add_argument("--json", action="store_true", dest="as_json")
    ns = parser.parse_args(argv)
    if ns.db == "sqlite" and ns.replicas != [1]:
        parser.error("--replicas applies to PostgreSQL (SQLite has one writer)")
    if min(ns.replicas) < 1 or ns.connections < max(ns.replicas):
        parser.error("--replicas must be between 1 and --connections")
    return WrkConfig(**vars(ns))


# ---- processes ----------------------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes], what: str, within: float = 60) -> None:
    """Poll `url` until it answers (any HTTP status); fail if `process` exits first."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with status {process.returncode} before it answered")
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer at {url} within {within:g} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def started(
    command: list[str], *, env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        yield process
    finally:
        stop(process)


@contextmanager
def pulseops(cfg: WrkConfig, db_url: str, tmp: Path, replicas: int) -> Iterator[Servers]:
    """The emulator (a process of its own) and `replicas` `pulseops serve` processes."""
    emulator_port = free_port()
    config = config_file(tmp)
    base_env = {**os.environ, "PYTHONPATH": python_path()}
    emulator_cmd = [
        sys.executable,
        str(Path(__file__)),
        "--run-emulator",
        str(emulator_port),
        str(cfg.slack_latency_ms),
    ]
    with started(emulator_cmd, env=base_env, log=tmp / "emulator.log") as emu:
        wait_ready(f"http://127.0.0.1:{emulator_port}/", emu, "the Slack emulator")
        env = {
            **base_env,
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": f"http://127.0.0.1:{emulator_port}/api/",
            "PULSEOPS_DATABASE_URL": db_url,
        }
        ports = [free_port() for _ in range(replicas)]
        processes = []
        try:
            for n, port in enumerate(ports):
                serve = [sys.executable, "-m", "bot.cli", "serve", "--config", str(config)]
                cmd = [*serve, "--host", "127.0.0.1", "--port", str(port)]
                log = tmp / f"pulseops-{n}.log"
                processes.append(
                    subprocess.Popen(
                        cmd, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, cwd=ROOT
                    )
                )
                # one at a time: the first migrates the database
                wait_ready(f"http://127.0.0.1:{port}/healthz", processes[-1], "pulseops serve")
            yield [
                (f"http://127.0.0.1:{port}", p.pid)
                for port, p in zip(ports, processes, strict=True)
            ]
        finally:
            for process in processes:
                stop(process)


def config_file(tmp: Path) -> Path:
    """The configuration PulseOps runs with here (the receiving server reads the same)."""
    config = tmp / "pulseops.yml"
    config.write_text(unlimited_yaml())
    return config


def python_path() -> str:
    """The repository first, then any PYTHONPATH this run was given."""
    return os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))


@contextmanager
def bare(db_url: str, tmp: Path, http: str = "plain", receive: bool = False) -> Iterator[Servers]:
    """The bare server; `receive`: also PulseOps' receiving stages, of the configuration
    PulseOps runs with here."""
    port = free_port()
    cmd = [sys.executable, str(ROOT / "tests" / "bench_bare.py"), "--database-url", db_url]
    cmd += ["--port", str(port), "--http", http]
    if receive:
        cmd += ["--receive", str(config_file(tmp))]
    name = "receiving" if receive else http
    with started(cmd, env=dict(os.environ), log=tmp / f"bare-{name}.log") as p:
        wait_ready(f"http://127.0.0.1:{port}/", p, "the bare server")
        yield [(f"http://127.0.0.1:{port}", p.pid)]


def run_emulator(port: int, latency_ms: float) -> None:
    """The Slack emulator with `latency_ms` on every call, until SIGTERM (--run-emulator)."""

    async def main() -> None:
        emu = await start_emulator(latency_ms, port=port)
        done = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, done.set)
        loop.add_signal_handler(signal.SIGINT, done.set)
        await done.wait()
        await emu.stop()

    asyncio.run(main())


# ---- load ---------------------------------------------------------------------------------


def wrk(urls: list[str], script: Path, cfg: WrkConfig, seconds: int) -> dict[str, Any]:
    """wrk against every URL at once (the connections split between them); summed figures."""
    split = [
        cfg.connections // len(urls) + (i < cfg.connections % len(urls)) for i in range(len(urls))
    ]
    runs = []
    for url, connections in zip(urls, split, strict=True):
        threads = min(cfg.threads, connections)
        cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s"]
        runs.append(
            subprocess.Popen([*cmd, "-s", str(script), url], stdout=subprocess.PIPE, text=True)
        )
    results = []
    for run in runs:
        out, _ = run.communicate(timeout=seconds + 60)
        line = next((x for x in out.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            raise RuntimeError(f"wrk printed no result:\n{out}")
        results.append(json.loads(line.removeprefix("RESULT ")))
    requests = sum(r["requests"] for r in results)
    errors = {
        k: sum(r[k] for r in results) for k in ("connect", "read", "write", "status", "timeout")
    }
    return {
        "req/s": round(sum(r["requests"] / (r["duration_us"] / 1e6) for r in results), 1),
        "p50 ms": round(max(r["p50_us"] for r in results) / 1000, 1),
        "p99 ms": round(max(r["p99_us"] for r in results) / 1000, 1),
        "max ms": round(max(r["max_us"] for r in results) / 1000, 1),
        "requests": requests,
        "errors": {k: v for k, v in errors.items() if v},
    }


def write_script(tmp: Path, fingerprints: int) -> Path:
    bodies = tmp / "bodies.jsonl"
    # one alert a body; json.dumps writes no newline inside a body
    bodies.write_bytes(b"\n".join(webhook_bodies(fingerprints, fingerprints)) + b"\n")
    script = tmp / "webhooks.lua"
    script.write_text(
        LUA % {"bodies": bodies, "token": TOKENS[INTEGRATION], "path": f"/webhooks/{INTEGRATION}"}
    )
    return script


# ---- databases ----------------------------------------------------------------------------


def fresh_database(cfg: WrkConfig, tmp: Path, name: str) -> str:
    """A new SQLite file, or the PostgreSQL database's public schema dropped and recreated."""
    if cfg.db == "sqlite":
        path = tmp / f"{name}.db"
        for old in tmp.glob(f"{name}.db*"):
            old.unlink()
        return f"sqlite+aiosqlite:///{path}"
    url = pg_url(cfg)
    asyncio.run(reset_postgres(url))
    return url


def pg_url(cfg: WrkConfig) -> str:
    url = cfg.database_url or os.environ.get("PULSEOPS_TEST_DATABASE_URL") or DEFAULT_PG_URL
    if url.startswith("postgresql://"):
        url = "postgresql+asyncpg://" + url.removeprefix("postgresql://")
    return url


# ---- main ---------------------------------------------------------------------------------


def one_run(cfg: WrkConfig, tmp: Path, script: Path, server: str, replicas: int) -> dict[str, Any]:
    db_url = fresh_database(cfg, tmp, server)
    if server == "bare":
        servers = bare(db_url, tmp)
    elif server == "floor":
        servers = bare(db_url, tmp, http="pulseops")
    elif server == "receiving":
        servers = bare(db_url, tmp, http="pulseops", receive=True)
    else:
        servers = pulseops(cfg, db_url, tmp, replicas)
    with servers as running:
        urls = [url for url, _ in running]
        if cfg.warmup:
            wrk(urls, script, cfg, cfg.warmup)
        drained = asyncio.run(slack_work_done(db_url)) if server == "pulseops" else 0.0
        processes = [psutil.Process(pid) for _, pid in running]
        cpu = [sum(p.cpu_times()[:2]) for p in processes]
        figures = wrk(urls, script, cfg, cfg.duration)
        used = sum(sum(p.cpu_times()[:2]) for p in processes) - sum(cpu)
    per_request = round(used / figures["requests"] * 1e6) if figures["requests"] else None
    return {**figures, "server CPU us/request": per_request, "slack work drained s": drained}


async def slack_work_done(db_url: str, within: float = 300) -> float:
    """Wait until the warm-up's Slack work is done (no outbox row due and undelivered), so the
    run measures ingest alone; the seconds it took."""
    from datetime import UTC, datetime

    from sqlalchemy import func, select

    from store.models import OutboxRow
    from store.session import Database

    db = Database(db_url)
    started = time.monotonic()
    try:
        while time.monotonic() - started < within:
            async with db.read() as session:
                due = await session.scalar(
                    select(func.count()).where(
                        OutboxRow.status == "pending",
                        OutboxRow.next_attempt_at <= datetime.now(UTC),
                    )
                )
            if not due:
                break
            await asyncio.sleep(0.5)
    finally:
        await db.dispose()
    return round(time.monotonic() - started, 1)


def summary(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def run(cfg: WrkConfig) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        raise SystemExit(f"wrk is not installed; {WRK_INSTALL}")
    configuration = {
        "db": cfg.db if cfg.db == "sqlite" else f"postgres ({redact(pg_url(cfg))})",
        "connections": cfg.connections,
        "wrk threads": cfg.threads,
        "seconds measured / warm-up": f"{cfg.duration} / {cfg.warmup}",
        "load": f"Alertmanager v4, 1 alert a body, {cfg.fingerprints} fingerprints cycled "
        "(storm shape: measured requests are repeats)",
        "slack latency ms": cfg.slack_latency_ms,
        "rounds (alternating)": cfg.rounds,
        "replicas": cfg.replicas,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load avg (1m) at start": round(os.getloadavg()[0], 2),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "revision": git_revision(),
    }
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="pulseops-wrk-") as tmpdir:
        tmp = Path(tmpdir)
        script = write_script(tmp, cfg.fingerprints)
        servers = [f"pulseops x{n}" for n in cfg.replicas] + ["bare"]
        if cfg.http_floor or cfg.only == "floor":
            servers.append("floor")
        if cfg.receive_floor or cfg.only == "receiving":
            servers.append("receiving")
        if cfg.only is not None:
            servers = [s for s in servers if s.startswith(cfg.only)]
        for round_ in range(cfg.rounds):
            order = servers if round_ % 2 == 0 else servers[::-1]
            for server in order:
                replicas = int(server.split("x")[1]) if server.startswith("pulseops") else 1
                figures = one_run(cfg, tmp, script, server.split()[0], replicas)
                runs.append({"round": round_ + 1, "server": server, **figures})
                print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
        if cfg.keep_logs:
            for log in sorted(tmp.glob("*.log")):
                print(f"== {log.name}\n{log.read_text()[-4000:]}", file=sys.stderr)
    by_server: dict[str, Any] = {}
    for server in dict.fromkeys(r["server"] for r in runs):
        mine = [r for r in runs if r["server"] == server]
        by_server[server] = {
            key: summary([r[key] for r in mine])
            for key in ("req/s", "p50 ms", "p99 ms", "server CPU us/request")
        }
        by_server[server]["errors"] = sum(sum(r["errors"].values()) for r in mine)
    ratios = {}
    if "bare" in by_server:
        limit = by_server["bare"]["req/s"]["median"]
        for server, figures in by_server.items():
            if server != "bare":
                ratios[f"{server} / bare (medians)"] = round(figures["req/s"]["median"] / limit, 2)
    return {"configuration": configuration, "runs": runs, "summary": by_server, "ratio": ratios}


def print_report(result: dict[str, Any]) -> None:
    print("== configuration")
    for key, value in result["configuration"].items():
        print(f"  {key:<28} {value}")
    print("== runs")
    for r in result["runs"]:
        errors = ", ".join(f"{k} {v}" for k, v in r["errors"].items()) or "none"
        print(
            f"  round {r['round']} {r['server']:<12} {r['req/s']:>8.1f} req/s  "
            f"p50 {r['p50 ms']:>6.1f} ms  p99 {r['p99 ms']:>6.1f} ms  max {r['max ms']:>7.1f} ms  "
            f"CPU {r['server CPU us/request']} us/request  errors: {errors}"
        )
    print("== summary (min / median / max over the rounds)")
    for server, figures in result["summary"].items():
        cells = "  ".join(
            f"{key} {f['min']:.1f} / {f['median']:.1f} / {f['max']:.1f}"
            for key, f in figures.items()
            if isinstance(f, dict)
        )
        print(f"  {server:<12} {cells}  errors {figures['errors']}")
    for name, ratio in result["ratio"].items():
        print(f"  {name:<28} {ratio}")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--run-emulator"]:
        run_emulator(int(args[1]), float(args[2]))
        return 0
    cfg = parse_args(args)
    result = run(cfg)
    if cfg.as_json:
        print(json.dumps(result, indent=2))
    else:
        print_report(result)
    errors = sum(s["errors"] for s in result["summary"].values())
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
