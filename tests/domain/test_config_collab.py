"""The `collaboration` section: defaults, `off`, and problems named by file, line and field."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.config import parse_config
from bot.domain.incident import Severity
from bot.errors import ConfigError
from tests.conftest import CONFIG_YAML


def test_defaults_and_off() -> None:
    default = parse_config(CONFIG_YAML, environ={}).collaboration
    assert default.reminder_after(Severity.SEV1) == timedelta(minutes=30)
    assert default.reminder_after(Severity.SEV2) == timedelta(hours=1)
    assert default.reminder_after(Severity.SEV3) is None
    assert default.archive_after == timedelta(days=7)
    changed = parse_config(
        CONFIG_YAML
        + "collaboration:\n  update_reminders: {critical: 10m, SEV2: off}\n  archive_after: off\n",
        environ={},
    ).collaboration
    assert changed.reminder_after(Severity.SEV1) == timedelta(minutes=10)
    assert changed.reminder_after(Severity.SEV2) is None
    assert changed.archive_after is None


@pytest.mark.parametrize(
    ("section", "field", "words"),
    [
        ("  update_reminders: {SEV7: 10m}\n", "collaboration.update_reminders", "unknown severity"),
        ("  update_reminders: {SEV1: soon}\n", "collaboration.update_reminders.SEV1", "duration"),
        ("  archive_after: -1d\n", "collaboration.archive_after", "duration"),
        ("  shout: true\n", "collaboration.shout", "unknown key"),
    ],
)
def test_problems_name_file_line_and_field(section: str, field: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(CONFIG_YAML + "collaboration:\n" + section, source="p.yml", environ={})
    (problem,) = caught.value.problems
    line = CONFIG_YAML.count("\n") + 2
    assert problem.startswith(f"p.yml:{line}: {field}"), problem
    assert words in problem
