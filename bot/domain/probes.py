"""What one probe run means (pure): the probe's new state and the alerts it fires or resolves.

- `down`: `failures_to_trigger` consecutive failures fire; the next success resolves.
- `latency-anomaly` / `error-anomaly`: the rolling z-score (`bot.domain.anomaly`) of the run's
  latency (successful runs) or of the error rate over the last 10 runs goes above `z`; the
  alert resolves after `CALM_RUNS` runs in a row back at or below `z`.
- `cert`: an HTTPS certificate expiring within `cert_expiry_days` fires (low severity); a
  renewed certificate resolves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from bot.domain.anomaly import Score, error_rate_score, latency_score
from bot.domain.incident import Severity

CALM_RUNS = 5
"""Runs in a row back to normal before an anomaly's alert resolves."""

CERT_SEVERITY = Severity.SEV4


@dataclass(frozen=True, slots=True)
class ProbeState:
    status: str = "unknown"  # unknown | up | down
    consecutive_failures: int = 0
    latency_anomaly: bool = False
    error_anomaly: bool = False
    cert_expiring: bool = False
    latency_calm: int = 0
    error_calm: int = 0


@dataclass(frozen=True, slots=True)
class Run:
    """One run and the history the detector needs (oldest first, this run last)."""

    ok: bool
    latency_ms: float
    error: str | None
    cert_days: int | None
    latencies_ms: Sequence[float]  # successful runs' latencies
    failures: Sequence[bool]  # every run: failed or not


@dataclass(frozen=True, slots=True)
class Rules:
    probe_id: str
    target: str
    failures_to_trigger: int
    cert_expiry_days: int | None
    z: float | None = None  # None: no anomaly detection
    window: int = 120
    min_samples: int = 30


@dataclass(frozen=True, slots=True)
class Signal:
    """An alert to fire (`firing`) or resolve, of one kind of the probe."""

    kind: str  # down | latency-anomaly | error-anomaly | cert
    firing: bool
    title: str
    description: str
    severity: Severity | None = None


def assess(state: ProbeState, run: Run, rules: Rules) -> tuple[ProbeState, list[Signal]]:
    """The state after `run` and the alerts it changes."""
    signals: list[Signal] = []
    pid = rules.probe_id
    # down / up
    if run.ok:
        if state.status == "down":
            signals.append(Signal("down", False, f"Probe {pid} failing", "recovered"))
        state = replace(state, status="up", consecutive_failures=0)
    else:
        failures = state.consecutive_failures + 1
        opened = failures >= rules.failures_to_trigger and state.status != "down"
        if opened:
            signals.append(
                Signal(
                    "down",
                    True,
                    f"Probe {pid} failing: {run.error or 'failed'}",
                    f"{failures} consecutive failed checks of {rules.target}; the last one: "
                    f"{run.error or 'failed'} after {run.latency_ms:.0f} ms.",
                )
            )
        state = replace(
            state,
            consecutive_failures=failures,
            status="down" if opened or state.status == "down" else state.status,
        )
    # anomalies
    if rules.z is not None:
        if run.ok:
            latency = latency_score(
                run.latencies_ms, window=rules.window, min_samples=rules.min_samples
            )
            state, signal = _anomaly(state, "latency", latency, rules)
            if signal:
                signals.append(signal)
        errors = error_rate_score(run.failures, window=rules.window, min_samples=rules.min_samples)
        state, signal = _anomaly(state, "error", errors, rules)
        if signal:
            signals.append(signal)
    # certificate
    if rules.cert_expiry_days is not None and run.cert_days is not None:
        expiring = run.cert_days <= rules.cert_expiry_days
        if expiring != state.cert_expiring:
            when = (
                f"expired {-run.cert_days} days ago"
                if run.cert_days < 0
                else f"expires in {run.cert_days} days"
            )
            signals.append(
                Signal(
                    "cert",
                    expiring,
                    f"Probe {pid}: TLS certificate {when}",
                    f"The TLS certificate of {rules.target} {when} (warning at "
                    f"{rules.cert_expiry_days} days).",
                    CERT_SEVERITY,
                )
            )
            state = replace(state, cert_expiring=expiring)
    return state, signals


def _anomaly(
    state: ProbeState, what: str, score: Score | None, rules: Rules
) -> tuple[ProbeState, Signal | None]:
    assert rules.z is not None
    active = state.latency_anomaly if what == "latency" else state.error_anomaly
    calm = state.latency_calm if what == "latency" else state.error_calm
    kind = f"{what}-anomaly"
    if score is None:
        return state, None
    if score.above(rules.z):
        if active:
            return _set(state, what, True, 0), None
        return _set(state, what, True, 0), Signal(
            kind,
            True,
            _anomaly_title(rules.probe_id, what, score),
            _anomaly_text(what, score, rules),
        )
    if not active:
        return state, None
    if calm + 1 >= CALM_RUNS:
        return _set(state, what, False, 0), Signal(
            kind, False, _anomaly_title(rules.probe_id, what, score), "back to normal"
        )
    return _set(state, what, True, calm + 1), None


def _set(state: ProbeState, what: str, active: bool, calm: int) -> ProbeState:
    if what == "latency":
        return replace(state, latency_anomaly=active, latency_calm=calm)
    return replace(state, error_anomaly=active, error_calm=calm)


def _fmt(what: str, value: float) -> str:
    return f"{value:.0f} ms" if what == "latency" else f"{value * 100:.0f} %"


def _anomaly_title(probe_id: str, what: str, score: Score) -> str:
    label = "latency" if what == "latency" else "error rate"
    return (
        f"Probe {probe_id} {label} anomaly: {_fmt(what, score.value)} "
        f"(baseline {_fmt(what, score.mean)} ± {_fmt(what, score.std)}, z {score.z:.1f})"
    )


def _anomaly_text(what: str, score: Score, rules: Rules) -> str:
    measured = (
        f"latency {score.value:.1f} ms"
        if what == "latency"
        else f"error rate {score.value * 100:.0f} % over the last 10 runs"
    )
    unit = "ms" if what == "latency" else "%"
    scale = 1.0 if what == "latency" else 100.0
    return (
        f"{rules.target}: {measured}; baseline mean {score.mean * scale:.1f} {unit}, "
        f"deviation {score.std * scale:.1f} {unit} over the previous {score.samples} samples; "
        f"z-score {score.z:.1f} (threshold {rules.z:g})."
    )


@dataclass(frozen=True, slots=True)
class Uptime:
    """Runs and failures over a period (raw results and rollups together)."""

    runs: int
    failures: int

    @property
    def ratio(self) -> float | None:
        return None if self.runs == 0 else (self.runs - self.failures) / self.runs


@dataclass(frozen=True, slots=True)
class ProbeView:
    """A probe's state for the API and Slack."""

    id: str
    kind: str  # http | tcp
    target: str
    service: str
    interval_seconds: float
    failures_to_trigger: int
    slo_objective: float | None
    status: str
    last_run_at: datetime | None
    last_ok: bool | None
    last_latency_ms: float | None
    last_error: str | None
    cert_days: int | None
    next_run_at: datetime | None
    anomalies: tuple[str, ...]
    burning: bool
    uptime_24h: Uptime
    uptime_7d: Uptime
    budget_left: float | None = None  # with an SLO: the error budget not yet spent

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "kind": self.kind,
            "target": self.target,
            "service": self.service,
            "interval_seconds": self.interval_seconds,
            "status": self.status,
            "last_run_at": self.last_run_at.isoformat() if self.last_run_at else None,
            "last_ok": self.last_ok,
            "last_latency_ms": self.last_latency_ms,
            "last_error": self.last_error,
            "cert_days": self.cert_days,
            "next_run_at": self.next_run_at.isoformat() if self.next_run_at else None,
            "anomalies": list(self.anomalies),
            "uptime_24h": self.uptime_24h.ratio,
            "uptime_7d": self.uptime_7d.ratio,
            "slo_objective": self.slo_objective,
            "budget_left": self.budget_left,
            "burning": self.burning,
        }
