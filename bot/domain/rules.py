"""What an alert becomes: routes (Alertmanager matchers), then labels, then the classifier.

`decide` is one pure function over an alert's labels. It says which service, severity and
category the alert gets and what set each ("route payment-failures", "label severity",
"classifier keyword 'outage'"), whether a route drops it, and how to group it, so the
pipeline, the timeline and `pulseops route test` all tell the same story.

Precedence, per field: the first matching route that sets it, then the alert's own label
(`service`, `severity`, `category`), then the classifier (severity and category only), then
the integration's default service. Routes are tried in order; the first match decides and
stops the search unless it says `continue: true`, in which case later matches fill in what
it left unset.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from bot.domain.alerts import Alert
from bot.domain.incident import Severity
from bot.domain.matchers import Matcher

SYNTHETIC_LABELS = ("__title__", "__description__", "__source__", "__integration__")
"""Labels every alert has for matching, beside its own."""


@dataclass(frozen=True, slots=True)
class RouteRule:
    name: str
    matchers: tuple[Matcher, ...]
    service: str | None = None
    severity: Severity | None = None
    category: str | None = None
    drop: bool = False
    continue_: bool = False
    group_by: tuple[str, ...] = ()
    group_window: timedelta | None = None


def keyword_pattern(phrases: Sequence[str]) -> re.Pattern[str]:
    """Whole words or phrases, case-insensitive; any run of whitespace between a phrase's words."""
    alternatives = sorted(
        (r"\s+".join(re.escape(word) for word in phrase.split()) for phrase in phrases),
        key=len,
        reverse=True,
    )
    return re.compile(rf"(?<!\w)(?:{'|'.join(alternatives)})(?!\w)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Classifier:
    """Keyword lists for categories (first listed wins) and severities (most severe wins)."""

    categories: tuple[tuple[str, re.Pattern[str]], ...] = ()
    severities: tuple[tuple[Severity, re.Pattern[str]], ...] = ()

    @classmethod
    def of(
        cls,
        categories: Mapping[str, Sequence[str]],
        severities: Mapping[Severity, Sequence[str]],
    ) -> Classifier:
        return cls(
            categories=tuple(
                (name, keyword_pattern(words)) for name, words in categories.items() if words
            ),
            severities=tuple(
                (severity, keyword_pattern(words))
                for severity, words in sorted(severities.items(), key=lambda kv: kv[0].rank)
                if words
            ),
        )

    def category(self, text: str) -> tuple[str, str] | None:
        """(category, the keyword found) for `text`, or None."""
        for name, pattern in self.categories:
            found = pattern.search(text)
            if found:
                return name, found.group()
        return None

    def severity(self, text: str) -> tuple[Severity, str] | None:
        """(severity, the keyword found) for `text`, or None."""
        for severity, pattern in self.severities:
            found = pattern.search(text)
            if found:
                return severity, found.group()
        return None


@dataclass(frozen=True, slots=True)
class Decided:
    """One decided field and what decided it (shown on the timeline)."""

    value: str
    by: str


@dataclass(frozen=True, slots=True)
class GroupSpec:
    """A route groups related alerts: those with equal `group_by` values join one incident.

    `key` identifies the group across integrations; `window` (None: while the incident is
    open) is how long after the incident opened related alerts still join it.
    """

    route: str
    key: str
    values: Mapping[str, str]
    window: timedelta | None


@dataclass(frozen=True, slots=True)
class Routing:
    """What `decide` made of one alert."""

    labels: Mapping[str, str]  # matched on; then with the decided service/severity/category
    routes: tuple[str, ...] = ()  # the routes that matched, in order
    service: Decided | None = None
    severity: Decided | None = None
    category: Decided | None = None
    dropped_by: str | None = None  # the route that drops it
    group: GroupSpec | None = None
    checked: int = 0  # how many routes were tried

    @property
    def by_rules(self) -> bool:
        """A route matched or the classifier decided something (worth a timeline entry)."""
        return bool(self.routes) or any(
            decided is not None and decided.by.startswith("classifier")
            for decided in (self.severity, self.category)
        )

    @property
    def severity_value(self) -> Severity | None:
        return Severity(self.severity.value) if self.severity else None

    def explain(self) -> list[str]:
        """One line per decision, for the timeline and `pulseops route test`."""
        lines = []
        if self.dropped_by:
            lines.append(f"dropped by route {self.dropped_by}")
        for what, decided in (
            ("service", self.service),
            ("severity", self.severity),
            ("category", self.category),
        ):
            if decided is not None:
                lines.append(f"{what} {decided.value} (from {decided.by})")
        if self.group is not None:
            values = ", ".join(f"{k}={v!r}" for k, v in self.group.values.items())
            window = f", within {self.group.window}" if self.group.window else ""
            lines.append(f"grouped by route {self.group.route} on {values}{window}")
        return lines


def match_labels(alert: Alert, integration: str) -> dict[str, str]:
    """The labels routes and silences match on: the alert's own plus the synthetic ones."""
    return {
        **alert.labels,
        "__title__": alert.title,
        "__description__": alert.description,
        "__source__": alert.source,
        "__integration__": integration,
    }


def decide(
    rules: Sequence[RouteRule],
    classifier: Classifier,
    alert: Alert,
    *,
    integration: str,
    default_service: str | None = None,
) -> Routing:
    """Route one alert: see the module's docstring for the precedence."""
    labels = match_labels(alert, integration)
    matched: list[str] = []
    service = severity = category = None
    dropped_by = None
    group = None
    checked = 0
    for rule in rules:
        checked += 1
        if not _all_match(rule.matchers, labels):
            continue
        matched.append(rule.name)
        by = f"route {rule.name}"
        if service is None and rule.service:
            service = Decided(rule.service, by)
        if severity is None and rule.severity:
            severity = Decided(rule.severity.value, by)
        if category is None and rule.category:
            category = Decided(rule.category, by)
        if dropped_by is None and rule.drop:
            dropped_by = rule.name
        if group is None and rule.group_by:
            group = _group(rule, labels)
        if not rule.continue_:
            break
    if service is None and alert.service:
        service = Decided(alert.service, "label service")
    if severity is None and alert.severity is not None:
        severity = Decided(alert.severity.value, "label severity")
    if category is None and alert.labels.get("category"):
        category = Decided(alert.labels["category"], "label category")
    text = f"{alert.title}\n{alert.description}"
    if severity is None and (found := classifier.severity(text)) is not None:
        severity = Decided(found[0].value, f"classifier keyword {found[1]!r}")
    if category is None and (found_category := classifier.category(text)) is not None:
        category = Decided(found_category[0], f"classifier keyword {found_category[1]!r}")
    if service is None and default_service:
        service = Decided(default_service, f"integration {integration}")
    decided = {
        name: value.value
        for name, value in (("service", service), ("severity", severity), ("category", category))
        if value is not None
    }
    return Routing(
        labels={**labels, **decided},
        routes=tuple(matched),
        service=service,
        severity=severity,
        category=category,
        dropped_by=dropped_by,
        group=group,
        checked=checked,
    )


def _all_match(matchers: tuple[Matcher, ...], labels: Mapping[str, str]) -> bool:
    """`matches_all`, as a plain loop: the hot part of routing (`all()` over a generator costs
    about twice as much per route)."""
    for matcher in matchers:
        if not matcher.matches(labels):
            return False
    return True


def _group(rule: RouteRule, labels: Mapping[str, str]) -> GroupSpec:
    values = {name: labels.get(name, "") for name in rule.group_by}
    digest = hashlib.sha256(
        "\x00".join([rule.name, *(f"{k}={v}" for k, v in values.items())]).encode()
    ).hexdigest()[:32]
    return GroupSpec(route=rule.name, key=digest, values=values, window=rule.group_window)


@dataclass(frozen=True, slots=True)
class Rules:
    """The routes and the classifier of one configuration."""

    routes: tuple[RouteRule, ...] = ()
    classifier: Classifier = field(default_factory=Classifier)

    def decide(
        self, alert: Alert, *, integration: str, default_service: str | None = None
    ) -> Routing:
        return decide(
            self.routes,
            self.classifier,
            alert,
            integration=integration,
            default_service=default_service,
        )
