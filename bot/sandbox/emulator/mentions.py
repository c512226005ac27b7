"""What a Slack client does to typed text: `@name`, `@group` and `#channel` become mention tokens.

In a message, Slack sends `<@U…>` for a person picked by `@name`, `<!subteam^S…>` for a user
group and `<#C…|name>` for a channel. A slash command's text is converted the same way only when
the manifest says `should_escape: true`, and then people carry their name as a label
(`<@U…|alice>`); otherwise the command receives the words as typed. Names the workspace does
not know stay plain text, as do tokens already in Slack's form.
"""

from __future__ import annotations

import re

from bot.sandbox.emulator.state import Workspace

_SPECIAL = {"here": "<!here>", "channel": "<!channel>", "everyone": "<!everyone>"}
# a word right after @ or # that is not part of an e-mail address, a token or a word
_TYPED = re.compile(r"(?<![\w<|@#&])([@#])([\w][\w.\-]*)")


def escape_text(text: str) -> str:
    """`&`, `<` and `>` as a Slack client sends them (`&amp;`, `&lt;`, `&gt;`): typed text is
    never markup, so `<!channel>` typed by a person is not a broadcast."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape_typed(ws: Workspace, text: str, *, labels: bool) -> str:
    """Replace typed `@name`, `@group`, `@here` and `#channel` by Slack's tokens."""

    def token(match: re.Match[str]) -> str:
        sigil, word = match[1], match[2]
        name = word.rstrip(".-")
        rest = word[len(name) :]
        found = _lookup(ws, sigil, name.lower(), labels=labels)
        return match[0] if found is None else found + rest

    return _TYPED.sub(token, text)


def _lookup(ws: Workspace, sigil: str, name: str, *, labels: bool) -> str | None:
    if sigil == "#":
        channel = ws.channel_by_name(name)
        if channel is None or channel.is_im or channel.is_mpim:
            return None
        return f"<#{channel.id}|{channel.name}>"
    if name in _SPECIAL:
        return _SPECIAL[name]
    for user in ws.users.values():
        if user.name.lower() == name and not user.deleted:
            return f"<@{user.id}|{user.name}>" if labels else f"<@{user.id}>"
    for group in ws.usergroups.values():
        if str(group.get("handle", "")).lower() == name and not group.get("date_delete"):
            return f"<!subteam^{group['id']}|@{group['handle']}>"
    return None
