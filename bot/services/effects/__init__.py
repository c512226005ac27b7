"""Outbox effects, one module per area: what each outbox kind does in Slack."""

from bot.services.effects.base import Effects, Handler, LeaseBusy
from bot.services.effects.handoff import HandoffEffects
from bot.services.effects.incident import IncidentEffects
from bot.services.effects.report import ReportEffects

__all__ = [
    "Effects",
    "HandoffEffects",
    "Handler",
    "IncidentEffects",
    "LeaseBusy",
    "ReportEffects",
]
