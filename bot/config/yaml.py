"""YAML side of the configuration: parse with a key→line map and report problems as `file:line:`.

`validate_yaml` turns every pydantic error (and every cross-field `Problems` entry a model
raises) into one `source:line: path: message` line, sorted by line, inside a ConfigError.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from bot.errors import ConfigError

Loc = tuple[str | int, ...]
"""A location inside the configuration, e.g. ('services', 1, 'team')."""

M = TypeVar("M", bound=BaseModel)


class Problems(ValueError):
    """Problems a model validator found, each with its own location relative to that model.

    Raise it from a `model_validator` to point at a field (or several) instead of the whole item;
    `validate_yaml` unpacks it. Built directly, pydantic reports it as one ValueError.
    """

    def __init__(self, problems: list[tuple[Loc, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{render_path(loc)}: {msg}" for loc, msg in problems))


def validate_yaml(
    text: str, model: type[M], *, source: str, context: dict[str, Any] | None = None
) -> M:
    """Parse YAML `text` and validate it as `model`; raise ConfigError with `source:line:` lines."""
    data, lines, duplicates = load_yaml(text, source)
    problems: list[tuple[int, str]] = [
        (line, f"{source}:{line}: {path}: duplicate key (first at line {first})")
        for path, line, first in duplicates
    ]
    if data is None:
        raise ConfigError([f"{source}:1: the file is empty; it needs at least a 'slack' section"])
    if not isinstance(data, dict):
        raise ConfigError(
            [f"{source}:1: the top level must be a mapping of sections, not {kind_of(data)}"]
        )
    try:
        config = model.model_validate(data, context=context)
    except ValidationError as exc:
        for loc, message in expand(exc):
            line = line_for(loc, lines)
            text_loc = render_path(loc) or "(top level)"
            problems.append((line, f"{source}:{line}: {text_loc}: {message}"))
    else:
        if not problems:
            return config
    problems.sort(key=lambda p: p[0])
    raise ConfigError([p for _, p in problems])


def kind_of(value: object) -> str:
    """'a list', 'a string', 'a int'… for messages about a value of the wrong shape."""
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    return f"a {type(value).__name__}"


def expand(exc: ValidationError) -> Iterator[tuple[Loc, str]]:
    """Turn pydantic errors into (location, message), unpacking `Problems`."""
    for error in exc.errors():
        cause = (error.get("ctx") or {}).get("error")
        loc = tuple(error["loc"])
        if isinstance(cause, Problems):
            for sub_loc, message in cause.problems:
                yield loc + sub_loc, message
        else:
            yield loc, clean_message(error)


def clean_message(error: Any) -> str:
    """A pydantic error's message in YAML terms (key, mapping, list) without pydantic's prefixes."""
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    if kind in {"tuple_type", "list_type"}:
        return "must be a list (one '- ' item per entry)"
    if kind in {"model_type", "dict_type", "model_attributes_type"}:
        return "must be a mapping of keys to values"
    if kind == "literal_error":
        return f"{error['msg']} (got {error['input']!r})"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def render_path(loc: Loc) -> str:
    """Render ('services', 1, 'team') as `services[1].team`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def line_for(loc: Loc, lines: Mapping[str, int]) -> int:
    """The line of the deepest part of `loc` present in the file (a missing key: its parent)."""
    for end in range(len(loc), 0, -1):
        line = lines.get(render_path(loc[:end]))
        if line is not None:
            return line
    return 1


def load_yaml(text: str, source: str) -> tuple[Any, dict[str, int], list[tuple[str, int, int]]]:
    """Parse YAML; return the data, the line of every key path, and duplicate keys."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        lines: dict[str, int] = {}
        duplicates: list[tuple[str, int, int]] = []
        if node is not None:
            _walk(node, "", lines, duplicates, set())
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        what = ": ".join(p for p in (exc.context, exc.problem) if p)
        raise ConfigError([f"{source}:{line}: invalid YAML: {what}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{source}: invalid YAML: {exc}"]) from None
    finally:
        loader.dispose()
    return data, lines, duplicates


def _walk(
    node: yaml.Node,
    path: str,
    lines: dict[str, int],
    duplicates: list[tuple[str, int, int]],
    active: set[int],
) -> None:
    """Record `start_mark.line + 1` for every key path under `node` and collect duplicate keys."""
    if id(node) in active:  # a recursive alias; its paths are already recorded
        return
    active.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = str(key_node.value)
            child = f"{path}.{key}" if path else key
            line = key_node.start_mark.line + 1
            if key in seen:
                duplicates.append((child, line, seen[key]))
            else:
                seen[key] = line
            lines[child] = line  # PyYAML keeps the last value, so point at it
            _walk(value_node, child, lines, duplicates, active)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            child = f"{path}[{i}]"
            lines[child] = item.start_mark.line + 1
            _walk(item, child, lines, duplicates, active)
    active.discard(id(node))
