"""The whole YAML file: `PulseOpsConfig`, its cross-checks, loading and `config check`."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Self

from pydantic import PrivateAttr, ValidationInfo, model_validator

from bot.config.checks import _Frozen
from bot.config.models import (
    IncidentsConfig,
    IntegrationConfig,
    ReportsConfig,
    ServiceConfig,
    SlackConfig,
    TeamConfig,
)
from bot.config.oncall import EscalationPolicyConfig, ScheduleConfig
from bot.config.yaml import Loc, Problems, validate_yaml
from bot.errors import ConfigError

EXAMPLE_CONFIG_PATH = Path(__file__).parents[1] / "examples" / "pulseops.yml"
"""The commented example configuration shipped with the package (also used by the sandbox)."""


class PulseOpsConfig(_Frozen):
    """The whole YAML configuration, cross-checked (unique ids, references that resolve)."""

    slack: SlackConfig
    teams: tuple[TeamConfig, ...] = ()
    services: tuple[ServiceConfig, ...] = ()
    integrations: tuple[IntegrationConfig, ...] = ()
    incidents: IncidentsConfig = IncidentsConfig()
    schedules: tuple[ScheduleConfig, ...] = ()
    escalation_policies: tuple[EscalationPolicyConfig, ...] = ()
    reports: ReportsConfig = ReportsConfig()

    _teams: dict[str, TeamConfig] = PrivateAttr(default_factory=dict)
    _services: dict[str, ServiceConfig] = PrivateAttr(default_factory=dict)
    _integrations: dict[str, IntegrationConfig] = PrivateAttr(default_factory=dict)
    _schedules: dict[str, ScheduleConfig] = PrivateAttr(default_factory=dict)
    _policies: dict[str, EscalationPolicyConfig] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _cross_check(self, info: ValidationInfo) -> Self:
        environ = info.context.get("environ") if isinstance(info.context, dict) else None
        problems = [
            *_duplicate_problems(self),
            *_reference_problems(self),
            *_environment_problems(self, environ),
        ]
        if problems:
            raise Problems(problems)
        return self

    def model_post_init(self, context: Any) -> None:
        """Index every section by id for the lookup helpers."""
        self._teams = {t.id: t for t in self.teams}
        self._services = {s.id: s for s in self.services}
        self._integrations = {i.name: i for i in self.integrations}
        self._schedules = {s.id: s for s in self.schedules}
        self._policies = {p.id: p for p in self.escalation_policies}

    def team(self, team_id: str) -> TeamConfig | None:
        """The team with this id, or None."""
        return self._teams.get(team_id)

    def service(self, service_id: str) -> ServiceConfig | None:
        """The service with this id, or None."""
        return self._services.get(service_id)

    def integration(self, name: str) -> IntegrationConfig | None:
        """The integration with this name, or None."""
        return self._integrations.get(name)

    def schedule(self, schedule_id: str) -> ScheduleConfig | None:
        """The schedule with this id, or None."""
        return self._schedules.get(schedule_id)

    def escalation_policy(self, policy_id: str) -> EscalationPolicyConfig | None:
        """The escalation policy with this id, or None."""
        return self._policies.get(policy_id)

    def team_for_service(self, service_id: str) -> TeamConfig | None:
        """The team owning this service, or None when the service is unknown."""
        service = self.service(service_id)
        return None if service is None else self.team(service.team)

    def policy_for_service(self, service_id: str) -> EscalationPolicyConfig | None:
        """The service's escalation policy, else its team's, else None (also for unknown ids)."""
        service = self.service(service_id)
        if service is None:
            return None
        team = self.team(service.team)
        policy_id = service.escalation_policy or (team.escalation_policy if team else None)
        return None if policy_id is None else self.escalation_policy(policy_id)

    def schedules_for_team(self, team_id: str) -> tuple[ScheduleConfig, ...]:
        """The team's schedules, in file order."""
        return tuple(s for s in self.schedules if s.team == team_id)

    def report_schedule(self, team_id: str | None) -> tuple[str, str]:
        """(cron, time zone) of the weekly report of a team (None: the overall report)."""
        team = self.team(team_id) if team_id is not None else None
        cron = (team.report_cron if team else None) or self.reports.cron
        zone = (team.report_time_zone if team else None) or self.reports.time_zone
        return cron, zone

    def handoff_channel_for(self, schedule_id: str) -> str | None:
        """Where handoff messages go: the schedule's handoff_channel, else its team's channel."""
        schedule = self.schedule(schedule_id)
        if schedule is None:
            return None
        if schedule.handoff_channel is not None:
            return schedule.handoff_channel
        team = self.team(schedule.team)
        return None if team is None else team.channel


def _duplicate_problems(config: PulseOpsConfig) -> Iterator[tuple[Loc, str]]:
    for section, key, what in (
        ("teams", "id", "team id"),
        ("services", "id", "service id"),
        ("integrations", "name", "integration name"),
        ("schedules", "id", "schedule id"),
        ("escalation_policies", "id", "escalation policy id"),
    ):
        first: dict[str, int] = {}
        for i, item in enumerate(getattr(config, section)):
            value = getattr(item, key)
            if value in first:
                yield (
                    (section, i, key),
                    f"duplicate {what} {value!r} (first at {section}[{first[value]}])",
                )
            else:
                first[value] = i
    groups: dict[str, int] = {}
    for i, schedule in enumerate(config.schedules):
        if schedule.user_group is None:
            continue
        if schedule.user_group in groups:
            yield (
                ("schedules", i, "user_group"),
                f"user group {schedule.user_group!r} is already kept in sync by "
                f"schedules[{groups[schedule.user_group]}]; two schedules would overwrite "
                "each other's members",
            )
        else:
            groups[schedule.user_group] = i


def _reference_problems(config: PulseOpsConfig) -> Iterator[tuple[Loc, str]]:
    team_ids = [t.id for t in config.teams]
    service_ids = [s.id for s in config.services]
    schedule_ids = [s.id for s in config.schedules]
    policy_ids = [p.id for p in config.escalation_policies]

    def unknown(what: str, value: str, known: list[str]) -> str:
        return f"unknown {what} {value!r} ({_known(known)})"

    for i, team in enumerate(config.teams):
        if team.escalation_policy is not None and team.escalation_policy not in policy_ids:
            problem = unknown("escalation policy", team.escalation_policy, policy_ids)
            yield (("teams", i, "escalation_policy"), problem)
    for i, service in enumerate(config.services):
        if service.team not in team_ids:
            yield (("services", i, "team"), unknown("team", service.team, team_ids))
        if service.escalation_policy is not None and service.escalation_policy not in policy_ids:
            problem = unknown("escalation policy", service.escalation_policy, policy_ids)
            yield (("services", i, "escalation_policy"), problem)
    for i, integration in enumerate(config.integrations):
        if integration.service is not None and integration.service not in service_ids:
            problem = unknown("service", integration.service, service_ids)
            yield (("integrations", i, "service"), problem)
    for i, schedule in enumerate(config.schedules):
        if schedule.team not in team_ids:
            yield (("schedules", i, "team"), unknown("team", schedule.team, team_ids))
    for i, policy in enumerate(config.escalation_policies):
        for j, level in enumerate(policy.levels):
            for k, target in enumerate(level.targets):
                if target.schedule is not None and target.schedule not in schedule_ids:
                    loc = ("escalation_policies", i, "levels", j, "targets", k, "schedule")
                    yield (loc, unknown("schedule", target.schedule, schedule_ids))


def _environment_problems(
    config: PulseOpsConfig, environ: Mapping[str, str] | None
) -> Iterator[tuple[Loc, str]]:
    """Unset `token_env` / `ics_token_env` variables (skipped when no environment is given)."""
    if environ is None:
        return
    for section, key in (("integrations", "token_env"), ("schedules", "ics_token_env")):
        for i, item in enumerate(getattr(config, section)):
            name = getattr(item, key)
            if name and not environ.get(name):
                yield ((section, i, key), f"environment variable {name} is not set")


def _known(ids: list[str]) -> str:
    return f"known: {', '.join(sorted(set(ids)))}" if ids else "none are configured"


# --------------------------------------------------------------------------- loading


def load_config(path: Path, *, environ: Mapping[str, str] | None = None) -> PulseOpsConfig:
    """Read and validate the YAML file at `path`; raise ConfigError with one line per problem.

    `environ` (default os.environ) is where `token_env` and `ics_token_env` variables must be set.
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{source}: file not found"]) from None
    except IsADirectoryError:
        raise ConfigError([f"{source}: is a directory, not a YAML file"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{source}: not UTF-8 text ({exc.reason})"]) from None
    except OSError as exc:
        raise ConfigError([f"{source}: cannot read: {exc.strerror or exc}"]) from None
    return parse_config(text, source=source, environ=environ)


def parse_config(
    text: str, *, source: str = "<string>", environ: Mapping[str, str] | None = None
) -> PulseOpsConfig:
    """Validate YAML text as PulseOps configuration; raise ConfigError with `source:line:` lines."""
    env = os.environ if environ is None else environ
    return validate_yaml(text, PulseOpsConfig, source=source, context={"environ": env})


def config_check(path: Path, environ: Mapping[str, str] | None = None) -> int:
    """Run `pulseops config check FILE`: print a summary and return 0, or the problems and 2."""
    try:
        config = load_config(path, environ=environ)
    except ConfigError as exc:
        for problem in exc.problems:
            sys.stderr.write(problem + "\n")
        return 2
    counts = (
        _plural(len(config.teams), "team"),
        _plural(len(config.services), "service"),
        _plural(len(config.integrations), "integration"),
        _plural(len(config.schedules), "schedule"),
        _plural(len(config.escalation_policies), "escalation policy", "escalation policies"),
    )
    sys.stdout.write(f"OK: {', '.join(counts)}\n")
    return 0


def _plural(n: int, noun: str, plural: str | None = None) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {plural or noun + 's'}"
