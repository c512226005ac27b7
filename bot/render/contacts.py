"""The `/oncall notify` modal: a person's contact methods, a test button each, and a form to
add one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.domain.contacts import TYPE_LABELS, Listed, mask
from bot.domain.durations import format_duration
from bot.render.blocks import button, escape_mrkdwn, option, plain
from bot.slack.ids import Block, Callback, Input, NotifyAction

TYPE_CHOICES = (
    ("E-mail", "email"),
    ("SMS", "sms"),
    ("Phone call", "voice"),
    ("Push (any Apprise URL)", "apprise"),
)


def notify_modal(listed: Sequence[Listed], *, note: str = "") -> dict[str, Any]:
    """The modal; `note` is a line shown on top (what just happened)."""
    blocks: list[dict[str, Any]] = []
    if note:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": note}]})
    intro = (
        "Pages reach you in Slack, and by these methods while the page is unacknowledged:"
        if listed
        else "You have no methods beyond Slack yet. Add one below."
    )
    blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": intro}})
    for n, item in enumerate(listed[:20]):
        m = item.method
        when = "at once" if not item.after else f"after {format_duration(item.after)}"
        where = "" if item.own else " _(default from pulseops.yml)_"
        tested = f"\nLast test page: {escape_mrkdwn(item.tested)}" if item.tested else ""
        text = f"*{TYPE_LABELS[m.type]}* to `{mask(m.type, m.destination)}`, {when}{where}{tested}"
        buttons = [button("Send me a test page", f"{NotifyAction.TEST}_{n}", m.id)]
        if item.own:
            buttons.append(button("Remove", f"{NotifyAction.REMOVE}_{n}", m.id, style="danger"))
        blocks.append(
            {
                "type": "section",
                "block_id": f"{Block.NOTIFY_METHOD}_{n}",
                "text": {"type": "mrkdwn", "text": text},
            }
        )
        blocks.append(
            {
                "type": "actions",
                "block_id": f"{Block.NOTIFY_METHOD}_{n}_actions",
                "elements": buttons,
            }
        )
    blocks.append({"type": "divider"})
    blocks.append(
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": "*Add a method.* Your own methods replace the defaults; each is used "
                "its delay after a page, until someone acknowledges.",
            },
        }
    )
    blocks += [
        {
            "type": "input",
            "block_id": Block.NOTIFY_TYPE,
            "optional": True,
            "label": plain("Type"),
            "element": {
                "type": "static_select",
                "action_id": Input.NOTIFY_TYPE,
                "options": [option(label, value) for label, value in TYPE_CHOICES],
            },
        },
        {
            "type": "input",
            "block_id": Block.NOTIFY_DESTINATION,
            "optional": True,
            "label": plain("Address, number or URL"),
            "hint": plain("E-mail address; phone number as +441632960961; or an Apprise URL"),
            "element": {
                "type": "plain_text_input",
                "action_id": Input.NOTIFY_DESTINATION,
                "max_length": 500,
            },
        },
        {
            "type": "input",
            "block_id": Block.NOTIFY_AFTER,
            "optional": True,
            "label": plain("After"),
            "hint": plain("How long after a page: 0m (at once), 30s, 2m, 1h30m"),
            "element": {
                "type": "plain_text_input",
                "action_id": Input.NOTIFY_AFTER,
                "max_length": 20,
                "placeholder": plain("0m"),
            },
        },
    ]
    return {
        "type": "modal",
        "callback_id": Callback.NOTIFY,
        "title": plain("Your notifications"),
        "submit": plain("Add method"),
        "close": plain("Done"),
        "blocks": blocks,
    }
