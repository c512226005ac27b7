"""Contact methods and notification rules as pure logic: destinations checked and masked,
the notifications a page plans, signed acknowledge links, and SMS replies read."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

METHOD_TYPES = {"email": "address", "sms": "number", "voice": "number", "apprise": "url"}
"""Each method type and the key holding its destination."""

TYPE_LABELS = {"email": "E-mail", "sms": "SMS", "voice": "Call", "apprise": "Push"}

_E164 = re.compile(r"\+[1-9]\d{6,14}")
_EMAIL = re.compile(r"[^@\s<>\"']+@[^@\s<>\"']+\.[^@\s<>\"']+")
_URL = re.compile(r"[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)
ACK_WORDS = frozenset({"ack", "1", "acknowledge", "ok"})


def is_e164(number: str) -> bool:
    """Whether `number` is an E.164 phone number (`+` then 7 to 15 digits)."""
    return bool(_E164.fullmatch(number))


def check_address(method_type: str, value: str) -> None:
    """Raise ValueError saying what is wrong with a destination of this method type."""
    if method_type in ("sms", "voice"):
        if not is_e164(value):
            raise ValueError(
                f"invalid number {value!r}: E.164, a + then the country code and number, "
                "no spaces (e.g. +4915112345678)"
            )
    elif method_type == "email":
        if not _EMAIL.fullmatch(value) or len(value) > 254:
            raise ValueError(f"invalid e-mail address {value!r}")
    elif method_type == "apprise":
        if not _URL.fullmatch(value):
            raise ValueError(
                f"invalid Apprise URL {value!r}: scheme://…, e.g. ntfy://ntfy.sh/my-topic"
            )
    else:
        raise ValueError(f"unknown method type {method_type!r}")


def mask(method_type: str, value: str) -> str:
    """The destination as timelines, Slack and logs show it: enough to recognise, no more."""
    if method_type in ("sms", "voice"):
        return value[:3] + "•" * max(len(value) - 6, 1) + value[-3:]
    if method_type == "email":
        local, _, domain = value.partition("@")
        return f"{local[:1]}•••@{domain}"
    scheme = value.split("://", 1)[0]
    return f"{scheme}://•••"


@dataclass(frozen=True, slots=True)
class Method:
    """A person's contact method (from the config or set by them in Slack)."""

    id: str
    type: str
    destination: str


@dataclass(frozen=True, slots=True)
class Listed:
    """One of a person's methods as `/oncall notify` shows it."""

    method: Method
    after: timedelta
    own: bool  # set in Slack (else a default from pulseops.yml)
    tested: str | None = None  # the last test page's result


@dataclass(frozen=True, slots=True)
class Rule:
    after: timedelta
    methods: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Planned:
    """One notification a page asks for: this method, due at this time."""

    method: Method
    due_at: datetime


def plan(methods: Sequence[Method], rules: Sequence[Rule], *, paged_at: datetime) -> list[Planned]:
    """The notifications of one page, in due order; a method named twice goes once, at its
    earliest. Without rules, every method at once."""
    by_id = {m.id: m for m in methods}
    if not rules:
        rules = [Rule(after=timedelta(0), methods=tuple(by_id))]
    earliest: dict[str, timedelta] = {}
    for rule in rules:
        for name in rule.methods:
            if name in by_id and (name not in earliest or rule.after < earliest[name]):
                earliest[name] = rule.after
    order = sorted(earliest, key=lambda name: (earliest[name], list(by_id).index(name)))
    return [Planned(by_id[name], paged_at + earliest[name]) for name in order]


def throttled(sent_in_window: int, limit: int) -> bool:
    """Whether one more notification would pass the person's limit for this method type."""
    return sent_in_window >= limit


# ---- acknowledge links ---------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign_link(notification_id: int, expires: datetime, *, secret: bytes) -> str:
    """A token naming one notification until `expires`, signed with HMAC-SHA256."""
    body = f"{notification_id}.{int(expires.timestamp())}"
    mac = hmac.new(secret, body.encode(), hashlib.sha256).digest()[:18]
    return f"{body}.{_b64(mac)}"


class BadLink(ValueError):
    """The token is malformed, forged or expired; the message says which."""


def read_link(token: str, *, secret: bytes, now: datetime) -> int:
    """The notification id a token names; raises BadLink."""
    parts = token.split(".")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
        raise BadLink("This link is not a PulseOps acknowledge link.")
    body = f"{parts[0]}.{parts[1]}"
    mac = _b64(hmac.new(secret, body.encode(), hashlib.sha256).digest()[:18])
    if not hmac.compare_digest(mac, parts[2]):
        raise BadLink("This link is not a PulseOps acknowledge link.")
    if int(parts[1]) < now.timestamp():
        raise BadLink("This link has expired: acknowledge in Slack instead.")
    return int(parts[0])


def is_ack_reply(body: str) -> bool:
    """Whether an SMS reply acknowledges (`ack`, `1`, …; case and spacing ignored)."""
    return body.strip().strip(".!").lower() in ACK_WORDS
