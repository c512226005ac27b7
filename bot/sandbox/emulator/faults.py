"""Injected failures: outages, error statuses, latency, hangs, lost or held answers and
rate-limit overrides."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

FAULT_KEYS = frozenset(
    {
        "clear",
        "down_for",
        "error_status",
        "error_count",
        "latency_ms",
        "hang_for",
        "rate_limits",
        "methods",
        "lost_answers",
        "answer_delay_ms",
    }
)
HANG_EXTRA_SECONDS = 30.0

_STATUS_ERRORS = {
    429: "ratelimited",
    500: "internal_error",
    502: "fatal_error",
    503: "service_unavailable",
    504: "request_timeout",
}


def error_for_status(status: int) -> str:
    """The Slack error string that goes with an injected HTTP status."""
    return _STATUS_ERRORS.get(status, "internal_error" if status >= 500 else "invalid_request")


@dataclass
class Faults:
    """The failure plan in force; times are on the emulator's clock."""

    down_until: float | None = None
    error_status: int | None = None
    error_count: int = 0
    latency_ms: float = 0.0
    hang_until: float | None = None
    methods: frozenset[str] | None = None
    lost_answers: int = 0  # calls carried out whose answer is then lost (a 504)
    answer_delay_ms: float = 0.0  # calls carried out at once, their answer held this long
    rate_limits: dict[str, int] = field(default_factory=dict)

    def applies_to(self, method: str) -> bool:
        """Whether outage, error, latency and hang faults apply to `method`."""
        return self.methods is None or method in self.methods

    def to_json(self, now: float) -> dict[str, Any]:
        """The plan as JSON, with remaining durations instead of absolute times."""
        return {
            "down_for": max(0.0, self.down_until - now) if self.down_until else 0.0,
            "error_status": self.error_status,
            "error_count": self.error_count,
            "latency_ms": self.latency_ms,
            "hang_for": max(0.0, self.hang_until - now) if self.hang_until else 0.0,
            "methods": sorted(self.methods) if self.methods is not None else None,
            "lost_answers": self.lost_answers,
            "answer_delay_ms": self.answer_delay_ms,
            "rate_limits": dict(self.rate_limits),
        }


@dataclass(frozen=True)
class FaultDecision:
    """What the fault plan does to one call: delay it, hang it, or answer it with a status."""

    latency: float = 0.0
    hang_seconds: float | None = None
    status: int | None = None
    kind: str | None = None
    lose_answer: bool = False  # carry the call out, then answer 504 request_timeout
    answer_delay: float = 0.0  # carry the call out, then hold its answer this many seconds

    @property
    def blocks_call(self) -> bool:
        """True when the call must not execute."""
        return not self.lose_answer and (self.status is not None or self.hang_seconds is not None)


def apply_settings(faults: Faults, settings: Mapping[str, Any], *, now: float) -> Faults:
    """Return the plan after applying `settings` (the keys of POST /_emulator/faults).

    Raises:
        ValueError: an unknown key or a value of the wrong shape.
    """
    unknown = set(settings) - FAULT_KEYS
    if unknown:
        raise ValueError(f"unknown fault keys: {', '.join(sorted(unknown))}")
    plan = Faults() if settings.get("clear") else faults
    if "down_for" in settings:
        seconds = float(settings["down_for"] or 0)
        plan.down_until = now + seconds if seconds > 0 else None
    if "error_status" in settings:
        status = settings["error_status"]
        plan.error_status = int(status) if status else None
        if plan.error_status is not None and not 400 <= plan.error_status <= 599:
            raise ValueError("error_status must be an HTTP error status (400-599)")
        plan.error_count = int(settings.get("error_count", 1)) if plan.error_status else 0
    elif "error_count" in settings:
        plan.error_count = int(settings["error_count"])
    if "latency_ms" in settings:
        plan.latency_ms = max(0.0, float(settings["latency_ms"] or 0))
    if "hang_for" in settings:
        seconds = float(settings["hang_for"] or 0)
        plan.hang_until = now + seconds if seconds > 0 else None
    if "methods" in settings:
        methods = settings["methods"]
        if methods is not None and not isinstance(methods, list | tuple | set | frozenset):
            raise ValueError("methods must be a list of method names")
        plan.methods = frozenset(methods) if methods else None
    if "lost_answers" in settings:
        plan.lost_answers = max(0, int(settings["lost_answers"] or 0))
    if "answer_delay_ms" in settings:
        plan.answer_delay_ms = max(0.0, float(settings["answer_delay_ms"] or 0))
    if "rate_limits" in settings:
        limits = settings["rate_limits"] or {}
        if not isinstance(limits, Mapping):
            raise ValueError("rate_limits must map a method name to requests per minute")
        plan.rate_limits = {str(method): int(limit) for method, limit in limits.items()}
    return plan


def decide(faults: Faults, method: str, *, now: float) -> FaultDecision:
    """Decide the fate of one call; consumes one of `error_count` when it answers with it."""
    if not faults.applies_to(method):
        return FaultDecision()
    latency = faults.latency_ms / 1000.0
    if faults.down_until is not None and now < faults.down_until:
        return FaultDecision(latency=latency, status=503, kind="down")
    if faults.hang_until is not None and now < faults.hang_until:
        hang = faults.hang_until - now + HANG_EXTRA_SECONDS
        return FaultDecision(latency=latency, hang_seconds=hang, status=504, kind="hang")
    if faults.error_status is not None and faults.error_count > 0:
        faults.error_count -= 1
        status = faults.error_status
        if faults.error_count == 0:
            faults.error_status = None
        return FaultDecision(latency=latency, status=status, kind="error_status")
    if faults.lost_answers > 0:
        faults.lost_answers -= 1
        return FaultDecision(latency=latency, status=504, kind="lost_answer", lose_answer=True)
    if faults.answer_delay_ms > 0:
        return FaultDecision(
            latency=latency, kind="answer_delay", answer_delay=faults.answer_delay_ms / 1000.0
        )
    return FaultDecision(latency=latency)
