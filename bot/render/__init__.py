"""Rendering: Jinja templates and Block Kit for Slack (renderer, blocks, home, report, chart).

Nothing here touches the store or the services: it turns domain records into text and blocks.
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

__all__ = [
    "MAX_BLOCKS",
    "MAX_HANDOFF_INCIDENTS",
    "MAX_HEADER_TEXT",
    "MAX_SECTION_TEXT",
    "MAX_VIEW_BLOCKS",
    "Message",
    "Names",
    "Renderer",
    "button",
    "clip",
    "escape_mrkdwn",
    "fit_blocks",
    "option",
    "plain",
    "section",
]
