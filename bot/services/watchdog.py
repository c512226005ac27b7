"""The outbound watchdog: a dead-man ping every `watchdog.interval` while this replica is healthy.

Whatever receives the pings (healthchecks.io and its kind, or another PulseOps' heartbeat
route) pages someone when they stop: PulseOps down, or up but stuck (the `/readyz` checks
failing, e.g. its outbox or a sweep fallen behind). The URL is the configuration writer's
choice, so private and loopback addresses may be reached; link-local and cloud metadata
addresses may not (`bot.outgoing`). The URL and the token are never logged: a dead-man URL is
itself a secret.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import aiohttp

from bot.config.health import WatchdogConfig
from bot.metrics import Metrics
from bot.outgoing import Refused, request
from bot.services.health import HealthService

log = logging.getLogger(__name__)


class Watchdog:
    """Pings the configured URL when `health.check()` passes."""

    def __init__(
        self,
        *,
        config: WatchdogConfig,
        health: HealthService,
        metrics: Metrics,
        environ: Mapping[str, str],
    ) -> None:
        self.config = config
        self.health = health
        self.metrics = metrics
        token = config.resolve_token(environ)
        self.headers = {"User-Agent": "PulseOps-watchdog"}
        if token is not None:
            self.headers["Authorization"] = f"Bearer {token}"

    async def tick(self) -> str:
        """Check this replica; ping if it is healthy. Returns the result (the metric's label)."""
        readiness = await self.health.check()
        if not readiness.ok:
            result = "skipped_unhealthy"
            log.warning(
                "watchdog: not pinging, this replica is not ready",
                extra={"readiness": readiness.body},
            )
        else:
            result = await self._ping()
        self.metrics.watchdog_pings.labels(result=result).inc()
        return result

    async def _ping(self) -> str:
        where = {"host": self.config.host, "method": self.config.method}
        try:
            answer = await request(
                self.config.method,
                self.config.url,
                body=b"" if self.config.method == "POST" else None,
                headers=self.headers,
                seconds=self.config.timeout.total_seconds(),
                allowed_hosts={self.config.host},
            )
        except Refused as exc:
            reason = str(exc).split(": http", 1)[0][:200]  # never the URL (a redirect's)
            log.error("watchdog: ping refused", extra={**where, "error": reason})
            return "failed"
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            log.warning("watchdog: ping failed", extra={**where, "error": type(exc).__name__})
            return "failed"
        if not 200 <= answer.status < 300:
            log.warning("watchdog: ping answered %d", answer.status, extra=where)
            return "failed"
        return "ok"
