"""The app factory: wires settings, config, store, Slack (Bolt + gateway), handlers and jobs.

`create_app(settings, config)` returns an aiohttp Application; nothing runs at import time.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any, cast

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.exc import DBAPIError

from bot.clock import Clock, SystemClock
from bot.config import PulseOpsConfig, Settings
from bot.config.directory import directory_of
from bot.delivery.effects import (
    CollabEffects,
    NoteEffects,
    PostmortemEffects,
    ReportEffects,
)
from bot.delivery.effects.events import EventEffects
from bot.delivery.effects.notify import NotifyEffects
from bot.delivery.effects.probes import ProbeChartEffects
from bot.delivery.effects.workflows import WorkflowEffects
from bot.delivery.worker import OutboxWorker
from bot.deps import DEPS, Deps
from bot.domain.routing import route
from bot.ingest.pipeline import build_pipeline
from bot.jobs import Every, Jobs
from bot.metrics import Metrics
from bot.notify.providers import build_providers
from bot.render import Names, Renderer
from bot.render.home import HomeRenderer
from bot.services.api_tokens import ApiTokens
from bot.services.collab import CollabService
from bot.services.contacts import ContactMethods
from bot.services.escalation import EscalationService
from bot.services.events import EventStream
from bot.services.handoffs import HandoffService
from bot.services.health import HealthService
from bot.services.heartbeats import HeartbeatService
from bot.services.home import HomeService
from bot.services.inactivity import InactivityService
from bot.services.incident_changes import IncidentChanges
from bot.services.incidents import IncidentService
from bot.services.ingest import AlertIngest
from bot.services.notifications import NotificationPlanner
from bot.services.notify_acks import NotificationAcks
from bot.services.oncall import OnCallService
from bot.services.permissions import Permissions
from bot.services.postmortem import Postmortems
from bot.services.probes import ProbeService
from bot.services.report import ReportService
from bot.services.silences import SilenceService
from bot.services.slos import SloService
from bot.services.stats import StatsService
from bot.services.watchdog import Watchdog
from bot.services.workflows import WorkflowService, offered
from bot.slack.gateway import SlackGateway
from handlers import (
    actions,
    api,
    api_write,
    commands,
    contact_methods,
    dropin,
    events,
    heartbeats,
    home,
    ics,
    listener_runs,
    notify,
    oncall,
    openapi,
    probes,
    shortcuts,
    silences,
    slack_http,
    views,
    webhooks,
)
from handlers.api_auth import RateLimiter, api_auth_middleware
from handlers.middleware import http_middleware, provide_deps, register_bolt_errors
from store import migrate
from store.session import Database, is_unavailable

log = logging.getLogger(__name__)

SLACK_BODY_TIMEOUT = 5.0  # Slack sends small bodies at once and waits only 3 s for an answer
BOLT = web.AppKey("bolt", AsyncApp)
SLACK = web.AppKey("slack", slack_http.SlackEndpoint)


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None


def create_app(
    settings: Settings,
    config: PulseOpsConfig,
    *,
    clock: Clock | None = None,
    environ: Mapping[str, str] | None = None,
    run_jobs: bool = True,
    outbox_interval: float = 1.0,
    sweep_interval: float = 0.5,
) -> web.Application:
    """Build the service. `run_jobs=False` leaves the periodic sweeps off (tests drive them)."""
    environ = os.environ if environ is None else environ
    clock = clock or SystemClock()
    metrics = Metrics()
    db = Database(settings.database_url)
    token = _secret(settings.slack_bot_token) or "xoxb-not-configured"
    client = AsyncWebClient(  # aiohttp takes any number of seconds, though typed int
        token=token,
        base_url=settings.slack_api_url,
        timeout=cast(int, settings.slack_timeout),
        retry_handlers=[],
    )
    gateway = SlackGateway(client, metrics=metrics, monotonic=lambda: clock.now().timestamp())
    directory = directory_of(config)
    renderer = Renderer(
        Names(
            services={s.id: s.name for s in config.services},
            teams={t.id: t.name for t in config.teams},
        ),
        escalatable=lambda incident: (
            route(directory, service_id=incident.service_id, team_id=incident.team_id).policy_id
            is not None
        ),
        workflow_buttons=lambda incident: [(w.id, w.title) for w in offered(config, incident)],
    )
    outbox = OutboxWorker(
        db=db, gateway=gateway, renderer=renderer, config=config, clock=clock, metrics=metrics
    )
    oncall_service = OnCallService(db=db, config=config, clock=clock)
    dashboard = HomeService(
        db=db,
        clock=clock,
        metrics=metrics,
        gateway=gateway,
        renderer=HomeRenderer(renderer),
        oncall=oncall_service,
    )

    def committed() -> None:  # after every state change: deliver its effects, refresh Home tabs
        outbox.kick()
        dashboard.changed()

    workflows = WorkflowService(
        db=db, config=config, clock=clock, on_commit=committed, events=EventStream(config=config)
    )
    event_effects = EventEffects(
        db=db, gateway=gateway, renderer=renderer, config=config, clock=clock, environ=environ
    )
    outbox.register(event_effects)
    escalations = EscalationService(
        db=db,
        config=config,
        clock=clock,
        metrics=metrics,
        on_commit=committed,
        workflows=workflows,
        notifications=NotificationPlanner(config=config),
    )
    handoffs = HandoffService(
        db=db, config=config, clock=clock, metrics=metrics, on_commit=committed
    )
    incidents = IncidentService(
        db=db,
        config=config,
        clock=clock,
        metrics=metrics,
        escalations=escalations,
        on_commit=committed,
        workflows=workflows,
    )
    changes = IncidentChanges(incidents=incidents, config=config, clock=clock)
    outbox.register(
        WorkflowEffects(
            db=db,
            gateway=gateway,
            renderer=renderer,
            config=config,
            clock=clock,
            escalations=escalations,
            changes=changes,
            environ=environ,
            on_commit=committed,
            metrics=metrics,
        )
    )
    integration_tokens = {i.name: i.resolve_token(environ) for i in config.integrations}
    pipeline = build_pipeline(config, tokens=integration_tokens, metrics=metrics)
    ingest = AlertIngest(
        pipeline=pipeline,
        incidents=incidents,
        clock=clock,
        metrics=metrics,
        commit_timeout=config.health.commit_timeout.total_seconds(),
    )
    stats = StatsService(db=db, config=config, clock=clock)
    slos = SloService(db=db, config=config, clock=clock, metrics=metrics, ingest=ingest)
    reports = ReportService(
        db=db, config=config, clock=clock, stats=stats, slos=slos, on_commit=outbox.kick
    )
    # the report effect delivers with the same service that records reports
    outbox.register(
        ReportEffects(
            db=db, gateway=gateway, renderer=renderer, config=config, clock=clock, reports=reports
        )
    )
    postmortems = Postmortems(db=db, config=config)
    outbox.register(
        PostmortemEffects(
            db=db,
            gateway=gateway,
            renderer=renderer,
            config=config,
            clock=clock,
            postmortems=postmortems,
        )
    )
    outbox.register(
        ProbeChartEffects(db=db, gateway=gateway, renderer=renderer, config=config, clock=clock)
    )
    providers = build_providers(config, environ)
    outbox.register(
        NotifyEffects(
            providers=providers,
            metrics=metrics,
            db=db,
            gateway=gateway,
            renderer=renderer,
            config=config,
            clock=clock,
        )
    )
    for area in (NoteEffects, CollabEffects):
        outbox.register(area(db=db, gateway=gateway, renderer=renderer, config=config, clock=clock))
    scheduler = AsyncIOScheduler(timezone="UTC")
    metrics.watch_scheduler(scheduler)
    jobs = Jobs(scheduler, now=clock.now)
    health = HealthService(
        db=db, config=config.health, clock=clock, metrics=metrics, handoffs=handoffs, jobs=jobs
    )
    deps = Deps(
        settings=settings,
        config=config,
        db=db,
        clock=clock,
        metrics=metrics,
        renderer=renderer,
        gateway=gateway,
        incidents=incidents,
        escalations=escalations,
        handoffs=handoffs,
        ingest=ingest,
        outbox=outbox,
        oncall=oncall_service,
        ics_tokens=ics.feed_tokens(config, environ),
        home=dashboard,
        stats=stats,
        reports=reports,
        api_tokens=ApiTokens(
            db=db,
            config=config,
            clock=clock,
            environ=environ,
        ),
        changes=changes,
        workflows=workflows,
        permissions=Permissions(config=config, gateway=gateway),
        collab=CollabService(incidents=incidents, config=config, clock=clock),
        postmortems=postmortems,
        silences=SilenceService(
            db=db,
            config=config,
            clock=clock,
            metrics=metrics,
            pipeline=pipeline,
            incidents=incidents,
            changed=dashboard.changed,
        ),
        providers=providers,
        contacts=ContactMethods(db=db, config=config, clock=clock, on_commit=committed),
        acks=NotificationAcks(
            db=db,
            clock=clock,
            incidents=incidents,
            link_secret=providers.link_secret,
            on_commit=committed,
        ),
        heartbeats=HeartbeatService(
            config=config, clock=clock, metrics=metrics, ingest=ingest, environ=environ
        ),
        inactivity=InactivityService(
            db=db, config=config, clock=clock, metrics=metrics, incidents=incidents
        ),
        probes=ProbeService(
            db=db, config=config, clock=clock, metrics=metrics, ingest=ingest, slos=slos
        ),
        health=health,
    )
    watchdog = (
        Watchdog(config=config.watchdog, health=health, metrics=metrics, environ=environ)
        if config.watchdog is not None
        else None
    )

    if config.probes:
        dashboard.probe_lines = deps.probes.home_lines
    if config.slos:
        dashboard.slo_views = slos.overview

    bolt = AsyncApp(
        signing_secret=_secret(settings.slack_signing_secret) or "",
        client=client,
        process_before_response=False,
        raise_error_for_unhandled_request=False,
    )
    register_bolt_errors(bolt)
    listener_runs.register(bolt)  # event listeners' runs, watched for Socket Mode acks
    bolt.use(provide_deps(deps))  # first: the listeners and later middleware read it
    for module in (
        commands,
        actions,
        views,
        silences,
        oncall,
        home,
        contact_methods,
        events,
        shortcuts,
    ):
        module.register(bolt, deps)

    api_limit = RateLimiter(
        per_minute=config.api.requests_per_minute,
        burst=config.api.burst,
        monotonic=lambda: clock.now().timestamp(),
    )
    metrics_env = config.api.metrics_token_env
    api_auth = api_auth_middleware(
        deps.api_tokens,
        api_limit,
        metrics_token=environ.get(metrics_env) or None if metrics_env else None,
    )
    app = web.Application(
        middlewares=[http_middleware(metrics, api_auth)], client_max_size=4 * 1024**2
    )
    app[DEPS] = deps
    app[BOLT] = bolt

    slack = slack_http.register(bolt, deps, body_timeout=SLACK_BODY_TIMEOUT)
    app[SLACK] = slack
    if not settings.socket_mode:  # over Socket Mode, Slack's requests arrive on the socket
        app.router.add_post("/slack/events", slack.handle)
    for http_module in (webhooks, dropin, api, ics, notify):
        http_module.register(app, deps)
    api_write.register(app)
    heartbeats.register(app)
    probes.register(app)
    openapi.register(app)

    async def on_startup(_: web.Application) -> None:
        try:
            await migrate.upgrade(db)
        except (DBAPIError, OSError) as exc:
            if not is_unavailable(exc):
                raise
            # e.g. a read-only or full disk: serve anyway; /readyz says why until writes work
            log.error("could not migrate the database at start-up: %s", exc)
            db.unwritable = True
        if run_jobs:
            watching = (
                [Every("watchdog", watchdog.config.interval.total_seconds(), watchdog.tick)]
                if watchdog is not None
                else []
            )
            jobs.start(
                Every("outbox", outbox_interval, outbox.tick),
                Every("escalations", sweep_interval, escalations.sweep),
                Every("workflows", sweep_interval, workflows.sweep),
                # a handoff is announced within ~1 s (lateness target: 2 s)
                Every("handoffs", 1.0, handoffs.sweep),
                # status-update reminders go out within ~5 s of their deadline
                Every("update-reminders", 5.0, deps.collab.sweep_reminders),
                Every("channel-archives", 30, deps.collab.sweep_archives),
                # alerts a silence or maintenance window held open their incidents within ~1 s
                Every("silence-release", 1.0, deps.silences.sweep),
                # a report is recorded within ~10 s of its scheduled time
                Every("reports", 10, deps.reports.sweep),
                Every("idempotency-purge", 600, incidents.purge_idempotency_keys),
                Every("slack-requests-purge", 60, slack.purge),
                # Home tabs catch up with other replicas' changes within ~30 s
                Every("home-refresh", 30, dashboard.poll),
                # a missed heartbeat opens its incident within ~5 s of its deadline
                Every("heartbeats", 5, deps.heartbeats.sweep),
                Every("auto-resolve", 30, deps.inactivity.sweep),
                # probe runs start within ~0.25 s of their deadline (checks run in the
                # background; a tick with nothing due is one indexed query)
                Every("probes", 0.25, deps.probes.tick),
                Every("probe-rollup", 600, deps.probes.roll_up),
                Every("slos", 5, deps.probes.slos.tick),  # SLOs over alert sources
                *watching,
            )
            outbox.kick()  # deliver whatever a previous run left undelivered

    async def on_cleanup(_: web.Application) -> None:
        await jobs.stop()  # runs in flight finish before the database closes
        await deps.probes.close()
        await deps.ingest.wait_idle()
        await outbox.wait_idle()
        await event_effects.close()
        await dashboard.close()
        if providers.twilio is not None:
            await providers.twilio.close()
        await client.session.close() if client.session else None
        await db.dispose()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app
