"""Slack channel names for incidents: always valid, and a bounded list of fallbacks."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

MAX_CHANNEL_NAME = 80
VALID_CHANNEL_NAME = re.compile(r"^[a-z0-9_-]{1,80}$")
_NOT_ALLOWED = re.compile(r"[^a-z0-9_-]+")
_DASHES = re.compile(r"-{2,}")


def slugify(text: str) -> str:
    """Lowercase ASCII slug of `text` using only letters, digits and single dashes."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = _NOT_ALLOWED.sub("-", folded.lower())
    return _DASHES.sub("-", slug).strip("-_")


def channel_name(prefix: str, number: int, title: str, *, suffix: str = "") -> str:
    """`<prefix>-<number>-<slug-of-title>[-suffix]`, cut to Slack's 80 characters."""
    head = f"{slugify(prefix) or 'inc'}-{number}"
    tail = f"-{suffix}" if suffix else ""
    room = MAX_CHANNEL_NAME - len(head) - len(tail) - 1
    slug = slugify(title)[: max(room, 0)].rstrip("-_")
    name = f"{head}-{slug}{tail}" if slug else f"{head}{tail}"
    return name[:MAX_CHANNEL_NAME]


def channel_name_candidates(
    prefix: str, number: int, title: str, *, tries: int = 10
) -> Iterator[str]:
    """The name to try first, then suffixed fallbacks for `name_taken` (bounded: `tries` names)."""
    yield channel_name(prefix, number, title)
    for i in range(2, tries + 1):
        yield channel_name(prefix, number, title, suffix=str(i))
