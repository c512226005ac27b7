"""Finding what an earlier attempt may have done in Slack: marked posts and uploads, the bot's
own channels.

A post, an upload or a channel creation whose answer was lost (a timeout, a dropped
connection, a process that died) may still have happened. Before calling again the gateway
looks here: each post carries a `PostMark` in its message metadata, each upload a `FileMark`
in its file name (files carry no metadata), and a channel is recognised by its name, its
creator (the bot) and not being archived.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.errors import SlackFatal

log = logging.getLogger(__name__)

Call = Callable[..., Awaitable[dict[str, Any]]]

MARK_EVENT_TYPE = "pulseops_delivery"
# How far before a row's creation a look for its post starts: covers clock skew between
# this host and Slack, and keeps the scan of a busy channel short.
LOOK_BACK_SECONDS = 300.0
HISTORY_PAGE = 200
FILE_PAGE = 100  # files.list's `count` (Slack's default page)
CHANNEL_PAGE = 1000
MAX_PAGES = 10  # history pages (2,000 messages) or channel-list pages scanned at most
# Looking is impossible (the bot cannot read that conversation): the caller posts unchecked
CANNOT_LOOK = frozenset(
    {"not_in_channel", "channel_not_found", "missing_scope", "is_archived", "access_denied"}
)


@dataclass(frozen=True, slots=True)
class PostMark:
    """What identifies one delivery's message in Slack: the outbox row and its step.

    Sent as the message's metadata, so a later attempt can find a post that Slack made
    although its answer never arrived. `since` is when the row was recorded: no earlier
    message can be its post.
    """

    outbox_id: int
    step: str
    since: datetime
    incident_id: int | None = None

    def metadata(self) -> dict[str, Any]:
        """The `metadata` argument of chat.postMessage."""
        payload: dict[str, Any] = {"outbox_id": self.outbox_id, "step": self.step}
        if self.incident_id is not None:
            payload["incident_id"] = self.incident_id
        return {"event_type": MARK_EVENT_TYPE, "event_payload": payload}

    def matches(self, metadata: Any) -> bool:
        """Whether a message's metadata (from conversations.history) carries this mark."""
        payload = _mark_payload(metadata)
        return (
            payload is not None
            and payload.get("outbox_id") == self.outbox_id
            and payload.get("step") == self.step
        )


def _mark_payload(metadata: Any) -> dict[str, Any] | None:
    """The payload of a PulseOps mark in a message's metadata, or None if it carries none."""
    if not isinstance(metadata, dict) or metadata.get("event_type") != MARK_EVENT_TYPE:
        return None
    payload = metadata.get("event_payload")
    return payload if isinstance(payload, dict) else None


def _cursor(data: dict[str, Any]) -> str | None:
    return (data.get("response_metadata") or {}).get("next_cursor") or None


@dataclass(frozen=True, slots=True)
class PageMark(PostMark):
    """The mark of a page DM, one page or a bundle: the page ids it carries.

    It matches any DM that carries `page_id`, so a delivery of that page finds the message
    an earlier delivery (of it, or of a page bundled with it) posted but could not record.
    """

    page_id: int = 0
    pages: tuple[int, ...] = ()

    def metadata(self) -> dict[str, Any]:
        marked = PostMark.metadata(self)
        marked["event_payload"]["pages"] = list(self.pages)
        return marked

    def matches(self, metadata: Any) -> bool:
        payload = _mark_payload(metadata)
        return (
            payload is not None
            and payload.get("step") == self.step
            and self.page_id in (payload.get("pages") or ())
        )


@dataclass(frozen=True, slots=True)
class FileMark:
    """What identifies one delivery's upload in Slack: the outbox row and its step, written
    into the file's name (`chart.png` becomes `chart.o17-chart.png`), so a later attempt finds
    a file Slack shared although its answer never arrived. `since` is when the row was
    recorded: no earlier file can be its upload."""

    outbox_id: int
    step: str
    since: datetime

    @property
    def tag(self) -> str:
        return f".o{self.outbox_id}-{self.step}."

    def filename(self, name: str) -> str:
        """`name` with the mark before its extension."""
        stem, dot, ext = name.rpartition(".")
        return f"{stem}{self.tag}{ext}" if dot else f"{name}{self.tag}bin"

    def matches(self, file: dict[str, Any]) -> bool:
        """Whether a file (from files.list) is this delivery's upload."""
        return self.tag in str(file.get("name", ""))


async def find_file(call: Call, channel: str, mark: FileMark, *, user: str) -> str | None:
    """The ID of the file `user` (the bot) shared in `channel` carrying `mark`, or None.

    files.list, filtered by channel, uploader and creation time (from a little before the
    row was recorded), newest first, at most MAX_PAGES pages. None when the bot cannot list
    the channel's files: nothing can be checked.

    Raises:
        SlackRetryable: the list could not be read now (look again later).
        SlackFatal: any other refusal.
    """
    ts_from = int(mark.since.timestamp() - LOOK_BACK_SECONDS)
    for page in range(1, MAX_PAGES + 1):
        try:
            data = await call(
                "files.list",
                channel=channel,
                user=user,
                ts_from=str(ts_from),
                count=FILE_PAGE,
                page=page,
            )
        except SlackFatal as exc:
            if exc.error not in CANNOT_LOOK:
                raise
            log.warning(
                "cannot look for an earlier upload before uploading again",
                extra={"channel": channel, "error": exc.error, "step": mark.step},
            )
            return None
        for file in data.get("files", []):
            if isinstance(file, dict) and mark.matches(file):
                return str(file["id"])
        if page >= int((data.get("paging") or {}).get("pages") or 1):
            return None
    return None


async def _history(
    call: Call, channel: str, *, oldest: float, step: str, thread_ts: str | None = None
) -> AsyncIterator[dict[str, Any]]:
    """The channel's messages since `oldest` (or the thread's replies), newest first, at most
    MAX_PAGES pages; none when the bot cannot read the channel."""
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        try:
            data = await call(
                "conversations.replies" if thread_ts else "conversations.history",
                channel=channel,
                oldest=f"{oldest:.6f}",
                limit=HISTORY_PAGE,
                include_all_metadata=True,
                **({"ts": thread_ts} if thread_ts else {}),
                **({"cursor": cursor} if cursor else {}),
            )
        except SlackFatal as exc:
            if exc.error not in CANNOT_LOOK:
                raise
            log.warning(
                "cannot look for an earlier post before posting again",
                extra={"channel": channel, "error": exc.error, "step": step},
            )
            return
        for message in data.get("messages", []):
            yield message
        cursor = _cursor(data)
        if cursor is None:
            return


async def find_post(
    call: Call, channel: str, mark: PostMark, *, thread_ts: str | None = None
) -> tuple[str, str] | None:
    """(channel, ts) of the message carrying `mark` in the channel's recent history, or
    among the replies of the thread `thread_ts` (history holds no thread replies).

    None when there is none, or when the bot cannot read the channel (it may post in a
    public channel with chat:write.public without being a member): nothing can be checked.

    Raises:
        SlackRetryable: the history could not be read now (look again later).
        SlackFatal: any other refusal.
    """
    oldest = mark.since.timestamp() - LOOK_BACK_SECONDS
    async for message in _history(
        call, channel, oldest=oldest, step=mark.step, thread_ts=thread_ts
    ):
        if mark.matches(message.get("metadata")):
            return channel, str(message["ts"])
    return None


async def find_page_posts(call: Call, channel: str, *, since: datetime) -> dict[int, str]:
    """The page DMs posted in `channel` since `since`: page id -> the ts of the DM carrying
    it (newest wins). Raises as `find_post` does."""
    found: dict[int, str] = {}
    oldest = since.timestamp() - LOOK_BACK_SECONDS
    async for message in _history(call, channel, oldest=oldest, step="page"):
        payload = _mark_payload(message.get("metadata"))
        if payload is None or payload.get("step") != "page":
            continue
        for page_id in payload.get("pages") or ():
            if isinstance(page_id, int):
                found.setdefault(page_id, str(message["ts"]))
    return found


async def find_channel(
    call: Call, names: Sequence[str], *, private: bool, bot_user: str
) -> dict[str, Any] | None:
    """The first of `names` that is an unarchived channel `bot_user` created, or None.

    Slack has no lookup by name, so conversations.list is scanned (bounded). A channel
    someone else created, or an archived one, is never adopted.
    """
    wanted = set(names)
    found: dict[str, dict[str, Any]] = {}
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        data = await call(
            "conversations.list",
            types="private_channel" if private else "public_channel",
            exclude_archived=True,
            limit=CHANNEL_PAGE,
            **({"cursor": cursor} if cursor else {}),
        )
        for channel in data.get("channels", []):
            name = channel.get("name")
            if (
                name in wanted
                and channel.get("creator") == bot_user
                and not channel.get("is_archived")
            ):
                found.setdefault(str(name), dict(channel))
        cursor = _cursor(data)
        if cursor is None:
            break
    return next((found[name] for name in names if name in found), None)
