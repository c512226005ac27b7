"""`POST /slack/events`: Slack's signed requests, checked, refused when replayed, handed to Bolt.

Bolt checks signatures, but a signed request stays valid for Slack's five-minute window, so a
captured one could be sent again (declaring the incident again, paging again). Before Bolt
runs, the signature is checked here with slack_sdk's verifier (so unsigned junk cannot fill
the replay log), the body is parsed as Bolt parses it (a body it cannot read is a 400 naming
the field), and the request's identity, a hash of its signed timestamp and body, is recorded
in the `slack_requests` table that every replica shares. A request already recorded is
answered 200 with an empty body (what Slack expects of a retry) and no listener runs.

Slack retries an Events API delivery with a new signature and `X-Slack-Retry-Num` (over
Socket Mode: a new envelope with `retry_attempt`, possibly on another replica's connection), so
events are also deduplicated by `event_id`: here over HTTP, and by
`bot.server.ClaimingSocketModeHandler` over Socket Mode, which also deduplicates every other
envelope by its `envelope_id` (Socket Mode requests are not signed: the socket is the
authentication). A delivery is *claimed* in the shared table before it runs, for the lease
PULSEOPS_SLACK_CLAIM_LEASE sets, and *settled* once it is answered; an event is answered only
once its listener has finished (`handlers.listener_runs`), so a replica killed mid-work leaves
it to Slack's retry. A retry that finds a live claim is not answered with success (503 over
HTTP), so that Slack tries again later, and one that finds a claim whose lease ran out (its
replica died) takes it over.

Signatures are checked against the wall clock, as Slack and Bolt do, whatever clock the app's
services run on; the log's expiry times come from the same clock.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_bolt.request.async_internals import build_async_context
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.request.payload_utils import (
    to_action,
    to_command,
    to_event,
    to_message,
    to_options,
    to_shortcut,
    to_step,
    to_view,
)
from slack_bolt.response import BoltResponse
from slack_sdk.signature import Clock, SignatureVerifier

from bot.deps import Deps
from bot.errors import AuthError, RequestTimeout, UserError
from handlers import listener_runs
from store.session import Database
from store.slack_requests import Claim, SlackRequestRepository

log = logging.getLogger("pulseops.slack")

SIGNATURE_WINDOW = 300  # seconds: Slack's (and slack_sdk's) tolerance for a request's age
CLOCK_SKEW = 60  # seconds replicas' clocks may disagree; a key is kept this much longer
EVENT_MEMORY = timedelta(hours=1)  # Slack retries an event three times within ~5 minutes
_TIMESTAMP = re.compile(r"[0-9]{1,12}")  # Unix seconds, ASCII digits only (int() takes more)
Wall = Callable[[], float]


class _WallClock(Clock):
    """slack_sdk's clock interface over an injectable wall clock."""

    def __init__(self, wall: Wall) -> None:
        self.wall = wall

    def now(self) -> float:
        return self.wall()


class BadSignature(AuthError):
    """The request is not signed with the app's signing secret (HTTP 401)."""


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """A request whose signature checked out: its signed timestamp, raw body and parsed body."""

    timestamp: int
    raw: str
    body: dict[str, Any]

    @property
    def key(self) -> str:
        """Its identity in the replay log: what the signature covers, hashed."""
        signed = f"v0:{self.timestamp}:{self.raw}".encode()
        return "r:" + hashlib.sha256(signed).hexdigest()

    @property
    def expires_at(self) -> datetime:
        """When a replay of it can no longer pass the signature's time check (on any replica)."""
        return datetime.fromtimestamp(self.timestamp + SIGNATURE_WINDOW + CLOCK_SKEW, UTC)


def event_key(event_id: str) -> str:
    """An Events API event's identity in the replay log."""
    return "e:" + hashlib.sha256(event_id.encode("utf-8", "surrogatepass")).hexdigest()


def envelope_key(envelope_type: str, envelope_id: str, payload: Mapping[str, Any]) -> str:
    """A Socket Mode envelope's identity in the replay log.

    An Events API envelope is its event (Slack's retries of it come in new envelopes with the
    same `event_id`, and over HTTP too); any other envelope is its `envelope_id`, which a
    repeated delivery of the same envelope keeps.
    """
    event_id = payload.get("event_id")
    if envelope_type == "events_api" and isinstance(event_id, str) and event_id:
        return event_key(event_id)
    return "v:" + hashlib.sha256(envelope_id.encode("utf-8", "surrogatepass")).hexdigest()


def _is_ssl_check(raw: str) -> bool:
    return "ssl_check=1" in raw and dict(parse_qsl(raw)).get("ssl_check") == "1"


def parse_body(raw: str, content_type: str | None) -> dict[str, Any]:
    """The body: JSON, a form, or a form whose `payload` field is JSON (as Bolt tells them).

    Raises:
        UserError: the body (or its `payload` field) is not a JSON object where one is due.
    """
    if content_type == "application/json" or raw.startswith("{"):
        return _json_object(raw, field="body")
    form = dict(parse_qsl(raw, keep_blank_values=True))
    if "payload" in form:
        return _json_object(form["payload"], field="payload")
    return form


def _json_object(text: str, *, field: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise UserError(
            f"the Slack request's {field} is not JSON", fields={field: "not JSON"}
        ) from None
    if not isinstance(value, dict):
        raise UserError(
            f"the Slack request's {field} is not a JSON object", fields={field: "not an object"}
        )
    return value


def check_signed(
    raw: bytes, headers: Mapping[str, str], *, verifier: SignatureVerifier
) -> SignedRequest:
    """Check a request's timestamp and signature, then parse its body.

    `headers` have lower-case names.

    Raises:
        BadSignature: the timestamp is missing or not a number, or the signature is wrong
            or too old.
        UserError: the request is signed but its body cannot be read.
    """
    timestamp = headers.get("x-slack-request-timestamp", "")
    if not _TIMESTAMP.fullmatch(timestamp):
        raise BadSignature("X-Slack-Request-Timestamp is missing or not a number")
    signature = headers.get("x-slack-signature", "")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:  # Slack signs UTF-8 text; nothing else can carry its signature
        raise BadSignature("the request is not signed by Slack") from None
    if not signature or not verifier.is_valid(text, timestamp, signature):
        raise BadSignature("the request is not signed by Slack, or it is too old")
    content_type = headers.get("content-type")
    body = parse_body(text, content_type.split(";")[0] if content_type else None)
    return SignedRequest(timestamp=int(timestamp), raw=text, body=body)


# What Bolt makes of every body before any listener runs (the arguments it offers them)
_BOLT_READERS = (
    to_options,
    to_shortcut,
    to_action,
    to_view,
    to_command,
    to_event,
    to_message,
    to_step,
)


def bolt_can_read(body: dict[str, Any]) -> bool:
    """Whether Bolt's middleware and listener matchers can read `body` without failing.

    Bolt indexes into a body unchecked (`body["actions"][0]["action_id"]`,
    `body["view"]["type"]`, `body.get("event", {}).get(...)`): Slack's own requests always
    fit, but a signed malformed one would fail inside Bolt, as a 500.
    """
    event, view, actions = body.get("event"), body.get("view"), body.get("actions")
    if event is not None and not isinstance(event, dict):
        return False
    if view is not None and not isinstance(view, dict):
        return False
    if body.get("type") in ("view_submission", "view_closed") and view is not None:
        if not (isinstance(view.get("type"), str) and isinstance(view.get("callback_id"), str)):
            return False
    if body.get("type") in ("block_actions", "interactive_message") and "actions" in body:
        if not (isinstance(actions, list) and actions and isinstance(actions[0], dict)):
            return False
        if not isinstance(actions[0].get("action_id", ""), str):
            return False
        if body.get("type") == "block_actions" and "action_id" not in actions[0]:
            return False
    try:
        for read in _BOLT_READERS:
            read(body)
    except Exception:
        return False
    return True


class ReplayLog:
    """The handled requests' keys in the database, so that every replica refuses a replay;
    and the deliveries this replica claimed while it handles them, each for `lease` seconds
    (PULSEOPS_SLACK_CLAIM_LEASE)."""

    def __init__(self, db: Database, *, lease: float, wall: Wall = time.time) -> None:
        self.db = db
        self.wall = wall
        self.lease = lease
        self.holder = uuid.uuid4().hex  # this replica, in its claims

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.wall(), UTC)

    async def first(self, key: str, *, expires_at: datetime) -> bool:
        """Record `key`; True the first time, False for a repeat.

        When the database cannot record it, the request is let through (True, logged): the
        listeners write to the same database, so refusing here would only replace their
        answers (an error id a person can quote) with Slack's generic failure.
        """
        try:
            async with self.db.write() as session:
                return await SlackRequestRepository(session).remember(
                    key=key, expires_at=expires_at
                )
        except Exception:
            log.exception("could not record a Slack request; replay protection skipped for it")
            return True

    async def claim(self, key: str, *, memory: timedelta = EVENT_MEMORY) -> Claim:
        """Claim a delivery for this replica (see `SlackRequestRepository.claim`).

        When the database cannot record it, the delivery is handled (NEW, logged), as `first`
        lets a request through.
        """
        now = self.now()
        try:
            async with self.db.write() as session:
                return await SlackRequestRepository(session).claim(
                    key=key,
                    holder=self.holder,
                    now=now,
                    lease_until=now + timedelta(seconds=self.lease),
                    expires_at=now + memory,
                )
        except Exception:
            log.exception("could not claim a Slack delivery; deduplication skipped for it")
            return Claim.NEW

    async def settle(self, key: str) -> None:
        """The delivery this replica claimed is answered: its retries are dropped from now on.

        Left to the lease when the database cannot record it (logged): a retry then waits for
        the lease to end and runs again.
        """

        async def mark(session: Any) -> None:
            await SlackRequestRepository(session).settle(key=key, holder=self.holder)

        try:
            await self.db.write_grouped(mark)
        except Exception:
            log.exception("could not mark a Slack delivery handled")

    async def release(self, key: str) -> None:
        """This replica could not handle the delivery it claimed: a retry may run it at once."""
        try:
            async with self.db.write() as session:
                await SlackRequestRepository(session).release(key=key, holder=self.holder)
        except Exception:
            log.exception("could not release a Slack delivery; a retry waits for its lease")

    async def run_event(
        self,
        bolt: AsyncApp,
        request: AsyncBoltRequest,
        *,
        key: str,
        lease_ends: float,
        about: Mapping[str, Any],
    ) -> BoltResponse | None:
        """Dispatch an Events API delivery this replica claimed as `key` and wait for its
        listener, until `lease_ends` (`time.monotonic()`).

        Returns Bolt's answer once the listener has finished and the claim is settled; None
        when the delivery is left for Slack's retry: the listener failed (the claim released)
        or outlived the lease (stopped, so that the retry taking the claim over never runs
        beside it). `about` goes into those log lines.
        """
        run = listener_runs.watch(request)
        try:
            response = await bolt.async_dispatch(request)
            finished = await run.wait(lease_ends - time.monotonic())
        except BaseException:
            run.cancel()
            await self.release(key)
            raise
        if not finished:
            run.cancel()
            log.warning("event listener outlived its claim; left for Slack to retry", extra=about)
            return None
        if run.failed or response.status >= 500:
            await self.release(key)
            log.warning("event listener failed; left for Slack to retry", extra=about)
            return None
        await self.settle(key)
        return response

    async def purge(self) -> int:
        """Scheduler job: forget the keys no replay can match any more."""
        async with self.db.write() as session:
            return await SlackRequestRepository(session).purge(now=self.now())


class SlackEndpoint:
    """The `POST /slack/events` route, and the Events API deduplication for Bolt."""

    def __init__(
        self,
        bolt: AsyncApp,
        *,
        replays: ReplayLog,
        signing_secret: str,
        body_timeout: float,
    ) -> None:
        self.bolt = bolt
        self.replays = replays
        self.body_timeout = body_timeout
        # no secret configured: a random one, so that nothing verifies
        self.verifier = SignatureVerifier(
            signing_secret or secrets.token_hex(16), clock=_WallClock(replays.wall)
        )

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Check, deduplicate and dispatch one request from Slack.

        Returns Bolt's answer; 200 with an empty body for a replay.

        Raises:
            BadSignature: not signed, badly signed, too old, or a timestamp that is no number.
            UserError: a signed body Bolt cannot read (400, naming the field).
            RequestTimeout: the body did not arrive in time.
        """
        try:
            async with asyncio.timeout(self.body_timeout):
                raw = await request.read()
        except TimeoutError:
            raise RequestTimeout(
                f"the body did not arrive within {self.body_timeout:g} s",
                fields={"body": "too slow"},
            ) from None
        # one value per header, as Bolt takes them (the last of repeated ones)
        headers = {name.lower(): value for name, value in request.headers.items()}
        try:
            signed = check_signed(raw, headers, verifier=self.verifier)
        except BadSignature:
            text = raw.decode("utf-8", "replace")
            if not _is_ssl_check(text):
                raise
            # Bolt answers Slack's SSL check (which may come unsigned) and runs no listener
            return await self._dispatch(self._bolt_request(text, headers, request))
        bolt_request = self._bolt_request(signed.raw, headers, request, body=signed.body)
        if not await self.replays.first(signed.key, expires_at=signed.expires_at):
            log.info(
                "replayed Slack request ignored",
                extra={"type": signed.body.get("type"), "retry": headers.get("x-slack-retry-num")},
            )
            return web.Response(status=200)
        body = signed.body
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if isinstance(event_id, str):
            return await self._run_event(event_id, bolt_request)
        return await self._dispatch(bolt_request)

    @staticmethod
    def _bolt_request(
        raw: str,
        headers: dict[str, str],
        request: web.Request,
        *,
        body: dict[str, Any] | None = None,
    ) -> AsyncBoltRequest:
        """Bolt's request for `raw`; `body`, when given, is what Bolt must read it as.

        Raises:
            UserError: Bolt could not read the body (400): Slack's requests always fit.
        """
        unreadable = UserError(
            "the body is not shaped like a Slack request", fields={"body": "unexpected shape"}
        )
        try:  # Bolt reads ids out of the body as it builds the request
            bolt_request = AsyncBoltRequest(
                body=raw,
                query=request.query_string,
                headers=headers,  # type: ignore[arg-type]
            )
            if body is not None and bolt_request.body != body:
                # Bolt takes any form containing the text "payload" for an interaction and
                # reads `/incident status payload` as an empty body: give it the real one
                bolt_request.body = body
                bolt_request.context = build_async_context(AsyncBoltContext({}), body)
        except Exception:
            raise unreadable from None
        if not bolt_can_read(bolt_request.body):
            raise unreadable
        return bolt_request

    async def _dispatch(self, bolt_request: AsyncBoltRequest) -> web.StreamResponse:
        return await to_aiohttp_response(await self.bolt.async_dispatch(bolt_request))

    async def _run_event(self, event_id: str, bolt_request: AsyncBoltRequest) -> web.StreamResponse:
        """An Events API delivery over HTTP: claimed across replicas, answered once its listener
        has finished, so that a replica killed mid-work leaves the event to Slack's retry.

        An event already handled is answered 200 and dropped; one another replica is still
        handling is answered 503, as is one whose listener failed (released) or outlived the
        claim's lease (stopped), so that Slack retries it later.
        """
        lease_ends = time.monotonic() + self.replays.lease  # measured before the claim
        key = event_key(event_id)
        about = {"event_id": event_id[:64], "retry": bolt_request.headers.get("x-slack-retry-num")}
        claim = await self.replays.claim(key)
        if claim is Claim.DONE:
            log.info("repeated Slack event ignored", extra=about)
            return web.Response(status=200)
        if claim is Claim.BUSY:
            log.info("Slack event still handled elsewhere", extra=about)
            return web.Response(status=503)
        response = await self.replays.run_event(
            self.bolt, bolt_request, key=key, lease_ends=lease_ends, about=about
        )
        if response is None:
            return web.Response(status=503)
        return await to_aiohttp_response(response)

    async def purge(self) -> int:
        """Scheduler job: forget the requests and events no replay or retry can match."""
        return await self.replays.purge()


def register(bolt: AsyncApp, deps: Deps, *, body_timeout: float) -> SlackEndpoint:
    """The endpoint for the HTTP route, with its replay log.

    The caller adds `endpoint.handle` as `POST /slack/events` (HTTP mode), connects Socket
    Mode with `endpoint.replays` (`bot.server.connect_socket_mode`), and runs `endpoint.purge`
    periodically.
    """
    secret = deps.settings.slack_signing_secret
    endpoint = SlackEndpoint(
        bolt,
        replays=ReplayLog(deps.db, lease=deps.settings.slack_claim_lease),
        signing_secret=secret.get_secret_value() if secret is not None else "",
        body_timeout=body_timeout,
    )
    return endpoint
