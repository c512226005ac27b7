"""What a notification says: the e-mail, the SMS, the call's words and the push, per incident."""

from __future__ import annotations

from html import escape

from bot.domain.records import Incident
from bot.notify.senders import Mail

MAX_TITLE = 120


def _title(incident: Incident) -> str:
    title = " ".join(incident.title.split())
    return title if len(title) <= MAX_TITLE else title[: MAX_TITLE - 1] + "…"


def headline(incident: Incident, service: str | None) -> str:
    where = f" on {service}" if service else ""
    return f"{incident.number} {incident.severity.value}{where}: {_title(incident)}"


def sms_text(incident: Incident, service: str | None) -> str:
    return f"PulseOps page: {headline(incident, service)}. Reply ACK or 1 to acknowledge."


def call_words(incident: Incident, service: str | None) -> str:
    where = f" on {service}" if service else ""
    number = incident.number.replace("-", " ")
    return (
        f"This is PulseOps. You are paged for incident {number}, severity "
        f"{incident.severity.value[-1]}{where}: {_title(incident)}. Press 1 to acknowledge."
    )


def push(incident: Incident, service: str | None) -> tuple[str, str]:
    """(title, body) of a push notification."""
    return (
        f"Paged: {incident.number} {incident.severity.value}",
        f"{_title(incident)}{f' ({service})' if service else ''}. Acknowledge in Slack.",
    )


def mail(incident: Incident, service: str | None, *, to: str, ack_url: str) -> Mail:
    line = headline(incident, service)
    description = incident.description.strip()[:2000]
    text = (
        f"You are paged: {line}\n\n"
        + (f"{description}\n\n" if description else "")
        + f"Acknowledge (stops further notifications and the escalation):\n{ack_url}\n\n"
        + "The link works once and expires; you can also acknowledge in Slack.\n"
    )
    html = (
        f"<p>You are paged: <strong>{escape(line)}</strong></p>"
        + (f"<p>{escape(description)}</p>" if description else "")
        + f'<p><a href="{escape(ack_url)}">Acknowledge {escape(incident.number)}</a> '
        "(stops further notifications and the escalation).</p>"
        "<p>The link works once and expires; you can also acknowledge in Slack.</p>"
    )
    return Mail(to=to, subject=f"[PulseOps] Paged: {line}", text=text, html=html)


TEST_TEXT = "PulseOps test page: pages will reach you here. Nothing to do."
TEST_CALL = (
    "<Response><Say>This is a PulseOps test page. Pages will reach you on this number. "
    "Goodbye.</Say></Response>"
)


def test_mail(to: str) -> Mail:
    return Mail(
        to=to,
        subject="[PulseOps] Test page",
        text=TEST_TEXT + "\n",
        html=f"<p>{escape(TEST_TEXT)}</p>",
    )
