"""Rolling z-score anomaly detection over a probe's samples (pure: no I/O, no clock).

`score(series, ...)` judges the LAST value of a series against the `window` values before
it: their mean and standard deviation form the baseline, and the value is anomalous when it
lies more than `z` deviations above the mean (latency and error rate only matter upwards).
Nothing is judged before `min_samples` baseline values exist. The deviation has a floor
(`min_std`), so a perfectly flat baseline (every check 0 % errors, latency steady to the
microsecond) does not turn a negligible change into an infinite z-score.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

ERROR_RATE_RUNS = 10
"""The error rate at a run is the share of failed checks among the last 10 runs."""

LATENCY_MIN_STD_MS = 1.0
LATENCY_MIN_STD_SHARE = 0.05
"""Latency deviation floor: 1 ms plus 5 % of the baseline mean."""

ERROR_RATE_MIN_STD = 0.05
"""Error-rate deviation floor (5 percentage points): with z=3, a rise of 15 points or more."""


@dataclass(frozen=True, slots=True)
class Score:
    """The last value against its baseline."""

    value: float
    mean: float
    std: float  # the deviation used (floored)
    z: float
    samples: int  # baseline values used

    def above(self, z: float) -> bool:
        return self.z > z


def score(
    series: Sequence[float],
    *,
    window: int,
    min_samples: int,
    min_std: float = 0.0,
    min_std_share: float = 0.0,
) -> Score | None:
    """The z-score of `series[-1]` against the up to `window` values before it, or None when
    fewer than `min_samples` baseline values exist."""
    if window < 1 or min_samples < 1:
        raise ValueError("window and min_samples must be positive")
    if len(series) < 2:
        return None
    baseline = series[-1 - window : -1]
    if len(baseline) < min_samples:
        return None
    n = len(baseline)
    mean = math.fsum(baseline) / n
    variance = math.fsum((x - mean) ** 2 for x in baseline) / n
    std = max(math.sqrt(variance), min_std + min_std_share * abs(mean))
    value = series[-1]
    z = (value - mean) / std if std > 0 else (0.0 if value == mean else math.inf)
    return Score(value=value, mean=mean, std=std, z=z, samples=n)


def latency_score(latencies_ms: Sequence[float], *, window: int, min_samples: int) -> Score | None:
    """The last successful check's latency against the previous ones (floor: 1 ms + 5 %)."""
    return score(
        latencies_ms,
        window=window,
        min_samples=min_samples,
        min_std=LATENCY_MIN_STD_MS,
        min_std_share=LATENCY_MIN_STD_SHARE,
    )


def error_rates(failures: Sequence[bool], runs: int = ERROR_RATE_RUNS) -> list[float]:
    """The rolling error rate after each run: failures among the last `runs` runs (fewer at
    the start)."""
    rates: list[float] = []
    failed = 0
    for i, failure in enumerate(failures):
        failed += failure
        if i >= runs:
            failed -= failures[i - runs]
        rates.append(failed / min(i + 1, runs))
    return rates


def error_rate_score(failures: Sequence[bool], *, window: int, min_samples: int) -> Score | None:
    """The error rate now against its values over the previous runs (floor: 5 points).

    The first `ERROR_RATE_RUNS - 1` rates cover fewer runs and are not used as baseline."""
    rates = error_rates(failures)[ERROR_RATE_RUNS - 1 :]
    return score(rates, window=window, min_samples=min_samples, min_std=ERROR_RATE_MIN_STD)


def first_detection(
    series: Sequence[float],
    *,
    z: float,
    window: int,
    min_samples: int,
    min_std: float = 0.0,
    min_std_share: float = 0.0,
    start: int = 0,
) -> int | None:
    """The first index at or after `start` whose value scores above `z`, or None (benchmarks
    and tests: detection delay and false positives on synthetic series)."""
    for end in range(max(start, 1), len(series)):
        s = score(
            series[: end + 1],
            window=window,
            min_samples=min_samples,
            min_std=min_std,
            min_std_share=min_std_share,
        )
        if s is not None and s.above(z):
            return end
    return None
