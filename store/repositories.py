"""Compatibility re-exports: the repositories now live in `store.incidents` and `store.outbox`."""

from store.incidents import (
    AlertRepository,
    IncidentFilter,
    IncidentNotFound,
    IncidentRepository,
    RepeatRecorded,
    TimelineRepository,
    to_incident,
)
from store.outbox import IdempotencyRepository, OutboxItem, OutboxRepository

__all__ = [
    "AlertRepository",
    "IdempotencyRepository",
    "IncidentFilter",
    "IncidentNotFound",
    "IncidentRepository",
    "OutboxItem",
    "OutboxRepository",
    "RepeatRecorded",
    "TimelineRepository",
    "to_incident",
]
