"""The /_emulator control routes: state for tests and the sandbox page, faults, driving the bot."""

from __future__ import annotations

import functools
import json
import mimetypes
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.sandbox.emulator import live
from bot.sandbox.emulator.api_views import public_view
from bot.sandbox.emulator.payloads import EmulatorError
from bot.sandbox.emulator.responses import use_response_url
from bot.sandbox.emulator.state import public_message

if TYPE_CHECKING:
    from bot.sandbox.emulator.server import Emulator


def _default(value: Any) -> Any:
    if isinstance(value, set | frozenset):
        return sorted(value)
    if hasattr(value, "to_state"):
        return value.to_state()
    return str(value)


dumps = functools.partial(json.dumps, default=_default)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=dumps)


async def read_args(request: web.Request) -> tuple[dict[str, Any], str | None]:
    """Query and body arguments of a Web API call, and Slack's error for an unreadable body."""
    args: dict[str, Any] = dict(request.query)
    if request.method != "POST" or not request.can_read_body:
        return args, None
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            return args, "invalid_json"
        if not isinstance(body, dict):
            return args, "json_not_object"
        args.update(body)
        return args, None
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        for key in form:
            value = form[key]
            if isinstance(value, str):
                args[key] = value
        return args, None
    return args, "invalid_post_type"


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(
            text='{"ok": false, "error": "invalid_json"}', content_type="application/json"
        ) from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(
            text='{"ok": false, "error": "json_not_object"}', content_type="application/json"
        )
    return body


DriverCall = Callable[[dict[str, Any], web.Request], Awaitable[dict[str, Any]]]


def _driving(
    call: DriverCall, changes: live.Changes
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        body = await _body(request)
        try:
            result = await call(body, request)
        except (EmulatorError, TypeError) as exc:
            return _json({"ok": False, "error": str(exc)}, status=400)
        finally:
            changes.bump()
        return _json({"ok": True, **result})

    return handler


def register(app: web.Application, emu: Emulator) -> None:
    """Add the control routes of `emu` to its application."""

    async def state(request: web.Request) -> web.Response:
        return _json(
            {
                **emu.ws.snapshot(),
                "faults": emu.faults.to_json(emu.clock()),
                "request_url": emu.request_url,
                "socket_mode": emu.socket.snapshot(),
                "modal_stacks": {u: list(s) for u, s in emu.ws.modal_stacks.items() if s},
                "shortcuts": sorted(emu.driver.shortcuts or ()),
            }
        )

    async def calls(request: web.Request) -> web.Response:
        method = request.query.get("method")
        since = int(request.query.get("since") or 0)
        found = [c for c in emu.calls[since:] if method is None or c["method"] == method]
        return _json({"calls": found, "next": len(emu.calls)})

    async def channels(request: web.Request) -> web.Response:
        return _json({"channels": [c.to_state() for c in emu.ws.channels.values()]})

    async def channel_messages(request: web.Request) -> web.Response:
        cid = request.match_info["id"]
        if cid not in emu.ws.channels:
            return _json({"ok": False, "error": "channel_not_found"}, status=404)
        return _json(
            {
                "channel": emu.ws.channels[cid].to_state(),
                "messages": [public_message(m) for m in emu.ws.history.get(cid, [])],
                "ephemerals": [e for e in emu.ws.ephemerals if e["channel"] == cid],
            }
        )

    async def view(request: web.Request) -> web.Response:
        found = emu.ws.views.get(request.match_info["view_id"])
        if found is None:
            return _json({"ok": False, "error": "not_found"}, status=404)
        return _json({**public_view(found), "user": found["user"], "open": found["open"]})

    async def reset(request: web.Request) -> web.Response:
        emu.reset()
        return _json({"ok": True})

    async def faults(request: web.Request) -> web.Response:
        if request.method == "POST":
            try:
                emu.set_faults(**await _body(request))
            except (ValueError, TypeError) as exc:
                return _json({"ok": False, "error": str(exc)}, status=400)
        return _json({"ok": True, "faults": emu.faults.to_json(emu.clock())})

    async def respond(request: web.Request) -> web.Response:
        body = await _body(request)
        status, answer = use_response_url(emu.ws, request.match_info["token"], body)
        record = {
            "index": len(emu.calls),
            "method": "response_url",
            "args": body,
            "status": status,
            "response": answer,
            "at": emu.clock(),
        }
        emu.calls.append(record)
        emu.changes.bump()
        return _json(answer, status=status)

    async def upload(request: web.Request) -> web.Response:
        stored = emu.ws.files.get(request.match_info["file_id"])
        if stored is None:
            return web.Response(status=404, text="file_not_found")
        data = await request.read()
        stored["data"] = data
        stored["size"] = len(data)
        emu.changes.bump()
        return web.Response(text=f"OK - {len(data)}")

    async def click(body: dict[str, Any], request: web.Request) -> dict[str, Any]:
        return await emu.click(**body)

    async def command(body: dict[str, Any], request: web.Request) -> dict[str, Any]:
        return await emu.command(**body)

    async def submit(body: dict[str, Any], request: web.Request) -> dict[str, Any]:
        return await emu.submit_view(view_id=request.match_info["view_id"], **body)

    async def close(body: dict[str, Any], request: web.Request) -> dict[str, Any]:
        return await emu.close_view(view_id=request.match_info["view_id"], **body)

    async def home(body: dict[str, Any], request: web.Request) -> dict[str, Any]:
        return await emu.open_home(**body)

    async def message(body: dict[str, Any], request: web.Request) -> dict[str, Any]:
        return await emu.post_user_message(**body)

    async def reaction(body: dict[str, Any], request: web.Request) -> dict[str, Any]:
        return await emu.add_reaction(**body)

    async def shortcut(body: dict[str, Any], request: web.Request) -> dict[str, Any]:
        return await emu.message_shortcut(**body)

    async def socket_disconnect(body: dict[str, Any], request: web.Request) -> dict[str, Any]:
        return {"told": await emu.socket_disconnect(**body)}

    async def send_next_to(body: dict[str, Any], request: web.Request) -> dict[str, Any]:
        return emu.socket_send_next_to(**body)

    async def redeliver(body: dict[str, Any], request: web.Request) -> dict[str, Any]:
        return await emu.redeliver_event(request.match_info["event_id"], **body)

    router = app.router
    router.add_get("/_emulator/state", state)
    router.add_get("/_emulator/calls", calls)
    router.add_get("/_emulator/channels", channels)
    router.add_get("/_emulator/channels/{id}/messages", channel_messages)
    router.add_get("/_emulator/views/{view_id}", view)
    router.add_post("/_emulator/reset", reset)
    router.add_route("GET", "/_emulator/faults", faults)
    router.add_route("POST", "/_emulator/faults", faults)
    router.add_post("/_emulator/response/{token}", respond)
    router.add_post("/_emulator/upload/{file_id}", upload)
    router.add_post("/_emulator/click", _driving(click, emu.changes))
    router.add_post("/_emulator/command", _driving(command, emu.changes))
    router.add_post("/_emulator/views/{view_id}/submit", _driving(submit, emu.changes))
    router.add_post("/_emulator/views/{view_id}/close", _driving(close, emu.changes))
    router.add_post("/_emulator/home", _driving(home, emu.changes))
    router.add_post("/_emulator/messages", _driving(message, emu.changes))
    router.add_post("/_emulator/reactions", _driving(reaction, emu.changes))
    router.add_post("/_emulator/shortcuts", _driving(shortcut, emu.changes))
    router.add_post("/_emulator/events/{event_id}/redeliver", _driving(redeliver, emu.changes))
    router.add_post("/_emulator/socket/disconnect", _driving(socket_disconnect, emu.changes))
    router.add_post("/_emulator/socket/send_next_to", _driving(send_next_to, emu.changes))


def register_page(app: web.Application, emu: Emulator) -> None:
    """Add the sandbox page (`/`), its files, its live stream and uploaded files' bytes."""

    async def index(request: web.Request) -> web.Response:
        return live.static_file("index.html")

    async def asset(request: web.Request) -> web.Response:
        return live.static_file(request.match_info["name"])

    async def events(request: web.Request) -> web.StreamResponse:
        return await live.stream(request, emu.changes, lambda: len(emu.calls), emu.closing)

    async def file(request: web.Request) -> web.Response:
        stored = emu.ws.files.get(request.match_info["file_id"])
        if stored is None or stored.get("data") is None:
            return _json({"ok": False, "error": "file_not_found"}, status=404)
        name = str(stored.get("name") or "")
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        return web.Response(body=stored["data"], content_type=content_type)

    router = app.router
    router.add_get("/", index)
    router.add_get("/_emulator/ui/{name}", asset)
    router.add_get("/_emulator/events", events)
    router.add_get("/_emulator/files/{file_id}", file)
