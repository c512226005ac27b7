"""YAML model of the `collaboration` section: status-update reminders, the postmortem
template, and when a resolved incident's channel is archived."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import field_validator

from bot.config.checks import _Frozen
from bot.config.types import Duration
from bot.domain.incident import Severity

OFF = "off"


def _off_or(value: Any) -> Any:
    """`off` (YAML reads a bare `off` as false) or null turns a delay off: None."""
    if value is None or value is False or (isinstance(value, str) and value.strip().lower() == OFF):
        return None
    return value


class CollaborationConfig(_Frozen):
    """How an incident is run from Slack; every key is optional."""

    # an open incident of these severities with no status update for this long reminds its
    # lead (or, without a lead, the channel); a severity left out (or `off`) is never reminded
    update_reminders: dict[Severity, Duration | None] = {
        Severity.SEV1: timedelta(minutes=30),
        Severity.SEV2: timedelta(hours=1),
    }

    @field_validator("update_reminders", mode="before")
    @classmethod
    def _reminders(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            raise ValueError("a mapping of severity to a delay, e.g. {SEV1: 30m, SEV2: 1h}")
        out: dict[Any, Any] = {}
        for key, delay in value.items():
            severity = Severity.parse(key)
            if severity is None:
                raise ValueError(f"unknown severity {key!r}: use SEV1, SEV2, SEV3 or SEV4")
            out[severity] = _off_or(delay)
        return out

    # a resolved incident's channel is archived this long after (`off`: never), with a message
    archive_after: Duration | None = timedelta(days=7)

    @field_validator("archive_after", mode="before")
    @classmethod
    def _archive(cls, value: Any) -> Any:
        return _off_or(value)

    # a Jinja2 template of the postmortem draft (Markdown) instead of templates/postmortem.md.j2
    postmortem_template: str | None = None

    @field_validator("postmortem_template")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        if value is not None and not Path(value).is_file():
            raise ValueError(f"no template file at {value!r}")
        return value

    def reminder_after(self, severity: Severity) -> timedelta | None:
        """How long an incident of `severity` may go without a status update (None: ever)."""
        return self.update_reminders.get(severity)
