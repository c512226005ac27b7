"""The App Home tab: app_home_opened publishes the dashboard; replies to its buttons land on it.

The Home tab's buttons are the incident buttons (`handlers/actions.py` handles them), but a
click in a view carries no response_url, so `respond()` has nowhere to go. A middleware gives
those clicks a `respond` that shows the reply atop the user's Home tab instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltContext

from bot.deps import Deps
from bot.services.home import HomeService
from handlers.listener_runs import on_event
from handlers.middleware import deps_of


class HomeRespond:
    """`respond()` for clicks on the Home tab: the text becomes a notice on the tab."""

    def __init__(self, home: HomeService, user_id: str) -> None:
        self.home = home
        self.user_id = user_id

    async def __call__(self, text: str = "", **_: Any) -> None:
        if text:
            self.home.notify(user_id=self.user_id, text=text)


async def home_opened(event: dict[str, Any], context: AsyncBoltContext) -> None:
    """app_home_opened: publish the opener's dashboard (the Messages tab needs nothing)."""
    user = event.get("user")
    if event.get("tab", "home") != "home" or not isinstance(user, str):
        return  # the Messages tab: nothing to publish
    view = event.get("view") or {}
    deps_of(context).home.opened(user_id=user, view_hash=view.get("hash") if view else None)


async def home_respond(
    context: AsyncBoltContext, body: dict[str, Any], next_: Callable[[], Awaitable[None]]
) -> None:
    """Global middleware: a click on the Home tab gets a `respond` that notifies on the tab."""
    view = body.get("view") if body.get("type") == "block_actions" else None
    if isinstance(view, dict) and view.get("type") == "home" and not body.get("response_url"):
        user = body.get("user")
        if isinstance(user, dict) and isinstance(user.get("id"), str):
            context["respond"] = HomeRespond(deps_of(context).home, user["id"])
    await next_()


def register(app: AsyncApp, deps: Deps) -> None:
    """Register app_home_opened and the Home tab's respond() middleware (after provide_deps)."""
    on_event(app, "app_home_opened", home_opened)
    app.middleware(home_respond)
