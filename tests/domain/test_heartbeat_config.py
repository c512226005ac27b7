"""`heartbeats` and `services[].auto_resolve_after`: valid files load; each mistake is named
by file, line and field, as `pulseops config check` prints it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bot.config import parse_config
from bot.config.root import config_check
from tests.domain.test_config import VALID, line_of, problems

HEARTBEATS = (
    VALID.replace("    team: payments\n", "    team: payments\n    auto_resolve_after: 30m\n", 1)
    + """\
heartbeats:
  - name: nightly-backup
    interval: 1h
    grace: 5m
    service: payment-api
    token_env: PULSEOPS_HB_BACKUP
  - name: indexer
    interval: 10m
    service: search-api
    token: "indexer-secret"
"""
)
ENV = {"PULSEOPS_HB_BACKUP": "backup-secret"}


def test_heartbeats_and_auto_resolve_after_load() -> None:
    config = parse_config(HEARTBEATS, environ=ENV)
    backup, indexer = config.heartbeats
    assert config.heartbeat("nightly-backup") is backup
    assert config.heartbeat("nope") is None
    assert backup.allowed_silence == timedelta(hours=1, minutes=5)
    assert indexer.grace is None and indexer.allowed_silence == timedelta(minutes=10)
    assert backup.resolve_token(ENV) == "backup-secret"
    assert indexer.resolve_token({}) == "indexer-secret"
    assert config.service("payment-api").auto_resolve_after == timedelta(minutes=30)  # type: ignore[union-attr]
    assert config.service("search-api").auto_resolve_after is None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("old", "new", "needle", "message"),
    [
        (
            "    service: search-api\n    token:",
            "    service: search-apx\n    token:",
            "service: search-apx",
            "heartbeats[1].service: unknown service 'search-apx' (known: payment-api, search-api)",
        ),
        (
            "  - name: indexer\n",
            "  - name: nightly-backup\n",
            "name: nightly-backup",  # the second one (line_of finds the first; fixed below)
            "heartbeats[1].name: duplicate heartbeat name 'nightly-backup' (first at "
            "heartbeats[0])",
        ),
        (
            "interval: 10m",
            "interval: often",
            "interval: often",
            "heartbeats[1].interval: invalid duration 'often'",
        ),
        (
            "grace: 5m",
            "grace: -5m",
            "grace: -5m",
            "heartbeats[0].grace: invalid duration '-5m'",
        ),
        (
            "auto_resolve_after: 30m",
            "auto_resolve_after: soon",
            "auto_resolve_after: soon",
            "services[0].auto_resolve_after: invalid duration 'soon'",
        ),
        (
            "  - name: indexer\n",
            "  - name: Indexer\n",
            "name: Indexer",
            "heartbeats[1].name: invalid heartbeat name 'Indexer'",
        ),
        (
            '    token: "indexer-secret"\n',
            "",
            "name: indexer",
            "heartbeats[1]: set exactly one of token or token_env",
        ),
        (
            "  - name: prometheus\n",
            "  - name: heartbeat\n",
            "name: heartbeat",
            "integrations[0].name: the integration name 'heartbeat' is reserved for "
            "heartbeats' alerts",
        ),
    ],
    ids=[
        "unknown-service",
        "duplicate-name",
        "bad-interval",
        "negative-grace",
        "bad-auto-resolve-after",
        "bad-name",
        "no-token",
        "reserved-integration-name",
    ],
)
def test_mistakes_name_file_line_and_field(old: str, new: str, needle: str, message: str) -> None:
    text = HEARTBEATS.replace(old, new, 1)
    assert text != HEARTBEATS
    line = line_of(text, needle)
    if needle == "name: nightly-backup":
        line = [i for i, s in enumerate(text.splitlines(), 1) if needle in s][1]
    (problem,) = problems(text, ENV)
    prefix = f"pulseops.yml:{line}: "
    assert problem.startswith(prefix + message), problem


def test_an_unset_token_env_is_named() -> None:
    (problem,) = problems(HEARTBEATS, {})
    line = line_of(HEARTBEATS, "token_env: PULSEOPS_HB_BACKUP")
    assert problem == (
        f"pulseops.yml:{line}: heartbeats[0].token_env: environment variable "
        "PULSEOPS_HB_BACKUP is not set"
    )


def test_config_check_prints_heartbeat_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "pulseops.yml"
    path.write_text(HEARTBEATS.replace("service: search-api\n    token:", "service: x\n    token:"))
    assert config_check(path, ENV) == 2
    err = capsys.readouterr().err
    assert f"{path}:" in err and "heartbeats[1].service: unknown service 'x'" in err
