"""Plain records of the emulated workspace: identity constants, users, channels, triggers."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

TEAM_ID = "T0PULSEOPS"
TEAM_DOMAIN = "pulseops"
BOT_USER_ID = "U0PULSEBOT"
BOT_ID = "B0PULSEBOT"
APP_ID = "A0PULSEOPS"
BOT_NAME = "pulseops"
VERIFICATION_TOKEN = "emulator-verification-token"

TRIGGER_TTL = 3.0
RESPONSE_URL_MAX_USES = 5
RESPONSE_URL_TTL = 30 * 60.0


ChannelSeed = tuple[str, str] | tuple[str, str, Iterable[str]] | Mapping[str, Any]


@dataclass
class EmulatorUser:
    """A person (or bot) in the emulated workspace."""

    id: str
    name: str
    real_name: str = ""
    is_bot: bool = False
    deleted: bool = False
    is_admin: bool = False
    tz: str = "UTC"
    email: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The user object users.info answers."""
        real_name = self.real_name or self.name
        return {
            "id": self.id,
            "team_id": TEAM_ID,
            "name": self.name,
            "real_name": real_name,
            "deleted": self.deleted,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "is_admin": self.is_admin,
            "tz": self.tz,
            "profile": {
                "real_name": real_name,
                "display_name": self.name,
                "email": self.email,
                "team": TEAM_ID,
                **({"bot_id": BOT_ID} if self.id == BOT_USER_ID else {}),
            },
        }


@dataclass
class Channel:
    """A conversation: public or private channel, DM (is_im) or group DM (is_mpim)."""

    id: str
    name: str
    created_by: str
    created: int
    is_private: bool = False
    is_archived: bool = False
    is_im: bool = False
    is_mpim: bool = False
    user: str | None = None
    topic: str = ""
    topic_creator: str = ""
    topic_last_set: int = 0
    purpose: str = ""
    purpose_creator: str = ""
    purpose_last_set: int = 0
    members: set[str] = field(default_factory=set)
    pins: set[str] = field(default_factory=set)

    def __getitem__(self, key: str) -> Any:
        """Dict-style access (`channel["members"]`) for tests and templates."""
        return getattr(self, key)

    def to_json(self, *, viewer: str = BOT_USER_ID, num_members: bool = False) -> dict[str, Any]:
        """The conversation object the Web API answers, as seen by `viewer`."""
        if self.is_im:
            return {
                "id": self.id,
                "created": self.created,
                "is_im": True,
                "is_org_shared": False,
                "user": self.user,
                "is_user_deleted": False,
                "priority": 0,
            }
        body: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "is_channel": not self.is_private and not self.is_mpim,
            "is_group": self.is_private and not self.is_mpim,
            "is_im": False,
            "is_mpim": self.is_mpim,
            "is_private": self.is_private,
            "created": self.created,
            "creator": self.created_by,
            "is_archived": self.is_archived,
            "is_general": False,
            "unlinked": 0,
            "name_normalized": self.name,
            "is_shared": False,
            "is_ext_shared": False,
            "is_org_shared": False,
            "is_member": viewer in self.members,
            "topic": {
                "value": self.topic,
                "creator": self.topic_creator,
                "last_set": self.topic_last_set,
            },
            "purpose": {
                "value": self.purpose,
                "creator": self.purpose_creator,
                "last_set": self.purpose_last_set,
            },
            "previous_names": [],
        }
        if num_members:
            body["num_members"] = len(self.members)
        return body

    def to_state(self) -> dict[str, Any]:
        """A plain JSON snapshot for the control routes."""
        return {
            "id": self.id,
            "name": self.name,
            "is_private": self.is_private,
            "is_archived": self.is_archived,
            "is_im": self.is_im,
            "is_mpim": self.is_mpim,
            "user": self.user,
            "topic": self.topic,
            "purpose": self.purpose,
            "members": sorted(self.members),
            "created_by": self.created_by,
            "pins": sorted(self.pins),
        }


@dataclass
class Trigger:
    """A trigger_id handed to the bot with an interaction: valid 3 s, exchangeable once."""

    id: str
    user: str
    issued_at: float
    used: bool = False
    view_id: str | None = None


@dataclass
class ResponseUrl:
    """A response_url handed to the bot: 5 posts within 30 minutes."""

    token: str
    channel: str | None
    user: str
    message_ts: str | None
    ephemeral: bool
    issued_at: float
    uses: int = 0


def public_message(message: Mapping[str, Any], *, metadata: bool = False) -> dict[str, Any]:
    """A stored message as the Web API and payloads show it (no emulator-only keys).

    Message `metadata` is shown only when asked for (conversations.history answers it with
    include_all_metadata=true; chat.postMessage echoes it).
    """
    body = {k: copy.deepcopy(v) for k, v in message.items() if v is not None}
    if not body.get("pinned"):
        body.pop("pinned", None)
    body.pop("channel", None)
    if not metadata:
        body.pop("metadata", None)
    return body
