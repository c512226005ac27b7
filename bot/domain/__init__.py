"""Pure domain core: incident state machine, alert model, channel naming. No I/O, no clock."""

from bot.domain.alerts import Alert, AlertStatus, Link
from bot.domain.incident import (
    Acknowledge,
    Command,
    Effect,
    IncidentState,
    InvalidTransition,
    Reopen,
    Resolve,
    Severity,
    Status,
    Transition,
    apply,
)

__all__ = [
    "Acknowledge",
    "Alert",
    "AlertStatus",
    "Command",
    "Effect",
    "IncidentState",
    "InvalidTransition",
    "Link",
    "Reopen",
    "Resolve",
    "Severity",
    "Status",
    "Transition",
    "apply",
]
