"""Config value types read by pydantic: `Duration` from `1h30m`-style strings or seconds,
`Matchers` from lists of Alertmanager matcher strings."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, InstanceOf, PlainSerializer

from bot.domain.durations import ACCEPTED, MAX_SECONDS, format_duration, parse_duration
from bot.domain.matchers import Matcher, MatcherError, parse_matcher


def _coerce_duration(value: Any) -> Any:
    """Accept a duration string, whole seconds as an int, or a positive timedelta."""
    if isinstance(value, timedelta):
        if value <= timedelta(0):
            raise ValueError("must be longer than zero")
        return value
    if isinstance(value, bool):  # bool is an int subclass; `true` is never a duration
        raise ValueError(f"invalid duration {value!r}: {ACCEPTED}")
    if isinstance(value, int):
        if value <= 0:
            raise ValueError(f"invalid duration {value!r}: must be longer than zero")
        if value > MAX_SECONDS:
            raise ValueError(f"invalid duration {value!r}: must be at most 100 years")
        return timedelta(seconds=value)
    return parse_duration(value)


Duration = Annotated[
    timedelta,
    BeforeValidator(_coerce_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]
"""A positive timedelta that pydantic reads from `1h30m`-style strings or whole seconds."""


def _coerce_matchers(value: Any) -> Any:
    """Parse a list of matcher strings (already-parsed Matchers pass through)."""
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise ValueError(
            "matchers is a list of strings in Alertmanager syntax, "
            """e.g. ['alertname=~"Payment.*"', 'env="prod"']"""
        )
    parsed = []
    for item in value:
        if isinstance(item, Matcher):
            parsed.append(item)
            continue
        try:
            parsed.append(parse_matcher(item))
        except MatcherError as exc:
            raise ValueError(str(exc)) from None
    return tuple(parsed)


Matchers = Annotated[
    tuple[InstanceOf[Matcher], ...],
    BeforeValidator(_coerce_matchers),
    PlainSerializer(lambda matchers: [str(m) for m in matchers], return_type=list[str]),
]
"""Alertmanager matchers (`bot.domain.matchers`), read from a list of strings; all must match."""
