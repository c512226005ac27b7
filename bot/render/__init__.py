"""Rendering: Jinja templates and Block Kit for Slack (renderer, replies, blocks, home, report).

`chart` draws the report's PNG chart. Nothing here touches the store or the services: it turns
domain records into text and blocks.
"""

from bot.render.blocks import (
    MAX_BLOCKS,
    MAX_HEADER_TEXT,
    MAX_SECTION_TEXT,
    MAX_VIEW_BLOCKS,
    button,
    clip,
    escape_mrkdwn,
    fit_blocks,
    option,
    plain,
    section,
)
from bot.render.renderer import MAX_HANDOFF_INCIDENTS, Message, Names, Renderer
from bot.render.replies import Replies

__all__ = [
    "MAX_BLOCKS",
    "MAX_HANDOFF_INCIDENTS",
    "MAX_HEADER_TEXT",
    "MAX_SECTION_TEXT",
    "MAX_VIEW_BLOCKS",
    "Message",
    "Names",
    "Renderer",
    "Replies",
    "button",
    "clip",
    "escape_mrkdwn",
    "fit_blocks",
    "option",
    "plain",
    "section",
]
