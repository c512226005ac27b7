"""An upload is never made twice across a crash: `pulseops serve` is killed (SIGKILL) after
Slack has shared a file but before its answer arrives (the emulator holds the answer to
files.completeUploadExternal), and started again. The restarted service cannot know the
upload happened; it finds the file by the mark in its name and adopts it: one file in the
channel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from bot.delivery.kinds import OutboxKind
from bot.sandbox.emulator import Emulator
from store.models import IncidentRow, OutboxRow
from tests.conftest import alertmanager_payload
from tests.serve_process import Service, engine_for, wait_until

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]
BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)

HELD_MS = 120_000  # longer than the test: the killed process never gets the answer


def shared_files(emu: Emulator, channel: str) -> list[dict[str, Any]]:
    """The files shared in `channel`, in the order they were shared."""
    return [f for m in emu.messages(channel) for f in m.get("files") or []]


@BOTH
async def test_kill_9_while_slack_holds_the_uploads_answer_leaves_one_file(
    tmp_path: Path, emulator: Emulator, database_url: str
) -> None:
    emu = emulator
    service = Service(tmp_path, emu.api_url, database_url)
    async with aiohttp.ClientSession() as http, engine_for(database_url) as engine:

        async def send(status: str) -> None:
            async with http.post(
                f"{service.url}/webhooks/prometheus",
                json=alertmanager_payload(status=status),
                headers={"Authorization": "Bearer prom-token"},
            ) as response:
                assert response.status == 202, await response.text()

        async def channel_of_incident() -> str | None:
            async with engine.connect() as conn:
                return await conn.scalar(select(IncidentRow.channel_id))

        async def postmortem_row() -> Any:
            async with engine.connect() as conn:
                return (
                    await conn.execute(
                        select(OutboxRow.status, OutboxRow.attempts, OutboxRow.progress).where(
                            OutboxRow.kind == OutboxKind.POSTMORTEM
                        )
                    )
                ).one_or_none()

        await service.start(http)
        try:
            await send("firing")
            channel: str | None = None

            async def channel_ready() -> bool:
                nonlocal channel
                channel = await channel_of_incident()
                return channel is not None and bool(emu.messages(channel))

            await wait_until(channel_ready, within=30, what="the incident channel")
            assert channel is not None
            # Slack will share the postmortem draft at once but hold its answer
            emu.set_faults(answer_delay_ms=HELD_MS, methods=["files.completeUploadExternal"])
            await send("resolved")  # the monitor resolves it: the draft is uploaded

            def held() -> list[dict[str, Any]]:
                return [
                    c
                    for c in emu.calls_to("files.completeUploadExternal")
                    if c.get("fault") == "answer_delay" and c["status"] is None
                ]

            async def answer_held() -> bool:
                return bool(held())

            await wait_until(answer_held, within=30, what="the upload's answer to be held")
            await service.kill()
            (call,) = held()
            assert call["carried_out"]["ok"] is True and call["status"] is None
            (first,) = shared_files(emu, channel)  # shared, though PulseOps never learned it
            assert ".o" in first["name"] and first["name"].endswith("-draft.md")
            row = await postmortem_row()
            assert row is not None and row.status == "pending" and "uploaded" not in row.progress
        finally:
            await service.stop()

        emu.set_faults(clear=True)
        await service.start(http)
        try:

            async def delivered() -> bool:
                row = await postmortem_row()
                return row is not None and row.status == "done"

            # SPEC: every pending Slack call is made within 30 s of the restart
            await wait_until(
                delivered, within=30, what="the postmortem delivered after the restart"
            )
        finally:
            await service.stop()
        row = await postmortem_row()

    # one file in the channel: the restarted service looked (files.list) and adopted it
    (only,) = shared_files(emu, channel)
    assert only["id"] == first["id"]
    assert row.progress["uploaded"] == first["id"] and row.attempts == 2
    assert len(emu.calls_to("files.getUploadURLExternal")) == 1
    assert len(emu.calls_to("files.completeUploadExternal")) == 1
    looked = emu.calls_to("files.list")
    assert looked and looked[-1]["args"]["channel"] == channel
    assert looked[-1]["response"]["ok"] is True
