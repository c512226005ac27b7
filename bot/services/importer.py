"""`pulseops import`: read another tool's API bodies, match its people to Slack users, and
write a pulseops.yml fragment (see `bot.importers`)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from bot.errors import ConfigError, SlackError, SlackFatal
from bot.importers import grafana_oncall, opsgenie, pagerduty
from bot.importers.model import Imported, ImportFileError, Person, fragment, render
from bot.slack.gateway import SlackGateway

READERS: dict[str, Callable[[list[tuple[str, Any]]], Imported]] = {
    "pagerduty": pagerduty.read,
    "opsgenie": opsgenie.read,
    "grafana-oncall": grafana_oncall.read,
}
_SLACK_USER = re.compile(r"[UW][A-Z0-9]{2,}")


def read_mapping(path: Path) -> dict[str, str]:
    """A mapping file: `source id or e-mail: Slack user ID` per line (YAML or JSON).

    Raises:
        ConfigError: naming the file and the entry that is wrong.
    """
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError([f"{path}: cannot read the mapping file ({exc})"]) from None
    if not isinstance(data, dict):
        raise ConfigError([f"{path}: expected a mapping of id or e-mail to Slack user ID"])
    problems = [
        f"{path}: {key}: {value!r} is not a Slack user ID (such as U0ALICE01)"
        for key, value in data.items()
        if not isinstance(value, str) or not _SLACK_USER.fullmatch(value)
    ]
    if problems:
        raise ConfigError(problems)
    return {str(key).strip().lower(): value for key, value in data.items()}


async def match_people(
    people: Mapping[str, Person],
    *,
    mapping: Mapping[str, str],
    gateway: SlackGateway | None,
) -> tuple[dict[str, str], list[str]]:
    """Each person's Slack user ID: from the mapping (by id or e-mail), the source's own
    link, or `users.lookupByEmail`. Returns the IDs found and notes on the rest."""
    found: dict[str, str] = {}
    notes: list[str] = []
    for key in sorted(people):
        person = people[key]
        email = (person.email or "").strip().lower()
        slack_id = mapping.get(key.lower()) or (mapping.get(email) if email else None)
        slack_id = slack_id or person.slack_id
        if slack_id is None and email and gateway is not None:
            try:
                answer = await gateway.call("users.lookupByEmail", email=email)
            except SlackFatal as exc:
                if exc.error != "users_not_found":
                    raise
                answer = {}
            user = answer.get("user") or {}
            if user.get("deleted"):
                notes.append(f"{person.name} ({email}) is deactivated in Slack; left out")
            elif user.get("id"):
                slack_id = str(user["id"])
        if slack_id is not None:
            found[key] = slack_id
    return found, notes


def load(kind: str, files: list[Path]) -> Imported:
    """Read the files of one tool.

    Raises:
        ConfigError: a file is unreadable, not JSON, or not a body this importer reads.
    """
    documents = []
    for path in files:
        try:
            documents.append((str(path), json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ConfigError([f"{path}: cannot read it as JSON ({exc})"]) from None
    try:
        return READERS[kind](documents)
    except ImportFileError as exc:
        raise ConfigError([str(exc)]) from None
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(
            [f"{kind} files: a field is missing or has the wrong type ({exc!r})"]
        ) from None


async def import_fragment(
    kind: str,
    files: list[Path],
    *,
    mapping: Mapping[str, str],
    gateway: SlackGateway | None,
    default_team: str,
) -> tuple[str, list[str]]:
    """The fragment's YAML text and the list of what was not carried over."""
    imported = load(kind, files)
    try:
        slack_ids, notes = await match_people(imported.people, mapping=mapping, gateway=gateway)
    except SlackError as exc:
        raise ConfigError(
            [
                f"Slack refused {exc.method} ({exc.error}): give the app the users:read.email "
                "scope (manifest.yml), or match people with --mapping and no SLACK_BOT_TOKEN"
            ]
        ) from None
    imported.not_carried.extend(notes)
    config, not_carried = fragment(imported, slack_ids, default_team=default_team)
    return render(imported.source, config, not_carried), not_carried
