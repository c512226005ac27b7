"""SLOs over alert sources (`slos`): a time-based availability SLI from the alert history.

The bad time of an SLO is the time during which its source (an integration and/or matchers
over the alerts' labels) had an alert firing, or the incident of one open. Silenced alerts
open no incident and are not stored, so a maintenance window spends no budget.

`tick()` (every few seconds, on every replica) evaluates each SLO whose deadline has come,
claimed once across replicas (`store.slos`). An evaluation adds the bad periods since the last
one (the whole SLO window the first time), sums each burn window's bad seconds in SQL and
applies the multi-window rules of `bot.domain.burn`. A burn alert goes through the alert
pipeline (source `slo`, integration `slos`), so routes, silences and paging apply: it fires
once per level and resolves when no rule holds.

`overview()` is each SLO as of now (`/incident slos`, the API, App Home); `periods()` each SLO
over a past period (the weekly report), its bad time read by the same rule (`bad_spans`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from bot.clock import Clock
from bot.config import IntegrationConfig, PulseOpsConfig
from bot.config.probes import PROBE_INTEGRATION, ProbeConfig
from bot.config.slos import SLO_INTEGRATION, SourceSloConfig
from bot.domain import burn
from bot.domain.alerts import Alert, AlertStatus
from bot.domain.burn import SloPeriod, SloView
from bot.domain.matchers import matches_all
from bot.domain.probes import Uptime
from bot.ingest.stages import IngestRequest
from bot.metrics import Metrics
from bot.services.ingest import AlertIngest
from store.probes import ProbeRepository
from store.session import Database
from store.slos import SloRepository, overlap, union
from store.unit_of_work import UnitOfWork

SOURCE = "slo"  # the `source` of burn alerts and of the incidents they open
EVALUATE_EVERY = timedelta(seconds=30)
WINDOWS = burn.WINDOWS  # the burn rules' windows

SLO_SOURCE = IntegrationConfig.model_construct(
    name=SLO_INTEGRATION,
    type=SOURCE,
    service=None,
    token=None,
    token_env=None,
    max_requests_per_second=None,
)


def window_name(w: timedelta) -> str:
    minutes = int(w.total_seconds() // 60)
    return f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}m"


def burn_alert(slo: SourceSloConfig, found: burn.Burn, fire: bool) -> Alert:
    """The burn alert of an SLO: one fingerprint per SLO; fired with the rule's severity."""
    key = burn_fingerprint(slo.id)
    title = f"SLO {slo.id} is burning its error budget"
    if fire and found.rule is not None:
        rate = found.rates.get(found.rule.long, 0.0)
        title += f": {rate:.1f}× over {window_name(found.rule.long).replace('h', ' h')}"
        description = (
            f"Time with an alert firing ({describe_source(slo)}): {burn.describe(found, slo.ratio)}"
        )
    else:
        description = "the burn rate is below every rule again"
    labels = {"slo": slo.id, "check": "burn"}
    if slo.service:
        labels["service"] = slo.service
    return Alert(
        fingerprint=key,
        group_key=key,
        status=AlertStatus.FIRING if fire else AlertStatus.RESOLVED,
        title=title,
        description=description,
        severity=found.rule.severity if fire and found.rule else None,
        service=slo.service,
        labels=labels,
        source=SOURCE,
    )


def describe_source(slo: SourceSloConfig) -> str:
    parts = [f"integration {slo.integration}"] if slo.integration else []
    if slo.matchers:
        parts.append(", ".join(str(m) for m in slo.matchers))
    return "; ".join(parts)


async def bad_spans(
    repo: SloRepository, slo: SourceSloConfig, *, since: datetime, until: datetime
) -> list[tuple[datetime, datetime]]:
    """The SLO's bad time within [since, until) from the stored alert history: when an alert
    of its source (never a burn alert) was firing, as sorted, disjoint spans."""
    if until <= since:
        return []
    firing = await repo.firing(
        since=since, now=until, integration=slo.integration, exclude=(SLO_INTEGRATION,)
    )
    return union([(f.start, f.end) for f in firing if matches_all(slo.matchers, f.labels)])


def burn_fingerprint(slo_id: str, *, probe: bool = False) -> str:
    """The fingerprint of an SLO's burn alert (a probe's, or an alert source's)."""
    return f"probe:{slo_id}:burn" if probe else f"slo:{slo_id}:burn"


def _counts(bad: dict[timedelta, float]) -> burn.Counts:
    return {w: (w.total_seconds(), seconds) for w, seconds in bad.items()}


class SloService:
    def __init__(
        self,
        *,
        db: Database,
        config: PulseOpsConfig,
        clock: Clock,
        metrics: Metrics,
        ingest: AlertIngest,
    ) -> None:
        self.db = db
        self.config = config
        self.clock = clock
        self.metrics = metrics
        self.ingest = ingest
        self._ensured = False

    async def tick(self) -> int:
        """Evaluate every SLO that is due (each once across replicas); return how many."""
        done = 0
        for slo in self.config.slos:
            if await self.evaluate(slo):
                done += 1
        return done

    async def evaluate(self, slo: SourceSloConfig) -> bool:
        """Claim and evaluate one SLO if it is due (one transaction with its alert)."""

        async def work(uow: UnitOfWork) -> bool:
            now = self.clock.now()
            repo = SloRepository(uow.session)
            if not self._ensured:
                await repo.ensure({s.id: now for s in self.config.slos})
            row = await repo.claim(slo.id, now=now, every=EVALUATE_EVERY)
            if row is None:
                return False
            since = max(row.evaluated_at or now - slo.window, now - slo.window)
            await repo.add_periods(slo.id, await bad_spans(repo, slo, since=since, until=now))
            await repo.forget(slo.id, before=now - max(slo.window, *WINDOWS))
            row.evaluated_at = now
            bad = await repo.bad_seconds(slo.id, now=now, windows=(*WINDOWS, slo.window))
            found = burn.evaluate(_counts({w: bad[w] for w in WINDOWS}), slo.ratio, min_total=0)
            before, row.burn_level = row.burn_level, found.level
            fire = burn.change(before, found)
            if fire is not None:
                alert = burn_alert(slo, found, fire)
                request = IngestRequest.of(SLO_SOURCE, (alert,), idempotency_key=None, body=b"")
                await self.ingest.apply_in(uow, request, now)
            left = burn.budget_left(slo.window.total_seconds(), bad[slo.window], slo.ratio)
            budget = self.metrics.slo_budget.labels(slo=slo.id)
            rates = {window_name(w): found.rates.get(w, 0.0) for w in WINDOWS}

            def publish() -> None:
                budget.set(left if left is not None else 1.0)
                for name, rate in rates.items():
                    self.metrics.slo_burn_rate.labels(slo=slo.id, window=name).set(rate)

            uow.after_commit(publish)
            return True

        done = await self.ingest.incidents.write(work)
        self._ensured = True
        return bool(done)

    async def overview(self) -> list[SloView]:
        """Every SLO with its bad time, budget left and burn rates as of now."""
        now = self.clock.now()
        views = []
        async with self.db.read() as session:
            repo = SloRepository(session)
            states = await repo.states([s.id for s in self.config.slos])
            for slo in self.config.slos:
                row = states.get(slo.id)
                bad = await repo.bad_seconds(slo.id, now=now, windows=(*WINDOWS, slo.window))
                total = slo.window.total_seconds()
                evaluated = row.evaluated_at if row else None
                found = burn.evaluate(_counts({w: bad[w] for w in WINDOWS}), slo.ratio, min_total=0)
                views.append(
                    SloView(
                        id=slo.id,
                        integration=slo.integration,
                        matchers=tuple(str(m) for m in slo.matchers),
                        service=slo.service,
                        objective=slo.objective,
                        window_seconds=total,
                        evaluated_at=evaluated,
                        bad_seconds=bad[slo.window],
                        availability=1.0 - bad[slo.window] / total if evaluated else None,
                        budget_left=(
                            burn.budget_left(total, bad[slo.window], slo.ratio)
                            if evaluated
                            else None
                        ),
                        burn_rates={window_name(w): round(found.rates[w], 3) for w in WINDOWS},
                        burning=bool(row and row.burn_level),
                    )
                )
        return views

    async def periods(
        self,
        *,
        start: datetime,
        end: datetime,
        slos: Sequence[SourceSloConfig] | None = None,
        probes: Sequence[ProbeConfig] = (),
    ) -> list[SloPeriod]:
        """Each SLO over [start, end) (cut at now): availability over the period, the budget
        left over its window ending with the period, and the burn alerts that first fired in
        it. `slos` are alert sources' (default: all), `probes` those whose `slo` to include.

        An alert source's bad time comes from its stored bad periods where those are
        complete (the SLO window before its last evaluation), and from the alert history,
        by the same rule an evaluation applies (`bad_spans`), before and after.
        """
        end = min(end, self.clock.now())
        start = min(start, end)
        chosen = list(self.config.slos if slos is None else slos)
        with_slo = [p for p in probes if p.slo is not None]
        found: list[SloPeriod] = []
        async with self.db.read() as session:
            repo = SloRepository(session)
            fired = await repo.burn_alerts(
                since=start,
                until=end,
                fingerprints={
                    SLO_INTEGRATION: [burn_fingerprint(s.id) for s in chosen],
                    PROBE_INTEGRATION: [burn_fingerprint(p.id, probe=True) for p in with_slo],
                },
            )
            states = await repo.states([s.id for s in chosen])
            for slo in chosen:
                row = states.get(slo.id)
                week, budget = await self._bad_in(
                    repo,
                    slo,
                    [(start, end), (end - slo.window, end)],
                    evaluated=row.evaluated_at if row else None,
                )
                length = (end - start).total_seconds()
                found.append(
                    SloPeriod(
                        id=slo.id,
                        probe=False,
                        objective=slo.objective,
                        window_seconds=slo.window.total_seconds(),
                        service=slo.service,
                        availability=1.0 - week / length if length > 0 else None,
                        budget_left=burn.budget_left(slo.window.total_seconds(), budget, slo.ratio),
                        burn_alerts=fired.get(burn_fingerprint(slo.id), 0),
                    )
                )
            if with_slo:
                probe_repo = ProbeRepository(session)
                week_runs = await probe_repo.uptime(since=start, until=end)
                over: dict[timedelta, dict[str, Uptime]] = {}
                for probe in with_slo:
                    assert probe.slo is not None
                    window = probe.slo.window
                    if window not in over:
                        over[window] = await probe_repo.uptime(since=end - window, until=end)
                    seen = over[window].get(probe.id, Uptime(0, 0))
                    found.append(
                        SloPeriod(
                            id=probe.id,
                            probe=True,
                            objective=probe.slo.objective,
                            window_seconds=window.total_seconds(),
                            service=probe.service,
                            availability=week_runs.get(probe.id, Uptime(0, 0)).ratio,
                            budget_left=burn.budget_left(seen.runs, seen.failures, probe.slo.ratio),
                            burn_alerts=fired.get(burn_fingerprint(probe.id, probe=True), 0),
                        )
                    )
        return found

    async def _bad_in(
        self,
        repo: SloRepository,
        slo: SourceSloConfig,
        ranges: Sequence[tuple[datetime, datetime]],
        *,
        evaluated: datetime | None,
    ) -> list[float]:
        """Bad seconds within each [start, end) of `ranges`.

        The stored periods are complete over the SLO window before the last evaluation
        (the first one reads the whole window; older ones are forgotten): that part is
        summed in SQL, the rest (older, or since the last evaluation) read from the alert
        history with `bad_spans`.
        """
        covered = (evaluated - slo.window, evaluated) if evaluated is not None else None
        lo, hi = min(a for a, _ in ranges), max(b for _, b in ranges)
        if covered is None:
            spans = await bad_spans(repo, slo, since=lo, until=hi)
            return [overlap(spans, a, b) for a, b in ranges]
        inside = [(max(a, covered[0]), min(b, covered[1])) for a, b in ranges]
        stored = await repo.bad_seconds_in(slo.id, [(a, b) if a < b else (a, a) for a, b in inside])
        before = await bad_spans(repo, slo, since=lo, until=min(covered[0], hi))
        after = await bad_spans(repo, slo, since=max(covered[1], lo), until=hi)
        outside = before + after
        return [
            seconds
            + overlap(outside, a, min(b, covered[0]))
            + overlap(outside, max(a, covered[1]), b)
            for seconds, (a, b) in zip(stored, ranges, strict=True)
        ]


__all__ = [
    "SLO_SOURCE",
    "SloService",
    "SloView",
    "bad_spans",
    "burn_alert",
    "burn_fingerprint",
]
