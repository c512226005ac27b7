"""The access log line: built directly for speed, yet the very text `JsonFormatter` makes of
the same record, and written to the JSON handler only when nothing else would see the record."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from bot import logs
from bot.logs import AccessLog, JsonFormatter, access_line, new_request_id, request_id_var

CASES: list[dict[str, Any]] = [
    {
        "request_id": "4f0c2d8e9a7b4c1d8e2f3a4b5c6d7e8f",
        "method": "POST",
        "path": "/webhooks/prometheus",
        "status": 202,
        "duration_ms": 1.23,
    },
    {
        # what a client may send: quotes, backslashes, control characters, non-ASCII
        "request_id": 'my "id" \\ \x01\x7f',
        "method": "GET",
        "path": "/api/v1/incidents/é☃/\U0001f600\t?",
        "status": 404,
        "duration_ms": 0.0,
        "api_token": "ci-bot",
    },
    {
        "request_id": "r",
        "method": "DELETE",
        "path": "/webhooks/{integration}/{token}",
        "status": 500,
        "duration_ms": 12345.67,
        "api_token": 'weird "name"',
    },
]
TIMES = [
    1_795_000_000.0,  # a whole second: no fraction, as isoformat prints it
    1_795_000_000.5,
    1_795_000_000.000001,
    1_795_000_000.9999996,  # rounds up into the next second
    1_795_000_123.456789,
    1_700_000_000.25,
]


def formatted(created: float, fields: dict[str, Any]) -> str:
    """What `JsonFormatter` makes of `logger.info("request", extra=fields)` at `created`."""
    record = logging.LogRecord("pulseops.http", logging.INFO, __file__, 1, "request", (), None)
    record.created = created
    record.__dict__.update(fields)
    token = request_id_var.set(fields["request_id"])
    try:
        return JsonFormatter().format(record)
    finally:
        request_id_var.reset(token)


@pytest.mark.parametrize("fields", CASES)
@pytest.mark.parametrize("created", TIMES)
def test_the_line_is_what_the_json_formatter_makes(created: float, fields: dict[str, Any]) -> None:
    line = access_line(created, logger="pulseops.http", **fields)
    assert line == formatted(created, fields)
    parsed = json.loads(line)
    assert list(parsed)[:5] == ["time", "level", "logger", "message", "request_id"]
    assert parsed["time"].endswith("Z") and parsed["level"] == "info"
    assert {k: parsed[k] for k in fields} == fields


def test_the_time_is_iso_8601_utc() -> None:
    assert access_line(
        0.5, logger="x", request_id="r", method="GET", path="/", status=200, duration_ms=1.0
    ).startswith('{"time": "1970-01-01T00:00:00.500000Z", ')
    assert (
        json.loads(
            access_line(
                86400.0,
                logger="x",
                request_id="r",
                method="GET",
                path="/",
                status=200,
                duration_ms=1.0,
            )
        )["time"]
        == "1970-01-02T00:00:00Z"
    )


def test_request_ids_are_32_hex_digits_and_differ() -> None:
    ids = {new_request_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


@contextmanager
def json_logging() -> Iterator[io.StringIO]:
    """configure_logging's JSON handler alone on the root (pytest's capturing handlers
    removed meanwhile), writing to a buffer; the root's state restored after."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logs._json_handler)
    logs.configure_logging(fmt="json", level="INFO")
    buffer = io.StringIO()
    assert logs._json_handler is not None
    logs._json_handler.setStream(buffer)
    try:
        yield buffer
    finally:
        root.handlers[:], level, logs._json_handler = saved
        root.setLevel(level)


def test_written_directly_to_the_json_handler() -> None:
    access = AccessLog(logging.getLogger("pulseops.http"), clock=lambda: TIMES[4])
    with json_logging() as out:
        access.write(**CASES[1])
        access.write(**CASES[0])
    assert out.getvalue().splitlines() == [
        formatted(TIMES[4], CASES[1]),
        formatted(TIMES[4], CASES[0]),
    ]


async def test_in_an_event_loop_one_turns_lines_are_written_together() -> None:
    access = AccessLog(logging.getLogger("pulseops.http"), clock=lambda: TIMES[1])
    with json_logging() as out:
        for fields in CASES:
            access.write(**fields)
        assert out.getvalue() == ""  # not yet: at the end of the loop's turn
        await asyncio.sleep(0)
        assert out.getvalue().splitlines() == [formatted(TIMES[1], f) for f in CASES]
        access.write(**CASES[0])
        await asyncio.sleep(0)
    assert out.getvalue().splitlines()[-1] == formatted(TIMES[1], CASES[0])


def test_through_logging_when_another_handler_listens() -> None:
    access = AccessLog(logging.getLogger("pulseops.http"), clock=lambda: TIMES[1])
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    with json_logging() as out:
        logging.getLogger().addHandler(Keep())
        access.write(**CASES[2])
    (record,) = records
    assert record.getMessage() == "request"
    assert {k: getattr(record, k) for k in CASES[2]} == CASES[2]
    assert json.loads(out.getvalue())["api_token"] == CASES[2]["api_token"]


def test_through_logging_when_a_filter_is_set() -> None:
    logger = logging.getLogger("pulseops.http")
    hide = logging.Filter("nothing")  # passes no record of pulseops.http
    with json_logging() as out:
        logger.addFilter(hide)
        try:
            AccessLog(logger).write(**CASES[0])
        finally:
            logger.removeFilter(hide)
    assert out.getvalue() == ""


def test_nothing_below_the_level() -> None:
    with json_logging() as out:
        logging.getLogger().setLevel(logging.WARNING)
        AccessLog(logging.getLogger("pulseops.http")).write(**CASES[0])
    assert out.getvalue() == ""


def test_text_logs_go_through_logging(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logs._json_handler)
    try:
        logs.configure_logging(fmt="text", level="INFO")
        AccessLog(logging.getLogger("pulseops.http")).write(**CASES[0])
        err = capsys.readouterr().err
    finally:
        root.handlers[:], level, logs._json_handler = saved
        root.setLevel(level)
    assert "pulseops.http: request" in err and "status=202" in err and "method=POST" in err
