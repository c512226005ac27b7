"""`probes` and `probe_runner`: valid files load with their defaults; each mistake is named by
file, line and field, as `pulseops config check` prints it."""

from __future__ import annotations

import itertools
from datetime import timedelta
from pathlib import Path

import pytest

from bot.config import parse_config
from bot.config.root import config_check
from tests.domain.test_config import VALID, line_of, problems

PROBES = (
    VALID
    + """\
probes:
  - id: checkout-health
    http:
      method: get
      url: "https://checkout.example/health"
      headers: {Accept: application/json}
      expect_status: [200, 204]
      body_contains: '"ok"'
      timeout: 5s
      follow_redirects: true
    interval: 30s
    service: payment-api
    failures_to_trigger: 3
    anomaly: {z: 3.0, window: 120, min_samples: 30}
    cert_expiry_days: 21
  - id: ledger-db
    tcp: {host: db.internal, port: 5432, timeout: 2s}
    interval: 1m
    service: search-api
probe_runner:
  max_concurrency: 50
  raw_retention: 14d
"""
)


def test_probes_load_with_defaults() -> None:
    config = parse_config(PROBES, environ={})
    web, db = config.probes
    assert config.probe("ledger-db") is db and config.probe("nope") is None
    assert web.http is not None and web.http.method == "GET" and web.http.https
    assert web.http.expect_status == (200, 204) and web.http.follow_redirects
    assert web.anomaly is not None and web.anomaly.window == 120
    assert web.target == "GET https://checkout.example/health" and web.kind == "http"
    assert db.kind == "tcp" and db.target == "tcp db.internal:5432"
    assert db.failures_to_trigger == 3 and db.anomaly is None
    assert db.timeout == timedelta(seconds=2) and db.interval == timedelta(minutes=1)
    assert config.probe_runner.max_concurrency == 50
    assert config.probe_runner.raw_retention == timedelta(days=14)
    assert config.probe_runner.rollup_retention == timedelta(days=400)


@pytest.mark.parametrize(
    ("old", "new", "needle", "message"),
    [
        (
            "    service: search-api\nprobe_runner",
            "    service: search-apx\nprobe_runner",
            "service: search-apx",
            "probes[1].service: unknown service 'search-apx' (known: payment-api, search-api)",
        ),
        (
            "  - id: ledger-db\n",
            "  - id: checkout-health\n",
            "- id: checkout-health\n    tcp",
            "probes[1].id: duplicate probe id 'checkout-health' (first at probes[0])",
        ),
        (
            "    tcp: {host: db.internal, port: 5432, timeout: 2s}\n",
            "    tcp: {host: db.internal, port: 5432, timeout: 2s}\n    http: {url: 'http://x'}\n",
            "- id: ledger-db",
            "probes[1]: give exactly one of http or tcp",
        ),
        (
            'url: "https://checkout.example/health"',
            'url: "checkout.example/health"',
            'url: "checkout.example/health"',
            "probes[0].http.url: invalid URL 'checkout.example/health'",
        ),
        (
            "port: 5432",
            "port: 70000",
            "port: 70000",
            "probes[1].tcp.port: Input should be less than or equal to 65535",
        ),
        (
            "min_samples: 30}",
            "min_samples: 300}",
            "anomaly:",
            "probes[0].anomaly: min_samples (300) must be at most window (120)",
        ),
        (
            "    interval: 1m\n",
            "    interval: 2s\n",
            "interval: 2s",
            "probes[1].interval: must be at least 5s",
        ),
        (
            "method: get",
            "method: FETCH",
            "method: FETCH",
            "probes[0].http.method: unknown HTTP method 'FETCH'",
        ),
        (
            "expect_status: [200, 204]",
            "expect_status: [200, 999]",
            "expect_status",
            "probes[0].http.expect_status: not HTTP status codes: 999",
        ),
        (
            "      timeout: 5s\n",
            "      timeout: 30s\n",
            "- id: checkout-health",
            "probes[0]: the check's timeout (30s) must be shorter than interval (30s)",
        ),
        (
            "  - name: prometheus\n",
            "  - name: probes\n",
            "name: probes",
            "integrations[0].name: the integration name 'probes' is reserved for probes' alerts",
        ),
        (
            "    failures_to_trigger: 3\n",
            "    failures_to_trigger: 0\n",
            "failures_to_trigger: 0",
            "probes[0].failures_to_trigger: Input should be greater than or equal to 1",
        ),
    ],
    ids=[
        "unknown-service",
        "duplicate-id",
        "http-and-tcp",
        "relative-url",
        "bad-port",
        "min-samples-over-window",
        "short-interval",
        "bad-method",
        "bad-status",
        "timeout-over-interval",
        "reserved-integration-name",
        "zero-failures",
    ],
)
def test_mistakes_name_file_line_and_field(old: str, new: str, needle: str, message: str) -> None:
    text = PROBES.replace(old, new, 1)
    assert text != PROBES
    (problem,) = problems(text)
    if "\n" in needle:
        first, second = needle.split("\n")
        line = next(
            i
            for i, (a, b) in enumerate(itertools.pairwise(text.splitlines()), 1)
            if first in a and second.strip() in b
        )
    else:
        line = line_of(text, needle)
    assert problem.startswith(f"pulseops.yml:{line}: {message}"), problem


def test_config_check_counts_probes_and_prints_their_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "pulseops.yml"
    path.write_text(PROBES)
    assert config_check(path, {}) == 0
    assert "2 probes" in capsys.readouterr().out
    path.write_text(PROBES.replace("service: search-api\nprobe_runner", "service: x\nprobe_runner"))
    assert config_check(path, {}) == 2
    err = capsys.readouterr().err
    assert f"{path}:" in err and "probes[1].service: unknown service 'x'" in err
