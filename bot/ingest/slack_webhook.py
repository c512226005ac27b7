"""The Slack incoming-webhook body, parsed into an Alert (integration `type: slack-webhook`),
so that anything that can notify a Slack channel (Jenkins, Sentry, Uptime Kuma, netdata, CI
systems) can open a PulseOps incident. Pure: no I/O, the caller passes `now`.

The body: `text`, `attachments` (`color`, `title`, `title_link`, `text`, `pretext`,
`fallback`, `fields` of `title`/`value`), `blocks` (`header` and `section` text is read).

- Title: the first attachment's `title`, else the first `header` or `section` block's text,
  else the first line of `text` (Slack link markup `<url|label>` reads as `label`).
- Dedup key: the title, unless the integration's `slack_webhook` options say otherwise:
  `dedup_field` (the value of the attachment field with that title) or `dedup_pattern` (a
  regular expression searched in the title: its first group, or the whole match).
- Resolved: never by default. `resolved_colors` (attachment colours such as `good` or
  `#36a64f`) and `resolved_pattern` (a case-insensitive regular expression searched in the
  title and text, e.g. `\\b(resolved|recovered|ok|up)\\b`) say how to recognise one; a
  resolving message resolves the alert with the same dedup key.
- Attachment fields become labels (a `service` field routes the alert); `title_link` a link.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from bot.domain.alerts import Alert, AlertStatus
from bot.ingest.wire import _Body, _digest, _invalid, _link, _now, _require_object


def _regex(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"is not a valid regular expression: {exc}") from None
    return value


Regex = Annotated[str | None, AfterValidator(_regex)]


class SlackWebhookOptions(BaseModel):
    """`slack_webhook:` options of an integration of type `slack-webhook` (all optional)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dedup_field: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    dedup_pattern: Regex = None
    resolved_colors: tuple[str, ...] = ()
    resolved_pattern: Regex = None


class SlackField(_Body):
    title: str = ""
    value: str = ""


class SlackAttachment(_Body):
    color: str = ""
    title: str = ""
    title_link: str = ""
    text: str = ""
    pretext: str = ""
    fallback: str = ""
    fields: list[SlackField] = Field(default_factory=list)


class SlackBlockText(_Body):
    text: str = ""


class SlackBlock(_Body):
    type: str
    text: SlackBlockText | None = None


class SlackMessage(_Body):
    """A Slack incoming-webhook body."""

    text: Annotated[str, StringConstraints(max_length=40000)] = ""
    attachments: list[SlackAttachment] = Field(default_factory=list, max_length=100)
    blocks: list[SlackBlock] = Field(default_factory=list, max_length=50)


_LINK = re.compile(r"<([^<>|]*)\|([^<>]*)>|<([^<>|]*)>")


def plain(text: str) -> str:
    """Slack markup as plain text: `<https://x|label>` → `label`, `<https://x>` → the URL,
    `<!channel>` → `@channel` (a mention meant for Slack is no mention here)."""

    def label(match: re.Match[str]) -> str:
        if match.group(2) is not None:
            return match.group(2)
        inner = match.group(3)
        return "@" + inner[1:] if inner.startswith("!") else inner

    return _LINK.sub(label, text)


def _title(message: SlackMessage) -> str:
    for attachment in message.attachments:
        if attachment.title.strip():
            return attachment.title.strip()
    for block in message.blocks:
        if block.type in ("header", "section") and block.text and block.text.text.strip():
            return block.text.text.strip().splitlines()[0]
    for attachment in message.attachments:
        for text in (attachment.pretext, attachment.fallback, attachment.text):
            if text.strip():
                return text.strip().splitlines()[0]
    return message.text.strip().splitlines()[0] if message.text.strip() else ""


def parse_slack_webhook(
    body: Any, now: datetime, options: SlackWebhookOptions | None = None
) -> list[Alert]:
    """Parse a Slack incoming-webhook body into one Alert (see the module docstring)."""
    options = options or SlackWebhookOptions()
    _require_object(body, "SlackMessage")
    message = SlackMessage.model_validate(body)
    title = plain(_title(message))[:1000].strip()
    if not title:
        raise _invalid(
            "SlackMessage",
            ("text",),
            "the message has no text: send text, an attachment title or a header block",
            body,
        )
    now = _now(now)
    fields = {
        plain(f.title).strip(): plain(f.value).strip()
        for a in message.attachments
        for f in a.fields
        if f.title.strip()
    }
    texts = [message.text] + [a.text for a in message.attachments]
    texts += [b.text.text for b in message.blocks if b.text is not None]
    description = "\n".join(plain(t).strip() for t in texts if t.strip())
    key = _dedup_key(options, title, fields)
    colors = {a.color.strip().lower() for a in message.attachments if a.color.strip()}
    resolved = bool(colors & {c.lower() for c in options.resolved_colors}) or bool(
        options.resolved_pattern
        and re.search(options.resolved_pattern, f"{title}\n{description}", re.IGNORECASE)
    )
    links = [
        link
        for a in message.attachments
        for link in _link(a.title_link if a.title_link.startswith("http") else None, "Link")
    ]
    return [
        Alert(
            fingerprint=key,
            group_key=key,
            status=AlertStatus.RESOLVED if resolved else AlertStatus.FIRING,
            title=title,
            description=description,
            service=fields.get("service") or fields.get("Service") or None,
            labels=fields,
            links=tuple(links),
            source="slack-webhook",
            starts_at=now,
            ends_at=now if resolved else None,
        )
    ]


def _dedup_key(options: SlackWebhookOptions, title: str, fields: dict[str, str]) -> str:
    if options.dedup_field and fields.get(options.dedup_field):
        return fields[options.dedup_field][:255]
    if options.dedup_pattern:
        match = re.search(options.dedup_pattern, title)
        if match:
            found = match.group(1) if match.groups() and match.group(1) else match.group(0)
            if found.strip():
                return found.strip()[:255]
    return title if len(title) <= 255 else _digest("slack-webhook", title)
