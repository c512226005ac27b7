"""Parse what people type to name an incident: `42`, `INC-42`, `#42`."""

from __future__ import annotations

import re

from bot.errors import UserError
from bot.render import escape_mrkdwn

_REF = re.compile(r"^(?:inc-?|#)?(\d{1,9})$", re.IGNORECASE)


def parse_incident_ref(text: str) -> int:
    """The incident id in `text`; UserError saying what to type otherwise."""
    match = _REF.match(text.strip())
    if not match:
        raise UserError(
            f"`{escape_mrkdwn(text.strip()[:40])}` is not an incident number; "
            "type e.g. `42` or `INC-42`."
        )
    return int(match.group(1))
