"""YAML model of `slos`: availability objectives over alert sources.

An SLO names its source by an integration and/or matchers over the alerts' labels; the time
during which the source had an alert firing is its bad time (a time-based availability SLI).
"""

from __future__ import annotations

from typing import Self

from pydantic import field_validator, model_validator

from bot.config.checks import _check_id, _Frozen
from bot.config.probes import SloConfig
from bot.config.types import Matchers

SLO_INTEGRATION = "slos"
"""The integration name SLO burn alerts carry (reserved: no configured integration may use it)."""


class SourceSloConfig(SloConfig):
    """`objective` % of the time over `window`, the source without an alert firing.

    The source: alerts of `integration`, and/or alerts whose labels match every one of
    `matchers` (at least one of the two). `service` is whom the burn alerts are for.
    """

    id: str
    integration: str | None = None
    matchers: Matchers = ()
    service: str | None = None

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        return _check_id(value, "slo id")

    @model_validator(mode="after")
    def _source(self) -> Self:
        if self.integration is None and not self.matchers:
            raise ValueError(
                "name the alert source: integration, matchers or both "
                "(e.g. integration: alertmanager, matchers: ['service=\"checkout-web\"'])"
            )
        if self.integration == SLO_INTEGRATION:
            raise ValueError("an SLO cannot be over its own burn alerts (integration 'slos')")
        return self

    def __hash__(self) -> int:
        return hash(self.id)


__all__ = ["SLO_INTEGRATION", "SourceSloConfig", "_Frozen"]
