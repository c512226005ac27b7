"""Probes through the running app: a real local HTTP server and TCP listener whose status and
latency the test controls; runs claimed from SQL as the clock moves; incidents opened and
resolved through the alert pipeline (announced in the emulator, with the measured numbers);
the probe routes of the API and /metrics; several replicas running each probe once."""

from __future__ import annotations

import asyncio
import random
import re
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import trustme
from aiohttp import web
from sqlalchemy import func, select

from bot.clock import ManualClock
from bot.config import PulseOpsConfig, parse_config
from bot.probing import Checker
from store.models import ProbeResultRow, ProbeRollupRow
from tests.conftest import Harness
from tests.helpers import ONCALL_YAML, WEDNESDAY, dms, fire, reply_text
from tests.scenarios.test_home import open_home

pytestmark = pytest.mark.asyncio
BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)


@dataclass
class Target:
    """A local HTTP server: GET /health answers `status` after `delay` seconds."""

    status: int = 200
    delay: float = 0.0
    jitter: float = 0.0  # plus up to this much at random: a baseline that varies like a real one
    body: bytes = b"ok"
    hits: int = 0
    port: int = 0

    async def health(self, _: web.Request) -> web.Response:
        self.hits += 1
        if self.delay or self.jitter:
            await asyncio.sleep(self.delay + random.uniform(0, self.jitter))
        return web.Response(status=self.status, body=self.body)

    async def moved(self, _: web.Request) -> web.Response:
        # to another host name for the same server: followed only when enabled
        raise web.HTTPFound(f"http://localhost:{self.port}/health")

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/health", self.health)
        app.router.add_get("/moved", self.moved)
        return app


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    t = Target()
    runner = web.AppRunner(t.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    t.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield t
    await runner.cleanup()


@dataclass
class Listener:
    """A TCP listener the test opens and closes on a fixed port."""

    port: int
    server: asyncio.Server | None = None

    async def open(self) -> None:
        async def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.close()

        self.server = await asyncio.start_server(accept, "127.0.0.1", self.port)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    lst = Listener(port)
    await lst.open()
    yield lst
    await lst.close()


def probes_yaml(http_port: int, tcp_port: int, extra: str = "") -> str:
    return f"""probes:
  - id: checkout
    http: {{url: "http://127.0.0.1:{http_port}/health", expect_status: [200], timeout: 2s}}
    interval: 30s
    service: payment-api
    failures_to_trigger: 2
  - id: ledger-db
    tcp: {{host: 127.0.0.1, port: {tcp_port}, timeout: 1s}}
    interval: 1m
    service: payment-api
    failures_to_trigger: 1
{extra}"""


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(WEDNESDAY)  # U0BOB0001 is on call for payments


@pytest.fixture
def config(target: Target, listener: Listener) -> PulseOpsConfig:
    text = ONCALL_YAML.format(first="5m", second="10m") + probes_yaml(target.port, listener.port)
    return parse_config(text, source="probes.yml", environ={})


async def step(harness: Harness, seconds: float = 30) -> int:
    """Move the clock and run whatever probes are due; deliver what they caused."""
    harness.clock.advance(seconds)  # type: ignore[attr-defined]
    ran = await harness.deps.probes.run_due()
    await harness.settle()
    return ran


async def incidents(harness: Harness) -> list[dict[str, Any]]:
    status, body = await harness.get("/api/v1/incidents?limit=100")
    assert status == 200, body
    return body["incidents"]  # type: ignore[no-any-return]


def charts_in(harness: Harness, channel: str) -> list[dict[str, Any]]:
    """The files shared in `channel` (each one checked to be a PNG)."""
    files = [f for m in harness.emu.messages(channel) for f in m.get("files", [])]
    for f in files:
        assert harness.emu.ws.files[f["id"]]["data"].startswith(b"\x89PNG")
    return files


def chart_shown(harness: Harness, incident: dict[str, Any]) -> str | None:
    """The file ID of the image block in the incident's channel message (its chart), after
    checking the file is shared in that message's thread."""
    channel, ts = incident["slack"]["channel_id"], incident["slack"]["message_ts"]
    (message,) = [m for m in harness.emu.messages(channel) if m["ts"] == ts]
    images = [b for b in message["blocks"] if b["type"] == "image"]
    if not images:
        return None
    (image,) = images
    file_id = str(image["slack_file"]["id"])
    (shared,) = [
        m
        for m in harness.emu.messages(channel)
        if any(f["id"] == file_id for f in m.get("files", []))
    ]
    assert shared["thread_ts"] == ts
    return file_id


async def chart_events(harness: Harness, incident_id: int) -> list[dict[str, Any]]:
    incident = await harness.incident(incident_id)
    return [e for e in incident["timeline"] if e["kind"] == "probe_chart"]


async def metric(harness: Harness, line_start: str) -> float | None:
    assert harness.http is not None
    async with harness.http.get(f"{harness.url}/metrics") as r:
        text = await r.text()
    values = [float(line.split()[-1]) for line in text.splitlines() if line.startswith(line_start)]
    return values[0] if values else None


@BOTH
async def test_failing_http_probe_opens_one_paged_incident_and_recovery_resolves_it(
    harness: Harness, target: Target
) -> None:
    # nothing runs before the first (jittered) deadline within the interval; then each probe
    # runs once per interval, however often the runner looks
    assert await harness.deps.probes.run_due() == 0
    assert await step(harness, 60) == 2
    assert await harness.deps.probes.run_due() == 0
    assert target.hits == 1
    target.status = 503
    await step(harness)  # one failure: below failures_to_trigger
    assert await incidents(harness) == []
    await step(harness, 30)  # the second failure opens the incident
    (listed,) = await incidents(harness)
    incident = await harness.incident(listed["id"])
    assert incident["title"] == "Probe checkout failing: status 503 (expected 200)"
    assert incident["source"] == "probe" and incident["integration"] == "probes"
    assert (incident["service"], incident["team"]) == ("payment-api", "payments")
    assert incident["labels"] == {"probe": "checkout", "service": "payment-api", "check": "down"}
    assert "2 consecutive failed checks of GET http://127.0.0.1:" in incident["description"]
    announced = harness.emu.messages("C0INCIDENT")
    assert any("Probe checkout failing: status 503" in m["text"] for m in announced)
    assert len(dms(harness, "U0BOB0001")) == 1  # paged as for any alert
    # the latency chart of the probe's recent results, in the incident's channel message
    (chart,) = charts_in(harness, incident["slack"]["channel_id"])
    assert chart["title"] == "Probe checkout: latency, last 3 results"
    assert chart_shown(harness, incident) == chart["id"]
    (noted,) = await chart_events(harness, listed["id"])
    assert noted["text"] == (
        "Probe checkout: latency, last 3 results: chart shown in the incident message"
    )
    # more failures repeat nothing
    await step(harness)
    assert len(await incidents(harness)) == 1
    status, body = await harness.get("/api/v1/probes")
    assert status == 200, body
    checkout = body["probes"][0]
    assert checkout["id"] == "checkout" and checkout["status"] == "down"
    assert checkout["last_ok"] is False and checkout["last_error"].startswith("status 503")
    assert checkout["uptime_24h"] == pytest.approx(1 / 4)
    assert await metric(harness, 'pulseops_probe_up{probe="checkout"}') == 0.0
    # the next success resolves it
    target.status = 200
    await step(harness)
    incident = await harness.incident(listed["id"])
    assert incident["status"] == "resolved" and incident["resolved_by"] == "monitor:probes"
    assert await metric(harness, 'pulseops_probe_up{probe="checkout"}') == 1.0
    assert (await metric(harness, 'pulseops_probe_latency_seconds_count{probe="checkout"}')) == 5
    # history over HTTP
    since = (WEDNESDAY).isoformat().replace("+00:00", "Z")
    status, body = await harness.get(f"/api/v1/probes/checkout/results?since={since}")
    assert status == 200, body
    assert [r["ok"] for r in body["results"]] == [True, False, False, False, True]
    assert [r["status_code"] for r in body["results"]] == [200, 503, 503, 503, 200]
    assert all(r["latency_ms"] > 0 for r in body["results"]) and body["truncated"] is False
    status, body = await harness.get(f"/api/v1/probes/checkout/results?since={since}&limit=2")
    assert len(body["results"]) == 2 and body["truncated"] is True


async def test_tcp_probe_down_and_back_up(harness: Harness, listener: Listener) -> None:
    await step(harness, 0)
    await step(harness, 60)
    await listener.close()
    await step(harness, 60)  # failures_to_trigger: 1
    (listed,) = await incidents(harness)
    assert listed["title"].startswith("Probe ledger-db failing: ")
    assert listed["status"] == "triggered"
    await listener.open()
    await step(harness, 60)
    (listed,) = await incidents(harness)
    assert listed["status"] == "resolved"


async def test_probe_routes_need_a_token_and_name_bad_input(harness: Harness) -> None:
    assert (await harness.get("/api/v1/probes", token=None))[0] == 401
    status, body = await harness.get("/api/v1/probes/nope/results")
    assert status == 404 and body["fields"] == {"id": "unknown probe"}
    status, body = await harness.get("/api/v1/probes/checkout/results?since=yesterday")
    assert status == 400 and "since" in body["fields"]
    status, body = await harness.get("/api/v1/probes/checkout/results?limit=0")
    assert status == 400 and "limit" in body["fields"]
    status, body = await harness.get("/api/v1/probes")
    assert [p["status"] for p in body["probes"]] == ["unknown", "unknown"]


@BOTH
async def test_replicas_run_each_probe_once_per_interval(harness: Harness, target: Target) -> None:
    assert await harness.deps.probes.run_due() == 0  # schedules the probes' first runs
    harness.clock.advance(60)
    async with harness.replica() as other:
        counts = await asyncio.gather(
            *[harness.deps.probes.run_due() for _ in range(3)],
            *[other.probes.run_due() for _ in range(3)],
        )
        assert sum(counts) == 2
        ran = 0
        for _ in range(2):  # one more minute: checkout twice, ledger-db once
            harness.clock.advance(30)
            both = await asyncio.gather(harness.deps.probes.run_due(), other.probes.run_due())
            ran += sum(both)
        assert ran == 3
    assert target.hits == 3


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ("follow_redirects: false", "status 302 (expected 200)"),
        ("timeout: 1s", "timed out after 1s"),
        ('body_contains: "needle"', "body lacks 'needle'"),
    ],
)
async def test_http_check_rules(harness: Harness, target: Target, extra: str, error: str) -> None:
    path = "/moved" if "redirect" in extra else "/health"
    if "timeout" in extra:
        target.delay = 2.0
    target.body = b"x" * 70_000 + b"needle"  # beyond the 64 KiB read bound
    line = f'{{url: "http://127.0.0.1:{target.port}{path}", {extra}}}'
    config = parse_config(
        ONCALL_YAML.format(first="5m", second="10m")
        + f"probes:\n  - {{id: web, http: {line}, service: payment-api}}\n",
        environ={},
    )
    checker = Checker()
    try:
        result = await checker.run(config.probes[0])
        assert not result.ok and result.error == error
        if "redirect" in extra:  # enabled: followed to the other host
            followed = config.probes[0].model_copy(
                update={"http": config.probes[0].http.model_copy(update={"follow_redirects": True})}  # type: ignore[union-attr]
            )
            result = await checker.run(followed)
            assert result.ok and result.status_code == 200
    finally:
        await checker.close()


async def test_a_slow_target_does_not_delay_other_probes(
    harness: Harness, target: Target, listener: Listener
) -> None:
    target.delay = 1.5  # checkout takes 1.5 s; ledger-db connects at once
    finished: dict[str, float] = {}
    loop = asyncio.get_running_loop()
    assert await harness.deps.probes.run_due() == 0
    started = loop.time()
    harness.clock.advance(60)
    original = harness.deps.probes.record

    async def record(probe: Any, result: Any) -> Any:
        finished[probe.id] = loop.time() - started
        return await original(probe, result)

    harness.deps.probes.record = record  # type: ignore[method-assign]
    assert await harness.deps.probes.tick() == 2
    await harness.deps.probes.wait_idle()
    assert finished["ledger-db"] < 1.0 < 1.4 < finished["checkout"]


async def test_raw_results_roll_up_by_the_hour(harness: Harness) -> None:
    await step(harness, 0)
    for _ in range(10):
        await step(harness, 30)
    harness.clock.advance(timedelta(days=3))  # past raw_retention (2 days)
    rolled = await harness.deps.probes.roll_up()
    assert rolled >= 10
    async with harness.deps.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(ProbeResultRow)) == 0
        rollups = list(await session.scalars(select(ProbeRollupRow)))
    assert sum(r.runs for r in rollups if r.probe_id == "checkout") == 10
    assert all(r.failures == 0 and r.latency_p95_ms >= r.latency_p50_ms > 0 for r in rollups)
    assert await harness.deps.probes.roll_up() == 0  # nothing twice


# ---- anomalies and certificates ----------------------------------------------------------


ANOMALY_YAML = """  - id: search
    http: {{url: "http://127.0.0.1:{port}/health", timeout: 3s}}
    interval: 10s
    service: payment-api
    anomaly: {{z: 15, window: 30, min_samples: 12}}
"""


@pytest.fixture
def anomaly_config(target: Target, listener: Listener) -> PulseOpsConfig:
    text = ONCALL_YAML.format(first="5m", second="10m") + probes_yaml(
        target.port, listener.port, ANOMALY_YAML.format(port=target.port)
    )
    return parse_config(text, source="probes.yml", environ={})


@BOTH
async def test_latency_step_opens_an_anomaly_incident_with_the_numbers_and_it_resolves(
    emulator: Any,
    database_url: str,
    anomaly_config: PulseOpsConfig,
    clock: ManualClock,
    target: Target,
) -> None:
    target.delay, target.jitter = 0.02, 0.04  # 20-60 ms: a deviation of ~12 ms
    async with Harness(
        emulator=emulator, database_url=database_url, config=anomaly_config, clock=clock
    ) as harness:
        await step(harness, 0)
        for _ in range(15):  # a baseline of ~40 ms
            await step(harness, 10)
        assert await incidents(harness) == []
        target.delay = 1.2  # latency steps up thirtyfold
        await step(harness, 10)
        found = [i for i in await incidents(harness) if "latency anomaly" in i["title"]]
        assert len(found) == 1, await incidents(harness)
        incident = await harness.incident(found[0]["id"])
        assert incident["title"].startswith("Probe search latency anomaly: 1")
        assert "baseline" in incident["title"] and "z " in incident["title"]
        assert re.search(r"baseline mean [2-6]\d\.\d ms", incident["description"])
        assert "z-score" in incident["description"]
        assert incident["labels"]["check"] == "latency-anomaly"
        announced = harness.emu.messages("C0INCIDENT")
        assert any("latency anomaly" in m["text"] for m in announced)
        # one chart of the window the detector looked at, in the incident's channel
        (chart,) = charts_in(harness, incident["slack"]["channel_id"])
        assert chart["title"] == "Probe search: latency, last 16 results"
        assert len(await chart_events(harness, found[0]["id"])) == 1
        # back to normal for CALM_RUNS runs: resolved
        target.delay = 0.02
        for _ in range(5):
            await step(harness, 10)
        assert (await harness.incident(found[0]["id"]))["status"] == "resolved"


@BOTH
async def test_an_anomaly_incident_gets_one_chart_even_when_the_upload_is_retried(
    emulator: Any,
    database_url: str,
    anomaly_config: PulseOpsConfig,
    clock: ManualClock,
    target: Target,
) -> None:
    target.delay, target.jitter = 0.02, 0.04
    async with Harness(
        emulator=emulator, database_url=database_url, config=anomaly_config, clock=clock
    ) as harness:
        await step(harness, 0)
        for _ in range(15):
            await step(harness, 10)
        assert await incidents(harness) == []
        # Slack fails the upload's last step (beyond the gateway's own retries): the chart
        # waits in the outbox while the incident opens as usual
        harness.emu.set_faults(
            error_status=500, error_count=3, methods=["files.completeUploadExternal"]
        )
        target.delay = 1.2
        await step(harness, 10)
        (listed,) = [i for i in await incidents(harness) if "latency anomaly" in i["title"]]
        incident = await harness.incident(listed["id"])
        channel = incident["slack"]["channel_id"]
        assert channel is not None
        assert charts_in(harness, channel) == []
        assert await chart_events(harness, listed["id"]) == []
        failed = harness.emu.calls_to("files.completeUploadExternal")
        assert [c["status"] for c in failed] == [500, 500, 500]
        # the outbox tries again later: one chart, noted once, never a second upload
        for _ in range(3):
            await step(harness, 10)
        (chart,) = charts_in(harness, channel)
        assert chart["title"] == "Probe search: latency, last 16 results"
        assert len(await chart_events(harness, listed["id"])) == 1
        assert len(harness.emu.calls_to("files.completeUploadExternal")) == 4
        # nothing in the incidents channel, nothing for an incident a webhook opens
        assert charts_in(harness, "C0INCIDENT") == []
        other = await harness.incident(await fire(harness))
        assert other["source"] != "probe" and other["slack"]["channel_id"]
        assert charts_in(harness, other["slack"]["channel_id"]) == []
        assert await chart_events(harness, other["id"]) == []
        assert len(harness.emu.calls_to("files.completeUploadExternal")) == 4


@BOTH
async def test_a_chart_upload_whose_answer_was_lost_is_found_not_repeated(
    harness: Harness, target: Target
) -> None:
    await step(harness, 60)
    # Slack shares the chart but its answer is lost (504 request_timeout): PulseOps cannot
    # know the upload happened, as after a crash between the upload and its commit
    harness.emu.set_faults(lost_answers=1, methods=["files.completeUploadExternal"])
    target.status = 503
    await step(harness)
    await step(harness)
    (listed,) = await incidents(harness)
    incident = await harness.incident(listed["id"])
    channel = incident["slack"]["channel_id"]
    (lost,) = harness.emu.calls_to("files.completeUploadExternal")
    assert lost["status"] == 504 and lost["carried_out"]["ok"] is True
    assert len(charts_in(harness, channel)) == 1  # shared, though PulseOps does not know yet
    assert chart_shown(harness, incident) is None
    # the next delivery looks for the marked file before uploading and adopts it
    await step(harness, 60)
    await step(harness, 60)
    (chart,) = charts_in(harness, channel)
    assert len(harness.emu.calls_to("files.getUploadURLExternal")) == 1
    assert len(harness.emu.calls_to("files.completeUploadExternal")) == 1
    (looked, *_) = harness.emu.calls_to("files.list")
    assert looked["args"]["channel"] == channel and looked["response"]["ok"] is True
    assert chart_shown(harness, await harness.incident(listed["id"])) == chart["id"]
    assert len(await chart_events(harness, listed["id"])) == 1


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


async def serve_tls(target: Target, ca: trustme.CA, days: int, port: int = 0) -> web.AppRunner:
    cert = ca.issue_cert("127.0.0.1", not_after=datetime.now(UTC) + timedelta(days=days, hours=1))
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    runner = web.AppRunner(target.app())
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=server_ctx).start()
    return runner


async def test_a_certificate_expiring_soon_opens_a_low_severity_incident_renewal_resolves(
    emulator: Any, database_url: str, ca: trustme.CA, target: Target
) -> None:
    runner = await serve_tls(target, ca, days=5)
    port = runner.addresses[0][1]
    config = parse_config(
        ONCALL_YAML.format(first="5m", second="10m")
        + f'probes:\n  - {{id: tls, http: {{url: "https://127.0.0.1:{port}/health"}}, '
        "service: payment-api, cert_expiry_days: 7}\n",
        environ={},
    )
    clock = ManualClock(datetime.now(UTC))
    try:
        async with Harness(
            emulator=emulator, database_url=database_url, config=config, clock=clock
        ) as harness:
            # untrusted by default: a failed check that says why
            plain = Checker()
            untrusted = await plain.run(config.probes[0])
            await plain.close()
            assert not untrusted.ok and "certificate" in (untrusted.error or "").lower()
            # the test's CA is trusted as a real CA would be
            client_ctx = ssl.create_default_context()
            ca.configure_trust(client_ctx)
            probes = harness.deps.probes
            probes.checker = Checker(ssl_context=client_ctx)
            await step(harness, 0)
            await step(harness, 30)
            (listed,) = await incidents(harness)
            assert listed["title"] == "Probe tls: TLS certificate expires in 5 days"
            assert listed["severity"] == "SEV4"
            # a certificate's incident gets no latency chart
            assert await chart_events(harness, listed["id"]) == []
            assert harness.emu.calls_to("files.completeUploadExternal") == []
            status, body = await harness.get("/api/v1/probes")
            assert body["probes"][0]["cert_days"] == 5 and body["probes"][0]["status"] == "up"
            assert body["probes"][0]["anomalies"] == ["cert"]
            # renewed (the certificate is looked at again after an hour): resolved
            await runner.cleanup()
            runner = await serve_tls(target, ca, days=90, port=port)
            probes.checker.monotonic = lambda: 1e12
            await step(harness, 30)
            (listed,) = await incidents(harness)
            assert listed["status"] == "resolved"
    finally:
        await runner.cleanup()


# ---- Slack ---------------------------------------------------------------------------------


async def command(harness: Harness, text: str) -> str:
    result = await harness.emu.command(
        user="U0ALICE01", channel="C0PAYMENTS", command="/incident", text=text
    )
    assert result["status"] == 200, result
    return reply_text(result)


async def test_slash_probes_lists_state_uptime_and_latency_and_probe_uploads_a_chart(
    harness: Harness, target: Target
) -> None:
    await step(harness, 0)
    await step(harness, 60)
    target.status = 500
    await step(harness, 30)
    text = await command(harness, "probes")
    assert "*Probes* (2)" in text
    assert "*checkout* up · uptime 24h 50.00 % · 7d 50.00 % · p50 " in text
    assert "*ledger-db* up · uptime 24h 100.00 %" in text
    # one probe: its state in the answer, its chart uploaded to the channel (once)
    text = await command(harness, "probe checkout")
    assert "Checks `GET http://127.0.0.1:" in text and "status 500 (expected 200)" in text
    await harness.settle()
    shared = [m for m in harness.emu.messages("C0PAYMENTS") if m.get("files")]
    (message,) = shared
    (chart,) = message["files"]
    assert harness.emu.ws.files[chart["id"]]["data"].startswith(b"\x89PNG")
    # bad input: what to type, nothing uploaded
    text = await command(harness, "probe nope")
    assert "Type `/incident probe <id>` with one of these probes: `checkout`, `ledger-db`" in text
    await harness.settle()
    assert len([m for m in harness.emu.messages("C0PAYMENTS") if m.get("files")]) == 1


async def test_app_home_shows_a_probes_section_down_first(harness: Harness, target: Target) -> None:
    await step(harness, 0)
    target.status = 500
    await step(harness, 60)
    await step(harness, 30)  # checkout: two failures, down
    view = await open_home(harness, "U0ALICE01")
    title = [b for b in view["blocks"] if b.get("block_id") == "home_probes_title"]
    assert title and title[0]["text"]["text"] == "Probes: 1 down of 2"
    (probes,) = [b for b in view["blocks"] if b.get("block_id") == "home_probes"]
    lines = probes["text"]["text"].splitlines()
    assert lines[0].startswith(":red_circle: *checkout* down · ")
    assert lines[1].startswith(":large_green_circle: *ledger-db* up · ")


SLO_YAML = """  - id: api
    http: {{url: "http://127.0.0.1:{port}/health", timeout: 2s}}
    interval: 30s
    service: payment-api
    failures_to_trigger: 100
    slo: {{objective: 99.9, window: 30d}}
"""


@BOTH
async def test_a_fast_burn_pages_with_the_rates_and_resolves_when_it_stops(
    emulator: Any, database_url: str, clock: ManualClock, target: Target, listener: Listener
) -> None:
    config = parse_config(
        ONCALL_YAML.format(first="5m", second="10m")
        + probes_yaml(target.port, listener.port, SLO_YAML.format(port=target.port)),
        source="probes.yml",
        environ={},
    )
    async with Harness(
        emulator=emulator, database_url=database_url, config=config, clock=clock
    ) as harness:
        await step(harness, 0)
        for _ in range(20):  # 10 minutes of successes
            await step(harness)
        target.status = 500
        await step(harness)  # 1 failure in 21 runs over 1 h (47.6×), 1 in 10 over 5 min (100×)
        (listed,) = [i for i in await incidents(harness) if "error budget" in i["title"]]
        incident = await harness.incident(listed["id"])
        assert incident["title"] == "Probe api is burning its error budget: 47.6× over 1 h"
        assert incident["severity"] == "SEV2"
        assert (
            "47.6× over 1 h, 100.0× over 5 min (threshold 14.4× over both"
            in (incident["description"])
        )
        assert len(dms(harness, "U0BOB0001")) >= 1
        (chart,) = charts_in(harness, incident["slack"]["channel_id"])
        assert chart["title"] == "Probe api: latency, last 21 results"
        status, body = await harness.get("/api/v1/probes")
        (api,) = [p for p in body["probes"] if p["id"] == "api"]
        assert api["burning"] is True and api["slo_objective"] == 99.9
        assert api["budget_left"] == pytest.approx(1 - (1 / 21) / 0.001)  # overspent
        target.status = 200
        for _ in range(10):  # the failure leaves the 5-minute window: only the slow rule holds
            await step(harness)
        assert (await harness.incident(listed["id"]))["status"] == "triggered"
        for _ in range(50):  # ... and then the 30-minute window: no rule holds
            await step(harness)
        assert (await harness.incident(listed["id"]))["status"] == "resolved"
        status, body = await harness.get("/api/v1/probes")
        (api,) = [p for p in body["probes"] if p["id"] == "api"]
        assert api["burning"] is False
        # the payments report of the week lists the probe's SLO: the week's uptime, the
        # budget left at its end (every run is in both) and the one burn alert
        harness.clock.set(datetime(2026, 11, 30, 12, 0, tzinfo=UTC))  # type: ignore[attr-defined]
        await harness.deps.reports.post(team_id="payments")
        await harness.settle()
        (report,) = [
            m for m in harness.emu.messages("C0PAYMENTS") if m["text"].startswith("Weekly report")
        ]
        (slos,) = [b for b in report["blocks"] if b.get("block_id") == "report_slos"]
        assert slos["text"]["text"] == (
            f"*SLOs*\n• *api* (probe) 99.9 % over 30d: {api['uptime_7d'] * 100:.3f} % this week"
            f" · budget left {api['budget_left'] * 100:.0f} % at the end of the week"
            " · 1 burn alert"
        )
        assert api["budget_left"] < 0  # overspent: a negative share is shown as such


# ---- routes and silences apply to probe alerts ---------------------------------------------


ROUTE_YAML = """routes:
  - name: probe-checks
    matchers: ['probe="ledger-db"', 'check="down"']
    severity: SEV1
    category: database
"""


@BOTH
async def test_routes_and_silences_apply_to_probe_alerts(
    emulator: Any, database_url: str, clock: ManualClock, target: Target, listener: Listener
) -> None:
    config = parse_config(
        ONCALL_YAML.format(first="5m", second="10m")
        + probes_yaml(target.port, listener.port)
        + ROUTE_YAML,
        source="probes.yml",
        environ={},
    )
    async with Harness(
        emulator=emulator, database_url=database_url, config=config, clock=clock
    ) as harness:
        # a silence over checkout's alerts: its failures open nothing
        ends = (clock.now() + timedelta(hours=2)).isoformat()
        status, body = await harness.call(
            "POST",
            "/api/v1/silences",
            {"matchers": ['probe="checkout"'], "ends_at": ends, "comment": "deploying"},
        )
        assert status == 201, body
        await step(harness, 0)
        await step(harness, 60)
        target.status = 503
        await listener.close()
        await step(harness, 60)
        await step(harness, 60)
        (opened,) = await incidents(harness)  # ledger-db's only, routed
        assert opened["title"].startswith("Probe ledger-db failing")
        incident = await harness.incident(opened["id"])
        assert incident["severity"] == "SEV1" and incident["category"] == "database"
        status, body = await harness.get("/api/v1/probes")
        assert [p["status"] for p in body["probes"]] == ["down", "down"]


async def test_the_weekly_report_shows_probe_uptime(harness: Harness, target: Target) -> None:
    await step(harness, 0)
    await step(harness, 60)
    target.status = 500
    await step(harness, 30)
    # the report of the week that holds these runs (it ends on Monday morning)
    harness.clock.set(datetime(2026, 11, 30, 12, 0, tzinfo=UTC))
    posting = await harness.deps.reports.post(team_id="payments")
    assert posting is not None
    await harness.settle()
    posted = [
        m
        for m in harness.emu.messages("C0PAYMENTS")
        if any(b.get("block_id") == "report_probes" for b in m.get("blocks", []))
    ]
    assert posted, harness.emu.messages("C0PAYMENTS")
    (block,) = [b for b in posted[-1]["blocks"] if b.get("block_id") == "report_probes"]
    assert block["text"]["text"] == "*Probe uptime:* checkout 50.00 %, ledger-db 100.00 %"
