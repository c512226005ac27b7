"""YAML models of `routes` and `classifier` (what an alert becomes) and their domain form."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator

from bot.config.checks import IdOf, _Frozen, _parse_severity
from bot.config.types import Duration, Matchers
from bot.domain.incident import Severity
from bot.domain.rules import Classifier, RouteRule, Rules

_LABEL = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


class RouteConfig(_Frozen):
    """One route: matchers, and what a matching alert becomes."""

    name: Annotated[str, IdOf("route name")]
    matchers: Matchers = ()
    service: str | None = None
    severity: Severity | None = None
    category: str | None = Field(default=None, min_length=1, max_length=100)
    drop: bool = False
    continue_: bool = Field(default=False, alias="continue")
    group_by: tuple[str, ...] = ()
    group_window: Duration | None = None

    @field_validator("severity", mode="before")
    @classmethod
    def _severity(cls, value: Any) -> Any:
        return _parse_severity(value)

    @field_validator("group_by")
    @classmethod
    def _group_by(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if not _LABEL.fullmatch(name):
                raise ValueError(f"invalid label name {name!r} in group_by")
        if len(set(value)) != len(value):
            raise ValueError("group_by lists a label twice")
        return value

    @model_validator(mode="after")
    def _window_needs_group(self) -> RouteConfig:
        if self.group_window is not None and not self.group_by:
            raise ValueError("group_window needs group_by (the labels that make a group)")
        if self.drop and (self.service or self.severity or self.category or self.group_by):
            raise ValueError(
                "a route with drop: true drops the alert; remove service, severity, "
                "category and group_by from it"
            )
        return self

    def rule(self) -> RouteRule:
        return RouteRule(
            name=self.name,
            matchers=self.matchers,
            service=self.service,
            severity=self.severity,
            category=self.category,
            drop=self.drop,
            continue_=self.continue_,
            group_by=self.group_by,
            group_window=self.group_window,
        )


class ClassifierConfig(_Frozen):
    """Keyword lists that fill the severity and category no route and no label set."""

    categories: dict[str, tuple[str, ...]] = {}
    severities: dict[Severity, tuple[str, ...]] = {}

    @field_validator("severities", mode="before")
    @classmethod
    def _severities(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        return {_parse_severity(key): words for key, words in value.items()}

    @field_validator("categories", "severities")
    @classmethod
    def _words(cls, value: dict[Any, tuple[str, ...]]) -> dict[Any, tuple[str, ...]]:
        for key, words in value.items():
            for word in words:
                if not word.strip():
                    raise ValueError(f"{key}: an empty keyword matches nothing; remove it")
        return value


def rules_of(routes: tuple[RouteConfig, ...], classifier: ClassifierConfig) -> Rules:
    """The domain form of the routes and the classifier (build it once, at start-up)."""
    return Rules(
        routes=tuple(route.rule() for route in routes),
        classifier=Classifier.of(classifier.categories, classifier.severities),
    )
