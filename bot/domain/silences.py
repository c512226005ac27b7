"""Silences and what holds an alert: pure values and decisions (no I/O, time passed in).

A silence mutes alerts whose labels match all its matchers from `starts_at` until `ends_at`
(or until someone expires it). A maintenance window does the same while one of its
occurrences is open. Either is a `Hold`: what muted an alert, said the way a person reads it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from bot.domain.matchers import Matcher, matches_all

MAX_MATCHERS = 20
MAX_COMMENT = 1000


class SilenceState(StrEnum):
    PENDING = "pending"  # starts later
    ACTIVE = "active"
    EXPIRED = "expired"  # expired by someone, or past its end


@dataclass(frozen=True, slots=True)
class Silence:
    """One stored silence."""

    id: int
    matchers: tuple[Matcher, ...]
    starts_at: datetime
    ends_at: datetime
    comment: str
    created_by: str
    created_at: datetime
    expired_at: datetime | None = None
    expired_by: str | None = None

    def state(self, now: datetime) -> SilenceState:
        if self.expired_at is not None or now >= self.ends_at:
            return SilenceState.EXPIRED
        return SilenceState.PENDING if now < self.starts_at else SilenceState.ACTIVE

    def mutes(self, labels: Mapping[str, str], now: datetime) -> bool:
        return self.state(now) is SilenceState.ACTIVE and matches_all(self.matchers, labels)

    @property
    def hold(self) -> Hold:
        return Hold(
            silence_id=self.id,
            window=None,
            until=self.ends_at,
            by=f"silence #{self.id} (by {self.created_by}: {self.comment})",
        )


@dataclass(frozen=True, slots=True)
class OpenWindow:
    """A maintenance window's occurrence open now."""

    name: str
    matchers: tuple[Matcher, ...]
    starts_at: datetime
    ends_at: datetime

    @property
    def hold(self) -> Hold:
        return Hold(
            silence_id=None,
            window=self.name,
            until=self.ends_at,
            by=f"maintenance window {self.name}",
        )


@dataclass(frozen=True, slots=True)
class Hold:
    """What mutes an alert: a silence or a maintenance window, until when, in words."""

    silence_id: int | None
    window: str | None
    until: datetime
    by: str

    @property
    def kind(self) -> str:
        return "silence" if self.silence_id is not None else "maintenance_window"

    @property
    def name(self) -> str:
        return str(self.silence_id) if self.silence_id is not None else str(self.window)


def holding(
    labels: Mapping[str, str],
    *,
    silences: Iterable[Silence],
    windows: Iterable[OpenWindow],
    now: datetime,
) -> Hold | None:
    """What mutes an alert with `labels` at `now`: the matching silence or open window that
    lasts longest (so a release comes as late as any of them would hold it), else None."""
    holds = [s.hold for s in silences if s.mutes(labels, now)]
    holds += [
        w.hold
        for w in windows
        if w.starts_at <= now < w.ends_at and matches_all(w.matchers, labels)
    ]
    if not holds:
        return None
    return max(holds, key=lambda h: h.until)


def selective(matchers: Iterable[Matcher]) -> bool:
    """True when some matcher refuses an alert without labels: a silence must not mute all."""
    return any(not m.matches({}) for m in matchers)


def matchable_labels(
    labels: Mapping[str, str],
    *,
    title: str,
    description: str,
    source: str,
    integration: str,
    service: str | None,
    severity: str | None,
) -> dict[str, str]:
    """What silences match against: the alert's labels plus `__title__`, `__description__`,
    `__source__`, `__integration__`, and its `service` and `severity` as decided."""
    merged = dict(labels)
    merged.update(
        __title__=title,
        __description__=description,
        __source__=source,
        __integration__=integration,
    )
    if service:
        merged["service"] = service
    if severity:
        merged["severity"] = severity
    return merged


_ONE_MATCHER = re.compile(
    r"""[A-Za-z_:][A-Za-z0-9_:]*\s*(?:=~|!~|!=|=)\s*(?:"(?:[^"\\]|\\.)*"|[^\s"{},]*)"""
)


def split_matchers(text: str) -> list[str]:
    """The matchers typed on one line (`/incident silence env="prod" __title__="disk full"`),
    one string each; braces and commas between them (`{env="prod", team="db"}`) are allowed.
    Text that is not a matcher is kept as it is, for the form to point out."""
    found: list[str] = []
    rest = text.strip().removeprefix("{").removesuffix("}")
    position = 0
    while position < len(rest):
        if rest[position] in " \t,":
            position += 1
            continue
        match = _ONE_MATCHER.match(rest, position)
        if match is None or not match.group():
            found.append(rest[position:].strip())
            break
        found.append(match.group().strip())
        position = match.end()
    return found
