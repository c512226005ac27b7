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
"""

from __future__ import annotations

from datetime import timedelta

from bot.clock import Clock
from bot.config import IntegrationConfig, PulseOpsConfig
from bot.config.slos import SLO_INTEGRATION, SourceSloConfig
from bot.domain import burn
from bot.domain.alerts import Alert, AlertStatus
from bot.domain.burn import SloView
from bot.domain.matchers import matches_all
from bot.ingest.stages import IngestRequest
from bot.metrics import Metrics
from bot.services.ingest import AlertIngest
from store.session import Database
from store.slos import SloRepository, union
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
    key = f"slo:{slo.id}:burn"
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
            firing = await repo.firing(
                since=since, now=now, integration=slo.integration, exclude=(SLO_INTEGRATION,)
            )
            spans = [(f.start, f.end) for f in firing if matches_all(slo.matchers, f.labels)]
            await repo.add_periods(slo.id, union(spans))
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


__all__ = ["SLO_SOURCE", "SloService", "SloView", "burn_alert"]
