"""The routing directory of a configuration: services, teams and policy ids, for routing."""

from __future__ import annotations

from bot.config.root import PulseOpsConfig
from bot.domain.routing import Directory, ServiceEntry, TeamEntry


def directory_of(config: PulseOpsConfig) -> Directory:
    """What routing needs to know of `config` (build it once, at start-up)."""
    return Directory(
        services={
            s.id: ServiceEntry(
                id=s.id,
                team=s.team,
                escalation_policy=s.escalation_policy,
                auto_resolve=s.auto_resolve,
                policy_by_severity=s.escalation_policy_by_severity,
            )
            for s in config.services
        },
        teams={
            t.id: TeamEntry(
                id=t.id,
                escalation_policy=t.escalation_policy,
                policy_by_severity=t.escalation_policy_by_severity,
            )
            for t in config.teams
        },
        policies=frozenset(p.id for p in config.escalation_policies),
    )
