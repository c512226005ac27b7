"""Web API handlers for files: the external upload flow (files.upload itself is retired),
files.list, and the checks an image block's `slack_file` must pass."""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Iterator, Mapping
from typing import Any

from bot.sandbox.emulator.apicore import (
    ApiError,
    CallContext,
    Handler,
    channel_for_bot,
    require_member,
    require_not_archived,
)
from bot.sandbox.emulator.state import BOT_USER_ID, Workspace

# Slack shows these in image blocks (its Slack file object: png, jpg, jpeg and gif only),
# each recognised by its first bytes
IMAGE_TYPES = {"png": b"\x89PNG\r\n\x1a\n", "jpg": b"\xff\xd8\xff", "gif": b"GIF8"}
FILE_LIST_TYPES = frozenset({"all", "spaces", "snippets", "images", "gdocs", "zips", "pdfs"})


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
        _complete(ctx.ws, stored)
        if channel is not None and channel.id not in stored["channels"]:
            stored["channels"].append(channel.id)
        shown.append(public_file(stored))
    if channel is not None:
        message = ctx.ws.post(
            channel,
            user=BOT_USER_ID,
            text=ctx.str_arg("initial_comment"),
            thread_ts=ctx.str_arg("thread_ts"),
        )
        message["files"] = shown
    return {"ok": True, "files": shown}


def _filetype(name: str) -> str:
    ext = name.rpartition(".")[2].lower() if "." in name else ""
    return "jpg" if ext == "jpeg" else ext


def _complete(ws: Workspace, stored: dict[str, Any]) -> None:
    """Fill in what Slack knows of a file once its upload completes: type, links, shares."""
    name = str(stored["name"])
    filetype = _filetype(name)
    stored.setdefault("channels", [])
    stored["timestamp"] = stored["created"]
    stored["filetype"] = filetype
    stored["mimetype"] = mimetypes.guess_type(name)[0] or "application/octet-stream"
    stored["url_private"] = f"{ws.base_url}_emulator/files/{stored['id']}"
    stored["permalink"] = f"{ws.base_url}_emulator/files/{stored['id']}?permalink"
    stored["completed"] = True


def public_file(stored: Mapping[str, Any]) -> dict[str, Any]:
    """A file as the Web API shows it (its bytes left out)."""
    shown = {k: v for k, v in stored.items() if k not in ("data", "completed")}
    shown["channels"] = list(stored.get("channels", []))
    return shown


def is_image(stored: Mapping[str, Any]) -> bool:
    """Whether a file is an image Slack shows in an image block (type and bytes agree)."""
    magic = IMAGE_TYPES.get(str(stored.get("filetype")))
    data = stored.get("data")
    return magic is not None and isinstance(data, bytes) and data.startswith(magic)


def list_files(ctx: CallContext) -> dict[str, Any]:
    """files.list: the files the bot can see, newest first, filtered by `channel`, `user`,
    `ts_from`/`ts_to` (creation time) and `types`; paged with `count` and `page`."""
    channel = None
    if ctx.str_arg("channel"):
        channel = channel_for_bot(ctx)
    user = ctx.str_arg("user")
    if user is not None and user not in ctx.ws.users:
        raise ApiError("user_not_found")
    types = set(ctx.id_list("types")) or {"all"}
    if not types <= FILE_LIST_TYPES:
        raise ApiError("unknown_type")
    ts_from = float(ctx.str_arg("ts_from") or 0)
    ts_to = float(ctx.str_arg("ts_to") or "inf")
    count = max(1, min(ctx.int_arg("count", 100), 1000))
    page = max(1, ctx.int_arg("page", 1))
    found = []
    for stored in ctx.ws.files.values():
        if not stored.get("completed") or not ts_from <= stored["created"] <= ts_to:
            continue
        if user is not None and stored["user"] != user:
            continue
        shares = stored.get("channels", [])
        if channel is not None and channel.id not in shares:
            continue
        visible = any(
            c in ctx.ws.channels and ctx.ws.visible_to_bot(ctx.ws.channels[c]) for c in shares
        )
        if not visible and stored["user"] != BOT_USER_ID:
            continue
        if "all" not in types and not ("images" in types and is_image(stored)):
            continue
        found.append(stored)
    found.sort(key=lambda f: (f["created"], f["id"]), reverse=True)
    pages = max(1, -(-len(found) // count))
    shown = [public_file(f) for f in found[(page - 1) * count : page * count]]
    return {
        "ok": True,
        "files": shown,
        "paging": {"count": count, "total": len(found), "page": page, "pages": pages},
    }


def slack_file_errors(ws: Workspace, blocks: Any, channel_id: str) -> Iterator[str]:
    """Why the `slack_file` of each image block or image element in `blocks` cannot be
    shown in `channel_id` (Slack's "invalid slack file"): it names no file or both an id and
    a URL, the file does not exist or its upload never completed, it is not a png, jpg or gif,
    or it is not shared where the message is (people in the channel could not see it)."""
    if not isinstance(blocks, list):
        return
    for pointer, image in _images(blocks):
        ref = image.get("slack_file")
        if ref is None:
            continue
        where = f"{pointer}/slack_file"
        if not isinstance(ref, Mapping) or ("id" in ref) == ("url" in ref):
            yield f"must provide either id or url, not both [json-pointer:{where}]"
            continue
        stored = _file_of(ws, ref)
        if (
            stored is None
            or not stored.get("completed")
            or not is_image(stored)
            or channel_id not in stored.get("channels", [])
        ):
            yield f"invalid slack file [json-pointer:{where}]"


def _file_of(ws: Workspace, ref: Mapping[str, Any]) -> dict[str, Any] | None:
    if "id" in ref:
        return ws.files.get(str(ref["id"]))
    url = str(ref.get("url"))
    return next(
        (f for f in ws.files.values() if url in (f.get("url_private"), f.get("permalink"))),
        None,
    )


def _images(blocks: list[Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(pointer, image) of each image block, section accessory and context image."""
    for i, block in enumerate(blocks):
        if not isinstance(block, Mapping):
            continue
        if block.get("type") == "image":
            yield f"/blocks/{i}", block
        accessory = block.get("accessory")
        if isinstance(accessory, Mapping) and accessory.get("type") == "image":
            yield f"/blocks/{i}/accessory", accessory
        if block.get("type") == "context" and isinstance(block.get("elements"), list):
            for j, element in enumerate(block["elements"]):
                if isinstance(element, Mapping) and element.get("type") == "image":
                    yield f"/blocks/{i}/elements/{j}", element


def retired(ctx: CallContext) -> dict[str, Any]:
    """files.upload: retired by Slack; use the external upload flow."""
    raise ApiError("method_deprecated")


HANDLERS: dict[str, Handler] = {
    "files.completeUploadExternal": complete_upload,
    "files.getUploadURLExternal": get_upload_url,
    "files.list": list_files,
    "files.upload": retired,
}
