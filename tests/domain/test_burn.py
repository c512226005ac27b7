"""Multi-window burn-rate rules (SRE workbook) and the error budget left."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.domain.burn import budget_left, describe, evaluate

H, M = timedelta(hours=1), timedelta(minutes=1)


def counts(**failures_per_1000: int) -> dict[timedelta, tuple[int, int]]:
    names = {"h1": H, "m5": 5 * M, "h6": 6 * H, "m30": 30 * M}
    return {names[k]: (1000, v) for k, v in failures_per_1000.items()}


@pytest.mark.parametrize(
    ("found", "level", "severity"),
    [
        (counts(h1=15, m5=15, h6=15, m30=15), 2, "SEV2"),  # 15× everywhere: pages
        (counts(h1=15, m5=1, h6=7, m30=7), 1, "SEV3"),  # the burn stopped 5 min ago: slow rule
        (counts(h1=14, m5=50, h6=5, m30=50), 0, None),  # short spike, long windows calm
        (counts(h1=6, m5=6, h6=6, m30=6), 1, "SEV3"),  # exactly 6×
        (counts(h1=0, m5=0, h6=0, m30=0), 0, None),
        ({}, 0, None),  # no runs yet
    ],
)
def test_both_windows_must_burn(
    found: dict[timedelta, tuple[int, int]], level: int, severity: str | None
) -> None:
    result = evaluate(found, 0.999)
    assert result.level == level
    assert (result.rule.severity if result.rule else None) == severity


def test_a_new_probe_needs_twenty_runs_in_the_long_window() -> None:
    few = {H: (19, 5), 5 * M: (5, 5), 6 * H: (19, 5), 30 * M: (19, 5)}
    assert evaluate(few, 0.999).level == 0
    enough = {H: (20, 5), 5 * M: (5, 5), 6 * H: (20, 5), 30 * M: (20, 5)}
    assert evaluate(enough, 0.999).level == 2


def test_the_alert_says_each_windows_rate() -> None:
    result = evaluate(counts(h1=20, m5=30, h6=20, m30=20), 0.999)
    assert describe(result, 0.999) == (
        "Error budget burning at 20.0× over 1 h, 30.0× over 5 min (threshold 14.4× over both; "
        "objective 99.9 %)."
    )


def test_budget_left() -> None:
    assert budget_left(0, 0, 0.999) is None
    assert budget_left(10_000, 0, 0.999) == 1.0
    assert budget_left(10_000, 5, 0.999) == pytest.approx(0.5)
    assert budget_left(10_000, 20, 0.999) == pytest.approx(-1.0)
