"""The dependencies handlers receive: built once by the app factory, passed explicitly."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from bot.clock import Clock
from bot.config import PulseOpsConfig, Settings
from bot.delivery.worker import OutboxWorker
from bot.metrics import Metrics
from bot.notify.providers import Providers
from bot.render import Renderer
from bot.services.api_tokens import ApiTokens
from bot.services.collab import CollabService
from bot.services.contacts import ContactMethods
from bot.services.escalation import EscalationService
from bot.services.handoffs import HandoffService
from bot.services.health import HealthService
from bot.services.heartbeats import HeartbeatService
from bot.services.home import HomeService
from bot.services.inactivity import InactivityService
from bot.services.incident_changes import IncidentChanges
from bot.services.incidents import IncidentService
from bot.services.ingest import AlertIngest
from bot.services.notify_acks import NotificationAcks
from bot.services.oncall import OnCallService
from bot.services.permissions import Permissions
from bot.services.postmortem import Postmortems
from bot.services.probes import ProbeService
from bot.services.report import ReportService
from bot.services.silences import SilenceService
from bot.services.stats import StatsService
from bot.services.workflows import WorkflowService
from bot.slack.gateway import SlackGateway
from store.session import Database


@dataclass(frozen=True, slots=True)
class Deps:
    settings: Settings
    config: PulseOpsConfig
    db: Database
    clock: Clock
    metrics: Metrics
    renderer: Renderer
    gateway: SlackGateway
    incidents: IncidentService
    escalations: EscalationService
    handoffs: HandoffService
    ingest: AlertIngest
    outbox: OutboxWorker
    oncall: OnCallService
    ics_tokens: dict[str, str]  # schedule id -> calendar feed token; absent: feed disabled
    stats: StatsService
    reports: ReportService
    home: HomeService
    api_tokens: ApiTokens
    changes: IncidentChanges
    permissions: Permissions
    collab: CollabService
    postmortems: Postmortems
    silences: SilenceService
    providers: Providers  # e-mail, SMS, call and push providers
    acks: NotificationAcks  # acknowledgements by e-mail link, SMS and call
    contacts: ContactMethods  # people's own methods (`/oncall notify`)
    workflows: WorkflowService
    heartbeats: HeartbeatService
    inactivity: InactivityService
    probes: ProbeService
    health: HealthService  # /readyz checks (and the watchdog's)


DEPS = web.AppKey("deps", Deps)
"""Where the app factory keeps the `Deps` on the aiohttp application (routes read it)."""
