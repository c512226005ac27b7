"""Synthetic checks: probes run on a schedule held in SQL; their results open and resolve
incidents through the same alert pipeline as webhooks.

`tick()` (every second, on every replica) claims the due runs (`store.probes`: each run once
across replicas) and starts each check as its own task, bounded by a semaphore, so a slow
target never holds up the others or the next tick. A finished check is recorded in one
transaction with whatever it changes: its result, the probe's state and the alerts
(`bot.domain.probes.assess`) applied through `AlertIngest.apply_in`, so routes, silences and
paging apply and a resolved alert resolves its incident.

First runs are spread over the interval by a stable hash of the probe id (jitter), so 1,000
probes do not fire in the same millisecond; later runs keep that phase.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, cast

from bot.clock import Clock
from bot.config import IntegrationConfig, PulseOpsConfig
from bot.config.probes import PROBE_INTEGRATION, ProbeConfig
from bot.delivery.kinds import OutboxKind
from bot.domain import burn
from bot.domain.alerts import Alert, AlertStatus
from bot.domain.dashboard import ProbeLine
from bot.domain.probes import ProbeState, ProbeView, Rules, Run, Signal, Uptime, assess
from bot.ingest.decisions import Outcome
from bot.ingest.stages import Delivery, IngestRequest
from bot.metrics import Metrics
from bot.probing import Checker, CheckResult
from bot.services.ingest import AlertIngest
from bot.services.slos import SloService
from store.models import ProbeStateRow
from store.probes import ProbeRepository, Sample, percentile
from store.session import Database
from store.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

SOURCE = "probe"  # the `source` of probe alerts and of the incidents they open
MAX_LATENCY_SAMPLES = 20_000  # per probe, for p50/p95 (24 h at a 5 s interval)
CLAIM_LIMIT = 500  # runs claimed per transaction (a tick claims until none are due)
CHART_RESULTS = 60  # results charted for an incident when the probe has no anomaly window
CHARTED_KINDS = ("down", "latency-anomaly", "error-anomaly", "burn")  # not "cert"

# The integration probe alerts arrive through: no configured integration (the name is
# reserved; config check says so) and no webhook route, so it has no token or parser.
PROBE_SOURCE = IntegrationConfig.model_construct(
    name=PROBE_INTEGRATION,
    type=SOURCE,
    service=None,
    token=None,
    token_env=None,
    max_requests_per_second=None,
)


def first_run(probe: ProbeConfig, now: datetime) -> datetime:
    """When a new probe first runs: a stable offset within its interval (the jitter)."""
    digest = hashlib.sha256(probe.id.encode()).digest()
    fraction = int.from_bytes(digest[:8], "big") / 2**64
    return now + probe.interval * fraction


def probe_alert(probe: ProbeConfig, signal: Signal) -> Alert:
    """The alert of one kind of a probe's trouble; one fingerprint per probe and kind."""
    key = f"probe:{probe.id}:{signal.kind}"
    return Alert(
        fingerprint=key,
        group_key=key,
        status=AlertStatus.FIRING if signal.firing else AlertStatus.RESOLVED,
        title=signal.title,
        description=signal.description,
        severity=signal.severity,
        service=probe.service,
        labels={"probe": probe.id, "service": probe.service, "check": signal.kind},
        source=SOURCE,
    )


def burn_signal(probe: ProbeConfig, found: burn.Burn, row: ProbeStateRow) -> Signal | None:
    """Fire when the burn reaches a more urgent rule than before (a repeat with the higher
    severity), resolve when no rule holds any more; the row keeps the level."""
    assert probe.slo is not None
    before, row.burn_level = row.burn_level, found.level
    title = f"Probe {probe.id} is burning its error budget"
    fire = burn.change(before, found)
    if fire and found.rule is not None:
        rate = found.rates.get(found.rule.long, 0.0)
        return Signal(
            "burn",
            True,
            f"{title}: {rate:.1f}× over {found.rule.long.total_seconds() / 3600:g} h",
            f"{probe.target}: {burn.describe(found, probe.slo.ratio)}",
            found.rule.severity,
        )
    if fire is False:
        return Signal("burn", False, title, "the burn rate is below every rule again")
    return None


def charted_incidents(probe: ProbeConfig, delivery: Delivery) -> list[int]:
    """The incidents a delivery of the probe's alerts opened (not those it joined or
    resolved) that get a latency chart: all but a certificate's."""
    charted = {f"probe:{probe.id}:{kind}" for kind in CHARTED_KINDS}
    results = cast(list[dict[str, Any]], delivery.body.get("results", []))
    return [
        int(r["incident_id"])
        for r in results
        if r["outcome"] == Outcome.CREATED.value
        and r["incident_id"]
        and r["fingerprint"] in charted
    ]


def rules_of(probe: ProbeConfig) -> Rules:
    anomaly = probe.anomaly
    https = probe.http is not None and probe.http.https
    return Rules(
        probe_id=probe.id,
        target=probe.target,
        failures_to_trigger=probe.failures_to_trigger,
        cert_expiry_days=probe.cert_expiry_days if https else None,
        z=anomaly.z if anomaly else None,
        window=anomaly.window if anomaly else 0,
        min_samples=anomaly.min_samples if anomaly else 0,
    )


def _anomalies(row: ProbeStateRow | None, names: tuple[str, str, str]) -> tuple[str, ...]:
    """What is abnormal about a probe now, named by `names` (latency, error rate,
    certificate): the API's keys or the words App Home shows."""
    if row is None:
        return ()
    flags = (row.latency_anomaly, row.error_anomaly, row.cert_expiring)
    return tuple(name for name, on in zip(names, flags, strict=True) if on)


def _budget(probe: ProbeConfig, over: dict[timedelta, dict[str, Uptime]]) -> float | None:
    if probe.slo is None:
        return None
    seen = over.get(probe.slo.window, {}).get(probe.id, Uptime(0, 0))
    return burn.budget_left(seen.runs, seen.failures, probe.slo.ratio)


class ProbeService:
    def __init__(
        self,
        *,
        db: Database,
        config: PulseOpsConfig,
        clock: Clock,
        metrics: Metrics,
        ingest: AlertIngest,
        checker: Checker | None = None,
        on_result: Callable[[str, datetime], None] | None = None,
        slos: SloService | None = None,
    ) -> None:
        self.db = db
        self.config = config
        self.clock = clock
        self.metrics = metrics
        self.ingest = ingest
        self.checker = checker or Checker(max_connections=config.probe_runner.max_concurrency)
        self.on_result = on_result  # (probe id, deadline): benchmarks measure lateness
        self._semaphore = asyncio.Semaphore(config.probe_runner.max_concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._intervals = {p.id: p.interval for p in config.probes}
        self._ensured = False
        # SLOs over alert sources: evaluated by their own job (`slos.tick`)
        self.slos = slos or SloService(
            db=db, config=config, clock=clock, metrics=metrics, ingest=ingest
        )

    # ---- scheduling ----------------------------------------------------------------------

    async def claim(self) -> list[tuple[ProbeConfig, datetime]]:
        """Claim every due run (creating the schedule of new probes first)."""
        if not self.config.probes:
            return []

        async def work(uow: UnitOfWork) -> list[tuple[str, datetime]]:
            now = self.clock.now()
            repo = ProbeRepository(uow.session)
            if not self._ensured:
                await repo.ensure({p.id: first_run(p, now) for p in self.config.probes})
            return await repo.claim_due(
                ids=self._intervals, now=now, intervals=self._intervals, limit=CLAIM_LIMIT
            )

        claimed: list[tuple[ProbeConfig, datetime]] = []
        while True:
            batch = await self.ingest.incidents.write(work)
            self._ensured = True
            for probe_id, due in batch:
                probe = self.config.probe(probe_id)
                if probe is not None:
                    claimed.append((probe, due))
            if len(batch) < CLAIM_LIMIT:
                return claimed

    async def tick(self) -> int:
        """Claim the due runs and start each check in the background; return how many."""
        claimed = await self.claim()
        for probe, due in claimed:
            task = asyncio.create_task(self._run(probe, due), name=f"probe:{probe.id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(claimed)

    async def wait_idle(self) -> None:
        """Wait for the checks in flight (and their records) to finish."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def run_due(self) -> int:
        """Claim, run and record every due run (tests drive probes with this)."""
        started = await self.tick()
        await self.wait_idle()
        return started

    async def close(self) -> None:
        await self.wait_idle()
        await self.checker.close()

    async def _run(self, probe: ProbeConfig, due: datetime) -> None:
        async with self._semaphore:
            if self.on_result is not None:
                self.on_result(probe.id, due)
            result = await self.checker.run(probe)
        try:
            await self.record(probe, result)
        except Exception:
            log.exception("recording probe %s's result failed", probe.id)

    # ---- results -------------------------------------------------------------------------

    async def record(self, probe: ProbeConfig, result: CheckResult) -> list[Signal]:
        """Store one run, update the probe's state, fire/resolve its alerts (one transaction)."""
        rules = rules_of(probe)
        history = max(rules.window, 0) + 10 if rules.z is not None else 0

        async def work(uow: UnitOfWork) -> list[Signal]:
            now = self.clock.now()
            repo = ProbeRepository(uow.session)
            row = await repo.lock(probe.id)
            if row is None:
                return []
            sample = Sample(
                at=now,
                ok=result.ok,
                latency_ms=round(result.latency_ms, 3),
                status_code=result.status_code,
                error=result.error,
                cert_days=result.cert_days(now),
            )
            await repo.add_result(probe.id, sample)
            past = await repo.recent(probe.id, history + 1) if history else [sample]
            run = Run(
                ok=sample.ok,
                latency_ms=sample.latency_ms,
                error=sample.error,
                cert_days=sample.cert_days,
                latencies_ms=[s.latency_ms for s in past if s.ok],
                failures=[not s.ok for s in past],
            )
            before = ProbeState(
                status=row.status,
                consecutive_failures=row.consecutive_failures,
                latency_anomaly=row.latency_anomaly,
                error_anomaly=row.error_anomaly,
                cert_expiring=row.cert_expiring,
                latency_calm=row.latency_calm,
                error_calm=row.error_calm,
            )
            after, signals = assess(before, run, rules)
            row.status = after.status
            row.consecutive_failures = after.consecutive_failures
            row.latency_anomaly, row.latency_calm = after.latency_anomaly, after.latency_calm
            row.error_anomaly, row.error_calm = after.error_anomaly, after.error_calm
            row.cert_expiring = after.cert_expiring
            row.last_run_at, row.last_ok = now, sample.ok
            row.last_latency_ms, row.last_status_code = sample.latency_ms, sample.status_code
            row.last_error, row.cert_days = sample.error, sample.cert_days
            if probe.slo is not None:
                counts = await repo.window_counts(probe.id, now=now, windows=burn.WINDOWS)
                signal = burn_signal(probe, burn.evaluate(counts, probe.slo.ratio), row)
                if signal is not None:
                    signals.append(signal)
            await uow.session.flush()
            if signals:
                alerts = tuple(probe_alert(probe, s) for s in signals)
                request = IngestRequest.of(PROBE_SOURCE, alerts, idempotency_key=None, body=b"")
                delivery = await self.ingest.apply_in(uow, request, now)
                opened = charted_incidents(probe, delivery)
                if opened:
                    window = past if history else await repo.recent(probe.id, CHART_RESULTS)
                    for incident_id in opened:
                        await self._chart_incident(uow, probe.id, incident_id, window, now)
            up = self.metrics.probe_up.labels(probe=probe.id)
            latency = self.metrics.probe_latency.labels(probe=probe.id)
            uow.after_commit(lambda: up.set(1 if sample.ok else 0))
            uow.after_commit(lambda: latency.observe(sample.latency_ms / 1000.0))
            return signals

        return await self.ingest.incidents.write(work)

    @staticmethod
    async def _chart_incident(
        uow: UnitOfWork, probe_id: str, incident_id: int, window: list[Sample], now: datetime
    ) -> None:
        """Record the upload of the latency chart of `window` (the results the detector
        looked at) to the incident's channel, once the channel exists."""
        await uow.enqueue(
            kind=OutboxKind.PROBE_CHART,
            now=now,
            incident_id=incident_id,
            payload={
                "probe": probe_id,
                "since": window[0].at.isoformat(),
                "until": now.isoformat(),
            },
        )

    async def roll_up(self) -> int:
        """Roll raw results older than `probe_runner.raw_retention` into hourly rollups and
        drop rollups older than `rollup_retention`; return how many results were rolled up."""
        runner = self.config.probe_runner
        total = 0
        while True:
            now = self.clock.now()
            before = (now - runner.raw_retention).replace(minute=0, second=0, microsecond=0)
            drop = now - runner.rollup_retention

            async def work(
                uow: UnitOfWork, before: datetime = before, drop: datetime = drop
            ) -> int:
                return await ProbeRepository(uow.session).roll_up(
                    before=before, drop_rollups_before=drop
                )

            done = await self.ingest.incidents.write(work)
            total += done
            if done == 0:
                return total

    # ---- reading -------------------------------------------------------------------------

    async def overview(self) -> list[ProbeView]:
        """Every configured probe with its state and uptime over 24 h and 7 days."""
        now = self.clock.now()
        async with self.db.read() as session:
            repo = ProbeRepository(session)
            states = {s.id: s for s in await repo.states([p.id for p in self.config.probes])}
            day = await repo.uptime(since=now - timedelta(days=1))
            week = await repo.uptime(since=now - timedelta(days=7))
            slo_windows = {p.slo.window for p in self.config.probes if p.slo is not None}
            over = {w: await repo.uptime(since=now - w) for w in slo_windows}
        views = []
        for probe in self.config.probes:
            row = states.get(probe.id)
            anomalies = _anomalies(row, ("latency", "error_rate", "cert"))
            views.append(
                ProbeView(
                    id=probe.id,
                    kind=probe.kind,
                    target=probe.target,
                    service=probe.service,
                    interval_seconds=probe.interval.total_seconds(),
                    failures_to_trigger=probe.failures_to_trigger,
                    slo_objective=probe.slo.objective if probe.slo else None,
                    status=row.status if row else "unknown",
                    last_run_at=row.last_run_at if row else None,
                    last_ok=row.last_ok if row else None,
                    last_latency_ms=row.last_latency_ms if row else None,
                    last_error=row.last_error if row else None,
                    cert_days=row.cert_days if row else None,
                    next_run_at=row.next_run_at if row else None,
                    anomalies=anomalies,
                    uptime_24h=day.get(probe.id, Uptime(0, 0)),
                    uptime_7d=week.get(probe.id, Uptime(0, 0)),
                    burning=bool(row and row.burn_level),
                    budget_left=_budget(probe, over),
                )
            )
        return views

    async def home_lines(self) -> tuple[ProbeLine, ...]:
        """Each probe's state for the App Home tab (one cheap query: no history)."""
        async with self.db.read() as session:
            rows = {r.id: r for r in await ProbeRepository(session).states()}
        lines = []
        for probe in self.config.probes:
            row = rows.get(probe.id)
            anomalies = _anomalies(row, ("latency", "error rate", "certificate"))
            lines.append(
                ProbeLine(
                    id=probe.id,
                    status=row.status if row else "unknown",
                    latency_ms=row.last_latency_ms if row else None,
                    anomalies=anomalies,
                )
            )
        return tuple(lines)

    async def latencies(
        self, probe_ids: list[str], *, since: datetime
    ) -> dict[str, tuple[float, float] | None]:
        """p50 and p95 latency (ms) of each probe's successful runs since `since`."""
        out: dict[str, tuple[float, float] | None] = {}
        async with self.db.read() as session:
            repo = ProbeRepository(session)
            for probe_id in probe_ids:
                values = await repo.latencies(probe_id, since=since, limit=MAX_LATENCY_SAMPLES)
                out[probe_id] = (
                    (percentile(values, 0.5), percentile(values, 0.95)) if values else None
                )
        return out

    async def request_chart(self, probe_id: str, *, channel: str) -> None:
        """Record the upload of the probe's latency chart (last 24 h) to `channel`; the
        outbox delivers it."""

        async def work(uow: UnitOfWork) -> None:
            now = self.clock.now()
            await uow.enqueue(
                kind=OutboxKind.PROBE_CHART,
                now=now,
                payload={
                    "probe": probe_id,
                    "channel": channel,
                    "since": (now - timedelta(days=1)).isoformat(),
                },
            )

        await self.ingest.incidents.write(work)

    async def results(self, probe_id: str, *, since: datetime, limit: int) -> list[Sample]:
        async with self.db.read() as session:
            return await ProbeRepository(session).results(probe_id, since=since, limit=limit)


__all__ = ["PROBE_SOURCE", "ProbeService", "ProbeView", "first_run", "probe_alert"]
