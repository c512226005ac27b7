"""Heartbeats (dead-man switches): pings recorded in SQL; a missed one opens an incident.

A heartbeat is armed by its first ping; from then on each ping moves its deadline to
`interval` + `grace` ahead. `sweep()` (every few seconds, on every replica) claims the
heartbeats past their deadline with SKIP LOCKED, marks them missed and sends a firing
`heartbeat` alert through the same alert pipeline as webhooks, all in one transaction, so
routes, silences and paging apply and several replicas open one incident. The next ping
sends the alert's resolve the same way, which resolves the incident.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from bot.clock import Clock
from bot.config import HeartbeatConfig, IntegrationConfig, PulseOpsConfig
from bot.config.heartbeats import HEARTBEAT_INTEGRATION
from bot.domain.alerts import Alert, AlertStatus
from bot.domain.durations import format_duration
from bot.ingest.stages import IngestRequest, same_secret
from bot.metrics import Metrics
from bot.services.ingest import AlertIngest
from store.heartbeats import MISSED, HeartbeatRepository
from store.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

SOURCE = "heartbeat"  # the `source` of heartbeat alerts and of the incidents they open

# The integration heartbeat alerts arrive through. It is no configured integration (none may
# be named "heartbeat"; config check says so) and no webhook route serves it, so it is built
# without validation: it needs no token or parser, only a name for dedup keys and actors.
HEARTBEAT_SOURCE = IntegrationConfig.model_construct(
    name=HEARTBEAT_INTEGRATION,
    type=SOURCE,
    service=None,
    token=None,
    token_env=None,
    max_requests_per_second=None,
)


@dataclass(frozen=True, slots=True)
class Ping:
    """What one ping did: the heartbeat's new deadline, and the resolve it sent if it had
    been missed."""

    name: str
    at: datetime
    next_due_at: datetime
    first: bool
    recovered: dict[str, object] | None  # the resolve's result (outcome, incident)

    def to_json(self) -> dict[str, object]:
        return {
            "status": "ok",
            "heartbeat": self.name,
            "pinged_at": self.at.isoformat(),
            "next_due_at": self.next_due_at.isoformat(),
            "first_ping": self.first,
            "recovered": self.recovered,
        }


def heartbeat_alert(
    heartbeat: HeartbeatConfig, status: AlertStatus, *, last_ping_at: datetime | None = None
) -> Alert:
    """The alert of a missed heartbeat (firing), or its resolve; one fingerprint and group key
    per heartbeat, so repeats and the resolve land on its incident."""
    grace = f" plus {format_duration(heartbeat.grace)} grace" if heartbeat.grace else ""
    since = f" since {last_ping_at:%Y-%m-%d %H:%M:%S} UTC" if last_ping_at else ""
    return Alert(
        fingerprint=heartbeat.name,
        group_key=heartbeat.name,
        status=status,
        title=f"Heartbeat {heartbeat.name} missed",
        description=(
            f"No ping{since}: heartbeat {heartbeat.name} expects one at least every "
            f"{format_duration(heartbeat.interval)}{grace} (POST /heartbeats/{heartbeat.name})."
        ),
        service=heartbeat.service,
        labels={"heartbeat": heartbeat.name, "service": heartbeat.service},
        source=SOURCE,
    )


def _request(alert: Alert) -> IngestRequest:
    return IngestRequest.of(HEARTBEAT_SOURCE, (alert,), idempotency_key=None, body=b"")


class HeartbeatService:
    """Authenticates and records pings; the sweep opens incidents for missed heartbeats."""

    def __init__(
        self,
        *,
        config: PulseOpsConfig,
        clock: Clock,
        metrics: Metrics,
        ingest: AlertIngest,
        environ: Mapping[str, str],
    ) -> None:
        self.config = config
        self.clock = clock
        self.metrics = metrics
        self.ingest = ingest
        self.tokens = {h.name: h.resolve_token(environ) for h in config.heartbeats}
        # Opsgenie accepts any API integration's key for a heartbeat ping: here the token of
        # any `opsgenie` integration
        self.genie_keys = tuple(
            i.resolve_token(environ) for i in config.integrations if i.type == "opsgenie"
        )

    # ---- who may ping --------------------------------------------------------------------

    def authenticate(self, name: str, token: str) -> HeartbeatConfig | None:
        """The heartbeat `name` if `token` is its token (constant time), else None; an unknown
        name answers None too, so a caller cannot tell which names exist."""
        expected = self.tokens.get(name)
        if expected is None:
            same_secret(token, token)  # spend the same time as a real comparison
            return None
        return self.config.heartbeat(name) if same_secret(token, expected) else None

    def authenticate_genie_key(self, name: str, key: str) -> HeartbeatConfig | None:
        """Who may ping through the Opsgenie route (`Authorization: GenieKey <key>`): the
        heartbeat's own token, or the token of any `opsgenie` integration (as Opsgenie accepts
        any API integration's key). Every key is compared, in constant time."""
        own = self.authenticate(name, key)
        integration_key = False
        for expected in self.genie_keys:
            integration_key |= same_secret(key, expected)
        if own is not None or not integration_key:
            return own
        return self.config.heartbeat(name)

    # ---- pings and the sweep -------------------------------------------------------------

    async def ping(self, heartbeat: HeartbeatConfig) -> Ping:
        """Record a ping: the deadline moves ahead; a missed heartbeat's alert is resolved."""

        async def work(uow: UnitOfWork) -> Ping:
            now = self.clock.now()
            due_at = now + heartbeat.allowed_silence
            repo = HeartbeatRepository(uow.session)
            before = await repo.record_ping(name=heartbeat.name, now=now, due_at=due_at)
            recovered = None
            if before == MISSED:
                alert = heartbeat_alert(heartbeat, AlertStatus.RESOLVED)
                delivery = await self.ingest.apply_in(uow, _request(alert), now)
                recovered = _outcome(delivery.body)
            counter = self.metrics.heartbeat_pings.labels(heartbeat=heartbeat.name)
            uow.after_commit(counter.inc)
            return Ping(heartbeat.name, now, due_at, before is None, recovered)

        return await self.ingest.within(self.ingest.incidents.write(work))

    async def sweep(self, *, limit: int = 100) -> int:
        """Open an incident for every armed heartbeat past its deadline; return how many."""
        names = [h.name for h in self.config.heartbeats]
        if not names:
            return 0

        async def work(uow: UnitOfWork) -> int:
            now = self.clock.now()
            repo = HeartbeatRepository(uow.session)
            missed = 0
            for state in await repo.claim_due(names=names, now=now, limit=limit):
                heartbeat = self.config.heartbeat(state.name)
                if heartbeat is None or not await repo.mark_missed(name=state.name, now=now):
                    continue
                alert = heartbeat_alert(
                    heartbeat, AlertStatus.FIRING, last_ping_at=state.last_ping_at
                )
                await self.ingest.apply_in(uow, _request(alert), now)
                late = now - state.due_at
                log.info("heartbeat %s missed (%s past its deadline)", heartbeat.name, late)
                uow.after_commit(self.metrics.heartbeats_missed.labels(heartbeat=state.name).inc)
                missed += 1
            return missed

        return await self.ingest.incidents.write(work)


def _outcome(body: Mapping[str, object]) -> dict[str, object] | None:
    """The resolve's result as the webhook answer reports it (outcome, incident)."""
    results = body.get("results")
    if not isinstance(results, list) or not results or not isinstance(results[0], dict):
        return None
    return dict(results[0])


__all__ = ["HEARTBEAT_SOURCE", "HeartbeatService", "Ping", "heartbeat_alert"]
