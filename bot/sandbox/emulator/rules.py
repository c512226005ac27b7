"""Slack's platform rules as pure functions: channel names, Block Kit limits, view limits."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block, BlockElement

CHANNEL_NAME_MAX = 80
TOPIC_MAX = 250
PURPOSE_MAX = 250
MESSAGE_TEXT_MAX = 40_000
MESSAGE_BLOCKS_MAX = 50
VIEW_BLOCKS_MAX = 100
SECTION_TEXT_MAX = 3000
SECTION_FIELDS_MAX = 10
SECTION_FIELD_TEXT_MAX = 2000
HEADER_TEXT_MAX = 150
BUTTON_TEXT_MAX = 75
BUTTON_VALUE_MAX = 2000
BUTTON_URL_MAX = 3000
ID_MAX = 255
ACTIONS_ELEMENTS_MAX = 25
CONTEXT_ELEMENTS_MAX = 10
OPTION_TEXT_MAX = 75
OPTION_VALUE_MAX = 150
OPTIONS_MAX = 100
PLACEHOLDER_MAX = 150
INPUT_LABEL_MAX = 2000
MODAL_TITLE_MAX = 24
MODAL_BUTTON_MAX = 24
PRIVATE_METADATA_MAX = 3000

_CHANNEL_NAME_CHARS = re.compile(r"^[a-z0-9_\-]+$")
_PUNCTUATION_ONLY = re.compile(r"^[\-_]+$")

BLOCK_TYPES = frozenset(
    {
        "actions",
        "context",
        "divider",
        "file",
        "header",
        "image",
        "input",
        "markdown",
        "rich_text",
        "section",
        "video",
        "call",
        "table",
    }
)
ELEMENT_TYPES = frozenset(
    {
        "button",
        "checkboxes",
        "datepicker",
        "datetimepicker",
        "email_text_input",
        "image",
        "multi_static_select",
        "multi_external_select",
        "multi_users_select",
        "multi_conversations_select",
        "multi_channels_select",
        "number_input",
        "overflow",
        "plain_text_input",
        "radio_buttons",
        "rich_text_input",
        "static_select",
        "external_select",
        "users_select",
        "conversations_select",
        "channels_select",
        "timepicker",
        "url_text_input",
        "workflow_button",
        "file_input",
    }
)
TEXT_TYPES = frozenset({"plain_text", "mrkdwn"})
VIEW_TYPES = frozenset({"modal", "home"})


def validate_channel_name(name: str | None) -> str | None:
    """Return Slack's error code for an invalid channel name, or None when it is valid."""
    if not name:
        return "invalid_name_required"
    if len(name) > CHANNEL_NAME_MAX:
        return "invalid_name_maxlength"
    if not _CHANNEL_NAME_CHARS.match(name):
        return "invalid_name_specials"
    if _PUNCTUATION_ONLY.match(name):
        return "invalid_name_punctuation"
    return None


def _err(message: str, pointer: str) -> str:
    return f"{message} [json-pointer:{pointer}]"


def _too_long(limit: int, pointer: str) -> str:
    return _err(f"must be less than {limit + 1} characters", pointer)


def _text_of(obj: Any) -> str | None:
    if isinstance(obj, Mapping):
        text = obj.get("text")
        return text if isinstance(text, str) else None
    return None


def _check_text(
    obj: Any, pointer: str, *, limit: int, plain_only: bool = False, required: bool = True
) -> Iterator[str]:
    if obj is None:
        if required:
            yield _err("must provide an object", pointer)
        return
    if not isinstance(obj, Mapping):
        yield _err("must provide an object", pointer)
        return
    kind = obj.get("type")
    allowed = {"plain_text"} if plain_only else TEXT_TYPES
    if kind not in allowed:
        yield _err(f"must be one of: {', '.join(sorted(allowed))}", f"{pointer}/type")
    text = _text_of(obj)
    if text is None or text == "":
        yield _err("must be more than 0 characters", f"{pointer}/text")
    elif len(text) > limit:
        yield _too_long(limit, f"{pointer}/text")


def _check_options(options: Any, pointer: str) -> Iterator[str]:
    if not isinstance(options, list):
        return
    if len(options) > OPTIONS_MAX:
        yield _err(f"no more than {OPTIONS_MAX} items allowed", pointer)
    for i, option in enumerate(options):
        where = f"{pointer}/{i}"
        if not isinstance(option, Mapping):
            yield _err("must provide an object", where)
            continue
        yield from _check_text(option.get("text"), f"{where}/text", limit=OPTION_TEXT_MAX)
        value = option.get("value")
        if isinstance(value, str) and len(value) > OPTION_VALUE_MAX:
            yield _too_long(OPTION_VALUE_MAX, f"{where}/value")


def check_element(element: Any, pointer: str, action_ids: set[str]) -> Iterator[str]:
    """Yield the rule violations of one interactive or context element."""
    if not isinstance(element, Mapping):
        yield _err("must provide an object", pointer)
        return
    kind = element.get("type")
    if kind in TEXT_TYPES:
        yield from _check_text(element, pointer, limit=SECTION_TEXT_MAX)
        return
    if kind not in ELEMENT_TYPES:
        yield _err(f"unknown element type {kind!r}", f"{pointer}/type")
        return
    yield from _additional_properties(element, _element_attributes(element), pointer)
    action_id = element.get("action_id")
    if isinstance(action_id, str):
        if len(action_id) > ID_MAX:
            yield _too_long(ID_MAX, f"{pointer}/action_id")
        if action_id in action_ids:
            yield _err(f"action_id {action_id!r} is not unique", f"{pointer}/action_id")
        action_ids.add(action_id)
    if kind == "button":
        yield from _check_text(
            element.get("text"), f"{pointer}/text", limit=BUTTON_TEXT_MAX, plain_only=True
        )
        value = element.get("value")
        if isinstance(value, str) and len(value) > BUTTON_VALUE_MAX:
            yield _too_long(BUTTON_VALUE_MAX, f"{pointer}/value")
        url = element.get("url")
        if isinstance(url, str) and len(url) > BUTTON_URL_MAX:
            yield _too_long(BUTTON_URL_MAX, f"{pointer}/url")
        style = element.get("style")
        if style is not None and style not in ("primary", "danger"):
            yield _err("must be one of: danger, primary", f"{pointer}/style")
        if element.get("confirm") is not None:
            yield from _check_confirm(element["confirm"], f"{pointer}/confirm")
    if "placeholder" in element:
        yield from _check_text(
            element["placeholder"],
            f"{pointer}/placeholder",
            limit=PLACEHOLDER_MAX,
            plain_only=True,
        )
    yield from _check_options(element.get("options"), f"{pointer}/options")


CONFIRM_LIMITS = {"title": 100, "text": 300, "confirm": 30, "deny": 30}
"""A confirmation dialog's parts and their length limits (Slack's confirmation dialog object)."""


def _check_confirm(confirm: Any, pointer: str) -> Iterator[str]:
    if not isinstance(confirm, Mapping):
        yield _err("must be an object", pointer)
        return
    for key in confirm:
        if key not in (*CONFIRM_LIMITS, "style"):
            yield _err(f"invalid additional property: {key}", pointer)
    for key, limit in CONFIRM_LIMITS.items():
        yield from _check_text(
            confirm.get(key), f"{pointer}/{key}", limit=limit, plain_only=key != "text"
        )
    style = confirm.get("style")
    if style is not None and style not in ("primary", "danger"):
        yield _err("must be one of: danger, primary", f"{pointer}/style")


def _element_attributes(element: Mapping[str, Any]) -> frozenset[str] | None:
    try:
        parsed = BlockElement.parse(dict(element))
    except (TypeError, ValueError, SlackObjectFormationError):
        return None
    attributes = getattr(parsed, "attributes", None)
    return frozenset(attributes) if attributes else None


def _additional_properties(
    obj: Mapping[str, Any], allowed: frozenset[str] | None, pointer: str
) -> Iterator[str]:
    if allowed is None:
        return
    for key in obj:
        if key not in allowed:
            yield _err(f"invalid additional property: {key}", pointer)


def _block_elements(block: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """Yield (relative pointer, element) for every element a block holds."""
    kind = block.get("type")
    if kind in ("actions", "context") and isinstance(block.get("elements"), list):
        for i, element in enumerate(block["elements"]):
            yield f"elements/{i}", element
    if kind == "section" and block.get("accessory") is not None:
        yield "accessory", block["accessory"]
    if kind == "input" and block.get("element") is not None:
        yield "element", block["element"]


def _check_block(block: Mapping[str, Any], pointer: str, action_ids: set[str]) -> Iterator[str]:
    kind = block.get("type")
    if kind == "section":
        if block.get("text") is None and not block.get("fields"):
            yield _err("must provide text or fields", pointer)
        if block.get("text") is not None:
            yield from _check_text(block["text"], f"{pointer}/text", limit=SECTION_TEXT_MAX)
        fields = block.get("fields")
        if isinstance(fields, list):
            if len(fields) > SECTION_FIELDS_MAX:
                yield _err(f"no more than {SECTION_FIELDS_MAX} items allowed", f"{pointer}/fields")
            for i, field in enumerate(fields):
                yield from _check_text(field, f"{pointer}/fields/{i}", limit=SECTION_FIELD_TEXT_MAX)
    elif kind == "header":
        yield from _check_text(
            block.get("text"), f"{pointer}/text", limit=HEADER_TEXT_MAX, plain_only=True
        )
    elif kind in ("actions", "context"):
        limit = ACTIONS_ELEMENTS_MAX if kind == "actions" else CONTEXT_ELEMENTS_MAX
        elements = block.get("elements")
        if not isinstance(elements, list) or not elements:
            yield _err("must provide at least 1 item", f"{pointer}/elements")
        elif len(elements) > limit:
            yield _err(f"no more than {limit} items allowed", f"{pointer}/elements")
    elif kind == "input":
        yield from _check_text(
            block.get("label"), f"{pointer}/label", limit=INPUT_LABEL_MAX, plain_only=True
        )
        if block.get("element") is None:
            yield _err("must provide an object", f"{pointer}/element")
    for where, element in _block_elements(block):
        yield from check_element(element, f"{pointer}/{where}", action_ids)


def _schema_errors(block: Mapping[str, Any], pointer: str) -> Iterator[str]:
    """Validate one block with slack_sdk's models (the schema Slack publishes)."""
    try:
        parsed = Block.parse(dict(block))
        if parsed is None:
            yield _err(f"unknown block type {block.get('type')!r}", f"{pointer}/type")
            return
        yield from _additional_properties(block, frozenset(parsed.attributes), pointer)
        parsed.to_dict()
    except SlackObjectFormationError as exc:
        yield _err(str(exc), pointer)
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        yield _err(f"failed to match the block schema: {exc}", pointer)


def validate_blocks(
    blocks: Any,
    *,
    max_blocks: int = MESSAGE_BLOCKS_MAX,
    pointer: str = "/blocks",
    unique_action_ids: bool = True,
) -> list[str]:
    """Return every Block Kit violation in `blocks` (empty list when valid).

    `unique_action_ids` makes action ids unique across the whole surface (messages); otherwise
    they must be unique within each block only (views, whose state is keyed by block_id).
    """
    if not isinstance(blocks, list):
        return [_err("must provide an array", pointer)]
    errors: list[str] = []
    if len(blocks) > max_blocks:
        errors.append(_err(f"no more than {max_blocks} items allowed", pointer))
    block_ids: set[str] = set()
    surface_action_ids: set[str] = set()
    for i, block in enumerate(blocks):
        where = f"{pointer}/{i}"
        if not isinstance(block, Mapping):
            errors.append(_err("must provide an object", where))
            continue
        kind = block.get("type")
        if kind not in BLOCK_TYPES:
            errors.append(_err(f"unknown block type {kind!r}", f"{where}/type"))
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            if not isinstance(block_id, str) or len(block_id) > ID_MAX:
                errors.append(_too_long(ID_MAX, f"{where}/block_id"))
            elif block_id in block_ids:
                errors.append(_err(f"block_id {block_id!r} is not unique", f"{where}/block_id"))
            else:
                block_ids.add(block_id)
        action_ids = surface_action_ids if unique_action_ids else set()
        own = list(_check_block(block, where, action_ids))
        errors.extend(own)
        if not own:
            errors.extend(_schema_errors(block, where))
    return errors


def validate_message(
    text: Any, blocks: Any, attachments: Any = None
) -> tuple[str, list[str]] | None:
    """Check a message's content; return (error code, details) or None when it may be posted."""
    if blocks is not None:
        errors = validate_blocks(blocks)
        if errors:
            return ("invalid_blocks", errors)
    has_text = isinstance(text, str) and text.strip() != ""
    if not has_text and not blocks and not attachments:
        return ("no_text", [])
    if isinstance(text, str) and len(text) > MESSAGE_TEXT_MAX:
        return ("msg_too_long", [])
    return None


def validate_metadata(metadata: Any) -> str | None:
    """Check message metadata ({"event_type": str, "event_payload": object}); the error or None."""
    if metadata is None:
        return None
    if not isinstance(metadata, Mapping):
        return "invalid_metadata_format"
    event_type, payload = metadata.get("event_type"), metadata.get("event_payload")
    if not isinstance(event_type, str) or not event_type or not isinstance(payload, Mapping):
        return "invalid_metadata_format"
    return None


def validate_view(view: Any, *, allowed_types: frozenset[str] = VIEW_TYPES) -> list[str]:
    """Return every violation in a modal or home view (empty list when valid)."""
    if not isinstance(view, Mapping):
        return [_err("must provide an object", "/view")]
    errors: list[str] = []
    kind = view.get("type")
    if kind not in allowed_types:
        errors.append(_err(f"must be one of: {', '.join(sorted(allowed_types))}", "/view/type"))
    blocks = view.get("blocks")
    errors.extend(
        validate_blocks(
            blocks, max_blocks=VIEW_BLOCKS_MAX, pointer="/view/blocks", unique_action_ids=False
        )
    )
    if kind == "modal":
        errors.extend(
            _check_text(view.get("title"), "/view/title", limit=MODAL_TITLE_MAX, plain_only=True)
        )
        for key in ("submit", "close"):
            if view.get(key) is not None:
                errors.extend(
                    _check_text(view[key], f"/view/{key}", limit=MODAL_BUTTON_MAX, plain_only=True)
                )
        has_input = isinstance(blocks, list) and any(
            isinstance(b, Mapping) and b.get("type") == "input" for b in blocks
        )
        if has_input and view.get("submit") is None:
            errors.append(_err("submit is required when an input block is present", "/view/submit"))
    metadata = view.get("private_metadata")
    if isinstance(metadata, str) and len(metadata) > PRIVATE_METADATA_MAX:
        errors.append(_too_long(PRIVATE_METADATA_MAX, "/view/private_metadata"))
    for key in ("callback_id", "external_id"):
        value = view.get(key)
        if isinstance(value, str) and len(value) > ID_MAX:
            errors.append(_too_long(ID_MAX, f"/view/{key}"))
    return errors
