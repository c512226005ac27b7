"""SLO burn-rate alerts as in Google's SRE workbook (multi-window, multi-burn-rate), pure.

The burn rate over a window is the window's error ratio divided by the error budget
(1 − objective): 1× spends the budget exactly over the SLO window. An alert needs BOTH a long
and a short window above the rate, so it fires fast on a real burn and stops soon after the
burn stops:

| burn rate | long window | short window | severity | budget spent (30-day SLO) |
|---|---|---|---|---|
| 14.4× | 1 h | 5 min | SEV2 (pages) | 2 % in 1 h |
| 6× | 6 h | 30 min | SEV3 | 5 % in 6 h |
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.domain.incident import Severity


@dataclass(frozen=True, slots=True)
class BurnRule:
    rate: float
    long: timedelta
    short: timedelta
    severity: Severity
    level: int  # higher is more urgent


RULES = (
    BurnRule(14.4, timedelta(hours=1), timedelta(minutes=5), Severity.SEV2, 2),
    BurnRule(6.0, timedelta(hours=6), timedelta(minutes=30), Severity.SEV3, 1),
)
MIN_RUNS = 20
"""Runs a rule's long window must hold before it can fire: a new probe's first failure (one
failed run of three) is no burn."""

EPSILON = 1e-9  # 6 failures in 1,000 at 99.9 % is 6× (not 5.999…)
WINDOWS = tuple(sorted({w for r in RULES for w in (r.long, r.short)}))


@dataclass(frozen=True, slots=True)
class Burn:
    """The most urgent rule whose two windows both burn at or above its rate (None: none)."""

    rule: BurnRule | None
    rates: Mapping[timedelta, float]  # burn rate per window (windows without runs: absent)

    @property
    def level(self) -> int:
        return 0 if self.rule is None else self.rule.level


Counts = Mapping[timedelta, tuple[float, float]]
"""window -> (total, bad): runs and failed runs (a probe), or seconds observed and seconds
with an alert firing (an alert source)."""


def burn_rates(counts: Counts, objective: float) -> dict[timedelta, float]:
    """Burn rate per window from (total, bad); `objective` is a ratio such as 0.999."""
    budget = 1.0 - objective
    return {w: (f / r) / budget for w, (r, f) in counts.items() if r > 0}


def evaluate(counts: Counts, objective: float, *, min_total: float = MIN_RUNS) -> Burn:
    """The most urgent rule that holds; a rule's long window must hold `min_total` (runs for
    a probe; an alert source's time is always observed, so 0 there)."""
    rates = burn_rates(counts, objective)
    for rule in RULES:  # most urgent first
        at = rule.rate - EPSILON
        enough = counts.get(rule.long, (0, 0))[0] >= min_total
        if enough and rates.get(rule.long, 0.0) >= at and rates.get(rule.short, 0.0) >= at:
            return Burn(rule, rates)
    return Burn(None, rates)


def budget_left(runs: float, failures: float, objective: float) -> float | None:
    """The share of the error budget not yet spent over the SLO window (negative: overspent);
    None without runs (or observed time)."""
    if runs == 0:
        return None
    return 1.0 - (failures / runs) / (1.0 - objective)


def change(before: int, found: Burn) -> bool | None:
    """What a burn alert does now that `found` holds and `before` was the level: True fires
    it (a more urgent rule than before: a repeat with the higher severity), False resolves it
    (no rule holds any more), None leaves it as it is."""
    if found.rule is not None and found.level > before:
        return True
    if found.rule is None and before > 0:
        return False
    return None


def _window(w: timedelta) -> str:
    minutes = int(w.total_seconds() // 60)
    return f"{minutes // 60} h" if minutes % 60 == 0 else f"{minutes} min"


def describe(burn: Burn, objective: float) -> str:
    """What the alert says: each window's burn rate against the rule."""
    assert burn.rule is not None
    rule = burn.rule
    parts = ", ".join(
        f"{burn.rates.get(w, 0.0):.1f}× over {_window(w)}" for w in (rule.long, rule.short)
    )
    return (
        f"Error budget burning at {parts} (threshold {rule.rate:g}× over both; objective "
        f"{objective * 100:g} %)."
    )


@dataclass(frozen=True, slots=True)
class SloView:
    """An SLO's state for the API, Slack and the Home tab."""

    id: str
    integration: str | None
    matchers: tuple[str, ...]
    service: str | None
    objective: float
    window_seconds: float
    evaluated_at: datetime | None
    bad_seconds: float  # over the SLO window
    availability: float | None  # share of the SLO window without an alert firing
    budget_left: float | None
    burn_rates: dict[str, float]  # per burn window ("1h", "5m", …)
    burning: bool

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "integration": self.integration,
            "matchers": list(self.matchers),
            "service": self.service,
            "objective": self.objective,
            "window_seconds": self.window_seconds,
            "evaluated_at": self.evaluated_at,
            "bad_seconds": round(self.bad_seconds, 3),
            "availability": self.availability,
            "budget_left": self.budget_left,
            "burn_rates": self.burn_rates,
            "burning": self.burning,
        }


@dataclass(frozen=True, slots=True)
class SloPeriod:
    """An SLO over a past period (the weekly report's week): its availability over the
    period, the error budget left over its window ending with the period, and the burn
    alerts that first fired in the period."""

    id: str
    probe: bool  # a probe's `slo` (availability: successful checks) or an alert source's
    objective: float  # percent
    window_seconds: float
    service: str | None
    availability: float | None  # None: nothing observed (a probe without runs)
    budget_left: float | None
    burn_alerts: int
