"""Domain services: incidents (ingest, transitions, declare, queries) and the Slack outbox."""

from bot.services.incidents import IncidentService, IngestOutcome
from bot.services.outbox import OutboxWorker

__all__ = ["IncidentService", "IngestOutcome", "OutboxWorker"]
