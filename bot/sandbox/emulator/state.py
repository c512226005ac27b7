"""The emulated workspace: users, channels, messages, views, triggers and response URLs."""

from __future__ import annotations

import copy
import secrets
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from bot.sandbox.emulator.models import (
    APP_ID,
    BOT_ID,
    BOT_NAME,
    BOT_USER_ID,
    RESPONSE_URL_MAX_USES,
    RESPONSE_URL_TTL,
    TEAM_DOMAIN,
    TEAM_ID,
    TRIGGER_TTL,
    VERIFICATION_TOKEN,
    Channel,
    ChannelSeed,
    EmulatorUser,
    ResponseUrl,
    Trigger,
    public_message,
)

__all__ = [
    "APP_ID",
    "BOT_ID",
    "BOT_NAME",
    "BOT_USER_ID",
    "RESPONSE_URL_MAX_USES",
    "RESPONSE_URL_TTL",
    "TEAM_DOMAIN",
    "TEAM_ID",
    "TRIGGER_TTL",
    "VERIFICATION_TOKEN",
    "Channel",
    "ChannelSeed",
    "EmulatorUser",
    "ResponseUrl",
    "Trigger",
    "Workspace",
    "public_message",
]

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_ID_SPACE = 36**9
_ID_STRIDE = 48_436_515_137  # coprime to 36: a bijection of the id space that looks unordered


class Workspace:
    """Everything the emulated Slack workspace knows; mutated only by the event loop's thread."""

    def __init__(
        self,
        *,
        users: Iterable[EmulatorUser],
        channels: Iterable[ChannelSeed],
        bot_channels_member: bool,
        clock: Callable[[], float],
        usergroups: Iterable[tuple[str, str]] | None = None,
        paid_plan: bool = True,
    ) -> None:
        self.clock = clock
        self.paid_plan = paid_plan
        self.base_url = "http://127.0.0.1/"
        self._user_seeds = [copy.copy(u) for u in users]
        self._channel_seeds = list(channels)
        self._usergroup_seeds = list(usergroups) if usergroups is not None else None
        self.bot_channels_member = bot_channels_member
        self.strict_usergroups = usergroups is not None
        # Ids and timestamps never repeat, not even across resets: a bot may remember old ones.
        self._counter = 0
        self._last_ts = 0
        self.reset()

    def reset(self) -> None:
        """Return to the seeded state: seeded users and channels, nothing posted."""
        self.users: dict[str, EmulatorUser] = {
            BOT_USER_ID: EmulatorUser(
                id=BOT_USER_ID, name=BOT_NAME, real_name="PulseOps", is_bot=True
            )
        }
        for user in self._user_seeds:
            self.users[user.id] = copy.copy(user)
        self.channels: dict[str, Channel] = {}
        self.history: dict[str, list[dict[str, Any]]] = {}
        self.ephemerals: list[dict[str, Any]] = []
        self.views: dict[str, dict[str, Any]] = {}
        self.home_views: dict[str, dict[str, Any]] = {}
        self.modal_stacks: dict[str, list[str]] = {}
        self.triggers: dict[str, Trigger] = {}
        self.response_urls: dict[str, ResponseUrl] = {}
        self.usergroups: dict[str, dict[str, Any]] = {}
        self.files: dict[str, dict[str, Any]] = {}
        now = int(self.clock())
        humans = [u.id for u in self._user_seeds if not u.is_bot]
        for seed in self._channel_seeds:
            self._add_seed_channel(seed, humans, now)
        for group_id, handle in self._usergroup_seeds or []:
            self.usergroups[group_id] = self._usergroup(group_id, handle, now)

    def _add_seed_channel(self, seed: ChannelSeed, humans: list[str], now: int) -> None:
        if isinstance(seed, Mapping):
            cid, name = str(seed["id"]), str(seed["name"])
            members = set(seed.get("members", humans))
            private = bool(seed.get("is_private", False))
            archived = bool(seed.get("is_archived", False))
            topic = str(seed.get("topic", ""))
        else:
            cid, name = seed[0], seed[1]
            members = set(seed[2]) if len(seed) > 2 else set(humans)
            private = archived = False
            topic = ""
        if self.bot_channels_member:
            members.add(BOT_USER_ID)
        channel = Channel(
            id=cid,
            name=name,
            created_by=humans[0] if humans else BOT_USER_ID,
            created=now,
            is_private=private,
            is_archived=archived,
            topic=topic,
            members=members,
        )
        self.channels[cid] = channel
        self.history[cid] = []
        if isinstance(seed, Mapping):
            for text in seed.get("messages", ()):
                self.post(channel, user=BOT_USER_ID, text=str(text))

    @staticmethod
    def _usergroup(group_id: str, handle: str, now: int) -> dict[str, Any]:
        return {
            "id": group_id,
            "team_id": TEAM_ID,
            "is_usergroup": True,
            "name": handle,
            "handle": handle,
            "description": "",
            "is_external": False,
            "date_create": now,
            "date_update": now,
            "date_delete": 0,
            "created_by": BOT_USER_ID,
            "updated_by": BOT_USER_ID,
            "users": [],
            "user_count": 0,
        }

    def ensure_usergroup(self, group_id: str) -> dict[str, Any] | None:
        """The user group with that id; unseeded workspaces create it on first use."""
        group = self.usergroups.get(group_id)
        if group is None and not self.strict_usergroups and group_id.startswith("S"):
            group = self._usergroup(group_id, group_id.lower(), int(self.clock()))
            self.usergroups[group_id] = group
        return group

    def new_id(self, prefix: str) -> str:
        """A fresh Slack-looking id: the prefix and ten uppercase letters or digits."""
        self._counter += 1
        n = (self._counter * _ID_STRIDE) % _ID_SPACE
        digits = ""
        for _ in range(9):
            n, rem = divmod(n, 36)
            digits = _ALPHABET[rem] + digits
        return f"{prefix}0{digits}"

    def next_ts(self) -> str:
        """A message ts from the clock, unique and strictly increasing ("1700000000.000100")."""
        micros = max(int(self.clock() * 1_000_000), self._last_ts + 1)
        self._last_ts = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    # -- channels -------------------------------------------------------------------------

    def channel_by_name(self, name: str) -> Channel | None:
        """The channel (archived ones included) with that name."""
        name = name.lstrip("#")
        for channel in self.channels.values():
            if channel.name == name and not channel.is_im:
                return channel
        return None

    def resolve_channel(
        self, ref: str | None, *, by_name: bool = True, by_user: bool = True
    ) -> Channel | None:
        """Find a conversation by id, else by `#name`/name, else a user id's DM with the bot."""
        if not ref:
            return None
        if ref in self.channels:
            return self.channels[ref]
        if by_user and ref.startswith(("U", "W")) and ref in self.users and ref != BOT_USER_ID:
            return self.open_dm(ref)
        return self.channel_by_name(ref) if by_name else None

    def visible_to_bot(self, channel: Channel) -> bool:
        """Public channels are visible to the bot; private ones and DMs only to members."""
        if channel.is_private or channel.is_im or channel.is_mpim:
            return BOT_USER_ID in channel.members
        return True

    def create_channel(self, name: str, *, is_private: bool, creator: str) -> Channel:
        """Create a channel whose only member is its creator."""
        channel = Channel(
            id=self.new_id("C"),
            name=name,
            created_by=creator,
            created=int(self.clock()),
            is_private=is_private,
            members={creator},
        )
        self.channels[channel.id] = channel
        self.history[channel.id] = []
        return channel

    def open_dm(self, user_id: str) -> Channel:
        """The bot's DM with a user, created on first use and stable afterwards."""
        for channel in self.channels.values():
            if channel.is_im and channel.user == user_id:
                return channel
        channel = Channel(
            id=self.new_id("D"),
            name=user_id,
            created_by=BOT_USER_ID,
            created=int(self.clock()),
            is_im=True,
            user=user_id,
            members={BOT_USER_ID, user_id},
        )
        self.channels[channel.id] = channel
        self.history[channel.id] = []
        return channel

    def open_mpim(self, user_ids: list[str]) -> Channel:
        """The group DM of the bot and these users, stable for the same set of members."""
        members = {BOT_USER_ID, *user_ids}
        for channel in self.channels.values():
            if channel.is_mpim and channel.members == members:
                return channel
        name = "mpdm-" + "--".join(sorted(self.users[u].name for u in members)) + "-1"
        channel = Channel(
            id=self.new_id("C"),
            name=name,
            created_by=BOT_USER_ID,
            created=int(self.clock()),
            is_private=True,
            is_mpim=True,
            members=members,
        )
        self.channels[channel.id] = channel
        self.history[channel.id] = []
        return channel

    # -- messages -------------------------------------------------------------------------

    def post(
        self,
        channel: Channel,
        *,
        user: str,
        text: str | None,
        blocks: Any = None,
        attachments: Any = None,
        thread_ts: str | None = None,
        metadata: Any = None,
    ) -> dict[str, Any]:
        """Store a message in a channel and return it."""
        from_bot = user == BOT_USER_ID
        message: dict[str, Any] = {
            "type": "message",
            "ts": self.next_ts(),
            "user": user,
            "bot_id": BOT_ID if from_bot else None,
            "app_id": APP_ID if from_bot else None,
            "team": TEAM_ID,
            "text": text or "",
            "blocks": copy.deepcopy(blocks) if blocks is not None else [],
            "attachments": copy.deepcopy(attachments) if attachments else None,
            "thread_ts": thread_ts,
            "edited": None,
            "pinned": False,
            "metadata": copy.deepcopy(metadata) if metadata else None,
            "channel": channel.id,
        }
        self.history.setdefault(channel.id, []).append(message)
        return message

    def find_message(self, channel_id: str, ts: str | None) -> dict[str, Any] | None:
        """The stored message with that ts in that channel."""
        for message in self.history.get(channel_id, []):
            if message["ts"] == ts:
                return message
        return None

    def find_latest_with(
        self, *, user: str, action_id: str, value: str | None
    ) -> tuple[str, str] | None:
        """(channel id, ts) of the newest message `user` can see holding that button."""
        best: tuple[str, str] | None = None
        for channel_id, messages in self.history.items():
            channel = self.channels.get(channel_id)
            if channel is None or (
                (channel.is_private or channel.is_im or channel.is_mpim)
                and user not in channel.members
            ):
                continue
            for message in messages:
                if best is not None and float(message["ts"]) <= float(best[1]):
                    continue
                if _has_button(message.get("blocks") or [], action_id, value):
                    best = (channel_id, message["ts"])
        return best

    def find_ephemeral(self, channel_id: str | None, ts: str | None) -> dict[str, Any] | None:
        """The recorded ephemeral message with that ts (in that channel, when given)."""
        for message in self.ephemerals:
            if message.get("ts") == ts and (channel_id is None or message["channel"] == channel_id):
                return message
        return None

    def add_ephemeral(
        self,
        *,
        channel: str | None,
        user: str,
        text: str | None,
        blocks: Any,
        source: str,
    ) -> dict[str, Any]:
        """Record an ephemeral message shown to one user."""
        message = {
            "channel": channel,
            "user": user,
            "text": text or "",
            "blocks": copy.deepcopy(blocks) if blocks is not None else [],
            "ts": self.next_ts(),
            "source": source,
            "bot_id": BOT_ID,
        }
        self.ephemerals.append(message)
        return message

    # -- triggers and response URLs -------------------------------------------------------

    def issue_trigger(self, user: str, *, view_id: str | None = None) -> str:
        """A fresh trigger_id for an interaction by `user`."""
        trigger_id = f"{self._counter + 1000}.{int(self.clock())}.{secrets.token_hex(16)}"
        self._counter += 1
        self.triggers[trigger_id] = Trigger(trigger_id, user, self.clock(), view_id=view_id)
        return trigger_id

    def exchange_trigger(self, trigger_id: str | None) -> Trigger | str:
        """Use a trigger once; return it, or the Slack error naming why it cannot be used."""
        trigger = self.triggers.get(trigger_id or "")
        if trigger is None:
            return "invalid_trigger_id"
        if trigger.used:
            return "exchanged_trigger_id"
        if self.clock() - trigger.issued_at > TRIGGER_TTL:
            return "expired_trigger_id"
        trigger.used = True
        return trigger

    def issue_response_url(
        self, *, channel: str | None, user: str, message_ts: str | None, ephemeral: bool = False
    ) -> str:
        """A fresh response_url under this emulator's base URL."""
        token = secrets.token_urlsafe(18)
        self.response_urls[token] = ResponseUrl(
            token, channel, user, message_ts, ephemeral, self.clock()
        )
        return f"{self.base_url}_emulator/response/{token}"

    # -- snapshots ------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The whole workspace as JSON (GET /_emulator/state)."""
        return {
            "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN},
            "bot": {"user_id": BOT_USER_ID, "bot_id": BOT_ID, "app_id": APP_ID},
            "users": [u.to_json() for u in self.users.values()],
            "channels": [c.to_state() for c in self.channels.values()],
            "messages": {
                cid: [public_message(m) for m in msgs] for cid, msgs in self.history.items()
            },
            "ephemerals": copy.deepcopy(self.ephemerals),
            "views": copy.deepcopy(self.views),
            "home_views": copy.deepcopy(self.home_views),
            "usergroups": copy.deepcopy(list(self.usergroups.values())),
            "files": [{k: v for k, v in f.items() if k != "data"} for f in self.files.values()],
        }


def _has_button(blocks: list[Any], action_id: str, value: str | None) -> bool:
    for block in blocks:
        if not isinstance(block, dict):
            continue
        for element in block.get("elements") or (
            [block["accessory"]] if "accessory" in block else []
        ):
            if (
                isinstance(element, dict)
                and element.get("action_id") == action_id
                and (value is None or element.get("value") == value)
            ):
                return True
    return False
