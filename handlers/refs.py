"""Parse what people type to name an incident: `42`, `INC-42`, `#42`."""

from __future__ import annotations

import re

from bot.errors import UserError
from bot.render import Replies

_REF = re.compile(r"^(?:inc-?|#)?(\d{1,9})$", re.IGNORECASE)


def parse_incident_ref(text: str, *, replies: Replies) -> int:
    """The incident id in `text`; UserError saying what to type otherwise."""
    match = _REF.match(text.strip())
    if not match:
        raise UserError(replies.not_incident_number(text.strip()))
    return int(match.group(1))
