"""Silences in Slack: the silence modal, `/incident silences` with Expire buttons, the App Home
section, from `templates/silences.j2` through the one `Renderer` (escaped there)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from markupsafe import Markup

from bot.domain.silences import Silence
from bot.render.blocks import MAX_BLOCKS, button, fit_blocks, plain, section
from bot.render.renderer import Renderer
from bot.slack.ids import Action, Block, Callback, SilenceInput, bundled

_T = "silences.j2"
MAX_LISTED = 40  # silences listed with an Expire button each (a message holds 50 blocks)


class SilenceRenderer:
    """Renders silences for Slack."""

    def __init__(self, renderer: Renderer) -> None:
        self.renderer = renderer

    def word(self, name: str, /, **context: Any) -> Markup:
        return self.renderer.reply(_T, name, **context)

    def modal(
        self, *, matchers: Sequence[str], incident_id: int | None, channel_id: str | None
    ) -> dict[str, Any]:
        """The silence modal, its matchers pre-filled (one per line)."""
        w = self.word
        matcher_input: dict[str, Any] = {
            "type": "plain_text_input",
            "action_id": SilenceInput.MATCHERS,
            "multiline": True,
            "max_length": 3000,
            "placeholder": plain('service="payment-api"'),
        }
        if matchers:
            matcher_input["initial_value"] = "\n".join(matchers)[:3000]
        blocks: list[dict[str, Any]] = [
            {
                "type": "input",
                "block_id": Block.SILENCE_MATCHERS,
                "label": plain(str(w("matchers_label"))),
                "hint": plain(str(w("matchers_hint"))),
                "element": matcher_input,
            },
            {
                "type": "input",
                "block_id": Block.SILENCE_DURATION,
                "label": plain(str(w("duration_label"))),
                "optional": True,
                "element": {
                    "type": "plain_text_input",
                    "action_id": SilenceInput.DURATION,
                    "max_length": 20,
                    "placeholder": plain(str(w("duration_placeholder"))),
                },
            },
            {
                "type": "input",
                "block_id": Block.SILENCE_ENDS_AT,
                "label": plain(str(w("ends_at_label"))),
                "optional": True,
                "element": {"type": "datetimepicker", "action_id": SilenceInput.ENDS_AT},
            },
            {
                "type": "input",
                "block_id": Block.SILENCE_COMMENT,
                "label": plain(str(w("comment_label"))),
                "element": {
                    "type": "plain_text_input",
                    "action_id": SilenceInput.COMMENT,
                    "max_length": 1000,
                    "placeholder": plain(str(w("comment_placeholder"))),
                },
            },
        ]
        return {
            "type": "modal",
            "callback_id": Callback.SILENCE,
            "title": plain(str(w("modal_title"))),
            "submit": plain(str(w("submit"))),
            "close": plain(str(w("close"))),
            "private_metadata": json.dumps({"incident": incident_id, "channel": channel_id}),
            "blocks": blocks,
        }

    def created(self, silence: Silence) -> dict[str, Any]:
        """The modal once the silence is created: what it mutes and until when."""
        return {
            "type": "modal",
            "title": plain(str(self.word("modal_title"))),
            "close": plain(str(self.word("done"))),
            "blocks": [section(str(self.word("created", silence=silence)), block_id="created")],
        }

    def listing(
        self, silences: Sequence[tuple[Silence, int]], *, now: datetime
    ) -> tuple[str, list[dict[str, Any]]]:
        """`/incident silences`: (text, blocks), each silence with its Expire button."""
        if not silences:
            text = str(self.word("nothing"))
            return text, [section(text, block_id=Block.SILENCE_LIST)]
        heading = str(self.word("heading", count=len(silences)))
        blocks: list[dict[str, Any]] = [section(heading, block_id=Block.SILENCE_LIST)]
        for silence, held in silences[:MAX_LISTED]:
            block = section(
                str(self.word("line", silence=silence, held=held, now=now)),
                block_id=f"{Block.SILENCE_LIST}_{silence.id}",
            )
            block["accessory"] = button(
                "Expire", bundled(Action.EXPIRE_SILENCE, silence.id), str(silence.id)
            )
            blocks.append(block)
        if len(silences) > MAX_LISTED:
            more = str(self.word("more", count=len(silences) - MAX_LISTED))
            blocks.append(section(more, block_id=f"{Block.SILENCE_LIST}_more"))
        return heading, fit_blocks(blocks, limit=MAX_BLOCKS)

    def home_lines(self, silences: Sequence[tuple[Silence, int]], *, now: datetime | None) -> str:
        """The App Home section: every current silence and who made it (one section's text)."""
        if not silences:
            return str(self.word("nothing"))
        lines = [str(self.word("line", silence=s, held=held, now=now)) for s, held in silences]
        return "\n".join(lines)

    def expired(self, silence: Silence, *, by: str) -> str:
        return str(self.word("expired", silence=silence, by=by))

    def field_error(self, name: str, /, **context: Any) -> str:
        return str(self.word(name, **context))
