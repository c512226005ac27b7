"""The emulator's files: files.list with Slack's filters and paging, and the strict checks an
image block's `slack_file` must pass (the file exists, is a png/jpg/gif, and is shared where
the message is), as Slack answers them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.sandbox.emulator import BOT_USER_ID, Emulator
from tests.emulator.test_emulator import INCIDENTS, PAYMENTS, StepClock, make_emulator, slack_error

pytestmark = pytest.mark.asyncio
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    emulator = make_emulator(StepClock())
    await emulator.start()
    yield emulator
    await emulator.stop()


@pytest.fixture
def client(emu: Emulator) -> AsyncWebClient:
    return AsyncWebClient(token="xoxb-test", base_url=emu.api_url, retry_handlers=[])


async def upload(client: AsyncWebClient, name: str, data: bytes, channel: str | None) -> str:
    kwargs: dict[str, Any] = {"channel": channel} if channel else {}
    done = await client.files_upload_v2(content=data, filename=name, title=name, **kwargs)
    return str(done["file"]["id"])


def image(ref: dict[str, str]) -> list[dict[str, Any]]:
    return [{"type": "image", "slack_file": ref, "alt_text": "chart"}]


async def test_an_image_block_shows_only_a_shared_image_file(
    emu: Emulator, client: AsyncWebClient
) -> None:
    chart = await upload(client, "chart.png", PNG, INCIDENTS)
    posted = await client.chat_postMessage(
        channel=INCIDENTS, text="chart", blocks=image({"id": chart})
    )
    assert posted["message"]["blocks"][0]["slack_file"] == {"id": chart}
    by_url = emu.ws.files[chart]["url_private"]
    await client.chat_update(
        channel=INCIDENTS, ts=posted["ts"], text="chart", blocks=image({"url": by_url})
    )
    not_an_image = await upload(client, "notes.png", b"plain text", INCIDENTS)
    private = await upload(client, "private.png", PNG, None)  # shared nowhere
    elsewhere = await upload(client, "other.png", PNG, PAYMENTS)
    before = len(emu.messages(INCIDENTS))
    for ref in ({"id": "F0NOPE"}, {"id": not_an_image}, {"id": private}, {"id": elsewhere}):
        refused = await slack_error(
            client.chat_postMessage(channel=INCIDENTS, text="chart", blocks=image(ref))
        )
        assert refused["error"] == "invalid_blocks", ref
        assert refused["errors"] == ["invalid slack file [json-pointer:/blocks/0/slack_file]"]
    both = await slack_error(
        client.chat_postMessage(
            channel=INCIDENTS, text="chart", blocks=image({"id": chart, "url": by_url})
        )
    )
    assert both["error"] == "invalid_blocks"
    assert len(emu.messages(INCIDENTS)) == before  # nothing posted
    # an update is checked the same way
    refused = await slack_error(
        client.chat_update(
            channel=INCIDENTS, ts=posted["ts"], text="x", blocks=image({"id": private})
        )
    )
    assert refused["error"] == "invalid_blocks"


async def test_files_list_filters_by_channel_user_time_and_type_and_pages(
    emu: Emulator, client: AsyncWebClient
) -> None:
    first = await upload(client, "a.png", PNG, INCIDENTS)
    emu.ws.files[first]["created"] -= 3600  # an hour older
    second = await upload(client, "b.csv", b"x,y\n", INCIDENTS)
    third = await upload(client, "c.png", PNG, INCIDENTS)
    await upload(client, "d.png", PNG, PAYMENTS)
    listed = await client.files_list(channel=INCIDENTS, user=BOT_USER_ID)
    assert [f["id"] for f in listed["files"]] == [third, second, first]  # newest first
    assert listed["paging"] == {"count": 100, "total": 3, "page": 1, "pages": 1}
    assert all(INCIDENTS in f["channels"] and "data" not in f for f in listed["files"])
    recent = await client.files_list(
        channel=INCIDENTS, ts_from=str(emu.ws.files[second]["created"])
    )
    assert [f["id"] for f in recent["files"]] == [third, second]
    images = await client.files_list(channel=INCIDENTS, types="images")
    assert [f["id"] for f in images["files"]] == [third, first]
    page = await client.files_list(channel=INCIDENTS, count=2, page=2)
    assert [f["id"] for f in page["files"]] == [first]
    assert page["paging"] == {"count": 2, "total": 3, "page": 2, "pages": 2}
    assert (await slack_error(client.files_list(types="movies")))["error"] == "unknown_type"
    assert (await slack_error(client.files_list(channel="C0NOPE")))["error"] == (
        "channel_not_found"
    )


async def test_a_lost_answer_is_carried_out_then_answered_504(
    emu: Emulator, client: AsyncWebClient
) -> None:
    emu.set_faults(lost_answers=1, methods=["chat.postMessage"])
    failed = await slack_error(client.chat_postMessage(channel=INCIDENTS, text="hello"))
    assert failed["error"] == "request_timeout"
    assert [m["text"] for m in emu.messages(INCIDENTS)] == ["hello"]  # it happened
    await client.chat_postMessage(channel=INCIDENTS, text="again")  # the next one is answered
    assert emu.calls_to("chat.postMessage")[-1]["status"] == 200


async def test_a_held_answer_comes_after_the_call_is_carried_out(
    emu: Emulator, client: AsyncWebClient
) -> None:
    plan = emu.set_faults(answer_delay_ms=400, methods=["files.completeUploadExternal"])
    assert plan["answer_delay_ms"] == 400
    uploading = asyncio.create_task(upload(client, "chart.png", PNG, INCIDENTS))
    # the file is shared in the channel while its answer is still held
    for _ in range(100):
        if [m for m in emu.messages(INCIDENTS) if m.get("files")]:
            break
        await asyncio.sleep(0.01)
    (held,) = emu.calls_to("files.completeUploadExternal")
    assert not uploading.done() and held["status"] is None
    assert held["fault"] == "answer_delay" and held["carried_out"]["ok"] is True
    file_id = await uploading
    assert held["status"] == 200 and held["response"]["files"][0]["id"] == file_id
    # a caller that gives up waiting never learns its call was carried out
    impatient = AsyncWebClient(
        token="xoxb-test", base_url=emu.api_url, retry_handlers=[], timeout=0.1
    )
    emu.set_faults(answer_delay_ms=2000, methods=None)
    with pytest.raises(asyncio.TimeoutError):
        await impatient.chat_postMessage(channel=INCIDENTS, text="shown though unanswered")
    assert emu.messages(INCIDENTS)[-1]["text"] == "shown though unanswered"
    assert emu.set_faults(clear=True)["answer_delay_ms"] == 0
    with pytest.raises(ValueError, match="unknown fault keys"):
        emu.set_faults(answer_delay=1)
