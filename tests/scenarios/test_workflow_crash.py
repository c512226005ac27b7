"""A workflow webhook fails, `pulseops serve` is killed (SIGKILL) before the retry, and started
again: the retry is made once, the step completes once, and nothing is repeated."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import func, select

from bot.sandbox.emulator import Emulator
from store.models import TimelineRow, WorkflowRunRow, WorkflowStepRow
from tests.conftest import CONFIG_YAML, alertmanager_payload
from tests.receiver import Receiver
from tests.scenarios.test_crash_recovery import Service, engine_for, wait_until

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]
BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
SECRET = "crash-hmac-secret"

WORKFLOW = """
allowed_hosts: ["127.0.0.1"]
workflows:
  - id: restart-payment
    when: [triggered]
    steps:
      - webhook:
          {{url: "{url}/restart", timeout: 2s, retries: 3, backoff: 2s, secret_env: RESTART_HMAC}}
      - message: "Restart requested"
"""


@BOTH
async def test_kill_9_between_a_failed_call_and_its_retry_completes_the_step_once(
    tmp_path: Path, emulator: Emulator, database_url: str
) -> None:
    receiver = Receiver(secret=SECRET, statuses=[503, 200])
    await receiver.start()
    service = Service(
        tmp_path,
        emulator.api_url,
        database_url,
        config=CONFIG_YAML + WORKFLOW.format(url=receiver.url),
        env={"RESTART_HMAC": SECRET},
    )
    try:
        async with aiohttp.ClientSession() as http, engine_for(database_url) as engine:

            async def attempts() -> int:
                async with engine.connect() as conn:
                    return int(
                        await conn.scalar(
                            select(func.coalesce(func.sum(WorkflowStepRow.attempts), 0))
                        )
                        or 0
                    )

            async def run_status() -> str | None:
                async with engine.connect() as conn:
                    return await conn.scalar(select(WorkflowRunRow.status))

            await service.start(http)
            try:
                async with http.post(
                    f"{service.url}/webhooks/prometheus",
                    json=alertmanager_payload(),
                    headers={"Authorization": "Bearer prom-token"},
                ) as response:
                    assert response.status == 202
                # the first call failed and its retry is on record, due in 2 s
                await wait_until(
                    lambda: _true(len(receiver.calls) == 1), within=20, what="the first call"
                )

                async def retry_recorded() -> bool:
                    return await attempts() == 1

                await wait_until(retry_recorded, within=10, what="the failed attempt recorded")
                await service.kill()
                assert len(receiver.calls) == 1
                await asyncio.sleep(2.5)  # the retry falls due while nobody is running
                await service.start(http)

                async def succeeded() -> bool:
                    return await run_status() == "succeeded"

                await wait_until(succeeded, within=20, what="the run to succeed after the restart")
                await asyncio.sleep(3)  # time for any repeat to show
            finally:
                await service.stop()
            async with engine.connect() as conn:
                step = (
                    await conn.execute(select(WorkflowStepRow).order_by(WorkflowStepRow.position))
                ).all()
                succeeded_events = await conn.scalar(
                    select(func.count()).where(TimelineRow.kind == "workflow_succeeded")
                )
                retries = await conn.scalar(
                    select(func.count()).where(TimelineRow.kind == "workflow_retry")
                )
    finally:
        await receiver.stop()
    assert [c.signed for c in receiver.calls] == [True, True]
    assert [(s.status, s.attempts) for s in step] == [("done", 2), ("done", 1)]
    assert (succeeded_events, retries) == (1, 1)
    posted = [
        m
        for ch in emulator.channels.values()
        for m in emulator.messages(ch.id)
        if m.get("text") == "Restart requested"
    ]
    assert len(posted) == 1


async def _true(value: bool) -> bool:
    return value
