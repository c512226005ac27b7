"""Running one probe's check: an HTTP request or a TCP connect, timed, bounded and safe.

Each check opens a fresh connection (what a user's first request costs, and the TLS
certificate is seen every time), is cut off at the probe's timeout, reads at most
`MAX_BODY_BYTES` of a body and only when `body_contains` needs it, and follows redirects only
when the probe says so (then at most `MAX_REDIRECTS`). Probe targets are chosen by the people
who write the configuration, so private and loopback addresses are allowed.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import aiohttp

from bot.config.probes import HttpCheckConfig, ProbeConfig, TcpCheckConfig

MAX_BODY_BYTES = 64 * 1024
MAX_REDIRECTS = 5
MAX_ERROR = 300
CERT_REFRESH_SECONDS = 3600.0  # an HTTPS probe's certificate is looked at once an hour


@dataclass(frozen=True, slots=True)
class CheckResult:
    ok: bool
    latency_ms: float
    status_code: int | None = None
    error: str | None = None
    cert_not_after: datetime | None = None  # HTTPS: the server certificate's expiry

    def cert_days(self, now: datetime) -> int | None:
        """Whole days until the certificate expires (negative: expired)."""
        if self.cert_not_after is None:
            return None
        return (self.cert_not_after - now).days


class Checker:
    """Runs checks with one shared HTTP client (its connections are never reused)."""

    def __init__(
        self,
        *,
        max_connections: int = 100,
        ssl_context: ssl.SSLContext | None = None,
        perf_counter: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.max_connections = max_connections
        self.ssl_context = ssl_context or ssl.create_default_context()
        self.perf_counter = perf_counter
        self._session: aiohttp.ClientSession | None = None
        self._certs: dict[tuple[str, int], tuple[float, datetime | None]] = {}
        self.monotonic = time.monotonic

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self.max_connections, force_close=True, ssl=self.ssl_context
            )
            self._session = aiohttp.ClientSession(
                connector=connector, auto_decompress=True, trust_env=False
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def run(self, probe: ProbeConfig) -> CheckResult:
        """Run the probe's check once; never raises (a failure is a failed result)."""
        started = self.perf_counter()
        try:
            async with asyncio.timeout(probe.timeout.total_seconds()):
                if probe.http is not None:
                    return await self._http(probe.http, started)
                assert probe.tcp is not None
                return await self._tcp(probe.tcp, started)
        except TimeoutError:
            return self._failed(started, f"timed out after {probe.timeout.total_seconds():g}s")
        except aiohttp.TooManyRedirects:
            return self._failed(started, f"more than {MAX_REDIRECTS} redirects")
        except aiohttp.ClientConnectorCertificateError as exc:
            return self._failed(started, f"TLS certificate not accepted: {exc.certificate_error}")
        except ssl.SSLError as exc:
            return self._failed(started, f"TLS error: {getattr(exc, 'reason', None) or exc}")
        except (aiohttp.ClientError, OSError) as exc:
            return self._failed(started, f"{type(exc).__name__}: {exc}")

    def _elapsed_ms(self, started: float) -> float:
        return (self.perf_counter() - started) * 1000.0

    def _failed(self, started: float, error: str) -> CheckResult:
        return CheckResult(ok=False, latency_ms=self._elapsed_ms(started), error=error[:MAX_ERROR])

    async def _http(self, check: HttpCheckConfig, started: float) -> CheckResult:
        async with self._client().request(
            check.method,
            check.url,
            headers=check.headers,
            allow_redirects=check.follow_redirects,
            max_redirects=MAX_REDIRECTS,
        ) as response:
            body = b""
            if check.body_contains is not None:
                body = await response.content.read(MAX_BODY_BYTES)
            latency = self._elapsed_ms(started)
            status = response.status
        not_after = await self._not_after(check) if check.https else None
        if status not in check.expect_status:
            expected = ", ".join(str(s) for s in check.expect_status)
            return CheckResult(
                ok=False,
                latency_ms=latency,
                status_code=status,
                error=f"status {status} (expected {expected})",
                cert_not_after=not_after,
            )
        if check.body_contains is not None and check.body_contains.encode() not in body:
            return CheckResult(
                ok=False,
                latency_ms=latency,
                status_code=status,
                error=f"body lacks {check.body_contains!r}"[:MAX_ERROR],
                cert_not_after=not_after,
            )
        return CheckResult(
            ok=True, latency_ms=latency, status_code=status, cert_not_after=not_after
        )

    async def _not_after(self, check: HttpCheckConfig) -> datetime | None:
        """The expiry of the certificate the URL's host presents, looked at over a TLS
        handshake of its own at most once an hour (None when it cannot be read)."""
        parts = urlsplit(check.url)
        host, port = parts.hostname or "", parts.port or 443
        cached = self._certs.get((host, port))
        if cached is not None and self.monotonic() - cached[0] < CERT_REFRESH_SECONDS:
            return cached[1]
        not_after: datetime | None = None
        try:
            _, writer = await asyncio.open_connection(
                host, port, ssl=self.ssl_context, server_hostname=host
            )
        except (OSError, ssl.SSLError):
            return None  # the check itself says what went wrong
        try:
            cert = writer.get_extra_info("peercert")
            expiry = cert.get("notAfter") if isinstance(cert, dict) else None
            if isinstance(expiry, str):
                not_after = datetime.fromtimestamp(ssl.cert_time_to_seconds(expiry), tz=UTC)
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except (OSError, ssl.SSLError):
                pass
        self._certs[(host, port)] = (self.monotonic(), not_after)
        return not_after

    async def _tcp(self, check: TcpCheckConfig, started: float) -> CheckResult:
        _, writer = await asyncio.open_connection(check.host, check.port)
        latency = self._elapsed_ms(started)
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass
        return CheckResult(ok=True, latency_ms=latency)
