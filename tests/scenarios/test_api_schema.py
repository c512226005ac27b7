"""The API against its own OpenAPI document, property-based (schemathesis): no 5xx, every
answer matches its schema; and the document covers exactly the routes the app serves."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from bot.clock import ManualClock
from bot.config import parse_config
from bot.sandbox.emulator import Emulator
from handlers.openapi import openapi_document
from tests.conftest import API_TOKEN, BOT_TOKEN, CHANNELS, SIGNING_SECRET, USERS, Harness
from tests.helpers import ONCALL_YAML, WEDNESDAY

schema = schemathesis.openapi.from_dict(openapi_document())
# No 5xx, and every answer (status, content type, headers, body) as documented; a request the
# schema allows may still be refused (an unknown service id is a 400), so acceptance of
# schema-valid data is not a check here.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    ignored_auth,
]
GENEROUS = "api:\n  requests_per_minute: 1000000\n  burst: 1000000\n"  # the clock is frozen


@pytest.fixture(scope="module")
def live_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app (outbox and sweeps running) and the emulator, served from a thread of their own
    so that schemathesis's blocking client can call them."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    path: Path = tmp_path_factory.mktemp("schema") / "pulseops.db"
    text = ONCALL_YAML.format(first="5m", second="10m")
    config = parse_config(re.sub(r"api:\n  burst: .*\n", GENEROUS, text), environ={})

    async def up() -> tuple[Emulator, Harness]:
        emu = Emulator(
            bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET, users=USERS, channels=CHANNELS
        )
        await emu.start(host="127.0.0.1", port=0)
        harness = Harness(
            emulator=emu,
            database_url=f"sqlite+aiosqlite:///{path}",
            config=config,
            clock=ManualClock(WEDNESDAY),
            run_jobs=True,
        )
        await harness.start()
        return emu, harness

    emu, harness = asyncio.run_coroutine_threadsafe(up(), loop).result(60)

    async def down() -> None:
        await harness.close()
        await emu.stop()

    try:
        yield harness.url
    finally:
        asyncio.run_coroutine_threadsafe(down(), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


@schema.parametrize()
@settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_api_answers_match_the_document(case: schemathesis.Case, live_api: str) -> None:
    case.call_and_validate(
        base_url=live_api, headers={"Authorization": f"Bearer {API_TOKEN}"}, checks=CHECKS
    )


def test_the_document_lists_every_api_route(harness: Harness) -> None:
    served = {
        (route.method.lower(), route.resource.canonical)
        for route in harness.app.router.routes()
        if route.resource is not None
        and route.resource.canonical.startswith("/api/v1")
        and route.method != "HEAD"
    }
    documented = {
        (method, path) for path, item in openapi_document()["paths"].items() for method in item
    }
    assert served == documented
    assert openapi_document()["openapi"] == "3.1.0"


async def test_the_document_is_served_without_a_token(harness: Harness) -> None:
    status, body = await harness.get("/api/v1/openapi.json", token=None)
    assert status == 200 and body == openapi_document()
