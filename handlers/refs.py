"""Parse what people type to name an incident (`42`, `INC-42`, `#42`) or another numbered thing.

Numbers are ASCII digits only: `str.isdigit` and `\\d` also take other scripts' digits (`٣`),
which people do not mean as ids.
"""

from __future__ import annotations

import re

from bot.errors import UserError
from bot.render import Replies

_REF = re.compile(r"(?:inc-?|#)?([0-9]{1,9})", re.IGNORECASE | re.ASCII)
MAX_ID = 2**31 - 1  # ids are 32-bit integers in the database


def ascii_number(text: str) -> int | None:
    """`text` as a whole number if it is ASCII digits only and a usable id (1..MAX_ID)."""
    if not (text.isascii() and text.isdigit()) or len(text) > 10:
        return None
    value = int(text)
    return value if 1 <= value <= MAX_ID else None


def parse_incident_ref(text: str, *, replies: Replies) -> int:
    """The incident id in `text`; UserError saying what to type otherwise."""
    match = _REF.fullmatch(text.strip())
    if not match:
        raise UserError(replies.not_incident_number(text.strip()))
    return int(match.group(1))
