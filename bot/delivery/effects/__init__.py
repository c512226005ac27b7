"""Outbox effects, one module per area: what each outbox kind does in Slack."""

from bot.delivery.effects.base import UNSURE, Effects, GiveUp, Handler, LeaseBusy, Postpone
from bot.delivery.effects.collab import CollabEffects
from bot.delivery.effects.handoff import HandoffEffects
from bot.delivery.effects.incident import IncidentEffects
from bot.delivery.effects.notes import NoteEffects
from bot.delivery.effects.postmortem import PostmortemEffects
from bot.delivery.effects.report import ReportEffects

__all__ = [
    "UNSURE",
    "CollabEffects",
    "Effects",
    "GiveUp",
    "HandoffEffects",
    "Handler",
    "IncidentEffects",
    "LeaseBusy",
    "NoteEffects",
    "PostmortemEffects",
    "Postpone",
    "ReportEffects",
]
