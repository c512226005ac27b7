"""Drives the bot the way Slack does: signed button clicks, commands, view submissions, events."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlencode

import aiohttp

from bot.sandbox.emulator import payloads, rules, socket_mode
from bot.sandbox.emulator.api_views import MODAL_STACK_MAX, close_stack, public_view, store_view
from bot.sandbox.emulator.mentions import escape_text, escape_typed
from bot.sandbox.emulator.payloads import EmulatorError
from bot.sandbox.emulator.responses import apply_response
from bot.sandbox.emulator.state import (
    BOT_USER_ID,
    VERIFICATION_TOKEN,
    Channel,
    ResponseUrl,
    Workspace,
    public_message,
)

ACK_TIMEOUT = 3.0
_FORM = "application/x-www-form-urlencoded"
# channel_type of a message event -> the suffix of the event subscription that delivers it
_SUBSCRIPTION_SUFFIX = {"channel": "channels", "group": "groups", "im": "im", "mpim": "mpim"}


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """Slack's request signature: v0= + hex HMAC-SHA256 of "v0:{timestamp}:{body}"."""
    base = f"v0:{timestamp}:".encode() + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def _parse(raw: bytes) -> Any:
    if not raw:
        return ""
    text = raw.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


class Driver:
    """Sends requests to the bot and applies its answers like Slack.

    Over Socket Mode when a client is connected (`socket`), else signed HTTP POSTs to the
    request URL.
    """

    def __init__(
        self,
        ws: Workspace,
        *,
        signing_secret: str,
        clock: Callable[[], float],
        request_url: Callable[[], str | None],
        ack_timeout: float = ACK_TIMEOUT,
        socket: socket_mode.SocketModeServer | None = None,
        bot_events: Iterable[str] | None = None,
        escaped_commands: Iterable[str] = (),
        shortcuts: Iterable[str] | None = None,
    ) -> None:
        self.ws = ws
        self.escaped_commands = frozenset(escaped_commands)
        self.bot_events = frozenset(bot_events) if bot_events is not None else None
        # callback ids of the app's message shortcuts (None: any)
        self.shortcuts = frozenset(shortcuts) if shortcuts is not None else None
        self.socket = socket
        self.signing_secret = signing_secret
        self.clock = clock
        self.request_url = request_url
        self.ack_timeout = ack_timeout
        self.deliveries: list[dict[str, Any]] = []
        self._events: dict[str, bytes] = {}
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def reset(self) -> None:
        """Forget past deliveries."""
        self.deliveries.clear()
        self._events.clear()

    def can_deliver(self) -> bool:
        """Whether requests can reach the bot: a Socket Mode client or a request URL."""
        return bool(self.request_url()) or (self.socket is not None and self.socket.connected)

    async def _post(
        self,
        kind: str,
        body: bytes,
        content_type: str,
        payload: Any,
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        envelope = socket_mode.envelope_type(kind)
        if envelope is not None and self.socket is not None and self.socket.connected:
            return await self._send_envelope(kind, envelope, payload, headers or {})
        url = self.request_url()
        if not url:
            raise EmulatorError("request_url is not set and no Socket Mode client is connected")
        timestamp = int(self.clock())
        sent = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": str(timestamp),
            "X-Slack-Signature": sign(self.signing_secret, timestamp, body),
            **(headers or {}),
        }
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        started = time.monotonic()
        result: dict[str, Any]
        try:
            async with self._session.post(
                url, data=body, headers=sent, timeout=aiohttp.ClientTimeout(total=self.ack_timeout)
            ) as response:
                result = {"status": response.status, "body": _parse(await response.read())}
        except TimeoutError:
            result = {"status": 0, "body": None, "error": "operation_timeout"}
        except aiohttp.ClientError as exc:
            result = {"status": 0, "body": None, "error": f"dispatch_failed: {exc}"}
        result["elapsed"] = time.monotonic() - started
        result["transport"] = "http"
        self.deliveries.append({"kind": kind, "payload": payload, "at": self.clock(), **result})
        return result

    async def _send_envelope(
        self, kind: str, envelope: str, payload: Any, headers: Mapping[str, str]
    ) -> dict[str, Any]:
        assert self.socket is not None
        started = time.monotonic()
        result = await self.socket.deliver(
            envelope,
            payload,
            ack_timeout=self.ack_timeout,
            retry_attempt=int(headers.get("X-Slack-Retry-Num", 0)),
            retry_reason=headers.get("X-Slack-Retry-Reason", ""),
        )
        result["elapsed"] = time.monotonic() - started
        self.deliveries.append({"kind": kind, "payload": payload, "at": self.clock(), **result})
        return result

    async def _post_form(self, kind: str, form: Mapping[str, str], payload: Any) -> dict[str, Any]:
        return await self._post(kind, urlencode(form).encode(), _FORM, payload)

    async def _post_interaction(self, payload: dict[str, Any]) -> dict[str, Any]:
        return await self._post_form(payload["type"], {"payload": json.dumps(payload)}, payload)

    # -- interactions ---------------------------------------------------------------------

    def _visible_channel(self, ref: str | None, user: str) -> Channel:
        channel = self.ws.resolve_channel(ref)
        if channel is None:
            raise EmulatorError(f"unknown channel {ref!r}")
        if (channel.is_private or channel.is_im or channel.is_mpim) and user not in channel.members:
            raise EmulatorError(f"{user} cannot see {channel.id}")
        return channel

    async def click(
        self,
        *,
        user: str,
        action_id: str,
        channel: str | None = None,
        ts: str | None = None,
        view_id: str | None = None,
        value: Any = None,
        block_id: str | None = None,
        confirmed: bool = True,
    ) -> dict[str, Any]:
        """Click a button (or pick `value` in a select) in a message or view: block_actions."""
        payloads.user_ref(self.ws, user)
        extra: dict[str, Any]
        response_url = None
        if view_id is not None:
            view = self.ws.views.get(view_id)
            if view is None or view["user"] != user or not view.get("open"):
                raise EmulatorError(f"{user} has no open view {view_id!r}")
            blocks = view.get("blocks") or []
            container: dict[str, Any] = {"type": "view", "view_id": view_id}
            extra = {"view": public_view(view)}
        else:
            if channel is None and ts is None:
                # "the newest message with this button", handy from a shell in the sandbox
                found = self.ws.find_latest_with(
                    user=user, action_id=action_id, value=value if isinstance(value, str) else None
                )
                if found is None:
                    raise EmulatorError(
                        f"no message {user} can see has a {action_id!r} button"
                        + (f" with value {value!r}" if value is not None else "")
                    )
                channel, ts = found
            chan = self._visible_channel(channel, user)
            message = self.ws.find_message(chan.id, ts)
            ephemeral = message is None
            if message is None:
                message = self.ws.find_ephemeral(chan.id, ts)
                if message is None or message["user"] != user:
                    raise EmulatorError(f"no message {ts!r} in {chan.id} that {user} can see")
            blocks = message.get("blocks") or []
            container = {
                "type": "message",
                "message_ts": ts,
                "channel_id": chan.id,
                "is_ephemeral": ephemeral,
            }
            response_url = self.ws.issue_response_url(
                channel=chan.id, user=user, message_ts=ts, ephemeral=ephemeral
            )
            extra = {
                "channel": {"id": chan.id, "name": payloads.channel_name(chan)},
                "response_url": response_url,
            }
            if not ephemeral:
                extra["message"] = public_message(message)
        block, element = payloads.find_element(
            blocks,
            action_id=action_id,
            block_id=block_id,
            value=value if isinstance(value, str) else None,
        )
        if (
            element.get("confirm") and not confirmed
        ):  # the dialog was cancelled: Slack sends nothing
            return {"status": None, "body": None, "denied": True, "payload": None}
        action = payloads.action_payload(element, block, value, f"{self.clock():.6f}")
        trigger_id = self.ws.issue_trigger(user, view_id=view_id)
        payload = payloads.block_actions(
            self.ws,
            user=user,
            action=action,
            trigger_id=trigger_id,
            container=container,
            extra=extra,
        )
        result = await self._post_interaction(payload)
        return {
            **result,
            "trigger_id": trigger_id,
            "response_url": response_url,
            "payload": payload,
        }

    async def command(
        self, *, user: str, channel: str, command: str, text: str = "", typed: bool = False
    ) -> dict[str, Any]:
        """Invoke a slash command; an immediate JSON or text answer is shown like Slack does.

        Typed `@name`/`#channel` become mention tokens when the command escapes (should_escape).
        """
        if not command.startswith("/"):
            raise EmulatorError("a slash command starts with '/'")
        if typed:
            text = escape_text(text)
        if command in self.escaped_commands:
            text = escape_typed(self.ws, text, labels=True)
        payloads.user_ref(self.ws, user)
        chan = self._visible_channel(channel, user)
        trigger_id = self.ws.issue_trigger(user)
        response_url = self.ws.issue_response_url(channel=chan.id, user=user, message_ts=None)
        form = payloads.command_form(
            self.ws,
            user=user,
            channel=chan,
            command=command,
            text=text,
            response_url=response_url,
            trigger_id=trigger_id,
        )
        result = await self._post_form("command", form, form)
        body = result["body"]
        if result["status"] == 200 and body not in ("", None, {}):
            answer = body if isinstance(body, dict) else {"text": str(body)}
            origin = ResponseUrl("", chan.id, user, None, False, self.clock())
            status, outcome = apply_response(self.ws, origin, answer, source="command")
            if status != 200:
                result.update(error="invalid_command_response", response_error=outcome)
        elif result["status"] != 200:
            result.setdefault("error", "dispatch_failed")
        return {**result, "trigger_id": trigger_id, "response_url": response_url, "payload": form}

    async def submit_view(
        self, *, user: str, view_id: str, values: Mapping[str, Mapping[str, Any]] | None = None
    ) -> dict[str, Any]:
        """Submit the user's top modal with input values; apply the bot's response_action."""
        stack = self.ws.modal_stacks.get(user) or []
        view = self.ws.views.get(view_id)
        if view is None or not stack or stack[-1] != view_id:
            raise EmulatorError(f"{view_id!r} is not the modal {user} has on top")
        view["state"] = {"values": payloads.state_values(view, values or {})}
        trigger_id = self.ws.issue_trigger(user, view_id=view_id)
        payload = payloads.view_payload(
            self.ws, "view_submission", user=user, view=public_view(view), trigger_id=trigger_id
        )
        result = await self._post_interaction(payload)
        self._apply_submission(user, view, result)
        top = self.ws.modal_stacks.get(user)
        result["view"] = public_view(self.ws.views[top[-1]]) if top else None
        return {**result, "trigger_id": trigger_id, "payload": payload}

    def _apply_submission(self, user: str, view: dict[str, Any], result: dict[str, Any]) -> None:
        if result["status"] != 200:
            result.setdefault("error", "dispatch_failed")
            return
        body = result["body"] if isinstance(result["body"], dict) else {}
        action = body.get("response_action")
        result["response_action"] = action
        stack = self.ws.modal_stacks.get(user, [])
        if action == "errors":
            errors = body.get("errors") or {}
            inputs = {
                payloads.block_id_of(b, i)
                for i, b in enumerate(view.get("blocks") or [])
                if isinstance(b, dict) and b.get("type") == "input"
            }
            unknown = [key for key in errors if key not in inputs]
            result["errors"] = errors
            if unknown or not errors:
                result["error"] = f"errors must name input blocks: {unknown or 'none given'}"
        elif action in ("update", "push"):
            problems = rules.validate_view(body.get("view"), allowed_types=frozenset({"modal"}))
            if problems:
                result.update(error="invalid_view", view_errors=problems)
            elif action == "update":
                store_view(
                    self.ws,
                    body["view"],
                    user=user,
                    view_id=view["id"],
                    root_view_id=view["root_view_id"],
                    previous_view_id=view["previous_view_id"],
                )
            elif len(stack) >= MODAL_STACK_MAX:
                result["error"] = "push_limit_reached"
            else:
                pushed = store_view(
                    self.ws,
                    body["view"],
                    user=user,
                    root_view_id=stack[0],
                    previous_view_id=view["id"],
                )
                stack.append(pushed["id"])
        elif action == "clear":
            close_stack(self.ws, user)
        elif action is None:
            self._pop(user, view)
        else:
            result["error"] = f"unknown response_action {action!r}"

    def _pop(self, user: str, view: dict[str, Any]) -> None:
        view["open"] = False
        stack = self.ws.modal_stacks.get(user, [])
        if view["id"] in stack:
            stack.remove(view["id"])
        if not stack:
            self.ws.modal_stacks.pop(user, None)

    async def close_view(self, *, user: str, view_id: str) -> dict[str, Any]:
        """The user closes their top modal; view_closed is sent when notify_on_close is set."""
        stack = self.ws.modal_stacks.get(user) or []
        view = self.ws.views.get(view_id)
        if view is None or not stack or stack[-1] != view_id:
            raise EmulatorError(f"{view_id!r} is not the modal {user} has on top")
        if view.get("clear_on_close"):
            close_stack(self.ws, user)
        else:
            self._pop(user, view)
        if not view.get("notify_on_close"):
            return {"status": None, "body": None, "delivered": False}
        payload = payloads.view_payload(self.ws, "view_closed", user=user, view=public_view(view))
        return {**await self._post_interaction(payload), "delivered": True, "payload": payload}

    # -- events ---------------------------------------------------------------------------

    async def send_event(self, event: dict[str, Any]) -> dict[str, Any]:
        """Deliver one Events API event in an event_callback envelope with a fresh event_id."""
        event_id = self.ws.new_id("Ev")
        event.setdefault("event_ts", f"{self.clock():.6f}")
        envelope = payloads.event_envelope(event_id, event, event_time=int(self.clock()))
        body = json.dumps(envelope).encode()
        self._events[event_id] = body
        result = await self._post(f"event:{event.get('type')}", body, "application/json", envelope)
        return {**result, "event_id": event_id, "payload": envelope}

    async def redeliver_event(
        self, event_id: str, *, retry_num: int = 1, reason: str = "http_timeout"
    ) -> dict[str, Any]:
        """Deliver an event again, as Slack retries: same event_id, X-Slack-Retry-* headers."""
        body = self._events.get(event_id)
        if body is None:
            raise EmulatorError(f"unknown event {event_id!r}")
        headers = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": reason}
        result = await self._post(
            "event:retry", body, "application/json", json.loads(body), headers=headers
        )
        return {**result, "event_id": event_id}

    def subscribed(self, event_type: str) -> bool:
        """Whether the app subscribes to that event (all of them when no list was given)."""
        return self.bot_events is None or event_type in self.bot_events

    async def open_home(self, *, user: str) -> dict[str, Any]:
        """The user opens the app's Home tab: app_home_opened (when the app subscribes)."""
        payloads.user_ref(self.ws, user)
        if not self.subscribed("app_home_opened"):
            return {"status": None, "body": None, "delivered": False}
        event: dict[str, Any] = {
            "type": "app_home_opened",
            "user": user,
            "channel": self.ws.open_dm(user).id,
            "tab": "home",
        }
        home = self.ws.home_views.get(user)
        if home is not None:
            event["view"] = public_view(home)
        return await self.send_event(event)

    async def post_user_message(
        self,
        *,
        user: str,
        channel: str | None = None,
        text: str,
        thread_ts: str | None = None,
        typed: bool = False,
    ) -> dict[str, Any]:
        """A person posts a message (channel None: their DM with the bot); events follow.

        Typed `@name`, `@group` and `#channel` become mention tokens, as a Slack client sends them.
        """
        text = escape_typed(self.ws, escape_text(text) if typed else text, labels=False)
        person = self.ws.users.get(user)
        if person is None or person.is_bot:
            raise EmulatorError(f"unknown user {user!r}")
        chan = self.ws.open_dm(user) if channel is None else self.ws.resolve_channel(channel)
        if chan is None or chan.is_archived:
            raise EmulatorError(f"cannot post in {channel!r}")
        if user not in chan.members:
            if chan.is_private or chan.is_im or chan.is_mpim:
                raise EmulatorError(f"{user} is not in {chan.id}")
            chan.members.add(user)
        message = self.ws.post(chan, user=user, text=text, thread_ts=thread_ts)
        outcome: dict[str, Any] = {
            "ts": message["ts"],
            "channel": chan.id,
            "delivered": False,
            "status": None,
            "body": None,
        }
        subscribed = f"message.{_SUBSCRIPTION_SUFFIX[payloads.channel_type(chan)]}"
        if (
            BOT_USER_ID not in chan.members
            or not self.can_deliver()
            or not self.subscribed(subscribed)
        ):
            return outcome
        event = {
            "type": "message",
            "channel": chan.id,
            "user": user,
            "text": text,
            "ts": message["ts"],
            "event_ts": message["ts"],
            "team": message["team"],
            "channel_type": payloads.channel_type(chan),
        }
        if thread_ts:
            event["thread_ts"] = thread_ts
        outcome.update(await self.send_event(event), delivered=True)
        if f"<@{BOT_USER_ID}>" in text and self.subscribed("app_mention"):
            mention = {k: v for k, v in event.items() if k != "channel_type"}
            mention["type"] = "app_mention"
            outcome["app_mention"] = await self.send_event(mention)
        return outcome

    async def add_reaction(
        self, *, user: str, channel: str, ts: str, name: str = "pushpin"
    ) -> dict[str, Any]:
        """A person reacts to a message with `:name:`; reaction_added follows where the bot is
        a member and the app subscribes (already_reacted for the same person twice)."""
        person = self.ws.users.get(user)
        if person is None or person.is_bot:
            raise EmulatorError(f"unknown user {user!r}")
        chan = self._visible_channel(channel, user)
        message = self.ws.find_message(chan.id, ts)
        if message is None:
            raise EmulatorError(f"no message {ts!r} in {chan.id}")
        if chan.is_archived:
            raise EmulatorError(f"{chan.id} is archived")
        reactions: list[dict[str, Any]] = message.setdefault("reactions", None) or []
        entry = next((r for r in reactions if r["name"] == name), None)
        if entry is None:
            entry = {"name": name, "users": [], "count": 0}
            reactions.append(entry)
        if user in entry["users"]:
            raise EmulatorError("already_reacted")
        entry["users"].append(user)
        entry["count"] = len(entry["users"])
        message["reactions"] = reactions
        outcome: dict[str, Any] = {"delivered": False, "status": None, "body": None}
        if (
            BOT_USER_ID not in chan.members
            or not self.can_deliver()
            or not self.subscribed("reaction_added")
        ):
            return outcome
        event = {
            "type": "reaction_added",
            "user": user,
            "reaction": name,
            "item_user": message.get("user"),
            "item": {"type": "message", "channel": chan.id, "ts": ts},
        }
        outcome.update(await self.send_event(event), delivered=True)
        return outcome

    async def message_shortcut(
        self, *, user: str, channel: str, ts: str, callback_id: str
    ) -> dict[str, Any]:
        """A person runs a message shortcut on a message: a `message_action` interaction with a
        trigger_id and a response_url for that channel."""
        payloads.user_ref(self.ws, user)
        chan = self._visible_channel(channel, user)
        message = self.ws.find_message(chan.id, ts)
        if message is None:
            raise EmulatorError(f"no message {ts!r} in {chan.id}")
        if self.shortcuts is not None and callback_id not in self.shortcuts:
            raise EmulatorError(f"the app has no message shortcut {callback_id!r}")
        trigger_id = self.ws.issue_trigger(user)
        response_url = self.ws.issue_response_url(
            channel=chan.id, user=user, message_ts=None, ephemeral=False
        )
        payload = {
            "type": "message_action",
            "token": VERIFICATION_TOKEN,
            "action_ts": f"{self.clock():.6f}",
            "team": payloads.team(),
            "user": payloads.user_ref(self.ws, user),
            "channel": {"id": chan.id, "name": payloads.channel_name(chan)},
            "is_enterprise_install": False,
            "enterprise": None,
            "callback_id": callback_id,
            "trigger_id": trigger_id,
            "response_url": response_url,
            "message_ts": ts,
            "message": public_message(message),
        }
        result = await self._post_interaction(payload)
        return {**result, "trigger_id": trigger_id, "response_url": response_url}

    async def url_verification(self) -> dict[str, Any]:
        """Send the one-time url_verification challenge; `verified` tells if it was echoed."""
        challenge = self.ws.new_id("ch")
        envelope = {"token": VERIFICATION_TOKEN, "challenge": challenge, "type": "url_verification"}
        result = await self._post(
            "url_verification", json.dumps(envelope).encode(), "application/json", envelope
        )
        body = result["body"]
        echoed = body.get("challenge") if isinstance(body, dict) else body
        return {**result, "verified": result["status"] == 200 and echoed == challenge}
