"""Property-based: no request to `/slack/events`, however mangled or signed, gets a 5xx, and a
refused one writes nothing.

The valid requests are captured from the emulator (slash commands, button clicks, the declare
form's submission, an Events API event); hypothesis mutates them (values replaced by any JSON,
keys dropped or added, strings with NUL, surrogates and markup, the `payload` field no longer
JSON) or sends arbitrary bodies, then signs each one correctly, with the wrong secret, too
late, with a timestamp that is no number, or not at all. The examples are generated up front
and posted to the running app, one database for all.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot.config import PulseOpsConfig
from store.models import IncidentRow, OverrideRow, SlackRequestRow
from tests.conftest import Harness
from tests.helpers import eventually, fire, oncall_config
from tests.scenarios.slack_wire import FORM, Captured, send, signed_headers, tap
from tests.scenarios.test_fuzz_webhooks import HOSTILE, TEXT, examples, mutated

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]


@pytest.fixture
def config() -> PulseOpsConfig:
    return oncall_config()


async def captured_requests(harness: Harness) -> list[Captured]:
    """Real requests of each kind the app listens to, as the emulator sends them."""
    incident_id = await fire(harness)
    incident = await harness.incident(incident_id)
    where = {"channel": incident["slack"]["channel_id"], "ts": incident["slack"]["message_ts"]}
    await harness.emu.command(
        user="U0CAROL01", channel="C0INCIDENT", command="/incident", text="declare"
    )
    await eventually(lambda: bool(harness.emu.views))
    ((view_id, _),) = harness.emu.views.items()
    async with tap(harness) as captured:
        for command, text in [
            ("/incident", f"ack {incident_id}"),
            ("/incident", "stats 7d payments"),
            ("/oncall", "override <@U0CAROL01> 4h payments-primary"),
            ("/oncall", "override remove 1"),
        ]:
            await harness.emu.command(
                user="U0ALICE01", channel="C0INCIDENT", command=command, text=text
            )
        for action in ("incident_acknowledge", "incident_escalate"):
            await harness.emu.click(user="U0BOB0001", action_id=action, **where)
        await harness.emu.submit_view(
            user="U0CAROL01",
            view_id=view_id,
            values={
                "declare_title": {"title": "Search is down"},
                "declare_severity": {"severity": "SEV2"},
                "declare_description": {"description": "No results"},
            },
        )
        await harness.emu.open_home(user="U0BOB0001")
    return captured


def document(request: Captured) -> tuple[str, Any]:
    """(kind, the request's content as JSON values): `form`, `payload` or `json`."""
    text = request.body.decode()
    if request.headers.get("Content-Type") == "application/json":
        return "json", json.loads(text)
    form = dict(parse_qsl(text, keep_blank_values=True))
    if set(form) == {"payload"}:
        return "payload", json.loads(form["payload"])
    return "form", form


def encode(kind: str, value: Any) -> tuple[bytes, str]:
    """The body and content type that carry `value` as a request of `kind`."""
    if kind == "json":
        return json.dumps(value).encode(), "application/json"
    if kind == "payload":
        # json.dumps keeps lone surrogates and NUL as \\u escapes, as a sender's JSON would
        payload = value if isinstance(value, str) else json.dumps(value)
        return urlencode({"payload": payload}, errors="surrogatepass").encode(), FORM
    if not isinstance(value, dict):
        return urlencode({"text": json.dumps(value)}, errors="surrogatepass").encode(), FORM
    form = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in value.items()}
    return urlencode(form, errors="surrogatepass").encode(), FORM


SIGNING = st.sampled_from(
    ["signed"] * 6 + ["unsigned", "wrong-secret", "stale", "future", "not-a-number"]
)
RANDOM_BODIES = st.tuples(
    st.binary(max_size=300) | TEXT.map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.sampled_from([FORM, "application/json", "text/plain", ""]),
)


def headers_for(body: bytes, content_type: str, signing: str) -> dict[str, str]:
    now = int(time.time())
    if signing == "unsigned":
        return {"Content-Type": content_type} if content_type else {}
    if signing == "wrong-secret":
        return signed_headers(body, content_type=content_type, secret="not-the-secret")
    if signing == "stale":
        return signed_headers(body, content_type=content_type, ts=str(now - 3600))
    if signing == "future":
        return signed_headers(body, content_type=content_type, ts=str(now + 3600))
    if signing == "not-a-number":
        return signed_headers(body, content_type=content_type, ts=f"{now}.0")
    return signed_headers(body, content_type=content_type)


async def counts(harness: Harness) -> dict[str, int]:
    """Rows a request may add before it is answered: incidents, overrides, the replay log."""
    found: dict[str, int] = {}
    async with harness.deps.db.read() as session:
        for model in (IncidentRow, OverrideRow, SlackRequestRow):
            found[model.__tablename__] = int(
                await session.scalar(select(func.count()).select_from(model)) or 0
            )
    return found


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
async def test_no_slack_request_gets_a_5xx_and_refusals_write_nothing(harness: Harness) -> None:
    cases: list[tuple[bytes, str, str]] = []
    for request in await captured_requests(harness):
        kind, value = document(request)
        hostile_payload = st.sampled_from(["{not json", "[1]", "", *HOSTILE])
        strategy = st.tuples(
            mutated(value) if kind != "payload" else mutated(value) | hostile_payload, SIGNING
        )
        for mutant, signing in examples(strategy, 40):
            body, content_type = encode(kind, mutant)
            cases.append((body, content_type, signing))
    for (body, content_type), signing in examples(st.tuples(RANDOM_BODIES, SIGNING), 60):
        cases.append((body, content_type, signing))
    for body, content_type, signing in cases:
        before = await counts(harness)
        status, answer = await send(harness, body, headers_for(body, content_type, signing))
        assert status < 500, (status, answer, body, signing)
        if signing != "signed":
            assert status == 401, (status, answer, body, signing)
        if status in (400, 401):  # refused before Bolt: not even remembered
            assert json.loads(answer)["error"], answer
            assert await counts(harness) == before, (status, answer, body, signing)
        elif status >= 400:  # Bolt's 404 (no listener matched): remembered, nothing else
            after = await counts(harness)
            del after["slack_requests"], before["slack_requests"]
            assert after == before, (status, answer, body, signing)
    await harness.settle()
