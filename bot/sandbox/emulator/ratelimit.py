"""Slack's Web API rate limits: per-method tiers and chat.postMessage's per-channel budget."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping

TIER_1 = 1
TIER_2 = 20
TIER_3 = 50
TIER_4 = 100

# Requests per minute, per method, per workspace (docs.slack.dev method pages).
METHOD_TIERS: dict[str, int] = {
    "apps.connections.open": TIER_1,
    "auth.test": TIER_4,  # "special" in the docs; generous in practice
    "chat.delete": TIER_3,
    "chat.getPermalink": TIER_4,  # "special" in the docs
    "chat.postEphemeral": TIER_4,
    "chat.update": TIER_3,
    "conversations.archive": TIER_2,
    "conversations.create": TIER_2,
    "conversations.history": TIER_3,
    "conversations.info": TIER_3,
    "conversations.invite": TIER_3,
    "conversations.join": TIER_3,
    "conversations.list": TIER_2,
    "conversations.members": TIER_4,
    "conversations.open": TIER_3,
    "conversations.rename": TIER_2,
    "conversations.replies": TIER_3,
    "conversations.setPurpose": TIER_2,
    "conversations.setTopic": TIER_2,
    "files.completeUploadExternal": TIER_4,
    "files.getUploadURLExternal": TIER_4,
    "pins.add": TIER_2,
    "pins.remove": TIER_2,
    "usergroups.list": TIER_2,
    "usergroups.users.list": TIER_2,
    "usergroups.users.update": TIER_2,
    "users.info": TIER_4,
    "users.list": TIER_2,
    "views.open": TIER_4,
    "views.publish": TIER_4,
    "views.push": TIER_4,
    "views.update": TIER_4,
}

POST_MESSAGE_PER_SECOND = 1.0
POST_MESSAGE_BURST = 3
WINDOW_SECONDS = 60.0


def retry_after_header(seconds: float) -> int:
    """Round a wait up to the whole seconds Slack puts in Retry-After (at least 1)."""
    return max(1, math.ceil(seconds))


class SlidingWindow:
    """At most `limit` admissions in any `window` seconds."""

    def __init__(self, limit: int, window: float = WINDOW_SECONDS) -> None:
        self.limit = limit
        self.window = window
        self._hits: deque[float] = deque()

    def try_acquire(self, now: float) -> float | None:
        """Admit one call (None) or return the seconds until one would be admitted."""
        while self._hits and self._hits[0] <= now - self.window:
            self._hits.popleft()
        if len(self._hits) >= self.limit:
            return self._hits[0] + self.window - now if self._hits else self.window
        self._hits.append(now)
        return None


class TokenBucket:
    """`rate` calls per second on average, with bursts of up to `capacity`."""

    def __init__(self, rate: float, capacity: int) -> None:
        self.rate = rate
        self.capacity = float(capacity)
        self._tokens = float(capacity)
        self._updated: float | None = None

    def try_acquire(self, now: float) -> float | None:
        """Admit one call (None) or return the seconds until a token is available."""
        if self._updated is not None and now > self._updated:
            self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
        self._updated = now if self._updated is None else max(now, self._updated)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return None
        return (1.0 - self._tokens) / self.rate


class RateLimiter:
    """Decides whether a Web API call is admitted; keyed by method (and channel for posts)."""

    def __init__(self, *, enabled: bool, tiers: Mapping[str, int] | None = None) -> None:
        self.enabled = enabled
        self.tiers = dict(METHOD_TIERS if tiers is None else tiers)
        self.overrides: dict[str, int] = {}
        self._windows: dict[tuple[str, int], SlidingWindow] = {}
        self._buckets: dict[str, TokenBucket] = {}

    def set_overrides(self, overrides: Mapping[str, int]) -> None:
        """Replace the per-method limits (requests per minute) that apply even when disabled."""
        self.overrides = {method: int(limit) for method, limit in overrides.items()}

    def reset(self) -> None:
        """Forget every recorded call (the overrides stay)."""
        self._windows.clear()
        self._buckets.clear()

    def limit_for(self, method: str) -> int | None:
        """The per-minute limit that applies to `method`, or None when it is not limited."""
        if method in self.overrides:
            return self.overrides[method]
        if self.enabled:
            return self.tiers.get(method)
        return None

    def check(self, method: str, *, channel: str | None, now: float) -> int | None:
        """Admit a call (None) or return the Retry-After seconds of a 429."""
        if method in self.overrides:
            wait = self._window(method, self.overrides[method]).try_acquire(now)
        elif not self.enabled:
            return None
        elif method == "chat.postMessage":
            bucket = self._buckets.get(channel or "")
            if bucket is None:
                bucket = TokenBucket(POST_MESSAGE_PER_SECOND, POST_MESSAGE_BURST)
                self._buckets[channel or ""] = bucket
            wait = bucket.try_acquire(now)
        elif method in self.tiers:
            wait = self._window(method, self.tiers[method]).try_acquire(now)
        else:
            return None
        return None if wait is None else retry_after_header(wait)

    def _window(self, method: str, limit: int) -> SlidingWindow:
        key = (method, limit)
        window = self._windows.get(key)
        if window is None:
            window = SlidingWindow(max(0, limit))
            self._windows[key] = window
        return window
