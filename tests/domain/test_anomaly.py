"""The rolling z-score detector (pure) on synthetic series, and what a probe run means.

Stated false-positive rate: on a stationary Gaussian series with z=3, window=120 and
min_samples=30, fewer than 1 % of scored samples are flagged (one-sided P(Z > 3) is 0.13 %;
the estimated baseline adds a little)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.anomaly import (
    ERROR_RATE_RUNS,
    error_rate_score,
    error_rates,
    latency_score,
    score,
)
from bot.domain.probes import CALM_RUNS, ProbeState, Rules, Run, assess

FALSE_POSITIVE_RATE = 0.01

means = st.floats(min_value=1.0, max_value=5000.0)
sigmas = st.floats(min_value=0.0, max_value=200.0)
zs = st.floats(min_value=1.0, max_value=10.0)


@given(
    st.lists(st.floats(min_value=0, max_value=1e6), max_size=200),
    st.integers(min_value=1, max_value=100),
    st.integers(min_value=1, max_value=100),
)
def test_nothing_is_judged_before_min_samples(series: list[float], window: int, m: int) -> None:
    found = score(series, window=window, min_samples=m)
    baseline = min(window, max(len(series) - 1, 0))
    if baseline < m:
        assert found is None
    else:
        assert found is not None and found.samples == baseline


@given(means, sigmas, zs, st.integers(min_value=5, max_value=60), st.integers(0, 2**32))
def test_a_step_change_is_detected_at_its_first_sample(
    mean: float, sigma: float, z: float, min_samples: int, seed: int
) -> None:
    """Bounded noise (uniform within ±sigma): the sample mean lies within ±sigma and the
    sample deviation at most sigma, so a step of (z + 1) deviations (floored as the latency
    detector floors them) scores above z at once: detection delay 0 samples."""
    rng = random.Random(seed)
    window = 120
    baseline = [mean + rng.uniform(-sigma, sigma) for _ in range(min_samples + rng.randrange(80))]
    floor = 1.0 + 0.05 * (mean + sigma)
    step = (z + 1.0) * max(sigma, floor) + sigma
    series = baseline + [mean + step]
    found = latency_score(series, window=window, min_samples=min_samples)
    assert found is not None and found.above(z)
    assert found.z > z and found.value == mean + step


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**32), st.floats(min_value=10.0, max_value=1000.0))
def test_a_stationary_noisy_series_stays_below_the_stated_false_positive_rate(
    seed: int, mean: float
) -> None:
    rng = random.Random(seed)
    sigma = mean * 0.2
    series = [max(0.0, rng.gauss(mean, sigma)) for _ in range(1500)]
    flagged = scored = 0
    for end in range(30, len(series)):
        found = latency_score(series[: end + 1], window=120, min_samples=30)
        if found is not None:
            scored += 1
            flagged += found.above(3.0)
    assert scored == len(series) - 30
    assert flagged / scored < FALSE_POSITIVE_RATE


def test_a_flat_baseline_does_not_make_a_tiny_change_infinite() -> None:
    found = latency_score([100.0] * 40 + [103.0], window=120, min_samples=30)
    assert found is not None and found.std == pytest.approx(6.0) and found.z == pytest.approx(0.5)


def test_error_rates_roll_over_the_last_ten_runs() -> None:
    rates = error_rates([False] * 10 + [True] * 3)
    assert rates[9] == 0 and rates[-1] == pytest.approx(0.3)
    assert error_rates([True, False]) == [1.0, 0.5]
    failures = [False] * 60 + [True, True, True, False, True]
    found = error_rate_score(failures, window=120, min_samples=30)
    assert found is not None and found.value == pytest.approx(0.4) and found.above(3)
    assert error_rate_score([False] * (ERROR_RATE_RUNS + 20), window=120, min_samples=30) is None


RULES = Rules(probe_id="web", target="GET https://web", failures_to_trigger=3, cert_expiry_days=14)


def run(ok: bool, cert_days: int | None = None) -> Run:
    return Run(
        ok=ok,
        latency_ms=5.0,
        error=None if ok else "status 503",
        cert_days=cert_days,
        latencies_ms=[],
        failures=[],
    )


def test_failures_to_trigger_then_one_success_resolves() -> None:
    state = ProbeState()
    fired = []
    for _ in range(5):
        state, signals = assess(state, run(False), RULES)
        fired += signals
    assert [(s.kind, s.firing) for s in fired] == [("down", True)]
    assert "3 consecutive failed checks" in fired[0].description
    state, signals = assess(state, run(True), RULES)
    assert [(s.kind, s.firing) for s in signals] == [("down", False)]
    assert state.status == "up" and state.consecutive_failures == 0


def test_certificate_expiry_fires_low_severity_once_and_renewal_resolves() -> None:
    state, signals = assess(ProbeState(), run(True, cert_days=10), RULES)
    assert [(s.kind, s.firing, s.severity) for s in signals] == [("cert", True, "SEV4")]
    assert signals[0].title == "Probe web: TLS certificate expires in 10 days"
    state, signals = assess(state, run(True, cert_days=9), RULES)
    assert signals == []
    state, signals = assess(state, run(True, cert_days=80), RULES)
    assert [(s.kind, s.firing) for s in signals] == [("cert", False)]


def test_latency_anomaly_fires_with_numbers_and_resolves_after_calm_runs() -> None:
    rules = Rules(
        probe_id="web",
        target="GET https://web",
        failures_to_trigger=3,
        cert_expiry_days=None,
        z=3.0,
        window=50,
        min_samples=20,
    )
    latencies = [100.0 + (i % 5) for i in range(30)]
    state = ProbeState()

    def at(value: float) -> tuple[ProbeState, list[object]]:
        latencies.append(value)
        step = Run(True, value, None, None, list(latencies), [False] * len(latencies))
        return assess(state, step, rules)  # type: ignore[return-value]

    state, signals = at(400.0)
    (signal,) = signals
    assert signal.kind == "latency-anomaly" and signal.firing  # type: ignore[attr-defined]
    assert signal.title.startswith("Probe web latency anomaly: 400 ms (baseline 102 ms")  # type: ignore[attr-defined]
    assert "z-score" in signal.description  # type: ignore[attr-defined]
    for _ in range(CALM_RUNS - 1):
        state, signals = at(102.0)
        assert signals == []
    state, signals = at(102.0)
    assert [(s.kind, s.firing) for s in signals] == [("latency-anomaly", False)]  # type: ignore[attr-defined]
