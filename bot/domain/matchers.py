"""Alertmanager's label matchers: `name="value"`, `name!="value"`, `name=~"regex"`, `name!~"regex"`.

The syntax and meaning follow Alertmanager (and `amtool`), so a matcher copied from a silence
or a route there means the same thing here:

- the name is a label name (`[A-Za-z_:][A-Za-z0-9_:]*`, which includes the synthetic
  `__title__`, `__description__`, `__source__`, `__integration__`);
- the value is double-quoted (with `\\"`, `\\\\` and `\\n` escapes) or bare (the rest of the text,
  trimmed; a bare value may not contain `"`, `{`, `}` or `,`);
- regexes are anchored at both ends (`=~"Payment.*"` does not match "Failed Payment");
- a missing label has the empty value, so `env=""` matches alerts without `env` and
  `env!=""` matches alerts with a non-empty `env`.

Regexes are Python's `re`, which agrees with Go's RE2 for the expressions Alertmanager users
write (alternation, classes, repetition); backreferences and lookarounds, which RE2 refuses,
are refused here too so a matcher never behaves differently when moved.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

_NAME = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_RE2_ONLY = re.compile(r"(?<!\\)(?:\\\\)*(?:\\[1-9]|\(\?(?:[=!]|<[=!]|P=))")
# ^ backreferences and lookarounds, which RE2 refuses
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n"}


class MatchOp(StrEnum):
    EQ = "="
    NE = "!="
    RE = "=~"
    NRE = "!~"


_OPS = (MatchOp.RE, MatchOp.NRE, MatchOp.NE, MatchOp.EQ)  # two-character operators first


class MatcherError(ValueError):
    """A matcher that does not parse; the message says what to write instead."""


@dataclass(frozen=True, slots=True)
class Matcher:
    """One parsed matcher; `str()` gives its canonical, quoted form."""

    name: str
    op: MatchOp
    value: str
    regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.op is MatchOp.EQ:
            return actual == self.value
        if self.op is MatchOp.NE:
            return actual != self.value
        assert self.regex is not None
        found = self.regex.fullmatch(actual) is not None
        return found if self.op is MatchOp.RE else not found

    def __str__(self) -> str:
        return f"{self.name}{self.op.value}{quote(self.value)}"


def quote(value: str) -> str:
    """`value` as a double-quoted matcher value."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _unquote(text: str, source: str) -> str:
    """The value of a double-quoted string that is the whole of `text`."""
    out: list[str] = []
    index = 1
    while index < len(text):
        char = text[index]
        if char == "\\":
            if index + 1 >= len(text) or text[index + 1] not in _ESCAPES:
                raise MatcherError(
                    f'{source!r}: unknown escape in the quoted value (use \\", \\\\ or \\n)'
                )
            out.append(_ESCAPES[text[index + 1]])
            index += 2
            continue
        if char == '"':
            if text[index + 1 :].strip():
                raise MatcherError(
                    f"{source!r}: unexpected text after the closing quote; "
                    'write one matcher per entry, e.g. env="prod"'
                )
            return "".join(out)
        out.append(char)
        index += 1
    raise MatcherError(f"{source!r}: the quoted value has no closing quote")


def parse_matcher(text: str) -> Matcher:
    """Parse one matcher, e.g. `alertname=~"Payment.*"`; MatcherError says what is wrong."""
    if not isinstance(text, str):
        raise MatcherError(f"a matcher is a string like 'env=\"prod\"', not {text!r}")
    source = text
    text = text.strip()
    name_match = _NAME.match(text)
    if name_match is None:
        raise MatcherError(
            f'{source!r}: a matcher starts with a label name, e.g. env="prod" or '
            'alertname=~"Payment.*"'
        )
    name, rest = name_match.group(), text[name_match.end() :].lstrip()
    op = next((op for op in _OPS if rest.startswith(op.value)), None)
    if op is None:
        raise MatcherError(
            f"{source!r}: after the label name {name!r} comes one of =, !=, =~ or !~"
        )
    raw = rest[len(op.value) :].strip()
    if raw.startswith('"'):
        value = _unquote(raw, source)
    else:
        if any(char in raw for char in '"{},'):
            raise MatcherError(
                f'{source!r}: quote a value that contains ", {{, }} or a comma, '
                f'e.g. {name}{op.value}"{raw}"'
            )
        value = raw
    regex = None
    if op in (MatchOp.RE, MatchOp.NRE):
        if _RE2_ONLY.search(value):
            raise MatcherError(
                f"{source!r}: backreferences and lookarounds are not supported "
                "(Alertmanager's RE2 refuses them too)"
            )
        try:
            regex = re.compile(value)
        except re.error as exc:
            raise MatcherError(f"{source!r}: invalid regular expression: {exc}") from None
    return Matcher(name=name, op=op, value=value, regex=regex)


def parse_matchers(texts: Iterable[str]) -> tuple[Matcher, ...]:
    return tuple(parse_matcher(text) for text in texts)


def matches_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    """True when every matcher matches (so an empty list matches everything)."""
    return all(matcher.matches(labels) for matcher in matchers)
