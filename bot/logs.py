"""Logging: one JSON object per line (default) or readable text, with the request id attached."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import secrets
import sys
import time
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            data["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                data[key] = value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = {
            k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")
        }
        request_id = request_id_var.get()
        stamp = self.formatTime(record, "%H:%M:%S")
        line = f"{stamp} {record.levelname:<7} {record.name}: {record.getMessage()}"
        if request_id:
            extras["request_id"] = request_id
        if extras:
            line += " " + " ".join(f"{k}={v}" for k, v in extras.items())
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


_IDS_AT_ONCE = 64
_ids: list[str] = []  # request ids drawn ahead, used last first


def new_request_id() -> str:
    """A fresh request id: 32 random hex digits (as long as a UUID's hex, cheaper to make).

    The randomness is read 64 ids at a time: one system call instead of one per request.
    """
    if not _ids:
        block = secrets.token_hex(16 * _IDS_AT_ONCE)
        _ids.extend(block[i : i + 32] for i in range(0, len(block), 32))
    return _ids.pop()


def configure_logging(*, fmt: str = "json", level: str = "INFO") -> None:
    """Send every log record to stderr in the chosen format."""
    global _json_handler
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    _json_handler = handler if fmt == "json" else None
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiohttp.access", "apscheduler.executors.default", "apscheduler.scheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


# ---- the access log -------------------------------------------------------------------------

_json_handler: logging.StreamHandler[Any] | None = None
"""The JSON handler `configure_logging` installed, which `AccessLog` may write to directly."""


class AccessLog:
    """One line per HTTP request, on `logger` at INFO: message "request" with the fields
    request_id, method, path, status, duration_ms and (an API call) api_token.

    Through the logging machinery the line costs more than a webhook's own work, so while the
    JSON handler of `configure_logging` is the only one that would see the record, the line is
    built here and written to its stream: the same text `JsonFormatter` would make (see
    `access_line`), the lines of one turn of the event loop in one write. Otherwise (text
    logs, another handler or a filter anywhere, as in tests capturing records) the record
    goes through `logger.info` with the fields as extras.
    """

    def __init__(self, logger: logging.Logger, *, clock: Callable[[], float] = time.time) -> None:
        self.logger = logger
        self.clock = clock  # a record's `created`
        self._lines: list[str] = []  # written at the end of the event loop's turn
        self._flush_scheduled = False

    def write(
        self,
        *,
        request_id: str,
        method: str,
        path: str,
        status: int,
        duration_ms: float,
        api_token: str | None = None,
    ) -> None:
        logger = self.logger
        if not logger.isEnabledFor(logging.INFO):
            return
        handler = self._direct_handler()
        if handler is None:
            fields: dict[str, Any] = {
                "request_id": request_id,
                "method": method,
                "path": path,
                "status": status,
                "duration_ms": duration_ms,
            }
            if api_token is not None:
                fields["api_token"] = api_token
            logger.info("request", extra=fields)
            return
        line = access_line(
            self.clock(),
            logger=logger.name,
            request_id=request_id,
            method=method,
            path=path,
            status=status,
            duration_ms=duration_ms,
            api_token=api_token,
        )
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop: write it now
            self._emit(handler, [line])
            return
        # the lines of one turn of the event loop are written together, once it has handled
        # what was ready: one write to the stream instead of one per request
        self._lines.append(line)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush, handler)

    def _flush(self, handler: logging.StreamHandler[Any]) -> None:
        self._flush_scheduled = False
        lines, self._lines = self._lines, []
        self._emit(handler, lines)

    @staticmethod
    def _emit(handler: logging.StreamHandler[Any], lines: list[str]) -> None:
        text = handler.terminator.join(lines) + handler.terminator
        handler.acquire()
        try:
            stream = handler.stream
            stream.write(text)
            stream.flush()
        except Exception:  # as StreamHandler.emit: a broken stream must not fail the request
            handler.handleError(logging.makeLogRecord({"msg": text}))
        finally:
            handler.release()

    def _direct_handler(self) -> logging.StreamHandler[Any] | None:
        """The JSON handler, when it alone would handle the record unchanged."""
        handler = _json_handler
        if handler is None or handler.filters or handler.level > logging.INFO:
            return None
        logger: logging.Logger | None = self.logger
        while logger is not None:
            if logger.filters:
                return None
            if logger.parent is None:  # the root: our handler, alone
                handlers = logger.handlers
                return handler if len(handlers) == 1 and handlers[0] is handler else None
            if logger.handlers:
                return None
            if not logger.propagate:
                return None
            logger = logger.parent
        return None


def access_line(
    created: float,
    *,
    logger: str,
    request_id: str,
    method: str,
    path: str,
    status: int,
    duration_ms: float,
    api_token: str | None = None,
) -> str:
    """The access log's JSON line, exactly as `JsonFormatter` formats the record that
    `logger.info("request", extra=...)` makes at `created` (tested against it)."""
    line = (
        f'{{"time": "{_iso_time(created)}", "level": "info", "logger": {_json_str(logger)}, '
        f'"message": "request", "request_id": {_json_str(request_id)}, '
        f'"method": {_json_str(method)}, "path": {_json_str(path)}, "status": {status:d}, '
        f'"duration_ms": {duration_ms!r}'
    )
    if api_token is not None:
        line += f', "api_token": {_json_str(api_token)}'
    return line + "}"


def _json_str(text: str) -> str:
    """`json.dumps(text)`, without its machinery for the common case (printable ASCII with
    nothing to escape)."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    return json.dumps(text)


_second: tuple[float, str] = (-1.0, "")  # the last whole second formatted, and its text


def _iso_time(created: float) -> str:
    """`datetime.fromtimestamp(created, UTC).isoformat()` with Z for +00:00 (microseconds
    rounded half to even, as datetime does), formatting each second's date and time once."""
    global _second
    fraction, whole = math.modf(created)
    micro = round(fraction * 1e6)
    if micro >= 1_000_000:
        whole += 1
        micro -= 1_000_000
    if _second[0] != whole:
        text = datetime.fromtimestamp(whole, UTC).isoformat().replace("+00:00", "")
        _second = (whole, text)
    if micro:
        return f"{_second[1]}.{micro:06d}Z"
    return f"{_second[1]}Z"
