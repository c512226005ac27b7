"""Human durations (`30s`, `5m`, `12h`, `3d`, `1w`, `1h30m`) to and from timedelta."""

from __future__ import annotations

import re
from datetime import timedelta

# Largest to smallest; a duration writes each unit at most once, in this order.
_UNITS: tuple[tuple[str, int], ...] = (
    ("w", 7 * 24 * 3600),
    ("d", 24 * 3600),
    ("h", 3600),
    ("m", 60),
    ("s", 1),
)
_PATTERN = re.compile("".join(rf"(?:(?P<{unit}>\d+){unit})?" for unit, _ in _UNITS))
ACCEPTED = "write a whole number and a unit s, m, h, d or w, e.g. 30s, 5m, 12h, 3d or 1h30m"
# timedelta's own ceiling is ~999,999,999 days; far beyond any sane schedule or timeout.
MAX_SECONDS = 100 * 365 * 24 * 3600


def parse_duration(text: str) -> timedelta:
    """Parse `30s`, `5m`, `12h`, `3d`, `1w` or a combination such as `1h30m`; raise ValueError."""
    if not isinstance(text, str):
        raise ValueError(f"invalid duration {text!r}: {ACCEPTED}")
    cleaned = text.strip()
    match = _PATTERN.fullmatch(cleaned)
    if not cleaned or match is None:
        raise ValueError(f"invalid duration {text!r}: {ACCEPTED}")
    seconds = sum(int(match[unit] or 0) * size for unit, size in _UNITS)
    if seconds <= 0:
        raise ValueError(f"invalid duration {text!r}: must be longer than zero ({ACCEPTED})")
    if seconds > MAX_SECONDS:
        raise ValueError(f"invalid duration {text!r}: must be at most 100 years")
    return timedelta(seconds=seconds)


def format_duration(td: timedelta) -> str:
    """Format a timedelta as `parse_duration` reads it (`1h30m`), dropping sub-second parts."""
    seconds = int(td.total_seconds())
    if seconds < 0:
        raise ValueError(f"cannot format a negative duration ({td})")
    if seconds == 0:
        return "0s"
    parts: list[str] = []
    for unit, size in _UNITS:
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def human_seconds(seconds: float | None) -> str:
    """A duration for people: `45s`, `2m 5s`, `3h 20m`, `2d 4h`; `—` for None."""
    if seconds is None:
        return "—"
    total = int(round(seconds))
    if total < 60:
        return f"{total}s"
    if total < 3600:
        return f"{total // 60}m {total % 60}s"
    if total < 86400:
        return f"{total // 3600}h {total % 3600 // 60}m"
    return f"{total // 86400}d {total % 86400 // 3600}h"
