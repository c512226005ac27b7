"""The alert pipeline's stages, in the order `build_pipeline` runs them.

Receiving (before any write): authenticate → bound the body → parse it.
Per delivery, in its transaction: idempotency.
Per alert, in that transaction: dedup → mute → route → storm guard → group. An alert stage returns a
`Decision` to stop there, or None to pass the alert on; the last stage always decides.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

import orjson
from pydantic import ValidationError

from bot.config import IntegrationConfig, PulseOpsConfig
from bot.config.maintenance import MaintenanceWindowConfig
from bot.domain.alerts import Alert, AlertStatus
from bot.domain.incident import Severity, Status
from bot.domain.records import AlertRecord, Incident, NewIncident
from bot.domain.routing import Directory, Ownership, route
from bot.domain.rules import GroupSpec, Routing, Rules
from bot.domain.silences import OpenWindow, Silence, holding, matchable_labels
from bot.errors import (
    AuthError,
    Conflict,
    NotFound,
    PayloadTooLarge,
    PulseOpsError,
    RequestTimeout,
    TooManyRequests,
    UserError,
)
from bot.ingest.decisions import (
    AcknowledgeIncident,
    Decision,
    Dropped,
    GroupInto,
    Ignore,
    Muted,
    Open,
    Raise,
    Repeat,
    ResolveAlert,
)
from bot.ingest.parsers import Parser, validation_problems
from bot.slack.ratelimit import TokenBucket
from store.incidents import AlertRepository, IncidentRepository
from store.outbox import IdempotencyRepository
from store.silences import SilenceRepository
from store.unit_of_work import UnitOfWork

MAX_IDEMPOTENCY_KEY = 255
MAX_DEDUP_KEY = 600  # the column's width; longer keys are hashed, never truncated

BodyReader = Callable[[int], Awaitable[bytes]]
"""Reads the request body, raising PayloadTooLarge past the given number of bytes."""


# ---- receiving ----------------------------------------------------------------------------


class Rejected(Exception):
    """A receiving stage refused the delivery; nothing was written.

    `reason` labels the rejection metric; `error` is what the sender is answered.
    """

    def __init__(self, reason: str, error: PulseOpsError) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error = error


@dataclass(slots=True)
class Received:
    """One webhook delivery as the receiving stages fill it in (each stage sets its part in
    place: copying it at every stage cost more than the stage's own work)."""

    name: str  # the integration named in the URL ("" on drop-in routes until located)
    headers: Mapping[str, str]
    read: BodyReader
    now: datetime
    integration: IntegrationConfig | None = None
    body: bytes = b""
    document: object = None
    alerts: tuple[Alert, ...] = ()
    params: Mapping[str, str] = field(default_factory=dict)  # URL parameters a route passes on


class ReceiveStage(Protocol):
    async def __call__(self, received: Received) -> Received: ...


class Authenticate:
    """The integration named in the URL exists and the bearer token is its own (or, for a
    slack-webhook integration, the token ending the URL)."""

    def __init__(self, config: PulseOpsConfig, tokens: Mapping[str, str]) -> None:
        self.config = config
        self.tokens = tokens
        # a plain dict: the configuration's lookup goes through pydantic's private attributes,
        # several times slower, and this runs for every delivery
        self.integrations = {i.name: i for i in config.integrations}

    async def __call__(self, received: Received) -> Received:
        integration = self.integrations.get(received.name)
        if integration is None:
            raise Rejected(
                "not_found",
                NotFound(
                    f"no integration named {received.name!r}", fields={"integration": "unknown"}
                ),
            )
        expected = self.tokens[integration.name]
        in_url = received.params.get("token")
        if in_url is not None:
            # Slack incoming-webhook senders only know a URL: the token may end it instead
            if integration.type != SLACK_WEBHOOK or not same_secret(in_url, expected):
                raise Rejected(
                    "unauthorized",
                    AuthError(
                        "wrong token in the URL (accepted for slack-webhook integrations "
                        "only; others send Authorization: Bearer <token>)"
                    ),
                )
            received.integration = integration
            return received
        scheme, _, token = received.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not same_secret(token.strip(), expected):
            raise Rejected(
                "unauthorized",
                AuthError("missing or wrong bearer token in the Authorization header"),
            )
        received.integration = integration
        return received


SLACK_WEBHOOK = "slack-webhook"  # the one type whose token may be the URL's last segment


def same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison of a presented secret, whatever characters it holds."""
    try:
        return hmac.compare_digest(
            given.encode("utf-8", "surrogateescape"), expected.encode("utf-8", "surrogateescape")
        )
    except UnicodeEncodeError:  # a lone surrogate that no header byte produced
        return False


class RateLimit:
    """Each integration's requests through a token bucket: past it, 429 with Retry-After.

    The bucket is per replica, so N replicas admit up to N times the rate.
    """

    def __init__(self, config: PulseOpsConfig, *, monotonic: Callable[[], float]) -> None:
        limits = config.incidents
        self.buckets = {
            i.name: TokenBucket(
                rate=i.max_requests_per_second or limits.max_requests_per_second,
                burst=max(limits.request_burst, 1),
                monotonic=monotonic,
            )
            for i in config.integrations
        }

    async def __call__(self, received: Received) -> Received:
        assert received.integration is not None, "Authenticate runs first"
        bucket = self.buckets[received.integration.name]
        wait = bucket.wait_time()
        if wait > 0:
            raise Rejected(
                "rate_limited",
                TooManyRequests(
                    f"integration {received.name!r} is over its rate limit of "
                    f"{bucket.rate:g} requests a second; retry after {wait:.1f} s",
                    retry_after=wait,
                ),
            )
        bucket.take()
        return received


class BoundBody:
    """Read the body, refusing anything over `limit` bytes before it is all in memory, or too
    slow to arrive (the reader's own time limit)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit

    async def __call__(self, received: Received) -> Received:
        try:
            body = await received.read(self.limit)
        except UserError as exc:
            reason = "too_slow" if exc.status == RequestTimeout.status else "too_large"
            raise Rejected(reason, exc) from None
        received.body = body
        return received


class DecodeJson:
    """The body as JSON, holding only text the store can keep (no NUL, no lone surrogate)."""

    async def __call__(self, received: Received) -> Received:
        try:
            document = _loads(received.body)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            # ValueError: malformed JSON, or an integer beyond Python's digit limit;
            # RecursionError: nesting deeper than the decoder's stack
            reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
            raise Rejected(
                "bad_json",
                UserError(f"body is not valid JSON: {reason}", fields={"body": "invalid JSON"}),
            ) from None
        if _MAYBE_UNSTORABLE.search(received.body):
            problem = unstorable_text(document)
            if problem is not None:
                path, why = problem
                raise Rejected(
                    "invalid", UserError(f"{path or 'body'} {why}", fields={path or "body": why})
                )
        received.document = document
        return received


def _loads(body: bytes) -> object:
    """`json.loads`, by orjson where it can: several times faster for the valid UTF-8 JSON
    that monitors send. What orjson refuses (a lone surrogate, an integer beyond 64 bits, NaN,
    another encoding, deep nesting) goes to `json.loads`, so the document or the error is
    exactly the standard library's."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return json.loads(body)


class Parse:
    """The integration type's parser: one `Alert` per alert in the document."""

    def __init__(
        self,
        parsers: Mapping[str, Parser],
        *,
        max_alerts: int,
        configured: Mapping[str, Parser] | None = None,
    ) -> None:
        self.parsers = parsers
        self.max_alerts = max_alerts
        self.configured = dict(configured or {})  # integration name -> its options' parser

    async def __call__(self, received: Received) -> Received:
        assert received.integration is not None, "Authenticate runs first"
        kind = received.integration.type
        parser = self.configured.get(received.integration.name) or self.parsers[kind]
        try:
            alerts = parser(received.document, received.now)
        except ValidationError as exc:
            raise Rejected(
                "invalid",
                UserError(f"body is not a valid {kind} payload", fields=validation_problems(exc)),
            ) from None
        if len(alerts) > self.max_alerts:
            raise Rejected(
                "too_many_alerts",
                PayloadTooLarge(
                    f"body holds {len(alerts)} alerts; at most {self.max_alerts} are accepted "
                    "in one delivery (incidents.max_alerts_per_delivery)",
                    fields={"alerts": f"more than {self.max_alerts}"},
                ),
            )
        received.alerts = tuple(alerts)
        return received


# JSON escapes of NUL and of UTF-16 surrogates: only a body holding one needs the full walk
_MAYBE_UNSTORABLE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


def unstorable_text(document: object) -> tuple[str, str] | None:
    """The first string (key or value) that no database column can hold, as (path, why).

    Walks without recursion, so any depth that JSON decoding accepted is fine.
    """
    stack: list[tuple[str, object]] = [("", document)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            why = _text_problem(value)
            if why:
                return path, why
        elif isinstance(value, dict):
            for key, item in value.items():
                child = f"{path}.{key}" if path else str(key)
                why = _text_problem(key)
                if why:
                    return child, f"has a key that {why.removeprefix('contains ')}"
                stack.append((child, item))
        elif isinstance(value, list):
            stack.extend((f"{path}.{i}" if path else str(i), v) for i, v in enumerate(value))
    return None


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "contains a NUL character (\\u0000)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains an unpaired UTF-16 surrogate"
    return None


# ---- per delivery -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IngestRequest:
    """One received delivery to apply: its alerts and its idempotency key."""

    integration: IntegrationConfig
    alerts: tuple[Alert, ...]
    idempotency_key: str | None
    body_sha256: str  # "" without an idempotency key (nothing compares it then)

    @classmethod
    def of(
        cls,
        integration: IntegrationConfig,
        alerts: tuple[Alert, ...],
        *,
        idempotency_key: str | None,
        body: bytes,
    ) -> IngestRequest:
        # only a delivery with a key is ever compared with another
        digest = hashlib.sha256(body).hexdigest() if idempotency_key is not None else ""
        return cls(integration, alerts, idempotency_key, digest)


@dataclass(frozen=True, slots=True)
class Delivery:
    """The answer to one webhook delivery (stored for Idempotency-Key replays)."""

    status: int
    body: dict[str, object]


class DeliveryStage(Protocol):
    def wraps(self, request: IngestRequest) -> bool:
        """Whether this stage has anything to do for `request` (else it is skipped)."""
        ...

    async def __call__(
        self,
        uow: UnitOfWork,
        request: IngestRequest,
        now: datetime,
        apply: Callable[[], Awaitable[Delivery]],
    ) -> Delivery: ...


class Idempotency:
    """A delivery whose Idempotency-Key was seen gets the first answer again, applying nothing."""

    def __init__(self, ttl: timedelta) -> None:
        self.ttl = ttl

    def wraps(self, request: IngestRequest) -> bool:
        """Only a delivery with a key has anything to look up or keep."""
        return request.idempotency_key is not None

    async def __call__(
        self,
        uow: UnitOfWork,
        request: IngestRequest,
        now: datetime,
        apply: Callable[[], Awaitable[Delivery]],
    ) -> Delivery:
        key = request.idempotency_key
        if key is None:
            return await apply()
        keys = IdempotencyRepository(uow.session)
        integration = request.integration.name
        seen = await keys.get(integration=integration, key=key, now=now)
        if seen is not None:
            if seen.body_sha256 != request.body_sha256:
                raise Conflict(
                    "Idempotency-Key was already used with a different body",
                    fields={"Idempotency-Key": "reused with a different body"},
                )
            return Delivery(status=seen.status, body={**seen.body, "replayed": True})
        delivery = await apply()
        await keys.put(
            integration=integration,
            key=key,
            body_sha256=request.body_sha256,
            status_code=delivery.status,
            response=compact(delivery.body),
            now=now,
            expires_at=now + self.ttl,
        )
        return delivery


MAX_STORED_RESULTS = 100


def compact(answer: dict[str, object]) -> dict[str, object]:
    """The answer as stored for replays: at most `MAX_STORED_RESULTS` per-alert results.

    Keys live for `idempotency_ttl`, so what each may store is bounded; a replay of a larger
    delivery says how many results it left out.
    """
    results = answer.get("results")
    if not isinstance(results, list) or len(results) <= MAX_STORED_RESULTS:
        return dict(answer)
    return {
        **answer,
        "results": results[:MAX_STORED_RESULTS],
        "results_omitted": len(results) - MAX_STORED_RESULTS,
    }


# ---- per alert ----------------------------------------------------------------------------


@dataclass(slots=True)
class AlertContext:
    """One alert on its way through the alert stages; stages note what they looked up."""

    uow: UnitOfWork
    integration: IntegrationConfig
    alert: Alert
    now: datetime
    dedup_key: str
    incident: Incident | None = None  # the open incident with this dedup key
    existing: AlertRecord | None = None  # this alert as stored on that incident
    ownership: Ownership | None = None  # where a new incident would belong
    routing: Routing | None = None  # what routes, labels and the classifier made of the alert
    group_prefix: str | None = None  # a route's group: the dedup key prefix of its incidents

    @property
    def actor(self) -> str:
        return f"monitor:{self.integration.name}"


class AlertStage(Protocol):
    async def __call__(self, ctx: AlertContext) -> Decision | None: ...


def dedup_key(integration: str, group_key: str) -> str:
    """`integration:group_key`, hashed when too long for the column (never truncated)."""
    key = f"{integration}:{group_key}"
    if len(key) <= MAX_DEDUP_KEY:
        return key
    return f"{integration}:sha256:{hashlib.sha256(group_key.encode()).hexdigest()}"


def stored_repeat(
    alert: Alert, existing: AlertRecord, raise_severity: Raise | None = None
) -> Repeat:
    """`alert` again, as stored on its incident: counted when applied, refired if resolved."""
    return Repeat(
        alert=alert,
        incident_id=existing.incident_id,
        alert_id=existing.id,
        occurrences=existing.occurrences,
        last_note_at=existing.last_note_at,
        counted=False,
        refired=existing.status == AlertStatus.RESOLVED.value,
        raise_severity=raise_severity,
    )


def more_severe(severity: Severity | None, incident: Incident) -> bool:
    return severity is not None and severity.rank < incident.severity.rank


def raise_for(ctx: AlertContext, incident: Incident) -> Raise | None:
    """Raise the incident's severity when this alert (as routed) is more severe than it."""
    decided = ctx.routing.severity if ctx.routing else None
    if decided is None or not more_severe(Severity(decided.value), incident):
        return None
    return Raise(
        to=Severity(decided.value),
        why=f"alert {ctx.alert.title!r} is {decided.value} (from {decided.by})",
    )


async def count_batch_repeats(
    uow: UnitOfWork, requests: Sequence[IngestRequest], now: datetime
) -> None:
    """Count a batch's plain repeats up front, in one statement; `Dedup` then finds them in
    `uow.counted` instead of making a round trip per alert.

    Only alerts whose order in the batch cannot matter are counted: firing, in a delivery
    without an Idempotency-Key (which may yet be refused and rolled back), and whose dedup key
    and fingerprint appear nowhere else in the batch (a fingerprint under two dedup keys
    neither). The others go through `Dedup` one by one, in order.
    """
    keys: dict[str, set[str]] = {}  # fingerprint -> dedup keys
    seen: Counter[tuple[str, str]] = Counter()
    for request in requests:
        for alert in request.alerts:
            key = dedup_key(request.integration.name, alert.group_key)
            keys.setdefault(alert.fingerprint, set()).add(key)
            seen[key, alert.fingerprint] += 1
    candidates: list[tuple[str, str, Severity | None]] = []
    for request in requests:
        if request.idempotency_key is not None:
            continue
        for alert in request.alerts:
            key = dedup_key(request.integration.name, alert.group_key)
            alone = seen[key, alert.fingerprint] == 1 and len(keys[alert.fingerprint]) == 1
            if alert.status is AlertStatus.FIRING and alone:
                candidates.append((key, alert.fingerprint, alert.severity))
    if not candidates:
        return
    found = await AlertRepository(uow.session).record_repeats(candidates, now=now)
    for key, fingerprint, _ in candidates:
        uow.counted[key, fingerprint] = found.get(fingerprint)


class Dedup:
    """The same alert again on its open incident is a repeat.

    First the storm fast path: a repeat counted with its batch (`count_batch_repeats`), else
    one prebuilt UPDATE counts a firing repeat. Otherwise it looks up the open incident of the
    alert's group and the alert on it, for the stages after.
    """

    async def __call__(self, ctx: AlertContext) -> Decision | None:
        alerts = AlertRepository(ctx.uow.session)
        firing = ctx.alert.status is AlertStatus.FIRING
        if firing:
            batched = (ctx.dedup_key, ctx.alert.fingerprint)
            if batched in ctx.uow.counted:
                counted = ctx.uow.counted.pop(batched)
            else:
                counted = await alerts.record_repeat(
                    dedup_key=ctx.dedup_key,
                    fingerprint=ctx.alert.fingerprint,
                    now=ctx.now,
                    severity=ctx.alert.severity,
                )
            if counted is not None:
                return Repeat(
                    alert=ctx.alert,
                    incident_id=counted.incident_id,
                    alert_id=counted.alert_id,
                    occurrences=counted.occurrences,
                    last_note_at=counted.last_note_at,
                    counted=True,
                )
        incidents = IncidentRepository(ctx.uow.session)
        ctx.incident = await incidents.get_open_by_dedup_key(dedup_key=ctx.dedup_key)
        if ctx.incident is None:
            return None
        ctx.existing = await alerts.get(
            incident_id=ctx.incident.id, fingerprint=ctx.alert.fingerprint
        )
        if firing and ctx.existing is not None:
            severity = ctx.alert.severity.value if ctx.alert.severity else None
            if severity != ctx.existing.severity:
                return None  # its severity changed: routed again, perhaps raised by Group
            return stored_repeat(ctx.alert, ctx.existing)
        return None


def match_labels(ctx: AlertContext) -> Mapping[str, str]:
    """What silences and maintenance windows match against: the alert's labels plus
    `__title__`, `__description__`, `__source__`, `__integration__`, and `service`,
    `severity` and `category` as routed (the Route stage runs first)."""
    if ctx.routing is not None:
        return ctx.routing.labels
    alert = ctx.alert
    return matchable_labels(
        alert.labels,
        title=alert.title,
        description=alert.description,
        source=alert.source,
        integration=ctx.integration.name,
        service=alert.service or ctx.integration.service,
        severity=alert.severity.value if alert.severity else None,
    )


class Mute:
    """A firing alert that would open a new incident is held while a silence or a maintenance
    window matches it: stored and counted, no incident, nobody paged.

    The current silences are read once per transaction (a batch of deliveries shares one),
    and the open maintenance windows computed once per instant.
    """

    def __init__(self, windows: Sequence[MaintenanceWindowConfig]) -> None:
        self.windows = tuple(windows)
        self._silences: tuple[UnitOfWork, datetime, list[Silence]] | None = None
        self._open: tuple[datetime, list[OpenWindow]] | None = None

    async def __call__(self, ctx: AlertContext) -> Decision | None:
        if ctx.alert.status is not AlertStatus.FIRING or ctx.incident is not None:
            return None
        silences = await self._current_silences(ctx)
        windows = self.open_windows(ctx.now)
        if not silences and not windows:
            return None
        hold = holding(match_labels(ctx), silences=silences, windows=windows, now=ctx.now)
        if hold is None:
            return None
        return Muted(alert=ctx.alert, by=hold.by, hold=hold)

    async def _current_silences(self, ctx: AlertContext) -> list[Silence]:
        cached = self._silences
        if cached is not None and cached[0] is ctx.uow and cached[1] == ctx.now:
            return cached[2]
        found = await SilenceRepository(ctx.uow.session).current(now=ctx.now)
        active = [s for s in found if s.starts_at <= ctx.now]
        self._silences = (ctx.uow, ctx.now, active)
        return active

    def open_windows(self, now: datetime) -> list[OpenWindow]:
        """The maintenance windows open at `now`."""
        if not self.windows:
            return []
        cached = self._open
        if cached is not None and cached[0] == now:
            return cached[1]
        found = []
        for window in self.windows:
            interval = window.open_at(now)
            if interval is not None:
                found.append(OpenWindow(window.name, window.matchers, *interval))
        self._open = (now, found)
        return found


GROUP_PREFIX = "group:"


class Route:
    """Routes, labels and the classifier decide what the alert becomes (`bot.domain.rules`):
    its service (so team and escalation policy), severity and category; a route may drop
    it, or group related alerts from any source into one open incident.
    """

    def __init__(self, directory: Directory, rules: Rules, on_route: RouteCounter) -> None:
        self.directory = directory
        self.rules = rules
        self.on_route = on_route

    async def __call__(self, ctx: AlertContext) -> Decision | None:
        routing = self.rules.decide(
            ctx.alert, integration=ctx.integration.name, default_service=ctx.integration.service
        )
        ctx.routing = routing
        self.on_route(ctx.uow, routing)
        firing = ctx.alert.status is AlertStatus.FIRING
        if firing and routing.dropped_by is not None:
            return Dropped(alert=ctx.alert, by=f"route {routing.dropped_by}")
        if ctx.incident is None and routing.group is not None:
            await self._find_group(ctx, routing.group)
        if firing and ctx.incident is None:
            ctx.ownership = route(
                self.directory,
                service_id=routing.service.value if routing.service else None,
                fallback_service=ctx.integration.service,
            )
        return None

    async def _find_group(self, ctx: AlertContext, group: GroupSpec) -> None:
        """The open incident of the alert's group: the one holding this alert, else the
        newest while its window lasts (else a new one opens)."""
        prefix = f"{GROUP_PREFIX}{group.key}:"
        ctx.group_prefix = prefix
        candidates = await IncidentRepository(ctx.uow.session).open_in_group(prefix=prefix)
        if not candidates:
            return
        existing = await AlertRepository(ctx.uow.session).find(
            incident_ids=[incident.id for incident in candidates],
            fingerprint=ctx.alert.fingerprint,
        )
        if existing is not None:
            ctx.incident = next(i for i in candidates if i.id == existing.incident_id)
            ctx.existing = existing
            return
        newest = candidates[0]
        if group.window is None or ctx.now - newest.triggered_at < group.window:
            ctx.incident = newest


RouteCounter = Callable[[UnitOfWork, Routing], None]
"""Told of each alert's routing in its transaction (the pipeline counts routes with it)."""


def storm_key(integration: str) -> str:
    """The dedup key of an integration's "alert storm" incident."""
    return f"{integration}:storm"


class StormGuard:
    """Past `max_per_minute` new incidents a minute from one integration, new alerts join one
    "alert storm" incident instead of opening an incident (and a channel, and pages) each.

    Nothing is dropped: each alert is stored on the storm incident and counted there, and the
    monitor's resolve for it resolves it there. The guard lifts by itself once the
    integration opens fewer incidents a minute again.
    """

    def __init__(self, *, max_per_minute: int, default_severity: Severity) -> None:
        self.max_per_minute = max_per_minute
        self.default_severity = default_severity

    async def __call__(self, ctx: AlertContext) -> Decision | None:
        if ctx.incident is not None:
            return None
        key = storm_key(ctx.integration.name)
        incidents = IncidentRepository(ctx.uow.session)
        if ctx.alert.status is not AlertStatus.FIRING:  # perhaps one the storm holds
            storm = await incidents.get_open_by_dedup_key(dedup_key=key)
            if storm is not None:
                existing = await AlertRepository(ctx.uow.session).get(
                    incident_id=storm.id, fingerprint=ctx.alert.fingerprint
                )
                if existing is not None:
                    ctx.incident, ctx.existing = storm, existing
            return None
        opened = await incidents.count_opened_since(
            integration=ctx.integration.name,
            since=ctx.now - timedelta(minutes=1),
            excluding_dedup_key=key,
        )
        if opened < self.max_per_minute:
            return None
        storm = await incidents.get_open_by_dedup_key(dedup_key=key)
        if storm is None:
            return Open(alert=ctx.alert, new=self._storm_incident(ctx, key))
        existing = await AlertRepository(ctx.uow.session).get(
            incident_id=storm.id, fingerprint=ctx.alert.fingerprint
        )
        if existing is None:
            return GroupInto(alert=ctx.alert, incident=storm)
        return stored_repeat(ctx.alert, existing)

    def _storm_incident(self, ctx: AlertContext, key: str) -> NewIncident:
        name, limit = ctx.integration.name, self.max_per_minute
        ownership = ctx.ownership or Ownership(None, None, None)
        return NewIncident(
            title=f"Alert storm from {name}: more than {limit} new incidents a minute",
            description=(
                f"Integration {name} opened more than {limit} incidents within a minute. "
                "Further new alerts from it are grouped here, each stored and counted, "
                "instead of opening an incident and a channel each. The grouping lifts by "
                f"itself once {name} opens fewer than {limit} incidents a minute; to allow "
                "more, raise incidents.max_new_incidents_per_minute in the configuration."
            ),
            severity=ctx.alert.severity or self.default_severity,
            service_id=ownership.service_id,
            source=ctx.alert.source or ctx.integration.type,
            integration=name,
            dedup_key=key,
            labels={"pulseops_storm": "true"},
            actor=ctx.actor,
            text=f"Alert storm: more than {limit} new incidents a minute from {name}",
        )


class Group:
    """The last word: open an incident, join the open one, or move it as the monitor says."""

    def __init__(self, default_severity: Severity) -> None:
        self.default_severity = default_severity

    async def __call__(self, ctx: AlertContext) -> Decision:
        alert, incident = ctx.alert, ctx.incident
        if alert.status is AlertStatus.FIRING:
            if incident is None:
                return Open(alert=alert, new=self._new_incident(ctx))
            raised = raise_for(ctx, incident)
            if ctx.existing is not None:
                return stored_repeat(alert, ctx.existing, raised)
            group = ctx.routing.group if ctx.routing and ctx.group_prefix else None
            return GroupInto(
                alert=alert,
                incident=incident,
                grouped_by=f"route {group.route}" if group else None,
                raise_severity=raised,
            )
        if incident is None:
            return Ignore(alert=alert)
        if alert.status is AlertStatus.ACKNOWLEDGED:
            if incident.status is not Status.TRIGGERED:
                return Ignore(alert=alert, incident_id=incident.id)
            return AcknowledgeIncident(alert=alert, incident=incident)
        if ctx.existing is None:
            return Ignore(alert=alert, incident_id=incident.id)
        return ResolveAlert(
            alert=alert,
            incident=incident,
            alert_id=ctx.existing.id,
            already_resolved=ctx.existing.status == AlertStatus.RESOLVED.value,
        )

    def _new_incident(self, ctx: AlertContext) -> NewIncident:
        alert, routing = ctx.alert, ctx.routing
        ownership = ctx.ownership or Ownership(None, None, None)
        severity = routing.severity_value if routing else alert.severity
        key = ctx.dedup_key
        if ctx.group_prefix is not None:  # one incident per group and window
            key = f"{ctx.group_prefix}{ctx.now.timestamp():.6f}"
        return NewIncident(
            title=alert.title,
            description=alert.description,
            severity=severity or self.default_severity,
            service_id=ownership.service_id,
            source=alert.source or ctx.integration.type,
            integration=ctx.integration.name,
            dedup_key=key,
            labels=dict(alert.labels),
            links=[{"url": link.url, "text": link.text} for link in alert.links],
            actor=ctx.actor,
            text=f"Triggered by alert: {alert.title}",
            category=routing.category.value if routing and routing.category else None,
            routed=tuple(routing.explain()) if routing and routing.by_rules else (),
        )
