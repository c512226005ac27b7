"""`health` and `watchdog`: defaults, a valid file, and each mistake named by file, line and
field, as `pulseops config check` prints it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.config import parse_config
from tests.domain.test_config import VALID, line_of, problems

WATCHED = (
    VALID
    + """\
health:
  outbox_lag: 5m
  job_lag: 3m
  job_lag_intervals: 4
  deadline_lag: 90s
  commit_timeout: 3s
watchdog:
  url: "https://hc-ping.example/5f0c8a8e"
  method: get
  interval: 30s
  timeout: 5s
  token_env: PULSEOPS_WATCHDOG_TOKEN
"""
)
ENV = {"PULSEOPS_WATCHDOG_TOKEN": "watch-secret"}


def test_defaults_and_a_valid_file() -> None:
    plain = parse_config(VALID, environ={})
    assert plain.watchdog is None
    assert plain.health.outbox_lag == timedelta(minutes=2)
    assert plain.health.job_lag == timedelta(minutes=2)
    assert plain.health.job_lag_intervals == 3
    assert plain.health.deadline_lag == timedelta(minutes=2)
    assert plain.health.commit_timeout == timedelta(seconds=5)

    config = parse_config(WATCHED, environ=ENV)
    assert config.health.deadline_lag == timedelta(seconds=90)
    assert config.health.commit_timeout == timedelta(seconds=3)
    watchdog = config.watchdog
    assert watchdog is not None
    assert (watchdog.method, watchdog.host) == ("GET", "hc-ping.example")
    assert watchdog.interval == timedelta(seconds=30)
    assert watchdog.resolve_token(ENV) == "watch-secret"


@pytest.mark.parametrize(
    ("old", "new", "needle", "message"),
    [
        (
            "commit_timeout: 3s",
            "commit_timeout: 2m",
            "commit_timeout: 2m",
            "health.commit_timeout: must be at most 60s",
        ),
        ("outbox_lag: 5m", "outbox_lag: soon", "outbox_lag: soon", "health.outbox_lag: invalid"),
        (
            "job_lag_intervals: 4",
            "job_lag_intervals: 1",
            "job_lag_intervals: 1",
            "health.job_lag_intervals: Input should be greater than or equal to 2",
        ),
        ("deadline_lag: 90s", "deadline_lag: 90s\n  lag: 1m", "lag: 1m", "health.lag: unknown key"),
        (
            'url: "https://hc-ping.example/5f0c8a8e"',
            'url: "hc-ping.example/5f0c8a8e"',
            "url:",
            "watchdog.url: invalid URL: use an absolute http:// or https:// URL",
        ),
        (
            "method: get",
            "method: PUT",
            "method: PUT",
            "watchdog.method: Input should be 'GET', 'POST' or 'HEAD' (got 'PUT')",
        ),
        (
            "timeout: 5s",
            "timeout: 30s",
            "watchdog:",
            "watchdog: timeout must be shorter than interval",
        ),
        (
            "token_env: PULSEOPS_WATCHDOG_TOKEN",
            "token_env: PULSEOPS_UNSET",
            "token_env:",
            "watchdog.token_env: environment variable PULSEOPS_UNSET is not set",
        ),
    ],
    ids=[
        "commit-timeout-too-long",
        "bad-duration",
        "too-few-intervals",
        "unknown-key",
        "url-without-scheme",
        "unknown-method",
        "timeout-not-shorter",
        "token-env-unset",
    ],
)
def test_mistakes_name_file_line_and_field(old: str, new: str, needle: str, message: str) -> None:
    text = WATCHED.replace(old, new, 1)
    assert text != WATCHED
    (problem,) = problems(text, ENV)
    line = line_of(text, needle)
    assert problem.startswith(f"pulseops.yml:{line}: {message}"), problem
