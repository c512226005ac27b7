"""The whole YAML file: `PulseOpsConfig`, its cross-checks, loading and `config check`."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator, Mapping, Set
from pathlib import Path
from typing import Any, Self

from pydantic import (
    BaseModel,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from bot.config.api import ApiConfig, ApiTokenConfig, PermissionsConfig
from bot.config.checks import _Frozen
from bot.config.collab import CollaborationConfig
from bot.config.events import EventSinkConfig
from bot.config.health import HealthConfig, WatchdogConfig
from bot.config.heartbeats import HEARTBEAT_INTEGRATION, HeartbeatConfig
from bot.config.maintenance import MaintenanceWindowConfig
from bot.config.models import (
    IncidentsConfig,
    IntegrationConfig,
    ReportsConfig,
    ServiceConfig,
    SlackConfig,
    TeamConfig,
)
from bot.config.oncall import EscalationPolicyConfig, ScheduleConfig
from bot.config.paging import ContactConfig, NotificationsConfig
from bot.config.probes import PROBE_INTEGRATION, ProbeConfig, ProbeRunnerConfig
from bot.config.routing import ClassifierConfig, RouteConfig, rules_of
from bot.config.slos import SLO_INTEGRATION, SourceSloConfig
from bot.config.workflows import WorkflowConfig
from bot.config.yaml import Loc, Problems, expand, validate_yaml
from bot.domain.matchers import Matcher, MatcherError, MatchOp, parse_matcher
from bot.domain.routing import Ownership, route
from bot.domain.rules import Rules
from bot.errors import ConfigError

_HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,252})|[0-9A-Fa-f:.]{2,45}")
"""A host name, an IPv4 address or an IPv6 address (without brackets)."""

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
    api_tokens: tuple[ApiTokenConfig, ...] = ()
    api: ApiConfig = ApiConfig()
    permissions: PermissionsConfig = PermissionsConfig()
    collaboration: CollaborationConfig = CollaborationConfig()
    maintenance_windows: tuple[MaintenanceWindowConfig, ...] = ()
    contacts: tuple[ContactConfig, ...] = ()
    notifications: NotificationsConfig = NotificationsConfig()
    workflows: tuple[WorkflowConfig, ...] = ()
    event_sinks: tuple[EventSinkConfig, ...] = Field(default=(), max_length=20)
    allowed_hosts: tuple[str, ...] = ()  # private or loopback hosts outgoing calls may reach
    heartbeats: tuple[HeartbeatConfig, ...] = ()
    routes: tuple[RouteConfig, ...] = ()
    classifier: ClassifierConfig = ClassifierConfig()
    probes: tuple[ProbeConfig, ...] = Field(default=(), max_length=5000)
    probe_runner: ProbeRunnerConfig = ProbeRunnerConfig()
    slos: tuple[SourceSloConfig, ...] = Field(default=(), max_length=1000)
    health: HealthConfig = HealthConfig()
    watchdog: WatchdogConfig | None = None

    _rules: Rules = PrivateAttr(default_factory=Rules)
    _teams: dict[str, TeamConfig] = PrivateAttr(default_factory=dict)
    _services: dict[str, ServiceConfig] = PrivateAttr(default_factory=dict)
    _integrations: dict[str, IntegrationConfig] = PrivateAttr(default_factory=dict)
    _schedules: dict[str, ScheduleConfig] = PrivateAttr(default_factory=dict)
    _policies: dict[str, EscalationPolicyConfig] = PrivateAttr(default_factory=dict)
    _contacts: dict[str, ContactConfig] = PrivateAttr(default_factory=dict)
    _workflows: dict[str, WorkflowConfig] = PrivateAttr(default_factory=dict)
    _heartbeats: dict[str, HeartbeatConfig] = PrivateAttr(default_factory=dict)
    _probes: dict[str, ProbeConfig] = PrivateAttr(default_factory=dict)
    _slos: dict[str, SourceSloConfig] = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _cross_check(
        cls, data: Any, handler: ModelWrapValidatorHandler[Self], info: ValidationInfo
    ) -> Self:
        """Unique ids, references that resolve and set environment variables, checked even
        when some fields failed: one run reports both kinds of problem.

        With field errors there is no model to check, so the raw data is checked instead,
        skipping every value that failed or has the wrong shape.
        """
        environ = info.context.get("environ") if isinstance(info.context, dict) else None
        try:
            config = handler(data)
        except ValidationError as exc:
            field_problems = list(expand(exc))
            failed = {loc for loc, _ in field_problems}
            cross = _cross_problems(data, environ, failed)
            if not cross:
                raise
            raise Problems([*field_problems, *cross]) from None
        problems = _cross_problems(config, environ, set())
        if problems:
            raise Problems(problems)
        return config

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [h for h in value if not _HOST.fullmatch(h)]
        if bad:
            raise ValueError(
                f"not host names or IP addresses: {', '.join(repr(h) for h in bad)} "
                "(write the host alone, e.g. remediator.internal or 10.0.0.5, no scheme or port)"
            )
        return tuple(h.lower() for h in value)

    def model_post_init(self, context: Any) -> None:
        """Index every section by id for the lookup helpers."""
        self._teams = {t.id: t for t in self.teams}
        self._services = {s.id: s for s in self.services}
        self._integrations = {i.name: i for i in self.integrations}
        self._schedules = {s.id: s for s in self.schedules}
        self._policies = {p.id: p for p in self.escalation_policies}
        self._contacts = {c.user: c for c in self.contacts}
        self._workflows = {w.id: w for w in self.workflows}
        self._heartbeats = {h.name: h for h in self.heartbeats}
        self._probes = {p.id: p for p in self.probes}
        self._slos = {s.id: s for s in self.slos}
        self._rules = rules_of(self.routes, self.classifier)

    @property
    def rules(self) -> Rules:
        """The routes and the classifier, ready to decide (`bot.domain.rules`)."""
        return self._rules

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

    def contact(self, user: str) -> ContactConfig | None:
        """The person's contact methods and rules from the config, or None."""
        return self._contacts.get(user)

    def workflow(self, workflow_id: str) -> WorkflowConfig | None:
        """The workflow with this id, or None."""
        return self._workflows.get(workflow_id)

    def heartbeat(self, name: str) -> HeartbeatConfig | None:
        """The heartbeat with this name, or None."""
        return self._heartbeats.get(name)

    def probe(self, probe_id: str) -> ProbeConfig | None:
        """The probe with this id, or None."""
        return self._probes.get(probe_id)

    def slo(self, slo_id: str) -> SourceSloConfig | None:
        """The SLO (over an alert source) with this id, or None."""
        return self._slos.get(slo_id)

    def team_for_service(self, service_id: str) -> TeamConfig | None:
        """The team owning this service, or None when the service is unknown."""
        owner = self._route(service_id)
        return self.team(owner.team_id) if owner.service_id and owner.team_id else None

    def policy_for_service(self, service_id: str) -> EscalationPolicyConfig | None:
        """The service's escalation policy, else its team's, else None (also for unknown ids)."""
        owner = self._route(service_id)
        return (
            self.escalation_policy(owner.policy_id)
            if owner.service_id and owner.policy_id
            else None
        )

    def _route(self, service_id: str) -> Ownership:
        from bot.config.directory import directory_of  # it builds on this module

        return route(directory_of(self), service_id=service_id)

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


# The cross-checks read a validated PulseOpsConfig or, when some fields failed, the raw YAML
# data: `_entries` and `_text` give the same view of both, and `failed` holds the locations
# whose own validation failed (not checked again, so one mistake is reported once).

Source = object  # a PulseOpsConfig, one of its models, or raw YAML data


def _entries(source: Source, key: str) -> list[object]:
    """The items of the list under `key` ([] when it is absent or not a list)."""
    value = source.get(key) if isinstance(source, Mapping) else getattr(source, key, None)
    return list(value) if isinstance(value, list | tuple) else []


def _text(item: Source, key: str) -> str | None:
    """The string under `key` of one item (None when absent or not a string)."""
    if isinstance(item, Mapping):
        value = item.get(key)
    else:
        value = getattr(item, key, None) if isinstance(item, BaseModel) else None
    return value if isinstance(value, str) else None


def _values(source: Source, section: str, key: str, failed: Set[Loc]) -> Iterator[tuple[int, str]]:
    """(index, value) of every string `key` in `section` whose own validation passed."""
    for i, item in enumerate(_entries(source, section)):
        value = _text(item, key)
        if value is not None and (section, i, key) not in failed:
            yield i, value


def _cross_problems(
    source: Source, environ: Mapping[str, str] | None, failed: Set[Loc]
) -> list[tuple[Loc, str]]:
    return [
        *_duplicate_problems(source, failed),
        *_reference_problems(source, failed),
        *_environment_problems(source, environ, failed),
        *_paging_problems(source, environ, failed),
    ]


def _duplicate_problems(source: Source, failed: Set[Loc]) -> Iterator[tuple[Loc, str]]:
    for section, key, what in (
        ("teams", "id", "team id"),
        ("services", "id", "service id"),
        ("integrations", "name", "integration name"),
        ("schedules", "id", "schedule id"),
        ("escalation_policies", "id", "escalation policy id"),
        ("api_tokens", "name", "api token name"),
        ("maintenance_windows", "name", "maintenance window name"),
        ("workflows", "id", "workflow id"),
        ("heartbeats", "name", "heartbeat name"),
        ("routes", "name", "route name"),
        ("probes", "id", "probe id"),
        ("slos", "id", "slo id"),
    ):
        first: dict[str, int] = {}
        for i, value in _values(source, section, key, failed):
            if value in first:
                yield (
                    (section, i, key),
                    f"duplicate {what} {value!r} (first at {section}[{first[value]}])",
                )
            else:
                first[value] = i
    for i, name in _values(source, "integrations", "name", failed):
        if name == HEARTBEAT_INTEGRATION:
            yield (
                ("integrations", i, "name"),
                f"the integration name {name!r} is reserved for heartbeats' alerts",
            )
        if name == PROBE_INTEGRATION:
            yield (
                ("integrations", i, "name"),
                f"the integration name {name!r} is reserved for probes' alerts",
            )
        if name == SLO_INTEGRATION:
            yield (
                ("integrations", i, "name"),
                f"the integration name {name!r} is reserved for SLO burn alerts",
            )
    groups: dict[str, int] = {}
    for i, group in _values(source, "schedules", "user_group", failed):
        if group in groups:
            yield (
                ("schedules", i, "user_group"),
                f"user group {group!r} is already kept in sync by "
                f"schedules[{groups[group]}]; two schedules would overwrite "
                "each other's members",
            )
        else:
            groups[group] = i


def _reference_problems(source: Source, failed: Set[Loc]) -> Iterator[tuple[Loc, str]]:
    def ids(section: str) -> list[str] | None:
        """The section's ids; None when they are uncertain (the section, an entry or an id
        failed), so that a reference is not called unknown because of another mistake."""
        known = [value for _, value in _values(source, section, "id", failed)]
        if (section,) in failed or len(known) != len(_entries(source, section)):
            return None
        return known

    team_ids, service_ids = ids("teams"), ids("services")
    schedule_ids, policy_ids = ids("schedules"), ids("escalation_policies")

    def unknown(loc: Loc, what: str, value: str, known: list[str]) -> tuple[Loc, str]:
        return loc, f"unknown {what} {value!r} ({_known(known)})"

    for section, key, what, known in (
        ("teams", "escalation_policy", "escalation policy", policy_ids),
        ("services", "team", "team", team_ids),
        ("services", "escalation_policy", "escalation policy", policy_ids),
        ("integrations", "service", "service", service_ids),
        ("heartbeats", "service", "service", service_ids),
        ("probes", "service", "service", service_ids),
        ("slos", "service", "service", service_ids),
        ("schedules", "team", "team", team_ids),
        ("routes", "service", "service", service_ids),
    ):
        if known is None:
            continue
        for i, value in _values(source, section, key, failed):
            if value not in known:
                yield unknown((section, i, key), what, value, known)
    names = [value for _, value in _values(source, "integrations", "name", failed)]
    if ("integrations",) not in failed and len(names) == len(_entries(source, "integrations")):
        names += [PROBE_INTEGRATION, HEARTBEAT_INTEGRATION]  # their alerts are sources too
        for i, value in _values(source, "slos", "integration", failed):
            if value not in names:
                yield unknown(("slos", i, "integration"), "integration", value, names)
    if service_ids is not None:
        yield from _matcher_service_problems(source, failed, service_ids)
    if policy_ids is not None:
        for section in ("teams", "services"):
            for i, item in enumerate(_entries(source, section)):
                loc_base: Loc = (section, i, "escalation_policy_by_severity")
                by_severity = (
                    item.get("escalation_policy_by_severity")
                    if isinstance(item, Mapping)
                    else getattr(item, "escalation_policy_by_severity", None)
                )
                if not isinstance(by_severity, Mapping) or loc_base in failed:
                    continue
                for severity, policy_id in by_severity.items():
                    if isinstance(policy_id, str) and policy_id not in policy_ids:
                        yield unknown(
                            (*loc_base, str(severity)), "escalation policy", policy_id, policy_ids
                        )
    if schedule_ids is None:
        return
    for i, policy in enumerate(_entries(source, "escalation_policies")):
        for j, level in enumerate(_entries(policy, "levels")):
            for k, target in enumerate(_entries(level, "targets")):
                loc: Loc = ("escalation_policies", i, "levels", j, "targets", k, "schedule")
                schedule = _text(target, "schedule")
                if schedule is not None and loc not in failed and schedule not in schedule_ids:
                    yield unknown(loc, "schedule", schedule, schedule_ids)
    for i, workflow in enumerate(_entries(source, "workflows")):
        for j, step in enumerate(_entries(workflow, "steps")):
            page = step.get("page") if isinstance(step, Mapping) else getattr(step, "page", None)
            schedule = _text(page, "schedule") if page is not None else None
            loc = ("workflows", i, "steps", j, "page", "schedule")
            if schedule is not None and loc not in failed and schedule not in schedule_ids:
                yield unknown(loc, "schedule", schedule, schedule_ids)


def _matcher_service_problems(
    source: Source, failed: Set[Loc], service_ids: list[str]
) -> Iterator[tuple[Loc, str]]:
    """A maintenance window matcher `service="x"` naming a service that does not exist."""
    for i, window in enumerate(_entries(source, "maintenance_windows")):
        if ("maintenance_windows", i) in failed or (
            "maintenance_windows",
            i,
            "matchers",
        ) in failed:
            continue
        for j, matcher in enumerate(_entries(window, "matchers")):
            try:
                parsed = matcher if isinstance(matcher, Matcher) else parse_matcher(str(matcher))
            except MatcherError:
                continue
            if (
                parsed.name == "service"
                and parsed.op is MatchOp.EQ
                and parsed.value not in service_ids
            ):
                yield (
                    ("maintenance_windows", i, "matchers", j),
                    f"unknown service {parsed.value!r} in {str(parsed)!r} "
                    f"({_known(service_ids)}): the window would never mute anything",
                )


def _environment_problems(
    source: Source, environ: Mapping[str, str] | None, failed: Set[Loc]
) -> Iterator[tuple[Loc, str]]:
    """Unset `token_env` / `ics_token_env` / `metrics_token_env` / `watchdog.token_env`
    variables (skipped when no environment is given)."""
    if environ is None:
        return
    for section, key in (
        ("integrations", "token_env"),
        ("schedules", "ics_token_env"),
        ("api_tokens", "token_env"),
        ("heartbeats", "token_env"),
    ):
        for i, name in _values(source, section, key, failed):
            if not environ.get(name):
                yield ((section, i, key), f"environment variable {name} is not set")
    for i, workflow in enumerate(_entries(source, "workflows")):
        for j, step in enumerate(_entries(workflow, "steps")):
            hook = (
                step.get("webhook") if isinstance(step, Mapping) else getattr(step, "webhook", None)
            )
            secret_env = _text(hook, "secret_env") if hook is not None else None
            loc = ("workflows", i, "steps", j, "webhook", "secret_env")
            if secret_env and loc not in failed and not environ.get(secret_env):
                yield (loc, f"environment variable {secret_env} is not set")
    for i, name in _values(source, "event_sinks", "secret_env", failed):
        if not environ.get(name):
            yield (("event_sinks", i, "secret_env"), f"environment variable {name} is not set")
    for section, key in (("api", "metrics_token_env"), ("watchdog", "token_env")):
        entry = _section(source, section)
        env_name = _text(entry, key) if entry is not None else None
        if env_name and (section, key) not in failed and not environ.get(env_name):
            yield ((section, key), f"environment variable {env_name} is not set")


def _section(source: Source, key: str) -> object:
    return source.get(key) if isinstance(source, Mapping) else getattr(source, key, None)


def _paging_problems(
    source: Source, environ: Mapping[str, str] | None, failed: Set[Loc]
) -> Iterator[tuple[Loc, str]]:
    """Contacts once per person, each method's provider configured, provider variables set."""
    seen: dict[str, int] = {}
    for i, user in _values(source, "contacts", "user", failed):
        if user in seen:
            yield (
                ("contacts", i, "user"),
                f"duplicate contact {user!r} (first at contacts[{seen[user]}])",
            )
        else:
            seen[user] = i
    notifications = _section(source, "notifications")
    if ("notifications",) in failed:
        return
    providers = {
        "email": ("smtp", "notifications.smtp (an SMTP server)"),
        "sms": ("twilio", "notifications.twilio (a Twilio account)"),
        "voice": ("twilio", "notifications.twilio (a Twilio account)"),
    }
    public = _text(notifications, "public_url") if notifications is not None else None
    needs_public: set[str] = set()
    for i, contact in enumerate(_entries(source, "contacts")):
        for j, method in enumerate(_entries(contact, "methods")):
            kind = _text(method, "type")
            if kind not in providers or ("contacts", i, "methods", j) in failed:
                continue
            key, what = providers[kind]
            needs_public.add(kind)
            if notifications is None or _section(notifications, key) is None:
                yield (("contacts", i, "methods", j, "type"), f"a {kind} method needs {what}")
    if needs_public and public is None:
        kinds = ", ".join(sorted(needs_public))
        yield (
            ("notifications", "public_url"),
            f"required for {kinds} methods: the URL at which people's browsers and Twilio "
            "reach this service (acknowledge links and Twilio webhooks)",
        )
    if "email" in needs_public and (
        notifications is None or _text(notifications, "link_secret_env") is None
    ):
        yield (
            ("notifications", "link_secret_env"),
            "required for email methods: an environment variable holding the secret that "
            "signs acknowledge links",
        )
    if environ is None or notifications is None:
        return
    for loc, name in (
        (("notifications", "link_secret_env"), _text(notifications, "link_secret_env")),
        *(
            (("notifications", section, key), _text(_section(notifications, section), key))
            for section, keys in (
                ("smtp", ("username_env", "password_env")),
                ("twilio", ("account_sid_env", "auth_token_env")),
            )
            if _section(notifications, section) is not None
            for key in keys
        ),
    ):
        if name and loc not in failed and not environ.get(name):
            yield (loc, f"environment variable {name} is not set")


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
    counts: tuple[str, ...] = (
        _plural(len(config.teams), "team"),
        _plural(len(config.services), "service"),
        _plural(len(config.integrations), "integration"),
        _plural(len(config.schedules), "schedule"),
        _plural(len(config.escalation_policies), "escalation policy", "escalation policies"),
    )
    if config.workflows:
        counts += (_plural(len(config.workflows), "workflow"),)
    if config.probes:
        counts += (_plural(len(config.probes), "probe"),)
    if config.slos:
        counts += (_plural(len(config.slos), "SLO"),)
    sys.stdout.write(f"OK: {', '.join(counts)}\n")
    return 0


def _plural(n: int, noun: str, plural: str | None = None) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {plural or noun + 's'}"
