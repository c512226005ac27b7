"""Routing as one pure function: service → team → escalation policy."""

from __future__ import annotations

from bot.domain.routing import Directory, Ownership, ServiceEntry, TeamEntry, route

DIRECTORY = Directory(
    services={
        "payment-api": ServiceEntry("payment-api", team="payments"),
        "ledger": ServiceEntry("ledger", team="payments", escalation_policy="ledger-pager"),
        "batch": ServiceEntry("batch", team="search", auto_resolve=False),
        "orphan-policy": ServiceEntry("orphan-policy", team="search", escalation_policy="gone"),
    },
    teams={
        "payments": TeamEntry("payments", escalation_policy="payments-default"),
        "search": TeamEntry("search"),
    },
    policies=frozenset({"payments-default", "ledger-pager"}),
)


def test_a_known_service_brings_its_team_and_the_team_policy() -> None:
    assert route(DIRECTORY, service_id="payment-api") == Ownership(
        "payment-api", "payments", "payments-default", auto_resolve=True
    )


def test_the_service_policy_wins_over_the_team_policy() -> None:
    assert route(DIRECTORY, service_id="ledger").policy_id == "ledger-pager"


def test_an_unknown_service_falls_back_to_the_integration_default() -> None:
    owner = route(DIRECTORY, service_id="nope", fallback_service="batch")
    assert owner == Ownership("batch", "search", None, auto_resolve=False)


def test_unknown_ids_route_nowhere_and_never_raise() -> None:
    assert route(DIRECTORY, service_id="nope", fallback_service="also-nope") == Ownership(
        None, None, None, auto_resolve=True
    )
    assert route(DIRECTORY, service_id=None) == Ownership(None, None, None)
    # a policy id the directory does not know is no policy
    assert route(DIRECTORY, service_id="orphan-policy").policy_id is None


def test_a_stored_team_decides_the_policy_of_an_incident_without_service() -> None:
    assert route(DIRECTORY, service_id=None, team_id="payments").policy_id == "payments-default"
    assert route(DIRECTORY, service_id=None, team_id="search").policy_id is None
