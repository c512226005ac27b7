"""Client-side pacing of Slack Web API calls: a token bucket on an injected monotonic clock."""

from __future__ import annotations

from collections.abc import Callable


class TokenBucket:
    """`rate` tokens a second on average, at most `burst` at once; time is injected."""

    def __init__(self, *, rate: float, burst: float, monotonic: Callable[[], float]) -> None:
        self.rate = rate
        self.burst = burst
        self._monotonic = monotonic
        self._tokens = burst
        self._at = monotonic()

    def _fill(self) -> float:
        now = self._monotonic()
        if now > self._at:
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
        return now

    def wait_time(self) -> float:
        """Seconds until a token is available (0.0: take one now)."""
        now = self._fill()
        if now < self._at:  # paused
            return self._at - now + max(1.0 - self._tokens, 0.0) / self.rate
        return max(1.0 - self._tokens, 0.0) / self.rate

    def take(self) -> None:
        """Spend one token (callers wait `wait_time()` first; the balance may go negative)."""
        self._fill()
        self._tokens -= 1.0

    def pause(self, seconds: float) -> None:
        """Slack said 429: no tokens for `seconds`, then refill from empty."""
        self._fill()
        self._tokens = 0.0
        self._at = max(self._at, self._monotonic() + seconds)


__all__ = ["TokenBucket"]
