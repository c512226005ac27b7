"""`pulseops route test` and `pulseops config check` on routes, as a user runs them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import CONFIG_YAML, alertmanager_payload
from tests.scenarios.test_cli import run

ROUTES = """routes:
  - name: payment-failures
    matchers: ['__title__=~"(?i)payment failed.*"']
    service: payment-api
    severity: SEV1
    category: payments
  - name: noise
    matchers: ['alertname="Watchdog"']
    drop: true
classifier:
  categories: {database: [postgres, deadlock]}
"""


def test_route_test_explains_each_alert_of_a_body(tmp_path: Path) -> None:
    config = tmp_path / "pulseops.yml"
    config.write_text(CONFIG_YAML + ROUTES)
    body = tmp_path / "payment.json"
    body.write_text(json.dumps({"title": "Payment failed for order 8812"}))
    result = run("route", "test", "--config", str(config), str(body))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "from integration generic (type generic)" in out
    assert 'route payment-failures matched on __title__=~"(?i)payment failed.*"' in out
    assert "service:  payment-api  (from route payment-failures)" in out
    assert "team:     payments" in out
    assert "severity: SEV1  (from route payment-failures)" in out
    # an Alertmanager body: each alert separately; Watchdog is dropped
    watchdog = alertmanager_payload(alertname="Watchdog", summary="Postgres deadlock watch")
    body.write_text(json.dumps(watchdog))
    result = run("route", "test", "--config", str(config), "--integration", "prometheus", str(body))
    assert result.returncode == 0, result.stderr
    assert "DROPPED by route noise" in result.stdout


@pytest.mark.parametrize(
    ("routes", "expected"),
    [
        (
            "routes:\n  - name: r\n    matchers: ['env=\"x']\n",
            r"pulseops\.yml:\d+: routes\[0\]\.matchers: .*no closing quote",
        ),
        (
            "routes:\n  - name: r\n    service: nope\n",
            r"pulseops\.yml:\d+: routes\[0\]\.service: unknown service 'nope'",
        ),
        (
            "routes:\n  - name: r\n    drop: true\n  - name: r\n    drop: true\n",
            r"pulseops\.yml:\d+: routes\[1\]\.name: duplicate route name 'r'",
        ),
        (
            "routes:\n  - name: r\n    group_window: 5m\n",
            r"pulseops\.yml:\d+: routes\[0\]: .*group_window needs group_by",
        ),
        (
            "classifier:\n  severities: {SEV9: [outage]}\n",
            r"pulseops\.yml:\d+: classifier\.severities.*unknown severity 'SEV9'",
        ),
    ],
)
def test_config_check_names_file_line_and_field_of_bad_routes(
    tmp_path: Path, routes: str, expected: str
) -> None:
    config = tmp_path / "pulseops.yml"
    config.write_text(CONFIG_YAML + routes)
    result = run("config", "check", str(config))
    assert result.returncode == 2
    assert any(re.search(expected, line) for line in result.stderr.splitlines()), result.stderr


def test_route_test_refuses_a_body_no_integration_accepts(tmp_path: Path) -> None:
    config = tmp_path / "pulseops.yml"
    config.write_text(CONFIG_YAML + ROUTES)
    body = tmp_path / "bad.json"
    body.write_text("[1, 2]")
    result = run("route", "test", "--config", str(config), str(body))
    assert result.returncode == 2
    assert "no configured integration accepts this body" in result.stderr
