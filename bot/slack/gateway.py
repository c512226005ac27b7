"""One gateway over Slack's Web API: intent-level methods, retries, per-method back-off.

Two pure helpers decide: `classify` (is a failure retryable, and after how long) and
`backoff_delay` (capped exponential back-off with jitter). Failures leave as our own
`SlackRetryable` / `SlackFatal` so callers (the outbox) never see slack_sdk types.

Posting a message, uploading a file and creating a channel are not idempotent: after a
failure that may hide a success (a timeout, a dropped connection, a 5xx) they are never simply
repeated. Each post carries a `PostMark` in its message metadata and each upload a `FileMark`
in its file name; the gateway looks for the marked message or file (or the bot's own channel
of that name) and adopts it before calling again.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import SlackError, SlackFatal, SlackRetryable, SlackUnsure
from bot.metrics import Metrics
from bot.slack import lookup
from bot.slack.lookup import FileMark, PostMark

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRYABLE_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
# Slack gave up waiting on itself: the work may still be carried out after the answer
IN_FLIGHT_ERRORS = frozenset({"request_timeout"})


def classify(
    method: str, *, status: int | None, error: str | None, retry_after: str | None = None
) -> SlackError:
    """Turn one failed call into SlackRetryable (429, 5xx, transient errors) or SlackFatal."""
    error = error or f"http_{status}"
    if status == 429:
        try:
            after = max(float(retry_after or 1), 0.0)
        except ValueError:
            after = 1.0
        return SlackRetryable(method, "ratelimited", status=status, retry_after=after)
    if (status is not None and status >= 500) or error in RETRYABLE_ERRORS:
        return SlackRetryable(method, error, status=status)
    return SlackFatal(method, error, status=status)


def backoff_delay(
    attempt: int, *, base: float = 0.5, cap: float = 60.0, rand: Callable[[], float] = random.random
) -> float:
    """Delay before retry number `attempt` (1-based): full-jitter exponential, capped."""
    ceiling = min(cap, base * 2.0 ** max(attempt - 1, 0))
    return ceiling / 2 + rand() * ceiling / 2


class SlackGateway:
    """Intent-level Slack calls with bounded in-call retries and per-method back-off.

    Waits up to `max_inline_wait` seconds inside a call (short 429s, a 5xx blip); a longer
    wait raises SlackRetryable so the outbox reschedules and other work keeps flowing.
    A call that timed out may still be carried out by Slack: before looking for its result
    the gateway waits `settle` seconds (twice the client's timeout unless given).
    """

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        metrics: Metrics | None = None,
        max_attempts: int = 3,
        max_inline_wait: float = 2.0,
        settle: float | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.metrics = metrics
        self.max_attempts = max_attempts
        self.max_inline_wait = max_inline_wait
        self.settle = settle if settle is not None else 2.0 * float(client.timeout)
        self._monotonic = monotonic
        self._blocked_until: dict[str, float] = {}
        self._bot_user: str | None = None

    async def call(self, method: str, **kwargs: Any) -> dict[str, Any]:
        """Call `method`; retry what can succeed soon; raise SlackRetryable / SlackFatal."""
        return await self._call(method, kwargs, repeat=True)

    async def call_once(self, method: str, **kwargs: Any) -> dict[str, Any]:
        """Call a method that must not run twice: retry only failures Slack surely did not
        act on (429, no connection); raise SlackUnsure for those that may hide a success."""
        return await self._call(method, kwargs, repeat=False)

    async def _call(self, method: str, kwargs: dict[str, Any], *, repeat: bool) -> dict[str, Any]:
        attempt = 0
        # chat.postMessage is limited per channel: a busy channel must not hold back a DM
        key = f"{method} {kwargs.get('channel')}" if method == "chat.postMessage" else method
        while True:
            attempt += 1
            wait = self._blocked_until.get(key, 0.0) - self._monotonic()
            if wait > self.max_inline_wait:
                raise SlackRetryable(method, "ratelimited", status=429, retry_after=wait)
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                # the typed client methods know which Slack methods take JSON and which forms
                response = await getattr(self.client, method.replace(".", "_"))(**kwargs)
                self._count(method, "ok")
                return dict(response.data) if isinstance(response.data, dict) else {}
            except SlackApiError as exc:
                resp = exc.response
                err = classify(
                    method,
                    status=resp.status_code,
                    error=(resp.data or {}).get("error") if isinstance(resp.data, dict) else None,
                    retry_after=(resp.headers or {}).get("Retry-After")
                    or (resp.headers or {}).get("retry-after"),
                )
                if isinstance(err, SlackFatal) and isinstance(resp.data, dict):
                    err.response = resp.data  # type: ignore[attr-defined]
                elif not repeat and err.status != 429:  # a 429 is never carried out
                    err = SlackUnsure(
                        method,
                        err.error,
                        status=err.status,
                        in_flight=err.error in IN_FLIGHT_ERRORS or err.status == 504,
                    )
            except aiohttp.ClientConnectorError as exc:  # never reached Slack
                err = SlackRetryable(method, f"network: {type(exc).__name__}")
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                error = f"network: {type(exc).__name__}"
                err = (
                    SlackRetryable(method, error)
                    if repeat
                    else SlackUnsure(method, error, in_flight=True)
                )
            self._count(method, err.error)
            if isinstance(err, SlackFatal | SlackUnsure):
                raise err
            assert isinstance(err, SlackRetryable)
            delay = err.retry_after if err.retry_after is not None else backoff_delay(attempt)
            if err.status == 429:
                self._blocked_until[key] = self._monotonic() + delay
            if attempt >= self.max_attempts or delay > self.max_inline_wait:
                err.retry_after = delay
                raise err
            if self.metrics:
                self.metrics.slack_retries.labels(method=method).inc()
            await asyncio.sleep(delay)

    def _count(self, method: str, result: str) -> None:
        if self.metrics:
            self.metrics.slack_calls.labels(method=method, result=result).inc()

    # intent-level methods -------------------------------------------------------------

    async def _exactly_once(
        self,
        attempt_call: Callable[[], Awaitable[T]],
        find: Callable[[], Awaitable[T | None]],
        *,
        look_first: bool = False,
    ) -> T:
        """Run a call that must happen once; after a failure that may hide a success, look
        for its result (`find`) and adopt it instead of calling again.

        `look_first` looks before the first call too: an earlier delivery may have made it.
        When Slack may still be working on a timed-out call, the look waits `settle`
        seconds; if that is longer than `max_inline_wait`, the SlackUnsure leaves with that
        delay, so the outbox looks later.
        """
        if look_first:
            found = await find()
            if found is not None:
                return found
        attempt = 0
        while True:
            attempt += 1
            try:
                return await attempt_call()
            except SlackUnsure as exc:
                wait = self.settle if exc.in_flight else backoff_delay(attempt)
                if attempt >= self.max_attempts or wait > self.max_inline_wait:
                    exc.retry_after = max(exc.retry_after or 0.0, wait)
                    raise
                await asyncio.sleep(wait)
            found = await find()
            if found is not None:
                return found

    async def bot_user_id(self) -> str:
        """The bot's own user ID (auth.test, asked once)."""
        if self._bot_user is None:
            self._bot_user = str((await self.call("auth.test"))["user_id"])
        return self._bot_user

    async def create_channel(
        self, name: str, *, private: bool = False, maybe_ours: bool = False
    ) -> dict[str, Any]:
        """Create a channel; adopt the bot's own channel of that name if an earlier attempt
        may have created it (`maybe_ours`, or a failure here that may hide a success).

        A name is taken once, so a repeated create cannot make a second channel: it answers
        name_taken, and only then (or after a create whose answer was lost) is the channel
        looked up. Raises SlackFatal name_taken when the name belongs to a channel the bot
        did not create, or an archived one.
        """
        unsure = maybe_ours

        async def find() -> dict[str, Any] | None:
            return await self.find_channel([name], private=private)

        async def create() -> dict[str, Any]:
            nonlocal unsure
            try:
                data = await self.call_once("conversations.create", name=name, is_private=private)
            except SlackUnsure:
                unsure = True
                raise
            except SlackFatal as exc:
                found = await find() if exc.error == "name_taken" and unsure else None
                if found is None:
                    raise
                return found
            return dict(data["channel"])

        return await self._exactly_once(create, find)

    async def find_channel(self, names: Sequence[str], *, private: bool) -> dict[str, Any] | None:
        """The first of `names` that is an unarchived channel the bot created, or None."""
        return await lookup.find_channel(
            self.call, names, private=private, bot_user=await self.bot_user_id()
        )

    async def invite(self, channel: str, users: Sequence[str]) -> list[dict[str, Any]]:
        """Invite users; per-user failures (already in, not found) are returned, not raised."""
        if not users:
            return []
        try:
            data = await self.call(
                "conversations.invite", channel=channel, users=",".join(users), force=True
            )
        except SlackFatal as exc:
            if exc.error in {"already_in_channel", "cant_invite_self", "user_not_found"}:
                return [{"error": exc.error}]
            raise
        return list(data.get("errors", []))

    async def channel_members(self, channel: str) -> set[str]:
        """Every member of `channel` (conversations.members, all pages)."""
        members: set[str] = set()
        cursor = ""
        while True:
            data = await self.call(
                "conversations.members", channel=channel, limit=200, cursor=cursor or None
            )
            members.update(str(m) for m in data.get("members", []))
            cursor = str((data.get("response_metadata") or {}).get("next_cursor") or "")
            if not cursor:
                return members

    async def set_topic(self, channel: str, topic: str) -> None:
        await self.call("conversations.setTopic", channel=channel, topic=topic[:250])

    async def post_message(
        self,
        channel: str,
        *,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
        mark: PostMark | None = None,
        look_first: bool = False,
        thread_ts: str | None = None,
    ) -> tuple[str, str]:
        """Post a message; return (channel ID, ts), the two keys chat.update needs later.

        With a `mark`, a post that may have been made already (`look_first`, or a failure
        that may hide a success) is looked for in the channel and adopted, never repeated.
        Without one, such a failure raises SlackUnsure and the caller decides.
        """
        args: dict[str, Any] = {
            "channel": channel,
            "text": text,
            "blocks": blocks or [],
            "unfurl_links": False,
            "unfurl_media": False,
        }
        if thread_ts is not None:
            args["thread_ts"] = thread_ts
        if mark is None:
            data = await self.call_once("chat.postMessage", **args)
            return str(data["channel"]), str(data["ts"])
        args["metadata"] = mark.metadata()

        async def post() -> tuple[str, str]:
            data = await self.call_once("chat.postMessage", **args)
            return str(data["channel"]), str(data["ts"])

        return await self._exactly_once(
            post,
            lambda: self.find_post(channel, mark, thread_ts=thread_ts),
            look_first=look_first,
        )

    async def find_post(
        self, channel: str, mark: PostMark, *, thread_ts: str | None = None
    ) -> tuple[str, str] | None:
        """(channel, ts) of the message carrying `mark` in the channel's recent history (or
        in the thread `thread_ts`)."""
        return await lookup.find_post(self.call, channel, mark, thread_ts=thread_ts)

    async def find_page_posts(self, channel: str, *, since: datetime) -> dict[int, str]:
        """Page id -> ts of each page DM posted in `channel` since `since` (by its mark)."""
        return await lookup.find_page_posts(self.call, channel, since=since)

    async def update_message(
        self, channel: str, ts: str, *, text: str, blocks: list[dict[str, Any]]
    ) -> None:
        await self.call("chat.update", channel=channel, ts=ts, text=text, blocks=blocks)

    async def pin(self, channel: str, ts: str) -> None:
        try:
            await self.call("pins.add", channel=channel, timestamp=ts)
        except SlackFatal as exc:
            if exc.error != "already_pinned":
                raise

    async def fetch_message(self, channel: str, ts: str) -> dict[str, Any] | None:
        """The message `ts` of `channel` (a thread reply too), or None when it is gone."""
        data = await self.call(
            "conversations.history", channel=channel, latest=ts, inclusive=True, limit=1
        )
        for message in data.get("messages") or []:
            if message.get("ts") == ts:
                return dict(message)
        try:  # not top-level: a thread reply
            data = await self.call(
                "conversations.replies", channel=channel, ts=ts, latest=ts, inclusive=True
            )
        except SlackFatal as exc:
            if exc.error == "thread_not_found":
                return None
            raise
        return next((dict(m) for m in data.get("messages") or [] if m.get("ts") == ts), None)

    async def permalink(self, channel: str, ts: str) -> str | None:
        """A link to the message, or None when Slack gives none."""
        try:
            data = await self.call("chat.getPermalink", channel=channel, message_ts=ts)
        except SlackFatal:
            return None
        return str(data.get("permalink") or "") or None

    async def rename_channel(self, channel: str, name: str) -> None:
        await self.call("conversations.rename", channel=channel, name=name)

    async def archive_channel(self, channel: str) -> None:
        """Archive `channel`; one archived already is fine."""
        try:
            await self.call("conversations.archive", channel=channel)
        except SlackFatal as exc:
            if exc.error != "already_archived":
                raise

    async def post_ephemeral(self, channel: str, user: str, *, text: str) -> None:
        """A message only `user` sees in `channel` (they must be in it)."""
        await self.call_once("chat.postEphemeral", channel=channel, user=user, text=text)

    async def open_dm(self, user: str) -> str:
        """The DM channel with `user` (conversations.open), for pages."""
        data = await self.call("conversations.open", users=user)
        return str(data["channel"]["id"])

    async def open_view(self, trigger_id: str, view: dict[str, Any]) -> None:
        """Open a modal for the person whose interaction issued `trigger_id` (valid 3 s, once)."""
        await self.call("views.open", trigger_id=trigger_id, view=view)

    async def update_view(
        self, view_id: str, view: dict[str, Any], *, hash: str | None = None
    ) -> None:
        """Replace an open modal (a stale `hash` fails rather than overwrite a newer one)."""
        args: dict[str, Any] = {"view_id": view_id, "view": view}
        if hash:
            args["hash"] = hash
        await self.call("views.update", **args)

    async def set_usergroup_members(self, usergroup: str, users: Sequence[str]) -> None:
        await self.call("usergroups.users.update", usergroup=usergroup, users=",".join(users))

    async def upload_file(
        self,
        *,
        channel: str,
        filename: str,
        content: bytes,
        title: str,
        initial_comment: str | None = None,
        thread_ts: str | None = None,
        mark: FileMark | None = None,
        look_first: bool = False,
    ) -> str:
        """Upload `content` and share it to `channel` (in the thread `thread_ts`, if given)
        with an optional comment; return the file ID.

        With a `mark` (in the file's name) the upload happens once: after a failure that may
        hide a success, or before the first try when `look_first` (an earlier delivery may
        have uploaded it), the bot's files in the channel are listed and a marked one is
        adopted instead of uploading again.
        """
        if mark is None:
            return await self._upload(
                channel, filename, content, title, initial_comment, thread_ts, once=False
            )
        user = await self.bot_user_id()
        marked = mark.filename(filename)

        async def upload() -> str:
            return await self._upload(
                channel, marked, content, title, initial_comment, thread_ts, once=True
            )

        return await self._exactly_once(
            upload,
            lambda: lookup.find_file(self.call, channel, mark, user=user),
            look_first=look_first,
        )

    async def _upload(
        self,
        channel: str,
        filename: str,
        content: bytes,
        title: str,
        initial_comment: str | None,
        thread_ts: str | None,
        *,
        once: bool,
    ) -> str:
        """Slack's external upload flow (files.upload is retired): files.getUploadURLExternal,
        POST the raw bytes to the returned upload_url, files.completeUploadExternal. The
        reservation retries like any `call`; the POST is not retried in place (a failed upload
        raises SlackRetryable for 429 / 5xx / network errors, SlackFatal otherwise) and the
        caller repeats the whole upload, since an upload URL is for one file. The last step
        shares the file: `once` makes it `call_once` (SlackUnsure when its answer is lost).
        `initial_comment` is mrkdwn: escape outside text before passing it. An unknown or
        invisible channel is reported by the last step (SlackFatal channel_not_found /
        not_in_channel).
        """
        reserved = await self.call(
            "files.getUploadURLExternal", filename=filename, length=len(content)
        )
        file_id, upload_url = str(reserved["file_id"]), str(reserved["upload_url"])
        step = "files.upload_url"  # the POST of the bytes, as a pseudo-method in metrics/errors
        session = self.client.session
        own_session = session is None or session.closed
        if own_session:
            session = aiohttp.ClientSession()
        assert session is not None
        try:
            async with session.post(
                upload_url,
                data=content,
                timeout=aiohttp.ClientTimeout(total=self.client.timeout),
                proxy=self.client.proxy,
                ssl=self.client.ssl or True,
            ) as resp:
                status, retry_after = resp.status, resp.headers.get("Retry-After")
                body = await resp.text(errors="replace")
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            self._count(step, "network")
            raise SlackRetryable(step, f"network: {type(exc).__name__}") from exc
        finally:
            if own_session:
                await session.close()
        if not 200 <= status < 300:
            err = classify(
                step,
                status=status,
                error=f"http_{status}",
                retry_after=retry_after,
            )
            self._count(step, err.error)
            log.warning("file upload to Slack failed: %s %s %.200s", filename, status, body)
            raise err
        self._count(step, "ok")
        await (self.call_once if once else self.call)(
            "files.completeUploadExternal",
            files=[{"id": file_id, "title": title}],
            channel_id=channel,
            initial_comment=initial_comment,
            **({"thread_ts": thread_ts} if thread_ts else {}),
        )
        return file_id
