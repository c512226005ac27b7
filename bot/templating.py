"""Templates written in the configuration (workflow messages and webhook bodies): a sandboxed
Jinja2 environment, checked when the config is read and rendered when a step runs.

Message templates escape every value they insert for Slack mrkdwn (`&`, `<`, `>`), so an
alert title holding `<!channel>` notifies no one; the template's own text is the operator's
and is kept as written. Webhook bodies insert values as written and must render to JSON (use
the `tojson` filter for strings: `{"title": {{ incident.title | tojson }}}`).
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

MAX_RENDERED = 64 * 1024  # characters; a template that renders more fails its step


class TemplateProblem(ValueError):
    """A template that does not compile or render; the message says where and why."""


def _escape(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return value


@cache
def _environment(*, mrkdwn: bool) -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        undefined=StrictUndefined,
        autoescape=False,
        finalize=_escape if mrkdwn else None,
        keep_trailing_newline=False,
    )
    return env


def check_template(source: str, *, json_body: bool = False) -> str:
    """Raise TemplateProblem when `source` is not a valid template; return it unchanged."""
    try:
        _environment(mrkdwn=not json_body).parse(source)
    except TemplateError as exc:
        raise TemplateProblem(f"invalid template: {exc}") from None
    return source


def render_message(source: str, context: dict[str, Any]) -> str:
    """Render a message template, escaping inserted values for mrkdwn."""
    return _render(source, context, mrkdwn=True)


def render_json(source: str, context: dict[str, Any]) -> Any:
    """Render a webhook body template and parse it as JSON; TemplateProblem when it is not."""
    text = _render(source, context, mrkdwn=False)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise TemplateProblem(
            f"the body template did not render JSON ({exc.msg} at line {exc.lineno} column "
            f"{exc.colno}); insert strings with the tojson filter"
        ) from None


def _render(source: str, context: dict[str, Any], *, mrkdwn: bool) -> str:
    try:
        text = _environment(mrkdwn=mrkdwn).from_string(source).render(context)
    except TemplateError as exc:
        raise TemplateProblem(f"template failed: {type(exc).__name__}: {exc}") from None
    if len(text) > MAX_RENDERED:
        raise TemplateProblem(f"template rendered {len(text)} characters (at most {MAX_RENDERED})")
    return text
