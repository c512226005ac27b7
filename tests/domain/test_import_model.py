"""The neutral import model's fragment writer: layers, ids, delays, people and determinism."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import yaml

from bot.config import parse_config
from bot.importers.model import (
    Imported,
    Layer,
    Level,
    Person,
    Policy,
    Schedule,
    Service,
    duration,
    fragment,
    render,
    slug,
)

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def imported() -> Imported:
    data = Imported(source="Test")
    data.people = {
        "P1": Person("P1", "Ann", "ann@example.com"),
        "P2": Person("P2", "Ben", "ben@example.com"),
        "P3": Person("P3", "Cy", None),
    }
    data.schedules = [
        Schedule(
            key="S1",
            name="Primary",
            time_zone="Europe/Berlin",
            layers=(
                Layer("Weekdays", START, timedelta(hours=12), ("P1", "P2", "P3")),
                Layer("Nights", START, timedelta(days=7), ("P2", "P1")),
            ),
            team="Core Platform",
        ),
        Schedule("S2", "Primary", "UTC", (Layer("L", START, timedelta(days=1), ("P3",)),)),
    ]
    data.policies = [
        Policy(
            "E1",
            "Default",
            (
                Level(timedelta(seconds=20), (("schedule", "S1"),)),
                Level(timedelta(minutes=90), (("user", "P2"), ("schedule", "S2"))),
            ),
            repeat=1,
        )
    ]
    data.services = [Service("V1", "Checkout", policy="E1", team="Core Platform")]
    return data


def test_layers_become_schedules_the_policy_pages_all_and_gaps_are_listed() -> None:
    config, notes = fragment(imported(), {"P1": "U0ANN0001", "P2": "U0BEN0001"}, default_team="ops")
    assert [s["id"] for s in config["schedules"]] == ["primary-weekdays", "primary-nights"]
    weekdays, nights = config["schedules"]
    assert weekdays["rotation"] == {
        "type": "custom",
        "length": "12h",
        "start": "2026-03-02T09:00:00",  # 08:00Z in Berlin (CET)
        "participants": ["U0ANN0001", "U0BEN0001"],
    }
    assert nights["rotation"]["type"] == "weekly" and weekdays["team"] == "core-platform"
    (policy,) = config["escalation_policies"]
    assert policy["levels"] == [
        {
            "delay": "1m",
            "targets": [{"schedule": "primary-weekdays"}, {"schedule": "primary-nights"}],
        },
        {"delay": "1h30m", "targets": [{"user": "U0BEN0001"}]},
    ]
    assert config["services"] == [
        {
            "id": "checkout",
            "name": "Checkout",
            "team": "core-platform",
            "escalation_policy": "default",
        }
    ]
    assert "schedule 'Primary': 2 layers are merged by Test" in notes[0]
    assert any("Cy (no e-mail) has no Slack user" in n for n in notes)
    assert any("schedule 'Primary' layer 'L': nobody left" in n for n in notes)
    assert any("a delay under a minute became 1m" in n for n in notes)
    assert any("schedule S2 was not imported" in n for n in notes)
    text = yaml.safe_dump({"slack": {"incidents_channel": "C0INCIDENT"}, **config})
    parse_config(text, source="merged.yml", environ={})


def test_the_same_input_gives_the_same_file() -> None:
    ids = {"P1": "U0ANN0001", "P2": "U0BEN0001", "P3": "U0CY00001"}
    first = render("Test", *fragment(imported(), ids, default_team="ops"))
    again = render("Test", *fragment(imported(), ids, default_team="ops"))
    assert first == again
    ids_made = [s["id"] for s in yaml.safe_load(first)["schedules"]]
    assert ids_made == ["primary-weekdays", "primary-nights", "primary"]  # distinct


def test_slug_and_duration() -> None:
    assert slug("  Daily Engineering Rotation!") == "daily-engineering-rotation"
    assert slug("???") == "imported"
    assert duration(timedelta(days=1, hours=2, minutes=3)) == "1d2h3m"
    assert duration(timedelta(seconds=45)) == "45s"
