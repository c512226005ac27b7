"""Configuration: environment settings, the YAML models, line-numbered problems, `config check`."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bot.config import (
    EXAMPLE_CONFIG_PATH,
    EscalationTarget,
    IntegrationConfig,
    PulseOpsConfig,
    RotationConfig,
    Settings,
    config_check,
    load_config,
    load_settings,
    parse_config,
)
from bot.domain.durations import format_duration, parse_duration
from bot.domain.incident import Severity
from bot.errors import ConfigError

VALID = """\
slack:
  incidents_channel: "C0INCIDENT"
teams:
  - id: payments
    name: Payments
    channel: "C0PAYMENTS"
    members: ["U0ALICE01", "U0BOB0001"]
  - id: search
    name: Search
services:
  - id: payment-api
    name: Payment API
    team: payments
  - id: search-api
    name: Search API
    team: search
integrations:
  - name: prometheus
    type: alertmanager
    token: "change-me"
    service: payment-api
"""

ONCALL = (
    VALID.replace(
        "    name: Payments\n", "    name: Payments\n    escalation_policy: payments-default\n"
    )
    .replace("    name: Search\n", "    name: Search\n    escalation_policy: payments-default\n")
    .replace("    team: search\n", "    team: search\n    escalation_policy: search-default\n")
    + """\
schedules:
  - id: payments-primary
    team: payments
    time_zone: Europe/Berlin
    rotation:
      type: weekly
      start: "2026-11-02T09:00:00"
      participants: ["U0ALICE01", "U0BOB0001"]
    user_group: "S0PAYONCAL"
    ics_token: "ics-secret"
  - id: search-primary
    team: search
    time_zone: America/New_York
    rotation:
      type: custom
      length: 12h
      start: 2026-11-02 21:30:00
      participants: ["U0CAROL01"]
    handoff_channel: "#search-oncall"
escalation_policies:
  - id: payments-default
    repeat: 1
    levels:
      - delay: 5m
        targets: [{schedule: payments-primary}]
      - delay: 10s
        targets: [{user: "U0BOB0001"}, {user_group: "S0PAYONCAL"}]
  - id: search-default
    levels:
      - delay: 5m
        targets: [{schedule: search-primary}]
"""
)


def problems(text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="pulseops.yml", environ=environ or {})
    return info.value.problems


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


# --------------------------------------------------------------------------- happy paths


def test_example_config_loads() -> None:
    config = load_config(EXAMPLE_CONFIG_PATH, environ={})
    assert [t.id for t in config.teams] == ["payments", "search"]
    assert [s.id for s in config.services] == ["payment-api", "checkout-web", "search-api"]
    assert [(i.name, i.type) for i in config.integrations] == [
        ("prometheus", "alertmanager"),
        ("generic", "generic"),
        ("pagerduty", "pagerduty"),
        ("opsgenie", "opsgenie"),
        ("grafana", "grafana"),
        ("datadog", "datadog"),
        ("uptime-kuma", "slack-webhook"),
    ]
    assert config.slack.incidents_channel == "C0INCIDENT"
    (slo,) = config.slos  # README section 26 runs its SLO commands against it
    assert (slo.id, slo.integration, slo.objective, slo.service) == (
        "checkout-availability",
        "prometheus",
        99.9,
        "checkout-web",
    )
    assert [str(m) for m in slo.matchers] == ['service="checkout-web"']
    assert config.team("search") is not None and config.team("search").members == (  # type: ignore[union-attr]
        "U0CAROL01",
        "U0DAVE001",
    )
    assert config.integration("pagerduty").resolve_token({}) == "sandbox-pagerduty"  # type: ignore[union-attr]
    payments, search = config.schedules
    assert (payments.id, payments.team, payments.time_zone) == (
        "payments-primary",
        "payments",
        "Europe/Berlin",
    )
    assert payments.rotation.type == "weekly"
    assert payments.rotation.start == datetime(2026, 11, 2, 9, 0)
    assert payments.rotation.start.weekday() == 0  # a Monday
    assert payments.rotation.participants == ("U0ALICE01", "U0BOB0001")
    assert (payments.user_group, payments.resolve_ics_token({})) == (
        "S0PAYONCAL",
        "sandbox-ics-payments",
    )
    assert (search.id, search.rotation.type, search.time_zone) == (
        "search-primary",
        "daily",
        "America/New_York",
    )
    assert (search.user_group, search.resolve_ics_token({})) == ("S0SEARCHOC", "sandbox-ics-search")
    assert config.schedules_for_team("search") == (search,)
    assert [p.id for p in config.escalation_policies] == ["payments-default", "search-default"]
    assert [t.escalation_policy for t in config.teams] == ["payments-default", "search-default"]
    for service in config.services:
        team = config.team_for_service(service.id)
        assert team is not None
        policy = config.policy_for_service(service.id)
        assert policy is not None and policy.id == team.escalation_policy
        assert policy.repeat == 1
        first, second = policy.levels
        assert first.delay == timedelta(minutes=5) and second.delay == timedelta(minutes=10)
        (schedule,) = config.schedules_for_team(team.id)
        assert first.targets[0].schedule == schedule.id
        assert second.targets[0].user == schedule.rotation.participants[1]


def test_lookups_and_defaults() -> None:
    config = parse_config(VALID, environ={})
    assert config.service("payment-api").team == "payments"  # type: ignore[union-attr]
    assert config.team_for_service("search-api").name == "Search"  # type: ignore[union-attr]
    assert config.team("nope") is None
    assert config.service("nope") is None
    assert config.integration("nope") is None
    assert config.team_for_service("nope") is None
    assert config.slack.channel_prefix == "inc"
    assert config.services[0].auto_resolve is True
    assert config.incidents.default_severity is Severity.SEV3
    assert config.incidents.idempotency_ttl == timedelta(hours=24)
    assert config.incidents.repeat_note_interval == timedelta(hours=1)
    assert config.incidents.max_body_bytes == 1_048_576


def test_oncall_lookups_and_defaults() -> None:
    config = parse_config(ONCALL, environ={})
    payments = config.schedule("payments-primary")
    search = config.schedule("search-primary")
    assert payments is not None and search is not None
    assert config.schedule("nope") is None and config.escalation_policy("nope") is None
    assert config.schedules_for_team("payments") == (payments,)
    assert config.schedules_for_team("nope") == ()
    assert search.rotation.start == datetime(2026, 11, 2, 21, 30)  # an unquoted YAML timestamp
    assert search.rotation.length == timedelta(hours=12) == search.rotation.shift_length
    assert payments.rotation.length is None
    assert payments.rotation.shift_length == timedelta(days=7)
    assert payments.zone.key == "Europe/Berlin"
    # a service's policy wins over its team's; otherwise the team's; unknown service: None
    assert config.policy_for_service("payment-api").id == "payments-default"  # type: ignore[union-attr]
    assert config.policy_for_service("search-api").id == "search-default"  # type: ignore[union-attr]
    assert config.policy_for_service("nope") is None
    assert parse_config(VALID, environ={}).policy_for_service("payment-api") is None
    policy = config.escalation_policy("payments-default")
    assert policy is not None and policy.repeat == 1
    assert policy.levels[1].delay == timedelta(seconds=10)
    assert [t.kind for t in policy.levels[1].targets] == ["user", "user_group"]
    assert policy.levels[0].targets[0].kind == "schedule"
    assert config.escalation_policy("search-default").repeat == 0  # type: ignore[union-attr]
    # handoff messages: the schedule's channel, else its team's channel (None when neither)
    assert config.handoff_channel_for("search-primary") == "#search-oncall"
    assert config.handoff_channel_for("payments-primary") == "C0PAYMENTS"
    assert config.handoff_channel_for("nope") is None
    # the calendar feed: the token, a variable holding it, or disabled
    assert payments.resolve_ics_token({}) == "ics-secret"
    assert search.resolve_ics_token({}) is None
    assert "ics-secret" not in repr(config)


def test_ics_token_env_is_resolved_from_the_given_environ() -> None:
    text = ONCALL.replace('ics_token: "ics-secret"', "ics_token_env: PAY_ICS")
    config = parse_config(text, environ={"PAY_ICS": "s3cret"})
    schedule = config.schedule("payments-primary")
    assert schedule is not None
    assert schedule.resolve_ics_token({"PAY_ICS": "s3cret"}) == "s3cret"
    with pytest.raises(ConfigError, match="PAY_ICS"):
        schedule.resolve_ics_token({})


def test_oncall_models_validate_when_built_directly() -> None:
    with pytest.raises(ValueError, match="set exactly one of schedule, user or user_group"):
        EscalationTarget.model_validate({"schedule": "a", "user": "U0ALICE01"})
    with pytest.raises(ValueError, match="required when type is custom"):
        RotationConfig.model_validate(
            {"type": "custom", "start": "2026-11-02T09:00:00", "participants": ["U0ALICE01"]}
        )


def test_incidents_section_accepts_durations_and_words() -> None:
    text = VALID + "incidents:\n  default_severity: critical\n  idempotency_ttl: 1h30m\n"
    config = parse_config(text, environ={})
    assert config.incidents.default_severity is Severity.SEV1
    assert config.incidents.idempotency_ttl == timedelta(minutes=90)


def test_token_env_is_resolved_from_the_given_environ() -> None:
    text = VALID.replace('token: "change-me"', "token_env: PROM_TOKEN")
    config = parse_config(text, environ={"PROM_TOKEN": "s3cret"})
    integration = config.integration("prometheus")
    assert integration is not None
    assert integration.resolve_token({"PROM_TOKEN": "s3cret"}) == "s3cret"
    with pytest.raises(ConfigError, match="PROM_TOKEN"):
        integration.resolve_token({})


def test_config_is_frozen_and_tokens_are_secret() -> None:
    config = parse_config(VALID, environ={})
    with pytest.raises(ValueError):
        config.slack.channel_prefix = "x"  # type: ignore[misc]
    assert "change-me" not in repr(config)


def test_models_cross_check_when_built_directly() -> None:
    with pytest.raises(ValueError, match="unknown team"):
        PulseOpsConfig.model_validate(
            {
                "slack": {"incidents_channel": "C0INCIDENT"},
                "services": [{"id": "a", "name": "A", "team": "ghost"}],
            }
        )
    with pytest.raises(ValueError, match="exactly one of token or token_env"):
        IntegrationConfig.model_validate(
            {"name": "x", "type": "generic", "token": "a", "token_env": "B"}
        )


# --------------------------------------------------------------------------- problems


def test_unknown_key_names_line_and_path() -> None:
    text = VALID.replace("    name: Payments\n", "    name: Payments\n    colour: red\n")
    assert problems(text) == [
        f"pulseops.yml:{line_of(text, 'colour')}: teams[0].colour: unknown key"
    ]


def test_unknown_team() -> None:
    text = VALID.replace("team: search", "team: serch")
    assert problems(text) == [
        f"pulseops.yml:{line_of(text, 'serch')}: services[1].team: "
        "unknown team 'serch' (known: payments, search)"
    ]


def test_unknown_service_on_integration() -> None:
    text = VALID.replace("service: payment-api", "service: payments-api")
    assert problems(text) == [
        f"pulseops.yml:{line_of(text, 'payments-api')}: integrations[0].service: "
        "unknown service 'payments-api' (known: payment-api, search-api)"
    ]


def test_duplicate_id() -> None:
    text = VALID.replace("  - id: search\n", "  - id: payments\n").replace(
        "team: search", "team: payments"
    )
    assert problems(text) == [
        "pulseops.yml:8: teams[1].id: duplicate team id 'payments' (first at teams[0])"
    ]


@pytest.mark.parametrize(
    "replacement",
    ["", 'token: "change-me"\n    token_env: PROM_TOKEN'],
    ids=["neither", "both"],
)
def test_exactly_one_token(replacement: str) -> None:
    text = VALID.replace('token: "change-me"', replacement)
    assert problems(text, {"PROM_TOKEN": "x"}) == [
        f"pulseops.yml:{line_of(text, 'name: prometheus')}: integrations[0]: "
        "set exactly one of token or token_env"
    ]


def test_unset_token_env() -> None:
    text = VALID.replace('token: "change-me"', "token_env: PROM_TOKEN")
    assert problems(text, {}) == [
        f"pulseops.yml:{line_of(text, 'PROM_TOKEN')}: integrations[0].token_env: "
        "environment variable PROM_TOKEN is not set"
    ]


ONCALL_PROBLEMS = [
    # (id, replace this, with this, the line's needle, "path: message")
    (
        "schedule-unknown-team",
        "    team: search\n    time_zone",
        "    team: serch\n    time_zone",
        "team: serch",
        "schedules[1].team: unknown team 'serch' (known: payments, search)",
    ),
    (
        "bad-time-zone",
        "Europe/Berlin",
        "Europe/Berln",
        "Europe/Berln",
        "schedules[0].time_zone: unknown time zone 'Europe/Berln': use an IANA name such as "
        "Europe/Berlin, America/New_York or UTC",
    ),
    (
        "time-zone-case",
        "Europe/Berlin",
        "europe/berlin",
        "europe/berlin",
        "schedules[0].time_zone: unknown time zone 'europe/berlin': did you mean 'Europe/Berlin'?",
    ),
    (
        "start-with-offset",
        '"2026-11-02T09:00:00"',
        '"2026-11-02T09:00:00+01:00"',
        "+01:00",
        "schedules[0].rotation.start: '2026-11-02T09:00:00+01:00' has a UTC offset; write local "
        'time without one (it is read in the schedule\'s time_zone), e.g. "2026-11-02T09:00:00"',
    ),
    (
        "start-in-utc",
        "2026-11-02 21:30:00",
        "2026-11-02T21:30:00Z",
        "21:30:00Z",
        "schedules[1].rotation.start: '2026-11-02T21:30:00+00:00' has a UTC offset; write local "
        'time without one (it is read in the schedule\'s time_zone), e.g. "2026-11-02T09:00:00"',
    ),
    (
        "start-without-time",
        '"2026-11-02T09:00:00"',
        "2026-11-02",
        "start: 2026-11-02",
        "schedules[0].rotation.start: '2026-11-02' needs a time of day (the handoff time) too",
    ),
    (
        "start-in-dst-gap",
        '"2026-11-02T09:00:00"',
        '"2026-03-29T02:30:00"',
        "2026-03-29",
        "schedules[0].rotation.start: 2026-03-29T02:30:00 does not exist in Europe/Berlin "
        "(the clocks skip it for daylight saving time); pick another time",
    ),
    (
        "custom-without-length",
        "    rotation:\n      type: custom\n      length: 12h\n",
        "    rotation:  # custom\n      type: custom\n",
        "# custom",
        "schedules[1].rotation.length: required when type is custom: how long one shift lasts, "
        "e.g. 12h or 3d",
    ),
    (
        "length-on-weekly",
        "      type: weekly\n",
        "      type: weekly\n      length: 12h\n",
        "length: 12h",
        "schedules[0].rotation.length: only used when type is custom (weekly shifts last 7 days); "
        "remove it or set type: custom",
    ),
    (
        "unknown-rotation-type",
        "type: weekly",
        "type: monthly",
        "monthly",
        "schedules[0].rotation.type: Input should be 'daily', 'weekly', 'biweekly' or 'custom' "
        "(got 'monthly')",
    ),
    (
        "empty-participants",
        'participants: ["U0CAROL01"]',
        "participants: []",
        "participants: []",
        "schedules[1].rotation.participants: must list at least one Slack user ID",
    ),
    (
        "duplicate-participant",
        'participants: ["U0ALICE01", "U0BOB0001"]',
        'participants: ["U0ALICE01", "U0BOB0001", "U0ALICE01"]',
        '"U0ALICE01", "U0BOB0001", "U0ALICE01"',
        "schedules[0].rotation.participants: 'U0ALICE01' appears more than once "
        "(each participant takes one turn per cycle)",
    ),
    (
        "duplicate-schedule-id",
        '    handoff_channel: "#search-oncall"\n',
        '    handoff_channel: "#search-oncall"\n'
        "  - id: payments-primary  # again\n"
        "    team: search\n"
        "    time_zone: UTC\n"
        '    rotation: {type: daily, start: "2026-11-02T09:00:00", participants: ["U0CAROL01"]}\n',
        "# again",
        "schedules[2].id: duplicate schedule id 'payments-primary' (first at schedules[0])",
    ),
    (
        "both-ics-tokens",
        '    ics_token: "ics-secret"\n',
        '    ics_token: "ics-secret"\n    ics_token_env: PAY_ICS\n',
        "PAY_ICS",
        "schedules[0].ics_token_env: set at most one of ics_token or ics_token_env",
    ),
    (
        "user-group-handle",
        '"S0PAYONCAL"\n    ics',
        '"@payments-oncall"\n    ics',
        "@payments-oncall",
        "schedules[0].user_group: invalid user group '@payments-oncall': use a user group ID "
        "such as S0PAYONCAL, not its @handle (the ID is in the group's URL)",
    ),
    (
        "user-group-on-two-schedules",
        '    handoff_channel: "#search-oncall"\n',
        '    handoff_channel: "#search-oncall"\n    user_group: "S0PAYONCAL"  # taken\n',
        "# taken",
        "schedules[1].user_group: user group 'S0PAYONCAL' is already kept in sync by "
        "schedules[0]; two schedules would overwrite each other's members",
    ),
    (
        "target-with-two-kinds",
        '{user: "U0BOB0001"}',
        '{user: "U0BOB0001", schedule: payments-primary}',
        'U0BOB0001", schedule',
        "escalation_policies[0].levels[1].targets[0]: set exactly one of schedule, user or "
        "user_group (got schedule and user)",
    ),
    (
        "target-unknown-schedule",
        "{schedule: search-primary}",
        "{schedule: search-primry}",
        "search-primry",
        "escalation_policies[1].levels[0].targets[0].schedule: unknown schedule "
        "'search-primry' (known: payments-primary, search-primary)",
    ),
    (
        "level-without-targets",
        "targets: [{schedule: search-primary}]",
        "targets: []",
        "targets: []",
        "escalation_policies[1].levels[0].targets: must list at least one target",
    ),
    (
        "negative-repeat",
        "repeat: 1",
        "repeat: -1",
        "repeat: -1",
        "escalation_policies[0].repeat: Input should be greater than or equal to 0",
    ),
    (
        "unknown-policy-on-team",
        "    name: Payments\n    escalation_policy: payments-default\n",
        "    name: Payments\n    escalation_policy: payments-dflt\n",
        "payments-dflt",
        "teams[0].escalation_policy: unknown escalation policy 'payments-dflt' "
        "(known: payments-default, search-default)",
    ),
    (
        "unknown-policy-on-service",
        "    escalation_policy: search-default\n",
        "    escalation_policy: search-dflt\n",
        "search-dflt",
        "services[1].escalation_policy: unknown escalation policy 'search-dflt' "
        "(known: payments-default, search-default)",
    ),
    (
        "duplicate-policy-id",
        "        targets: [{schedule: search-primary}]\n",
        "        targets: [{schedule: search-primary}]\n"
        "  - id: payments-default  # again\n"
        "    levels: [{delay: 1m, targets: [{user: U0ALICE01}]}]\n",
        "# again",
        "escalation_policies[2].id: duplicate escalation policy id 'payments-default' "
        "(first at escalation_policies[0])",
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "needle", "expected"),
    [case[1:] for case in ONCALL_PROBLEMS],
    ids=[case[0] for case in ONCALL_PROBLEMS],
)
def test_oncall_problems_name_line_and_field(
    old: str, new: str, needle: str, expected: str
) -> None:
    assert ONCALL.count(old) == 1
    text = ONCALL.replace(old, new)
    found = problems(text, {"PAY_ICS": "x"})
    assert f"pulseops.yml:{line_of(text, needle)}: {expected}" in found
    assert len(found) == 1, found


def test_unset_ics_token_env() -> None:
    text = ONCALL.replace('ics_token: "ics-secret"', "ics_token_env: PAY_ICS")
    assert problems(text, {}) == [
        f"pulseops.yml:{line_of(text, 'PAY_ICS')}: schedules[0].ics_token_env: "
        "environment variable PAY_ICS is not set"
    ]


def test_missing_required_key_points_at_its_parent() -> None:
    text = VALID.replace("    name: Search API\n", "")
    assert problems(text) == [
        f"pulseops.yml:{line_of(text, 'id: search-api')}: services[1].name: required key is missing"
    ]


def test_bad_values_are_all_reported_in_line_order() -> None:
    text = (
        VALID.replace('"C0INCIDENT"', '"not a channel"').replace('"U0BOB0001"', '"bob"')
        + "incidents:\n  idempotency_ttl: 5 minutes\n"
    )
    found = problems(text)
    assert [p.split(":")[1] for p in found] == ["2", "7", str(line_of(text, "5 minutes"))]
    assert "slack.incidents_channel: invalid channel 'not a channel'" in found[0]
    assert "teams[0].members: not Slack user IDs: 'bob'" in found[1]
    assert "incidents.idempotency_ttl: invalid duration '5 minutes'" in found[2]


def test_field_and_reference_problems_are_reported_together() -> None:
    text = (
        ONCALL.replace("team: search\n    escalation_policy", "team: serch\n    escalation_policy")
        .replace("service: payment-api", "service: payments-api\n    colour: red")
        .replace("targets: [{schedule: search-primary}]", "targets: [{schedule: search-2}]")
        .replace("      - delay: 10s\n", "      - delay: 10 seconds\n")
    )
    assert problems(text) == [
        f"pulseops.yml:{line_of(text, 'serch')}: services[1].team: "
        "unknown team 'serch' (known: payments, search)",
        f"pulseops.yml:{line_of(text, 'payments-api')}: integrations[0].service: "
        "unknown service 'payments-api' (known: payment-api, search-api)",
        f"pulseops.yml:{line_of(text, 'colour')}: integrations[0].colour: unknown key",
        f"pulseops.yml:{line_of(text, '10 seconds')}: escalation_policies[0].levels[1].delay: "
        "invalid duration '10 seconds': write a whole number and a unit s, m, h, d or w, "
        "e.g. 30s, 5m, 12h, 3d or 1h30m",
        f"pulseops.yml:{line_of(text, 'search-2')}: "
        "escalation_policies[1].levels[0].targets[0].schedule: "
        "unknown schedule 'search-2' (known: payments-primary, search-primary)",
    ]


def test_references_are_checked_in_entries_whose_other_fields_failed() -> None:
    text = VALID.replace("type: alertmanager", "type: nagios").replace(
        "service: payment-api", "service: nope"
    )
    line = line_of(text, "nope")
    assert problems(text)[1] == (
        f"pulseops.yml:{line}: integrations[0].service: "
        "unknown service 'nope' (known: payment-api, search-api)"
    )


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        # a reference to a team whose id is invalid is not called unknown as well
        (("  - id: payments\n", "  - id: Payments\n"), ["teams[0].id: invalid id 'Payments'"]),
        (("  - id: search\n", "  - id: [search]\n"), ["teams[1].id: Input should be a valid"]),
        (("  - id: search\n    name: Search\n", "  - search\n"), ["teams[1]: must be a mapping"]),
        (("teams:\n", "teams: 5\nold_teams:\n"), ["teams: must be a list", "old_teams: unknown"]),
        # a reference of the wrong shape is reported once, by its own field
        (("team: search", "team: [search]"), ["services[1].team: Input should be a valid string"]),
        # an invalid variable name is not looked up
        (('token: "change-me"', "token_env: 1BAD"), ["integrations[0].token_env: invalid env"]),
        # duplicates are only counted among valid ids
        (("  - id: search-api\n", "  - id: Payment-api\n"), ["services[1].id: invalid id"]),
    ],
    ids=[
        "bad-id",
        "id-not-text",
        "entry-not-mapping",
        "section-not-list",
        "ref-not-text",
        "bad-env-name",
        "bad-duplicate",
    ],
)
def test_cross_checks_skip_what_failed_its_own_check(
    change: tuple[str, str], expected: list[str]
) -> None:
    assert change[0] in VALID
    found = problems(VALID.replace(change[0], change[1], 1))
    assert len(found) == len(expected), found
    for problem, start in zip(found, expected, strict=True):
        assert problem.split(": ", 1)[1].startswith(start), found


def test_unknown_integration_type_lists_the_accepted_ones() -> None:
    text = VALID.replace("type: alertmanager", "type: nagios")
    (problem,) = problems(text)
    assert problem.startswith(f"pulseops.yml:{line_of(text, 'nagios')}: integrations[0].type: ")
    accepted = "'pagerduty', 'opsgenie', 'grafana', 'datadog' or 'slack-webhook'"
    assert accepted in problem and "'nagios'" in problem


def test_duplicate_yaml_key() -> None:
    text = VALID + "slack:\n  incidents_channel: C0OTHER\n"
    assert problems(text) == [
        f"pulseops.yml:{line_of(text, 'C0OTHER') - 1}: slack: duplicate key (first at line 1)"
    ]


def test_invalid_yaml_names_its_line() -> None:
    text = VALID.replace("    name: Search\n", "    name: [Search\n")
    (problem,) = problems(text)
    assert problem.startswith("pulseops.yml:")
    assert "invalid YAML" in problem
    assert int(problem.split(":")[1]) >= line_of(text, "[Search")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "pulseops.yml:1: the file is empty"),
        ("- a\n- b\n", "pulseops.yml:1: the top level must be a mapping of sections, not a list"),
        ("teams: []\n", "pulseops.yml:1: slack: required key is missing"),
    ],
)
def test_structural_problems(text: str, expected: str) -> None:
    (problem,) = problems(text)
    assert problem.startswith(expected)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yml"
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert info.value.problems == [f"{path}: file not found"]


# --------------------------------------------------------------------------- config check


def test_config_check_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert config_check(EXAMPLE_CONFIG_PATH, {}) == 0
    assert capsys.readouterr().out == (
        "OK: 2 teams, 3 services, 7 integrations, 2 schedules, 2 escalation policies, "
        "1 workflow, 1 SLO\n"
    )


def test_config_check_reports_every_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "pulseops.yml"
    path.write_text(
        VALID.replace("team: search", "team: serch").replace("    name: Payments\n", "    nme: P\n")
    )
    assert config_check(path, {}) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "teams[0].nme: unknown key" in captured.err
    assert "teams[0].name: required key is missing" in captured.err
    assert "services[1].team: unknown team 'serch'" in captured.err


def test_config_check_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert config_check(tmp_path / "absent.yml", {}) == 2
    assert "file not found" in capsys.readouterr().err


# --------------------------------------------------------------------------- environment


def test_settings_defaults_and_env_names(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "SLACK_API_URL"):
        monkeypatch.delenv(name, raising=False)
    for name in ("DATABASE_URL", "CONFIG", "HOST", "PORT", "LOG_FORMAT", "LOG_LEVEL"):
        monkeypatch.delenv(f"PULSEOPS_{name}", raising=False)
    settings = Settings()
    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings.database_url == "sqlite+aiosqlite:///pulseops.db"
    assert settings.config_path == Path("pulseops.yml")
    assert (settings.host, settings.port) == ("0.0.0.0", 3000)
    assert (settings.log_format, settings.log_level) == ("json", "INFO")

    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.setenv("SLACK_API_URL", "http://127.0.0.1:8900/api")
    monkeypatch.setenv("PULSEOPS_PORT", "8080")
    monkeypatch.setenv("PULSEOPS_CONFIG", "/etc/pulseops.yml")
    settings = Settings()
    assert settings.slack_bot_token is not None
    assert settings.slack_bot_token.get_secret_value() == "xoxb-1"
    assert settings.slack_api_url == "http://127.0.0.1:8900/api/"
    assert settings.port == 8080
    assert settings.config_path == Path("/etc/pulseops.yml")


def test_load_settings_reads_only_the_given_mapping(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULSEOPS_PORT", "1234")
    settings = load_settings({"PULSEOPS_HOST": "127.0.0.1"})
    assert (settings.host, settings.port) == ("127.0.0.1", 3000)
    with pytest.raises(ConfigError) as info:
        load_settings({"PULSEOPS_PORT": "many", "PULSEOPS_LOG_FORMAT": "xml"})
    assert [p.split(":")[0] for p in info.value.problems] == [
        "PULSEOPS_PORT",
        "PULSEOPS_LOG_FORMAT",
    ]


@pytest.mark.parametrize(
    ("environ", "missing"),
    [
        ({}, ["SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"]),
        ({"SLACK_BOT_TOKEN": "xoxb-1"}, ["SLACK_SIGNING_SECRET"]),
        ({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"}, []),
        ({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1"}, []),
        ({"SLACK_APP_TOKEN": "xapp-1"}, ["SLACK_BOT_TOKEN"]),
    ],
)
def test_require_for_serve(environ: dict[str, str], missing: list[str]) -> None:
    settings = load_settings(environ)
    if not missing:
        settings.require_for_serve()
        return
    with pytest.raises(ConfigError) as info:
        settings.require_for_serve()
    assert [p.split()[0] for p in info.value.problems] == missing


# --------------------------------------------------------------------------- durations


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("12h", timedelta(hours=12)),
        ("3d", timedelta(days=3)),
        ("1w", timedelta(weeks=1)),
        ("1h30m", timedelta(minutes=90)),
        ("2d12h", timedelta(hours=60)),
        (" 90s ", timedelta(seconds=90)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "0s", "0h0m", "-5m", "5", "5x", "1.5h", "m", "30m1h", "1h 30m"]
)
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="30s, 5m, 12h, 3d"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["30s", "5m", "12h", "3d", "1w", "1h30m", "2d12h", "1w3d4h5m6s"])
def test_format_duration_round_trips(text: str) -> None:
    assert format_duration(parse_duration(text)) == text


def test_wrong_shapes_are_explained_in_yaml_terms() -> None:
    text = "slack: C0INCIDENT\nteams: {id: payments}\n"
    assert problems(text) == [
        "pulseops.yml:1: slack: must be a mapping of keys to values",
        "pulseops.yml:2: teams: must be a list (one '- ' item per entry)",
    ]
