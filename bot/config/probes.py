"""YAML model of `probes` (synthetic checks: HTTP and TCP, on a schedule) and `probe_runner`."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal, Self
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from bot.config.checks import CallTimeout, HttpUrl, IdOf, _Frozen
from bot.config.types import Duration
from bot.domain.durations import format_duration

PROBE_INTEGRATION = "probes"
"""The integration name probe alerts carry (reserved: no configured integration may use it)."""

HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


class HttpCheckConfig(_Frozen):
    """An HTTP request; it succeeds when the status is one of `expect_status` and the body (its
    first 64 KiB) contains `body_contains`, within `timeout`."""

    method: str = "GET"
    url: HttpUrl
    headers: dict[str, str] = Field(default_factory=dict)
    expect_status: tuple[int, ...] = (200,)
    body_contains: str | None = Field(default=None, min_length=1, max_length=1000)
    timeout: CallTimeout = timedelta(seconds=5)
    follow_redirects: bool = False

    @field_validator("method")
    @classmethod
    def _method(cls, value: str) -> str:
        if value.upper() not in HTTP_METHODS:
            raise ValueError(
                f"unknown HTTP method {value!r} (use one of {', '.join(HTTP_METHODS)})"
            )
        return value.upper()

    @field_validator("expect_status")
    @classmethod
    def _statuses(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value:
            raise ValueError("must list at least one status code")
        bad = [s for s in value if not 100 <= s <= 599]
        if bad:
            raise ValueError(f"not HTTP status codes: {', '.join(str(s) for s in bad)}")
        return value

    @property
    def https(self) -> bool:
        return urlsplit(self.url).scheme == "https"


class TcpCheckConfig(_Frozen):
    """A TCP connect to `host`:`port` within `timeout`."""

    host: str = Field(min_length=1, max_length=253)
    port: int = Field(ge=1, le=65535)
    timeout: CallTimeout = timedelta(seconds=5)


class AnomalyConfig(_Frozen):
    """A rolling z-score over the last `window` samples, once `min_samples` are known."""

    z: float = Field(default=3.0, gt=0, le=100)
    window: int = Field(default=120, ge=2, le=10_000)
    min_samples: int = Field(default=30, ge=2)

    @model_validator(mode="after")
    def _samples(self) -> Self:
        if self.min_samples > self.window:
            raise ValueError(
                f"min_samples ({self.min_samples}) must be at most window ({self.window})"
            )
        return self


class SloConfig(_Frozen):
    """An availability objective (percent of successful checks) over a rolling window."""

    objective: float = Field(gt=50, lt=100)  # e.g. 99.9
    window: Duration = timedelta(days=30)

    @property
    def ratio(self) -> float:
        return self.objective / 100.0


class ProbeConfig(_Frozen):
    """One synthetic check (`http` or `tcp`), run every `interval` for `service`."""

    id: Annotated[str, IdOf("probe id")]
    http: HttpCheckConfig | None = None
    tcp: TcpCheckConfig | None = None
    interval: Duration = timedelta(seconds=30)
    service: str
    failures_to_trigger: int = Field(default=3, ge=1, le=1000)
    anomaly: AnomalyConfig | None = None
    cert_expiry_days: int | None = Field(default=14, ge=1, le=3650)
    slo: SloConfig | None = None

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: timedelta) -> timedelta:
        if value < timedelta(seconds=5):
            raise ValueError("must be at least 5s")
        return value

    @model_validator(mode="after")
    def _one_check(self) -> Self:
        if (self.http is None) == (self.tcp is None):
            raise ValueError("give exactly one of http or tcp")
        if self.timeout >= self.interval:
            raise ValueError(
                f"the check's timeout ({format_duration(self.timeout)}) must be shorter than "
                f"interval ({format_duration(self.interval)})"
            )
        return self

    @property
    def kind(self) -> Literal["http", "tcp"]:
        return "http" if self.http is not None else "tcp"

    @property
    def timeout(self) -> timedelta:
        check = self.http or self.tcp
        assert check is not None
        return check.timeout

    @property
    def target(self) -> str:
        """What the probe checks, for people (a URL or host:port)."""
        if self.http is not None:
            return f"{self.http.method} {self.http.url}"
        assert self.tcp is not None
        return f"tcp {self.tcp.host}:{self.tcp.port}"


class ProbeRunnerConfig(_Frozen):
    """How probes run and how long their history is kept."""

    max_concurrency: int = Field(default=100, ge=1, le=2000)
    raw_retention: Duration = timedelta(days=2)  # then hourly rollups
    rollup_retention: Duration = timedelta(days=400)

    @field_validator("raw_retention")
    @classmethod
    def _raw(cls, value: timedelta) -> timedelta:
        if value < timedelta(days=1):
            raise ValueError("must be at least 1d (charts and p50/p95 read the last 24 hours)")
        return value
