"""The sandbox page's monitor: sample alerts sent to PulseOps' real webhook routes.

The page cannot hold integration tokens or reach the service across origins, so the sandbox
adds two routes to the emulator's server that act as a monitor would: they build an
Alertmanager, generic, PagerDuty Events v2, Grafana or Datadog body and POST it to
`/webhooks/<integration>` with the integration's bearer token, then hand back the service's
answer unchanged.

    GET  /_sandbox/info     the service URL, slash commands and the samples on offer
    POST /_sandbox/alerts   {"sample", "status": "firing"|"resolved", "summary"?, "key"?}
    POST /_sandbox/storm    {"sample"?, "count", "distinct"?}
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web

from bot.config import PulseOpsConfig
from bot.errors import ConfigError

DEFAULT_SUMMARY = "Checkout error rate above 5%"
STORM_DEFAULT = 200
STORM_MAX = 2000
STORM_DISTINCT = 10
STORM_CONNECTIONS = 20
MAX_SUMMARY = 1000
MAX_KEY = 100

LABELS = {
    "alertmanager": "Prometheus Alertmanager",
    "generic": "Generic JSON",
    "pagerduty": "PagerDuty Events v2",
    "grafana": "Grafana Alerting",
    "datadog": "Datadog",
}
"""The types the page can send samples of (others, such as opsgenie, are left out)."""


@dataclass(frozen=True)
class Sample:
    """A sample the page offers: one per configured integration that has a token."""

    id: str  # the integration type
    label: str
    integration: str
    token: str
    service: str | None


Work = Callable[[Mapping[str, Any]], Awaitable[dict[str, Any]]]


class BadRequest(ValueError):
    """A request the page sent that names a bad field."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


def samples_from(config: PulseOpsConfig, environ: Mapping[str, str]) -> dict[str, Sample]:
    """The first integration of each type whose token is known, by type."""
    found: dict[str, Sample] = {}
    for integration in config.integrations:
        if integration.type in found or integration.type not in LABELS:
            continue
        try:
            token = integration.resolve_token(environ)
        except ConfigError:
            continue
        found[integration.type] = Sample(
            id=integration.type,
            label=f"{LABELS[integration.type]} ({integration.name})",
            integration=integration.name,
            token=token,
            service=integration.service,
        )
    return found


def payload(sample: Sample, *, status: str, summary: str, key: str) -> dict[str, Any]:
    """The body the monitor would send for alert `key` in `status`."""
    firing = status == "firing"
    if sample.id == "generic":
        return {
            "title": summary,
            "severity": "SEV2",
            "dedup_key": f"sandbox-{key}",
            "status": status,
            **({"service": sample.service} if sample.service else {}),
            "labels": {"source": "sandbox"},
        }
    if sample.id == "pagerduty":
        return {
            "routing_key": "sandbox",
            "event_action": "trigger" if firing else "resolve",
            "dedup_key": f"sandbox-{key}",
            "payload": {
                "summary": summary,
                "source": "sandbox-host-1",
                "severity": "critical",
                "component": sample.service or "sandbox",
            },
        }
    if sample.id == "datadog":
        return {
            "title": f"[{'Triggered' if firing else 'Recovered'}] {summary}",
            "alert_cycle_key": f"sandbox-{key}",
            "alert_transition": "Triggered" if firing else "Recovered",
            "alert_type": "error" if firing else "success",
            "hostname": "sandbox-host-1",
            "tags": f"service:{sample.service}" if sample.service else "env:sandbox",
        }
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    alertname = f"SandboxAlert{key}" if key.isalnum() else "SandboxAlert"
    labels = {"alertname": alertname, "severity": "critical", "instance": f"sandbox-{key}"}
    if sample.service:
        labels["service"] = sample.service
    grafana = {"orgId": 1, "title": f"[{status.upper()}:1] {alertname}", "state": status}
    return {
        **(grafana if sample.id == "grafana" else {}),
        "version": "1" if sample.id == "grafana" else "4",
        "groupKey": f'{{}}:{{alertname="{alertname}", key="{key}"}}',
        "status": status,
        "receiver": "pulseops",
        "groupLabels": {"alertname": alertname},
        "commonLabels": labels,
        "commonAnnotations": {"summary": summary},
        "externalURL": "http://alertmanager.sandbox:9093",
        "alerts": [
            {
                "status": status,
                "labels": labels,
                "annotations": {"summary": summary},
                "startsAt": now,
                "endsAt": "0001-01-01T00:00:00Z" if firing else now,
                "generatorURL": "http://prometheus.sandbox:9090/graph",
                "fingerprint": hashlib.sha256(f"sandbox-{key}".encode()).hexdigest()[:16],
            }
        ],
    }


class AlertSender:
    """Sends sample alerts to the service's webhook routes, as monitors do."""

    def __init__(self, *, bot_url: str, samples: Mapping[str, Sample]) -> None:
        self.bot_url = bot_url.rstrip("/")
        self.samples = dict(samples)
        self._session: aiohttp.ClientSession | None = None

    def sample(self, value: Any) -> Sample:
        if not isinstance(value, str) or value not in self.samples:
            raise BadRequest("sample", f"must be one of {', '.join(sorted(self.samples))}")
        return self.samples[value]

    async def send(self, sample: Sample, body: Mapping[str, Any]) -> tuple[int, Any]:
        """POST one body; return the service's status and JSON answer."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        async with self._session.post(
            f"{self.bot_url}/webhooks/{sample.integration}",
            json=body,
            headers={"Authorization": f"Bearer {sample.token}"},
        ) as response:
            try:
                answer = await response.json(content_type=None)
            except ValueError:
                answer = await response.text()
            return response.status, answer

    async def fire(self, request: Mapping[str, Any]) -> dict[str, Any]:
        sample = self.sample(request.get("sample", "alertmanager"))
        status = request.get("status", "firing")
        if status not in ("firing", "resolved"):
            raise BadRequest("status", "must be firing or resolved")
        summary = _text(request, "summary", DEFAULT_SUMMARY, MAX_SUMMARY)
        key = _text(request, "key", "1", MAX_KEY)
        body = payload(sample, status=status, summary=summary, key=key)
        code, answer = await self.send(sample, body)
        return {"status": code, "body": answer, "sent": body}

    async def storm(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """`count` firing webhooks over `distinct` alerts (the rest are repeats), concurrently."""
        sample = self.sample(request.get("sample", "alertmanager"))
        count = _number(request, "count", STORM_DEFAULT, STORM_MAX)
        distinct = _number(request, "distinct", STORM_DISTINCT, count)
        summary = _text(request, "summary", "Storm: upstream dependency failing", MAX_SUMMARY)
        gate = asyncio.Semaphore(STORM_CONNECTIONS)
        statuses: Counter[str] = Counter()

        async def one(i: int) -> None:
            key = f"storm{i % distinct}"
            body = payload(sample, status="firing", summary=f"{summary} ({key})", key=key)
            async with gate:
                try:
                    code, _ = await self.send(sample, body)
                except (aiohttp.ClientError, TimeoutError):
                    statuses["unreachable"] += 1
                    return
            statuses[str(code)] += 1

        await asyncio.gather(*(one(i) for i in range(count)))
        return {"sent": count, "distinct": distinct, "statuses": dict(statuses)}

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _text(request: Mapping[str, Any], field: str, default: str, limit: int) -> str:
    value = request.get(field)
    if value is None or value == "":
        return default
    if not isinstance(value, str):
        raise BadRequest(field, "must be a string")
    if len(value) > limit:
        raise BadRequest(field, f"must be at most {limit} characters")
    return value


def _number(request: Mapping[str, Any], field: str, default: int, limit: int) -> int:
    value = request.get(field, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
        raise BadRequest(field, f"must be a whole number from 1 to {limit}")
    return value


def register(app: web.Application, sender: AlertSender, *, commands: list[str]) -> None:
    """Add the /_sandbox routes to the emulator's application (before it starts)."""

    async def info(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "bot_url": sender.bot_url,
                "commands": commands,
                "samples": [
                    {"id": s.id, "label": s.label, "integration": s.integration}
                    for s in sender.samples.values()
                ],
                "storm_default": STORM_DEFAULT,
                "storm_max": STORM_MAX,
            }
        )

    def route(work: Work) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(request: web.Request) -> web.Response:
            try:
                body = await request.json()
            except ValueError:
                return web.json_response(
                    {"ok": False, "error": "the body must be JSON", "field": "body"}, status=400
                )
            if not isinstance(body, dict):
                return web.json_response(
                    {"ok": False, "error": "the body must be a JSON object", "field": "body"},
                    status=400,
                )
            try:
                result = await work(body)
            except BadRequest as exc:
                return web.json_response(
                    {"ok": False, "error": str(exc), "field": exc.field}, status=400
                )
            except (aiohttp.ClientError, TimeoutError) as exc:
                return web.json_response(
                    {"ok": False, "error": f"PulseOps did not answer: {exc}"}, status=502
                )
            return web.json_response({"ok": True, **result})

        return handler

    app.router.add_get("/_sandbox/info", info)
    app.router.add_post("/_sandbox/alerts", route(sender.fire))
    app.router.add_post("/_sandbox/storm", route(sender.storm))
