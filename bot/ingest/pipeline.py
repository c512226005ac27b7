"""The alert path as one pipeline of stages, assembled by `build_pipeline` (read it first).

Receiving stages run before anything is written and refuse bad deliveries; the delivery
stages wrap applying one delivery in its transaction; the alert stages decide, alert by
alert, what happens (see `bot.ingest.decisions`). Applying a decision is the incident
service's job.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import partial

from bot.config import PulseOpsConfig
from bot.config.directory import directory_of
from bot.domain.alerts import Alert, AlertStatus
from bot.domain.incident import Severity
from bot.domain.rules import Routing
from bot.errors import UserError
from bot.ingest.decisions import Decision
from bot.ingest.dropin import EmptyIsObject, GenieKey, OpsgenieAction, OpsgenieAlias, RoutingKey
from bot.ingest.parsers import PARSERS, Parser
from bot.ingest.slack_webhook import parse_slack_webhook
from bot.ingest.stages import (
    MAX_IDEMPOTENCY_KEY,
    AlertContext,
    AlertStage,
    Authenticate,
    BoundBody,
    DecodeJson,
    Dedup,
    Delivery,
    DeliveryStage,
    Group,
    Idempotency,
    IngestRequest,
    Mute,
    Parse,
    RateLimit,
    Received,
    ReceiveStage,
    Rejected,
    Route,
    StormGuard,
    dedup_key,
)
from bot.metrics import Metrics
from store.unit_of_work import UnitOfWork


def build_pipeline(
    config: PulseOpsConfig,
    *,
    tokens: Mapping[str, str],
    metrics: Metrics,
    monotonic: Callable[[], float] = time.monotonic,
) -> Pipeline:
    """The alert path of `config`, stage by stage, in the order the stages run."""
    limits = config.incidents
    rate = RateLimit(config, monotonic=monotonic)  # one bucket per integration, on every route
    configured: dict[str, Parser] = {
        i.name: partial(parse_slack_webhook, options=i.slack_webhook)
        for i in config.integrations
        if i.slack_webhook is not None
    }
    body = BoundBody(limits.max_body_bytes)
    parse = Parse(PARSERS, max_alerts=limits.max_alerts_per_delivery, configured=configured)
    genie = GenieKey(config, tokens)
    return Pipeline(
        receive=(Authenticate(config, tokens), rate, body, DecodeJson(), parse),
        routes={
            # the key is in the body: read it first (the body limit still applies)
            Via.PAGERDUTY: (body, DecodeJson(), RoutingKey(config, tokens), rate, parse),
            Via.PAGERDUTY_CHANGE: (body, DecodeJson(), RoutingKey(config, tokens), rate),
            Via.OPSGENIE_CREATE: (genie, rate, body, DecodeJson(), parse),
            Via.OPSGENIE_CLOSE: (
                genie,
                rate,
                body,
                EmptyIsObject(),
                DecodeJson(),
                OpsgenieAction(AlertStatus.RESOLVED),
            ),
            Via.OPSGENIE_ACKNOWLEDGE: (
                genie,
                rate,
                body,
                EmptyIsObject(),
                DecodeJson(),
                OpsgenieAction(AlertStatus.ACKNOWLEDGED),
            ),
            Via.OPSGENIE_GET: (genie, rate, OpsgenieAlias()),
        },
        deliver=(Idempotency(config.incidents.idempotency_ttl),),
        decide=(
            Dedup(),
            Route(directory_of(config), config.rules, _route_counter(metrics)),
            Mute(config.maintenance_windows),
            StormGuard(
                max_per_minute=limits.max_new_incidents_per_minute,
                default_severity=Severity(limits.default_severity),
            ),
            Group(Severity(limits.default_severity)),
        ),
        metrics=metrics,
    )


def _route_counter(metrics: Metrics) -> Callable[[UnitOfWork, Routing], None]:
    """Count each matched route (and each drop) once the alert's transaction commits."""

    def count(uow: UnitOfWork, routing: Routing) -> None:
        for name in routing.routes:
            uow.after_commit(metrics.alerts_routed.labels(route=name).inc)
        if routing.dropped_by is not None:
            uow.after_commit(metrics.alerts_dropped.labels(route=routing.dropped_by).inc)

    return count


class Via(StrEnum):
    """The drop-in routes, each with receiving stages of its own (`Pipeline.routes`)."""

    PAGERDUTY = "pagerduty"  # POST /v2/enqueue
    PAGERDUTY_CHANGE = "pagerduty-change"  # POST /v2/change/enqueue: receiving only
    OPSGENIE_CREATE = "opsgenie-create"  # POST /v2/alerts
    OPSGENIE_CLOSE = "opsgenie-close"  # POST /v2/alerts/{identifier}/close
    OPSGENIE_ACKNOWLEDGE = "opsgenie-acknowledge"  # POST /v2/alerts/{identifier}/acknowledge
    OPSGENIE_GET = "opsgenie-get"  # GET /v2/alerts/{identifier}: receiving only


@dataclass(frozen=True, slots=True)
class Pipeline:
    receive: tuple[ReceiveStage, ...]  # POST /webhooks/{integration}
    deliver: tuple[DeliveryStage, ...]
    decide: tuple[AlertStage, ...]
    metrics: Metrics
    routes: Mapping[Via, tuple[ReceiveStage, ...]] = field(default_factory=dict)

    async def receive_only(self, received: Received, *, via: Via | None = None) -> Received:
        """Run the receiving stages of the webhook route (or of `via`); raise the sender's
        error (nothing written) if one refuses."""
        stages = self.receive if via is None else self.routes[via]
        try:
            for stage in stages:
                received = await stage(received)
        except Rejected as rejected:
            name = "unknown" if rejected.reason == "not_found" else received.name or "unknown"
            self.metrics.webhooks_rejected.labels(integration=name, reason=rejected.reason).inc()
            raise rejected.error from None
        assert received.integration is not None
        return received

    async def accept(self, received: Received, *, via: Via | None = None) -> IngestRequest:
        """Run the receiving stages; raise the sender's error (nothing written) if one refuses."""
        received = await self.receive_only(received, via=via)
        assert received.integration is not None
        key = received.headers.get("Idempotency-Key", "").strip() or None
        if key is not None and len(key) > MAX_IDEMPOTENCY_KEY:
            raise UserError(
                f"Idempotency-Key is longer than {MAX_IDEMPOTENCY_KEY} characters",
                fields={"Idempotency-Key": "too long"},
            )
        if key is not None and not (key.isascii() and key.isprintable()):
            raise UserError(
                "Idempotency-Key must be printable ASCII (e.g. a UUID)",
                fields={"Idempotency-Key": "not printable ASCII"},
            )
        return IngestRequest.of(
            received.integration, received.alerts, idempotency_key=key, body=received.body
        )

    async def deliver_in(
        self,
        uow: UnitOfWork,
        request: IngestRequest,
        now: datetime,
        apply: Callable[[], Awaitable[Delivery]],
    ) -> Delivery:
        """Apply one delivery through the delivery stages, outermost first (those that have
        nothing to do for it skipped: without an Idempotency-Key, it is applied directly)."""
        stages = [stage for stage in self.deliver if stage.wraps(request)]
        if not stages:
            return await apply()

        async def run(index: int) -> Delivery:
            if index == len(stages):
                return await apply()
            return await stages[index](uow, request, now, lambda: run(index + 1))

        return await run(0)

    async def decide_for(
        self, uow: UnitOfWork, request: IngestRequest, alert: Alert, now: datetime
    ) -> Decision:
        """Pass one alert through the alert stages until one decides."""
        ctx = AlertContext(
            uow=uow,
            integration=request.integration,
            alert=alert,
            now=now,
            dedup_key=dedup_key(request.integration.name, alert.group_key),
        )
        for stage in self.decide:
            decision = await stage(ctx)
            if decision is not None:
                return decision
        raise AssertionError("the last alert stage always decides")
