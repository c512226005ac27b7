"""`GET /api/v1/probes`, `GET /api/v1/probes/{id}/results` and `GET /api/v1/slos` (behind
API tokens, `read`)."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web

from bot.deps import DEPS
from bot.errors import NotFound
from handlers.api import _instant, _int
from handlers.api_models import ProbeList, ProbeOut, ProbeResultOut, ProbeResults, SloList, SloOut

DEFAULT_SINCE = timedelta(hours=1)
MAX_RESULTS = 5000


async def list_probes(request: web.Request) -> web.Response:
    """Every configured probe, in file order, with its state and uptime."""
    deps = request.app[DEPS]
    views = await deps.probes.overview()
    body = ProbeList(probes=[ProbeOut.model_validate(v.to_json()) for v in views])
    return web.json_response(body.model_dump(mode="json"))


async def list_slos(request: web.Request) -> web.Response:
    """Every SLO over an alert source, in file order, with its error budget and burn rates."""
    views = await request.app[DEPS].probes.slos.overview()
    body = SloList(slos=[SloOut.model_validate(v.to_json()) for v in views])
    return web.json_response(body.model_dump(mode="json"))


async def probe_results(request: web.Request) -> web.Response:
    """One probe's raw results since `since` (default: the last hour), oldest first."""
    deps = request.app[DEPS]
    probe_id = request.match_info["id"]
    if deps.config.probe(probe_id) is None:
        raise NotFound(f"no probe {probe_id!r}", fields={"id": "unknown probe"})
    since = _instant(request, "since") or deps.clock.now() - DEFAULT_SINCE
    limit = _int(request, "limit", 1000, lo=1, hi=MAX_RESULTS)
    found = await deps.probes.results(probe_id, since=since, limit=limit + 1)
    body = ProbeResults(
        probe=probe_id,
        since=since,
        truncated=len(found) > limit,
        results=[
            ProbeResultOut(
                at=s.at,
                ok=s.ok,
                latency_ms=s.latency_ms,
                status_code=s.status_code,
                error=s.error,
                cert_days=s.cert_days,
            )
            for s in found[:limit]
        ],
    )
    return web.json_response(body.model_dump(mode="json"))


def register(app: web.Application) -> None:
    app.router.add_get("/api/v1/probes", list_probes)
    app.router.add_get("/api/v1/probes/{id}/results", probe_results)
    app.router.add_get("/api/v1/slos", list_slos)
