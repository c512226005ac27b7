"""`pulseops route test`: what the routes, labels and classifier make of a webhook body.

Like `amtool config routes test`, it runs the decision the service runs, without a database
or Slack: for each alert in the body, which routes matched (and on what), the resulting
service, team, escalation policy, severity and category and what set each, whether a route
drops or groups it, and which maintenance windows (and, given, silences) would mute it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from bot.config import IntegrationConfig, PulseOpsConfig
from bot.config.directory import directory_of
from bot.domain.matchers import matches_all
from bot.domain.routing import route
from bot.domain.rules import Routing
from bot.domain.silences import Silence, SilenceState
from bot.ingest.parsers import PARSERS


def pick_integration(config: PulseOpsConfig, name: str | None, body: object) -> IntegrationConfig:
    """The integration named `name`, else the first whose parser accepts `body`."""
    if name is not None:
        integration = config.integration(name)
        if integration is None:
            known = ", ".join(i.name for i in config.integrations) or "none are configured"
            raise ValueError(f"unknown integration {name!r} (known: {known})")
        return integration
    for integration in config.integrations:
        try:
            if PARSERS[integration.type](body, datetime.now().astimezone()):
                return integration
        except (ValueError, TypeError):
            continue
    raise ValueError("no configured integration accepts this body; name one with --integration")


def explain(
    config: PulseOpsConfig,
    integration: IntegrationConfig,
    body: object,
    now: datetime,
    silences: Sequence[Silence] = (),
) -> Iterator[str]:
    """Lines describing what becomes of each alert in `body` (ValueError: it does not parse);
    `silences` are the current ones (from the database), checked like the windows."""
    alerts = PARSERS[integration.type](body, now)
    rules = config.rules
    directory = directory_of(config)
    yield f"{len(alerts)} alert(s) from integration {integration.name} (type {integration.type})"
    for number, alert in enumerate(alerts, 1):
        routing = rules.decide(
            alert, integration=integration.name, default_service=integration.service
        )
        yield ""
        status, fingerprint = alert.status.value, alert.fingerprint
        yield f"alert {number}: {alert.title!r} ({status}, fingerprint {fingerprint})"
        yield from _routes(config, routing)
        if routing.dropped_by:
            yield f"  DROPPED by route {routing.dropped_by}: recorded and counted, no incident"
            continue
        owner = route(
            directory,
            service_id=routing.service.value if routing.service else None,
            fallback_service=integration.service,
            severity=routing.severity_value or config.incidents.default_severity,
        )
        yield f"  service:  {owner.service_id or '(none)'}{_by(routing, 'service')}"
        yield f"  team:     {owner.team_id or '(none)'}"
        yield f"  policy:   {owner.policy_id or '(none: nobody is paged)'}"
        severity = routing.severity.value if routing.severity else None
        default = config.incidents.default_severity.value
        yield f"  severity: {severity or default}{_by(routing, 'severity', default)}"
        category = routing.category.value if routing.category else "(none)"
        yield f"  category: {category}{_by(routing, 'category')}"
        if routing.group is not None:
            values = ", ".join(f"{k}={v!r}" for k, v in routing.group.values.items())
            window = f" for {routing.group.window}" if routing.group.window else " while open"
            yield f"  grouped:  by route {routing.group.route} on {values}{window}"
        yield from _muting(config, routing, now, silences)


def _muting(
    config: PulseOpsConfig, routing: Routing, now: datetime, silences: Sequence[Silence]
) -> Iterator[str]:
    """The silences and maintenance windows whose matchers match the routed alert."""
    for silence in silences:
        state = silence.state(now)
        if state is not SilenceState.EXPIRED and matches_all(silence.matchers, routing.labels):
            when = (
                "now"
                if state is SilenceState.ACTIVE
                else f"from {silence.starts_at:%Y-%m-%d %H:%M} UTC"
            )
            yield (
                f"  MUTED {when} by {silence.hold.by}, until {silence.ends_at:%Y-%m-%d %H:%M} UTC"
            )
    for window in config.maintenance_windows:
        if not matches_all(window.matchers, routing.labels):
            continue
        open_now = window.open_at(now)
        if open_now is not None:
            until = f"{open_now[1]:%Y-%m-%d %H:%M %Z}"
            yield f"  MUTED now by maintenance window {window.name}, until {until}"
        else:
            opens = window.trigger.get_next_fire_time(None, now)
            when = f"{opens:%Y-%m-%d %H:%M %Z}" if opens else "never again"
            yield f"  muted while maintenance window {window.name} is open (next: {when})"


def _routes(config: PulseOpsConfig, routing: Routing) -> Iterator[str]:
    if not config.routes:
        yield "  routes:   none configured"
        return
    if not routing.routes:
        yield f"  routes:   none of {len(config.routes)} matched"
        return
    for name in routing.routes:
        rule = next(r for r in config.routes if r.name == name)
        on = ", ".join(str(m) for m in rule.matchers) or "(no matchers: matches every alert)"
        yield f"  route {name} matched on {on}"


def _by(routing: Routing, field: str, default: str | None = None) -> str:
    decided = getattr(routing, field)
    if decided is not None:
        return f"  (from {decided.by})"
    return "  (the default: incidents.default_severity)" if default else ""
