"""`contacts` and `notifications`: the SPEC's example, line-numbered problems, cross-checks;
and the pure contact logic (plans, masks, signed links, SMS replies)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.config import parse_config
from bot.domain.contacts import (
    BadLink,
    Method,
    Rule,
    is_ack_reply,
    mask,
    plan,
    read_link,
    sign_link,
)
from bot.errors import ConfigError
from tests.domain.test_config import VALID, line_of

SPEC_EXAMPLE = """\
contacts:                             # per person; people may also set their own from Slack
  - user: "U0ALICE01"
    methods:
      - {id: mail, type: email, address: "alice@example.com"}
      - {id: phone-sms, type: sms, number: "+4915112345678"}
      - {id: phone-call, type: voice, number: "+4915112345678"}
      - {id: push, type: apprise, url: "ntfy://ntfy.example/alice-pages"}   # any Apprise URL
    rules:                            # minutes after a page, while it is unacknowledged
      - {after: 0m, methods: [push, mail]}
      - {after: 2m, methods: [phone-sms]}
      - {after: 5m, methods: [phone-call]}
notifications:
  smtp: {host: smtp.example, port: 587, starttls: true, username_env: SMTP_USER,
         password_env: SMTP_PASS, from: "pulseops@example.com"}
  twilio: {account_sid_env: TWILIO_SID, auth_token_env: TWILIO_TOKEN, from: "+15550001111",
           api_url: "https://api.twilio.com"}
  public_url: "https://pulseops.example.com"
  link_secret_env: PULSEOPS_LINK_SECRET
"""
ENV = {
    "SMTP_USER": "u",
    "SMTP_PASS": "p",
    "TWILIO_SID": "AC1",
    "TWILIO_TOKEN": "t",
    "PULSEOPS_LINK_SECRET": "s",
}


def problems(text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="pulseops.yml", environ=ENV if environ is None else environ)
    return info.value.problems


def test_the_spec_example_is_valid() -> None:
    config = parse_config(VALID + SPEC_EXAMPLE, source="pulseops.yml", environ=ENV)
    alice = config.contact("U0ALICE01")
    assert alice is not None
    assert [m.destination for m in alice.methods][1] == "+4915112345678"
    assert [r.after for r in alice.rules] == [
        timedelta(0),
        timedelta(minutes=2),
        timedelta(minutes=5),
    ]
    assert config.notifications.smtp is not None and config.notifications.smtp.from_ == (
        "pulseops@example.com"
    )
    assert config.notifications.twilio is not None
    assert config.notifications.throttle.limit("sms") == 5


def test_seconds_are_accepted_for_demos() -> None:
    text = VALID + SPEC_EXAMPLE.replace("after: 2m", "after: 10s")
    config = parse_config(text, source="pulseops.yml", environ=ENV)
    assert config.contacts[0].rules[1].after == timedelta(seconds=10)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            'number: "+4915112345678"}\n      - {id: phone-call',
            'number: "0151 1234"}\n      - {id: phone-call',
            "contacts[0].methods[1].number: invalid number '0151 1234': E.164",
        ),
        (
            'address: "alice@example.com"',
            'number: "+4915112345678"',
            "contacts[0].methods[0]: a email method takes `address`",
        ),
        (
            "methods: [phone-call]",
            "methods: [phone-cal]",
            "contacts[0]: rule names unknown method 'phone-cal'",
        ),
        ("after: 2m", "after: soon", "contacts[0].rules[1].after: invalid duration"),
        ('user: "U0ALICE01"', 'user: "alice"', "contacts[0].user: not Slack user IDs"),
    ],
)
def test_bad_contacts_name_the_line_and_field(old: str, new: str, message: str) -> None:
    text = VALID + SPEC_EXAMPLE.replace(old, new, 1)
    (problem,) = problems(text)
    assert message in problem, problem
    assert problem.startswith("pulseops.yml:")


def test_methods_need_their_provider_and_a_public_url() -> None:
    text = VALID + SPEC_EXAMPLE.split("notifications:")[0]
    found = problems(text)
    line = line_of(text, "type: email")
    assert (
        f"pulseops.yml:{line}: contacts[0].methods[0].type: "
        "a email method needs notifications.smtp (an SMTP server)"
    ) in found
    assert any(
        "contacts[0].methods[1].type: a sms method needs notifications.twilio" in p for p in found
    )
    assert any(
        "notifications.public_url: required for email, sms, voice methods" in p for p in found
    )
    assert any("notifications.link_secret_env: required for email methods" in p for p in found)


def test_provider_variables_must_be_set() -> None:
    found = problems(VALID + SPEC_EXAMPLE, environ={**ENV, "TWILIO_TOKEN": ""})
    assert found == [
        f"pulseops.yml:{line_of(VALID + SPEC_EXAMPLE, 'auth_token_env')}: "
        "notifications.twilio.auth_token_env: environment variable TWILIO_TOKEN is not set"
    ]


def test_a_person_is_listed_once() -> None:
    text = VALID + SPEC_EXAMPLE.replace(
        "notifications:", '  - user: "U0ALICE01"\n    methods: []\nnotifications:'
    )
    assert any("contacts[1].user: duplicate contact 'U0ALICE01'" in p for p in problems(text))


# --------------------------------------------------------------------------- pure logic

NOW = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)


def test_plan_orders_by_delay_and_sends_a_method_once_at_its_earliest() -> None:
    methods = [Method("mail", "email", "a@x.io"), Method("sms", "sms", "+4915112345678")]
    rules = [Rule(timedelta(minutes=2), ("sms", "mail")), Rule(timedelta(0), ("mail",))]
    assert [(p.method.id, p.due_at - NOW) for p in plan(methods, rules, paged_at=NOW)] == [
        ("mail", timedelta(0)),
        ("sms", timedelta(minutes=2)),
    ]
    # no rules: every method at once
    assert [p.due_at for p in plan(methods, [], paged_at=NOW)] == [NOW, NOW]


def test_masks_show_enough_to_recognise() -> None:
    assert mask("sms", "+4915112345678") == "+49••••••••678"
    assert mask("email", "alice@example.com") == "a•••@example.com"
    assert mask("apprise", "tgram://bottoken/ChatID") == "tgram://•••"


def test_links_are_signed_and_expire() -> None:
    token = sign_link(42, NOW + timedelta(hours=1), secret=b"k")
    assert read_link(token, secret=b"k", now=NOW) == 42
    with pytest.raises(BadLink, match="expired"):
        read_link(token, secret=b"k", now=NOW + timedelta(hours=2))
    with pytest.raises(BadLink, match="not a PulseOps"):
        read_link(token, secret=b"other", now=NOW)
    forged = token.replace("42.", "43.", 1)
    with pytest.raises(BadLink):
        read_link(forged, secret=b"k", now=NOW)


@pytest.mark.parametrize(
    ("body", "ack"),
    [("ack", True), (" ACK.", True), ("1", True), ("no", False), ("ack later", False)],
)
def test_sms_replies(body: str, ack: bool) -> None:
    assert is_ack_reply(body) is ack
