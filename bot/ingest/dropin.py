"""Receiving stages of the drop-in endpoints (PagerDuty Events API v2, Opsgenie Alert API v2).

They find the integration by the token the sender presents (PagerDuty's `routing_key` in the
body, Opsgenie's `Authorization: GenieKey <key>`) instead of by the name in the URL;
everything before and after them is the webhook pipeline's own stages. A PagerDuty change
event is validated here too (`parse_change_event`): it is not an alert and opens nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StringConstraints, ValidationError

from bot.config import IntegrationConfig, PulseOpsConfig
from bot.domain.alerts import AlertStatus
from bot.errors import AuthError, UserError
from bot.ingest.opsgenie import alias_named, parse_opsgenie_action
from bot.ingest.stages import Received, Rejected, same_secret
from bot.ingest.wire import HttpUrl, _Body, _in_utc, _require_object, validation_problems


def matching_integration(
    config: PulseOpsConfig, tokens: Mapping[str, str], kind: str, given: str
) -> IntegrationConfig | None:
    """The integration of type `kind` whose token is `given`.

    Every candidate is compared in constant time, so timing tells nothing about the tokens.
    """
    found: IntegrationConfig | None = None
    for integration in config.integrations:
        if integration.type == kind and same_secret(given, tokens[integration.name]):
            found = integration
    return found


class RoutingKey:
    """PagerDuty: the integration of type `pagerduty` whose token is the body's `routing_key`.

    Runs after DecodeJson, since the key is in the body.
    """

    def __init__(self, config: PulseOpsConfig, tokens: Mapping[str, str]) -> None:
        self.config = config
        self.tokens = tokens

    async def __call__(self, received: Received) -> Received:
        document = received.document
        key = document.get("routing_key") if isinstance(document, dict) else None
        if not isinstance(key, str) or not key.strip():
            raise Rejected(
                "unauthorized",
                UserError(
                    "routing_key is required: the token of a pagerduty integration",
                    fields={"routing_key": "required (the token of a pagerduty integration)"},
                ),
            )
        integration = matching_integration(self.config, self.tokens, "pagerduty", key.strip())
        if integration is None:
            raise Rejected(
                "unauthorized",
                UserError(
                    "routing_key is not the token of any pagerduty integration",
                    fields={"routing_key": "not the token of a pagerduty integration"},
                ),
            )
        received.name = integration.name
        received.integration = integration
        return received


class GenieKey:
    """Opsgenie: the integration of type `opsgenie` whose token is `Authorization: GenieKey …`."""

    def __init__(self, config: PulseOpsConfig, tokens: Mapping[str, str]) -> None:
        self.config = config
        self.tokens = tokens

    async def __call__(self, received: Received) -> Received:
        scheme, _, key = received.headers.get("Authorization", "").partition(" ")
        integration = None
        if scheme.lower() == "geniekey" and key.strip():
            integration = matching_integration(self.config, self.tokens, "opsgenie", key.strip())
        if integration is None:
            raise Rejected(
                "unauthorized",
                AuthError(
                    "missing or wrong key: send Authorization: GenieKey <the token of an "
                    "opsgenie integration>"
                ),
            )
        received.name = integration.name
        received.integration = integration
        return received


class EmptyIsObject:
    """Opsgenie's close and acknowledge bodies are optional: an empty body reads as `{}`."""

    async def __call__(self, received: Received) -> Received:
        if received.body.strip():
            return received
        received.body = b"{}"
        return received


class OpsgenieAlias:
    """Opsgenie get: the alias of the alert named in the URL, in `params["alias"]`."""

    @staticmethod
    def read(received: Received) -> str:
        """The alias `identifier` and `identifierType` name (Rejected when they are wrong)."""
        try:
            return alias_named(
                received.params.get("identifier", ""), received.params.get("identifierType", "")
            )
        except UserError as exc:
            raise Rejected("invalid", exc) from None

    async def __call__(self, received: Received) -> Received:
        received.params = {**received.params, "alias": self.read(received)}
        return received


class OpsgenieAction:
    """Opsgenie close/acknowledge: the alert named in the URL, resolved or acknowledged.

    Reads `identifier` and `identifierType` from the request's URL parameters.
    """

    def __init__(self, status: AlertStatus) -> None:
        self.status = status

    async def __call__(self, received: Received) -> Received:
        alias = OpsgenieAlias.read(received)
        try:
            alert = parse_opsgenie_action(
                received.document, identifier=alias, status=self.status, now=received.now
            )
        except ValidationError as exc:
            raise Rejected(
                "invalid",
                UserError("body is not a valid opsgenie request", fields=validation_problems(exc)),
            ) from None
        received.alerts = (alert,)
        return received


# ---- PagerDuty change events --------------------------------------------------------------


class ChangePayload(_Body):
    """The `payload` of a PagerDuty change event."""

    summary: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1024)]
    source: str | None = None
    timestamp: Annotated[datetime | None, AfterValidator(_in_utc)] = None
    custom_details: Any = None


class ChangeLink(_Body):
    href: HttpUrl
    text: str = ""


class ChangeEvent(_Body):
    """A PagerDuty change event (`POST /v2/change/enqueue` body)."""

    routing_key: str | None = None
    payload: ChangePayload
    links: list[ChangeLink] = Field(default_factory=list)


def parse_change_event(body: Any) -> ChangeEvent:
    """Validate a change event body; raises ValidationError naming the field."""
    _require_object(body, "ChangeEvent")
    return ChangeEvent.model_validate(body)
