"""Workflow decisions without I/O: which events trigger, the labels matchers see, the key that
makes a run happen once, how long a failed webhook waits, and the signature of a body."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import timedelta
from typing import Literal

EventTrigger = Literal["triggered", "acknowledged", "resolved", "escalated", "severity_changed"]
EVENT_TRIGGERS: tuple[str, ...] = (
    "triggered",
    "acknowledged",
    "resolved",
    "escalated",
    "severity_changed",
)

WORKFLOW_ACTOR_PREFIX = "workflow:"
"""Changes a workflow makes carry the actor `workflow:<id>`; they trigger no workflows, so two
workflows cannot set the severity back and forth for ever."""


def match_labels(
    *,
    service: str | None,
    team: str | None,
    severity: str,
    category: str | None,
    labels: Mapping[str, str],
) -> dict[str, str]:
    """The labels a workflow's matchers see: the incident's alert labels, then its own fields
    (which win over an alert label of the same name)."""
    seen = {str(k): str(v) for k, v in labels.items()}
    seen.update({"service": service or "", "team": team or "", "severity": severity})
    if category:
        seen["category"] = category
    return seen


def trigger_key(trigger: str, *, version: int) -> str:
    """Once per (workflow, incident, trigger): the incident's first trigger is one key; later
    events are keyed by the incident version they produced (a reopen acknowledged again is
    a new event, a redelivered one is not)."""
    return "triggered" if trigger == "triggered" else f"{trigger}@v{version}"


def retry_delay(backoff: timedelta, failed_attempts: int, *, cap: timedelta) -> timedelta:
    """Wait before the next attempt: `backoff`, doubled after each further failure, capped."""
    wait: timedelta = backoff * (2 ** max(failed_attempts - 1, 0))
    return min(wait, cap)


def signature(secret: str, body: bytes) -> str:
    """`X-PulseOps-Signature`: `sha256=` and the hex HMAC-SHA256 of the body keyed by `secret`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
