"""Saving and restoring the emulated workspace, so a restarted sandbox shows the same Slack.

What is kept: users, channels (members, pins, topics, archived), every message, ephemerals,
views and Home tabs, user groups, uploaded files, and the id/ts counters (so ids and
timestamps never repeat across restarts). What is not: trigger ids and response URLs (they
expire within seconds or minutes anyway) and recorded Web API calls.

The file is JSON written atomically (a temporary file renamed over the old one), so a crash
while saving leaves the previous save intact.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bot.sandbox.emulator.models import Channel, EmulatorUser
from bot.sandbox.emulator.state import Workspace

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Resumed:
    """What a restore brought back, for the sandbox's start-up line."""

    channels: int
    messages: int
    dms: int

    def describe(self) -> str:
        """One line: 'N channels, N messages, N DMs'."""
        return f"{self.channels} channels, {self.messages} messages, {self.dms} DMs"


def dump_workspace(ws: Workspace) -> dict[str, Any]:
    """The workspace as a JSON-able dict."""
    channels = []
    for channel in ws.channels.values():
        row = asdict(channel)
        row["members"] = sorted(channel.members)
        row["pins"] = sorted(channel.pins)
        channels.append(row)
    files = {}
    for file_id, stored in ws.files.items():
        row = dict(stored)
        data = row.get("data")
        row["data"] = base64.b64encode(data).decode("ascii") if isinstance(data, bytes) else None
        files[file_id] = row
    return {
        "version": FORMAT_VERSION,
        "counter": ws._counter,
        "last_ts": ws._last_ts,
        "users": [asdict(user) for user in ws.users.values()],
        "channels": channels,
        "history": ws.history,
        "ephemerals": ws.ephemerals,
        "views": ws.views,
        "home_views": ws.home_views,
        "usergroups": ws.usergroups,
        "files": files,
    }


def restore_workspace(ws: Workspace, data: dict[str, Any]) -> Resumed:
    """Replace the workspace's contents with a saved dump.

    Raises:
        ValueError: the dump is of another format version or malformed.
    """
    if data.get("version") != FORMAT_VERSION:
        raise ValueError(f"unknown emulator state version {data.get('version')!r}")
    try:
        users = {row["id"]: EmulatorUser(**row) for row in data["users"]}
        channels = {}
        for row in data["channels"]:
            row = dict(row)
            row["members"] = set(row["members"])
            row["pins"] = set(row["pins"])
            channels[row["id"]] = Channel(**row)
        files = {}
        for file_id, row in data["files"].items():
            row = dict(row)
            row["data"] = base64.b64decode(row["data"]) if row.get("data") is not None else None
            files[file_id] = row
        history = {str(k): list(v) for k, v in data["history"].items()}
    except (KeyError, TypeError) as exc:
        raise ValueError(f"malformed emulator state: {exc}") from exc
    # A seed added to the config since the save (a new team channel) still appears.
    seeded = {cid: ch for cid, ch in ws.channels.items() if cid not in channels}
    seeded_users = {uid: u for uid, u in ws.users.items() if uid not in users}
    ws.users = {**users, **seeded_users}
    ws.channels = {**channels, **seeded}
    ws.history = {**{cid: ws.history.get(cid, []) for cid in seeded}, **history}
    ws.ephemerals = list(data.get("ephemerals", []))
    ws.views = dict(data.get("views", {}))
    ws.home_views = dict(data.get("home_views", {}))
    ws.usergroups = {**ws.usergroups, **data.get("usergroups", {})}
    ws.files = files
    ws._counter = max(ws._counter, int(data.get("counter", 0)))
    ws._last_ts = max(ws._last_ts, int(data.get("last_ts", 0)))
    return Resumed(
        channels=sum(1 for c in channels.values() if not c.is_im),
        messages=sum(len(v) for v in history.values()),
        dms=sum(1 for c in channels.values() if c.is_im),
    )


def encode(ws: Workspace) -> str:
    """The workspace as JSON text (call on the event loop's thread: it reads live state)."""
    return json.dumps(dump_workspace(ws), separators=(",", ":"))


def write(path: Path, text: str) -> None:
    """Write an encoded workspace to `path` atomically (safe to run in a worker thread)."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def save(ws: Workspace, path: Path) -> None:
    """Write the workspace to `path` atomically."""
    write(path, encode(ws))


def load(ws: Workspace, path: Path) -> Resumed:
    """Restore the workspace from `path`.

    Raises:
        ValueError: the file is not a saved workspace.
        OSError: it cannot be read.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a saved workspace")
    return restore_workspace(ws, data)
