"""Who owns an incident: service → team → escalation policy, decided in one pure function."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.domain.incident import Severity


@dataclass(frozen=True, slots=True)
class ServiceEntry:
    """A service as routing sees it: its team, its own policy, whether monitors may resolve."""

    id: str
    team: str
    escalation_policy: str | None = None
    auto_resolve: bool = True
    policy_by_severity: Mapping[Severity, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TeamEntry:
    id: str
    escalation_policy: str | None = None
    policy_by_severity: Mapping[Severity, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Directory:
    """The services, teams and policy ids of a configuration (built once from it)."""

    services: Mapping[str, ServiceEntry] = field(default_factory=dict)
    teams: Mapping[str, TeamEntry] = field(default_factory=dict)
    policies: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Ownership:
    """Where an incident belongs: its service, team and escalation policy (each may be None)."""

    service_id: str | None
    team_id: str | None
    policy_id: str | None
    auto_resolve: bool = True


def route(
    directory: Directory,
    *,
    service_id: str | None,
    fallback_service: str | None = None,
    team_id: str | None = None,
    severity: Severity | None = None,
) -> Ownership:
    """Decide an incident's owner.

    The service is `service_id` when the directory knows it, else `fallback_service` (an
    integration's default) when known, else none. The team is the service's, else `team_id`
    (an incident already stored with a team). The policy is the service's own, else its
    team's, and only one the directory knows; with a `severity`, a policy set for that
    severity (service, then team) comes first. Unknown ids never raise: they route nowhere.
    """
    service = directory.services.get(service_id or "") or directory.services.get(
        fallback_service or ""
    )
    team = directory.teams.get(service.team if service else (team_id or ""))
    policy = (
        (service.policy_by_severity.get(severity) if service and severity else None)
        or (team.policy_by_severity.get(severity) if team and severity else None)
        or (service.escalation_policy if service else None)
        or (team.escalation_policy if team else None)
    )
    return Ownership(
        service_id=service.id if service else None,
        team_id=team.id if team else (service.team if service else team_id),
        policy_id=policy if policy in directory.policies else None,
        auto_resolve=service.auto_resolve if service else True,
    )
