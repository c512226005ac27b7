"""The weekly incident chart (a PNG) and SlackGateway.upload_file against the emulator."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator
from datetime import date, timedelta

import aiohttp
import pytest
from aiohttp import web
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import SlackFatal, SlackRetryable
from bot.render.chart import WeekPoint, weekly_chart
from bot.sandbox.emulator import BOT_USER_ID, Emulator, EmulatorUser
from bot.slack.gateway import SlackGateway

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ALICE = "U0ALICE01"
INCIDENTS, SECRET = "C0INCIDENT", "C0SECRET01"
MONDAY = date(2024, 11, 18)


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height from the IHDR chunk, which must come first."""
    assert png[:8] == PNG_SIGNATURE
    length, kind = struct.unpack(">I4s", png[8:16])
    assert kind == b"IHDR" and length == 13
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def weeks(n: int, *, medians: bool = True) -> list[WeekPoint]:
    start = MONDAY - timedelta(weeks=n - 1)
    return [
        WeekPoint(
            week_start=start + timedelta(weeks=i),
            incidents=i % 7,
            mtta_median_s=(60.0 + 30 * i) if medians and i % 7 else None,
            mttr_median_s=(1800.0 + 90 * i) if medians and i % 5 else None,
        )
        for i in range(n)
    ]


# -- the chart ------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 8, 52])
def test_chart_is_a_png_of_fixed_size(n: int) -> None:
    png = weekly_chart(weeks(n), title="Incidents per week")
    assert png_size(png) == (1000, 500)
    assert png.endswith(b"IEND\xaeB`\x82")


def test_chart_with_no_medians_and_odd_titles() -> None:
    png = weekly_chart(weeks(8, medians=False), title="Cost $5 & $10 <!channel> " + "x" * 300)
    assert png_size(png) == (1000, 500)
    odd = [
        WeekPoint(MONDAY, 0, None, None),
        WeekPoint(MONDAY + timedelta(weeks=1), 0, 0.0, 0.0),
        WeekPoint(MONDAY + timedelta(weeks=2), 1, float("nan"), float("inf")),
    ]
    assert png_size(weekly_chart(odd, title="")) == (1000, 500)


def test_chart_is_deterministic_and_order_free() -> None:
    points = weeks(8)
    first = weekly_chart(points, title="t")
    assert weekly_chart(list(reversed(points)), title="t") == first
    assert weekly_chart(points, title="other") != first


def test_chart_fills_missing_weeks_and_rejects_duplicate_weeks() -> None:
    gappy = [WeekPoint(MONDAY, 3, 60.0, 600.0), WeekPoint(MONDAY + timedelta(weeks=5), 1, None, 60)]
    filled = [
        *gappy[:1],
        *(WeekPoint(MONDAY + timedelta(weeks=i), 0, None, None) for i in range(1, 5)),
        gappy[1],
    ]
    assert weekly_chart(gappy, title="t") == weekly_chart(filled, title="t")
    # a non-Monday start is the week it falls in
    wednesday = MONDAY + timedelta(days=2)
    assert weekly_chart([WeekPoint(wednesday, 3, 60.0, 600.0)], title="t") == weekly_chart(
        gappy[:1], title="t"
    )
    with pytest.raises(ValueError, match="two points"):
        weekly_chart([gappy[0], WeekPoint(wednesday, 1, None, None)], title="t")


async def test_chart_renders_off_the_event_loop() -> None:
    pngs = await asyncio.gather(
        *(asyncio.to_thread(weekly_chart, weeks(n), title=f"t{n}") for n in (1, 8, 52, 8))
    )
    assert pngs[1] == pngs[3] and all(png_size(p) == (1000, 500) for p in pngs)


# -- upload_file ----------------------------------------------------------------------------


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    emulator = Emulator(
        bot_token="xoxb-test",
        users=[EmulatorUser(id=ALICE, name="alice", real_name="Alice")],
        channels=[
            (INCIDENTS, "incidents"),
            {"id": SECRET, "name": "secret", "is_private": True, "members": [ALICE]},
        ],
    )
    emulator.channels[SECRET].members.discard(BOT_USER_ID)  # private, without the bot
    await emulator.start()
    yield emulator
    await emulator.stop()


@pytest.fixture
def gateway(emu: Emulator) -> SlackGateway:
    client = AsyncWebClient(token="xoxb-test", base_url=emu.api_url, retry_handlers=[])
    return SlackGateway(client, max_inline_wait=0.1)


async def test_upload_file_shares_the_bytes_with_a_comment(
    emu: Emulator, gateway: SlackGateway
) -> None:
    png = weekly_chart(weeks(8), title="Incidents per week")
    file_id = await gateway.upload_file(
        channel=INCIDENTS,
        filename="weekly.png",
        content=png,
        title="Incidents per week",
        initial_comment="Weekly report",
    )
    stored = emu.ws.files[file_id]
    assert stored["data"] == png and stored["length"] == len(png) == stored["size"]
    assert stored["name"] == "weekly.png" and stored["title"] == "Incidents per week"
    message = emu.messages(INCIDENTS)[-1]
    assert message["text"] == "Weekly report"
    assert [f["id"] for f in message["files"]] == [file_id]
    assert message["files"][0]["channels"] == [INCIDENTS]
    (complete,) = emu.calls_to("files.completeUploadExternal")
    assert complete["args"]["channel_id"] == INCIDENTS


async def test_upload_file_without_comment_reuses_the_client_session(emu: Emulator) -> None:
    async with aiohttp.ClientSession() as session:
        client = AsyncWebClient(
            token="xoxb-test", base_url=emu.api_url, retry_handlers=[], session=session
        )
        file_id = await SlackGateway(client).upload_file(
            channel=INCIDENTS, filename="a.txt", content=b"abc", title="A"
        )
        assert not session.closed
    assert emu.ws.files[file_id]["data"] == b"abc"
    assert emu.messages(INCIDENTS)[-1]["files"][0]["id"] == file_id


@pytest.mark.parametrize(
    ("channel", "error"), [(SECRET, "channel_not_found"), ("C0NOWHERE0", "channel_not_found")]
)
async def test_upload_file_to_a_channel_the_bot_cannot_see_is_fatal(
    emu: Emulator, gateway: SlackGateway, channel: str, error: str
) -> None:
    with pytest.raises(SlackFatal) as info:
        await gateway.upload_file(channel=channel, filename="a.png", content=b"x", title="t")
    assert info.value.method == "files.completeUploadExternal" and info.value.error == error
    assert emu.messages(SECRET) == []


async def test_upload_file_to_a_channel_without_the_bot_is_fatal(
    emu: Emulator, gateway: SlackGateway
) -> None:
    emu.channels[INCIDENTS].members.discard(BOT_USER_ID)
    with pytest.raises(SlackFatal) as info:
        await gateway.upload_file(channel=INCIDENTS, filename="a.png", content=b"x", title="t")
    assert info.value.error == "not_in_channel"


async def test_upload_file_of_nothing_is_fatal(gateway: SlackGateway) -> None:
    with pytest.raises(SlackFatal) as info:
        await gateway.upload_file(channel=INCIDENTS, filename="a.png", content=b"", title="t")
    assert info.value.error == "invalid_arguments"


async def test_upload_file_retries_a_flaky_web_api_call(emu: Emulator) -> None:
    client = AsyncWebClient(token="xoxb-test", base_url=emu.api_url, retry_handlers=[])
    gateway = SlackGateway(client, max_inline_wait=2.0)
    emu.set_faults(error_status=500, error_count=1, methods=["files.getUploadURLExternal"])
    file_id = await gateway.upload_file(
        channel=INCIDENTS, filename="a.png", content=b"x", title="t"
    )
    assert emu.ws.files[file_id]["data"] == b"x"
    assert len(emu.calls_to("files.getUploadURLExternal")) == 2


@pytest.fixture
async def failing_upload(emu: Emulator) -> AsyncIterator[list[tuple[int, dict[str, str]]]]:
    """Point the emulator's upload URLs at a stub answering with the statuses queued here.

    The emulator's fault plan covers Web API methods, not its upload route, so a stub server
    stands in for the upload host.
    """
    answers: list[tuple[int, dict[str, str]]] = []

    async def upload(request: web.Request) -> web.Response:
        await request.read()
        status, headers = answers.pop(0)
        return web.Response(status=status, text="nope", headers=headers)

    app = web.Application()
    app.router.add_post("/_emulator/upload/{file_id}", upload)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    emu.ws.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}/"
    yield answers
    await runner.cleanup()


@pytest.mark.parametrize(
    ("status", "headers", "retry_after"),
    [(500, {}, None), (503, {}, None), (429, {"Retry-After": "7"}, 7.0)],
)
async def test_upload_file_server_errors_are_retryable(
    emu: Emulator,
    gateway: SlackGateway,
    failing_upload: list[tuple[int, dict[str, str]]],
    status: int,
    headers: dict[str, str],
    retry_after: float | None,
) -> None:
    failing_upload.append((status, headers))
    with pytest.raises(SlackRetryable) as info:
        await gateway.upload_file(channel=INCIDENTS, filename="a.png", content=b"x", title="t")
    assert info.value.status == status and info.value.retry_after == retry_after
    assert emu.calls_to("files.completeUploadExternal") == []
    assert emu.messages(INCIDENTS) == []


async def test_upload_file_client_errors_are_fatal(
    emu: Emulator, gateway: SlackGateway, failing_upload: list[tuple[int, dict[str, str]]]
) -> None:
    failing_upload.append((404, {}))
    with pytest.raises(SlackFatal) as info:
        await gateway.upload_file(channel=INCIDENTS, filename="a.png", content=b"x", title="t")
    assert info.value.status == 404 and info.value.method == "files.upload_url"


async def test_upload_file_network_errors_are_retryable(
    emu: Emulator, gateway: SlackGateway
) -> None:
    emu.ws.base_url = "http://127.0.0.1:9/"  # nothing listens on the discard port
    with pytest.raises(SlackRetryable) as info:
        await gateway.upload_file(channel=INCIDENTS, filename="a.png", content=b"x", title="t")
    assert info.value.error.startswith("network: ")
