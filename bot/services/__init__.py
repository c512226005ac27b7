"""Domain services: incidents (ingest, transitions, declare, queries) and the Slack outbox."""

from bot.services.alerts import IngestOutcome
from bot.services.incidents import IncidentService
from bot.services.outbox import OutboxWorker

__all__ = ["IncidentService", "IngestOutcome", "OutboxWorker"]
