"""Web API handlers for the external file upload flow (files.upload itself is retired)."""

from __future__ import annotations

import json
from typing import Any

from bot.sandbox.emulator.apicore import (
    ApiError,
    CallContext,
    Handler,
    channel_for_bot,
    require_member,
    require_not_archived,
)
from bot.sandbox.emulator.state import BOT_USER_ID


def get_upload_url(ctx: CallContext) -> dict[str, Any]:
    """files.getUploadURLExternal: reserve a file id and an upload URL for `length` bytes."""
    filename = ctx.required("filename")
    length = ctx.int_arg("length", 0)
    if length <= 0:
        raise ApiError(
            "invalid_arguments",
            response_metadata={"messages": ["[ERROR] `length` must be positive"]},
        )
    file_id = ctx.ws.new_id("F")
    ctx.ws.files[file_id] = {
        "id": file_id,
        "name": filename,
        "title": filename,
        "length": length,
        "data": None,
        "created": int(ctx.ws.clock()),
        "user": BOT_USER_ID,
        "alt_txt": ctx.str_arg("alt_txt"),
    }
    return {
        "ok": True,
        "upload_url": f"{ctx.ws.base_url}_emulator/upload/{file_id}",
        "file_id": file_id,
    }


def _file_refs(ctx: CallContext) -> list[dict[str, Any]]:
    raw = ctx.args.get("files")
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise ApiError("invalid_arguments") from None
    if not isinstance(raw, list) or not raw:
        raise ApiError("invalid_arguments")
    return [ref for ref in raw if isinstance(ref, dict)]


def complete_upload(ctx: CallContext) -> dict[str, Any]:
    """files.completeUploadExternal: finish uploads and share them to a channel if one is given."""
    files = []
    for ref in _file_refs(ctx):
        stored = ctx.ws.files.get(str(ref.get("id")))
        if stored is None or stored["data"] is None:
            raise ApiError("file_not_found")
        files.append((stored, ref))
    channel = None
    if ctx.str_arg("channel_id") or ctx.str_arg("channels"):
        ctx.args.setdefault("channel", ctx.str_arg("channel_id") or ctx.id_list("channels")[0])
        channel = channel_for_bot(ctx)
        require_not_archived(channel)
        require_member(channel)
    shown = []
    for stored, ref in files:
        if ref.get("title"):
            stored["title"] = str(ref["title"])
        shown.append({k: v for k, v in stored.items() if k != "data"})
    if channel is not None:
        message = ctx.ws.post(
            channel,
            user=BOT_USER_ID,
            text=ctx.str_arg("initial_comment"),
            thread_ts=ctx.str_arg("thread_ts"),
        )
        message["files"] = shown
        for file in shown:
            file["channels"] = [channel.id]
    return {"ok": True, "files": shown}


def retired(ctx: CallContext) -> dict[str, Any]:
    """files.upload: retired by Slack; use the external upload flow."""
    raise ApiError("method_deprecated")


HANDLERS: dict[str, Handler] = {
    "files.completeUploadExternal": complete_upload,
    "files.getUploadURLExternal": get_upload_url,
    "files.upload": retired,
}
