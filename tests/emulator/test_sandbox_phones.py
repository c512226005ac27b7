"""The sandbox's "Phones and inboxes": a fired alert's page reaches the on-call person's
push and e-mail through the sandbox's own receiver and SMTP server, and the e-mail's link
acknowledges, all offline in `pulseops sandbox`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.sandbox_process import Sandbox, running_sandbox, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def sandbox(tmp_path: Path) -> Any:
    with running_sandbox(tmp_path) as running:
        yield running


def phones(sandbox: Sandbox) -> dict[str, Any]:
    status, body = sandbox.emulator("GET", "/_sandbox/phones")
    assert status == 200
    return body  # type: ignore[no-any-return]


def test_a_page_reaches_push_and_mail_and_the_mail_link_acknowledges(sandbox: Sandbox) -> None:
    assert phones(sandbox) == {"mails": [], "sms": [], "calls": [], "replies": [], "pushes": []}
    status, fired = sandbox.emulator(
        "POST", "/_sandbox/alerts", {"sample": "alertmanager", "summary": "Disk full", "key": "9"}
    )
    assert status == 200 and fired["status"] == 202, fired
    mail = wait_for(lambda: phones(sandbox)["mails"], what="the page's e-mail")[0]
    assert mail["to"].endswith("@sandbox.example") and "Disk full" in mail["subject"]
    assert mail["ack_url"].startswith(sandbox.bot_url + "/notify/ack/")
    push = wait_for(lambda: phones(sandbox)["pushes"], what="the page's push")[0]
    assert "INC-1" in push["title"]
    status, done = sandbox.emulator("POST", "/_sandbox/phones/ack-link", {"url": mail["ack_url"]})
    assert status == 200 and done == {"ok": True, "status": 200}
    incident = sandbox.api("/api/v1/incidents/1")
    assert incident["status"] == "acknowledged"
    # the link works once
    status, again = sandbox.emulator("POST", "/_sandbox/phones/ack-link", {"url": mail["ack_url"]})
    assert again == {"ok": False, "status": 410}


def test_a_reply_from_an_unknown_number_is_answered_and_changes_nothing(sandbox: Sandbox) -> None:
    status, body = sandbox.emulator(
        "POST", "/_sandbox/phones/reply", {"from": "+15550109999", "body": "ack"}
    )
    assert status == 200 and body["ok"] is True
    (reply,) = phones(sandbox)["replies"]
    assert reply["answer"] == "PulseOps: no page was sent to this number."
    status, refused = sandbox.emulator("POST", "/_sandbox/phones/reply", {"body": "ack"})
    assert status == 400 and refused["field"] == "from"
