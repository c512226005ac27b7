"""Shared pieces of the wire models: the frozen, extra-ignoring body base, the helpers that
turn a body's problems into `{"dotted.field.path": "message"}`, and field types (times, URLs,
severities) every parser uses. Pure: no I/O, no clock.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from bot.domain.alerts import Link
from bot.domain.incident import Severity


class _Body(BaseModel):
    """Base of the wire models: unknown keys are ignored, values are immutable."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


# --------------------------------------------------------------------------- shared helpers


def validation_problems(exc: ValidationError) -> dict[str, str]:
    """Map each failing field's dotted path (`alerts.0.labels`) to what is wrong with it."""
    problems: dict[str, str] = {}
    for error in exc.errors(include_url=False):
        path = ".".join(str(part) for part in error["loc"]) or "body"
        message = str(error["msg"]).removeprefix("Value error, ")
        problems[path] = f"{problems[path]}; {message}" if path in problems else message
    return problems


def _invalid(title: str, loc: tuple[str | int, ...], message: str, value: Any) -> ValidationError:
    """Build a ValidationError for a rule that spans fields (so it still names one field)."""
    detail = InitErrorDetails(
        type=PydanticCustomError("value_error", message), loc=loc, input=value
    )
    return ValidationError.from_exception_data(title, [detail])


def _require_object(body: Any, title: str, *, batch: bool = False) -> None:
    """Refuse a body that is not a JSON object (or, when `batch`, an array) with a clear message."""
    if isinstance(body, dict) or (batch and isinstance(body, list)):
        return
    expected = "a JSON object or an array of objects" if batch else "a JSON object"
    raise _invalid(title, (), f"expected {expected}, got {_json_kind(body)}", body)


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else type(value).__name__


def _digest(*parts: str) -> str:
    """A stable identifier for alerts whose sender gave none (retries map to the same one)."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:  # monitors that omit the offset mean UTC more often than not
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _now(now: datetime) -> datetime:
    result = _utc(now)
    assert result is not None
    return result


def _link(url: str | None, text: str) -> list[Link]:
    return [Link(url=url.strip(), text=text)] if url and url.strip() else []


def _unset_time(value: Any) -> Any:
    """Alertmanager writes Go's zero time ("0001-01-01T00:00:00Z") for an unset time."""
    if value is None or value == "" or (isinstance(value, str) and value.startswith("0001-01-01")):
        return None
    return value


def _in_utc(value: datetime | None) -> datetime | None:
    """A time that stays a valid datetime in UTC (year 1 to 9999 after the offset)."""
    try:
        return _utc(value)
    except OverflowError:
        raise ValueError("is out of range once converted to UTC") from None


OptionalTime = Annotated[datetime | None, BeforeValidator(_unset_time), AfterValidator(_in_utc)]


def _first(*values: str | None) -> str:
    """The first non-empty value, or ""."""
    for value in values:  # a loop, not a generator: this runs several times for every alert
        if value:
            return value
    return ""


def _labels_key(labels: Mapping[str, str]) -> str:
    return json.dumps(dict(labels), sort_keys=True, separators=(",", ":"))


def _parse_severity(value: Any) -> Any:
    if value is None or isinstance(value, Severity):
        return value
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError("must be a string such as SEV2")
    severity = Severity.parse(value)
    if severity is None:
        raise ValueError(
            f"unknown severity {value!r}: use SEV1, SEV2, SEV3 or SEV4 "
            "(or critical, error, warning, info)"
        )
    return severity


SeverityIn = Annotated[Severity | None, BeforeValidator(_parse_severity)]
_URL = re.compile(r"https?://\S{1,3000}")


def _http_url(value: str) -> str:
    value = value.strip()
    if not _URL.fullmatch(value):
        raise ValueError("must be an http:// or https:// URL without spaces")
    return value


HttpUrl = Annotated[str, AfterValidator(_http_url)]
